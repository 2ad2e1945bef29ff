"""The masked contraction: a matrix product that skips the terms a flag marks dead.

Below a ``where`` whose condition differs from element to element, an adjoint (or a tangent) is
exactly 0 in its unselected lanes: its *flag* (graphc.diff.common) is 0 there. A matrix product of
it with another operand sums products ``g[i, j] * y[j, k]`` over ``j``; one of them with ``g`` dead
and ``y`` infinite is ``0 * inf = NaN``, and it lands in ``[i, k]``, which other, selected terms may
make live. ``masked_matmul(a, f, b)`` is the product that never takes those terms::

    masked_matmul(a, f, b)[..., i, k] = Σ_j (a[..., i, j] * b[..., j, k] if f[..., i, j] != 0 else 0)

on 2-D operands (``f`` shaped like ``a``; vectors are made matrices by the callers, through
views). Its NumPy is a plain ``@`` of ``a`` zeroed where ``f`` is dead, which is exact wherever
``b``'s column is finite; the few columns of ``b`` holding an inf or a NaN are then summed again
term by term, so a product whose operands are finite costs one ``where`` and one ``isfinite`` more
than ``@``. The LLVM backend's loop kernels compute it as one fused loop, the ``where``s of
``a * bᵀ`` summed along ``j`` (graphc.backends.llvm.tensor_plan.lowered); its scalar form (the
same sum) serves ``paths``, ``symbolic`` and the scalarised kernels.

:data:`MATMUL` and :data:`SELF` are, for the block ops whose VJP and JVP are such products
(``matmul``, and this op itself, for derivatives of gradient graphs), their VJP for an adjoint live
where a flag is, their JVP for tangents with flags and their stacked rule for a stacked tangent with
structural zeros: the ``masked`` field of those ops' entries (convolution's are graphc.masked_conv's),
which graphc.diff.blocks and graphc.diff.stacked take wherever a flag holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc import masked_conv
from graphc.shapes import Shape, ShapeError
from graphc.shapes import text as shape_text

if TYPE_CHECKING:
    from graphc.graph import Graph

NAME = "masked_matmul"

HELPERS = (
    """\
def _masked_matmul(a, f, b):
    live = f != 0
    out = np.where(live, a, 0.0) @ b
    if np.isfinite(b).all():
        return out
    lead = out.shape[:-2]
    a, live = np.broadcast_to(a, lead + a.shape[-2:]), np.broadcast_to(live, lead + a.shape[-2:])
    columns = np.swapaxes(np.broadcast_to(b, lead + b.shape[-2:]), -1, -2)
    at = np.nonzero(~np.isfinite(columns).all(axis=-1))
    with np.errstate(invalid="ignore"):
        terms = np.where(live[at[:-1]], a[at[:-1]] * columns[at][..., None, :], 0.0)
    np.swapaxes(out, -1, -2)[at] = terms.sum(axis=-1)
    return out

"""
    + masked_conv.HELPERS
)  # convolution's masked forms (graphc.masked_conv)


# --- the op entry's rules ------------------------------------------------------------------------


def shape(shapes: tuple[Shape, ...], params: Any) -> Shape:
    a, f, b = shapes
    if len(a) != 2 or len(b) != 2 or a[1] != b[0]:
        raise ShapeError(
            f"cannot masked_matmul {shape_text(a)} by {shape_text(b)}: it takes [i, j] and [j, k]"
        )
    if f != a:
        raise ShapeError(
            f"masked_matmul's mask {shape_text(f)} is not shaped like its operand {shape_text(a)}"
        )
    return (a[0], b[1])


def emit(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"_masked_matmul({a[0]}, {a[1]}, {a[2]})"


def spell(a: tuple[str, ...], shapes: tuple[Shape, ...], params: Any) -> str:
    return f"{NAME}({', '.join(a)})"


def call(literals: tuple[int, ...], keywords: dict[str, Any]) -> Any:
    return None


def paths(c: list[Any], params: Any, shape: tuple[int, ...]) -> Any:
    """The scalar form's: each ``[i, k]`` sums ``where(f, a * b, 0)`` over ``j``."""
    a, f, b = c
    ones_a, ones_b = np.ones(a.shape, dtype=object), np.ones(b.shape, dtype=object)
    return np.asarray(np.matmul(a + f, ones_b) + np.matmul(ones_a, b), dtype=object).reshape(shape)


def scalarise(b: Graph, operands: tuple[Any, ...], params: Any) -> Any:
    a, f, c = operands
    zero = b.const(0.0)
    out = np.empty((a.shape[0], c.shape[1]), dtype=object)
    for i, k in np.ndindex(out.shape):
        total = None
        for j in range(a.shape[1]):
            term = b.apply("where", f[i, j], b.mul(a[i, j], c[j, k]), zero)
            total = term if total is None else b.add(total, term)
        out[i, k] = total
    return out


def vjp(b: Graph, args: tuple[int, ...], out: int, params: Any, g: int) -> tuple[int | None, ...]:
    a, f, c = args
    return _where(b, f, b.apply("matmul", g, _t(b, c))), None, masked(b, _t(b, a), _t(b, f), g)


def jvp(b: Graph, args: tuple[int, ...], out: int, params: Any, t: tuple[int | None, ...]) -> int | None:
    a, f, c = args
    terms = [t[0] and masked(b, t[0], f, c), t[2] and masked(b, a, f, t[2])]
    return _total(b, terms)


# --- products that skip dead terms ----------------------------------------------------------------


def masked(b: Graph, a: int, f: int, c: int) -> int:
    """``a @ c`` (NumPy's ranks: 1-D or 2-D operands) without the terms whose element of ``a`` is
    dead (``f``, shaped like ``a``, is 0 there)."""
    sa, sc = b.shape(a), b.shape(c)
    if not sa or not sc:  # a scalar factor: no sum, only the dead elements to keep 0
        return _where(b, f, b.mul(a, c))
    left = (1, *sa) if len(sa) == 1 else sa
    right = (*sc, 1) if len(sc) == 1 else sc
    product = b.apply(NAME, _as(b, a, left), _as(b, f, left), _as(b, c, right))
    result = sa[:-1] + sc[1:]
    return _as(b, product, result)


def right_masked(b: Graph, a: int, c: int, f: int) -> int:
    """``a @ c`` without the terms whose element of ``c`` is dead (``f``, shaped like ``c``):
    ``(cᵀ aᵀ)ᵀ``, masked on its left."""
    return _t(b, masked(b, _t(b, c), _t(b, f), _t(b, a)))


def both_masked(b: Graph, a: int, fa: int, c: int, fc: int) -> int:
    """``a @ c`` (2-D operands) without the terms whose element of ``a`` is dead (``fa``, shaped
    like ``a``) or whose element of ``c`` is (``fc``): the terms laid out on ``[i, j, k]`` and summed
    over ``j``, so neither operand's dead element meets the other's value (an inf adjoint meets a
    term the op's own mask skips only at second order: the only place this is built)."""
    (i, j), k = b.shape(a), b.shape(c)[1]
    left, right = (i, j, 1), (1, j, k)
    live = b.apply("and", _as(b, fa, left), _as(b, fc, right))
    terms = b.apply("where", live, b.mul(_as(b, a, left), _as(b, c, right)), b.const(0.0))
    return b.apply("sum", terms, params=((1,), False))


def _matmul_vjp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, g: int, f: int
) -> tuple[int | None, ...]:
    """matmul's VJP for ``g`` live where ``f`` (shaped like ``g``) is: ``g yᵀ`` and ``xᵀ g``
    (outer products for a vector operand), each masked by ``g``'s flag."""
    x, y = args
    sx, sy = b.shape(x), b.shape(y)
    if len(sx) == 1 and len(sy) == 1:  # a dot product: g is a scalar
        return _where(b, f, b.mul(g, y)), _where(b, f, b.mul(g, x))
    # x's adjoint: g (x's rows) against y's columns; y's adjoint: x's columns against g
    g_rows = g if len(sx) == 2 else _as(b, g, (1, *b.shape(g)))
    f_rows = f if len(sx) == 2 else _as(b, f, (1, *b.shape(f)))
    if len(sy) == 1:
        g_rows, f_rows = _as(b, g_rows, (*b.shape(g_rows), 1)), _as(b, f_rows, (*b.shape(f_rows), 1))
    y2 = y if len(sy) == 2 else _as(b, y, (sy[0], 1))
    x2 = x if len(sx) == 2 else _as(b, x, (1, sx[0]))
    dx = masked(b, g_rows, f_rows, _t(b, y2))
    dy = right_masked(b, _t(b, x2), g_rows, f_rows)
    return _as(b, dx, sx), _as(b, dy, sy)


def _matmul_jvp(
    b: Graph,
    args: tuple[int, ...],
    out: int,
    params: Any,
    t: tuple[int | None, ...],
    f: tuple[int | None, ...],
) -> int | None:
    """matmul's JVP for tangents live where their flags (shaped like them; None: everywhere) are."""
    x, y = args
    first = t[0] and (b.apply("matmul", t[0], y) if f[0] is None else masked(b, t[0], f[0], y))
    second = t[1] and (b.apply("matmul", x, t[1]) if f[1] is None else right_masked(b, x, t[1], f[1]))
    return _total(b, [first, second])


def _self_vjp(
    b: Graph, args: tuple[int, ...], out: int, params: Any, g: int, fg: int
) -> tuple[int | None, ...]:
    """masked_matmul's own VJP for ``g`` live where ``fg`` is: a term dead by either mask is not
    taken (where ``f`` is dead, ``a`` enters ``b``'s adjoint as 0)."""
    a, f, c = args
    da = _where(b, f, masked(b, g, fg, _t(b, c)))
    dc = both_masked(b, _t(b, a), _t(b, f), g, fg)
    return da, None, dc


def _self_jvp(
    b: Graph,
    args: tuple[int, ...],
    out: int,
    params: Any,
    t: tuple[int | None, ...],
    f: tuple[int | None, ...],
) -> int | None:
    a, mask, c = args
    first = t[0] and masked(b, t[0], mask if f[0] is None else b.apply("and", mask, f[0]), c)
    second = t[2] and (masked(b, a, mask, t[2]) if f[2] is None else both_masked(b, a, mask, t[2], f[2]))
    return _total(b, [first, second])


def _stacked_matmul(
    b: Graph, operands: tuple[int, ...], which: tuple[bool, ...], params: Any, lead: Shape, flag: int
) -> int:
    """matmul's stacked rule (graphc.diff.stacked) for a stacked operand live where ``flag`` is."""
    from graphc.ops import _stacked_matmul as rule  # the entry's own rule; graphc.ops imports this module

    return rule(b, operands, which, params, lead, flag)


MaskedVjp = Callable[["Graph", tuple[int, ...], int, Any, int, int], tuple["int | None", ...]]
MaskedJvp = Callable[
    ["Graph", tuple[int, ...], int, Any, tuple["int | None", ...], tuple["int | None", ...]], "int | None"
]
MaskedStacked = Callable[["Graph", tuple[int, ...], tuple[bool, ...], Any, Shape, int], int]

# (VJP for a flagged adjoint, JVP for flagged tangents, stacked rule for a stacked tangent with
# structural zeros or None) of matmul and of masked_matmul itself
MATMUL: tuple[MaskedVjp, MaskedJvp, MaskedStacked | None] = (_matmul_vjp, _matmul_jvp, _stacked_matmul)
SELF: tuple[MaskedVjp, MaskedJvp, MaskedStacked | None] = (_self_vjp, _self_jvp, None)


def _where(b: Graph, f: int, x: int) -> int:
    return b.apply("where", f, x, b.const(0.0))


def _t(b: Graph, x: int) -> int:
    """``x`` with its axes reversed (a vector or a scalar is itself): a transpose's operand, and a
    row's or a column's reshape (the same elements in the same order), build no transpose."""
    shape = b.shape(x)
    reverse = tuple(range(len(shape) - 1, -1, -1))
    if len(shape) < 2:
        return x
    if b.op(x) == "transpose" and b.params(x) == reverse:
        return b.args(x)[0]
    if len(shape) == 2 and 1 in shape:
        return _as(b, x, shape[::-1])
    return b.apply("transpose", x, params=reverse)


def _as(b: Graph, x: int, shape: Shape) -> int:
    """``x`` reshaped to ``shape``, from the node a reshape (or a row's or a column's transpose)
    was taken of, so that no chain of views is built."""
    while b.op(x) == "reshape" or (b.op(x) == "transpose" and len(b.shape(x)) == 2 and 1 in b.shape(x)):
        x = b.args(x)[0]
    return x if b.shape(x) == shape else b.apply("reshape", x, params=shape)


def _total(b: Graph, terms: list[int | None]) -> int | None:
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else b.add(total, term)
    return total
