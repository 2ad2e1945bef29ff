"""Implicit differentiation: graphc.implicit, implicit_graph and ``graphc implicit``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.implicit import SingularError, implicit_graph
from graphc.printing import formula

XS = np.linspace(-0.95, 0.95, 39)


def test_circle_formula_is_minus_x_over_z():
    d = implicit_graph(graphc.parse("x^2 + z^2 - 1"), "z")
    assert d.output_names == ["dz/dx", "∂f/∂z"]
    assert d.info["solve_for"] == ["z"] and d.info["wrt"] == ["x"]
    assert formula(d, d.outputs[0]) == "-x/z"


@pytest.mark.parametrize("branch", [1.0, -1.0])
def test_circle_agrees_with_the_explicit_solution(branch):
    # On z = ±sqrt(1 - x^2), dz/dx from g = 0 equals the derivative of the explicit solution.
    z = branch * np.sqrt(1 - XS**2)
    (implicit_dz,) = graphc.implicit("x^2 + z^2 - 1", solve_for="z")(x=XS, z=z)
    (explicit_dz,) = graphc.grad(f"{branch}*sqrt(1 - x^2)")(XS)
    assert implicit_dz.shape == XS.shape
    np.testing.assert_allclose(implicit_dz, explicit_dz, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(implicit_dz, -XS / z, rtol=1e-15)


@pytest.mark.parametrize("method", list(graphc.METHODS))
def test_every_method_gives_the_same_derivative(method):
    kernel = graphc.implicit("x^2 + z^2 - 1", "z", method=method)
    tolerance = 1e-8 if method == "numeric" else 1e-15
    np.testing.assert_allclose(kernel(x=0.6, z=0.8)[0], -0.75, rtol=tolerance)


def test_several_inputs_against_an_explicit_solution():
    # exp(z) = x*y, so z = log(x) + log(y): dz/dx = 1/x, dz/dy = 1/y.
    kernel = graphc.implicit("exp(z) - x*y", solve_for="z")
    assert kernel.wrt == ("x", "y") and kernel.variables == ("x", "y", "z")
    x, y = np.array([0.5, 2.0, 3.0]), np.array([[1.0], [4.0]])
    dzdx, dzdy = kernel(x=x, y=y, z=np.log(x * y))
    assert dzdx.shape == dzdy.shape == (2, 3)
    np.testing.assert_allclose(dzdx, np.broadcast_to(1 / x, (2, 3)), rtol=1e-14)
    np.testing.assert_allclose(dzdy, np.broadcast_to(1 / y, (2, 3)), rtol=1e-14)


def test_wrt_chooses_the_inputs_and_takes_sympy():
    x, y, z = sympy.symbols("x y z")
    kernel = graphc.implicit(sympy.exp(z) - x * y, solve_for="z", wrt="y")
    assert kernel.wrt == ("y",)
    np.testing.assert_allclose(kernel(x=2.0, y=4.0, z=np.log(8.0))[0], 0.25, rtol=1e-14)


def test_singular_point_is_a_clear_error():
    kernel = graphc.implicit("x^2 + z^2 - 1", solve_for="z")
    with pytest.raises(SingularError, match=r"∂f/∂z is 0 at this point: .*z is not locally a function of x"):
        kernel(x=1.0, z=0.0)
    with pytest.raises(SingularError, match=r"at batch index \(2,\)"):
        kernel(x=np.array([0.6, -0.6, 1.0]), z=np.array([0.8, 0.8, 0.0]))
    assert issubclass(SingularError, graphc.GraphcError)


def test_an_equation_without_the_unknown_is_refused_when_built():
    with pytest.raises(SingularError, match="does not depend on z"):
        graphc.implicit("u = z*0; x^2 + u", solve_for="z")


def test_outside_the_domain_gives_nan_not_an_error():
    (value,) = graphc.implicit("sqrt(x) + z", solve_for="z")(x=-1.0, z=0.0)
    assert np.isnan(value)


def test_system_against_its_explicit_solution():
    # y + z = 3x and y*z = 2x^2: the branch y = x, z = 2x has dy/dx = 1, dz/dx = 2.
    kernel = graphc.implicit("y + z - 3*x, y*z - 2*x^2", solve_for=["y", "z"])
    assert kernel.wrt == ("x",)
    x = np.linspace(0.5, 2.0, 5)
    jac = kernel(x=x, y=x, z=2 * x)
    assert jac.shape == (5, 2, 1)
    np.testing.assert_allclose(jac[..., 0], np.broadcast_to([1.0, 2.0], (5, 2)), rtol=1e-13)
    # the other branch, y = 2x and z = x, has dy/dx = 2, dz/dx = 1
    np.testing.assert_allclose(kernel(x=1.5, y=3.0, z=1.5)[:, 0], [2.0, 1.0], rtol=1e-13)


def test_system_with_two_inputs_against_differentiating_the_solution():
    # y = a*b and z = a + y: dy/da = b, dy/db = a, dz/da = 1 + b, dz/db = a.
    kernel = graphc.implicit("y - a*b, z - a - y", solve_for="y,z")
    assert kernel.wrt == ("a", "b")
    a, b = 1.5, -2.0
    jac = kernel(a=a, b=b, y=a * b, z=a + a * b)
    explicit = graphc.jacobian("a*b, a + a*b")(a, b)
    np.testing.assert_allclose(jac, explicit, rtol=1e-15)
    assert jac.tolist() == [[b, a], [1 + b, a]]


def test_singular_system_is_a_clear_error():
    # y + z = 2x and y*z = x^2 have the double root y = z = x, where ∂g/∂(y, z) = [[1, 1], [z, y]] is singular.
    kernel = graphc.implicit("y + z - 2*x, y*z - x^2", solve_for="y,z")
    with pytest.raises(SingularError, match=r"∂g/∂\(y, z\) is singular at this point"):
        kernel(x=1.0, y=1.0, z=1.0)
    with pytest.raises(SingularError, match=r"at batch index \(1,\)"):
        kernel(x=np.array([1.0, 2.0]), y=np.array([0.5, 2.0]), z=np.array([1.5, 2.0]))


def test_system_outside_the_domain_gives_nan():
    kernel = graphc.implicit("y - sqrt(x), z - y", solve_for="y,z")
    jac = kernel(x=np.array([-1.0, 4.0]), y=np.array([0.0, 2.0]), z=np.array([0.0, 2.0]))
    assert np.isnan(jac[0]).all()
    np.testing.assert_allclose(jac[1, :, 0], [0.25, 0.25], rtol=1e-15)


@pytest.mark.parametrize(
    ("expr", "solve_for", "wrt", "message"),
    [
        ("x^2 + z^2 - 1, x - z", "z", None, "2 equations in 1 unknown"),
        ("x + y + z", "y,z", None, "1 equation in 2 unknowns"),
        ("x^2 + z^2 - 1", "z", "x,z", "'z' is both an unknown"),
        ("z^2 - 1", "z", None, "no variable besides z"),
        ("x^2 + z^2 - 1", "q", None, "unknown variable 'q'"),
        ("x^2 + z^2 - 1", "z,z", None, "names variable 'z' twice"),
        ("x^2 + z^2 - 1", "", None, "solve_for must name"),
    ],
)
def test_errors(expr, solve_for, wrt, message):
    with pytest.raises(graphc.GraphcError, match=message):
        graphc.implicit(expr, solve_for, wrt)


def test_cli_prints_the_formula(cli):
    status, out, err = cli("implicit", "x^2 + z^2 - 1", "--solve-for", "z")
    assert (status, out, err) == (0, "dz/dx = -x/z\n", "")


def test_cli_at_a_point(cli):
    status, out, _ = cli("implicit", "x^2 + z^2 - 1", "--solve-for", "z", "--at", "x=0.6,z=0.8")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "f = 0.0"
    assert lines[1].startswith("dz/dx = ") and float(lines[1].split("= ")[1]) == pytest.approx(
        -0.75, rel=1e-15
    )


def test_cli_json(cli):
    status, out, _ = cli(
        "implicit", "x^2 + z^2 - 1", "--solve-for", "z", "--wrt", "x", "--at", "x=0.6,z=0.8", "--json"
    )
    record = json.loads(out)
    assert status == 0
    assert record["solve_for"] == ["z"] and record["wrt"] == ["x"] and record["value"] == 0.0
    assert record["derivative"]["dz/dx"] == pytest.approx(-0.75, rel=1e-15)
    status, out, _ = cli("implicit", "x^2 + z^2 - 1", "--solve-for", "z", "--json")
    assert json.loads(out)["derivative"] == {"dz/dx": "-x/z"}


def test_cli_system(cli):
    argv = ["implicit", "y + z - 3*x, y*z - 2*x^2", "--solve-for", "y,z"]
    status, out, _ = cli(*argv, "--at", "x=1,y=1,z=2")
    assert status == 0
    assert out.splitlines()[:2] == ["f1 = 0.0", "f2 = 0.0"]
    values = dict(line.split(" = ") for line in out.splitlines()[2:])
    assert float(values["dy/dx"]) == pytest.approx(1.0) and float(values["dz/dx"]) == pytest.approx(2.0)
    status, out, _ = cli(*argv)
    assert status == 0 and out.startswith("# a system")
    assert "∂f2/∂y = z" in out.splitlines()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["x^2 + z^2 - 1", "--solve-for", "z", "--at", "x=1,z=0"], "∂f/∂z is 0 at this point"),
        (["x^2 + z^2 - 1", "--solve-for", "q"], "unknown variable 'q'"),
        (["x^2 + z^2 - 1"], "--solve-for"),
        (["x^2 + z^2 - 1", "--solve-for", "z", "--at", "x=0.6"], "missing value for z"),
        (["x + z, x - z", "--solve-for", "z"], "2 equations in 1 unknown"),
        (["x^2 + z^2 - ", "--solve-for", "z"], ""),
    ],
)
def test_cli_errors_exit_2(cli, argv, message):
    status, out, err = cli("implicit", *argv)
    assert status == 2 and out == ""
    assert err.startswith("graphc: error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("backend", sorted(set(BACKENDS) - set(UNAVAILABLE)))
def test_every_available_backend(backend):
    (circle,) = graphc.implicit("x^2 + z^2 - 1", "z", backend=backend)(x=0.6, z=0.8)
    system = graphc.implicit("y + z - 3*x, y*z - 2*x^2", "y,z", backend=backend)(x=1.0, y=1.0, z=2.0)
    assert circle == pytest.approx(-0.75, rel=1e-15)
    np.testing.assert_allclose(system, [[1.0], [2.0]], rtol=1e-14)


def test_cli_system_json_lists_the_blocks(cli):
    status, out, _ = cli("implicit", "y + z - 3*x, y*z - 2*x^2", "--solve-for", "y,z", "--json")
    assert status == 0
    assert json.loads(out)["partials"] == {
        "∂f1/∂y": "1",
        "∂f1/∂z": "1",
        "∂f2/∂y": "z",
        "∂f2/∂z": "y",
        "∂f1/∂x": "-3",
        "∂f2/∂x": "-4*x",
    }


def test_cli_expression_may_start_with_a_minus(cli):
    assert cli("implicit", "-x^2 - z^2 + 1", "--solve-for", "z") == (0, "dz/dx = -x/z\n", "")
