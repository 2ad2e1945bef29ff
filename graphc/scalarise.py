"""Scalarisation: a tensor graph as a scalar graph with one node per element.

:func:`scalarise` walks the tensor graph in creation order (no recursion) and gives every node an
object array of scalar node ids of its shape, built in a new scalar :class:`Graph` through its one
builder (so equal elements hash-cons to one node):

- an elementwise op applies per element, its operands broadcast as NumPy broadcasts them;
- a block op applies its entry's ``scalarise`` rule (graphc.ops): matmul as sums of products, a
  reduction as a left-to-right chain of ``add``/``max``/``min``, logsumexp (and so softmax and
  log_softmax, composites over it) max-shifted, ``count`` a constant; reshape, transpose,
  broadcast and index only re-wire the arrays (no node); unindex places its operand among zeros;
  conv2d, the pooling ops and their adjoints are sums of products and window maxima
  (graphc.convolution's scalar forms, beside the ops' other rules). A user block with its own VJP
  (``custom``) has none: its scalar derivative would be its body's, not the user's formula.

A max/min reduction is a chain of two-operand ``max``/``min``, whose partials count the tied leaves
of the chain (graphc.ops), so a tie among k elements gives 1/k to each, as the block VJP's policy
does, infinite ties included. A logsumexp's max and a softmax's shift are tested for infinities
(``where`` with a condition, which carries no derivative, so the guards add no path: see
count_paths), so the scalar graph gives the block ops' values and derivatives at -inf, +inf and
NaN elements too (the policy rows of ``logsumexp``, ``amax`` and ``shift`` in graphc.ops).

Names. A scalar variable keeps its name; element ``(i, j)`` of a tensor variable ``W`` is the
scalar variable ``W[i,j]`` (C order, no spaces: ``x[0]``, ``W[1,2]``); outputs likewise
(``f[0]``, ``∂f/∂W[1,2]``). Shapes must be concrete: a named dimension is bound first with
``dims={"n": 7}`` (or, by the llvm backend, from the arrays of a call), else a GraphcError names it.

:func:`differentiated` runs a scalar differentiation method (``paths``, ``symbolic``) on the
scalarised graph and lifts its partials back into a tensor graph shaped as ``dp``'s are
(``out_shape + in_shape``, batch axes in front at call time).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from graphc.diff.common import partial_name, prepared
from graphc.errors import GraphcError
from graphc.graph import Graph
from graphc.ops import ALL_OPS, CONST, VAR, Op
from graphc.shapes import Shape
from graphc.shapes import text as shape_text


def element_name(name: str, index: tuple[int, ...]) -> str:
    """The scalar name of element ``index`` of the tensor ``name``: ``W[1,2]``; ``name`` for ``()``.

    >>> element_name("W", (1, 2)), element_name("x", ())
    ('W[1,2]', 'x')
    """
    return name if not index else f"{name}[{','.join(str(i) for i in index)}]"


def indices(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every index of a tensor of ``shape``, in C order (``[()]`` for a scalar)."""
    return list(itertools.product(*(range(d) for d in shape)))


@dataclass
class Scalarised:
    """A scalarised graph and how its scalars map to the tensor graph's inputs and outputs."""

    graph: Graph  # the scalar graph: outputs every element of every tensor output, in order
    inputs: dict[str, tuple[int, ...]]  # each tensor variable's concrete shape, by name
    outputs: list[tuple[int, ...]]  # each tensor output's concrete shape


def concrete_shapes(graph: Graph, what: str) -> None:
    """Raise GraphcError naming a named dimension of ``graph`` and how to bind it, if any."""
    for node, shape in enumerate(graph.shapes):
        for d in shape:
            if isinstance(d, str):
                where = f"input '{graph.name(node)}'" if graph.op(node) == VAR else f"a {graph.op(node)} node"
                raise GraphcError(
                    f"{what} needs concrete shapes, but the dimension '{d}' of {where} "
                    f"{shape_text(shape)} is not bound: give it with dims={{'{d}': ...}}"
                )


def scalarise(graph: Graph, *, max_nodes: int | None = None, what: str = "scalarisation") -> Scalarised:
    """The scalar graph of ``graph`` (see the module docstring); ``max_nodes`` caps it (default:
    ``graph``'s own cap), ``what`` names the caller in the error about a named dimension.

    >>> from graphc.parse import parse
    >>> s = scalarise(parse("A: [2, 2]; x: [2]; A @ x"))
    >>> s.graph.variables, s.graph.output_names, s.outputs
    (['A[0,0]', 'A[0,1]', 'A[1,0]', 'A[1,1]', 'x[0]', 'x[1]'], ['f[0]', 'f[1]'], [(2,)])
    """
    concrete_shapes(graph, what)
    new = Graph()
    new.max_nodes = graph.max_nodes if max_nodes is None else max_nodes
    keep = graph.reachable()
    elements: dict[int, np.ndarray] = {}
    inputs: dict[str, tuple[int, ...]] = {}
    for node in range(len(graph)):
        op = graph.op(node)
        shape: tuple[int, ...] = graph.shape(node)  # type: ignore[assignment]
        if op == VAR:
            name = graph.name(node)
            inputs[name] = shape
            array = np.empty(shape, dtype=object)
            for index in indices(shape):
                array[index] = new.var(element_name(name, index))
            elements[node] = array
        elif not keep[node]:
            continue
        elif op == CONST:
            elements[node] = np.asarray(new.const(graph.const_value(node)), dtype=object)  # type: ignore[arg-type]
        else:
            spec = ALL_OPS[op]
            operands = tuple(elements[a] for a in graph.args(node))
            if spec.block:
                if spec.scalarise is None:  # a block op with no scalar form yet (the 004 lecture's layers)
                    raise GraphcError(
                        f"{spec.name} has no scalar form yet, which {what} needs: use method='dp', "
                        "'forward' or 'numeric' with backend='numpy'"
                    )
                result = np.asarray(spec.scalarise(new, operands, graph.params(node)), dtype=object)
            else:
                result = _elementwise(new, spec, operands, shape)
            assert result.shape == shape, (op, result.shape, shape)
            elements[node] = result
    nodes: list[int] = []
    names: list[str] = []
    shapes: list[tuple[int, ...]] = []
    for output, name in zip(graph.outputs, graph.output_names, strict=True):
        array = elements[output]
        shapes.append(array.shape)
        for index in indices(array.shape):
            nodes.append(int(array[index]))
            names.append(element_name(name, index))
    new.set_outputs(nodes, names)
    return Scalarised(new, inputs, shapes)


def _elementwise(
    new: Graph, spec: Op, operands: tuple[np.ndarray, ...], shape: tuple[int, ...]
) -> np.ndarray:
    """An elementwise op on every element of its broadcast operands."""
    flat = [a.ravel() for a in np.broadcast_arrays(*operands)]
    out = np.empty(len(flat[0]), dtype=object)
    for i in range(len(out)):
        out[i] = new.applied(spec, tuple(int(f[i]) for f in flat))
    return out.reshape(shape)


def differentiated(
    graph: Graph,
    wrt: Sequence[str],
    method: str,
    scalar_method: Callable[[Graph, list[str]], Graph],
    *,
    max_nodes: int | None = None,
) -> Graph:
    """``graph``'s outputs and their partials by ``wrt`` (one ``out_shape + in_shape`` tensor
    each), computed by ``scalar_method`` (a scalar differentiation) on the scalarised graph.

    The scalar derivative is rebuilt on a copy of ``graph``: each scalar variable becomes an
    ``index`` of its tensor, each partial element is placed with ``unindex``.
    """
    scalar = scalarise(graph, max_nodes=max_nodes, what=f"the {method} method")
    scalar.graph.max_nodes = graph.max_nodes  # max_nodes caps the scalarised graph, not its derivative
    columns = [element_name(name, index) for name in wrt for index in indices(scalar.inputs[name])]
    derivative = scalar_method(scalar.graph, columns)
    result, _ = prepared(graph, list(wrt))
    scalar_partials = derivative.outputs[len(scalar.graph.outputs) :]  # row by row: element by column
    mapping = _replayed(derivative, scalar_partials, result)
    partials = iter(scalar_partials)
    rows = []
    for out_shape in scalar.outputs:
        pieces: list[list[tuple[tuple[int, ...], int]]] = [[] for _ in wrt]
        for out_index in indices(out_shape):
            for column, name in zip(pieces, wrt, strict=True):
                for in_index in indices(scalar.inputs[name]):
                    column.append((out_index + in_index, mapping[next(partials)]))
        rows.append(
            [
                _placed(result, column, out_shape + scalar.inputs[name])
                for column, name in zip(pieces, wrt, strict=True)
            ]
        )
    nodes, names = list(graph.outputs), list(graph.output_names)
    for name, row in zip(graph.output_names, rows, strict=True):
        for variable, node in zip(wrt, row, strict=True):
            nodes.append(node)
            names.append(partial_name(name, variable))
    result.set_outputs(nodes, names)
    result.info = {
        **derivative.info,
        "method": method,
        "wrt": list(wrt),
        "function_outputs": len(graph.outputs),
        "primal_nodes": len(graph),
        "scalar_nodes": len(scalar.graph),
    }
    return result


def _replayed(scalar: Graph, roots: Sequence[int], result: Graph) -> dict[int, int]:
    """The nodes of ``scalar`` that ``roots`` depend on, rebuilt on the tensor graph ``result``:
    an element variable as an ``index`` of its tensor variable, in creation order."""
    elements = {
        element_name(name, index): (name, index)
        for name in result.variables
        for index in indices(result.shape(result.variable(name)))  # type: ignore[arg-type]
    }
    mapping: dict[int, int] = {}
    keep = scalar.reachable(roots)
    for node in range(len(scalar)):
        if not keep[node]:
            continue
        op = scalar.op(node)
        if op == VAR:
            name, index = elements[scalar.name(node)]
            tensor = result.variable(name)
            mapping[node] = tensor if not index else result.apply("index", tensor, params=index)
        elif op == CONST:
            mapping[node] = result.const(scalar.const_value(node))  # type: ignore[arg-type]
        else:
            mapping[node] = result.apply(op, *(mapping[a] for a in scalar.args(node)))
    return mapping


def _placed(result: Graph, pieces: list[tuple[tuple[int, ...], int]], shape: Shape) -> int:
    """The tensor of ``shape`` holding each scalar piece at its index (zeros elsewhere)."""
    if not shape:
        return pieces[0][1]
    total = None
    for index, node in pieces:
        if result.const_value(node) == 0.0:
            continue
        placed = result.apply("unindex", node, params=(index, shape))
        total = placed if total is None else result.add(total, placed)
    if total is None:
        return result.apply("broadcast", result.const(0.0), params=shape)
    return total
