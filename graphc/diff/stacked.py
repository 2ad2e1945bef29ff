"""``forward`` and ``numeric`` on a tensor input in one pass: its elements stacked on a new axis.

A tensor input ``x`` of shape ``S`` with ``n`` elements is seeded, in ``forward``, with the
identity ``E`` of shape ``(n,) + S`` (slice ``i`` is the one-hot of element ``i``, C order), and
shifted, in ``numeric``, by ``E`` times the steps: every node that depends on ``x`` then carries
the leading axis of length ``n``, and one pass gives what ``n`` passes of one element each gave,
with the same arithmetic per element. The graph grows with the function's graph, not with
``n`` times it.

A node of shape ``s`` carries shape ``(n,) + s``; an operand of lower rank than its node gets 1s
between the stacked axis and its own axes, so NumPy's broadcasting lines it up with the other
operands as before. Elementwise ops need nothing more; a block op needs its entry's ``stacked``
rule (its params for an operand with leading axes), and ``forward`` also needs it ``linear`` (its
JVP is the op itself on the tangent) or a constant to differentiation (``shift``). A function with another block op, or a ``where`` (whose
flags per element this does not carry), is left to the one-element-at-a-time methods of
graphc.diff.blocks: :func:`stackable` says which.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.graph import Graph
from graphc.ops import ALL_OPS, CONST, NO_TANGENT, VAR, broadcast_to
from graphc.shapes import Shape, size

Lead = Shape  # the stacked (leading) axes


def stackable(graph: Graph, nodes: Sequence[bool], tangent: bool) -> bool:
    """Whether every marked node can carry a stacked axis (``tangent``: as a JVP, in ``forward``)."""
    for node, marked in enumerate(nodes):
        if not marked or graph.op(node) in (VAR, CONST):
            continue
        spec = ALL_OPS[graph.op(node)]
        if spec.gate is not None:
            return False
        if spec.block and (spec.stacked is None or spec.arity != 1):
            return False
        if spec.block and tangent and not spec.linear and spec.jvp is not NO_TANGENT:
            return False
    return True


def identity(graph: Graph, shape: Shape) -> int:
    """The tensor of shape ``(n,) + shape`` whose slice ``i`` is the one-hot of element ``i``, in
    five nodes: the rows of the ``n x n`` identity, laid end to end, are ``n`` copies of
    ``[1, 0, ..., 0]`` (length ``n + 1``) cut to ``n * n`` elements."""
    n = size(shape)
    row = graph.apply("unindex", graph.const(1.0), params=((0,), (n + 1,)))
    tiled = graph.apply("broadcast", row, params=(n, n + 1))
    flat = graph.apply("reshape", tiled, params=(n * (n + 1),))
    cut = graph.apply("index", flat, params=((0, n * n, 1),))
    return graph.apply("reshape", cut, params=(n, *shape))


def _lined_up(graph: Graph, node: int, own: Shape, rank: int, lead: Lead) -> int:
    """A stacked operand (shape ``lead + own``) with 1s before ``own`` up to ``rank`` axes."""
    pad = rank - len(own)
    return node if pad == 0 else graph.apply("reshape", node, params=lead + (1,) * pad + own)


def replayed(graph: Graph, source: int, stack: int, nodes: Sequence[bool]) -> dict[int, int]:
    """Every marked node after ``source`` rebuilt with ``source`` replaced by ``stack`` (its value
    along leading axes): old node → new node."""
    lead = graph.shape(stack)[: len(graph.shape(stack)) - len(graph.shape(source))]
    mapping = {source: stack}
    for node in range(source + 1, len(nodes)):
        if not nodes[node] or graph.op(node) == VAR:
            continue
        spec, args = ALL_OPS[graph.op(node)], graph.args(node)
        if spec.block:
            assert spec.stacked is not None, spec.name
            params = spec.stacked(graph.params(node), lead)
            mapping[node] = graph.apply(spec.name, mapping[args[0]], params=params)
            continue
        rank = len(graph.shape(node))
        operands = (
            _lined_up(graph, mapping[a], graph.shape(a), rank, lead) if a in mapping else a for a in args
        )
        mapping[node] = graph.apply(spec.name, *operands)
    return mapping


def tangents(graph: Graph, source: int, seed: int, keep: Sequence[bool]) -> dict[int, int]:
    """The stacked tangent (shape ``lead + node shape``) of every kept node that depends on
    ``source``, whose tangent is ``seed``: graphc.diff.blocks.tangents with the stacked axes."""
    lead = graph.shape(seed)[: len(graph.shape(seed)) - len(graph.shape(source))]
    tangent = {source: seed}
    for node in range(source + 1, len(keep)):
        if not keep[node]:
            continue
        args = graph.args(node)
        seeds = tuple(tangent.get(a) for a in args)
        if all(t is None for t in seeds):
            continue
        spec = ALL_OPS[graph.op(node)]
        if spec.block:
            assert spec.stacked is not None and seeds[0] is not None, spec.name
            if spec.linear:  # else a constant to differentiation (``stackable``): no tangent
                params = spec.stacked(graph.params(node), lead)
                tangent[node] = graph.apply(spec.name, seeds[0], params=params)
            continue
        rank = len(graph.shape(node))
        total = None
        for slot, t in enumerate(seeds):
            rule = spec.partials[slot]
            z = None if t is None or rule is None else rule(graph, args, node)
            if z is None or t is None:
                continue
            term = graph.mul(z, _lined_up(graph, t, graph.shape(args[slot]), rank, lead))
            total = term if total is None else graph.add(total, term)
        if total is not None:
            tangent[node] = broadcast_to(graph, total, lead + graph.shape(node))
    return tangent


def unstacked(graph: Graph, node: int, in_shape: Shape, out_shape: Shape) -> int:
    """``∂out/∂x`` of shape ``out_shape + in_shape`` from its stacked form (``(n,) + out_shape``)."""
    rank = len(out_shape)
    if rank:
        node = graph.apply("transpose", node, params=tuple(range(1, rank + 1)) + (0,))
    target = out_shape + in_shape
    return node if graph.shape(node) == target else graph.apply("reshape", node, params=target)
