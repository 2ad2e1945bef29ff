"""Shapes of tensor nodes: broadcasting, axes and their text, with errors that name both shapes.

A shape is a tuple of dimensions, each a positive ``int`` or a ``str`` naming a dimension bound
when the function is called (``X: [n, 64]``); ``()`` is a scalar. Two dimensions agree when they
are equal; a dimension 1 broadcasts against any other, as in NumPy. A named dimension agrees only
with itself (and with 1): ``n`` against ``5`` is refused at build time, since nothing says they
are equal.

The shapes here are *declared* shapes. At call time an input may carry extra leading (batch)
axes; code that uses an axis number counts it from the end (``axis - rank``), so the batch axes
before it never move it (see graphc.backends.numpy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from graphc.errors import GraphcError

Dim = int | str
Shape = tuple[Dim, ...]


class ShapeError(GraphcError, ValueError):
    """Operands whose shapes the op cannot take (the parser adds the position)."""


def text(shape: Shape) -> str:
    """A shape as the language writes it: ``[3, n]``; ``[]`` for a scalar."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast(shapes: Sequence[Shape], what: str = "combine") -> Shape:
    """NumPy's broadcast of ``shapes`` (aligned at the end), or ShapeError naming two of them."""
    result: Shape = ()
    for shape in shapes:
        if shape == result or not shape:
            continue
        if not result:
            result = shape
            continue
        rank = max(len(result), len(shape))
        left = (1,) * (rank - len(result)) + result
        right = (1,) * (rank - len(shape)) + shape
        dims: list[Dim] = []
        for a, b in zip(left, right, strict=True):
            if a == b or b == 1:
                dims.append(a)
            elif a == 1:
                dims.append(b)
            else:
                raise ShapeError(f"cannot {what} {text(result)} with {text(shape)}: {a} != {b}")
        result = tuple(dims)
    return result


def axis(k: int, rank: int, shape: Shape) -> int:
    """Axis ``k`` (negative counts from the end) of a rank-``rank`` operand, as 0..rank-1."""
    if not -rank <= k < rank:
        raise ShapeError(f"axis {k} is out of range for shape {text(shape)}")
    return k % rank


def size(shape: Shape) -> int:
    """The number of elements; a named dimension makes it unknown (ShapeError)."""
    for d in shape:
        if isinstance(d, str):
            raise ShapeError(
                f"the size of {text(shape)} depends on the named dimension '{d}': "
                f"bind it with dims={{'{d}': ...}}"
            )
    return math.prod(shape)  # type: ignore[arg-type]


def concrete(shape: Shape, dims: dict[str, int]) -> tuple[int, ...]:
    """``shape`` with its named dimensions replaced by their values in ``dims``."""
    out = []
    for d in shape:
        if isinstance(d, str):
            if d not in dims:
                raise ShapeError(f"the dimension '{d}' is not bound: give it with dims={{'{d}': ...}}")
            out.append(dims[d])
        else:
            out.append(d)
    return tuple(out)


def source(shape: Shape) -> str:
    """A shape as Python source in generated code: named dimensions read ``dims['n']``."""
    items = [repr(d) if isinstance(d, int) else f"dims[{d!r}]" for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


# The binding of named dimensions and batch axes at call time. Generated NumPy modules include this
# source (they need only NumPy); the library runs the same function (``bind``) to explain a call.
BIND_SOURCE = '''\
def _bind(declared, given):
    """The named dimensions' values and the batch shape of the inputs' shapes ``given`` (by name)
    against their ``declared`` shapes; ValueError naming the input and both shapes otherwise."""
    dims = {}
    batches = []
    for name, shape in declared.items():
        have = tuple(given[name])
        lead = len(have) - len(shape)
        clash = None if lead >= 0 else "too few axes"
        for want, got in zip(shape, have[max(lead, 0):]):
            if clash is None and isinstance(want, str) and dims.setdefault(want, got) != got:
                clash = f"the dimension '{want}' is {dims[want]} elsewhere"
            elif clash is None and not isinstance(want, str) and want != got:
                clash = f"{want} != {got}"
        if clash is not None:
            declared_text = "[" + ", ".join(str(d) for d in shape) + "]"
            raise ValueError(f"input '{name}' is declared {declared_text} but given shape {have}: {clash}")
        batches.append(have[:lead])
    try:
        batch = np.broadcast_shapes(*batches)
    except ValueError:
        listed = ", ".join(f"{n} {b}" for n, b in zip(declared, batches))
        raise ValueError(f"the inputs' batch axes do not broadcast together: {listed}") from None
    return dims, batch
'''


def bind(
    declared: dict[str, Shape], given: dict[str, tuple[int, ...]]
) -> tuple[dict[str, int], tuple[int, ...]]:
    """Run BIND_SOURCE's ``_bind``: the named dimensions and the batch shape of a call."""
    import numpy as np

    scope: dict[str, object] = {"np": np}
    exec(BIND_SOURCE, scope)  # noqa: S102 - this module's own constant source
    return scope["_bind"](declared, given)  # type: ignore[operator,no-any-return]


def substituted(value: object, dims: dict[str, int]) -> object:
    """A shape or block-op params (nested tuples, at most three deep) with named dimensions
    replaced by their values in ``dims``."""
    if isinstance(value, str):
        return dims.get(value, value)
    if isinstance(value, tuple):
        return tuple(substituted(item, dims) for item in value)
    return value
