"""Convolution's masked forms: conv2d and its two adjoints without the terms a flag marks dead
(and max pooling's adjoint without a dead window's ``0 / 0``, at the end).

Below a ``where`` whose condition differs from element to element, an adjoint (or a tangent) is
exactly 0 in its unselected lanes. conv2d and its adjoints (graphc.convolution) are the three
partial derivatives of one trilinear form ``τ(X, K, O) = Σ O[o,h,w] K[o,c,i,j] X[c, s·h+i−p,
s·w+j−p]``, each a sum of products of its two operands; a dead element of one times an infinite
element of the other is ``0 * inf = NaN``, and it lands in an output that other, selected terms may
make live (an infinite pixel read by a selected and an unselected output). The masked form of each
op (``masked_conv2d``, ``masked_conv2d_input``, ``masked_conv2d_filter``) takes the op's two
operands, then a flag shaped like one of them, its params, then that operand's slot (0 or 1): the
same sum, without the terms whose element of the flagged operand has flag 0::

    masked_conv2d(X, K, F, stride=1, padding=0, masked=0)   # X's terms where F[..] != 0 only

New op entries rather than a flag operand on the existing ones: the plain ops are user-facing
(``conv2d``) or reached by every convolution's gradient, with their own fast NumPy and loop forms;
a masked entry leaves them exactly as they are, and only a graph with a per-element flag pays for
a mask. Which operand the flag masks is a param, not a third spelling of each op: a mask on
either operand of either op arises (dp masks the upstream gradient; forward masks a tangent,
either operand of conv2d; a Hessian differentiates the masked ops themselves).

The NumPy (``_masked_conv``) zeroes the flagged operand's dead elements and runs the plain op: exact
where both operands are finite, which costs one ``where`` and two ``isfinite`` more than the plain
op. Where they are not, the finite terms are summed by the plain op on the operands' finite
parts, and the terms with a non-finite factor (each +inf, -inf or NaN, by IEEE) are classed by the
plain op run on 0/1 indicators (a count per output), added as ±inf or NaN: the sum IEEE gives over
the live terms. A pixel of the padding is no term of a masked form (as in the scalar form, which
has none), not a 0 times its tap. The LLVM loop steps (graphc.backends.llvm.tensor_conv) select
each term by its flag; the scalar form (``where(f, a * b, 0)`` per term, summed) serves ``paths``,
``symbolic`` and the scalarised kernels.

The rules, written once for the six forms (three ops, a flag on either operand), build "the op
whose result is role R from the other two roles' tensors", the roles being ``x`` (image), ``k``
(filter) and ``o`` (conv2d's result, an upstream gradient): each op's VJP and JVP are the other
two ops (graphc.convolution). :data:`RULES` gives, for the plain ops and the masked ones, their VJP
for an adjoint live where a flag is and their JVP for flagged tangents (their entries' ``masked``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphc import convolution as cv
from graphc.shapes import Shape, ShapeError
from graphc.shapes import text as shape_text

if TYPE_CHECKING:
    from graphc.graph import Graph

# each op: (the role of its result, the roles of its two operands)
ROLES: dict[str, tuple[str, tuple[str, str]]] = {
    "conv2d": ("o", ("x", "k")),
    "conv2d_input": ("x", ("o", "k")),
    "conv2d_filter": ("k", ("x", "o")),
}
BY_RESULT = {result: name for name, (result, _) in ROLES.items()}
MASKED_NAME = {name: f"masked_{name}" for name in ROLES}
BASE = {masked: name for name, masked in MASKED_NAME.items()}
_SHAPES = {
    "conv2d": cv.conv2d_shape,
    "conv2d_input": cv.conv2d_input_shape,
    "conv2d_filter": cv.conv2d_filter_shape,
}
_HELPER = {"conv2d": "_conv2d", "conv2d_input": "_conv2d_input", "conv2d_filter": "_conv2d_filter"}

HELPERS = """\
def _masked_terms(run, kept, live, other):
    kept = np.where(live, kept, 0.0)
    finite_k, finite_o = np.isfinite(kept), np.isfinite(other)
    if finite_o.all() and finite_k.all():
        return run(kept, other)
    out = run(np.where(finite_k, kept, 0.0), np.where(finite_o, other, 0.0))
    with np.errstate(invalid="ignore"):
        k_pos, k_neg, k_inf = live & (kept > 0), live & (kept < 0), live & np.isinf(kept)
        o_pos, o_neg, o_inf = other > 0, other < 0, np.isinf(other)
        classes = {
            np.inf: [(k_pos & k_inf, o_pos), (k_pos & finite_k, o_pos & o_inf),
                     (k_neg & k_inf, o_neg), (k_neg & finite_k, o_neg & o_inf)],
            -np.inf: [(k_pos & k_inf, o_neg), (k_pos & finite_k, o_neg & o_inf),
                      (k_neg & k_inf, o_pos), (k_neg & finite_k, o_pos & o_inf)],
            np.nan: [(live & np.isnan(kept), np.ones(other.shape)), (live, np.isnan(other)),
                     (k_inf, other == 0), (live & (kept == 0), o_inf)],
        }
        for value, pairs in classes.items():
            hits = [run(k * 1.0, o * 1.0) for k, o in pairs if k.any() and o.any()]
            if hits:
                out = out + np.where(sum(hits) > 0, value, 0.0)
    return out


def _masked_conv(op, slot, a, b, f, *params):
    if slot == 0:
        return _masked_terms(lambda m, o: op(m, o, *params), a, f != 0, b)
    return _masked_terms(lambda m, o: op(o, m, *params), b, f != 0, a)
"""


# --- the op entries' rules --------------------------------------------------------------------------


def _split(params: Any) -> tuple[Any, int]:
    """A masked op's params: the plain op's, and the flagged operand's slot."""
    return tuple(params[:-1]), params[-1]


def shape_rule(name: str) -> Callable[[tuple[Shape, ...], Any], Shape]:
    base = BASE[name]

    def shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
        plain, slot = _split(params)
        if slot not in (0, 1):
            raise ShapeError(f"{name} masks operand 0 or 1, got masked={slot}")
        result = _SHAPES[base](shapes[:2], plain)
        if shapes[2] != shapes[slot]:
            raise ShapeError(
                f"{name}'s mask {shape_text(shapes[2])} is not shaped like its operand {shape_text(shapes[slot])}"
            )
        return result

    return shape


def emit_rule(name: str) -> Callable[[tuple[str, ...], tuple[Shape, ...], Any], str]:
    base = BASE[name]

    def emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
        plain, slot = _split(params)
        extra = [str(p) for p in plain]  # the plain helper's: stride, padding (, size or window)
        if base == "conv2d_filter":
            extra.append(str(len(shapes[0]) - 3))  # the image's leading axes, as conv2d_filter_emit
        return f"_masked_conv({_HELPER[base]}, {slot}, {a[0]}, {a[1]}, {a[2]}, {', '.join(extra)})"

    return emit


def spell_rule(name: str) -> Callable[[tuple[str, ...], tuple[Shape, ...], Any], str]:
    def spell(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
        plain, slot = _split(params)
        size = "" if len(plain) == 2 else f", size=[{plain[2][0]}, {plain[2][1]}]"
        return f"{name}({', '.join(a)}, stride={plain[0]}, padding={plain[1]}{size}, masked={slot})"

    return spell


def keywords(name: str) -> tuple[str, ...]:
    return (
        ("stride", "padding", "masked") if BASE[name] == "conv2d" else ("stride", "padding", "size", "masked")
    )


def call_rule(name: str) -> Callable[[tuple[int, ...], dict[str, Any]], Any]:
    """The params from a call's keywords, as :func:`spell_rule` writes them."""
    keys = keywords(name)

    def call(literals: tuple[int, ...], given: dict[str, Any]) -> Any:
        for key in keys:
            if key not in given:
                raise ShapeError(f"{name}() needs {key}=")
        if not all(type(given[k]) is int and given[k] >= 0 for k in ("stride", "padding", "masked")):
            raise ShapeError(f"{name}()'s stride=, padding= and masked= take whole numbers")
        size = given.get("size", ())
        if "size" in keys and not (
            isinstance(size, tuple) and len(size) == 2 and all(type(d) is int and d >= 1 for d in size)
        ):
            raise ShapeError(f"{name}()'s size= takes a list of two whole numbers")
        return tuple(given[k] for k in keys)

    return call


def paths_rule(name: str) -> Callable[[list[Any], Any, tuple[int, ...]], Any]:
    """The scalar form's paths: each term ``where(f, a * b, 0)`` adds the paths of both factors;
    the flag is a ``where``'s condition, which no derivative flows through (the entry's ``inert``)."""
    base = BASE[name]
    extra = {"conv2d": cv.conv_params, "conv2d_input": cv.adjoint_params, "conv2d_filter": cv.filter_params}[
        base
    ]

    def paths(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
        plain, _ = _split(params)
        return cv.bilinear_paths(_HELPER[base], extra)([c[0], c[1]], plain, shape)

    return paths


def scalarise_rule(name: str) -> Callable[[Graph, tuple[Any, ...], Any], Any]:
    """The op on scalar nodes: per element of the result, the sum of ``where(f, a * b, 0)`` over
    its terms (:func:`_terms`); a term whose flag is the constant 1 is the plain product."""
    import numpy as np

    base = BASE[name]
    result, operands = ROLES[base]

    def scalarise(b: Graph, a: tuple[Any, ...], params: Any) -> Any:
        plain, slot = _split(params)
        shapes = {
            r: tuple(int(d) for d in s)
            for r, s in _role_shapes(base, (a[0].shape, a[1].shape), plain).items()
        }
        arrays = dict(zip(operands, a[:2], strict=True))
        flagged, zero = operands[slot], b.const(0.0)
        sums: dict[tuple[int, ...], list[int]] = {}
        for at in _terms(shapes, plain[:2]):
            term = b.mul(arrays[operands[0]][at[operands[0]]], arrays[operands[1]][at[operands[1]]])
            sums.setdefault(at[result], []).append(b.apply("where", a[2][at[flagged]], term, zero))
        out = np.empty(shapes[result], dtype=object)
        for index in np.ndindex(out.shape):
            out[index] = cv._total(b, sums.get(index, []))
        return out

    return scalarise


def _role_shapes(base: str, shapes: tuple[Shape, Shape], plain: Any) -> dict[str, Shape]:
    """The shapes of the three roles of ``base`` applied to operands of ``shapes``."""
    result, operands = ROLES[base]
    return {**dict(zip(operands, shapes, strict=True)), result: _SHAPES[base](shapes, plain)}


def _terms(shapes: dict[str, tuple[int, ...]], params: Any) -> Any:
    """Every term of τ: the index of its element of each role, in the order conv2d sums them."""
    import numpy as np

    stride, padding = params
    x, k, o = shapes["x"], shapes["k"], shapes["o"]
    height, width = x[-2:]
    for lead in np.ndindex(*x[:-3]):
        for out, c, i, j in np.ndindex(k[0], *k[1:]):
            for h, w in np.ndindex(*o[-2:]):
                y, z = stride * h + i - padding, stride * w + j - padding
                if 0 <= y < height and 0 <= z < width:
                    yield {"x": (*lead, c, y, z), "k": (out, c, i, j), "o": (*lead, out, h, w)}


# --- VJPs and JVPs, plain and flagged -----------------------------------------------------------------
#
# A node's roles: its operands' and its result's tensors. ``_op(b, R, given, node roles, mask)``
# builds the op whose result is role R from the tensors ``given`` for the other two, its geometry
# (stride, padding, the image's and the filter's sizes) that of the node; ``mask``: (role, flag),
# the terms whose element of that role is dead skipped.


def _op(b: Graph, role: str, given: dict[str, int], node: tuple[Any, dict[str, Shape]], mask: Any) -> int:
    params, shapes = node
    name = BY_RESULT[role]
    operands = tuple(given[r] for r in ROLES[name][1])
    plain = (
        tuple(params[:2]) + {"o": (), "x": (tuple(shapes["x"][-2:]),), "k": (tuple(shapes["k"][-2:]),)}[role]
    )
    if mask is None:
        return b.apply(name, *operands, params=plain)
    return b.apply(MASKED_NAME[name], *operands, mask[1], params=(*plain, ROLES[name][1].index(mask[0])))


def _node(b: Graph, base: str, args: tuple[int, ...], params: Any) -> tuple[Any, dict[str, Shape]]:
    return params, _role_shapes(base, (b.shape(args[0]), b.shape(args[1])), params)


def _where(b: Graph, f: int, x: int) -> int:
    return b.apply("where", f, x, b.const(0.0))


def _sum(b: Graph, terms: list[int | None]) -> int | None:
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else b.add(total, term)
    return total


def plain_vjp(base: str) -> Callable[..., tuple[int | None, ...]]:
    """The VJP of plain ``base`` for an adjoint ``g`` live where ``f`` (shaped like ``g``) is:
    each operand's adjoint the op of its role from ``g`` and the other operand, ``g``'s dead
    terms skipped."""
    result, operands = ROLES[base]

    def vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int, f: int) -> tuple[int | None, ...]:
        node = _node(b, base, args, params)
        given = {result: g, **dict(zip(operands, args, strict=True))}
        return tuple(
            _op(b, role, {r: given[r] for r in given if r != role}, node, (result, f)) for role in operands
        )

    return vjp


def plain_jvp(base: str) -> Callable[..., int | None]:
    """The JVP of plain ``base`` for tangents live where their flags (None: everywhere) are."""
    result, operands = ROLES[base]

    def jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: Any, f: Any) -> int | None:
        node = _node(b, base, args, params)
        terms: list[int | None] = []
        for slot, role in enumerate(operands):
            if t[slot] is not None:
                other = operands[1 - slot]
                mask = None if f[slot] is None else (role, f[slot])
                terms.append(_op(b, result, {role: t[slot], other: args[1 - slot]}, node, mask))
        return _sum(b, terms)

    return jvp


def masked_vjp(name: str) -> Callable[..., tuple[int | None, ...]]:
    """The VJP of masked ``name`` (its flag ``fm`` on operand role M) for an adjoint ``g`` live
    where ``f`` is (None: everywhere). M's adjoint is 0 where M is dead; the other operand's skips
    M's dead terms, and ``g``'s (then M's dead elements enter as 0)."""
    base = BASE[name]
    result, operands = ROLES[base]

    def vjp(
        b: Graph, args: tuple[int, ...], out: int, params: Any, g: int, f: int | None = None
    ) -> tuple[int | None, ...]:
        plain, slot = _split(params)
        node = _node(b, base, args, plain)
        flagged, other = operands[slot], operands[1 - slot]
        fm, kept = args[2], args[slot]
        gmask = None if f is None else (result, f)
        d_flagged = _where(b, fm, _op(b, flagged, {result: g, other: args[1 - slot]}, node, gmask))
        if f is None:
            d_other = _op(b, other, {result: g, flagged: kept}, node, (flagged, fm))
        else:
            d_other = _op(b, other, {result: g, flagged: _where(b, fm, kept)}, node, gmask)
        pair = [d_flagged, d_other] if slot == 0 else [d_other, d_flagged]
        return pair[0], pair[1], None

    return vjp


def masked_jvp(name: str) -> Callable[..., int | None]:
    """The JVP of masked ``name`` for tangents live where their flags (None: everywhere) are."""
    base = BASE[name]
    result, operands = ROLES[base]

    def jvp(
        b: Graph, args: tuple[int, ...], out: int, params: Any, t: Any, f: Any = (None, None, None)
    ) -> int | None:
        plain, slot = _split(params)
        node = _node(b, base, args, plain)
        flagged, other = operands[slot], operands[1 - slot]
        fm = args[2]
        terms: list[int | None] = []
        if t[slot] is not None:
            both = fm if f[slot] is None else b.apply("and", fm, f[slot])
            terms.append(_op(b, result, {flagged: t[slot], other: args[1 - slot]}, node, (flagged, both)))
        if t[1 - slot] is not None:
            if f[1 - slot] is None:
                given, mask = {flagged: args[slot], other: t[1 - slot]}, (flagged, fm)
            else:
                given, mask = {flagged: _where(b, fm, args[slot]), other: t[1 - slot]}, (other, f[1 - slot])
            terms.append(_op(b, result, given, node, mask))
        return _sum(b, terms)

    return jvp


# --- max pooling: its adjoint never divides a dead window's 0 by a count of 0 -----------------------
#
# maxpool2d's VJP sends each window's adjoint to its maxima, ``g / count`` each; a window holding a
# NaN has no maximum (count 0), and a dead window's 0 / 0 is NaN, which lands on pixels other,
# selected windows read too (overlapping windows). ``masked_maxpool2d_route(X, G, F)`` (params:
# the window and the stride) is the route with a flag per window: a dead window's share is 0. Its
# tangent likewise: a window whose tangent lanes are all dead is 0, not 0 / 0.

ROUTE = "masked_maxpool2d_route"


def route_shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    result = cv.unpooled_shape(ROUTE, True)(shapes[:2], params)
    if shapes[2] != shapes[1]:
        raise ShapeError(
            f"{ROUTE}'s mask {shape_text(shapes[2])} is not shaped like its windows {shape_text(shapes[1])}"
        )
    return result


def route_emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"_maxpool2d_route({a[0]}, {a[1]}, {params[0]}, {params[1]}, {a[2]} != 0)"


def route_paths(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    """The route's: the windows' flags are conditions, which carry no path (the entry's ``inert``)."""
    return cv.route_paths([c[0], c[1]], params, shape)


def route_vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, h: int) -> tuple[int | None, ...]:
    return None, _where(b, args[2], b.apply("maxpool2d_select", args[0], h, params=params)), None


def route_jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: Any) -> int | None:
    return None if t[1] is None else b.apply(ROUTE, args[0], t[1], args[2], params=params)


def _pool_vjp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, g: int, f: int
) -> tuple[int | None, ...]:
    """maxpool2d's VJP for ``g`` live where ``f`` (a flag per window) is."""
    return (b.apply(ROUTE, args[0], g, f, params=params),)


def _pool_jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: Any, f: Any) -> int | None:
    """maxpool2d's JVP for a tangent live where ``f`` (a flag per pixel; None: everywhere) is: 0 in
    a window with no live pixel."""
    if t[0] is None:
        return None
    tangent = b.apply("maxpool2d_select", args[0], t[0], params=params)
    if f[0] is None:
        return tangent
    live = b.apply("maxpool2d", b.apply("ne", f[0], b.const(0.0)), params=params)
    return _where(b, live, tangent)


# the ops whose sums a flag masks: (VJP for a flagged adjoint, JVP for flagged tangents, no
# stacked rule), each the ``masked`` field of that op's entry in graphc.ops
RULES: dict[str, tuple[Callable[..., Any], Callable[..., Any], None]] = {
    **{base: (plain_vjp(base), plain_jvp(base), None) for base in ROLES},
    **{name: (masked_vjp(name), masked_jvp(name), None) for name in BASE},
    "maxpool2d": (_pool_vjp, _pool_jvp, None),
}
