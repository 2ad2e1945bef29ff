"""The plan of a tensor kernel: a tensor graph as a list of loop nests over buffers.

:func:`lowered` first rewrites the few block ops that are sequences of others, through the graph's
builder: ``shift`` (the max a softmax subtracts, 0 where not finite) as ``amax`` and a ``where``,
``logsumexp`` as its max-shifted sum of ``exp``, ``masked_matmul`` (graphc.masked) as the sum of
its ``where``-kept terms over the inner axis, ``count`` over concrete dimensions as a constant.
:func:`plan` then walks the lowered graph in creation order and makes each node one of:

- a member of a :class:`Loop`: the elementwise ops of one shape, in creation order, computed in
  registers in one loop nest over that shape (fusion: no temporaries), their operands read by
  strides with NumPy's broadcasting; a member is stored to its buffer only if something outside
  the loop reads it, and written straight into the output arrays it is;
- an accumulation of a Loop: ``sum``, ``amax``, ``amin`` over an operand of the loop's shape
  (fused with the elementwise ops producing it), accumulating into its buffer, in registers where
  the innermost axis is reduced;
- a view: ``reshape`` (of contiguous data; else a :class:`Copy` first), ``transpose``,
  ``broadcast``, ``index`` only change the strides through which their operand's data is read;
- a :class:`Step` of its own, for a block op whose entry names a ``loop`` (its writer in
  :data:`graphc.backends.llvm.tensor_ir.STEPS`): ``matmul``, ``unindex`` (zeros, then its operand
  through an index view), ``count`` (a product of named dimensions), the convolutions and the
  pooling ops and their adjoints, and the convolutions' masked forms
  (:mod:`graphc.backends.llvm.tensor_conv`).

A block op with none of these forms (a user block, ``custom``) makes :func:`plan` raise
:class:`Unsupported`, and :mod:`graphc.backends.llvm.tensor` scalarises such graphs.
Named dimensions stay names here: the loop bounds are read when the kernel runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from graphc.graph import Graph
from graphc.ops import ALL_OPS, CONST, VAR
from graphc.shapes import Shape

# the reductions a loop accumulates, and the scalar op combining two partial results
REDUCTIONS = {"sum": "add", "amax": "max", "amin": "min"}
VIEWS = frozenset({"reshape", "transpose", "broadcast", "index"})


class Unsupported(Exception):
    """The graph holds a block op with no loop form (the caller falls back to scalarising)."""


@dataclass
class Loop:
    """One loop nest over ``shape``: elementwise ``members`` in registers, then ``accumulations``."""

    shape: Shape
    members: list[int] = field(default_factory=list)
    accumulations: list[int] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)  # members read after the loop: to their buffers
    outputs: list[tuple[int, int]] = field(default_factory=list)  # (member, output slot) written here

    def holds(self, node: int) -> bool:
        return node in self.members or node in self.accumulations


@dataclass
class Copy:
    """``source``'s elements into ``target``'s buffer (a reshape of strided data), or into output
    slot ``output`` when ``target`` is None."""

    source: int
    target: int | None = None
    output: int = -1


@dataclass
class Step:
    """A block node computed by its own loop nest: the writer its op entry's ``loop`` names."""

    node: int


@dataclass
class TensorPlan:
    graph: Graph  # the lowered graph
    steps: list[Loop | Copy | Step]
    buffers: list[int]  # nodes with a buffer of their own in the workspace, in order
    views: dict[int, int]  # a view node -> the node whose data it reads
    contiguous: dict[int, bool]  # whether a node's data is C-contiguous in its own shape
    homes: dict[int, int]  # a node computed straight into output slot j (no buffer, no copy)


def _shift(b: Graph, x: int, axes: tuple[int, ...]) -> int:
    """NumPy's ``_shift``: the max along ``axes`` (kept as 1s), 0 where it is not finite."""
    top = b.apply("amax", x, params=(axes, True))
    finite = b.apply("eq", b.sub(top, top), b.const(0.0))  # inf - inf and NaN - NaN are NaN
    return b.apply("where", finite, top, b.const(0.0))


def _logsumexp(b: Graph, x: int, params: tuple[tuple[int, ...], bool], shape: Shape) -> int:
    axes, keepdims = params
    top = _shift(b, x, axes)
    total = b.apply("sum", b.apply("exp", b.sub(x, top)), params=(axes, True))
    kept = b.add(b.apply("log", total), top)
    return kept if keepdims else b.apply("reshape", kept, params=shape)


def _masked_matmul(b: Graph, a: int, f: int, c: int) -> int:
    """graphc.masked's product as a loop computes it: ``where(f, a * cᵀ, 0)`` over ``[i, k, j]``,
    summed along ``j`` (the innermost axis, in registers), no ``[i, k, j]`` buffer."""
    (i, j), k = b.shape(a), b.shape(c)[1]
    column = b.apply("reshape", b.apply("transpose", c, params=(1, 0)), params=(1, k, j))
    terms = b.mul(b.apply("reshape", a, params=(i, 1, j)), column)
    kept = b.apply("where", b.apply("reshape", f, params=(i, 1, j)), terms, b.const(0.0))
    return b.apply("sum", kept, params=((2,), False))


def lowered(graph: Graph) -> Graph:
    """``graph`` with shift, logsumexp, masked products and concrete counts rewritten into the ops
    a loop computes (the same arithmetic as their NumPy source); Unsupported for a block op with
    no loop form."""
    new = Graph()
    new.max_nodes = graph.max_nodes
    mapping: dict[int, int] = {}
    keep = graph.reachable()
    for node in range(len(graph)):
        op = graph.op(node)
        if not keep[node] and op != VAR:  # every variable stays: the kernel takes them all
            continue
        if op == VAR:
            mapping[node] = new.var(graph.name(node), graph.shape(node))
            continue
        if op == CONST:
            mapping[node] = new.const(graph.const_value(node))  # type: ignore[arg-type]
            continue
        args = tuple(mapping[a] for a in graph.args(node))
        params = graph.params(node)
        if op == "shift":
            mapping[node] = _shift(new, args[0], params)
        elif op == "masked_matmul":
            mapping[node] = _masked_matmul(new, *args)
        elif op == "logsumexp":
            mapping[node] = _logsumexp(new, args[0], params, graph.shape(node))
        elif op == "count" and all(isinstance(graph.shape(graph.args(node)[0])[k], int) for k in params):
            operand = graph.shape(graph.args(node)[0])
            mapping[node] = new.const(float(math.prod(operand[k] for k in params)))  # type: ignore[misc]
        elif ALL_OPS[op].block and op not in REDUCTIONS and op not in VIEWS and not ALL_OPS[op].loop:
            raise Unsupported(op)
        else:
            mapping[node] = new.apply(op, *args, params=params)
    new.set_outputs([mapping[o] for o in graph.outputs], graph.output_names)
    return new


def plan(graph: Graph) -> TensorPlan:
    """The steps computing ``graph``'s outputs (see the module docstring)."""
    g = lowered(graph)
    keep = g.reachable()
    readers: dict[int, list[int]] = {}
    for node in range(len(g)):
        if keep[node]:
            for arg in g.args(node):
                readers.setdefault(arg, []).append(node)
    slots: dict[int, list[int]] = {}
    for j, out in enumerate(g.outputs):
        slots.setdefault(out, []).append(j)
    steps: list[Loop | Copy | Step] = []
    buffers: list[int] = []
    views: dict[int, int] = {}
    contiguous: dict[int, bool] = {}
    current: Loop | None = None

    def close() -> None:
        nonlocal current
        if current is None:
            return
        inside = set(current.members) | set(current.accumulations)
        for member in current.members:
            if any(r not in inside for r in readers.get(member, ())):
                current.stored.append(member)
                buffers.append(member)
            current.outputs += [(member, j) for j in slots.get(member, ())]
        buffers.extend(current.accumulations)
        steps.append(current)
        current = None

    for node in range(len(g)):
        op = g.op(node)
        if not keep[node] or op in (VAR, CONST):
            contiguous[node] = True
            continue
        args = g.args(node)
        if op in REDUCTIONS:
            fits = current is not None and g.shape(args[0]) == current.shape
            fits = fits and args[0] not in current.accumulations  # type: ignore[union-attr]
            if not fits:
                close()
                current = Loop(g.shape(args[0]))
            current.accumulations.append(node)  # type: ignore[union-attr]
            contiguous[node] = True
            continue
        if not ALL_OPS[op].block:
            fits = current is not None and g.shape(node) == current.shape
            fits = fits and not any(a in current.accumulations for a in args)  # type: ignore[union-attr]
            if not fits:
                close()
                current = Loop(g.shape(node))
            current.members.append(node)  # type: ignore[union-attr]
            contiguous[node] = True
            continue
        if current is not None and any(current.holds(a) for a in args):
            close()
        if op in VIEWS:
            source = args[0]
            if op == "reshape" and not contiguous[source]:
                steps.append(Copy(source, node))  # strided data gathered into the reshape's buffer
                buffers.append(node)
                contiguous[node] = True
                continue
            views[node] = source
            contiguous[node] = op == "reshape"
            continue
        steps.append(Step(node))
        buffers.append(node)
        contiguous[node] = True
    close()
    homes: dict[int, int] = {}
    for j, out in enumerate(g.outputs):  # an output that needs memory anyway lives in the output
        if out in buffers and out not in homes:
            homes[out] = j
    buffers = [node for node in buffers if node not in homes]
    for step in steps:
        if isinstance(step, Loop):
            step.outputs = [(m, j) for m, j in step.outputs if homes.get(m) != j]
    for j, out in enumerate(g.outputs):
        written = homes.get(out) == j or any(isinstance(s, Loop) and (out, j) in s.outputs for s in steps)
        if not written:
            steps.append(Copy(out, None, j))
    return TensorPlan(g, steps, buffers, views, contiguous, homes)
