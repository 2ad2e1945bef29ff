"""graphc paths: exact path counts per input, and below a limit the paths with their products."""

from __future__ import annotations

import json

import pytest

from graphc.diff.paths import list_paths
from graphc.parse import parse

TOWER = "a1 = w*w; a2 = a1*a1; a3 = a2*a2; a4 = a3*a3; a4*a4"


def test_counts_and_the_paths_of_the_lecture_example(cli):
    code, out, err = cli("paths", "sin(x*y) + exp(x)")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "x  2 paths",
        "y  1 path",
        "x: x → exp → add",
        "    factors (exp(x)) · (1) = exp(x)",
        "x: x → mul → sin → add",
        "    factors (y) · (cos(x*y)) · (1) = y*cos(x*y)",
        "y: y → mul → sin → add",
        "    factors (x) · (cos(x*y)) · (1) = x*cos(x*y)",
    ]


def test_the_products_of_a_variables_paths_sum_to_its_partial(cli):
    _, out, _ = cli("paths", "sin(x*y) + exp(x)", "--json")
    record = json.loads(out)
    products = [p["product"] for p in record["list"] if p["input"] == "x"]
    assert sorted(products) == ["exp(x)", "y*cos(x*y)"]  # ∂f/∂x = exp(x) + y*cos(x*y)


def test_a_repeated_operand_gives_one_path_per_slot_and_names_bindings(cli):
    code, out, _ = cli("paths", "a1 = w*w; a1*a1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "w  4 paths"
    routes = sorted(line for line in lines[1:] if line.startswith("w:"))
    assert routes == [f"w: w →[{i}] a1 →[{j}] mul" for i in (1, 2) for j in (1, 2)]
    assert lines.count("    factors (w) · (w*w) = w**3") == 4


def test_above_the_limit_it_prints_counts_and_says_why_there_is_no_list(cli):
    code, out, _ = cli("paths", TOWER)
    assert code == 0
    assert out.splitlines() == [
        "w  32 paths",
        "32 paths in all, more than --list 20: not listed (raise --list to see them)",
    ]
    _, out, _ = cli("paths", TOWER, "--list", "40")
    assert out.count("w: w →") == 32
    _, out, _ = cli("paths", TOWER, "--list", "40", "--max-paths", "10")
    assert out.splitlines()[1] == "32 paths in all, more than --max-paths 10: not listed"


def test_json(cli):
    code, out, err = cli("paths", "x*y, x", "--wrt", "x", "--json")
    assert (code, err) == (0, "")
    record = json.loads(out)
    assert (record["paths"], record["total"], record["listed"]) == ({"x": 2}, 2, True)
    assert record["list"] == [
        {
            "input": "x",
            "output": "f1",
            "nodes": ["x", "mul"],
            "operand": [None],
            "factors": ["y"],
            "product": "y",
        },
        {"input": "x", "output": "f2", "nodes": ["x"], "operand": [], "factors": [], "product": "1"},
    ]
    _, out, _ = cli("paths", TOWER, "--json")
    record = json.loads(out)
    assert (record["paths"], record["listed"]) == ({"w": 32}, False)
    assert "list" not in record and "more than --list 20" in record["reason"]


def test_an_edge_without_a_derivative_carries_no_path(cli):
    """sign' is absent (not a 0 node): the path through it is neither counted nor listed, as the
    paths method builds no term for it; a where's selected branch is a path, its condition not."""
    _, found = list_paths(parse("sign(x)*y"), "x")
    assert found == []
    _, out, _ = cli("paths", "sign(x)*y", "--wrt", "x")
    assert out.splitlines() == ["x  0 paths"]
    _, found = list_paths(parse("where(x > 0, x*y, 0)"), "x")
    assert [len(path.nodes) for path in found] == [3]  # x → mul → where, not x → gt → where
    _, out, _ = cli("paths", "where(x > 0, x*y, 0)", "--wrt", "x")
    assert out.splitlines()[0] == "x  1 path"


@pytest.mark.parametrize(
    ("expr", "argv"),
    [("x*y", ["--list", "0"]), ("x*y", ["--max-paths", "x"]), ("x*y", ["--wrt", "q"]), ("2*pi", [])],
)
def test_bad_input_is_a_one_line_error(cli, expr, argv):
    code, out, err = cli("paths", expr, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("graphc: error: ") and err.count("\n") == 1
