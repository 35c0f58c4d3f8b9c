"""hclfile: python-hcl2 output -> the generic map Nomad's job parser stores."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nomad_ctr.localrun.hclfile import HclError, evaluate_body, parse_text

pytestmark = pytest.mark.unit


def generic(text: str, variables: dict[str, str] | None = None) -> dict:
    return evaluate_body(parse_text(text), variables or {})


def test_literals_keep_their_kinds() -> None:
    got = generic('s = "x"\nn = 5\nneg = -3\nf = 1.5\nb = true\nz = null\nl = ["a", 1]\n')
    assert got == {
        "s": "x",
        "n": 5,
        "neg": -3,
        "f": Decimal("1.5"),
        "b": True,
        "z": None,
        "l": ["a", 1],
    }


def test_non_binary_decimals_stay_exact() -> None:
    # cty keeps 0.1 exact (and sends it as the string "0.1"); a float would not
    assert generic("x = 0.1\n")["x"] == Decimal("0.1")
    assert generic("x = 1e3\n")["x"] == 1000


def test_string_escapes_and_template_escapes() -> None:
    got = generic(r'a = "tab\there \"q\" \u00e9"' + "\n" + 'b = "$${NOT} %%{x}"\n')
    assert got["a"] == 'tab\there "q" \u00e9'
    assert got["b"] == "${NOT} %{x}"


def test_heredocs_keep_the_last_newline_and_their_backslashes() -> None:
    got = generic(
        'a = <<EOF\nline1 \\n "q" ${X}\n  line2\nEOF\nb = <<-EOT\n    x\n      y\n    EOT\n',
        {"X": "1"},
    )
    assert got["a"] == 'line1 \\n "q" 1\n  line2\n'
    assert got["b"] == "x\n  y\n"


def test_interpolation_from_variables() -> None:
    got = generic(
        'a = "${NOMAD_TASK_DIR}/conf"\nb = NOMAD_ALLOC_ID\nc = "${env.HOME}-${meta.k}"\n',
        {"NOMAD_TASK_DIR": "/local", "NOMAD_ALLOC_ID": "abc", "env.HOME": "/root", "meta.k": "v"},
    )
    assert got == {"a": "/local/conf", "b": "abc", "c": "/root-v"}


def test_unknown_variable_is_named_with_its_attribute() -> None:
    with pytest.raises(HclError, match=r"cfg\.x: unknown variable 'NOPE'"):
        evaluate_body(parse_text('x = "${NOPE}"\n'), {}, "cfg")


@pytest.mark.parametrize("expr", ['upper("x")', "1 + 2", '"%{ if true }x%{ endif }"'])
def test_unsupported_expressions_are_refused(expr: str) -> None:
    with pytest.raises(HclError, match=r"^x: .*not supported"):
        generic(f"x = {expr}\n")


def test_blocks_become_lists_of_maps_nested_by_label() -> None:
    got = generic('m { a = 1 }\nm { a = 2 }\nport "http" "tcp" { to = 80 }\n')
    assert got == {"m": [{"a": 1}, {"a": 2}], "port": [{"http": {"tcp": {"to": 80}}}]}


def test_object_attribute_keys_are_unquoted() -> None:
    assert generic('s = { "net.core.x" = "1", y = 2 }\n') == {"s": {"net.core.x": "1", "y": 2}}


def test_list_of_objects_is_not_mistaken_for_blocks() -> None:
    assert generic("x = [{ a = 1 }]\n") == {"x": [{"a": 1}]}


def test_invalid_hcl_names_the_file() -> None:
    with pytest.raises(HclError, match=r"^job\.nomad: not valid HCL"):
        parse_text("job {", "job.nomad")
