#!/usr/bin/env bash
# Install the arm64 cross toolchain from Debian's packages: the aarch64 gcc (cgo's CC
# for GOARCH=arm64), the arm64 libc headers/libraries it links against, and
# qemu-user-static to run the result. Idempotent: apt runs only when a tool is missing.
set -euo pipefail

declare -A NEED=(
    [gcc-aarch64-linux-gnu]=/usr/bin/aarch64-linux-gnu-gcc
    [libc6-dev-arm64-cross]=/usr/aarch64-linux-gnu/include/stdio.h
    [qemu-user-static]=/usr/bin/qemu-aarch64-static
)

missing=()
for pkg in "${!NEED[@]}"; do
    [[ -e ${NEED[$pkg]} ]] || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "tests/arm64/provision.sh: missing ${missing[*]}; run it as root to install them" >&2
    exit 1
fi
echo "tests/arm64/provision.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
