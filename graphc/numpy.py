"""graphc.numpy: every op of the table as a NumPy-like function on traced values.

Generated from the op table (graphc.ops), never listed here: each op is a function under its
language name (``sin``, ``atan2``, ``relu``; an infix op under its table name, ``add``, ``pow``)
and also under NumPy's name for it where NumPy has one (``arctan2``, ``maximum``, ``subtract``),
read from the op's NumPy template or from the Python operator it is spelled by. The block ops
and composites the language calls by name (``sum``, ``max``, ``reshape``, ``softmax``, ``dot``...)
are functions too, built by the parser's own :func:`~graphc.parse_tensor.block_call`. The same
tables tell NumPy's own functions on traced values (``np.sin(x)`` through ``__array_ufunc__``,
``np.sum(x, axis=0)`` through ``__array_function__``) which op they are. On numbers, the
elementwise functions compute with NumPy, so helpers work on both.

>>> import graphc, graphc.numpy as gnp
>>> x = graphc.sym("x")
>>> gnp.tanh(2 * x)
<traced tanh(2*x)>
>>> float(gnp.arctan2(1.0, 1.0)) == float(gnp.pi / 4)
True
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.errors import ArityError
from graphc.ops import (
    BLOCK_FUNCTIONS,
    BLOCK_OPS,
    COMPOSITES,
    CONSTANTS,
    OPS,
    REDUCTIONS,
    Derived,
    Op,
)
from graphc.ops import FUNCTIONS as ELEMENTWISE
from graphc.parse_tensor import block_call
from graphc.tracing import (
    Traced,
    apply,
    common_graph,
    lift,
    located,
    trace_error,
    user_line,
)

_TEMPLATE_UFUNC = re.compile(r"np\.(\w+)\(\{0\}(?:, \{1\})?\)")


def numpy_name(spec: Op) -> str | None:
    """NumPy's ufunc for the op, by name: the one its template calls on exactly its operands
    (``np.arctan2({0}, {1})``), or the one an ndarray calls for its Python operator; else None."""
    match = _TEMPLATE_UFUNC.fullmatch(spec.numpy)
    if match is not None and isinstance(getattr(np, match.group(1), None), np.ufunc):
        return match.group(1)
    return spec.ufunc or None


def _function(spec: Op, name: str) -> Callable[..., Any]:
    def function(*args: Any) -> Any:
        if len(args) != spec.arity:
            plural = "s" if spec.arity > 1 else ""
            raise ArityError(
                f"{name}() takes {spec.arity} argument{plural}, got {len(args)} (at {user_line()})"
            )
        return apply(spec, args)

    template = spec.numpy.format(*"xyz"[: spec.arity])  # where and clip take three
    function.__name__ = function.__qualname__ = name
    function.__module__ = __name__
    function.__doc__ = f"graphc's ``{spec.name}`` op: ``{template}`` on traced values or numbers."
    return function


def _block_function(name: str) -> Callable[..., Any]:
    """A block op or composite of the language (``sum``, ``softmax``, ``dot``...), called as the
    language calls it: tensors, then ``axis=`` where it takes one (reshape: a tensor and a shape).
    ``max``/``min`` of two values are the elementwise ops, of one a reduction, as in the language."""
    composite = COMPOSITES.get(name)
    arity = composite.arity if composite is not None else BLOCK_FUNCTIONS[name].arity
    takes_axis = composite.axis if composite is not None else BLOCK_FUNCTIONS[name].name in REDUCTIONS
    elementwise = ELEMENTWISE.get(name)

    def function(*args: Any, axis: Any = None, **rest: Any) -> Any:
        if rest:
            raise trace_error(f"{name}() on traced values takes no {', '.join(rest)}=")
        if elementwise is not None and len(args) == elementwise.arity and axis is None:
            return apply(elementwise, args)
        dims = None
        if name == "reshape" and len(args) == 2:
            target = args[1]
            dims = tuple(target) if isinstance(target, (tuple, list)) else (target,)
            args = args[:1]
        if len(args) != arity or (name == "reshape" and dims is None):
            wanted = "a tensor and a shape" if name == "reshape" else f"{arity} argument{'s' * (arity > 1)}"
            raise ArityError(f"{name}() takes {wanted}, got {len(args)} (at {user_line()})")
        if axis is not None and not takes_axis:
            raise trace_error(f"{name}() takes no axis=")
        graph = common_graph(args)
        if graph is None:
            raise trace_error(f"{name}() of numbers: graphc.numpy's block functions take traced values")
        with located():
            nodes = tuple(lift(graph, a) for a in args)
            return Traced(graph, block_call(graph, name, nodes, axis, dims))

    function.__name__ = function.__qualname__ = name
    function.__module__ = __name__
    function.__doc__ = f"The language's ``{name}`` on traced values (a block node of the graph)."
    return function


def _functions() -> dict[str, Callable[..., Any]]:
    """Every function of the namespace by name: the elementwise ops under their language and NumPy
    names, then the block ops and composites (``@``'s NumPy name, matmul, is the block op ``dot``)."""
    functions: dict[str, Callable[..., Any]] = {}
    for spec in OPS.values():
        names = [spec.function or spec.name]
        numpy = numpy_name(spec)
        if numpy is not None:
            names += [numpy, getattr(np, numpy).__name__]  # np.abs is np.absolute
        for name in dict.fromkeys(names):
            functions[name] = _function(spec, name)
    for name in [*BLOCK_FUNCTIONS, *COMPOSITES]:
        functions[name] = _block_function(name)
    for spec in BLOCK_OPS.values():
        numpy = numpy_name(spec)
        if numpy is not None and spec.function is not None:
            functions[numpy] = functions[spec.function]
    return functions


def _ufuncs() -> dict[Any, Op]:
    """A NumPy ufunc -> its op (of either table)."""
    return {
        getattr(np, numpy): spec
        for spec in [*OPS.values(), *BLOCK_OPS.values()]
        if (numpy := numpy_name(spec)) is not None and (not spec.block or spec.function is not None)
    }


def _array_functions() -> dict[Any, Callable[..., Any]]:
    """NumPy functions that are not ufuncs, by the function here that traces them: the block ops and
    composites NumPy has under the same name (np.sum, np.max, np.reshape, np.mean, np.outer...)."""
    found = {
        getattr(np, name): FUNCTIONS[name]
        for name in [*BLOCK_FUNCTIONS, *COMPOSITES]
        if callable(getattr(np, name, None)) and not isinstance(getattr(np, name), np.ufunc)
    }
    return {**found, np.amax: FUNCTIONS["max"], np.amin: FUNCTIONS["min"]}


# derived from the op table (graphc.ops.Derived): rebuilt when an op is added at run time
FUNCTIONS = Derived(_functions)
UFUNCS = Derived(_ufuncs)
ARRAY_FUNCTIONS = Derived(_array_functions)


def supported() -> str:
    return "graphc.numpy has: " + ", ".join(sorted(FUNCTIONS))


globals().update(FUNCTIONS)
globals().update(CONSTANTS)
__all__ = sorted([*FUNCTIONS, *CONSTANTS])  # noqa: PLE0605 - generated from the op table


def __getattr__(name: str) -> Any:
    """A function of an op added to the table after this module was imported."""
    if name in FUNCTIONS:
        return FUNCTIONS[name]
    raise AttributeError(f"module 'graphc.numpy' has no attribute {name!r}")
