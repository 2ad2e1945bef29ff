"""``dp``: reverse mode as dynamic programming over the graph (backpropagation).

The adjoint of an output is 1; nodes are visited in reverse creation order (a reverse
topological order), and each edge from operand ``i`` to user ``j`` adds ``adjoint[j] * z(i, j)``
to ``adjoint[i]``, where ``z`` is the op table's local derivative. One pass per output, each
linear in the number of edges: the path-aggregation sum, collapsed.

An adjoint is carried as a term ``(node, k)``, the value ``k*node`` with ``k`` an exact power of
two (see graphc.diff.common): the two edges of ``a*a`` then sum to ``(adj*a, 2k)`` rather than
``t + t``, a negated contribution to a subtraction, and only the partials asked for are
multiplied out. Power-of-two rescaling is exact, so the values are those of the plain sums.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.diff.common import (
    Flag,
    Gates,
    LocalPartials,
    Term,
    Terms,
    assemble,
    depends_on,
    join_flag,
    prepared,
)
from graphc.graph import Graph
from graphc.ops import GATES, OPS, Rule


def adjoints(
    graph: Graph, output: int | Sequence[int], active: Sequence[bool], local: LocalPartials
) -> dict[int, Term]:
    """The adjoint ``∂output/∂node`` of every node on an active path to ``output``, as a term
    ``(n, k)`` whose value is ``k*n`` (``Terms(graph).materialised`` builds its node).

    Several outputs seed each with the adjoint 1 (an output listed twice, 2): the adjoint of their
    sum (graphc.sparse's compressed Jacobian rows).
    Only edges whose operand is ``active`` (depends on a variable of interest) are followed.
    New nodes are built on ``graph``; the visit covers only nodes that existed before. An adjoint
    through a ``where`` is a select, and below it every product is taken only where a selected
    path reaches (the flags of graphc.diff.common): an unselected branch contributes exactly 0.
    """
    outputs = (output,) if isinstance(output, int) else tuple(output)
    terms, gates = Terms(graph), Gates(graph)
    adjoint: dict[int, Term] = {}
    for node in outputs:
        adjoint[node] = terms.accumulated(adjoint.get(node), (graph.const(1.0), 1.0))
    flags: dict[int, int] = {}  # the flag of an adjoint that is not live everywhere
    operands, ops = graph.operands, graph.ops
    scaled, accumulated = terms.scaled, terms.accumulated
    one = graph.const(1.0) if outputs else -1  # the seeds' node (no new node): a unit partial's
    # The nodes still to visit, marked 1: an operation that has an adjoint. ``rfind`` skips the
    # rest of the graph at C speed, so a pass costs Python time only in the seeds' cone (a sparse
    # Jacobian's colour, not the whole graph per colour).
    pending = bytearray(max(outputs, default=-1) + 1)
    for node in outputs:
        pending[node] = 1
    node = len(pending)
    rules: tuple[Rule | None, ...]
    uncached = not local.cached
    while (node := pending.rfind(1, 0, node)) >= 0:
        seed = adjoint[node]
        args = operands[node]
        if seed[1] != 1.0 and seed[1] != -1.0 and len({arg for arg in args if active[arg]}) > 1:
            seed = terms.spread(seed)
        flag: Flag = flags.get(node) if flags else None
        reach: Flag
        op = ops[node]
        gate = GATES.get(op)
        # uncached, the op's rules run here, as local would run them: one call fewer per edge
        rules = OPS[op].partials if uncached and args else ()
        for slot, arg in enumerate(args):
            if not active[arg]:
                continue
            if gate is not None:
                passed = gate(graph, args, slot, seed[0])
                if passed is None:
                    continue
                term, reach = (passed[0], seed[1]), gates.both(flag, passed[1])
            else:
                if rules:
                    rule = rules[slot]
                    z = None if rule is None else rule(graph, args, node)
                else:
                    z = local(node, slot)
                if z is None:
                    continue
                if flag is None:  # the common case, inline: a term live everywhere
                    if flags and arg in flags:
                        del flags[arg]
                    have = adjoint.get(arg)
                    term = seed if z == one else scaled(seed, z)  # what scaled gives for z = 1
                    if have is None:
                        adjoint[arg] = term
                        if operands[arg]:
                            pending[arg] = 1
                    else:
                        adjoint[arg] = accumulated(have, term)
                    continue
                term, reach = gates.guarded(flag, terms.scaled(seed, z), z), flag
            have = adjoint.get(arg)
            join_flag(flags, gates, arg, have is None, reach)
            adjoint[arg] = terms.accumulated(have, term)
            if have is None and operands[arg]:
                pending[arg] = 1
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
    if graph.tensor:
        from graphc.diff import blocks

        return blocks.differentiate_dp(graph, wrt)
    result, names = prepared(graph, wrt)
    sources = [result.variable(name) for name in names]
    active = depends_on(result, sources, len(graph))
    local, terms = LocalPartials(result), Terms(result)
    rows = []
    for output in graph.outputs:
        adjoint = adjoints(result, output, active, local) if active[output] else {}
        rows.append([terms.materialised(adjoint[node]) if node in adjoint else None for node in sources])
    return assemble(graph, result, names, rows, "dp", passes=len(graph.outputs))
