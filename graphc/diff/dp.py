"""``dp``: reverse mode as dynamic programming over the graph (backpropagation).

The adjoint of an output is 1; nodes are visited in reverse creation order (a reverse
topological order), and each edge from operand ``i`` to user ``j`` adds ``adjoint[j] * z(i, j)``
to ``adjoint[i]``, where ``z`` is the op table's local derivative. One pass per output, each
linear in the number of edges: the path-aggregation sum, collapsed.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.diff.common import LocalPartials, accumulated, assemble, depends_on, prepared, scaled
from graphc.graph import Graph


def adjoints(graph: Graph, output: int, active: Sequence[bool], local: LocalPartials) -> dict[int, int]:
    """The adjoint node ``∂output/∂node`` of every node on an active path to ``output``.

    Only edges whose operand is ``active`` (depends on a variable of interest) are followed.
    New nodes are built on ``graph``; the visit covers only nodes that existed before.
    """
    adjoint = {output: graph.const(1.0)}
    operands = graph.operands
    for node in range(output, -1, -1):
        seed = adjoint.get(node)
        if seed is None:
            continue
        for slot, arg in enumerate(operands[node]):
            if active[arg]:
                z = local(node, slot)
                if z is not None:
                    adjoint[arg] = accumulated(graph, adjoint.get(arg), scaled(graph, seed, z))
    return adjoint


def differentiate(graph: Graph, wrt: str | Sequence[str] | None = None) -> Graph:
    """The function's outputs followed by each output's partials, by reverse accumulation.

    >>> from graphc.parse import parse
    >>> d = differentiate(parse("sin(x*y) + exp(x)"))
    >>> d.output_names
    ['f', '∂f/∂x', '∂f/∂y']
    >>> d.info["passes"]
    1
    """
    result, names = prepared(graph, wrt)
    sources = [result.variable(name) for name in names]
    active = depends_on(result, sources, len(graph))
    local = LocalPartials(result)
    rows = []
    for output in graph.outputs:
        adjoint = adjoints(result, output, active, local) if active[output] else {}
        rows.append([adjoint.get(node) for node in sources])
    return assemble(graph, result, names, rows, "dp", passes=len(graph.outputs))
