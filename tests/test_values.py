"""graphc.values: the point's text form, the point check, JSON numbers; graph.names from bindings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graphc.check import check
from graphc.errors import EvaluationError, PointError
from graphc.parse import parse
from graphc.values import check_point, json_number, parse_array, parse_assignments


def test_assignments_read_numbers_expressions_lists_and_npy_files(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.arange(3))
    point = parse_assignments(["a=pi/4, b=[[1, 2], [3, 4]]", f"c=@{path}", "d=atan2(1,1)"])
    assert point["a"] == math.pi / 4 and point["d"] == math.pi / 4
    assert point["b"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert point["c"].dtype == np.float64 and point["c"].tolist() == [0.0, 1.0, 2.0]


def test_lists_accept_what_float_accepts_and_nothing_else():
    assert parse_array("[ 1e3 , -inf, nan ]").tolist()[:2] == [1000.0, -math.inf]
    assert parse_array("[]").shape == (0,)
    with pytest.raises(PointError, match=r"'pi' is not a number \(column 2\)"):
        parse_array("[pi]")
    with pytest.raises(PointError, match=r"expected a number or '\[', got '\]' \(column 4\)"):
        parse_array("[1,]")


def test_the_option_names_where_a_bad_pair_came_from():
    with pytest.raises(PointError, match="^at expects name=value pairs"):
        parse_assignments(["x"], "at")
    with pytest.raises(PointError, match="^--at: variable 'x' is given twice"):
        parse_assignments(["x=1,x=[2]"])


def test_one_check_point_for_the_library_and_the_command_line():
    assert check_point(["x", "y"], {"x": 1, "y": np.array([1, 2])})["y"].dtype == np.float64
    with pytest.raises(EvaluationError, match=r"^missing value for y$"):
        check_point(["x", "y"], {"x": 1})
    with pytest.raises(EvaluationError, match=r"^missing value for y: give it with --at y=\.\.\.$"):
        check_point(["x", "y"], {"x": 1}, "--at")
    with pytest.raises(EvaluationError, match=r"^--at: unknown variable 'z' \(the variables are: x\)$"):
        check_point(["x"], {"x": 1, "z": 2}, "--at")
    with pytest.raises(EvaluationError, match="variable 'x': expected a number, got str"):
        check_point(["x"], {"x": "one"})


def test_check_reads_text_and_refuses_arrays():
    assert check("x*y", at="x=1,y=2").value == [2.0]
    with pytest.raises(EvaluationError, match="check evaluates at one point: variable 'x' is an array"):
        check("x*y", at={"x": np.array([1.0, 2.0]), "y": 1.0})


def test_json_numbers():
    assert [json_number(v) for v in (1, -0.5, math.inf, -math.inf, math.nan)] == [
        1.0,
        -0.5,
        "inf",
        "-inf",
        "nan",
    ]
    assert json_number(np.float32(2.5)) == 2.5
    assert json_number(np.array([[1, 2], [3, 4]])) == [[1.0, 2.0], [3.0, 4.0]]
    assert json_number(np.array([math.inf, 0.0])) == ["inf", 0.0]


def test_graph_names_keep_binding_names_through_pruning_and_copies():
    graph = parse("t = x + 1; u = x*y; unused = exp(y); h = tanh(u); h + t")
    named = {graph.names[node]: node for node in graph.names}
    assert set(named) == {"t", "u", "h"}  # unused is pruned away with its node
    assert graph.op(named["h"]) == "tanh" and graph.args(named["h"]) == (named["u"],)
    assert graph.copy().names == graph.names
    assert parse("x*y").names == {}
