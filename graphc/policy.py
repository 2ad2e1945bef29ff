"""graphc's policy at kinks, singular points and overflow: the value and the derivative at each.

This table is the one place the policy is written down. The op table (graphc/ops.py) holds the
rules that produce these numbers; tests/test_policy.py checks every row for every method but
``numeric`` and every backend, exactly (signed zeros included, or both NaN); the manual's policy
table (docs/policy.md) is :func:`markdown`'s output, generated when the manual is built (and
printed by ``python -m graphc.policy``).

The principles behind the rows:

* A value is IEEE float64 as NumPy computes it (``log(0) = -inf``, ``sqrt(-1) = nan``,
  ``0**0 = 1``, ``(-8)**(1/3) = nan``). A derivative is the chain rule over the op table's local
  derivatives, evaluated in float64: where a rule is singular the answer is the rule's IEEE
  value (``sqrt'(0) = 0.5/0 = inf``), stated here rather than patched.
* At a kink the derivative is a fixed element of the subdifferential. ``abs'(0) = 0`` and a
  ``max``/``min`` tie splits evenly (1/2 each: the midpoint, which is the only choice that does
  not depend on the operand order, as ``max`` commutes and its operands are stored in a canonical
  order; ``max(x, x)`` gets 1/2 + 1/2 = 1). Because both are midpoints, every spelling built from
  them agrees: ``max(x, 0)``, ``max(0, x)`` (the same node) and ``(x + abs(x))/2`` all give 1/2
  at 0. ``relu`` is its own op with JAX's and PyTorch's ``relu'(0) = 0``, so ``relu(x)`` and
  ``max(x, 0)`` are equal as functions and differ at 0 (0 against 1/2), deliberately.
* A structurally zero partial is never built as a node (a constant exponent has no ``log`` term,
  an operand that does not depend on ``x`` has no adjoint), so it can never meet an infinite
  local derivative: ``∂/∂x sqrt(x^2 + y^2)`` at (0, 1) is exactly (0, 1) in every method. A zero
  that is only a run-time value is not special-cased: ``0 * inf`` is NaN, because the exact answer
  then depends on more than the two numbers (``y*sqrt(x)`` at (0, 0) has ``∂/∂x = 0``, but
  ``sqrt(x)^2`` at 0, with the same ``0 * inf`` in its chain rule, has one-sided derivative 1).
* graphc's algebra: building a graph applies a few identities of the reals (the op table's
  rewrites: ``x + 0 = x - 0 = x*1 = x**1 = --x = x``, ``x*0 = 0``, ``x**0 = 1``), which make
  structural zeros vanish from derivatives. Most are IEEE-exact too; two are not, and graphc
  keeps them as its algebra rather than as float64 arithmetic: ``x*0`` is 0 for every ``x``
  (IEEE: NaN at ``x = ±inf`` or NaN, ``-0.0`` at a negative ``x``), and ``x + 0`` is ``x``
  (IEEE: ``-0.0 + 0 = 0.0``). :data:`REWRITES` states each rewrite at the points where it could
  differ, and the tests hold every method and backend to it as to :data:`POLICY`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from graphc.ops import OPS

NAN, INF, PI = math.nan, math.inf, math.pi


@dataclass(frozen=True)
class Row:
    """What graphc gives for ``expr`` at ``at``: its value, and its gradient in sorted-variable order."""

    op: str  # the op-table entry whose policy the row states
    expr: str
    at: dict[str, float]
    value: float
    gradient: tuple[float, ...]
    why: str


def _at(text: str) -> dict[str, float]:
    pairs = (item.split("=") for item in text.split(","))
    return {name.strip(): float(value) for name, value in pairs}


def _row(op: str, expr: str, at: str, value: float, gradient: tuple[float, ...], why: str) -> Row:
    return Row(op, expr, _at(at), value, gradient, why)


# fmt: off
POLICY: tuple[Row, ...] = (
    _row("relu", "relu(x)", "x=0", 0.0, (0.0,), "JAX/PyTorch: relu'(0) = 0"),
    _row("relu", "relu(x)", "x=-0.0", 0.0, (0.0,), "np.maximum(-0.0, 0.0) is 0.0"),
    _row("max", "max(x, 0)", "x=0", 0.0, (0.5,), "a tie splits evenly; max(0, x) is the same node"),
    _row("max", "(x + abs(x))/2", "x=0", 0.0, (0.5,), "(1 + abs'(0))/2: equal to max(x, 0), not relu"),
    _row("max", "max(x, y)", "x=1,y=1", 1.0, (0.5, 0.5), "a tie splits evenly"),
    _row("max", "max(x, y)", "x=0,y=-0.0", -0.0, (0.5, 0.5), "0.0 and -0.0 tie; np.maximum gives the second"),
    _row("max", "max(x, x)", "x=2", 2.0, (1.0,), "the halves add up"),
    _row("min", "min(x, y)", "x=1,y=1", 1.0, (0.5, 0.5), "a tie splits evenly"),
    _row("min", "min(x, 0)", "x=0", 0.0, (0.5,), "equal to (x - abs(x))/2"),
    _row("abs", "abs(x)", "x=0", 0.0, (0.0,), "the midpoint of [-1, 1]"),
    _row("abs", "abs(x)", "x=-0.0", 0.0, (0.0,), "sign(-0.0) is 0"),
    _row("sign", "sign(x)", "x=0", 0.0, (0.0,), "sign' is 0 wherever it exists; 0 at the jump"),
    _row("sqrt", "sqrt(x)", "x=0", 0.0, (INF,), "0.5/sqrt(0)"),
    _row("sqrt", "sqrt(x)", "x=-0.0", -0.0, (-INF,), "IEEE sqrt(-0.0) = -0.0, so 0.5/-0.0"),
    _row("sqrt", "sqrt(x)", "x=-1", NAN, (NAN,), "outside the domain"),
    _row("log", "log(x)", "x=0", -INF, (INF,), "1/0"),
    _row("log", "log(x)", "x=-0.0", -INF, (-INF,), "1/-0.0"),
    _row("log", "log(x)", "x=-1", NAN, (-1.0,), "outside the domain the rule 1/x still evaluates"),
    _row("pow", "x^2", "x=0", 0.0, (0.0,), "2*x^1 = 2*x: no log term for a constant exponent"),
    _row("pow", "x^3", "x=0", 0.0, (0.0,), "3*x^2"),
    _row("pow", "x^2", "x=-2", 4.0, (-4.0,), "integer exponent: negative base is fine"),
    _row("pow", "x^1.5", "x=0", 0.0, (0.0,), "1.5*0^0.5"),
    _row("pow", "x^0.5", "x=0", 0.0, (INF,), "0.5*0^-0.5"),
    _row("pow", "x^0.5", "x=-1", NAN, (NAN,), "real exponent, negative base: outside the domain"),
    _row("pow", "x^(-1)", "x=0", INF, (-INF,), "-1*0^-2"),
    _row("pow", "x^0", "x=0", 1.0, (0.0,), "x**0 is rewritten to 1 (0**0 = 1)"),
    _row("pow", "x^y", "x=0,y=0", 1.0, (NAN, -INF), "0**0 = 1; 0*0^-1 = nan; 1*log(0)"),
    _row("pow", "x^y", "x=0,y=2", 0.0, (0.0, NAN), "0*log(0) = nan (exactly 0: a run-time zero)"),
    _row("pow", "x^y", "x=0,y=0.5", 0.0, (INF, NAN), "0.5*0^-0.5; 0*log(0)"),
    _row("pow", "x^y", "x=0,y=-1", INF, (-INF, -INF), "-1*0^-2; inf*log(0)"),
    _row("pow", "x^y", "x=-2,y=2", 4.0, (-4.0, NAN), "log(-2) = nan: not differentiable in y"),
    _row("pow", "x^y", "x=-8,y=0.3333333333333333", NAN, (NAN, NAN), "negative base, real exponent"),
    _row("atan2", "atan2(x, y)", "x=0,y=0", 0.0, (NAN, NAN), "0/(0^2 + 0^2): undefined"),
    _row("atan2", "atan2(x, y)", "x=0,y=-1", PI, (-1.0, -0.0), "the branch cut: finite, as the formula"),
    _row("atan2", "atan2(x, y)", "x=-0.0,y=-1", -PI, (-1.0, 0.0), "the other side of the cut"),
    _row("asin", "asin(x)", "x=1", PI / 2, (INF,), "1/sqrt(1 - 1)"),
    _row("asin", "asin(x)", "x=-1", -PI / 2, (INF,), "1/sqrt(1 - 1)"),
    _row("asin", "asin(x)", "x=2", NAN, (NAN,), "outside the domain"),
    _row("acos", "acos(x)", "x=1", 0.0, (-INF,), "-1/sqrt(1 - 1)"),
    _row("acos", "acos(x)", "x=-1", PI, (-INF,), "-1/sqrt(1 - 1)"),
    _row("div", "1/x", "x=0", INF, (-INF,), "-(1/0)/0"),
    _row("div", "1/x", "x=-0.0", -INF, (-INF,), "-(1/-0.0)/-0.0"),
    _row("div", "x/y", "x=1,y=0", INF, (INF, -INF), "1/0; -(1/0)/0"),
    _row("div", "x/y", "x=0,y=0", NAN, (INF, NAN), "0/0 = nan; 1/0; -(nan)/0"),
    _row("tan", "tan(x)", "x=1.5707963267948966", 1.633123935319537e16, (2.6670937881135714e32,),
         "float π/2 is not the pole: 1 + tan^2"),
    _row("sigmoid", "sigmoid(x)", "x=-800", 0.0, (0.0,), "s*(1 - s), not exp(-x)/(1 + exp(-x))^2 = inf/inf"),
    _row("sigmoid", "sigmoid(x)", "x=800", 1.0, (0.0,), "s*(1 - s)"),
    _row("softplus", "softplus(x)", "x=800", 800.0, (1.0,), "sigmoid(x), not exp(x)/(1 + exp(x)) = inf/inf"),
    _row("softplus", "softplus(x)", "x=-800", 0.0, (0.0,), "sigmoid(x)"),
    _row("exp", "exp(x)", "x=800", INF, (INF,), "overflow"),
    _row("sqrt", "sqrt(x^2 + y^2)", "x=0,y=1", 1.0, (0.0, 1.0), "no singularity: exact, by construction"),
    _row("sqrt", "sqrt(x*x + y*y)", "x=0,y=1", 1.0, (0.0, 1.0), "no singularity: exact, by construction"),
    _row("sqrt", "sqrt(pow(x, 2) + y^2)", "x=0,y=1", 1.0, (0.0, 1.0), "no singularity: exact, by construction"),
    _row("sqrt", "sqrt(x^n + y^2)", "n=2,x=0,y=1", 1.0, (NAN, 0.0, 1.0),
         "∂/∂n = 0.5*0*log(0): a run-time zero (exactly 0); ∂/∂x = n*x^(n-1), no 0/0"),
    _row("sqrt", "sqrt(x^2 + y^2)", "x=0,y=0", 0.0, (NAN, NAN), "a cone's tip: undefined (inf*0)"),
    _row("sqrt", "y*sqrt(x)", "x=0,y=0", 0.0, (NAN, 0.0), "0*inf at run time: nan (exactly 0)"),
    _row("where", "where(x > 0, sqrt(x), 0)", "x=0", 0.0, (0.0,),
         "an unselected branch contributes exactly 0: sqrt'(0) = inf is never multiplied"),
    _row("where", "where(x > 0, sqrt(x), 0)", "x=-1", 0.0, (0.0,), "sqrt(-1) = nan is not selected"),
    _row("where", "where(x != 0, sin(x)/x, 1)", "x=0", 1.0, (0.0,), "0/0 is not selected"),
    _row("where", "where(x > 0, x*log(x), 0)", "x=0", 0.0, (0.0,), "0*log(0) is not selected"),
    _row("where", "where(x > -10, sqrt(x), 0)", "x=-1", NAN, (NAN,), "a NaN in the selected branch propagates"),
    _row("where", "sqrt(where(x > 0, x, 0))", "x=0", 0.0, (0.0,),
         "the selected branch (0) has no path from x: sqrt'(0) = inf meets no run-time zero"),
    _row("where", "where(x > 0, x, 2*x)", "x=0", 0.0, (2.0,), "at the switch, the selected branch's derivative"),
    _row("where", "where(c, x, y)", "c=nan,x=1,y=2", 1.0, (0.0, 1.0, 0.0),
         "NaN is nonzero, so true (NumPy's where); nothing passes to the condition"),
    _row("where", "clip(x, 0, 1)", "x=0", 0.0, (1.0,), "clip is where of its pieces: at a bound, the inside's"),
    _row("where", "clip(x, 0, 1)", "x=1", 1.0, (1.0,), "at a bound, the inside's"),
    _row("where", "clip(x, 0, 1)", "x=2", 1.0, (0.0,), "outside: the bound, a constant"),
    _row("lt", "x < y", "x=1,y=1", 0.0, (0.0, 0.0), "a comparison is 1 or 0: derivative 0, also at the jump"),
    _row("lt", "x < 1", "x=nan", 0.0, (0.0,), "NaN compares false"),
    _row("lt", "x < y < z", "x=1,y=2,z=3", 1.0, (0.0, 0.0, 0.0), "Python's chaining: (x < y) and (y < z)"),
    _row("le", "x <= y", "x=1,y=1", 1.0, (0.0, 0.0), "derivative 0"),
    _row("gt", "x > y", "x=1,y=1", 0.0, (0.0, 0.0), "derivative 0"),
    _row("ge", "x >= 0", "x=-0.0", 1.0, (0.0,), "-0.0 equals 0"),
    _row("eq", "x == y", "x=1,y=1", 1.0, (0.0, 0.0), "derivative 0"),
    _row("ne", "x != 1", "x=nan", 1.0, (0.0,), "NaN != anything is true"),
    _row("and", "x and y", "x=2,y=-0.0", 0.0, (0.0, 0.0), "nonzero is true; -0.0 is false"),
    _row("or", "x or y", "x=nan,y=0", 1.0, (0.0, 0.0), "NaN is nonzero: true"),
    _row("not", "not x", "x=nan", 0.0, (0.0,), "NaN is true, so not NaN is 0"),
    _row("floor", "floor(x)", "x=1", 1.0, (0.0,), "derivative 0, also at the jump"),
    _row("ceil", "ceil(x)", "x=-0.5", -0.0, (0.0,), "np.ceil(-0.5) is -0.0; derivative 0"),
    _row("hypot", "hypot(x, y)", "x=0,y=0", 0.0, (NAN, NAN), "x/hypot(x, y) = 0/0: a cone's tip"),
    _row("hypot", "hypot(x, y)", "x=0,y=-2", 2.0, (0.0, -1.0), "no singularity"),
    _row("cbrt", "cbrt(x)", "x=0", 0.0, (INF,), "1/(3*0^2)"),
    _row("cbrt", "cbrt(x)", "x=-8", -2.0, (1.0 / 12.0,), "the real cube root of a negative number"),
    _row("log10", "log10(x)", "x=0", -INF, (INF,), "(1/ln 10)/0"),
    _row("log2", "log2(x)", "x=0", -INF, (INF,), "(1/ln 2)/0"),
    _row("log1p", "log1p(x)", "x=-1", -INF, (INF,), "1/(1 + -1)"),
    _row("acosh", "acosh(x)", "x=1", 0.0, (INF,), "1/sqrt(1 - 1)"),
    _row("acosh", "acosh(x)", "x=0.5", NAN, (NAN,), "outside the domain"),
    _row("atanh", "atanh(x)", "x=1", INF, (INF,), "1/(1 - 1)"),
)
# fmt: on

# fmt: off
REWRITES: tuple[Row, ...] = (
    _row("mul", "x*0", "x=inf", 0.0, (0.0,), "graphc's algebra: x*0 = 0 (IEEE: inf*0 = nan)"),
    _row("mul", "x*0", "x=nan", 0.0, (0.0,), "graphc's algebra: x*0 = 0 (IEEE: nan)"),
    _row("mul", "x*0", "x=-1", 0.0, (0.0,), "graphc's algebra: x*0 = 0 (IEEE: -1*0 = -0.0)"),
    _row("mul", "0*x + y", "x=inf,y=1", 1.0, (0.0, 1.0), "a constant operand is put second, then x*0 = 0"),
    _row("add", "x + 0", "x=-0.0", -0.0, (1.0,), "graphc's algebra: x + 0 = x (IEEE: -0.0 + 0 = 0.0)"),
    _row("sub", "x - 0", "x=-0.0", -0.0, (1.0,), "x - 0 = x, IEEE-exact (-0.0 - 0 = -0.0)"),
    _row("mul", "x*1", "x=nan", NAN, (1.0,), "x*1 = x, IEEE-exact (NaN stays NaN)"),
    _row("pow", "x^1", "x=-0.0", -0.0, (1.0,), "x**1 = x, IEEE-exact"),
    _row("pow", "x^0", "x=nan", 1.0, (0.0,), "x**0 = 1, IEEE-exact (pow(nan, 0) = 1)"),
    _row("neg", "-(-x)", "x=-0.0", -0.0, (1.0,), "--x = x, IEEE-exact"),
)
# fmt: on

# Ops without a kink, a singular point or a domain edge at a finite float64 input, with the reason.
SMOOTH: dict[str, str] = {
    "add": "smooth everywhere (inf - inf = nan in values only)",
    "sub": "smooth everywhere",
    "mul": "smooth everywhere; 0*inf = nan in values only",
    "neg": "smooth everywhere",
    "sin": "smooth everywhere",
    "cos": "smooth everywhere",
    "atan": "smooth everywhere",
    "sinh": "smooth; overflows to ±inf beyond |x| ≈ 710, with derivative cosh = inf",
    "cosh": "smooth; overflows to inf beyond |x| ≈ 710, with derivative sinh = ±inf",
    "tanh": "smooth; 1 - tanh^2 saturates to exactly 0",
    "erf": "smooth; 2/sqrt(pi)*exp(-x^2) underflows to exactly 0",
    "erfc": "smooth; its derivative underflows to exactly -0",
    "exp2": "smooth; overflows to inf beyond x = 1024",
    "expm1": "smooth; overflows to inf beyond x ≈ 709.8, with derivative exp = inf",
    "asinh": "smooth everywhere",
}

_NAMED = {PI: "π", -PI: "-π", PI / 2: "π/2", -PI / 2: "-π/2"}


def text(value: float) -> str:
    """A number as the table shows it: ``nan``, ``-inf``, ``-0.0``, ``π/2``, ``0.5``, ``1.633e+16``."""
    if value in _NAMED:
        return _NAMED[value]
    if math.isnan(value) or math.isinf(value):
        return repr(value)
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


def markdown(rows: tuple[Row, ...] = POLICY) -> str:
    """The policy (or ``rows``, such as :data:`REWRITES`) as a markdown table, one row per point;
    the manual's policy and rewrite tables are ``markdown()`` and ``markdown(REWRITES)``."""
    lines = [
        "| op | expression | at | value | gradient | why |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        at = ", ".join(f"{name}={text(value)}" for name, value in row.at.items())
        gradient = ", ".join(text(g) for g in row.gradient)
        lines.append(f"| `{row.op}` | `{row.expr}` | {at} | {text(row.value)} | ({gradient}) | {row.why} |")
    return "\n".join(lines) + "\n"


def uncovered() -> list[str]:
    """Ops of the op table with neither a policy row nor a SMOOTH entry (a test keeps this empty)."""
    covered = {row.op for row in POLICY} | set(SMOOTH)
    return [name for name in OPS if name not in covered]


if __name__ == "__main__":
    print(markdown(), end="")
