"""Convolution and pooling over the last two axes: the block ops of the 004 lecture's layers.

Three families, each closed under differentiation, so a derivative of a derivative (a Hessian)
needs no new op:

- ``conv2d(X, K)`` (PyTorch's: cross-correlation, ``X: [..., C_in, H, W]``, ``K: [C_out, C_in, kh,
  kw]``, params ``(stride, padding)``) and its two adjoints. They are the three partial
  derivatives of one trilinear form ``τ(X, K, O) = Σ O[o,h,w] K[o,c,i,j] X[c, sh+i-p, sw+j-p]``:
  ``conv2d`` is ``∂τ/∂O``; ``conv2d_filter(X, G)`` is ``∂τ/∂K``, the correlation of the input with
  the upstream gradient (the lecture's ``∂L/∂F = conv(X, ∂L/∂O)``); ``conv2d_input(G, K)`` is
  ``∂τ/∂X``, the full convolution of the upstream gradient with the rotated filter (``∂L/∂X =
  full-conv(rot180(F), ∂L/∂O)``, computed as a scatter of the filter-weighted gradient into each
  window, which is the same sum and also holds for stride > 1). Each one's VJP and JVP are the
  other two: the roles of τ's three operands permute.
- ``avgpool2d(X)`` (params ``(k, stride)``) and its transpose ``avgpool2d_adjoint(G)``, linear maps
  that are each other's VJP.
- ``maxpool2d(X)``: each window's maximum (the NumPy takes it over the window's k² offsets, each a
  strided view of the image: k² whole-image ``maximum`` calls, not a reduction over tiny axes). Its VJP ``maxpool2d_route(X, G)`` sends each window's
  adjoint to the window's maxima, and **a tie splits evenly** (1/k to each of k maxima, the policy
  of the two-operand ``max``); its JVP ``maxpool2d_select(X, T)`` takes the same weighted average of
  the tangent over each window. Both are linear in their second operand and piecewise constant in
  the first (whose derivative is 0, as ``sign``'s is): route and select are each other's VJP.

The NumPy of every op is a helper of :data:`HELPERS` (window views by stride tricks and one
``einsum``/``tensordot``; the only Python loop, in a scatter, runs over the kh·kw filter offsets,
never over pixels). Each helper broadcasts leading (batch) axes, and works on object arrays too:
the exact path counts run the same helpers on counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphc.shapes import Shape, ShapeError
from graphc.shapes import text as shape_text

if TYPE_CHECKING:
    from graphc.graph import Graph

HELPERS = """\
def _windows(x, k, stride, padding=0):
    if padding:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(padding, padding)] * 2)
    view = np.lib.stride_tricks.sliding_window_view(x, k, axis=(-2, -1))
    return view[..., ::stride, ::stride, :, :]


def _unwindows(cols, size, stride, padding=0):
    kh, kw, oh, ow = cols.shape[-2], cols.shape[-1], cols.shape[-4], cols.shape[-3]
    h, w = size[0] + 2 * padding, size[1] + 2 * padding
    out = np.zeros(cols.shape[:-4] + (h, w), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[..., i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride] += cols[..., i, j]
    return out[..., padding : padding + size[0], padding : padding + size[1]]


def _conv2d(x, k, stride, padding):
    cols = _windows(x, k.shape[-2:], stride, padding)
    if k.ndim == 4 and x.dtype != object:
        return np.moveaxis(np.tensordot(cols, k, axes=([-5, -2, -1], [1, 2, 3])), -1, -3)
    return np.einsum('...chwij,...ocij->...ohw', cols, k)


def _conv2d_input(g, k, stride, padding, size):
    return _unwindows(np.einsum('...ohw,...ocij->...chwij', g, k), size, stride, padding)


def _conv2d_filter(x, g, stride, padding, k, lead):
    cols = _windows(x, k, stride, padding)
    if x.ndim == lead + 3 and x.dtype != object:
        summed = [*range(lead), lead + 1, lead + 2]
        return np.tensordot(g, cols, axes=(summed, summed))
    axes = 'abdefg'[:lead]
    return np.einsum(f'...{axes}chwij,...{axes}ohw->...ocij', cols, g)


def _corners(x, k, stride):
    oh, ow = (x.shape[-2] - k) // stride + 1, (x.shape[-1] - k) // stride + 1
    rows, cols = stride * (oh - 1) + 1, stride * (ow - 1) + 1
    return [(i, j, x[..., i : i + rows : stride, j : j + cols : stride]) for i in range(k) for j in range(k)]


def _maxpool2d(x, k, stride):
    corners = _corners(x, k, stride)
    top = np.array(corners[0][2])
    for _, _, corner in corners[1:]:
        np.maximum(top, corner, out=top)
    return top


def _pool_hits(x, k, stride):
    top = _maxpool2d(x, k, stride)
    hits = [(i, j, corner == top) for i, j, corner in _corners(x, k, stride)]
    return hits, sum(hit for _, _, hit in hits)


def _maxpool2d_select(x, t, k, stride):
    hits, count = _pool_hits(x, k, stride)
    tangents = _corners(t, k, stride)
    return sum(hit * tangent for (_, _, hit), (_, _, tangent) in zip(hits, tangents)) / count


def _maxpool2d_route(x, g, k, stride, live=None):
    hits, count = _pool_hits(x, k, stride)
    share = g / count if live is None else np.where(live, g / count, 0.0)
    out = np.zeros(np.broadcast_shapes(x.shape[:-2], share.shape[:-2]) + x.shape[-2:], dtype=share.dtype)
    for (i, j, hit), (_, _, view) in zip(hits, _corners(out, k, stride)):
        view += hit * share
    return out


def _window_sum(x, k, stride):
    return np.sum(_windows(x, (k, k), stride), axis=(-2, -1))


def _window_scatter(g, k, stride, size):
    return _unwindows(np.broadcast_to(g[..., None, None], g.shape + (k, k)), size, stride)


def _avgpool2d(x, k, stride):
    return _window_sum(x, k, stride) / (k * k)


def _avgpool2d_adjoint(g, k, stride, size):
    return _window_scatter(g / (k * k), k, stride, size)
"""


def _ints(shape: Shape, what: str, op: str) -> tuple[int, ...]:
    if not all(isinstance(d, int) for d in shape):
        raise ShapeError(f"{op} needs whole-number sizes for its {what}, got {shape_text(shape)}")
    return shape  # type: ignore[return-value]


def _out_size(size: int, k: int, stride: int, padding: int, op: str) -> int:
    if stride < 1 or padding < 0:
        raise ShapeError(f"{op} takes stride >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    span = size + 2 * padding - k
    if span < 0:
        raise ShapeError(f"{op}: a {k}-wide window does not fit in {size} (padded by {padding})")
    return span // stride + 1


# conv2d and its adjoints ------------------------------------------------------------------------


def _image(shape: Shape, op: str) -> tuple[Shape, Any, tuple[int, int]]:
    """An image operand ``[..., C, H, W]``: its leading axes, channels and (H, W)."""
    if len(shape) < 3:
        raise ShapeError(f"{op} takes an image [..., C, H, W], got {shape_text(shape)}")
    h, w = _ints(shape[-2:], "image's height and width", op)
    return shape[:-3], shape[-3], (h, w)


def _filter(shape: Shape, op: str) -> tuple[Any, Any, tuple[int, int]]:
    if len(shape) != 4:
        raise ShapeError(f"{op} takes a filter [C_out, C_in, kh, kw], got {shape_text(shape)}")
    kh, kw = _ints(shape[2:], "filter's height and width", op)
    return shape[0], shape[1], (kh, kw)


def _conv_out(size: tuple[int, int], k: tuple[int, int], params: Any, op: str) -> tuple[int, int]:
    stride, padding = params[:2]
    return _out_size(size[0], k[0], stride, padding, op), _out_size(size[1], k[1], stride, padding, op)


def conv2d_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    x, k = shapes
    return _convolved(x, k, params, "conv2d")


def _convolved(x: Shape, k: Shape, params: Any, op: str) -> Shape:
    """conv2d's result shape (``op`` names the op asking, for errors)."""
    lead, c_in, size = _image(x, op)
    c_out, k_in, window = _filter(k, op)
    if c_in != k_in:
        raise ShapeError(
            f"cannot {op} {shape_text(x)} by {shape_text(k)}: the image has {c_in} channels, "
            f"the filter takes {k_in}"
        )
    return (*lead, c_out, *_conv_out(size, window, params, op))


def conv2d_input_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    """The image's shape (its height and width are params'): conv2d of it by ``k`` is ``g``'s."""
    g, k = shapes
    lead = _image(g, "conv2d_input")[0]
    x = (*lead, _filter(k, "conv2d_input")[1], *params[2])
    if _convolved(x, k, params, "conv2d_input") != g:
        raise ShapeError(
            f"conv2d_input: {shape_text(g)} is not conv2d's result of {shape_text(k)} on {params[2]}"
        )
    return x


def conv2d_filter_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    """The filter's shape (its window is params'): conv2d of ``x`` by it is ``g``'s."""
    x, g = shapes
    k = (_image(g, "conv2d_filter")[1], _image(x, "conv2d_filter")[1], *params[2])
    if _convolved(x, k, params, "conv2d_filter") != g:
        raise ShapeError(f"conv2d_filter: {shape_text(g)} is not conv2d's result on {shape_text(x)}")
    return k


def conv2d_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"_conv2d({a[0]}, {a[1]}, {params[0]}, {params[1]})"


def conv2d_input_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"_conv2d_input({a[0]}, {a[1]}, {params[0]}, {params[1]}, {params[2]})"


def conv2d_filter_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    lead = len(shapes[0]) - 3
    return f"_conv2d_filter({a[0]}, {a[1]}, {params[0]}, {params[1]}, {params[2]}, {lead})"


def _conv(b: Graph, x: int, k: int, params: Any) -> int:
    return b.apply("conv2d", x, k, params=params[:2])


def _conv_input(b: Graph, g: int, k: int, params: Any, x_shape: Shape) -> int:
    return b.apply("conv2d_input", g, k, params=(*params[:2], tuple(x_shape[-2:])))


def _conv_filter(b: Graph, x: int, g: int, params: Any, k_shape: Shape) -> int:
    return b.apply("conv2d_filter", x, g, params=(*params[:2], tuple(k_shape[-2:])))


def _bilinear_jvp(build: Any) -> Any:
    """The JVP of a bilinear op ``f``: ``f(tA, B) + f(A, tB)``, without the zero terms."""

    def jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]) -> int | None:
        first = None if t[0] is None else build(b, t[0], args[1], params)
        second = None if t[1] is None else build(b, args[0], t[1], params)
        if first is None or second is None:
            return second if first is None else first
        return b.add(first, second)

    return jvp


def conv2d_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    x, k = args
    return _conv_input(b, g, k, params, b.shape(x)), _conv_filter(b, x, g, params, b.shape(k))


def conv2d_input_vjp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, h: int
) -> tuple[int | None, ...]:
    g, k = args
    return _conv(b, h, k, params), _conv_filter(b, h, g, params, b.shape(k))


def conv2d_filter_vjp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, h: int
) -> tuple[int | None, ...]:
    x, g = args
    return _conv_input(b, g, h, params, b.shape(x)), _conv(b, x, h, params)


conv2d_jvp = _bilinear_jvp(_conv)
conv2d_input_jvp = _bilinear_jvp(lambda b, g, k, p: b.apply("conv2d_input", g, k, params=p))
conv2d_filter_jvp = _bilinear_jvp(lambda b, x, g, p: b.apply("conv2d_filter", x, g, params=p))


# pooling ----------------------------------------------------------------------------------------


def _pooled(shape: Shape, params: Any, op: str) -> Shape:
    if len(shape) < 2:
        raise ShapeError(f"{op} pools the last two axes, got {shape_text(shape)}")
    k, stride = params[:2]
    if k < 1:
        raise ShapeError(f"{op} takes a window k >= 1, got {k}")
    h, w = _ints(shape[-2:], "height and width", op)
    return (*shape[:-2], _out_size(h, k, stride, 0, op), _out_size(w, k, stride, 0, op))


def pool_shape(op: str) -> Any:
    def shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
        return _pooled(shapes[0], params, op)

    return shape


def maxpool2d_select_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    x, t = shapes
    if x != t:
        raise ShapeError(f"maxpool2d_select: {shape_text(t)} is not shaped like {shape_text(x)}")
    return _pooled(x, params, "maxpool2d_select")


def unpooled_shape(op: str, image: bool) -> Any:
    """The shape of a pooling op's adjoint: its image operand's (``image``), or params' (H, W)."""

    def shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
        g = shapes[-1]
        target = shapes[0] if image else (*g[:-2], *params[2])
        if _pooled(target, params, op) != g:
            raise ShapeError(f"{op}: {shape_text(g)} is not the pooling of {shape_text(target)}")
        return target

    return shape


def pool_emit(helper: str) -> Any:
    def emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
        return f"{helper}({', '.join(a)}, {', '.join(map(str, params))})"

    return emit


def maxpool2d_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    return (b.apply("maxpool2d_route", args[0], g, params=params),)


def maxpool2d_jvp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]
) -> int | None:
    return None if t[0] is None else b.apply("maxpool2d_select", args[0], t[0], params=params)


def _routed_vjp(other: str) -> Any:
    """The VJP of route/select, linear in their second operand (the first only picks weights)."""

    def vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, h: int) -> tuple[int | None, ...]:
        return None, b.apply(other, args[0], h, params=params)

    return vjp


def _routed_jvp(name: str) -> Any:
    def jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]) -> int | None:
        return None if t[1] is None else b.apply(name, args[0], t[1], params=params)

    return jvp


maxpool2d_select_vjp, maxpool2d_route_vjp = _routed_vjp("maxpool2d_route"), _routed_vjp("maxpool2d_select")
maxpool2d_select_jvp, maxpool2d_route_jvp = _routed_jvp("maxpool2d_select"), _routed_jvp("maxpool2d_route")


def avgpool2d_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    size = tuple(b.shape(args[0])[-2:])
    return (b.apply("avgpool2d_adjoint", g, params=(*params, size)),)


def avgpool2d_adjoint_vjp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, h: int
) -> tuple[int | None, ...]:
    return (b.apply("avgpool2d", h, params=params[:2]),)


def _linear_jvp(name: str) -> Any:
    def jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]) -> int | None:
        return None if t[0] is None else b.apply(name, t[0], params=params)

    return jvp


avgpool2d_jvp, avgpool2d_adjoint_jvp = _linear_jvp("avgpool2d"), _linear_jvp("avgpool2d_adjoint")


# exact path counts: the ops' own NumPy on counts (object arrays) ---------------------------------


def _helper(name: str) -> Any:
    from graphc.ops import block_helpers

    return block_helpers()[name]


def _ones(a: Any) -> Any:
    import numpy as np

    return np.ones(a.shape, dtype=object)


def bilinear_paths(helper: str, extra: Any) -> Any:
    """Each output element is a sum of products: the paths of both factors of each product add."""

    def paths(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
        f = _helper(helper)
        rest = extra(c, params)
        total = f(c[0], _ones(c[1]), *rest) + f(_ones(c[0]), c[1], *rest)
        return total.reshape(shape)

    return paths


def window_paths(helper: str, operand: int) -> Any:
    """Pooling and its adjoints: each element sums the paths of the elements its window reads
    (or is read by), through operand ``operand`` (a max-pool's weights carry no derivative)."""

    def paths(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
        return _helper(helper)(c[operand], *params).reshape(shape)

    return paths


def route_paths(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    return _helper("_window_scatter")(c[1], *params, c[0].shape[-2:]).reshape(shape)


def conv_params(c: list[Any], params: Any) -> tuple[Any, ...]:
    return params[0], params[1]


def adjoint_params(c: list[Any], params: Any) -> tuple[Any, ...]:
    return tuple(params)


def filter_params(c: list[Any], params: Any) -> tuple[Any, ...]:
    return (*params, c[0].ndim - 3)


def spell_conv(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    stride, padding = params
    extra = (f", stride={stride}" if stride != 1 else "") + (f", padding={padding}" if padding else "")
    return f"conv2d({a[0]}, {a[1]}{extra})"


def spell_pool(function: str) -> Any:
    def spell(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
        k, stride = params
        return f"{function}({a[0]}, {k}{f', stride={stride}' if stride != k else ''})"

    return spell


def conv_call(literals: tuple[int, ...], keywords: dict[str, int]) -> Any:
    """conv2d's params from a call's keywords: ``conv2d(X, K, stride=2, padding=1)``."""
    return keywords.get("stride", 1), keywords.get("padding", 0)


def pool_call(literals: tuple[int, ...], keywords: dict[str, int]) -> Any:
    """A pooling op's params from a call: ``maxpool2d(X, 2)`` is window 2, stride 2."""
    (k,) = literals
    return k, keywords.get("stride", k)


# scalar forms (graphc.scalarise) -----------------------------------------------------------------
#
# Each rule takes object arrays of scalar node ids and builds, per element of the result, the same
# sum of products or window maximum the NumPy helpers compute, through the builder (so equal
# elements hash-cons, a padding zero's product vanishes, and no node is built for a pixel the result
# drops). A max pool is a left-to-right chain of the two-operand ``max``, whose partials count the
# chain's tied leaves: a tie of k gives 1/k to each, as the block VJP does. The pooling adjoints
# (select, route) weigh each window element by ``(x == m) / Σ (x == m)``, ``m`` the window's max: the
# block VJP's 1/k policy exactly (a comparison's derivative is 0, as the block op's first operand's).


def _total(b: Graph, terms: list[int]) -> int:
    """``terms`` added left to right; 0 when there are none."""
    if not terms:
        return b.const(0.0)
    total = terms[0]
    for term in terms[1:]:
        total = b.add(total, term)
    return total


def _largest(b: Graph, nodes: list[int]) -> int:
    """The max of ``nodes`` as a left-to-right chain of the two-operand ``max``."""
    top = nodes[0]
    for node in nodes[1:]:
        top = b.apply("max", top, node)
    return top


def _scalar_windows(b: Graph, x: Any, window: tuple[int, int], stride: int, padding: int = 0) -> Any:
    """``x``'s windows ``[..., H', W', kh, kw]`` (padded with the constant 0), as ``_windows``."""
    import numpy as np

    if padding:
        padded = np.full(
            (*x.shape[:-2], x.shape[-2] + 2 * padding, x.shape[-1] + 2 * padding), b.const(0.0), dtype=object
        )
        padded[..., padding:-padding, padding:-padding] = x
        x = padded
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=(-2, -1))
    return view[..., ::stride, ::stride, :, :]


def _scattered(b: Graph, shape: tuple[int, ...], pieces: Any) -> Any:
    """The array of ``shape`` whose each element sums the ``(index, node)`` pieces sent to it."""
    import numpy as np

    terms: dict[tuple[int, ...], list[int]] = {}
    for index, node in pieces:
        terms.setdefault(index, []).append(node)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = _total(b, terms.get(index, []))
    return out


def conv2d_scalar(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    """``out[..., o, h, w] = Σ_{c,i,j} K[o, c, i, j] · X[..., c, s·h + i − p, s·w + j − p]``."""
    import numpy as np

    x, k = a
    stride, padding = params
    cols = _scalar_windows(b, x, k.shape[-2:], stride, padding)  # [..., C, H', W', kh, kw]
    out = np.empty((*cols.shape[:-5], k.shape[0], *cols.shape[-4:-2]), dtype=object)
    for *lead, o, h, w in np.ndindex(out.shape):
        window = cols[(*lead, slice(None), h, w)]  # [C, kh, kw], as k[o]
        out[(*lead, o, h, w)] = _total(
            b, [b.mul(p, q) for p, q in zip(k[o].ravel(), window.ravel(), strict=True)]
        )
    return out


def conv2d_filter_scalar(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    """``out[o, c, i, j] = Σ_{..., h, w} G[..., o, h, w] · X[..., c, s·h + i − p, s·w + j − p]``."""
    import numpy as np

    x, g = a
    stride, padding, window = params
    cols = _scalar_windows(b, x, window, stride, padding)  # [..., C, H', W', kh, kw]
    out = np.empty((g.shape[-3], x.shape[-3], *window), dtype=object)
    for o, c, i, j in np.ndindex(out.shape):
        pairs = zip(g[..., o, :, :].ravel(), cols[..., c, :, :, i, j].ravel(), strict=True)
        out[o, c, i, j] = _total(b, [b.mul(p, q) for p, q in pairs])
    return out


def conv2d_input_scalar(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    """``out[..., c, y, x] = Σ G[..., o, h, w] · K[o, c, i, j]`` over ``s·h + i − p = y``,
    ``s·w + j − p = x``: each upstream element scattered through the filter into its window."""
    import numpy as np

    g, k = a
    stride, padding, (height, width) = params
    c_in, kh, kw = k.shape[1:]
    pieces = []
    for *lead, o, h, w in np.ndindex(g.shape):
        for c, i, j in np.ndindex(c_in, kh, kw):
            y, z = stride * h + i - padding, stride * w + j - padding
            if 0 <= y < height and 0 <= z < width:
                pieces.append(((*lead, c, y, z), b.mul(g[(*lead, o, h, w)], k[o, c, i, j])))
    return _scattered(b, (*g.shape[:-3], c_in, height, width), pieces)


def maxpool2d_scalar(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    import numpy as np

    k, stride = params
    cols = _scalar_windows(b, a[0], (k, k), stride)
    out = np.empty(cols.shape[:-2], dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = _largest(b, list(cols[index].ravel()))
    return out


def avgpool2d_scalar(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    import numpy as np

    k, stride = params
    cols = _scalar_windows(b, a[0], (k, k), stride)
    out = np.empty(cols.shape[:-2], dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = b.div(_total(b, list(cols[index].ravel())), b.const(float(k * k)))
    return out


def avgpool2d_adjoint_scalar(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    import numpy as np

    (g,) = a
    k, stride, (height, width) = params
    share = b.const(float(k * k))
    pieces = []
    for *lead, h, w in np.ndindex(g.shape):
        part = b.div(g[(*lead, h, w)], share)
        pieces += [((*lead, stride * h + i, stride * w + j), part) for i, j in np.ndindex(k, k)]
    return _scattered(b, (*g.shape[:-2], height, width), pieces)


def _shares(b: Graph, window: list[int]) -> tuple[list[int], int]:
    """A max-pool window's hits ``x == m`` (``m`` its max) and their count: a hit's share is 1/count."""
    top = _largest(b, window)
    hits = [b.apply("eq", node, top) for node in window]
    return hits, _total(b, hits)


def maxpool2d_select_scalar(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    """``out = Σ_window hit · t / Σ_window hit``: the tangent averaged over the window's maxima."""
    import numpy as np

    k, stride = params
    x_cols, t_cols = (_scalar_windows(b, v, (k, k), stride) for v in a)
    out = np.empty(x_cols.shape[:-2], dtype=object)
    for index in np.ndindex(out.shape):
        hits, count = _shares(b, list(x_cols[index].ravel()))
        tangents = t_cols[index].ravel()
        out[index] = b.div(_total(b, [b.mul(hit, t) for hit, t in zip(hits, tangents, strict=True)]), count)
    return out


def maxpool2d_route_scalar(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
    """Each window's adjoint sent to its maxima, ``hit · g / Σ_window hit`` each, overlaps adding;
    with a third operand (its masked form, graphc.masked_conv) a window's share is
    ``where(f, g / Σ_window hit, 0)``."""
    import numpy as np

    x, g = a[:2]
    k, stride = params
    cols = _scalar_windows(b, x, (k, k), stride)
    pieces = []
    for *lead, h, w in np.ndindex(g.shape):
        hits, count = _shares(b, list(cols[(*lead, h, w)].ravel()))
        share = b.div(g[(*lead, h, w)], count)
        if len(a) == 3:
            share = b.apply("where", a[2][(*lead, h, w)], share, b.const(0.0))
        for (i, j), hit in zip(np.ndindex(k, k), hits, strict=True):
            pieces.append(((*lead, stride * h + i, stride * w + j), b.mul(hit, share)))
    return _scattered(b, x.shape, pieces)


# stacked rules (graphc.diff.stacked) -------------------------------------------------------------
# An operand stacked on a leading axis of length n (``lead``, concrete) holds n values of it, one
# per slice. Every op here reads the leading axes of its images as batch axes, so a stacked image
# needs nothing; a stacked filter is laid out as n times its channels, and the result's channel
# axis split back into (n, channels), n moved to the front. The JVPs of max pooling and of its
# adjoints take the window weights from the (unstacked) image, broadcast along the stack.


def _moved(b: Graph, x: int, source: int, target: int) -> int:
    """``x`` with axis ``source`` moved to ``target`` (one of them 0), by the transposes the
    language spells (a reversal of every axis, a 2-D swap), so the graph prints and parses back:
    the axes that change places as blocks (P, Q) of a ``(P, Q, R)`` reshape, reversed to
    ``(R, Q, P)``, then ``(R, Q·P)`` swapped to ``(Q·P, R)``. Needs their sizes as numbers."""
    if source == target:
        return x
    assert min(source, target) == 0, (source, target)
    shape = b.shape(x)
    order = list(range(len(shape)))
    order.insert(target, order.pop(source))
    end = max(source, target) + 1
    split = 1 if source == 0 else source  # P is shape[:split], Q shape[split:end]
    p, q, r = (_size(shape[:split]), _size(shape[split:end]), _size(shape[end:]))
    blocks = b.apply("reshape", x, params=(p, q, r))
    reversed_ = b.apply("transpose", blocks, params=(2, 1, 0))
    flat = b.apply("reshape", reversed_, params=(r, q * p))
    swapped = b.apply("transpose", flat, params=(1, 0))
    return b.apply("reshape", swapped, params=tuple(shape[i] for i in order))


def _size(dims: Shape) -> int:
    total = 1
    for d in dims:
        total *= _count(d)
    return total


def _count(d: Any) -> int:
    """A channel count the stack is laid along: a number, else the input goes one element at a time."""
    if not isinstance(d, int):
        from graphc.diff.stacked import Unstackable

        raise Unstackable(d)
    return d


def _merged(b: Graph, x: int, n: int) -> int:
    """A stacked image ``(n, ..., C, H, W)`` as one image ``(..., n·C, H, W)`` (slice-major)."""
    shape = b.shape(x)
    batch, c = shape[1:-3], _count(shape[-3])
    return b.apply("reshape", _moved(b, x, 0, len(batch)), params=(*batch, n * c, *shape[-2:]))


def _split(b: Graph, y: int, n: int, axis: int) -> int:
    """``y`` with its axis ``axis`` of n·C channels split into (n, C), n moved to the front."""
    shape = b.shape(y)
    c = _count(shape[axis]) // n
    split = b.apply("reshape", y, params=(*shape[:axis], n, c, *shape[axis + 1 :]))
    return _moved(b, split, axis, 0)


def _diagonal_blocks(b: Graph, k: int, n: int) -> int:
    """A stacked filter ``(n, O, C, kh, kw)`` as one block-diagonal filter ``(n·O, n·C, kh, kw)``:
    slice i's weights join slice i's output channels to slice i's input channels only."""
    from graphc.diff.stacked import identity

    _, o, c, kh, kw = b.shape(k)
    o, c = _count(o), _count(c)
    eye = b.apply("reshape", identity(b, (n,)), params=(n, 1, n, 1, 1, 1))
    rows = b.apply("reshape", k, params=(n, o, 1, c, kh, kw))
    blocks = b.apply("where", eye, rows, b.const(0.0))
    return b.apply("reshape", blocks, params=(n * o, n * c, kh, kw))


def conv2d_stacked(b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape) -> int:
    """``conv2d`` of each slice: a stacked image is one more batch axis; a stacked filter's slices
    are n·C_out output channels of one convolution. Both stacked (an image and a filter that depend
    on one input: ``numeric`` only, as forward mode stacks one operand at a time): the image's
    slices as n·C_in channels and the filter block-diagonal, n times the n convolutions' arithmetic."""
    x, k = a
    if not which[1]:
        return b.apply("conv2d", x, k, params=params)
    n = int(lead[0])
    _, c_out, c_in, kh, kw = b.shape(k)
    if which[0]:
        x, filters = _merged(b, x, n), _diagonal_blocks(b, k, n)
    else:
        filters = b.apply("reshape", k, params=(n * _count(c_out), c_in, kh, kw))
    out = b.apply("conv2d", x, filters, params=params)
    return _split(b, out, n, len(b.shape(out)) - 3)


def conv2d_input_stacked(
    b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape
) -> int:
    """``conv2d_input`` of each slice: a stacked gradient is one more batch axis; a stacked
    filter's slices are n·C_in input channels (the result's); both stacked, the gradient's slices
    as n·C_out channels and the filter block-diagonal."""
    g, k = a
    if not which[1]:
        return b.apply("conv2d_input", g, k, params=params)
    n = int(lead[0])
    _, c_out, c_in, kh, kw = b.shape(k)
    if which[0]:
        g, filters = _merged(b, g, n), _diagonal_blocks(b, k, n)
    else:
        across = _moved(b, k, 0, 1)  # (C_out, n, C_in, kh, kw)
        filters = b.apply("reshape", across, params=(c_out, n * _count(c_in), kh, kw))
    out = b.apply("conv2d_input", g, filters, params=params)
    return _split(b, out, n, len(b.shape(out)) - 3)


def conv2d_filter_stacked(
    b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape
) -> int:
    """``conv2d_filter`` of each slice, which sums over the batch axes: the stacked operand's
    slices as n times its channels, so the stack is not summed; both stacked, the slices' pairs
    (i, j) all computed and the diagonal i = j kept, n times the arithmetic."""
    x, g = a
    n = int(lead[0])
    merged = tuple(_merged(b, o, n) if s else o for o, s in zip(a, which, strict=True))
    out = b.apply("conv2d_filter", *merged, params=params)
    if not which[0]:
        return _split(b, out, n, 0)
    if not which[1]:
        return _split(b, out, n, 1)
    from graphc.diff.stacked import identity

    c_out, c_in = _count(b.shape(g)[-3]), _count(b.shape(x)[-3])
    pairs = b.apply("reshape", out, params=(n, c_out, n, c_in, *b.shape(out)[2:]))
    eye = b.apply("reshape", identity(b, (n,)), params=(n, 1, n, 1, 1, 1))
    kept = b.apply("where", eye, pairs, b.const(0.0))
    return b.apply("sum", kept, params=((2,), False))


def _lifted(b: Graph, a: tuple[int, ...], which: tuple[bool, ...], lead: Shape) -> tuple[int, ...]:
    """The operands not stacked broadcast along the stack (their own leading axes after it)."""
    return tuple(
        x if s else b.apply("broadcast", x, params=lead + b.shape(x)) for x, s in zip(a, which, strict=True)
    )


def windows_stacked(name: str) -> Any:
    """The stacked rule of a pooling op or adjoint: the op on the operands, each stacked (the
    stacked axis is one more batch axis)."""

    def stacked(b: Graph, a: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape) -> int:
        return b.apply(name, *_lifted(b, a, which, lead), params=params)

    return stacked


def maxpool2d_stacked_jvp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...], lead: Shape
) -> int | None:
    """``maxpool2d_select`` of the image, broadcast along the stack, and the stacked tangent: each
    slice's tangent averaged over its window's maxima (a tie splits evenly, as unstacked)."""
    if t[0] is None:
        return None
    return b.apply("maxpool2d_select", *_lifted(b, (args[0], t[0]), (False, True), lead), params=params)


def routed_stacked_jvp(name: str) -> Any:
    """The stacked JVP of select/route: linear in their second operand, weights from the first."""

    def jvp(
        b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...], lead: Shape
    ) -> int | None:
        if t[1] is None:
            return None
        return b.apply(name, *_lifted(b, (args[0], t[1]), (False, True), lead), params=params)

    return jvp
