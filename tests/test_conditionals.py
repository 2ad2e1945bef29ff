"""Conditionals and the function library: comparisons (Python's chaining), ``and``/``or``/``not``,
``where`` and ``clip``, the new functions and their NumPy spellings; and the rule that an
unselected branch contributes exactly 0 to every derivative, in every exact method (first and
second order) and both backends. The policy rows themselves are checked in test_policy.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.errors import ParseError
from graphc.printing import to_text
from graphc.sympy_bridge import from_sympy, to_sympy

EXACT = ["dp", "forward", "paths", "symbolic"]
AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]
NAN = math.nan


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# --- the language ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "point", "expected"),
    [
        ("x < y", {"x": 1, "y": 2}, 1.0),
        ("x <= y", {"x": 2, "y": 2}, 1.0),
        ("x > y", {"x": 2, "y": 2}, 0.0),
        ("x >= y", {"x": NAN, "y": 2}, 0.0),
        ("x == y", {"x": 0.0, "y": -0.0}, 1.0),
        ("x != y", {"x": NAN, "y": NAN}, 1.0),
        ("x < y < z", {"x": 1, "y": 2, "z": 3}, 1.0),
        ("x < y < z", {"x": 1, "y": 3, "z": 2}, 0.0),
        ("x < y > z", {"x": 1, "y": 3, "z": 2}, 1.0),  # Python: (1 < 3) and (3 > 2)
        ("x + 1 < y * 2", {"x": 2, "y": 2}, 1.0),  # arithmetic binds tighter
        ("not x < y", {"x": 1, "y": 2}, 0.0),  # not (x < y)
        ("not x and y", {"x": 0, "y": 5}, 1.0),  # (not x) and y
        ("x or y and z", {"x": 1, "y": 0, "z": 0}, 1.0),  # x or (y and z)
        ("(x or y) and z", {"x": 1, "y": 0, "z": 0}, 0.0),
        ("-x < 0", {"x": 1}, 1.0),  # (-x) < 0
        ("x and y", {"x": NAN, "y": 2}, 1.0),  # NaN is nonzero, so true
        ("where(x, y, z)", {"x": -0.0, "y": 1, "z": 2}, 2.0),
        ("where(x > 0, y, z)", {"x": NAN, "y": 1, "z": 2}, 2.0),
        ("clip(x, -1, 1)", {"x": 5}, 1.0),
        ("clip(x, -1, 1)", {"x": -5}, -1.0),
        ("clip(x, -1, 1)", {"x": NAN}, NAN),
        ("(x < y) * 3 + (x >= y)", {"x": 1, "y": 2}, 3.0),
    ],
)
@pytest.mark.parametrize("backend", AVAILABLE)
def test_values_follow_python_precedence_and_numpy_truth(text, point, expected, backend):
    kernel = graphc.compile(text, backend=backend)
    got = float(kernel(**{name: point[name] for name in kernel.variables}))
    assert same(got, expected), (text, point, got)


def test_a_chain_is_the_conjunction_of_its_links():
    assert to_text(graphc.parse("a < b <= c != d")) == to_text(
        graphc.parse("(a < b) and (b <= c) and (c != d)")
    )


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("arcsin", "asin"),
        ("arccos", "acos"),
        ("arctan", "atan"),
        ("arcsinh", "asinh"),
        ("arccosh", "acosh"),
        ("arctanh", "atanh"),
        ("ln", "log"),
    ],
)
def test_numpy_spellings_are_the_same_op(alias, name):
    assert to_text(graphc.parse(f"{alias}(x)")) == f"{name}(x)"


def test_arctan2_is_atan2():
    assert to_text(graphc.parse("arctan2(y, x)")) == "atan2(y, x)"


@pytest.mark.parametrize("word", ["and", "or", "not", "where", "clip", "erf", "ln", "floor"])
def test_new_words_are_reserved(word):
    with pytest.raises(ParseError, match="cannot assign"):
        graphc.parse(f"{word} = 1; x")


@pytest.mark.parametrize(
    "text",
    [
        "x < y < z",
        "not x or y and z != 1",
        "where(x > 0, sqrt(x), -x) + clip(y, 0, 1)",
        "not not x",
        "-(x < y)",
        "(x < y) < z",
        "x == (y == z)",
    ],
)
def test_printing_parses_back_to_the_same_graph(text):
    printed = to_text(graphc.parse(text))
    assert to_text(graphc.parse(printed)) == printed


# --- the function library against the C library ---------------------------------------------------

FUNCTIONS = [
    ("erf", math.erf, [-3.0, -0.5, 0.0, 1e-8, 0.7, 2.5]),
    ("erfc", math.erfc, [-2.0, 0.0, 0.5, 3.0, 10.0]),
    ("log10", math.log10, [1e-300, 0.5, 1.0, 1000.0, 7.0]),
    ("log2", math.log2, [1e-300, 0.5, 1.0, 1024.0, 3.0]),
    ("exp2", lambda v: 2.0**v, [-1074.0, -3.5, 0.0, 0.5, 10.0]),
    ("expm1", math.expm1, [-5.0, -1e-10, 1e-10, 0.5, 3.0]),
    ("log1p", math.log1p, [-0.5, -1e-12, 1e-12, 0.5, 100.0]),
    ("cbrt", lambda v: math.copysign(abs(v) ** (1 / 3), v), [-8.0, -0.001, 27.0, 2.0]),
    ("asinh", math.asinh, [-3.0, -1e-9, 0.5, 100.0]),
    ("acosh", math.acosh, [1.0, 1.5, 100.0]),
    ("atanh", math.atanh, [-0.9, 1e-9, 0.5]),
    ("floor", math.floor, [-1.5, -0.0, 0.5, 2.0]),
    ("ceil", math.ceil, [-1.5, 0.2, 2.0]),
]


@pytest.mark.parametrize(("name", "reference", "points"), FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
@pytest.mark.parametrize("backend", AVAILABLE)
def test_new_functions_agree_with_the_c_library(name, reference, points, backend):
    kernel = graphc.compile(f"{name}(x)", backend=backend)
    got = np.asarray(kernel(np.array(points)), dtype=float)
    want = np.array([float(reference(p)) for p in points])
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=0)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_hypot_agrees_with_the_c_library_and_does_not_overflow(backend):
    kernel = graphc.compile("hypot(x, y)", backend=backend)
    xs, ys = np.array([3.0, 1e300, 0.0, -5.0]), np.array([4.0, 1e300, 0.0, 12.0])
    np.testing.assert_array_equal(kernel(xs, ys), [math.hypot(a, b) for a, b in zip(xs, ys, strict=True)])


# --- derivatives: an unselected branch contributes exactly 0 -------------------------------------

CASES = [
    ("where(x > 0, sqrt(x), 0)", [0.0, -1.0, 4.0], [0.0, 0.0, 0.25]),
    ("where(x != 0, sin(x)/x, 1)", [0.0], [0.0]),
    ("where(x > 0, x*log(x), 0)", [0.0, 1.0], [0.0, 1.0]),
    ("where(x > -10, sqrt(x), 0)", [-1.0], [NAN]),  # the selected branch's NaN propagates
    ("sqrt(where(x > 0, x, 0))", [0.0], [0.0]),
    (
        "where(x > 0, sqrt(x), 0) + where(x > 1, log(x - 1), 0)",
        [0.0, 1.0, 2.0],
        [0.0, 0.5, 1.0 + 0.5 / math.sqrt(2.0)],
    ),
    ("where(x < 0, 0, where(x > 0, 1/x, 0))", [0.0, 2.0], [0.0, -0.25]),
    ("u = where(x > 0, sqrt(x), 0); u*u + where(x > -1, u, log(x))", [0.0, -1.0], [0.0, -1.0]),
    ("clip(sqrt(x), 0, 1)", [0.25, 4.0], [1.0, 0.0]),
]


@pytest.mark.parametrize(("text", "points", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("backend", AVAILABLE)
def test_unselected_branches_contribute_exactly_zero(text, points, expected, method, backend):
    kernel = graphc.grad(text, method=method, backend=backend)
    for point, want in zip(points, expected, strict=True):
        (got,) = kernel(point)
        assert same(float(got), want), (text, method, backend, point, got)


HESSIANS = [
    ("where(x > 0, x*sqrt(x), 0)", [0.0, -1.0, 4.0], [0.0, 0.0, 0.375]),
    ("where(x > 0, sqrt(x), 0)", [0.0, -1.0], [0.0, 0.0]),
    ("where(x != 0, sin(x)/x, 1)", [0.0], [0.0]),
    ("where(x > -10, sqrt(x), 0)", [-1.0], [NAN]),
]


@pytest.mark.parametrize(("text", "points", "expected"), HESSIANS, ids=[c[0] for c in HESSIANS])
@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("backend", AVAILABLE)
def test_second_derivatives_keep_the_rule(text, points, expected, method, backend):
    kernel = graphc.hessian(text, method=method, backend=backend)
    for point, want in zip(points, expected, strict=True):
        got = float(np.asarray(kernel(point)).reshape(-1)[0])
        assert same(got, want), (text, method, backend, point, got)


def test_the_two_variable_hessian_of_a_branch_has_no_nan():
    kernel = graphc.hessian("where(x > y, sqrt(x - y) * y, 0)", method="dp")
    np.testing.assert_array_equal(kernel(0.0, 0.0), [[0.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("method", ["dp", "forward"])
def test_tensor_branches_are_elementwise_and_nan_free(method):
    kernel = graphc.grad("x: [3]; sum(where(x > 0, sqrt(x), 0))", method=method)
    (got,) = kernel(np.array([0.0, -1.0, 4.0]))
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.25])


def test_where_round_trips_through_sympy_piecewise():
    graph = graphc.parse("where(x > 0, sqrt(x), -x) + (x < 1 and not y)")
    expression = to_sympy(graph)
    assert "Piecewise" in str(expression)
    back = from_sympy(expression)
    for point in [(-2.0, 0.0), (0.5, 0.0), (0.5, 1.0), (4.0, 0.0)]:
        assert float(graphc.compile(back)(*point)) == float(graphc.compile(graph)(*point))


# --- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("backend", AVAILABLE)
def test_cli_grad_of_the_famous_where_is_zero(cli, method, backend):
    code, out, err = cli(
        "grad", "where(x > 0, sqrt(x), 0)", "--at", "x=0", "--method", method, "--backend", backend
    )
    assert (code, err) == (0, "")
    assert "∂f/∂x = 0.0" in out.splitlines()


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("where(x, 1)", "where() takes 3 arguments (2 given)"),
        ("where(x > 0, 1, 2, 3)", "where() takes 3 arguments (4 given)"),
        ("not", "expected an operand before end of input"),
        ("x and", "expected an operand"),
        ("x < < y", "expected an operand, found '<'"),
        ("x <> y", "write '!='"),
        ("clip(x)", "clip"),
        ("not = 1; x", "built-in operator"),
    ],
)
def test_cli_errors_in_the_new_syntax_are_one_line_with_status_2(cli, expr, message):
    code, out, err = cli("grad", expr, "--at", "x=1,y=2")
    assert (code, out) == (2, "")
    first = err.splitlines()[0]
    assert first.startswith("graphc: error: ") and message in first
    assert "Traceback" not in err


def test_cli_chained_comparison_is_accepted(cli):
    code, out, err = cli("eval", "a < b < c", "--at", "a=1,b=2,c=3")
    assert (code, err) == (0, "")
    assert "1.0" in out


def test_check_names_the_nan_of_the_selected_branch():
    report = graphc.check("where(x > -10, sqrt(x), 0)", at={"x": -1.0})
    assert not report.finite
    assert [(s.op, s.node) for s in report.forward] == [("sqrt", report.forward[0].node)]


@pytest.mark.parametrize("x", [0.0, -1.0])
def test_check_ignores_a_nan_in_the_branch_not_selected(cli, x):
    report = graphc.check("where(x > 0, sqrt(x), 0)", at={"x": x})
    assert report.finite and report.values == {"f": 0.0, "∂f/∂x": 0.0}
    code, out, err = cli("check", "where(x > 0, sqrt(x), 0)", "--at", f"x={x}")
    assert (code, err) == (0, "")
    assert "all finite" in out


@pytest.mark.parametrize("method", ["dp", "forward", "paths", "symbolic"])
def test_an_unselected_branch_through_a_block_op_contributes_exactly_zero(method: str) -> None:
    """A where with one condition for the whole tensor: its unselected branch is 0 below a block
    op (the sum) too, in every exact method, and the selected branch is the plain derivative."""
    kernel = graphc.grad("x: [3]; where(sum(x) > 0, sum(sqrt(x)), 0)", method=method)
    (unselected,) = kernel(np.array([-1.0, -1.0, 0.0]))
    assert unselected.tolist() == [0.0, 0.0, 0.0]
    (selected,) = kernel(np.array([1.0, 4.0, 0.25]))
    assert selected.tolist() == [0.5, 0.25, 1.0]


def test_sympy_s_boolean_if_then_else_converts_to_where() -> None:
    """SymPy simplifies some Piecewise conditions into ITE(c, a, b): it comes back as where."""
    sympy = pytest.importorskip("sympy")
    x, y = sympy.symbols("x y")
    f = graphc.compile(graphc.from_sympy(sympy.ITE(x > 0, y > 1, x < -1)))
    assert [float(f(x=1.0, y=2.0)), float(f(x=-2.0, y=0.0)), float(f(x=1.0, y=0.0))] == [1.0, 1.0, 0.0]


def test_a_def_at_the_end_of_the_text_is_a_one_line_error() -> None:
    for text in ("def'", "def f(a) = a; f'", "x = 1; def"):
        try:
            graphc.parse(text)
        except graphc.GraphcError as error:
            assert "\n" not in str(error).splitlines()[0]
