"""graphc's policy at kinks, singular points and overflow: the value and the derivative at each.

Each op states its own hard points in its entry of the op table (graphc/ops.py), beside the
rules that produce these numbers: ``policy=`` rows (expression, point, value, gradient, why),
``algebra=`` rows for its rewrite, or ``smooth=`` saying why it needs none. This module gathers
them: :data:`POLICY` and :data:`REWRITES` are the rows of every entry in table order, :data:`SMOOTH`
the reasons; tests/test_policy.py checks every row for every method but ``numeric`` and every
backend, exactly (signed zeros included, or both NaN); the manual's policy table (docs/policy.md)
is :func:`markdown`'s output, generated when the manual is built (and printed by
``python -m graphc.policy``).

The principles behind the rows:

* A value is IEEE float64 as NumPy computes it (``log(0) = -inf``, ``sqrt(-1) = nan``,
  ``0**0 = 1``, ``(-8)**(1/3) = nan``). A derivative is the chain rule over the op table's local
  derivatives, evaluated in float64: where a rule is singular the answer is the rule's IEEE
  value (``sqrt'(0) = 0.5/0 = inf``), stated here rather than patched.
* At a kink the derivative is a fixed element of the subdifferential. ``abs'(0) = 0`` and a
  ``max``/``min`` tie splits evenly (1/2 each: the midpoint, which is the only choice that does
  not depend on the operand order, as ``max`` commutes and its operands are stored in a canonical
  order; ``max(x, x)`` gets 1/2 + 1/2 = 1), and a tie among k leaves of nested maxima, such as
  ``max(max(a, b), c)`` or the scalar form of ``max`` of a vector, gives 1/k to each, as the
  vector's own rule does. Because both are midpoints, every spelling built from
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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ops import BLOCK_OPS, OPS, Op, Point
from graphc.values import _split_top_level, parse_array

PI = math.pi


@dataclass(frozen=True)
class Row:
    """What graphc gives for ``expr`` at ``at``: its value, and its gradient in sorted-variable order
    (a partial with respect to a tensor input is a nested tuple of its shape)."""

    op: str  # the op-table entry whose policy the row states
    expr: str
    at: dict[str, Any]  # a float, or an array for a tensor input
    value: float
    gradient: tuple[Any, ...]
    why: str


def _at(text: str) -> dict[str, Any]:
    """``"x=0,y=-0.0"`` or ``"x=[1, 3, 3]"``: numbers as ``float`` reads them (``nan``, ``-inf``)."""
    pairs = (item.split("=", 1) for item in _split_top_level(text))
    return {name.strip(): parse_array(value) if "[" in value else float(value) for name, value in pairs}


def rows(points: Iterable[tuple[Op, Point]]) -> tuple[Row, ...]:
    """Each op's points as rows naming it."""
    return tuple(Row(op.name, p.expr, _at(p.at), p.value, p.gradient, p.why) for op, p in points)


_TABLE = (*OPS.values(), *BLOCK_OPS.values())  # the elementwise ops first, each table in its order
POLICY: tuple[Row, ...] = rows((op, p) for op in _TABLE for p in op.policy)
REWRITES: tuple[Row, ...] = rows((op, p) for op in _TABLE for p in op.algebra)
# Ops without a kink, a singular point or a domain edge at a finite float64 input, with the reason.
SMOOTH: dict[str, str] = {op.name: op.smooth for op in OPS.values() if op.smooth}

_NAMED = {PI: "π", -PI: "-π", PI / 2: "π/2", -PI / 2: "-π/2"}


def text(value: Any) -> str:
    """A number as the table shows it: ``nan``, ``-inf``, ``-0.0``, ``π/2``, ``0.5``, ``1.633e+16``."""
    if isinstance(value, (tuple, list, np.ndarray)):  # a tensor's elements, nested
        return "[" + ", ".join(text(v) for v in value) + "]"
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
    """Elementwise ops with neither a policy row nor a ``smooth`` reason (a test keeps this empty)."""
    return [name for name, op in OPS.items() if not op.policy and not op.smooth]


if __name__ == "__main__":
    print(markdown(), end="")
