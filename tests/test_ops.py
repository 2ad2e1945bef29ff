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
    assert spec.arity in (1, 2) or (spec.arity == 3 and spec.gate is not None), "a select has three"
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


@pytest.mark.parametrize("name", ALL_OPS)
def test_every_entry_states_its_policy_and_its_sympy_forms(name):
    """The rest of the registry coverage: each field an entry must have or may name resolves: its
    hard points (rows, or why none) and its SymPy classes, each converting back to the op itself."""
    from graphc import sympy_bridge
    from graphc.policy import _at

    spec = OPS[name]
    assert spec.policy or spec.smooth, f"{name}: policy= rows or smooth= (why it has no hard point)"
    for point in spec.policy + spec.algebra:
        at = _at(point.at)
        assert graphc.parse(point.expr).variables == sorted(at), point
        assert len(point.gradient) == len(at) and point.why, point
    g = Graph()
    g.set_outputs([g.apply(name, *(g.var(f"a{i}") for i in range(spec.arity)))])
    for policy, cls in ((False, spec.sympy_class), (True, spec.sympy_policy)):
        if cls is None:
            continue
        module = sympy_bridge if policy else sympy
        assert isinstance(getattr(module, cls), type), f"{name}: {module.__name__}.{cls}"
        back = graphc.from_sympy(sympy_bridge.to_sympy(g, policy=policy))
        root = back.op(back.outputs[0])
        # SymPy writes Not(a0 != 0) as a0 == 0 when it builds it: the same function
        assert root == name or (name, root) == ("not", "eq"), (name, policy, root)


NEW_OP_CHILD = """
import numpy as np
import graphc
from graphc import numpy as gnp
from graphc import ops

# every index is in use before the op exists (the parser's, the printer's, the tracer's)
graphc.grad("u = x*y; cos(u) / u")(1.0, 2.0)
assert graphc.trace(lambda x, y: x * y + x).variables == ["x", "y"]
# sec: one entry, known to nothing but the table (SymPy's own class converts back to it)
ops.OPS["sec"] = ops.Op(
    "sec", 1, "1.0 / np.cos({0})", lambda x: ops._sp().sec(x),
    lambda e, a: e.builder.fdiv(e.const(1.0), e.call("cos", a[0])),
    (lambda b, a, o: b.mul(o, b.apply("tan", a[0])),),
    function="sec", sympy_class="sec", domain=((-1.2, 1.2),), c="1.0 / cos({0})",
    policy=(ops.Point("sec(x)", "x=0", 1.0, (0.0,), "the minimum: sec*tan = 1*0"),),
)
# fmod, Python's % on traced values (the language has no symbol for it): one entry too
ops.OPS["fmod"] = ops.Op(
    "fmod", 2, "np.fmod({0}, {1})", lambda x, y: ops._sp().Mod(x, y),
    lambda e, a: e.call("fmod", *a),
    (lambda b, a, o: b.const(1.0), lambda b, a, o: b.neg(b.div(b.sub(a[0], o), a[1]))),  # -trunc(x/y)
    function="fmod", python="mod", domain=((0.5, 3.0), (0.7, 2.0)), c="fmod({0}, {1})", smooth="test op",
)
assert "sec" in ops.RESERVED and "sec" in ops.FUNCTIONS
try:
    graphc.parse("sec = 1; sec")
    raise AssertionError("sec is a variable")
except graphc.ParseError as error:
    assert "built-in function" in str(error), error
traced = graphc.trace(lambda x, y: x % y)
assert [traced.op(n) for n in traced.outputs] == ["fmod"], traced.outputs
dx, dy = graphc.grad(traced, backend="numpy")(2.0, 0.75)
assert (float(dx), float(dy)) == (1.0, -2.0)
assert gnp.numpy_name(ops.OPS["fmod"]) == "fmod" and gnp.numpy_name(ops.OPS["add"]) == "add"
x = graphc.sym("x")
assert (repr(gnp.sec(x)), repr(np.fmod(x, 2.0))) == ("<traced sec(x)>", "<traced fmod(x, 2)>")
import sympy
from graphc import policy, sympy_bridge

assert "sec" not in policy.uncovered()
(row,) = [r for r in policy.POLICY if r.op == "sec"]
assert "| `sec` | `sec(x)` | x=0 | 1 | (0) | the minimum: sec*tan = 1*0 |" in policy.markdown()
for method in ("dp", "forward", "paths", "symbolic"):
    for backend in ("numpy", "llvm"):
        value, (dx,) = graphc.value_and_grad(row.expr, method=method, backend=backend)(**row.at)
        assert (float(value), float(dx)) == (row.value, *row.gradient), (method, backend, value, dx)
x = sympy.Symbol("x", real=True)
back = graphc.from_sympy(sympy.sec(x))
assert back.op(back.outputs[0]) == "sec"
assert sympy_bridge.to_sympy(graphc.parse("sec(x)")) == sympy.sec(x)
print("everywhere")
"""


def test_a_new_op_appears_everywhere_from_its_one_entry():
    """An op added to the table at run time (in a child process: some spellings are indexed at
    import) is in the policy table with its row, which every exact method and both backends give,
    and converts to SymPy and back, with no edit anywhere else."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "GRAPHC_NO_CACHE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", NEW_OP_CHILD], check=False, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "everywhere"
