"""Compressed evaluation: one derivative graph computing every structural nonzero, few passes.

A Jacobian colouring of the columns gives one forward pass per colour, seeded with tangent 1 on
the colour's inputs (a JVP with the seed vector); a colouring of the rows gives one reverse pass
per colour, seeded with adjoint 1 on the colour's outputs (a VJP). A Hessian is one reverse pass
per colour of a star colouring over its reverse-mode gradient (Hessian-vector products). Every
pass builds on one graph, so the nonzeros are the outputs of one graph, compiled once. Entries
that are constant nodes (``1`` in a residual ``x1 - 2*x2 + x3``) are written into the matrix's
data once, not computed at each call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from graphc.diff import dp
from graphc.diff.common import LocalPartials, Terms, depends_on, distinct_users
from graphc.diff.dp import adjoints
from graphc.diff.forward import tangents
from graphc.graph import Graph
from graphc.sparse.coloring import recovery_rows


class Entries(NamedTuple):
    """The graph the entries are built on, and each nonzero's node in CSR order (None: zero). The
    graph is the passes' own copy, which SparseKernel gives its outputs."""

    graph: Graph
    nodes: list[int | None]


def groups(colour: Sequence[int]) -> list[list[int]]:
    """The positions of each colour, by colour."""
    by_colour: list[list[int]] = [[] for _ in range(max(colour, default=-1) + 1)]
    for position, c in enumerate(colour):
        by_colour[c].append(position)
    return by_colour


def _forward(
    graph: Graph, outputs: Sequence[int], sources: Sequence[Sequence[int]]
) -> tuple[Graph, list[Any]]:
    """On a copy of ``graph``: for each group of variable nodes, the tangent node of each of
    ``outputs`` seeded with 1 on the group (``None`` where structurally zero)."""
    result = graph.copy()
    keep = graph.reachable(outputs)
    local, terms = LocalPartials(result), Terms(result)
    users = distinct_users(graph, keep)
    columns = []
    for group in sources:
        tangent = tangents(result, group, keep, local, users)
        columns.append([terms.materialised(tangent[out]) if out in tangent else None for out in outputs])
    return result, columns


def forward_entries(
    graph: Graph, wrt: Sequence[str], rows: Sequence[Sequence[int]], colour: Sequence[int]
) -> Entries:
    """The Jacobian's nonzeros by one forward pass per column colour."""
    variables = [graph.variable(name) for name in wrt]
    sources = [[variables[j] for j in group] for group in groups(colour)]
    result, columns = _forward(graph, graph.outputs, sources)
    nodes = [columns[colour[j]][i] for i, row in enumerate(rows) for j in row]
    return Entries(result, nodes)


def reverse_entries(
    graph: Graph, wrt: Sequence[str], rows: Sequence[Sequence[int]], colour: Sequence[int]
) -> Entries:
    """The Jacobian's nonzeros by one reverse pass per row colour."""
    result = graph.copy()
    variables = [result.variable(name) for name in wrt]
    active = depends_on(result, variables, len(graph))
    # the colours' cones seldom share an edge (a banded function's: never), so a cache of the
    # partials would cost more than it saves
    local, terms = LocalPartials(result, cached=False), Terms(result)
    found: list[dict[int, int]] = []
    for group in groups(colour):
        seeds = [graph.outputs[i] for i in group if active[graph.outputs[i]]]
        adjoint = adjoints(result, seeds, active, local) if seeds else {}
        found.append({node: terms.materialised(adjoint[node]) for node in variables if node in adjoint})
    nodes = [found[colour[i]].get(variables[j]) for i, row in enumerate(rows) for j in row]
    return Entries(result, nodes)


def hessian_entries(
    graph: Graph, wrt: Sequence[str], rows: Sequence[Sequence[int]], colour: Sequence[int]
) -> Entries:
    """The Hessian's nonzeros from its star colouring: the gradient by reverse mode, then one
    reverse pass over it per colour (seeded on the colour's partials: the Hessian is symmetric, so
    this is the colour's compressed column), each entry read where it is alone in its colour. A
    colour of one variable is exactly the dense Hessian's dp over dp, singular points included."""
    gradient = dp.differentiate(graph, list(wrt))
    result = gradient.copy()
    variables = [result.variable(name) for name in wrt]
    partials = gradient.outputs[1:]
    active = depends_on(result, variables, len(gradient))
    local, terms = LocalPartials(result), Terms(result)
    columns: list[list[int | None]] = []
    for group in groups(colour):
        seeds = [partials[j] for j in group if active[partials[j]]]
        adjoint = adjoints(result, seeds, active, local) if seeds else {}
        columns.append([terms.materialised(adjoint[node]) if node in adjoint else None for node in variables])
    neighbours = [[j for j in row if j != i] for i, row in enumerate(rows)]
    alone = recovery_rows(neighbours, colour)
    nodes: list[int | None] = []
    for i, row in enumerate(rows):
        for j in row:
            if i == j:
                nodes.append(columns[colour[i]][i])
            else:
                at = alone[min(i, j), max(i, j)]  # one choice for both triangles: exactly symmetric
                nodes.append(columns[colour[j if at == i else i]][at])
    return Entries(result, nodes)
