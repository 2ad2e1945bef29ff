"""The op table: every entry complete, evaluated like NumPy and SymPy, local derivatives right."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy

import graphc
from graphc.graph import Graph
from graphc.ops import FUNCTIONS, OPS

ALL_OPS = sorted(OPS)


def sample_points(op_name: str, count: int = 5) -> list[tuple[float, ...]]:
    rng = np.random.default_rng(len(op_name))
    spec = OPS[op_name]
    return [tuple(float(rng.uniform(lo, hi)) for lo, hi in spec.domain) for _ in range(count)]


def test_the_language_has_every_documented_primitive():
    documented = (
        "sin cos tan asin acos atan sinh cosh tanh exp log sqrt abs sigmoid relu softplus max min pow atan2"
    )
    assert set(documented.split()) <= set(FUNCTIONS)
    assert {"add", "sub", "mul", "div", "pow", "neg"} <= set(OPS)


@pytest.mark.parametrize("name", ALL_OPS)
def test_every_entry_is_complete(name):
    spec = OPS[name]
    assert spec.arity in (1, 2)
    assert len(spec.partials) == spec.arity
    assert len(spec.domain) == spec.arity, "a test domain per operand"
    assert spec.infix or spec.function, "every op can be written in the language"
    assert callable(spec.sympy)
    symbols = sympy.symbols(f"a0:{spec.arity}", real=True)
    assert isinstance(spec.sympy(*symbols), sympy.Expr)
    assert spec.numpy.count("{") == spec.numpy.count("}") >= spec.arity
    assert all(f"{{{i}}}" in spec.c for i in range(spec.arity)), "a C99 expression of every operand"


@pytest.mark.parametrize("name", ALL_OPS)
def test_numpy_template_fold_and_sympy_agree(name):
    spec = OPS[name]
    symbols = sympy.symbols(f"a0:{spec.arity}", real=True)
    reference = sympy.lambdify(symbols, spec.sympy(*symbols), "mpmath")
    for point in sample_points(name):
        expected = float(reference(*point))
        assert spec.fold(*point) == pytest.approx(expected, rel=1e-13, abs=1e-15)
        g = Graph()
        variables = [g.var(f"a{i}") for i in range(spec.arity)]
        g.set_outputs([g.apply(name, *variables)])
        got = graphc.compile(g)(*point)
        assert float(got) == pytest.approx(expected, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("name", ALL_OPS)
def test_local_derivative_rules_match_sympy(name):
    """Each slot's rule, built as graph nodes and compiled, equals SymPy's partial derivative."""
    spec = OPS[name]
    symbols = sympy.symbols(f"a0:{spec.arity}", real=True)
    expression = spec.sympy(*symbols)
    g = Graph()
    variables = [g.var(f"a{i}") for i in range(spec.arity)]
    out = g.apply(name, *variables)
    for slot, rule in enumerate(spec.partials):
        exact = sympy.diff(expression, symbols[slot])
        local = rule(g, tuple(variables), out) if rule is not None else None
        if local is None:  # structurally zero: SymPy's derivative must vanish away from kinks
            for point in sample_points(name):
                assert float(exact.subs(dict(zip(symbols, point)))) == 0.0
            continue
        partial = g.copy()
        partial.set_outputs([local])
        kernel = graphc.compile(partial.pruned())
        for point in sample_points(name):
            values = {f"a{i}": v for i, v in enumerate(point) if f"a{i}" in kernel.variables}
            expected = float(exact.subs(dict(zip(symbols, point))).evalf())
            assert float(kernel(**values)) == pytest.approx(expected, rel=1e-12, abs=1e-14), (
                name,
                slot,
                point,
            )


def test_constant_folding_uses_numpy_semantics():
    assert OPS["div"].fold(1.0, 0.0) == math.inf
    assert math.isnan(OPS["log"].fold(-1.0))
    assert math.isnan(OPS["pow"].fold(-8.0, 1 / 3))
    assert OPS["sigmoid"].fold(-1000.0) == 0.0
    assert OPS["softplus"].fold(1000.0) == 1000.0


@pytest.mark.parametrize("op", [op for op in OPS.values() if op.plain])
def test_plain_folding_equals_numpy_on_special_values(op):
    specials = [0.0, -0.0, 1.0, -2.5, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan]
    for values in itertools.product(specials, repeat=op.arity):
        with np.errstate(all="ignore"):
            expected = float(op.impl(*(np.float64(v) for v in values)))
        got = op.fold(*values)
        assert (math.isnan(got) and math.isnan(expected)) or (
            got == expected and math.copysign(1.0, got) == math.copysign(1.0, expected)
        ), (op.name, values, got, expected)
