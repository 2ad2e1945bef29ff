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
rule (the op on operands with leading axes), and ``forward`` also needs it ``linear`` in each
operand (its JVP is the op on the tangents), a ``stacked_jvp``, or a constant to differentiation
(``shift``, ``count``). A ``where`` passes a stacked tangent as it passes one tangent: selected,
and flagged where a selected path reaches (the flags are the primal's, unstacked). Convolutions,
pooling and their adjoints carry the stack as a batch axis (a stacked filter as n times its
channels: graphc.convolution), a user block its body's stack. A function with a block op that
has no stacked rule (``masked_matmul``) is left to the one-element-at-a-time methods of
graphc.diff.blocks: :func:`stackable` says which.

**Diagonal tangents.** Until a block op mixes elements, a node reached from ``x`` through
elementwise ops only depends on ``x`` element by element, so its stacked tangent is ``E * d``
with ``d`` the node's tangent along a seed of ones: ``forward`` carries ``d`` (the node's shape,
not ``n`` times it) and builds the stack, as ``where(E, d, 0)``, only where a block op needs it.
Off the diagonal the stack is then exactly 0, as a one-element pass's tangent is structurally:
``sum(sqrt(x))`` at ``x = 0`` has the partial ``inf`` as ``dp`` does, not the ``0 * inf = nan``
of a one-hot tangent times ``sqrt``'s partial. A block op that can take ``d`` as it is
(``stacked_diagonal``: a sum over every axis) never builds the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from graphc.diff.common import Flag, Gates, elementwise_jvp
from graphc.diff.structure import Structure
from graphc.graph import Graph
from graphc.ops import ALL_OPS, CONST, MASKED, NO_TANGENT, VAR, broadcast_to
from graphc.shapes import Shape, size

Lead = Shape  # the stacked (leading) axes


class Unstackable(Exception):
    """A stacked rule cannot lay its operands' slices out (it needs a number where the shape has a
    name): the input is differentiated one element at a time instead."""


# through(node, tangents, flags, reach): where the tangent of ``node`` is live, from its operands'
# flags (an elementwise node's terms are live where ``reach`` is; graphc.diff.blocks passes a flag
# per element through a block op's structure)
Through = Callable[[int, tuple["int | None", ...], dict[int, int], Flag], Flag]


def stackable(graph: Graph, nodes: Sequence[bool], tangent: bool) -> bool:
    """Whether every marked node can carry a stacked axis (``tangent``: as a JVP, in ``forward``)."""
    for node, marked in enumerate(nodes):
        if not marked or graph.op(node) in (VAR, CONST):
            continue
        spec = ALL_OPS[graph.op(node)]
        if not spec.block:
            continue
        if spec.stacked is None:
            return False
        if tangent and not spec.linear and spec.stacked_jvp is None and spec.jvp is not NO_TANGENT:
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
            which = tuple(a in mapping for a in args)
            operands = tuple(mapping.get(a, a) for a in args)
            mapping[node] = spec.stacked(graph, operands, which, graph.params(node), lead)
            continue
        rank = len(graph.shape(node))
        lined = (
            _lined_up(graph, mapping[a], graph.shape(a), rank, lead) if a in mapping else a for a in args
        )
        mapping[node] = graph.apply(spec.name, *lined)
    return mapping


class _Stack:
    """The stacked tangents of one pass: diagonal ones (``d``, meaning ``E * d``) and full ones
    (shape ``lead + node shape``), the full form of a diagonal one built once, when asked."""

    def __init__(self, graph: Graph, source: int) -> None:
        self.graph = graph
        self.structure = Structure(graph)  # drops a flag of zeros known to be live everywhere
        self.in_shape = graph.shape(source)
        self.lead = (size(self.in_shape),)
        self.diagonal: dict[int, int] = {source: graph.const(1.0)}
        self.full: dict[int, int] = {}
        # where a full tangent is live, if it has structural zeros (graphc.diff.structure): off the
        # diagonal, a full form built from a diagonal one is exactly 0, whatever its products meet
        self.zeros: dict[int, int] = {}
        self._eye: int | None = None

    def has(self, node: int) -> bool:
        return node in self.diagonal or node in self.full

    def stacked(self, node: int) -> int:
        """The full stacked tangent of ``node``: ``where(E, d, 0)`` for a diagonal one (exactly 0
        off the diagonal, whatever ``d`` is there)."""
        if node not in self.full:
            graph, shape = self.graph, self.graph.shape(node)
            if self._eye is None:
                self._eye = identity(graph, self.in_shape)
            eye = _lined_up(graph, self._eye, self.in_shape, len(shape), self.lead)
            d = self.diagonal[node]
            placed = eye if graph.const_value(d) == 1.0 else graph.apply("where", eye, d, graph.const(0.0))
            self.full[node] = broadcast_to(graph, placed, self.lead + shape)
            self.zeros[node] = eye  # (never live everywhere: n > 1, a diagonal one is not stacked)
        return self.full[node]

    def lined(self, node: int, rank: int) -> int:
        """The full stacked tangent of operand ``node`` lined up for a node of ``rank`` axes."""
        return _lined_up(self.graph, self.stacked(node), self.graph.shape(node), rank, self.lead)


def tangents(
    graph: Graph, source: int, keep: Sequence[bool], outputs: Sequence[int], through: Through
) -> dict[int, int] | None:
    """The stacked tangent (shape ``(n,) + output shape``) of each output that depends on
    ``source``: graphc.diff.blocks.tangents with every element of ``source`` seeded at once.
    None where a product whose sums a where's flag masks (graphc.masked) meets a flagged tangent
    (its masked JVP is the one-element path's), or where a block op is :class:`Unstackable`."""
    stack = _Stack(graph, source)
    flags: dict[int, int] = {}  # as in graphc.diff.blocks.tangents
    gates = Gates(graph)
    for node in range(source + 1, len(keep)):
        if not keep[node]:
            continue
        args = graph.args(node)
        seeded = tuple(stack.has(a) for a in args)
        if not any(seeded):
            continue
        reach: Flag = None
        if ALL_OPS[graph.op(node)].block:
            if graph.op(node) in MASKED and any(s and a in flags for a, s in zip(args, seeded, strict=True)):
                return None
            try:
                _block_tangent(stack, node, seeded)
            except Unstackable:
                return None
        else:
            reach = _elementwise_tangent(stack, gates, flags, node, seeded)
        if stack.has(node):
            seeds = tuple(a if s else None for a, s in zip(args, seeded, strict=True))
            reach = through(node, seeds, flags, reach)
            if reach is not None:
                flags[node] = reach
    return {o: stack.stacked(o) for o in outputs if stack.has(o)}


def _block_tangent(stack: _Stack, node: int, seeded: tuple[bool, ...]) -> None:
    """The stacked tangent of block ``node``: the op's diagonal rule, its stacked rule on the
    tangents (linear), or its stacked JVP; none for a constant to differentiation."""
    graph, lead = stack.graph, stack.lead
    spec = ALL_OPS[graph.op(node)]
    args, params = graph.args(node), graph.params(node)
    if spec.stacked_diagonal is not None and args[0] in stack.diagonal:
        d = spec.stacked_diagonal(
            graph, stack.diagonal[args[0]], graph.shape(args[0]), stack.in_shape, params
        )
        if d is not None:
            stack.full[node] = d
            return
    if spec.linear:
        assert spec.stacked is not None, spec.name
        total, live = None, []
        for slot, s in enumerate(seeded):
            if s:
                operands = tuple(stack.stacked(a) if i == slot else a for i, a in enumerate(args))
                which = tuple(i == slot for i in range(len(args)))
                flag = stack.zeros.get(args[slot])
                masked = MASKED.get(spec.name, (None, None, None))[2]
                if flag is not None and masked is not None:  # a product skipping structural zeros
                    term = masked(graph, operands, which, params, lead, flag)
                else:
                    term = spec.stacked(graph, operands, which, params, lead)
                total = term if total is None else graph.add(total, term)
                live.append(_linear_flag(stack, node, slot, flag))
        assert total is not None
        stack.full[node] = total
        either: Flag = live[0]
        for f in live[1:]:  # a term without structural zeros makes the sum live everywhere
            either = None if either is None or f is None else graph.apply("or", either, f)
        either = stack.structure.pruned(either)
        if either is not None:
            stack.zeros[node] = either
    elif spec.stacked_jvp is not None:
        seeds = tuple(stack.stacked(a) if s else None for a, s in zip(args, seeded, strict=True))
        tangent = spec.stacked_jvp(graph, args, node, params, seeds, lead)
        if tangent is not None:
            stack.full[node] = tangent
    # else NO_TANGENT (``stackable``): a constant to differentiation


def _linear_flag(stack: _Stack, node: int, slot: int, flag: Flag) -> Flag:
    """Where the term of a linear block ``node`` from its operand ``slot`` (live where ``flag`` is)
    is live: the op's stacked rule on the flag and on ones for its other operands (every weight of
    the op on ones is positive, so it is nonzero exactly where a live element reaches)."""
    if flag is None:
        return None
    graph, lead = stack.graph, stack.lead
    spec, args = ALL_OPS[graph.op(node)], graph.args(node)
    assert spec.stacked is not None
    one = graph.const(1.0)
    operands = tuple(
        broadcast_to(graph, flag, lead + graph.shape(a))
        if i == slot
        else broadcast_to(graph, one, graph.shape(a))
        for i, a in enumerate(args)
    )
    which = tuple(i == slot for i in range(len(args)))
    return spec.stacked(graph, operands, which, graph.params(node), lead)


def _elementwise_tangent(
    stack: _Stack, gates: Gates, flags: dict[int, int], node: int, seeded: tuple[bool, ...]
) -> Flag:
    """The tangent of elementwise ``node``, diagonal if every operand's is, and where it is live."""
    graph = stack.graph
    args = graph.args(node)
    diagonal = all(a in stack.diagonal for a, s in zip(args, seeded, strict=True) if s)
    rank = len(graph.shape(node))
    seeds = tuple(
        (stack.diagonal[a] if diagonal else stack.lined(a, rank)) if s else None
        for a, s in zip(args, seeded, strict=True)
    )
    zeros = {a: stack.zeros[a] for a, s in zip(args, seeded, strict=True) if s and a in stack.zeros}
    if diagonal or not zeros:
        total, reach = elementwise_jvp(graph, gates, flags, node, seeds)
    else:  # each term kept 0 where its operand's tangent is structurally 0 (and a where's flag)
        lined = {a: _lined_up(graph, f, graph.shape(a), rank, stack.lead) for a, f in zeros.items()}
        both = {**flags, **{a: gates.both(flags.get(a), f) for a, f in lined.items()}}
        total, reach = elementwise_jvp(graph, gates, both, node, seeds)
        kept = stack.structure.pruned(reach)
        if len(zeros) == sum(seeded) and kept is not None:  # every term has structural zeros
            stack.zeros[node] = kept
        reach = None if all(a not in flags for a, s in zip(args, seeded, strict=True) if s) else reach
    if total is None:
        return None
    if diagonal:
        stack.diagonal[node] = total
    else:
        stack.full[node] = broadcast_to(graph, total, stack.lead + graph.shape(node))
    return reach


def unstacked(graph: Graph, node: int, in_shape: Shape, out_shape: Shape) -> int:
    """``∂out/∂x`` of shape ``out_shape + in_shape`` from its stacked form (``(n,) + out_shape``)."""
    if out_shape:  # the stacked axis last, by a 2-D transpose (the one the language spells)
        flat = (size(in_shape), size(out_shape))
        if graph.shape(node) != flat:
            node = graph.apply("reshape", node, params=flat)
        node = graph.apply("transpose", node, params=(1, 0))
    target = out_shape + in_shape
    return node if graph.shape(node) == target else graph.apply("reshape", node, params=target)
