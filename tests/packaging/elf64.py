"""A minimal ELF64 little-endian reader: enough to tell what a built libgobridge.so is
(machine, exported functions, needed libraries, glibc versions) without binutils for
the target architecture."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

EM_X86_64 = 62
EM_AARCH64 = 183
ET_DYN = 3
SHT_DYNAMIC = 6
SHT_DYNSYM = 11
DT_NEEDED = 1
STB_GLOBAL = 1
STT_FUNC = 2

# platform.machine() -> e_machine, for "built for the host" checks
MACHINES = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    offset: int
    size: int
    link: int
    entsize: int


def _cstr(data: bytes, offset: int) -> str:
    return data[offset : data.index(b"\0", offset)].decode()


def parse(data: bytes) -> tuple[dict[str, int], list[Section]]:
    """({"type": e_type, "machine": e_machine}, sections)."""
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2, "not ELFCLASS64"
    assert data[5] == 1, "not little-endian"
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    e_shoff = struct.unpack_from("<Q", data, 40)[0]
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 58)
    raw = []
    for i in range(e_shnum):
        name, typ, _flags, _addr, off, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, e_shoff + i * e_shentsize
        )
        raw.append((name, typ, off, size, link, entsize))
    shstr_off = raw[e_shstrndx][2]
    sections = [Section(_cstr(data, shstr_off + n), t, o, s, lk, es) for n, t, o, s, lk, es in raw]
    return {"type": e_type, "machine": e_machine}, sections


def header(data: bytes) -> dict[str, int]:
    return parse(data)[0]


def dynamic_symbols(data: bytes) -> dict[str, tuple[int, int, int]]:
    """name -> (binding, type, section index) from .dynsym."""
    _, sections = parse(data)
    dynsym = next(s for s in sections if s.type == SHT_DYNSYM)
    strtab = sections[dynsym.link]
    out = {}
    for off in range(dynsym.offset, dynsym.offset + dynsym.size, dynsym.entsize):
        st_name, st_info, _other, st_shndx, _value, _size = struct.unpack_from("<IBBHQQ", data, off)
        if st_name:
            out[_cstr(data, strtab.offset + st_name)] = (st_info >> 4, st_info & 0xF, st_shndx)
    return out


def needed(data: bytes) -> list[str]:
    """The DT_NEEDED entries of .dynamic: the shared libraries the loader must find."""
    _, sections = parse(data)
    dynamic = next(s for s in sections if s.type == SHT_DYNAMIC)
    strtab = sections[dynamic.link]
    out = []
    for off in range(dynamic.offset, dynamic.offset + dynamic.size, 16):
        tag, value = struct.unpack_from("<qQ", data, off)
        if tag == DT_NEEDED:
            out.append(_cstr(data, strtab.offset + value))
    return out


def glibc_versions(data: bytes) -> set[tuple[int, int]]:
    """Every GLIBC_X.Y version named in .dynstr."""
    _, sections = parse(data)
    dynstr = next(s for s in sections if s.name == ".dynstr")
    text = data[dynstr.offset : dynstr.offset + dynstr.size]
    return {
        (int(major), int(minor))
        for major, minor in re.findall(rb"GLIBC_([0-9]+)\.([0-9]+)", text)
    }
