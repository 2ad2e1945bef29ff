"""``numeric``: central differences, the reference checker.

``∂f/∂x ≈ (f(x + h) - f(x - h)) / ((x + h) - (x - h))`` with ``h = cbrt(eps)·max(1, |x|)``, which
balances truncation error (O(h²)) against rounding error (O(eps/h)); dividing by the step as
actually represented, not by ``2h``, removes the rounding of ``x ± h`` from the quotient. The
result is a graph like every other method's: for each input, the nodes that depend on it are
replayed twice with the input shifted, so its cost is two forward passes per input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphc.diff.common import assemble, depends_on, prepared
from graphc.graph import Graph
from graphc.ops import VAR

STEP = float(np.cbrt(np.finfo(np.float64).eps))


def replay(graph: Graph, source: int, replacement: int, dependent: Sequence[bool]) -> dict[int, int]:
    """Rebuild every dependent node with ``source`` replaced by ``replacement``: old node → new node."""
    mapping = {source: replacement}
    for node in range(source + 1, len(dependent)):
        if dependent[node] and graph.op(node) != VAR:
            mapping[node] = graph.apply(graph.op(node), *(mapping.get(a, a) for a in graph.args(node)))
    return mapping


def differentiate(graph: Graph, wrt: str | Sequence[str] | None = None) -> Graph:
    """The function's outputs followed by each output's partials, by central differences.

    >>> from graphc.parse import parse
    >>> differentiate(parse("x**3")).output_names
    ['f', '∂f/∂x']
    """
    if graph.tensor:
        from graphc.diff import blocks

        return blocks.differentiate_numeric(graph, wrt)
    result, names = prepared(graph, wrt)
    keep = graph.reachable()
    columns = []
    for name in names:
        x = result.variable(name)
        dependent = [d and k for d, k in zip(depends_on(result, [x], len(graph)), keep, strict=True)]
        h = result.mul(result.const(STEP), result.apply("max", result.const(1.0), result.apply("abs", x)))
        up, down = result.add(x, h), result.sub(x, h)
        above, below = replay(result, x, up, dependent), replay(result, x, down, dependent)
        step = result.sub(up, down)
        columns.append(
            [
                result.div(result.sub(above[o], below[o]), step) if dependent[o] else None
                for o in graph.outputs
            ]
        )
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in graph.outputs]
    return assemble(graph, result, names, rows, "numeric", passes=2 * len(names))
