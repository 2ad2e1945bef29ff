"""Differentiation of tensor graphs at block level: ``dp`` (one VJP per block node), ``forward``
(one JVP per block node), ``numeric`` (central differences) and exact path counts without
enumerating paths.

An elementwise op's VJP is its local partial times the adjoint, summed over the axes the operand
was broadcast along (:func:`graphc.ops.reduce_to`); its JVP the sum over slots of partial times
tangent, broadcast to the node's shape. A block op's VJP and JVP are its entry's. Adjoints and
tangents have exactly the shape of their node (batch axes, present only at call time, ride in
front). A partial ``∂out/∂x`` has shape ``out_shape + x_shape`` (JAX's convention); a tensor
output is differentiated one element (a VJP seed) at a time, a tensor input by ``forward`` and
``numeric`` all its elements at once, stacked on a leading axis (graphc.diff.stacked), where every
op on its way can carry that axis, else one element (a JVP seed, a step) at a time, the pieces
placed with ``unindex``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from graphc.diff import stacked
from graphc.diff.common import Flag, Gates, assemble, depends_on, elementwise_jvp, join_flag, prepared
from graphc.diff.structure import Structure, placed, placed_flag
from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.ops import ALL_OPS, CONST, MASKED, VAR, broadcast_to, paths_elementwise, reduce_to
from graphc.shapes import Shape, ShapeError, broadcast, size

BROADCAST = "broadcast"  # the op a sum's adjoint is: multiplied through, never materialised

STEP = float(np.cbrt(np.finfo(np.float64).eps))


def _concrete(shape: Shape, what: str) -> tuple[int, ...]:
    """``shape`` if it has no named dimension, else a GraphcError saying how to bind them."""
    try:
        size(shape)
    except ShapeError as err:
        raise GraphcError(f"{what} needs concrete shapes: {err}") from None
    return shape  # type: ignore[return-value]


def _elements(shape: Shape, what: str) -> list[tuple[int, ...]]:
    """Every index of a tensor of ``shape`` (C order); named dimensions cannot be enumerated."""
    return list(itertools.product(*(range(d) for d in _concrete(shape, what))))


def _one_hot(graph: Graph, index: tuple[int, ...], shape: Shape) -> int:
    """A tensor of ``shape`` that is 1 at ``index`` and 0 elsewhere (1 for a scalar)."""
    one = graph.const(1.0)
    return one if not shape else graph.apply("unindex", one, params=(index, shape))


def _placed(graph: Graph, pieces: list[tuple[tuple[int, ...], int]], lead: Shape, shape: Shape) -> int:
    """The tensor of shape ``lead + shape`` holding each piece (shape ``shape``) at its index."""
    if not lead:
        return pieces[0][1]
    total = None
    for index, node in pieces:
        placed = graph.apply("unindex", node, params=(index, lead + shape))
        total = placed if total is None else graph.add(total, placed)
    assert total is not None
    return total


def zero(graph: Graph, shape: Shape) -> int:
    """The zero tensor of ``shape`` (a broadcast view of one 0)."""
    return broadcast_to(graph, graph.const(0.0), shape)


def adjoints(
    graph: Graph,
    output: int,
    seed: int,
    active: Sequence[bool],
    seed_flag: Flag = None,
    structure: Structure | None = None,
) -> dict[int, int]:
    """The adjoint of every node on an active path to ``output``, whose adjoint is ``seed`` (live
    where ``seed_flag`` is: a one-hot seed is its own flag): one VJP per node, in reverse creation
    order. ``structure`` holds the build-time values of flags, kept across a derivative's passes.

    Through elementwise ops, an unselected branch of a ``where`` contributes exactly 0 as in the
    scalar ``dp`` (a select, and flags guarding the products below it, elementwise; see
    graphc.diff.common). A flag of one value for the whole tensor passes block ops as it is; a
    flag per element passes them through the op's structure (:func:`_flagged_vjp`). A flag of
    another shape than its node's ends: below it, products are plain again. The zeros an
    ``unindex`` places around its operand (``index``'s VJP) are flagged the same way
    (graphc.diff.structure); a flag known at build time to be live everywhere is dropped.
    """
    structure = Structure(graph) if structure is None else structure
    adjoint = {output: seed}
    seed_flag = structure.pruned(seed_flag)
    flags: dict[int, int] = {} if seed_flag is None else {output: seed_flag}
    gates = Gates(graph)
    for node in range(output, -1, -1):
        g = adjoint.get(node)
        op = graph.op(node)
        if g is None or op == VAR or op == CONST:
            continue
        spec = ALL_OPS[op]
        args = graph.args(node)
        if spec.block:
            assert spec.vjp is not None
            flag = flags.get(node)
            reaches: list[Flag]
            if flag is None or (graph.shape(flag) == () and op not in MASKED):
                # a scalar flag (one condition for the whole tensor) holds for every element
                contributions = spec.vjp(graph, args, node, graph.params(node), g)
                reaches = [placed_flag(graph, c, flag) for c in contributions]
            elif graph.shape(flag) == ():  # the whole product dead or live: its sums masked too
                whole = broadcast_to(graph, flag, graph.shape(node))
                contributions = MASKED[op][0](graph, args, node, graph.params(node), g, whole)
                reaches = [flag] * len(args)
            else:
                contributions, reaches = _flagged_vjp(graph, node, g, flag, structure)
        else:
            flag = flags.get(node)
            pairs = [
                _elementwise_vjp(graph, gates, node, slot, g, flag) if active[arg] else (None, None)
                for slot, arg in enumerate(args)
            ]
            contributions = tuple(c for c, _ in pairs)
            reaches = [r for _, r in pairs]
        for arg, contribution, reach in zip(args, contributions, reaches, strict=True):
            if contribution is not None and active[arg]:
                have = adjoint.get(arg)
                reach = structure.pruned(_fitted(graph, reach, graph.shape(arg)))
                join_flag(flags, gates, arg, have is None, reach)
                adjoint[arg] = contribution if have is None else graph.add(have, contribution)
    return adjoint


# --- a flag per element through a block op -----------------------------------------------------------
#
# Below a where whose condition differs from element to element, the adjoint of a block node is
# exactly 0 where its flag is 0. Which elements of each operand still reach a live element is the
# op's own VJP taken on its structure: the op applied to tensors of ones (its *twin*) and pulled
# back from the flag, a 0/1 mask. Every weight of a twin's VJP is positive (a product of ones, a
# 1/k tie share, a softmax weight of equal elements), so the pullback is nonzero exactly where an
# element reaches a live one: that is the operand's flag. The real VJP is then taken on operands
# zeroed where they reach nothing live, so an unselected lane's inf or NaN is never multiplied by
# the 0 adjoint of its lane (``g @ b.T`` with an infinite column of ``b`` that only unselected
# outputs use), and its result is kept 0 where the operand's flag is. A value that reaches a live
# element and an unselected one would still meet the 0 of the unselected one inside the op's sums:
# a product (matmul, graphc.masked) takes its VJP as masked contractions instead, which never take
# a dead term, and its JVP likewise for flagged tangents (:func:`_block_jvp`).


def _fitted(graph: Graph, flag: Flag, shape: Shape) -> Flag:
    """``flag`` as the flag of a node of ``shape``: broadcast to it, and summed over the axes the
    node was broadcast along (an element is live where any of its copies is); ``None`` (live
    everywhere) if the shapes do not broadcast."""
    if flag is None or graph.shape(flag) in ((), shape):
        return flag
    try:
        joint = broadcast([graph.shape(flag), shape])
    except ShapeError:
        return None
    return reduce_to(graph, broadcast_to(graph, flag, joint), shape)


def _twin(graph: Graph, node: int) -> tuple[tuple[int, ...], int]:
    """Tensors of ones shaped as ``node``'s operands, and ``node``'s op applied to them; a masked
    op keeps its own masks, its inert slots (the terms it skips are part of its structure)."""
    own = ALL_OPS[graph.op(node)].inert
    ones = tuple(
        a if slot in own else broadcast_to(graph, graph.const(1.0), graph.shape(a))
        for slot, a in enumerate(graph.args(node))
    )
    return ones, graph.apply(graph.op(node), *ones, params=graph.params(node))


def _flagged_vjp(
    graph: Graph, node: int, g: int, flag: int, structure: Structure | None = None
) -> tuple[tuple[int | None, ...], list[Flag]]:
    """The VJP of block ``node`` for an adjoint ``g`` live where ``flag`` (of the node's shape)
    is, and each operand's flag (see above); an operand's flag that ``structure`` knows to be live
    everywhere is dropped before the operand would be zeroed by it."""
    spec = ALL_OPS[graph.op(node)]
    assert spec.vjp is not None
    args, params = graph.args(node), graph.params(node)
    if spec.variadic:  # a user's VJP: its weights have no known sign, so the flag holds whole
        whole = graph.apply("amax", flag, params=(tuple(range(len(graph.shape(flag)))), False))
        return spec.vjp(graph, args, node, params, g), [whole] * len(args)
    ones, twin = _twin(graph, node)
    reaches = list(spec.vjp(graph, ones, twin, params, flag))
    if structure is not None:
        reaches = [structure.pruned(r) for r in reaches]
    if graph.op(node) in MASKED:  # its sums skip the dead terms: exactly 0 where nothing live reaches
        return MASKED[graph.op(node)][0](graph, args, node, params, g, flag), reaches
    zero_ = graph.const(0.0)
    kept = tuple(
        a if r is None else graph.apply("where", r, a, zero_) for a, r in zip(args, reaches, strict=True)
    )
    out = node if kept == args else graph.apply(graph.op(node), *kept, params=params)
    contributions = tuple(
        c if c is None or r is None else graph.apply("where", r, c, zero_)
        for c, r in zip(spec.vjp(graph, kept, out, params, g), reaches, strict=True)
    )
    return contributions, reaches


def _flagged_jvp(graph: Graph, node: int, seeds: tuple[int | None, ...], flags: dict[int, int]) -> Flag:
    """Where the tangent of block ``node`` is live, given its operands' tangents and flags: the
    twin's JVP of the flags (an operand with a tangent but no flag is live everywhere); ``None``
    when no operand's tangent has a flag, or the op is a user's block (no known structure)."""
    args = graph.args(node)
    if ALL_OPS[graph.op(node)].variadic or not any(
        t is not None and a in flags for a, t in zip(args, seeds, strict=True)
    ):
        return None
    ones, twin = _twin(graph, node)
    live = tuple(
        None if t is None else broadcast_to(graph, flags[a], graph.shape(a)) if a in flags else one
        for a, t, one in zip(args, seeds, ones, strict=True)
    )
    jvp = ALL_OPS[graph.op(node)].jvp
    assert jvp is not None
    return jvp(graph, ones, twin, graph.params(node), live)


def _block_jvp(graph: Graph, node: int, seeds: tuple[int | None, ...], flags: dict[int, int]) -> int | None:
    """The tangent of block ``node`` from its operands' tangents: a product whose tangents carry
    flags sums only their live terms (graphc.masked), as ``dp`` does."""
    spec, args, params = ALL_OPS[graph.op(node)], graph.args(node), graph.params(node)
    live = tuple(
        broadcast_to(graph, flags[a], graph.shape(a)) if t is not None and a in flags else None
        for a, t in zip(args, seeds, strict=True)
    )
    if spec.name in MASKED and any(f is not None for f in live):
        return MASKED[spec.name][1](graph, args, node, params, seeds, live)
    assert spec.jvp is not None
    return spec.jvp(graph, args, node, params, seeds)


def _elementwise_vjp(
    graph: Graph, gates: Gates, node: int, slot: int, g: int, flag: Flag
) -> tuple[int | None, Flag]:
    """The contribution of adjoint ``g`` (live where ``flag`` is) to operand ``slot``, and where
    it is live."""
    spec = ALL_OPS[graph.op(node)]
    args = graph.args(node)
    shape = graph.shape(args[slot])
    if spec.gate is not None:
        passed = spec.gate(graph, args, slot, g)
        if passed is None:
            return None, None
        return reduce_to(graph, passed[0], shape), gates.both(flag, passed[1])
    rule = spec.partials[slot]
    z = None if rule is None else rule(graph, args, node)
    if z is None:
        return None, None
    fits = shape == graph.shape(g) and graph.shape(z) in ((), shape)  # no axis to sum over
    block = placed(graph, g, flag) if fits else None
    if block is not None:  # a one-hot (or an index's VJP) times z: z's elements in the block only
        v, index = block
        z_block = z if graph.shape(z) == () else graph.apply("index", z, params=index)
        return graph.apply("unindex", graph.mul(v, z_block), params=graph.params(g)), flag
    if flag is not None:  # below a where: the product taken only where a selected path reaches
        product = gates.guarded(flag, (graph.mul(g, z), 1.0), z)[0]
        return reduce_to(graph, product, shape), flag
    if graph.op(g) == BROADCAST:
        # g is a broadcast (a sum's adjoint): multiply its operand, which NumPy broadcasts against
        # z, where that gives g's shape: no broadcast view is multiplied, and x*broadcast(1) is x
        operand = graph.args(g)[0]
        if broadcast([graph.shape(operand), graph.shape(z)]) == graph.shape(g):
            product = graph.mul(operand, z)
            return reduce_to(graph, product, shape), None
    if graph.shape(z) == () and graph.shape(g) != shape:
        # a scalar partial factors out of the sum over broadcast axes: reduce the adjoint first,
        # then scale the (smaller) result; a partial of -1 is a negation
        g = reduce_to(graph, g, shape)
        return (graph.neg(g) if graph.const_value(z) == -1.0 else graph.mul(g, z)), None
    product = graph.neg(g) if graph.const_value(z) == -1.0 else graph.mul(g, z)
    return reduce_to(graph, product, shape), None


def tangents(
    graph: Graph,
    source: int,
    seed: int,
    keep: Sequence[bool],
    seed_flag: Flag = None,
    structure: Structure | None = None,
) -> dict[int, int]:
    """The tangent of every kept node that depends on ``source``, whose tangent is ``seed`` (live
    where ``seed_flag`` is): one JVP per node, in creation order. As in :func:`adjoints`, the zeros
    of a one-hot seed and of an ``unindex`` are flagged (graphc.diff.structure)."""
    structure = Structure(graph) if structure is None else structure
    seed_flag = structure.pruned(seed_flag)
    tangent = {source: seed}
    # as in adjoints, passing block ops by their structure
    flags: dict[int, int] = {} if seed_flag is None else {source: seed_flag}
    gates = Gates(graph)
    for node in range(source + 1, len(keep)):
        if not keep[node]:
            continue
        args = graph.args(node)
        seeds = tuple(tangent.get(a) for a in args)
        if all(t is None for t in seeds):
            continue
        spec = ALL_OPS[graph.op(node)]
        reach: Flag = None
        if spec.block:
            total = _block_jvp(graph, node, seeds, flags)
        else:
            total, reach = elementwise_jvp(graph, gates, flags, node, seeds)
        if total is not None:
            tangent[node] = broadcast_to(graph, total, graph.shape(node))
            reach = _tangent_flag(graph, node, seeds, flags, reach)
            if spec.block and reach is None:
                reach = placed_flag(graph, total, None)
            reach = structure.pruned(reach)
            if reach is not None:
                flags[node] = reach
    return tangent


def _tangent_flag(
    graph: Graph, node: int, seeds: tuple[int | None, ...], flags: dict[int, int], reach: Flag
) -> Flag:
    """Where the tangent of ``node`` is live: through a block op by its structure
    (:func:`_flagged_jvp`), through an elementwise one where its terms are (``reach``); fitted to
    the node's shape."""
    if ALL_OPS[graph.op(node)].block:
        reach = _flagged_jvp(graph, node, seeds, flags)
    return _fitted(graph, reach, graph.shape(node))


def differentiate_dp(graph: Graph, wrt: str | Sequence[str] | None = None) -> Graph:
    """Reverse mode at block level: one VJP per block node and output element."""
    result, names = prepared(graph, wrt)
    sources = [result.variable(name) for name in names]
    active = depends_on(result, sources, len(graph))
    rows = []
    passes = 0
    structure = Structure(result)
    for output in graph.outputs:
        out_shape = graph.shape(output)
        columns: list[list[tuple[tuple[int, ...], int]]] = [[] for _ in sources]
        elements = _elements(out_shape, "the gradient of a tensor output") if active[output] else []
        for index in elements:
            seed = _one_hot(result, index, out_shape)
            adjoint = adjoints(result, output, seed, active, seed if out_shape else None, structure)
            passes += 1
            for column, source in zip(columns, sources, strict=True):
                shape = result.shape(source)
                column.append((index, adjoint.get(source, zero(result, shape))))
        rows.append(
            [
                _placed(result, column, out_shape, result.shape(source))
                if column
                else zero(result, out_shape + result.shape(source))
                for column, source in zip(columns, sources, strict=True)
            ]
        )
    return assemble(graph, result, names, rows, "dp", passes=passes)


def differentiate_forward(graph: Graph, wrt: str | Sequence[str] | None = None) -> Graph:
    """Forward mode at block level: one JVP per block node, for all of an input's elements at once
    (stacked) or one element at a time."""
    result, names = prepared(graph, wrt)
    keep = graph.reachable()
    columns = []
    passes = 0
    structure = Structure(result)
    for name in names:
        source = result.variable(name)
        in_shape = result.shape(source)
        dependent = [d and k for d, k in zip(depends_on(result, [source], len(graph)), keep, strict=True)]
        if stacks(result, in_shape, dependent, tangent=True):
            stack = stacked.tangents(
                result, source, keep, graph.outputs, lambda *a: _tangent_flag(result, *a)
            )
            if stack is not None:
                passes += 1
                columns.append([_stacked_partial(result, stack, o, in_shape) for o in graph.outputs])
                continue
        pieces: list[list[tuple[tuple[int, ...], int]]] = [[] for _ in graph.outputs]
        for index in _elements(in_shape, "the forward method"):
            seed = _one_hot(result, index, in_shape)
            tangent = tangents(result, source, seed, keep, seed if in_shape else None, structure)
            passes += 1
            for piece, output in zip(pieces, graph.outputs, strict=True):
                piece.append((index, tangent.get(output, zero(result, result.shape(output)))))
        columns.append(
            [
                _transposed_jacobian(result, piece, in_shape, result.shape(o))
                for piece, o in zip(pieces, graph.outputs, strict=True)
            ]
        )
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in graph.outputs]
    return assemble(graph, result, names, rows, "forward", passes=passes)


def stacks(graph: Graph, in_shape: Shape, dependent: Sequence[bool], tangent: bool) -> bool:
    """Whether an input of ``in_shape`` is differentiated in one stacked pass (graphc.diff.stacked)
    rather than one element at a time."""
    if not in_shape or any(not isinstance(d, int) for d in in_shape):
        return False
    return stacked.stackable(graph, dependent, tangent)


def _stacked_partial(graph: Graph, stack: dict[int, int], output: int, in_shape: Shape) -> int:
    """``∂output/∂x`` from the stacked values of a pass (zero if ``output`` has none)."""
    out_shape = graph.shape(output)
    if output not in stack:
        return zero(graph, out_shape + in_shape)
    return stacked.unstacked(graph, stack[output], in_shape, out_shape)


def _transposed_jacobian(
    graph: Graph, pieces: list[tuple[tuple[int, ...], int]], in_shape: Shape, out_shape: Shape
) -> int:
    """``∂out/∂x`` of shape ``out_shape + in_shape`` from its columns (one per element of x)."""
    if not pieces:
        return zero(graph, out_shape + in_shape)
    stacked = _placed(graph, pieces, in_shape, out_shape)
    if not in_shape or not out_shape:
        return stacked
    a, b = len(in_shape), len(out_shape)
    return graph.apply("transpose", stacked, params=tuple(range(a, a + b)) + tuple(range(a)))


def differentiate_numeric(graph: Graph, wrt: str | Sequence[str] | None = None) -> Graph:
    """Central differences (the reference checker), all of an input's elements at once (stacked)
    or one element at a time."""
    result, names = prepared(graph, wrt)
    keep = graph.reachable()
    columns = []
    passes = 0
    for name in names:
        x = result.variable(name)
        in_shape = result.shape(x)
        dependent = [d and k for d, k in zip(depends_on(result, [x], len(graph)), keep, strict=True)]
        if stacks(result, in_shape, dependent, tangent=False):
            try:
                columns.append(_stacked_differences(result, graph.outputs, x, dependent))
                passes += 2
                continue
            except stacked.Unstackable:
                pass  # one element at a time, below
        pieces: list[list[tuple[tuple[int, ...], int]]] = [[] for _ in graph.outputs]
        for index in _elements(in_shape, "the numeric method"):
            element = x if not in_shape else result.apply("index", x, params=index)
            h = result.mul(
                result.const(STEP), result.apply("max", result.const(1.0), result.apply("abs", element))
            )
            up, down = result.add(element, h), result.sub(element, h)
            step = result.sub(up, down)
            shift = h if not in_shape else result.apply("unindex", h, params=(index, in_shape))
            above = _replay(result, x, result.add(x, shift), dependent)
            below = _replay(result, x, result.sub(x, shift), dependent)
            passes += 2
            for piece, o in zip(pieces, graph.outputs, strict=True):
                if dependent[o]:
                    piece.append((index, result.div(result.sub(above[o], below[o]), step)))
                else:
                    piece.append((index, zero(result, result.shape(o))))
        columns.append(
            [
                _transposed_jacobian(result, piece, in_shape, result.shape(o))
                for piece, o in zip(pieces, graph.outputs, strict=True)
            ]
        )
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in graph.outputs]
    return assemble(graph, result, names, rows, "numeric", passes=passes)


def _stacked_differences(
    graph: Graph, outputs: Sequence[int], x: int, dependent: Sequence[bool]
) -> list[int]:
    """Each output's ``∂o/∂x`` by central differences on all of ``x``'s elements at once: ``x``
    shifted by ``where(E, h, 0)`` (``E`` the stacked identity, :mod:`graphc.diff.stacked`), the
    same steps as one element at a time."""
    in_shape = graph.shape(x)
    h = graph.mul(graph.const(STEP), graph.apply("max", graph.const(1.0), graph.apply("abs", x)))
    step = graph.sub(graph.add(x, h), graph.sub(x, h))
    shift = graph.apply("where", stacked.identity(graph, in_shape), h, graph.const(0.0))
    above = stacked.replayed(graph, x, graph.add(x, shift), dependent)
    below = stacked.replayed(graph, x, graph.sub(x, shift), dependent)
    n = graph.shape(shift)[0]
    partials = []
    for o in outputs:
        out_shape = graph.shape(o)
        if not dependent[o]:
            partials.append(zero(graph, out_shape + in_shape))
            continue
        steps = graph.apply("reshape", step, params=(n,) + (1,) * len(out_shape))
        quotient = graph.div(graph.sub(above[o], below[o]), steps)
        partials.append(stacked.unstacked(graph, quotient, in_shape, out_shape))
    return partials


def _replay(graph: Graph, source: int, replacement: int, dependent: Sequence[bool]) -> dict[int, int]:
    mapping = {source: replacement}
    for node in range(source + 1, len(dependent)):
        if dependent[node] and graph.op(node) != VAR:
            args = (mapping.get(a, a) for a in graph.args(node))
            mapping[node] = graph.apply(graph.op(node), *args, params=graph.params(node))
    return mapping


def count_paths(graph: Graph, names: Sequence[str]) -> dict[str, int]:
    """The exact number of scalar input-to-output paths from each variable, summed over its
    elements and the outputs' elements, by dynamic programming over the block graph: each node
    holds, per element, the number of paths reaching it (NumPy arrays of Python ints)."""
    counts = {}
    for name in names:
        source = graph.variable(name)
        shape = _concrete(graph.shape(source), "count_paths")
        reach: dict[int, np.ndarray] = {source: np.ones(shape, dtype=object)}
        for node in range(source + 1, len(graph)):
            args = graph.args(node)
            if not any(a in reach for a in args):
                continue
            out_shape = _concrete(graph.shape(node), "count_paths")
            parts = [
                reach.get(a, np.zeros(_concrete(graph.shape(a), "count_paths"), dtype=object)) for a in args
            ]
            reach[node] = np.asarray(_path_rule(graph, node, parts, out_shape), dtype=object).reshape(
                out_shape
            )
        counts[name] = sum(int(reach[o].sum()) if o in reach else 0 for o in graph.outputs)
    return counts


def _path_rule(graph: Graph, node: int, parts: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Paths reaching each element of ``node``: the op entry's rule (an elementwise op adds its
    operands' counts, one edge per slot); none through an ``inert`` slot (no derivative)."""
    spec = ALL_OPS[graph.op(node)]
    parts = [np.zeros(p.shape, dtype=object) if slot in spec.inert else p for slot, p in enumerate(parts)]
    if not spec.block:
        return paths_elementwise(parts, shape)
    assert spec.paths is not None, spec.name
    return spec.paths(parts, graph.params(node), shape)
