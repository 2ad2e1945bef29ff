"""Differentiation, tested by agreement: every method against every other and against SymPy.

The corpus is data (a formula, an independently written SymPy twin, a few points); one test runs
it for every method. The rest checks the API's shapes and orders, the non-smooth policy, exact
path counts, operation counts (deterministic cost, never timings), scale and the errors.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import sympy
from test_hypothesis import sympy_value

import graphc
from graphc.ops import OPS

EXACT = [m for m in graphc.METHODS if m != "numeric"]
SMOOTH_METHODS = ["dp", "forward", "paths", "symbolic"]  # the methods that compose for 2nd order
TOL: dict[str, tuple[float, float]] = {"numeric": (1e-5, 1e-9)}  # (relative, absolute floor)
EXACT_TOL = (1e-9, 1e-12)


def sym(name: str) -> Any:
    return sympy.Symbol(name, real=True)


x, y, z, w = (sym(n) for n in "xyzw")
x1, x2, x3, x4 = (sym(f"x{i}") for i in range(1, 5))


def assert_close(got: float, expected: float, method: str, what: str) -> None:
    rel, floor = TOL.get(method, EXACT_TOL)
    assert math.isfinite(got), f"{method}: {what} = {got!r}, expected {expected!r}"
    assert math.isclose(got, expected, rel_tol=rel, abs_tol=floor), (
        f"{method}: {what} = {got!r}, expected {expected!r} (rel {rel}, abs {floor})"
    )


def exact(expr: Any, point: dict[str, float]) -> float:
    """A SymPy expression at ``point`` to 30 digits, as a float (it must be a finite real there)."""
    value = sympy_value(sympy.sympify(expr), point)
    assert value is not None, f"the oracle {expr} is not a finite real at {point}"
    return value


def exact_gradient(twin: Any, names: list[str], point: dict[str, float]) -> list[float]:
    return [exact(sympy.diff(twin, sym(name)), point) for name in names]


# --- the corpus: hand-picked formulas with SymPy twins written independently ------------------------


@dataclass(frozen=True)
class Case:
    text: str
    twin: Any  # the same function written directly in SymPy (never converted from the text)
    points: tuple[dict[str, float], ...]


def sigmoid(u: Any) -> Any:
    return 1 / (1 + sympy.exp(-u))


def rosenbrock(n: int) -> tuple[str, Any]:
    names = [f"x{i}" for i in range(1, n + 1)]
    s = [sym(name) for name in names]
    text = " + ".join(f"(1 - {a})^2 + 100*({b} - {a}^2)^2" for a, b in itertools.pairwise(names))
    twin = sum((1 - a) ** 2 + 100 * (b - a**2) ** 2 for a, b in itertools.pairwise(s))
    return text, twin


ROSENBROCK4 = rosenbrock(4)

CORPUS: dict[str, Case] = {
    "cos-w2": Case("cos(w^2)", sympy.cos(w**2), ({"w": 0.3}, {"w": -1.7}, {"w": 2.5})),
    "sin-plus-cos": Case(
        "sin(w^2) + cos(w^2)", sympy.sin(w**2) + sympy.cos(w**2), ({"w": 0.3}, {"w": -1.1}, {"w": 2.2})
    ),
    "x1x2-exp-sin": Case(
        "x1*x2 + exp(x1*x2) - sin(x2)",
        x1 * x2 + sympy.exp(x1 * x2) - sympy.sin(x2),
        ({"x1": 0.5, "x2": 1.5}, {"x1": -1.2, "x2": 0.7}, {"x1": 2.0, "x2": -0.4}),
    ),
    "rosenbrock": Case(
        "(1 - x)^2 + 100*(y - x^2)^2",
        (1 - x) ** 2 + 100 * (y - x**2) ** 2,
        ({"x": -1.2, "y": 1.0}, {"x": 0.5, "y": 0.3}, {"x": 1.3, "y": 1.7}),
    ),
    "rosenbrock4": Case(
        ROSENBROCK4[0],
        ROSENBROCK4[1],
        ({"x1": -1.2, "x2": 1.0, "x3": 0.5, "x4": 0.8}, {"x1": 0.9, "x2": 0.81, "x3": 0.7, "x4": -0.3}),
    ),
    "himmelblau": Case(
        "(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
        ({"x": 3.1, "y": 1.9}, {"x": -2.7, "y": 3.2}, {"x": 0.1, "y": -0.4}),
    ),
    "nested-sigmoids": Case(
        "sigmoid(2*sigmoid(sigmoid(x*y) - z) + x)",
        sigmoid(2 * sigmoid(sigmoid(x * y) - z) + x),
        ({"x": 0.4, "y": -1.3, "z": 0.8}, {"x": -2.0, "y": 0.5, "z": -1.0}),
    ),
    "program-with-bindings": Case(
        "u = x*y\nv = sin(u) + u*u  # u is shared\nt = exp(-v) / (1 + z^2); t*u + v*log(1 + z^2)",
        (sympy.exp(-(sympy.sin(x * y) + (x * y) ** 2)) / (1 + z**2)) * x * y
        + (sympy.sin(x * y) + (x * y) ** 2) * sympy.log(1 + z**2),
        ({"x": 0.7, "y": -0.4, "z": 1.5}, {"x": -1.1, "y": 0.9, "z": -0.3}),
    ),
    "several-variables-shared": Case(
        "a = x + y*z; b = a*a; sqrt(b + 1) * atan(a) - b/(z*z + 1)",
        sympy.sqrt((x + y * z) ** 2 + 1) * sympy.atan(x + y * z) - (x + y * z) ** 2 / (z**2 + 1),
        ({"x": 0.3, "y": 1.2, "z": -0.8}, {"x": -1.5, "y": 0.2, "z": 2.1}),
    ),
}


# Each op's SymPy twin, written here from its mathematical definition (not read from the op table),
# and where it has a kink: points are sampled at least KINK_GAP away from it.
def _is_zero(u: Any) -> Any:
    """1 where ``u`` is 0, else 0, as a product of two Heaviside steps (1 at 0)."""
    return sympy.Heaviside(u, 1) * sympy.Heaviside(-u, 1)


TWINS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": lambda a: -a,
    "pow": lambda a, b: a**b,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "sign": sympy.sign,
    "sigmoid": sigmoid,
    "relu": lambda a: sympy.Max(a, 0),
    "softplus": lambda a: sympy.log(1 + sympy.exp(a)),
    "max": sympy.Max,
    "min": sympy.Min,
    "atan2": sympy.atan2,
    "hypot": lambda a, b: sympy.sqrt(a**2 + b**2),
    "erf": sympy.erf,
    "erfc": sympy.erfc,
    "log10": lambda a: sympy.log(a) / sympy.log(10),
    "log2": lambda a: sympy.log(a) / sympy.log(2),
    "exp2": lambda a: 2**a,
    "expm1": lambda a: sympy.exp(a) - 1,
    "log1p": lambda a: sympy.log(1 + a),
    "cbrt": lambda a: sympy.real_root(a, 3),
    "asinh": sympy.asinh,
    "acosh": sympy.acosh,
    "atanh": sympy.atanh,
    # steps and comparisons: flat away from their jumps, written with Heaviside steps, not Piecewise:
    # a Piecewise whose condition holds another Piecewise makes SymPy solve the condition as an
    # inequality (ITE rewrite), which raises TypeError on erfc(...) <= 1/2 (found by hypothesis in CI)
    "floor": lambda a: -4 + sum(sympy.Heaviside(a - k, 1) for k in range(-3, 5)),
    "ceil": lambda a: -3 + sum(sympy.Heaviside(a - k, 0) for k in range(-3, 5)),
    "lt": lambda a, b: sympy.Heaviside(b - a, 0),
    "le": lambda a, b: sympy.Heaviside(b - a, 1),
    "gt": lambda a, b: sympy.Heaviside(a - b, 0),
    "ge": lambda a, b: sympy.Heaviside(a - b, 1),
    "eq": lambda a, b: _is_zero(a - b),
    "ne": lambda a, b: 1 - _is_zero(a - b),
    "and": lambda a, b: (1 - _is_zero(a)) * (1 - _is_zero(b)),
    "or": lambda a, b: 1 - _is_zero(a) * _is_zero(b),
    "not": lambda a: _is_zero(a),
    "where": lambda c, a, b: b + (a - b) * (1 - _is_zero(c)),
}
KINKS: dict[str, Callable[..., float]] = {
    "abs": lambda a: a,
    "sign": lambda a: a,
    "relu": lambda a: a,
    "max": lambda a, b: a - b,
    "min": lambda a, b: a - b,
    "floor": lambda a: a - round(a),
    "ceil": lambda a: a - round(a),
    **dict.fromkeys(["lt", "le", "gt", "ge", "eq", "ne"], lambda a, b: a - b),
    **dict.fromkeys(["and", "or"], lambda a, b: min(abs(a), abs(b))),
    "not": lambda a: a,
    "where": lambda c, a, b: c,
}
KINK_GAP = 0.1


def op_call(name: str, operands: list[str]) -> str:
    """The op applied to ``operands`` as program text, written the way the op table says."""
    op = OPS[name]
    if op.arity == 1 and op.infix is not None:  # -x, not x
        return f"{op.infix}{' ' * op.infix.isalpha()}{operands[0]}"
    if op.function is not None:
        return f"{op.function}({', '.join(operands)})"
    return f"{operands[0]} {op.infix} {operands[1]}"


def op_points(name: str, count: int = 3) -> tuple[dict[str, float], ...]:
    """Points inside the op's test domain (operand i is variable ``"xyz"[i]``), away from kinks."""
    op, rng = OPS[name], random.Random(name)
    points: list[dict[str, float]] = []
    while len(points) < count:
        values = [rng.uniform(lo, hi) for lo, hi in op.domain]
        if name in KINKS and abs(KINKS[name](*values)) < KINK_GAP:
            continue
        points.append({"xyz"[i]: v for i, v in enumerate(values)})
    return tuple(points)


def op_case(name: str) -> Case:
    """``u = op(x[, y]); u*u + sin(x)*u``: the op's result used twice, so adjoints accumulate."""
    operands = ["x", "y", "z"][: OPS[name].arity]
    u = TWINS[name](*(sym(v) for v in operands))
    return Case(f"u = {op_call(name, operands)}; u*u + sin(x)*u", u * u + sympy.sin(x) * u, op_points(name))


def test_every_op_has_a_twin_and_a_domain() -> None:
    """Registry coverage: a new op must come with a SymPy twin here and a test domain there."""
    assert set(TWINS) == set(OPS)
    for name, op in OPS.items():
        assert len(op.domain) == op.arity, name


ALL_CASES = {**CORPUS, **{f"op-{name}": op_case(name) for name in OPS}}


@pytest.mark.parametrize("method", list(graphc.METHODS))
@pytest.mark.parametrize("case_id", list(ALL_CASES))
def test_gradient_matches_sympy_and_dp(case_id: str, method: str) -> None:
    """Every method's gradient equals SymPy's exact one (30 digits), and the dp method's, at every point."""
    case = ALL_CASES[case_id]
    kernel = graphc.value_and_grad(case.text, method=method)
    reference = graphc.grad(case.text, method="dp")
    names = list(kernel.wrt)
    assert names == sorted(str(s) for s in case.twin.free_symbols)
    for point in case.points:
        value, gradient = kernel(**point)
        assert_close(float(value), exact(case.twin, point), "value", f"f at {point}")
        expected = exact_gradient(case.twin, names, point)
        for name, got, want, dp_value in zip(names, gradient, expected, reference(**point), strict=True):
            assert_close(float(got), want, method, f"∂f/∂{name} at {point}")
            assert_close(float(got), float(dp_value), method, f"∂f/∂{name} at {point} against dp")


# --- several outputs: Jacobians ----------------------------------------------------------------------

MULTI = "x*y, sin(x) + z, exp(y*z)"
MULTI_TWIN = sympy.Matrix([x * y, sympy.sin(x) + z, sympy.exp(y * z)])


def exact_jacobian(point: dict[str, float], names: str = "xyz") -> np.ndarray:
    jac = MULTI_TWIN.jacobian([sym(n) for n in names])
    return np.array([[exact(jac[i, j], point) for j in range(len(names))] for i in range(3)])


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_matches_sympy_in_every_mode(mode: str) -> None:
    kernel = graphc.jacobian(MULTI, mode=mode)
    assert kernel.mode == ("reverse" if mode == "auto" else mode)  # 3 inputs, 3 outputs: a tie
    for point in ({"x": 0.3, "y": -0.7, "z": 1.1}, {"x": -2.0, "y": 0.5, "z": 0.25}):
        got = kernel(**point)
        assert got.shape == (3, 3)
        np.testing.assert_allclose(got, exact_jacobian(point), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method, mode", [("forward", "forward"), ("dp", "reverse")])
def test_methods_agree_with_jacobian_modes(method: str, mode: str) -> None:
    """The forward and dp methods' partials, row by row, are the Jacobian of either mode."""
    derivative = graphc.differentiate(MULTI, method=method)
    assert derivative.output_names[3:] == [f"∂f{i}/∂{v}" for i in (1, 2, 3) for v in "xyz"]
    # forward: one pass per input; dp: one per output
    assert graphc.differentiate(MULTI, "x,y", method=method).info["passes"] == (
        2 if method == "forward" else 3
    )
    point = {"x": 0.8, "y": 1.3, "z": -0.6}
    partials = np.array(graphc.compile(derivative)(**point)[3:]).reshape(3, 3)
    for jacobian_mode in (mode, "reverse" if mode == "forward" else "forward"):
        np.testing.assert_allclose(
            partials, graphc.jacobian(MULTI, mode=jacobian_mode)(**point), rtol=1e-12, atol=1e-15
        )
    np.testing.assert_allclose(partials, exact_jacobian(point), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "text, wrt, mode",
    [
        (MULTI, "x,y", "forward"),  # 2 inputs < 3 outputs
        (MULTI, "z", "forward"),
        ("x*y, x + y, x - y", None, "forward"),
        (MULTI, None, "reverse"),  # a tie goes to reverse
        ("x*y*z", None, "reverse"),
        ("x*y + z, x - y", None, "reverse"),
        ("sin(x)", None, "reverse"),
    ],
)
def test_jacobian_auto_picks_fewer_passes_and_says_so(text: str, wrt: str | None, mode: str) -> None:
    kernel = graphc.jacobian(text, wrt=wrt)
    assert kernel.mode == mode
    point = {name: 0.1 * (i + 2) for i, name in enumerate(kernel.variables)}
    explicit = graphc.jacobian(text, wrt=wrt, mode="reverse" if mode == "forward" else "forward")
    np.testing.assert_allclose(kernel(**point), explicit(**point), rtol=1e-12, atol=1e-15)


def test_jacobian_shapes_for_points_and_batches() -> None:
    kernel = graphc.jacobian(MULTI, wrt="x,z")
    assert kernel.wrt == ("x", "z") and kernel.variables == ("x", "y", "z")
    assert kernel(0.1, 0.2, 0.3).shape == (3, 2)
    xs = np.linspace(-1.0, 1.0, 7)
    batch = kernel(xs, 0.5, np.cos(xs))
    assert batch.shape == (7, 3, 2)  # batch axes first, as scipy.optimize.least_squares wants
    for k in range(7):
        point = {"x": xs[k], "y": 0.5, "z": math.cos(xs[k])}
        np.testing.assert_allclose(batch[k], exact_jacobian(point, "xz"), rtol=1e-12, atol=1e-15)
    assert kernel(np.ones((2, 5)), 0.5, 0.0).shape == (2, 5, 3, 2)
    assert graphc.jacobian("x*y")(2.0, 3.0).shape == (1, 2)


# --- second and higher derivatives --------------------------------------------------------------------

HESSIAN_CASES = ["rosenbrock", "rosenbrock4", "himmelblau", "x1x2-exp-sin", "nested-sigmoids", "cos-w2"]


@pytest.mark.parametrize("method", SMOOTH_METHODS)
@pytest.mark.parametrize("case_id", HESSIAN_CASES)
def test_hessian_is_symmetric_and_matches_sympy(case_id: str, method: str) -> None:
    case = CORPUS[case_id]
    kernel = graphc.hessian(case.text, method=method)
    names = list(kernel.wrt)
    symbols = [sym(n) for n in names]
    oracle = sympy.hessian(case.twin, symbols)
    for point in case.points:
        got = kernel(**point)
        assert got.shape == (len(names), len(names))
        np.testing.assert_allclose(got, got.T, rtol=1e-12, atol=1e-12, err_msg="not symmetric")
        for i, j in np.ndindex(got.shape):
            assert_close(float(got[i, j]), exact(oracle[i, j], point), method, f"H[{i}, {j}] at {point}")


def test_hessian_of_a_batch_and_of_a_wrt_subset() -> None:
    text, twin = CORPUS["himmelblau"].text, CORPUS["himmelblau"].twin
    kernel = graphc.hessian(text, wrt="y")
    assert kernel.wrt == ("y",) and kernel.variables == ("x", "y")
    xs = np.array([0.5, -1.0, 2.0, 3.0])
    got = kernel(xs, 1.5)
    assert got.shape == (4, 1, 1)
    for k, value in enumerate(xs):
        assert_close(float(got[k, 0, 0]), exact(sympy.diff(twin, y, 2), {"x": value, "y": 1.5}), "dp", "H_yy")


@pytest.mark.parametrize("method", SMOOTH_METHODS)
@pytest.mark.parametrize("order", [0, 1, 2, 3, 4])
def test_derivative_of_order_n_matches_sympy(order: int, method: str) -> None:
    kernel = graphc.derivative("sin(x)*exp(x/2)", "x", order=order, method=method)
    oracle = sympy.diff(sympy.sin(x) * sympy.exp(x / 2), x, order)
    for value in (-2.5, -0.3, 0.0, 0.8, 3.0):
        got = float(kernel(value))
        assert_close(got, exact(oracle, {"x": value}), method, f"d^{order}f/dx^{order} at x={value}")


def test_derivative_of_several_outputs_in_one_variable() -> None:
    kernel = graphc.derivative("x**3 * y, sin(x*y)", "x", order=2)
    assert kernel.variables == ("x", "y") and kernel.wrt == ("x",)
    got = kernel(0.7, -1.3)
    assert isinstance(got, tuple) and len(got) == 2
    point = {"x": 0.7, "y": -1.3}
    assert_close(float(got[0]), exact(6 * x * y, point), "dp", "∂²f1/∂x²")
    assert_close(float(got[1]), exact(sympy.diff(sympy.sin(x * y), x, 2), point), "dp", "∂²f2/∂x²")


# --- grad and value_and_grad: what they return, in which order -----------------------------------------

ASYMMETRIC = "x**2 * y + 3*y"  # ∂f/∂x = 2xy, ∂f/∂y = x² + 3: different, so an order mix-up shows


@pytest.mark.parametrize("method", EXACT)
def test_grad_and_value_and_grad_return_tuples_in_wrt_order(method: str) -> None:
    values = graphc.value_and_grad(ASYMMETRIC, method=method)(2.0, 5.0)
    assert isinstance(values, tuple) and len(values) == 2
    assert float(values[0]) == 35.0
    assert isinstance(values[1], tuple) and [float(v) for v in values[1]] == [20.0, 7.0]

    kernel = graphc.grad(ASYMMETRIC, wrt="y,x", method=method)
    assert kernel.wrt == ("y", "x") and kernel.variables == ("x", "y")
    got = kernel(2.0, 5.0)
    assert isinstance(got, tuple) and [float(v) for v in got] == [7.0, 20.0]
    assert [float(v) for v in kernel(y=5.0, x=2.0)] == [7.0, 20.0]

    only_y = graphc.grad(ASYMMETRIC, wrt=["y"], method=method)
    assert only_y.wrt == ("y",) and only_y.variables == ("x", "y")  # x is still an argument
    got = only_y(x=3.0, y=-1.0)
    assert isinstance(got, tuple) and len(got) == 1 and float(got[0]) == 12.0
    with pytest.raises(graphc.EvaluationError, match="x"):
        only_y(y=1.0)

    value, (partial,) = graphc.value_and_grad(ASYMMETRIC, wrt="x", method=method)(x=3.0, y=-1.0)
    assert (float(value), float(partial)) == (-12.0, -6.0)


def test_grad_of_a_single_variable_is_a_one_tuple_and_broadcasts() -> None:
    got = graphc.grad("sin(x)")(0.0)
    assert isinstance(got, tuple) and len(got) == 1 and float(got[0]) == 1.0
    xs = np.linspace(-3.0, 3.0, 11)
    (batch,) = graphc.grad("sin(x)")(xs)
    assert batch.shape == (11,)
    np.testing.assert_allclose(batch, np.cos(xs), rtol=1e-15)


def test_a_variable_the_function_cancels_or_ignores_has_a_zero_partial() -> None:
    for text in ("x*x + y - y", "x*x + y*0"):
        kernel = graphc.grad(text, wrt="y")
        assert kernel.variables == ("x", "y")
        assert kernel(1.0, 2.0) == (0.0,)


# --- exact path counts ------------------------------------------------------------------------------


def product_layers(n: int, first: str = "w*w") -> str:
    """``a1 = w*w; a2 = a1*a1; ...; an``: each layer doubles the paths from w, so 2**n of them.

    ``first`` is layer 1 (``"w*(1.5*w)"``: the benchmark's B3x, whose layer 0 is ``(w, 1.5*w)``).
    """
    lines = [f"a1 = {first}"] + [f"a{i} = a{i - 1}*a{i - 1}" for i in range(2, n + 1)]
    return "; ".join([*lines, f"a{n}"])


def dense_tanh_net(width: int, depth: int, inputs: tuple[str, ...] = ("x",)) -> str:
    """A scalar program for a dense net: ``depth`` layers of ``width`` tanh units, summed at the end.

    Every weight is a distinct constant, so no two units are equal and hash-consing keeps them all.
    """
    lines, previous, k = [], list(inputs), 0
    for layer in range(depth):
        units = []
        for unit in range(width):
            terms = []
            for source in previous:
                k += 1
                terms.append(f"{1 + k / 8:g}*{source}" if k % 2 else f"{source}/{1 + k / 8:g}")
            lines.append(f"h{layer}_{unit} = tanh({' + '.join(terms)} - {k % 7 / 10:g})")
            units.append(f"h{layer}_{unit}")
        previous = units
    return "\n".join([*lines, " + ".join(previous)])


@pytest.mark.parametrize("n", [1, 2, 5, 10, 40, 60, 200])
def test_count_paths_of_product_layers_is_two_to_the_n(n: int) -> None:
    assert graphc.count_paths(product_layers(n)) == {"w": 2**n}
    assert graphc.count_paths(graphc.parse(product_layers(n)), "w") == {"w": 2**n}


def test_five_product_layers_have_32_paths_and_paths_gives_32_w31() -> None:
    text = product_layers(5)
    assert graphc.count_paths(text) == {"w": 32}
    derivative = graphc.differentiate(text, method="paths")
    assert derivative.info["paths"] == 32 and derivative.info["terms"] >= 32
    kernel = graphc.grad(text, method="paths")
    for value in (1.01, 0.9, -1.1, 0.5):
        assert_close(float(kernel(value)[0]), 32 * value**31, "paths", f"∂f/∂w at {value}")


def test_forty_product_layers_counted_and_differentiated_by_dp() -> None:
    text = product_layers(40)
    assert graphc.count_paths(text) == {"w": 2**40}
    kernel = graphc.grad(text)  # w**(2**40): at w = ±1 the derivative is exactly ±2**40
    assert float(kernel(1.0)[0]) == 2.0**40
    assert float(kernel(-1.0)[0]) == -(2.0**40)
    with pytest.raises(graphc.TooManyPathsError):
        graphc.differentiate(text, method="paths")


def test_dense_tanh_net_has_a_million_paths_from_its_input() -> None:
    graph = graphc.parse(dense_tanh_net(100, 3))
    assert graph.stats()["ops"]["tanh"] == 300  # no two units merged by hash-consing
    assert graphc.count_paths(graph, "x") == {"x": 1_000_000}
    with pytest.raises(graphc.TooManyPathsError) as raised:
        graphc.differentiate(graph, "x", method="paths", max_paths=999_999)
    assert raised.value.paths == 1_000_000


def test_small_dense_net_path_count_and_gradients() -> None:
    """3 units per layer: 3**3 paths from x; the paths method's terms cover them and agree with dp."""
    text = dense_tanh_net(3, 3)
    assert graphc.count_paths(text) == {"x": 27}
    derivative = graphc.differentiate(text, method="paths")
    assert derivative.info["paths"] == 27 and derivative.info["terms"] >= 27
    for value in (-0.4, 0.1, 0.9):
        got = graphc.grad(text, method="paths")(value)[0]
        assert_close(float(got), float(graphc.grad(text)(value)[0]), "paths", f"∂f/∂x at {value}")


def test_two_to_the_sixty_paths_are_refused_before_enumerating() -> None:
    text = product_layers(60)
    with pytest.raises(graphc.TooManyPathsError) as raised:
        graphc.differentiate(text, method="paths")
    err = raised.value
    assert isinstance(err, graphc.GraphcError)
    assert err.paths == 2**60
    assert "dp" in str(err) and "2^60" in str(err) and "1,000,000" in str(err)
    with pytest.raises(graphc.TooManyPathsError):
        graphc.grad(text, method="paths")


def test_max_paths_lowers_and_raises_the_limit() -> None:
    text = product_layers(10)  # 1024 paths
    assert graphc.differentiate(text, method="paths").info["paths"] == 1024
    assert graphc.differentiate(text, method="paths", max_paths=1024).info["terms"] == 1024
    with pytest.raises(graphc.TooManyPathsError, match="max_paths=1,023"):
        graphc.differentiate(text, method="paths", max_paths=1023)
    with pytest.raises(graphc.TooManyPathsError, match="2\\^21"):
        graphc.differentiate(product_layers(21), method="paths")
    # the same 2**21 paths into sign, whose derivative is structurally absent: no path is counted
    # through it (none would be enumerated), so one path is left, well under the default limit
    big = product_layers(21).rsplit("; ", 1)[0] + "; sign(a21) + w"
    assert graphc.count_paths(big) == {"w": 1}
    derivative = graphc.differentiate(big, method="paths")
    assert derivative.info["paths"] == derivative.info["terms"] == 1
    assert graphc.grad(big, method="paths")(0.9) == (1.0,)


# --- cost: operation counts, deterministic ------------------------------------------------------------


def operations(graph: graphc.Graph) -> int:
    """Nodes with operands that the outputs reach: what evaluating the graph computes."""
    keep = graph.reachable()
    return sum(1 for node in range(len(graph)) if keep[node] and graph.args(node))


def nested(function: str, n: int, inner: str = "x") -> str:
    return f"{function}(" * n + inner + ")" * n


def shared_chain(n: int) -> str:
    """``u1 = w^2; v1 = sin(u1) + cos(u1); u2 = v1^2; ...``: every u used twice."""
    lines = ["v0 = w"] + [f"u{i} = v{i - 1}^2; v{i} = sin(u{i}) + cos(u{i})" for i in range(1, n + 1)]
    return "\n".join([*lines, f"v{n}"])


def linear_maps(n: int, dim: int = 3) -> str:
    """A chain of ``n`` small dense linear maps on ``dim`` inputs, then a sum of squares."""
    lines, previous, k = [], [f"x{i}" for i in range(dim)], 0
    for layer in range(n):
        units = []
        for row in range(dim):
            terms = []
            for source in previous:
                k += 1
                terms.append(f"{0.1 + k / 64:g}*{source}")
            lines.append(f"y{layer}_{row} = {' + '.join(terms)}")
            units.append(f"y{layer}_{row}")
        previous = units
    return "\n".join([*lines, " + ".join(f"{u}*{u}" for u in previous)])


ZERO_FREE_OPS = tuple(sorted(name for name, op in OPS.items() if None not in op.partials))


def random_dag(
    rng: random.Random, size: int, variables: tuple[str, ...] = ("x", "y", "z"), ops: tuple[str, ...] = ()
) -> str:
    """A random program of ``size`` bindings drawn from the op table (or ``ops``); operands are earlier
    values squashed into the op's domain (``lo + (hi - lo)*sigmoid(v)``), so every value is defined."""
    return random_dag_with_twin(rng, size, variables, ops, twin=False)[0]


def random_dag_with_twin(
    rng: random.Random,
    size: int,
    variables: tuple[str, ...] = ("x", "y", "z"),
    ops: tuple[str, ...] = (),
    *,
    twin: bool = True,
) -> tuple[str, Any]:
    """:func:`random_dag`'s program and, if asked, its SymPy twin, built alongside from :data:`TWINS`."""
    pool: list[tuple[str, Any]] = [(v, sym(v) if twin else None) for v in variables]
    lines = []
    names = list(ops) or sorted(OPS)
    for i in range(size):
        name = rng.choice(names)
        texts, twins = [], []
        for lo, hi in OPS[name].domain:
            text, expr = rng.choice(pool[-6:] if rng.random() < 0.7 else pool)
            texts.append(f"({lo:g} + {hi - lo:g}*sigmoid({text}))")
            if twin:
                twins.append(sympy.Rational(f"{lo:g}") + sympy.Rational(f"{hi - lo:g}") * sigmoid(expr))
        lines.append(f"t{i} = {op_call(name, texts)}")
        pool.append((f"t{i}", TWINS[name](*twins) if twin else None))
    last = pool[-3:]
    lines.append(" + ".join(text for text, _ in last))
    return "\n".join(lines), sum(expr for _, expr in last) if twin else None


COST_FAMILIES: dict[str, str] = {
    **{f"product-layers-{n}": product_layers(n) for n in (1, 5, 40)},
    **{f"nested-sin-{n}": nested("sin", n) for n in (1, 10, 500)},
    "dense-tanh-mlp": dense_tanh_net(8, 3, ("x0", "x1", "x2")),
    "shared-u-sin-cos-chain": shared_chain(30),
    "shared-u-repeated": "u = w^2; " + " + ".join(["sin(u) + cos(u)"] * 3) + " + sin(u)*cos(u)",
    "linear-maps": linear_maps(12),
    **{f"random-dag-{seed}": random_dag(random.Random(seed), 40) for seed in range(8)},
}


@pytest.mark.parametrize("family", list(COST_FAMILIES))
def test_dp_gradient_costs_at_most_five_times_the_function(family: str) -> None:
    graph = graphc.parse(COST_FAMILIES[family])
    derivative = graphc.differentiate(graph, method="dp")
    assert derivative.info["passes"] == 1
    function_ops = operations(graph)
    assert operations(derivative) <= 5 * function_ops, (
        f"{operations(derivative)} operations for a function of {function_ops}"
    )


@pytest.mark.parametrize("family", ["dense-tanh-mlp", "linear-maps", "random-dag-0", "shared-u-repeated"])
def test_forward_takes_one_pass_per_input(family: str) -> None:
    graph = graphc.parse(COST_FAMILIES[family])
    assert graphc.differentiate(graph, method="forward").info["passes"] == len(graph.variables)
    assert graphc.differentiate(graph, graph.variables[:1], method="forward").info["passes"] == 1


PATH_FAMILIES: dict[str, str] = {
    "product-layers-5": product_layers(5),
    "nested-sin-10": nested("sin", 10),
    "shared-u-sin-cos-chain": shared_chain(8),
    "linear-maps": linear_maps(3),
    "dense-tanh-net": dense_tanh_net(4, 2, ("x", "y")),
    **{f"random-dag-{seed}": random_dag(random.Random(seed), 12, ops=ZERO_FREE_OPS) for seed in range(4)},
}


@pytest.mark.parametrize("family", list(PATH_FAMILIES))
def test_paths_method_sums_a_term_per_path(family: str) -> None:
    """Every counted path is a term (a path through an edge without a derivative is not counted)."""
    graph = graphc.parse(PATH_FAMILIES[family])
    derivative = graphc.differentiate(graph, method="paths")
    paths = sum(graphc.count_paths(graph).values())
    assert 0 < paths <= 100_000
    assert derivative.info["paths"] == derivative.info["terms"] == paths


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        ("where(x > 0, sqrt(x), 0)", {"x": 1}),  # the branch, not the condition
        ("where(x > y, x*y, y)", {"x": 1, "y": 2}),
        ("floor(x)*y + sign(y)", {"x": 0, "y": 1}),
        ("(x < y) + (x == y) + not x", {"x": 0, "y": 0}),
        ("clip(x, y, 1)", {"x": 1, "y": 1}),
    ],
)
def test_paths_through_guards_are_counted_only_where_a_derivative_flows(
    text: str, counts: dict[str, int]
) -> None:
    assert graphc.count_paths(text) == counts
    derivative = graphc.differentiate(text, method="paths")
    assert derivative.info["paths"] == derivative.info["terms"] == sum(counts.values())


# --- scale: no recursion anywhere on the dp path ---------------------------------------------------------


def test_dp_gradient_of_a_200000_term_sum() -> None:
    text = "x" + "+x" * 199_999
    value, (partial,) = graphc.value_and_grad(text)(1.5)
    assert float(value) == 300_000.0 and float(partial) == 200_000.0


def test_dp_gradient_of_10000_nested_sin() -> None:
    n = 10_000
    value, (partial,) = graphc.value_and_grad(nested("sin", n))(0.5)
    expected_value, expected_partial = 0.5, 1.0  # the chain rule, in a loop
    for _ in range(n):
        expected_value, expected_partial = (
            math.sin(expected_value),
            expected_partial * math.cos(expected_value),
        )
    assert math.isclose(float(value), expected_value, rel_tol=1e-12)
    assert math.isclose(float(partial), expected_partial, rel_tol=1e-9)


@pytest.mark.parametrize("depth", [400, 3000])
def test_symbolic_too_deep_is_a_symbolic_error_naming_depth_and_dp(depth: int) -> None:
    with pytest.raises(graphc.SymbolicError) as raised:
        graphc.differentiate(nested("sin", depth), method="symbolic")
    assert isinstance(raised.value, graphc.GraphcError)
    assert str(depth) in str(raised.value) and "dp" in str(raised.value)


SYMPY_CANNOT_KNOW_REAL = [
    ("abs(x**x)", sympy.Abs(x**x), 1.3),  # SymPy's derivative has re(x**x) and im(x**x)
    ("abs(asin(x))", sympy.Abs(sympy.asin(x)), -0.3),
    ("abs(sqrt(x))*x", sympy.Abs(sympy.sqrt(x)) * x, 2.0),  # and arg(x), as atan2(0, x)
    ("sign(log(x))*x", sympy.sign(sympy.log(x)) * x, 2.0),  # SymPy leaves Derivative(sign(log(x)), x)
    ("sign(log(x))*x", sympy.sign(sympy.log(x)) * x, 0.5),
]


@pytest.mark.parametrize("text, twin, value", SYMPY_CANNOT_KNOW_REAL)
def test_symbolic_knows_values_are_real(text: str, twin: Any, value: float) -> None:
    """Found by the property tests: SymPy cannot tell that x**x or asin(x) is real, and answers
    with re/im/arg (or an unevaluated derivative), which the symbolic method must still convert."""
    got = graphc.grad(text, method="symbolic")(value)[0]
    expected = float(graphc.grad(text, method="dp")(value)[0])
    if "sign" not in text:  # SymPy's own derivative of sign(log(x)) stays unevaluated
        expected = exact(sympy.diff(twin, x), {"x": value})
    assert_close(float(got), expected, "symbolic", f"∂f/∂x at {value}")


@pytest.mark.parametrize(
    "text",
    [
        "(0 - 2)**x",  # ∂/∂x is (-2)**x * log(-2): SymPy answers with I, which graphc cannot represent
    ],
)
def test_symbolic_failures_are_symbolic_errors(text: str) -> None:
    with pytest.raises(graphc.SymbolicError, match="dp"):
        graphc.differentiate(text, method="symbolic")
    graphc.differentiate(text, method="dp")  # the dp method still builds the (nan) derivative


def test_symbolic_max_with_a_nan_operand_is_nan_as_in_dp() -> None:
    """asin(pi) folds to nan: SymPy's Max refused it (a ValueError); graphc's Maximum keeps it."""
    symbolic = graphc.grad("max(x, x + asin(pi))", method="symbolic")(1.0)
    dp = graphc.grad("max(x, x + asin(pi))", method="dp")(1.0)
    assert math.isnan(float(symbolic[0])) and math.isnan(float(dp[0]))


def test_symbolic_abs_of_relu() -> None:
    kernel = graphc.grad("abs(relu(z)) + relu(z)*abs(relu(z))", method="symbolic")
    assert [float(kernel(v)[0]) for v in (1.5, -1.5, 0.0)] == [4.0, 0.0, 0.0]


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: graphc.grad("x*y", wrt="q"),
        lambda: graphc.grad("x*y", wrt=["x", "q"]),
        lambda: graphc.jacobian("x*y, x", wrt="x,q"),
        lambda: graphc.hessian("x*y", wrt="y,q"),
        lambda: graphc.derivative("x*y", "q"),
        lambda: graphc.count_paths("x*y", "q"),
        lambda: graphc.differentiate("x*y", "q", method="forward"),
    ],
)
def test_unknown_wrt_name_is_an_unknown_variable_error(call: Callable[[], Any]) -> None:
    with pytest.raises(graphc.UnknownVariableError, match="'q'.*x, y"):
        call()


@pytest.mark.parametrize("method", ["backprop", "DP", "", None])
def test_unknown_method_lists_the_methods(method: Any) -> None:
    with pytest.raises(graphc.GraphcError) as raised:
        graphc.grad("x*y", method=method)
    for name in graphc.METHODS:
        assert name in str(raised.value)


@pytest.mark.parametrize("function", [graphc.grad, graphc.value_and_grad, graphc.hessian])
def test_several_outputs_need_jacobian(function: Callable[..., Any]) -> None:
    with pytest.raises(graphc.GraphcError, match="jacobian"):
        function("x*y, x + y")


@pytest.mark.parametrize("order", [-1, 1.5, True, "2"])
def test_derivative_order_must_be_a_whole_number(order: Any) -> None:
    with pytest.raises(graphc.GraphcError, match="order"):
        graphc.derivative("x**3", "x", order=order)


def test_option_of_another_method_is_refused() -> None:
    with pytest.raises(graphc.GraphcError, match="max_paths"):
        graphc.differentiate("x*y", method="dp", max_paths=10)
    with pytest.raises(graphc.GraphcError, match="cse"):
        graphc.differentiate("x*y", method="forward", cse=True)
