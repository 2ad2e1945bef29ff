"""NaN provenance: graphc.check and `graphc check` name the first node that produced nan or inf."""

from __future__ import annotations

import json
import math

import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.check import check
from graphc.errors import EvaluationError, GraphcError

AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]


@pytest.mark.parametrize("method", ["dp", "forward", "paths"])
def test_sqrt_at_the_origin_names_the_local_derivative_of_sqrt(method):
    result = check("sqrt(x^2 + y^2)", at={"x": 0, "y": 0}, method=method)
    assert not result.finite
    assert result.value == [0.0]
    assert all(math.isnan(v) for v in result.gradient.values())
    assert result.forward == []  # the function itself is finite: 0
    # (The exact nodes depend on the op table's sqrt rule; what must hold is what they mean.)
    first = result.backward[0]
    assert (first.pass_name, first.value) == ("backward", math.inf)
    assert first.role.startswith("the local derivative of sqrt(x**2 + y**2) [sqrt]")
    assert all(math.isfinite(o.value) for o in first.operands)
    assert first.text in str(result)
    # then 0 * inf makes the nan of each partial: a nan source with no nan operand
    nans = [s for s in result.backward if math.isnan(s.value)]
    assert nans and all(not any(math.isnan(o.value) for o in s.operands) for s in nans)
    assert {s.role.split("; ")[-1] for s in nans} >= {"the output ∂f/∂x", "the output ∂f/∂y"}


def test_dp_relates_backward_nodes_to_adjoints():
    result = check("sqrt(x^2 + y^2)", at={"x": 0, "y": 0})
    assert "the adjoint ∂f/∂(x**2 + y**2)" in result.backward[0].role
    assert any("the adjoint ∂f/∂x" in s.role for s in result.backward)


def test_forward_mode_relates_backward_nodes_to_tangents():
    result = check("sqrt(x^2 + y^2)", at={"x": 0, "y": 0}, method="forward")
    assert "the tangent" in " ".join(s.role or "" for s in result.backward)


def test_symbolic_method_reports_the_node_without_relating_it():
    # SymPy's derivative x/sqrt(x**2 + y**2) is 0/0 at the origin: named, but SymPy's nodes are not
    # local derivatives or adjoints of the function's nodes, so no such role is claimed
    result = check("sqrt(x^2 + y^2)", at={"x": 0, "y": 0}, method="symbolic")
    assert result.backward and all(math.isnan(s.value) or math.isinf(s.value) for s in result.backward)
    roles = " ".join(s.role or "" for s in result.backward)
    assert "local derivative" not in roles and "adjoint" not in roles and "tangent" not in roles


@pytest.mark.parametrize("backend", AVAILABLE)
def test_sqrt_at_0_1_is_exact_and_finite(backend):
    result = check("sqrt(x^2 + y^2)", at="x=0,y=1", backend=backend)
    assert result.finite
    assert result.value == [1.0]
    assert result.gradient == {"∂f/∂x": 0.0, "∂f/∂y": 1.0}
    assert (result.forward, result.backward) == ([], [])


def test_forward_pass_source_and_order():
    result = check("log(x)*y + 1/x", at={"x": 0, "y": 1})
    assert [(s.op, s.value) for s in result.forward[:2]] == [("log", -math.inf), ("div", math.inf)]
    # -inf + inf: a nan from non-nan operands is a source too
    assert result.forward[2].op == "add" and math.isnan(result.forward[2].value)
    assert result.forward_count == 3
    assert result.forward[0].text == "log(x)" and result.forward[0].role is None


def test_propagated_values_are_not_sources():
    result = check("exp(exp(x)) * 2 + 1", at={"x": 10})
    assert [s.text for s in result.forward] == ["exp(exp(x))"]
    assert result.forward[0].operands[0].value == pytest.approx(math.exp(10))


def test_a_folded_constant_is_named():
    result = check("log(0) + x", at={"x": 1})
    assert result.forward[0].op == "const" and result.forward[0].value == -math.inf
    assert "constant" in result.forward[0].role


def test_an_infinite_input_is_named_and_so_are_its_consequences():
    result = check("x - x", at={"x": math.inf})
    assert [(s.op, s.value) for s in result.forward[:1]] == [("var", math.inf)]
    assert result.forward[0].role == "an input: the point gives it this value"
    assert result.forward[1].op == "sub" and math.isnan(result.forward[1].value)


def test_wrt_and_several_outputs():
    result = check("x*y, log(y)", at={"x": 1, "y": 0}, wrt="x")
    assert list(result.values) == ["f1", "f2", "∂f1/∂x", "∂f2/∂x"]
    assert [s.op for s in result.forward] == ["log"]
    assert result.backward == []


def test_bad_points_raise_graphc_errors():
    with pytest.raises(EvaluationError, match="missing value for y"):
        check("x*y", at={"x": 1})
    with pytest.raises(EvaluationError, match="unknown variable 'z'"):
        check("x*y", at={"x": 1, "y": 2, "z": 3})
    with pytest.raises(EvaluationError, match="expected a number"):
        check("x", at={"x": "one"})
    with pytest.raises(GraphcError):
        check("x", at={"x": 1}, method="nope")
    with pytest.raises(GraphcError):
        check("x", at={"x": 1}, backend="nope")


def test_exported():
    assert graphc.check is check


def test_cli_reports_the_node_and_pass(cli):
    code, out, err = cli("check", "sqrt(x^2 + y^2)", "--at", "x=0,y=0")
    assert (code, err) == (1, "")
    assert "forward pass (the function): all finite" in out
    assert "backward pass (the partials): non-finite values arise at" in out
    assert "\n  inf at node " in out
    assert "the local derivative of sqrt(x**2 + y**2) [sqrt]" in out


def test_cli_exact_gradient_at_0_1(cli):
    code, out, err = cli("check", "sqrt(x^2 + y^2)", "--at", "x=0,y=1", "--json")
    assert (code, err) == (0, "")
    record = json.loads(out)
    assert record["gradient"] == {"∂f/∂x": 0.0, "∂f/∂y": 1.0}
    assert record["finite"] is True and record["backward"] == []


def test_cli_json(cli):
    code, out, _ = cli("check", "sqrt(x^2 + y^2)", "--at", "x=0,y=0", "--json")
    assert code == 1
    record = json.loads(out)
    assert record["expr"] == "sqrt(x^2 + y^2)" and record["finite"] is False
    assert record["gradient"] == {"∂f/∂x": "nan", "∂f/∂y": "nan"}
    assert record["backward"][0]["value"] == "inf" and record["backward"][0]["pass"] == "backward"
    assert record["backward_sources"] == len(record["backward"]) >= 2 and record["forward_sources"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check", "x*y", "--at", "x=1"], "missing value for y"),
        (["check", "x*y"], "missing value for x, y"),
        (["check", "x*", "--at", "x=1"], "expected an operand"),
        (["check", "x", "--at", "x=1", "--method", "nope"], "invalid choice"),
    ],
)
def test_cli_bad_input_exits_2(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert err.startswith("graphc: error:") and message in err


def test_an_intermediate_node_of_a_rule_is_attributed_to_it():
    result = check("acos(x)", at={"x": 2})
    assert math.isnan(result.forward[0].value) and result.forward[0].op == "acos"
    first = result.backward[0]
    assert math.isnan(first.value) and first.op == "sqrt"
    assert first.role.startswith("built for the local derivative of acos(x) [acos]")


def test_temporaries_never_take_the_name_of_a_users_variable(cli):
    # the failing node's formula uses y only; its shared y*y gets a temporary, never t1: the program's input
    code, out, _ = cli("check", "u = y*y; log(u*u) + t1", "--at", "t1=1,y=0")
    assert code == 1
    assert "[log]: t2 = y*y; log(t2*t2)" in out
    assert "t1 = y*y" not in out
