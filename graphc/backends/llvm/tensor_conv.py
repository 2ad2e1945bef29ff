"""The loop nests of convolution and pooling in a tensor kernel (the steps of :data:`STEPS`).

Each op of :mod:`graphc.convolution` is one step: scalar loops over its leading axes (declared or
named: their bounds are read at run time), its channels and its output rows, and a vector loop over
an output row's pixels (``lanes`` per instruction, the last vector masked). A window's pixel for
output column ``w`` is at column ``stride·w + j − padding``: a load when the stride is 1, a gather
otherwise, and, with padding, a masked gather whose lanes outside the image read 0 (the zeros of
``np.pad``). The filter's taps (``kh·kw``, whole numbers) and a pooling window's ``k²`` corners are
unrolled. Pooling windows that tile a row (stride k, the usual ``maxpool2d(x, 2)``) are read as one
wide load of ``k·lanes`` pixels per window row, taken apart into its corners by shuffles, and an
adjoint writes such a row with one store of its interleaved corners: no gathers or scatters (which
AVX2 lacks: LLVM would store lane by lane).

- ``conv2d``: per output row, a vector of pixels accumulates ``K[o, c, i, j] · X[c, ...]`` over the
  input channels (a loop) and the taps (unrolled).
- ``conv2d_filter``: per leading index, output and input channel, one vector accumulator per tap
  runs over the rows and pixels of the gradient, then adds its lanes into ``dK[o, c, i, j]``.
- ``conv2d_input``, ``maxpool2d_route``, ``avgpool2d_adjoint``: scatters into a zeroed result, tap
  by tap (corner by corner) as :mod:`graphc.convolution`'s ``_unwindows`` adds them, so each pixel
  sums its terms in NumPy's order; where windows do not overlap (stride >= k) a pooling adjoint
  sends all its corners in one pass, as a pixel has one term only.
- ``maxpool2d``: the window's corners combined by the ``max`` op's own lowering in NumPy's order
  (``np.maximum(top, corner)``): the same element, NaN and signed zero as the NumPy backend.
- ``maxpool2d_select``/``maxpool2d_route``: a window's hits are ``x == top`` (1.0 or 0.0) and their
  count, the tangent's average over them or the adjoint's share ``g / count`` to each: the
  NumPy helpers' arithmetic, so a tie picks the same elements and splits 1/k alike.
- ``avgpool2d``: the window's sum in corner order, divided by ``k²`` (as ``_avgpool2d``).
- the masked forms of the convolutions (graphc.masked_conv): the plain op's loops, each term
  ``select``-ed by its flag (read as the flagged operand is: a tap's scalar, a row of pixels, or a
  window's pixel, 0 in the padding) and, where the other operand is read in the padding, by the
  pixel's being inside the image: the terms of dead elements are never added, so no ``0 * inf``.

The sums of conv2d and its adjoints are in an order of their own (NumPy's ``tensordot`` is BLAS's):
equal to the NumPy backend's within rounding (a few ulps of the sum of the terms' magnitudes); the
pooling ops, whose order is NumPy's, are bit-equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from graphc.backends.llvm.text import vector

if TYPE_CHECKING:
    from graphc.backends.llvm.tensor_ir import Array, _Writer

Body = Callable[[list[str]], None]


def _each(w: _Writer, extents: tuple[str, ...], body: Body) -> None:
    """``body(indices)`` inside scalar loops over ``extents`` (none: once)."""

    def level(a: int, indices: list[str]) -> None:
        if a == len(extents):
            body(indices)
        else:
            w.scalar_loop(extents[a], lambda i: level(a + 1, [*indices, i]))

    level(0, [])  # one call per leading axis: the operand's rank, not the graph's depth


def _sub(w: _Writer, array: Array, indices: list[str]) -> Array:
    """``array[indices]``: the sub-array at these leading indices."""
    offset = "0"
    for i, stride in zip(indices, array.strides, strict=False):
        offset = w.iadd(offset, w.imul(i, stride))
    pointer = array.pointer
    if offset != "0":
        pointer = w.reg(f"getelementptr inbounds double, ptr {pointer}, i64 {offset}")
    n = len(indices)
    return array._replace(pointer=pointer, shape=array.shape[n:], strides=array.strides[n:])


def _row(w: _Writer, plane: Array, y: str, column: int, stride: int) -> Array:
    """The pixels ``plane[y, stride·w + column]`` for w = 0, 1, ...: a strided row."""
    rows, columns = plane.strides
    offset = w.iadd(w.imul(y, rows), w.imul(str(column), columns))
    pointer = plane.pointer
    if offset != "0":
        pointer = w.reg(f"getelementptr inbounds double, ptr {pointer}, i64 {offset}")
    return plane._replace(pointer=pointer, shape=plane.shape[1:], strides=(w.imul(str(stride), columns),))


def _padded(
    w: _Writer, plane: Array, y: str, column: int, stride: int, j: str, mask: str | None
) -> tuple[str, str]:
    """The pointers to ``plane[y, stride·(j + lane) + column]`` and the lanes inside the image
    (and inside ``mask``): the row and the columns may fall in the padding."""
    height, width = plane.shape
    rows, columns = plane.strides
    ivec = w.ivec
    index = w.reg(f"add {ivec} {w.splat(j, 'i64')}, {w.iota()}")
    xs = w.reg(f"mul {ivec} {index}, {w.splat(str(stride), 'i64')}")
    xs = w.reg(f"add {ivec} {xs}, {w.splat(str(column), 'i64')}")
    after_start = w.reg(f"icmp sge {ivec} {xs}, zeroinitializer")
    before_end = w.reg(f"icmp slt {ivec} {xs}, {w.splat(width, 'i64')}")
    inside = w.reg(f"and {w.mask_type} {after_start}, {before_end}")
    row_in = w.reg(f"and i1 {w.reg(f'icmp sge i64 {y}, 0')}, {w.reg(f'icmp slt i64 {y}, {height}')}")
    inside = w.reg(f"and {w.mask_type} {inside}, {w.splat(row_in, 'i1')}")
    if mask is not None:
        inside = w.reg(f"and {w.mask_type} {inside}, {mask}")
    offsets = w.reg(f"mul {ivec} {xs}, {w.splat(columns, 'i64')}")
    offsets = w.reg(f"add {ivec} {offsets}, {w.splat(w.imul(y, rows), 'i64')}")
    # no ``inbounds``: a lane in the padding points outside the image (and is never read)
    pointers = w.reg(f"getelementptr double, ptr {plane.pointer}, {ivec} {offsets}")
    return pointers, inside


def _gather(w: _Writer, pointers: str, mask: str) -> str:
    n = w.width
    return w.reg(
        f"call {w.d} @llvm.masked.gather.v{n}f64.v{n}p0(<{n} x ptr> align 8 {pointers}, "
        f"{w.mask_type} {mask}, {w.d} zeroinitializer)"
    )


def _read(
    w: _Writer, plane: Array, y: str, column: int, stride: int, padding: int, j: str, mask: str | None
) -> str:
    """The vector ``plane[y, stride·(j + lane) + column − padding]``, 0 in the padding."""
    if padding == 0:
        row = _row(w, plane, y, column, stride)
        return w.load(row, list(row.strides), [], j, mask)
    return _gather(w, *_padded(w, plane, y, column - padding, stride, j, mask))


def _add_into(
    w: _Writer,
    plane: Array,
    y: str,
    column: int,
    stride: int,
    padding: int,
    j: str,
    mask: str | None,
    value: str,
) -> None:
    """``plane[y, stride·(j + lane) + column − padding] += value``, lanes in the padding dropped."""
    add = w.emitter.builder.fadd
    if padding == 0:
        row = _row(w, plane, y, column, stride)
        strides = list(row.strides)
        w.store(add(w.load(row, strides, [], j, mask), value), row, strides, [], j, mask)
        return
    pointers, inside = _padded(w, plane, y, column - padding, stride, j, mask)
    n = w.width
    w.lines.append(
        f"  call void @llvm.masked.scatter.v{n}f64.v{n}p0({w.d} {add(_gather(w, pointers, inside), value)}, "
        f"<{n} x ptr> align 8 {pointers}, {w.mask_type} {inside})"
    )


def _scalar(w: _Writer, array: Array, indices: list[str]) -> str:
    """The one element ``array[indices]`` (a scalar double)."""
    return w.reg(f"load double, ptr {_sub(w, array, indices).pointer}, align 8")


def _origin(h: str, w: _Writer, stride: int, tap: int) -> str:
    """The input row of output row ``h`` at tap row ``tap``: ``stride·h + tap`` (before padding)."""
    return w.iadd(w.imul(h, str(stride)), str(tap))


def _taps(shape: tuple[str, ...]) -> list[tuple[int, int]]:
    """A filter's or a window's offsets ``(i, j)`` in NumPy's order, from its (whole) sizes."""
    kh, kw = (int(d) for d in shape)
    return [(i, j) for i in range(kh) for j in range(kw)]


# --- conv2d and its adjoints -----------------------------------------------------------------------


def conv2d(w: _Writer, node: int, masked: int | None = None) -> None:
    """``out[..., o, h, w] = Σ_{c,i,j} K[o, c, i, j] · X[..., c, s·h + i − p, s·w + j − p]``;
    ``masked``: the slot (0: X, 1: K) of the operand the node's third, a flag, masks."""
    g = w.graph
    x, k = (w.arrays[a] for a in g.args(node)[:2])
    flags = w.arrays[g.args(node)[2]] if masked is not None else None
    out = w.arrays[node]
    stride, padding = g.params(node)[:2]
    c_out, c_in = k.shape[:2]
    taps = _taps(k.shape[2:])
    height, width = out.shape[-2:]
    total = w.alloca(w.d)
    b = w.emitter.builder

    def image(lead: list[str]) -> None:
        source, target = _sub(w, x, lead), _sub(w, out, lead)
        mask_image = _sub(w, flags, lead) if flags is not None and masked == 0 else None

        def channel_out(o: str) -> None:
            def row(h: str) -> None:
                def pixels(j: str, mask: str | None) -> None:
                    w.lines.append(f"  store {w.d} {w.emitter.const(0.0)}, ptr {total}, align 64")

                    def channel_in(c: str) -> None:
                        plane = _sub(w, source, [c])
                        acc = w.reg(f"load {w.d}, ptr {total}, align 64")
                        for i, t in taps:
                            weight = w.splat(_scalar(w, k, [o, c, str(i), str(t)]))
                            y = _origin(h, w, stride, i - padding)
                            term = b.fmul(weight, _read(w, plane, y, t, stride, padding, j, mask))
                            if mask_image is not None:  # the pixel's flag (0 in the padding: no term)
                                flag = _read(w, _sub(w, mask_image, [c]), y, t, stride, padding, j, mask)
                                term = _kept(w, flag, term)
                            elif flags is not None:
                                flag = w.splat(_scalar(w, flags, [o, c, str(i), str(t)]))
                                term = _kept(w, flag, term, _inside(w, plane, y, t, stride, padding, j, mask))
                            acc = b.fadd(acc, term)
                        w.lines.append(f"  store {w.d} {acc}, ptr {total}, align 64")

                    w.scalar_loop(c_in, channel_in)
                    result = w.reg(f"load {w.d}, ptr {total}, align 64")
                    line = _sub(w, target, [o, h])
                    w.store(result, line, list(line.strides), [], j, mask)

                w.vector_loop(width, pixels)

            w.scalar_loop(height, row)

        w.scalar_loop(c_out, channel_out)

    _each(w, x.shape[:-3], image)


def _kept(w: _Writer, flag: str, term: str, inside: str | None = None) -> str:
    """``term`` where ``flag`` is nonzero (NaN too, as NumPy's ``f != 0``) and its pixel is
    ``inside`` the image (None: it is), else 0: a masked form's term, never ``0 * inf``; a pixel
    in the padding is no term of a masked form (as in the scalar form), not a 0 times the tap."""
    b = w.emitter.builder
    live = b.fcmp_unordered("!=", flag, w.emitter.const(0.0))
    if inside is not None:
        live = b.and_(live, inside)
    return b.select(live, term, w.emitter.const(0.0))


def _inside(
    w: _Writer, plane: Array, y: str, column: int, stride: int, padding: int, j: str, mask: str | None
) -> str | None:
    """The lanes of ``_read``'s vector whose pixel is inside the image (None: all, no padding)."""
    return None if padding == 0 else _padded(w, plane, y, column - padding, stride, j, mask)[1]


def conv2d_filter(w: _Writer, node: int, masked: int | None = None) -> None:
    """``out[o, c, i, j] = Σ_{..., h, w} G[..., o, h, w] · X[..., c, s·h + i − p, s·w + j − p]``:
    per leading index and pair of channels, a vector accumulator per tap over G's pixels;
    ``masked``: the slot (0: X, 1: G) of the operand the node's third, a flag, masks."""
    g = w.graph
    x, grad = (w.arrays[a] for a in g.args(node)[:2])
    flags = w.arrays[g.args(node)[2]] if masked is not None else None
    out = w.arrays[node]
    stride, padding = g.params(node)[:2]
    c_out, c_in = out.shape[:2]
    taps = _taps(out.shape[2:])
    height, width = grad.shape[-2:]
    totals = [w.alloca(w.d) for _ in taps]
    b = w.emitter.builder
    w.fill(out.pointer, w.size(out.shape), 0.0)

    def image(lead: list[str]) -> None:
        source, upstream = _sub(w, x, lead), _sub(w, grad, lead)
        marks = None if flags is None else _sub(w, flags, lead)

        def channel_out(o: str) -> None:
            def channel_in(c: str) -> None:
                plane, adjoint = _sub(w, source, [c]), _sub(w, upstream, [o])
                for total in totals:
                    w.lines.append(f"  store {w.d} {w.emitter.const(0.0)}, ptr {total}, align 64")

                def row(h: str) -> None:
                    line = _sub(w, adjoint, [h])
                    # G's flags, one per pixel of the row (X's are read as its pixels, below)
                    flag_line = _sub(w, marks, [o, h]) if marks is not None and masked == 1 else None

                    def pixels(j: str, mask: str | None) -> None:
                        weight = w.load(line, list(line.strides), [], j, mask)  # 0 in masked lanes
                        weight_flag = None
                        if flag_line is not None:
                            weight_flag = w.load(flag_line, list(flag_line.strides), [], j, mask)
                        for (i, t), total in zip(taps, totals, strict=True):
                            y = _origin(h, w, stride, i - padding)
                            term = b.fmul(weight, _read(w, plane, y, t, stride, padding, j, mask))
                            if weight_flag is not None:
                                term = _kept(
                                    w, weight_flag, term, _inside(w, plane, y, t, stride, padding, j, mask)
                                )
                            elif marks is not None:  # X's flags, read as its pixels (0 in the padding)
                                term = _kept(
                                    w, _read(w, _sub(w, marks, [c]), y, t, stride, padding, j, mask), term
                                )
                            acc = w.reg(f"load {w.d}, ptr {total}, align 64")
                            w.lines.append(f"  store {w.d} {b.fadd(acc, term)}, ptr {total}, align 64")

                    w.vector_loop(width, pixels)

                w.scalar_loop(height, row)
                for (i, t), total in zip(taps, totals, strict=True):
                    summed = w.lane0(w.horizontal("add", w.reg(f"load {w.d}, ptr {total}, align 64")))
                    at = _sub(w, out, [o, c, str(i), str(t)]).pointer
                    before = w.reg(f"load double, ptr {at}, align 8")
                    w.lines.append(
                        f"  store double {w.reg(f'fadd double {before}, {summed}')}, ptr {at}, align 8"
                    )

            w.scalar_loop(c_in, channel_in)

        w.scalar_loop(c_out, channel_out)

    _each(w, x.shape[:-3], image)


def conv2d_input(w: _Writer, node: int, masked: int | None = None) -> None:
    """``out[..., c, y, x] += Σ_o G[..., o, h, w] · K[o, c, i, j]`` at ``y = s·h + i − p``,
    ``x = s·w + j − p``, tap by tap: ``_unwindows`` of the einsum's columns, in its order;
    ``masked``: the slot (0: G, 1: K) of the operand the node's third, a flag, masks."""
    g = w.graph
    grad, k = (w.arrays[a] for a in g.args(node)[:2])
    flags = w.arrays[g.args(node)[2]] if masked is not None else None
    out = w.arrays[node]
    stride, padding = g.params(node)[:2]
    c_out, c_in = k.shape[:2]
    taps = _taps(k.shape[2:])
    height, width = grad.shape[-2:]
    total = w.alloca(w.d)
    b = w.emitter.builder
    w.fill(out.pointer, w.size(out.shape), 0.0)

    def image(lead: list[str]) -> None:
        upstream, target = _sub(w, grad, lead), _sub(w, out, lead)
        marks = None if flags is None or masked == 1 else _sub(w, flags, lead)

        def channel_in(c: str) -> None:
            plane = _sub(w, target, [c])
            for i, t in taps:

                def row(h: str, i: int = i, t: int = t) -> None:
                    def pixels(j: str, mask: str | None) -> None:
                        w.lines.append(f"  store {w.d} {w.emitter.const(0.0)}, ptr {total}, align 64")

                        def channel_out(o: str) -> None:
                            weight = w.splat(_scalar(w, k, [o, c, str(i), str(t)]))
                            line = _sub(w, upstream, [o, h])
                            term = b.fmul(w.load(line, list(line.strides), [], j, mask), weight)
                            if marks is not None:  # G's flags, one per pixel
                                flag_line = _sub(w, marks, [o, h])
                                term = _kept(w, w.load(flag_line, list(flag_line.strides), [], j, mask), term)
                            elif flags is not None:  # K's flag, one per tap
                                term = _kept(w, w.splat(_scalar(w, flags, [o, c, str(i), str(t)])), term)
                            acc = w.reg(f"load {w.d}, ptr {total}, align 64")
                            w.lines.append(f"  store {w.d} {b.fadd(acc, term)}, ptr {total}, align 64")

                        w.scalar_loop(c_out, channel_out)
                        column = w.reg(f"load {w.d}, ptr {total}, align 64")
                        y = _origin(h, w, stride, i - padding)
                        _add_into(w, plane, y, t, stride, padding, j, mask, column)

                    w.vector_loop(width, pixels)

                w.scalar_loop(height, row)

        w.scalar_loop(c_in, channel_in)

    _each(w, out.shape[:-3], image)


# --- pooling -----------------------------------------------------------------------------------------


def _window(w: _Writer, plane: Array, h: str, k: int, stride: int, j: str, mask: str | None) -> list[str]:
    """The k² corners of the windows of output row ``h`` (a vector of windows), in NumPy's order.
    Windows that tile a row of unit stride (stride k) are read as one wide load per row of the
    window, its corners taken apart by shuffles (not k gathers)."""
    if stride != k or plane.strides[1] != "1":
        taps = _taps((str(k), str(k)))
        return [_read(w, plane, _origin(h, w, stride, i), t, stride, 0, j, mask) for i, t in taps]
    n = k * w.width
    wide = vector("double", n)
    corners = []
    for i in range(k):
        pointer = _tiled(w, plane, _origin(h, w, stride, i), k, j)
        if mask is None:
            row = w.reg(f"load {wide}, ptr {pointer}, align 8")
        else:
            row = w.reg(
                f"call {wide} @llvm.masked.load.v{n}f64.p0(ptr align 8 {pointer}, "
                f"{vector('i1', n)} {_widened(w, mask, k)}, {wide} zeroinitializer)"
            )
        for t in range(k):
            picks = _constants(range(t, n, k))
            corners.append(w.reg(f"shufflevector {wide} {row}, {wide} poison, <{w.width} x i32> {picks}"))
    return corners


def _constants(values: range | list[int]) -> str:
    """An IR vector constant of i32s (a shuffle's mask)."""
    return "<" + ", ".join(f"i32 {v}" for v in values) + ">"


def _tiled(w: _Writer, plane: Array, y: str, k: int, j: str) -> str:
    """The pointer to ``plane[y, k·j]``: the first pixel of window ``j`` of a row tiled by
    windows of width k (unit column stride)."""
    offset = w.iadd(w.imul(y, plane.strides[0]), w.imul(j, str(k)))
    return w.reg(f"getelementptr inbounds double, ptr {plane.pointer}, i64 {offset}")


def _widened(w: _Writer, mask: str, k: int) -> str:
    """A mask of windows made a mask of their pixels, k per window."""
    n = k * w.width
    narrow = vector("i1", w.width)
    picks = _constants([p // k for p in range(n)])
    return w.reg(f"shufflevector {narrow} {mask}, {narrow} poison, <{n} x i32> {picks}")


def _interleaved(w: _Writer, parts: list[str]) -> str:
    """``k`` vectors (one per window column) as the pixels of a tiled row: lane ``p`` is
    ``parts[p % k][p // k]``; the parts are first joined pairwise into one long vector."""
    k, size = len(parts), w.width
    while len(parts) > 1:
        if len(parts) % 2:
            parts = [*parts, "zeroinitializer"]
        kind = vector("double", size)
        parts = [
            w.reg(f"shufflevector {kind} {a}, {kind} {b}, <{2 * size} x i32> {_constants(range(2 * size))}")
            for a, b in zip(parts[::2], parts[1::2], strict=True)
        ]
        size *= 2
    kind, n = vector("double", size), k * w.width
    picks = _constants([(p % k) * w.width + p // k for p in range(n)])
    return w.reg(f"shufflevector {kind} {parts[0]}, {kind} poison, <{n} x i32> {picks}")


def _largest(w: _Writer, values: list[str]) -> str:
    """``np.maximum`` folded over ``values`` left to right, by the ``max`` op's lowering."""
    top = values[0]
    for value in values[1:]:
        top = w.combine("max", top, value)
    return top


def _hits(w: _Writer, values: list[str]) -> tuple[list[str], str]:
    """Each corner's ``1.0 * (x == top)`` and their count, as ``_pool_hits``."""
    b = w.emitter.builder
    top = _largest(w, values)
    hits = [w.reg(f"uitofp {w.mask_type} {b.fcmp_ordered('==', v, top)} to {w.d}") for v in values]
    count = hits[0]
    for hit in hits[1:]:
        count = b.fadd(count, hit)
    return hits, count


def _pooled(w: _Writer, node: int, body: Callable[[list[Array], str, str, str | None], str]) -> None:
    """A pooling op's result ``[..., H', W']``: ``body(operand planes, h, j, mask)``, per vector of
    windows, gives its value."""
    g = w.graph
    operands = [w.arrays[a] for a in g.args(node)]
    out = w.arrays[node]
    height, width = out.shape[-2:]

    def image(lead: list[str]) -> None:
        planes = [_sub(w, a, lead) for a in operands]
        target = _sub(w, out, lead)

        def row(h: str) -> None:
            line = _sub(w, target, [h])

            def pixels(j: str, mask: str | None) -> None:
                w.store(body(planes, h, j, mask), line, list(line.strides), [], j, mask)

            w.vector_loop(width, pixels)

        w.scalar_loop(height, row)

    _each(w, out.shape[:-2], image)


def maxpool2d(w: _Writer, node: int) -> None:
    k, stride = w.graph.params(node)
    _pooled(w, node, lambda planes, h, j, mask: _largest(w, _window(w, planes[0], h, k, stride, j, mask)))


def maxpool2d_select(w: _Writer, node: int) -> None:
    """``Σ hit · t / Σ hit`` over each window (the tangent averaged over the window's maxima)."""
    k, stride = w.graph.params(node)
    b = w.emitter.builder

    def select(planes: list[Array], h: str, j: str, mask: str | None) -> str:
        hits, count = _hits(w, _window(w, planes[0], h, k, stride, j, mask))
        total = w.emitter.const(0.0)
        for hit, tangent in zip(hits, _window(w, planes[1], h, k, stride, j, mask), strict=True):
            total = b.fadd(total, b.fmul(hit, tangent))
        return b.fdiv(total, count)

    _pooled(w, node, select)


def avgpool2d(w: _Writer, node: int) -> None:
    k, stride = w.graph.params(node)
    b = w.emitter.builder

    def average(planes: list[Array], h: str, j: str, mask: str | None) -> str:
        values = _window(w, planes[0], h, k, stride, j, mask)
        total = values[0]
        for value in values[1:]:
            total = b.fadd(total, value)
        return b.fdiv(total, w.emitter.const(float(k * k)))

    _pooled(w, node, average)


def _scattered(
    w: _Writer, node: int, shares: Callable[[list[Array], str, str, str | None], tuple[list[str], str]]
) -> None:
    """A pooling adjoint's result, shaped like the image: zeros, then each window's
    ``weight · share`` added to each corner (``shares(operand planes, h, j, mask)`` gives the
    corners' weights, None for 1, and the share), corner by corner as ``_unwindows`` adds them,
    or all corners of a window at once where no two windows overlap."""
    g = w.graph
    k, stride = g.params(node)[:2]
    operands = [w.arrays[a] for a in g.args(node)]
    out = w.arrays[node]
    height, width = g.shape(g.args(node)[-1])[-2:]  # the windows: the adjoint's operand's pixels
    corners = _taps((str(k), str(k)))
    groups = [list(range(len(corners)))] if stride >= k else [[c] for c in range(len(corners))]
    tiled = stride == k  # the result is contiguous: a window row is k adjacent pixels
    b = w.emitter.builder
    if not (tiled and tuple(g.shape(node)[-2:]) == (k * height, k * width)):
        w.fill(out.pointer, w.size(out.shape), 0.0)  # else the windows write every pixel once
    for group in groups:

        def image(lead: list[str], group: list[int] = group) -> None:
            planes = [_sub(w, a, lead) for a in operands]
            target = _sub(w, out, lead)

            def row(h: str) -> None:
                def pixels(j: str, mask: str | None) -> None:
                    weights, share = shares(planes, h, j, mask)
                    parts = [share if not weights else b.fmul(weights[c], share) for c in group]
                    if tiled:  # each window row's k pixels at once, one store: 0 + part, as NumPy adds
                        for i in range(k):
                            _put(w, target, _origin(h, w, stride, i), k, j, mask, parts[k * i : k * i + k])
                        return
                    for c, part in zip(group, parts, strict=True):
                        i, t = corners[c]
                        _add_into(w, target, _origin(h, w, stride, i), t, stride, 0, j, mask, part)

                w.vector_loop(w.dim(width), pixels)

            w.scalar_loop(w.dim(height), row)

        _each(w, out.shape[:-2], image)


def _put(w: _Writer, plane: Array, y: str, k: int, j: str, mask: str | None, parts: list[str]) -> None:
    """``plane[y, k·j + p] = 0 + parts[p % k][p // k]``: a tiled row's pixels, once each."""
    n = k * w.width
    wide = vector("double", n)
    pointer = _tiled(w, plane, y, k, j)
    value = w.reg(f"fadd {wide} zeroinitializer, {_interleaved(w, parts)}")
    if mask is None:
        w.lines.append(f"  store {wide} {value}, ptr {pointer}, align 8")
    else:
        w.lines.append(
            f"  call void @llvm.masked.store.v{n}f64.p0({wide} {value}, ptr align 8 {pointer}, "
            f"{vector('i1', n)} {_widened(w, mask, k)})"
        )


def maxpool2d_route(w: _Writer, node: int) -> None:
    """Each window's adjoint ``g / count`` sent to its maxima (``_maxpool2d_route``); the masked
    form's (a third operand, a flag per window) 0 from a dead window, never ``0 / 0``."""
    k, stride = w.graph.params(node)
    b = w.emitter.builder

    def shares(planes: list[Array], h: str, j: str, mask: str | None) -> tuple[list[str], str]:
        hits, count = _hits(w, _window(w, planes[0], h, k, stride, j, mask))
        line = _sub(w, planes[1], [h])
        share = b.fdiv(w.load(line, list(line.strides), [], j, mask), count)
        if len(planes) == 3:
            flags = _sub(w, planes[2], [h])
            share = _kept(w, w.load(flags, list(flags.strides), [], j, mask), share)
        return hits, share

    _scattered(w, node, shares)


def avgpool2d_adjoint(w: _Writer, node: int) -> None:
    """Each window's ``g / k²`` added to each of its pixels (``_avgpool2d_adjoint``)."""
    k = w.graph.params(node)[0]
    b = w.emitter.builder

    def shares(planes: list[Array], h: str, j: str, mask: str | None) -> tuple[list[str], str]:
        line = _sub(w, planes[0], [h])
        return [], b.fdiv(w.load(line, list(line.strides), [], j, mask), w.emitter.const(float(k * k)))

    _scattered(w, node, shares)


def _masked(writer: Callable[[_Writer, int, int | None], None]) -> Callable[[_Writer, int], None]:
    """The step of a masked form (graphc.masked_conv): the plain op's loops, each term selected by
    its flag; the flagged operand's slot is the node's last param."""
    return lambda w, node: writer(w, node, w.graph.params(node)[-1])


STEPS: dict[str, Callable[[_Writer, int], None]] = {
    "conv2d": conv2d,
    "conv2d_input": conv2d_input,
    "conv2d_filter": conv2d_filter,
    "masked_conv2d": _masked(conv2d),
    "masked_conv2d_input": _masked(conv2d_input),
    "masked_conv2d_filter": _masked(conv2d_filter),
    "masked_maxpool2d_route": maxpool2d_route,
    "maxpool2d": maxpool2d,
    "maxpool2d_select": maxpool2d_select,
    "maxpool2d_route": maxpool2d_route,
    "avgpool2d": avgpool2d,
    "avgpool2d_adjoint": avgpool2d_adjoint,
}
