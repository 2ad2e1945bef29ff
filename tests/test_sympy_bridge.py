"""Graphs to SymPy and back."""

from __future__ import annotations

import pytest
import sympy

import graphc
from graphc import GraphcError

x, y, z = sympy.symbols("x y z", real=True)


@pytest.mark.parametrize(
    "expr",
    [
        sympy.sin(x * y) + sympy.exp(x),
        x * y + sympy.exp(x * y) - sympy.sin(y),
        (1 - x) ** 2 + 100 * (y - x**2) ** 2,
        sympy.sqrt(x**2 + y**2) / (1 + sympy.Abs(z)),
        sympy.Max(x, y, z) - sympy.Min(x, 2 * y) + sympy.atan2(y, x),
        -x / y + sympy.Rational(1, 3) * sympy.tanh(z) - sympy.pi * sympy.E,
        sympy.log(x**2 + 1) * sympy.asin(y / 3) * sympy.acos(z / 4) + sympy.sign(x - y),
        x ** (-2) + y ** sympy.Rational(3, 2) + sympy.cosh(z) * sympy.sinh(x) * sympy.tan(y),
    ],
)
def test_from_sympy_then_back_is_the_same_function(expr):
    graph = graphc.from_sympy(expr)
    back = graph.to_sympy()
    point = {x: 0.7, y: 1.3, z: -0.4}
    assert float(back.subs(point)) == pytest.approx(float(expr.subs(point)), rel=1e-13)
    kernel = graphc.compile(graph)
    values = {s.name: v for s, v in point.items() if s.name in kernel.variables}
    assert float(kernel(**values)) == pytest.approx(float(expr.subs(point)), rel=1e-13)


def test_text_to_sympy_uses_exact_numbers_and_symbols():
    expr = graphc.parse("x**2/2 + pi*y + e").to_sympy()
    assert expr == x**2 / 2 + sympy.pi * y + sympy.E
    assert graphc.parse("0.1*x").to_sympy() == sympy.Float(0.1) * x


def test_several_outputs_convert_as_a_tuple_and_a_list():
    assert graphc.parse("x*y, sin(x)").to_sympy() == (x * y, sympy.sin(x))
    graph = graphc.from_sympy([x * y, sympy.sin(x)])
    assert graph.output_names == ["f1", "f2"]
    assert graph.to_sympy() == (x * y, sympy.sin(x))


def test_sharing_survives_conversion():
    shared = (x * y + 1) ** 2
    graph = graphc.from_sympy(sympy.sin(shared) + sympy.cos(shared))
    assert graph.stats()["ops"]["pow"] == 1


def test_unsupported_sympy_is_a_graphc_error():
    with pytest.raises(GraphcError, match="cannot convert SymPy"):
        graphc.from_sympy(sympy.gamma(x))
    with pytest.raises(GraphcError, match="cannot convert SymPy"):
        graphc.from_sympy(sympy.Integral(x, x))
    with pytest.raises(GraphcError, match="not a SymPy expression"):
        graphc.from_sympy("x + 1")  # text is never sympified: that would run eval


def test_deep_graph_to_sympy_never_leaks_recursion_error():
    graph = graphc.parse("sin(" * 3000 + "x" + ")" * 3000)
    try:
        expr = graph.to_sympy()
    except GraphcError as err:
        assert "deep" in str(err)
    else:
        assert isinstance(expr, sympy.Expr)


def test_sympy_is_imported_only_when_used():
    """``import graphc`` and a numeric gradient leave SymPy unimported (0.3 s and 40 MB of every
    CLI call); SymPy input, ``to_sympy`` and the symbolic method import it when they run."""
    import subprocess
    import sys

    script = (
        "import sys, graphc, graphc.cli\n"
        "assert graphc.grad('sin(x*y) + exp(x)', backend='numpy')(1.5, 2.0)[0] > 2.5\n"
        "assert 'sympy' not in sys.modules, 'imported by a numeric gradient'\n"
        "assert graphc.grad('x**3', method='symbolic')(2.0) == (12.0,)\n"
        "assert 'sympy' in sys.modules\n"
        "import sympy\n"
        "assert graphc.from_sympy(sympy.Symbol('x') ** 2).variables == ['x']\n"
    )
    command = [sys.executable, "-c", script]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_wrt_takes_sympy_symbols_and_names_everywhere():
    x, y = sympy.symbols("x y")
    expr = x**2 * y
    assert list(graphc.grad(expr, wrt=x).wrt) == ["x"]
    assert list(graphc.grad(expr, wrt=[y, "x"]).wrt) == ["y", "x"]
    assert graphc.grad(expr, wrt=[y, "x"])(3.0, 2.0) == (9.0, 12.0)
    assert graphc.value_and_grad("x**2 * y", wrt=(x,))(3.0, 2.0) == (18.0, (12.0,))
    assert graphc.count_paths("x*y + x", wrt=x) == {"x": 2}
    assert graphc.differentiate(expr, wrt=y).info["wrt"] == ["y"]
    assert graphc.jacobian("x*y, x + y", wrt=[x])(2.0, 3.0).tolist() == [[3.0], [1.0]]
    assert graphc.hessian(expr, wrt=[x, y])(3.0, 2.0).tolist() == [[4.0, 6.0], [6.0, 0.0]]
    assert float(graphc.derivative("x**5", x, order=3)(2.0)) == 240.0
    with pytest.raises(graphc.GraphcError, match="derivative takes one variable"):
        graphc.derivative("x*y", [x, y])
    with pytest.raises(graphc.GraphcError, match="wrt must name one or more variables"):
        graphc.grad("x*y", wrt=3)
