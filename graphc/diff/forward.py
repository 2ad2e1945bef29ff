"""``forward``: tangent propagation, one pass per input (a Jacobian column each).

The tangent of the chosen input is 1; nodes are visited in creation (topological) order and a
node's tangent is the sum over its operand slots of ``z(i, j) * tangent[i]``, with the same local
derivatives ``z`` from the op table that ``dp`` and ``paths`` use.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.diff.common import LocalPartials, accumulated, assemble, prepared, scaled
from graphc.graph import Graph


def tangents(graph: Graph, source: int, keep: Sequence[bool], local: LocalPartials) -> dict[int, int]:
    """The tangent node ``∂node/∂source`` of every kept node that depends on ``source``."""
    tangent = {source: graph.const(1.0)}
    for node in range(source + 1, len(keep)):
        if not keep[node]:
            continue
        total = None
        for slot, arg in enumerate(graph.args(node)):
            seed = tangent.get(arg)
            if seed is None:
                continue
            z = local(node, slot)
            if z is None:
                continue
            total = accumulated(graph, total, scaled(graph, z, seed))
        if total is not None:
            tangent[node] = total
    return tangent


def differentiate(graph: Graph, wrt: str | Sequence[str] | None = None) -> Graph:
    """The function's outputs followed by each output's partials, by forward accumulation.

    >>> from graphc.parse import parse
    >>> differentiate(parse("x*y, x + y")).info["passes"]
    2
    """
    result, names = prepared(graph, wrt)
    keep = graph.reachable()
    local = LocalPartials(result)
    columns = []
    for name in names:
        tangent = tangents(result, result.variable(name), keep, local)
        columns.append([tangent.get(output) for output in graph.outputs])
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in graph.outputs]
    return assemble(graph, result, names, rows, "forward", passes=len(names))
