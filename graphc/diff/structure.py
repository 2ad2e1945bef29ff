"""Structural zeros: zeros known when a derivative graph is built, flagged like a ``where``'s.

A one-hot seed (a tensor output's row in ``dp``, an input's column in ``forward``) and the block
of zeros an ``unindex`` sets its operand in (``index``'s VJP) are exactly 0 whatever the values
are, like an unselected lane of a ``where``. They are flagged as one (graphc.diff.common), so a
structural zero never meets an infinite partial in a product: it acts as CppAD's ``azmul``
(0 * inf = 0) there, and only there. A zero that is a computed value (``x - x``, a user's
cotangent) has no flag: times inf it is NaN, as IEEE says.

A structural flag is built from constants alone, so its value is known at build time:
:class:`Structure` computes it (through each op's own NumPy source, :meth:`graphc.ops.Op.evaluate`)
and drops a flag that is nonzero everywhere, the common case past the first dense product (``Wᵀ
e_i`` reaches every element), so the products below it stay the plain ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.diff.common import Flag
from graphc.graph import Graph
from graphc.ops import ALL_OPS, CONST, VAR, broadcast_to

PLACING = "unindex"  # the op that sets its operand in a block of zeros known at build time
LARGEST = 1 << 20  # elements: a flag (or a node below it) larger than this is not evaluated


def placed_flag(graph: Graph, node: int | None, flag: Flag) -> Flag:
    """Where ``node`` (an adjoint or a tangent a block op's VJP or JVP built from a term live where
    ``flag`` is) is live: an ``unindex`` is live only in its block, else ``flag`` holds."""
    if node is None or graph.op(node) != PLACING or (flag is not None and graph.shape(flag) != ()):
        return flag
    (operand,) = graph.args(node)
    live = broadcast_to(graph, graph.const(1.0) if flag is None else flag, graph.shape(operand))
    return graph.apply(PLACING, live, params=graph.params(node))


def placed(graph: Graph, node: int, flag: Flag) -> tuple[int, Any] | None:
    """``(v, index)`` if ``node`` is ``unindex(v)`` at ``index`` and ``flag`` is exactly its block
    (no ``where`` condition in it): a term whose zeros are all structural, so a product with it is
    the product with ``v`` alone, placed (no zero is multiplied at all); else None."""
    if flag is None or graph.op(node) != PLACING or flag != placed_flag(graph, node, None):
        return None
    return graph.args(node)[0], graph.params(node)[0]


class Structure:
    """The build-time values of nodes computed from constants alone, for the passes of one
    derivative (each node evaluated once)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._values: dict[int, np.ndarray | None] = {}  # None: not known at build time

    def pruned(self, flag: Flag) -> Flag:
        """``flag``, or None (live everywhere) if its build-time value is nonzero everywhere."""
        if flag is None:
            return None
        value = self.value(flag)
        return None if value is not None and bool(np.all(value != 0)) else flag

    def value(self, node: int) -> np.ndarray | None:
        """The value of ``node`` if it depends on no variable and no node on its way is large."""
        graph, values = self.graph, self._values
        stack = [node]
        while stack:
            top = stack[-1]
            if top in values:
                stack.pop()
                continue
            op = graph.op(top)
            if op == VAR or not _small(graph, top):
                values[top] = None
                stack.pop()
                continue
            if op == CONST:
                values[top] = np.asarray(graph.const_value(top), dtype=np.float64)
                stack.pop()
                continue
            args = graph.args(top)
            missing = [a for a in args if a not in values]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            operands = [values[a] for a in args]
            if any(v is None for v in operands):
                values[top] = None
            else:
                result = ALL_OPS[op].evaluate(*operands, params=graph.params(top))
                values[top] = np.broadcast_to(result, graph.shape(top))  # type: ignore[arg-type]
        return values[node]


def _small(graph: Graph, node: int) -> bool:
    count = 1
    for d in graph.shape(node):
        if not isinstance(d, int):
            return False
        count *= d
    return count <= LARGEST
