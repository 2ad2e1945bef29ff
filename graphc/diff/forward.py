"""``forward``: tangent propagation, one pass per input (a Jacobian column each).

The tangent of the chosen input is 1; nodes are visited in creation (topological) order and a
node's tangent is the sum over its operand slots of ``z(i, j) * tangent[i]``, with the same local
derivatives ``z`` from the op table that ``dp`` and ``paths`` use.

A tangent is carried as a term ``(node, k)``, the value ``k*node`` with ``k`` an exact power of
two (see graphc.diff.common), as ``dp`` carries adjoints: ``d(a*a) = a*da + a*da`` is
``(a*da, 2k)``, not ``t + t``, and only the outputs' tangents are multiplied out.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.diff.common import Flag, Gates, LocalPartials, Term, Terms, assemble, distinct_users, prepared
from graphc.graph import Graph
from graphc.ops import GATES


def tangents(
    graph: Graph,
    source: int | Sequence[int],
    keep: Sequence[bool],
    local: LocalPartials,
    users: Sequence[int] | None = None,
) -> dict[int, Term]:
    """The tangent ``∂node/∂source`` of every kept node that depends on ``source``, as a term
    ``(n, k)`` whose value is ``k*n`` (``Terms(graph).materialised`` builds its node).

    Several variable nodes as ``source`` seed each with the tangent 1: a directional derivative
    along their sum (graphc.sparse's compressed Jacobian columns).
    ``users`` is :func:`~graphc.diff.common.distinct_users` of ``keep``, counted here when first
    needed if not given. A tangent through a ``where`` is a select, and every product after it is
    taken only where a selected path reaches (the flags of graphc.diff.common), as in ``dp``.
    """
    sources = (source,) if isinstance(source, int) else tuple(source)
    one = graph.const(1.0)
    tangent: dict[int, Term] = {node: (one, 1.0) for node in sources}
    flags: dict[int, int] = {}  # the flag of a tangent that is not live everywhere
    terms, gates = Terms(graph), Gates(graph)
    ops = graph.ops
    for node in range(min(sources, default=len(keep)) + 1, len(keep)):
        if not keep[node]:
            continue
        total = None
        reach: int | None = None
        gate = GATES.get(ops[node])
        args = graph.args(node)
        for slot, arg in enumerate(args):
            seed = tangent.get(arg)
            if seed is None:
                continue
            flag: Flag = flags.get(arg)
            live: Flag
            if gate is not None:
                passed = gate(graph, args, slot, terms.materialised(seed))
                if passed is None:
                    continue
                term, live = (passed[0], 1.0), gates.both(flag, passed[1])
            else:
                z = local(node, slot)
                if z is None:
                    continue
                term = terms.scaled(seed, z)
                if flag is not None:
                    term = gates.guarded(flag, term, z)
                live = flag
            reach = live if total is None else gates.either(reach, live)
            total = terms.accumulated(total, term)
        if total is None:
            continue
        if reach is not None:
            flags[node] = reach
        if total[1] != 1.0 and total[1] != -1.0:
            if users is None:
                users = distinct_users(graph, keep)
            if users[node] > 1:
                total = terms.spread(total)
        tangent[node] = total
    return tangent


def differentiate(graph: Graph, wrt: str | Sequence[str] | None = None) -> Graph:
    """The function's outputs followed by each output's partials, by forward accumulation.

    >>> from graphc.parse import parse
    >>> differentiate(parse("x*y, x + y")).info["passes"]
    2
    """
    if graph.tensor:
        from graphc.diff import blocks

        return blocks.differentiate_forward(graph, wrt)
    result, names = prepared(graph, wrt)
    keep = graph.reachable()
    local, terms = LocalPartials(result), Terms(result)
    users = distinct_users(graph, keep)
    columns = []
    for name in names:
        tangent = tangents(result, result.variable(name), keep, local, users)
        columns.append(
            [terms.materialised(tangent[out]) if out in tangent else None for out in graph.outputs]
        )
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in graph.outputs]
    return assemble(graph, result, names, rows, "forward", passes=len(names))
