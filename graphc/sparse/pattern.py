"""Structural sparsity, read off the graph without evaluating anything.

A node's *dependencies* are the set of ``wrt`` positions it depends on: a variable's own, else the
union of its operands' over the slots that carry a derivative (an op entry's partial rule for the
slot is not None: ``sign(x)`` depends on ``x`` but has no partial, and every exact method of graphc
gives its partial as a structural zero too). A set is a :data:`Span`, a bitset (a Python int) with
an offset: ``(low, bits)`` holds ``low + k`` for each set bit ``k``, so a node of a banded function
costs a few bits, not one per input before its first (a plain bitset of 20,000 inputs takes 2.7 kB,
and ORing those was most of the time at that size), while a dense one is still one int.

The Hessian's pattern is the standard propagation of nonlinear interactions: at every node whose
adjoint is not structurally zero, operand slots ``a`` and ``b`` with a structurally nonzero second
partial ``∂²op/∂a∂b`` join every input of operand ``a`` to every input of operand ``b``. Which
pairs of slots interact is derived from the op entry's own partial rules (:func:`interactions`), so
no op is named here.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from graphc.graph import Graph
from graphc.ops import OPS, VAR

# Above this many set bits, a bitset's positions are read through NumPy rather than bit by bit.
_MANY_BITS = 64


Span = tuple[int, int]  # (low, bits): the positions low + k for each set bit k of bits


def union(a: Span, b: Span) -> Span:
    """The union of two spans.

    >>> union((5, 0b1), (3, 0b11))
    (3, 7)
    """
    if a is b:
        return a
    (low_a, bits_a), (low_b, bits_b) = a, b
    if low_a == low_b:
        return low_a, bits_a | bits_b
    if low_a < low_b:
        return low_a, bits_a | (bits_b << (low_b - low_a))
    return low_b, bits_b | (bits_a << (low_a - low_b))


def span_positions(span: Span | None) -> list[int]:
    """The positions in ``span`` (None: empty), ascending."""
    if span is None:
        return []
    low, bits = span
    return [low + k for k in bit_positions(bits)] if low else bit_positions(bits)


def bit_positions(bits: int) -> list[int]:
    """The positions of the set bits of ``bits``, ascending.

    >>> bit_positions(0b10110)
    [1, 2, 4]
    """
    if bits.bit_count() > _MANY_BITS:
        raw = np.frombuffer(bits.to_bytes((bits.bit_length() + 7) // 8, "little"), dtype=np.uint8)
        return np.flatnonzero(np.unpackbits(raw, bitorder="little")).tolist()  # type: ignore[no-any-return]
    positions = []
    while bits:
        low = bits & -bits
        positions.append(low.bit_length() - 1)
        bits ^= low
    return positions


@functools.cache
def differentiable_slots(op: str) -> tuple[int, ...]:
    """The operand slots of ``op`` that have a local partial rule (none for a leaf)."""
    spec = OPS.get(op)
    return () if spec is None else tuple(slot for slot, rule in enumerate(spec.partials) if rule is not None)


@functools.cache
def interactions(op: str) -> tuple[tuple[int, int], ...]:
    """The pairs of slots ``(a, b)``, ``a <= b``, whose second partial ``∂²op/∂a∂b`` is not
    structurally zero: the op's partial along ``a``, built by its rule on fresh variables, depends
    (through slots that carry a derivative) on operand ``b``.

    >>> interactions("mul"), interactions("add"), interactions("exp"), interactions("div")
    (((0, 1),), (), ((0, 0),), ((0, 1), (1, 1)))
    """
    spec = OPS[op]
    scratch = Graph()
    args = tuple(scratch.var(f"a{slot}") for slot in range(spec.arity))
    out = scratch.applied(spec, args)
    partials = [(slot, rule(scratch, args, out)) for slot, rule in enumerate(spec.partials) if rule]
    slots_of = [0] * len(scratch)  # per node: the bitset of operand slots it depends on
    for node in range(len(scratch)):
        if scratch.op(node) == VAR:
            slots_of[node] = 1 << args.index(node)
            continue
        operands = scratch.args(node)
        for slot in differentiable_slots(scratch.op(node)):
            slots_of[node] |= slots_of[operands[slot]]
    pairs = {(min(a, b), max(a, b)) for a, z in partials if z is not None for b in bit_positions(slots_of[z])}
    return tuple(sorted(pairs))


def _positions(graph: Graph, wrt: Sequence[str]) -> dict[int, int]:
    """Each ``wrt`` variable's node, mapped to its position in ``wrt``."""
    return {graph.variable(name): position for position, name in enumerate(wrt)}


def _last_uses(graph: Graph, keep: Sequence[bool]) -> list[int]:
    """For each kept node, the last kept node that uses it (-1: none)."""
    last = [-1] * len(keep)
    operands = graph.operands
    for node in range(len(keep)):
        if keep[node]:
            for arg in operands[node]:
                last[arg] = node
    return last


def _dependencies(
    graph: Graph, wrt: Sequence[str], keep: Sequence[bool]
) -> Iterator[tuple[int, Span | None, dict[int, Span]]]:
    """``(node, dependencies, live)`` for every kept node in creation order; ``live`` holds the
    nonempty dependencies of the node's operands (and others still to be used). A node's set is
    dropped after its last use, so the live sets follow the graph's live set, not its size."""
    positions = _positions(graph, wrt)
    ops, operands = graph.ops, graph.operands
    last = _last_uses(graph, keep)
    live: dict[int, Span] = {}
    for node in range(len(keep)):
        if not keep[node]:
            continue
        value: Span | None = None
        if ops[node] == VAR:
            position = positions.get(node)
            value = None if position is None else (position, 1)
        else:
            args = operands[node]
            for slot in differentiable_slots(ops[node]):
                other = live.get(args[slot])
                if other is not None:
                    value = other if value is None else union(value, other)
        if value is not None:
            live[node] = value
        yield node, value, live
        for arg in operands[node]:
            if last[arg] == node:
                live.pop(arg, None)
        if last[node] == -1:
            live.pop(node, None)


def jacobian_rows(graph: Graph, wrt: Sequence[str]) -> list[list[int]]:
    """For each output, the ``wrt`` positions it depends on (ascending): the Jacobian's pattern.

    The walk of :func:`_dependencies`, inline and on a list indexed by node rather than a dict:
    this one runs at every sparse Jacobian, once per node of the function. An operand's set is
    dropped at its last use (an output's is kept to the end)."""
    positions = _positions(graph, wrt)
    ops, operands = graph.ops, graph.operands
    keep = graph.reachable()
    last = _last_uses(graph, keep)
    for output in graph.outputs:
        last[output] = len(keep)  # read after the walk
    slots_of = {op: differentiable_slots(op) for op in set(ops)}
    spans: list[Span | None] = [None] * len(keep)
    for node in itertools.compress(range(len(keep)), keep):
        args = operands[node]
        if not args:
            position = positions.get(node)
            if position is not None:
                spans[node] = (position, 1)
            continue
        value: Span | None = None
        for slot in slots_of[ops[node]]:
            other = spans[args[slot]]
            if other is not None:
                value = other if value is None else union(value, other)
        for arg in args:
            if last[arg] == node:
                spans[arg] = None
        spans[node] = value
    return [span_positions(spans[output]) for output in graph.outputs]


def _adjoint_reachable(graph: Graph, output: int) -> list[bool]:
    """The nodes whose adjoint in ``output`` is not structurally zero: reached from the output
    through slots that carry a derivative."""
    live = [False] * (output + 1)
    live[output] = True
    ops, operands = graph.ops, graph.operands
    for node in range(output, -1, -1):
        if live[node]:
            args = operands[node]
            for slot in differentiable_slots(ops[node]) if args else ():
                live[args[slot]] = True
    return live


def hessian_rows(graph: Graph, wrt: Sequence[str]) -> list[list[int]]:
    """For each ``wrt`` variable, the ``wrt`` positions it meets in a nonlinear node (ascending;
    the diagonal included where it is structurally nonzero): the Hessian's pattern, symmetric."""
    (output,) = graph.outputs
    rows: dict[int, Span] = {}
    ops, operands = graph.ops, graph.operands
    reached = _adjoint_reachable(graph, output)
    for node, value, live in _dependencies(graph, wrt, graph.reachable()):
        if value is None or not reached[node] or ops[node] == VAR:
            continue
        args = operands[node]
        for a, b in interactions(ops[node]):
            left, right = live.get(args[a]), live.get(args[b])
            if left is None or right is None:
                continue
            for position in span_positions(left):
                row = rows.get(position)
                rows[position] = right if row is None else union(row, right)
            if a != b:
                for position in span_positions(right):
                    row = rows.get(position)
                    rows[position] = left if row is None else union(row, left)
    return [span_positions(rows.get(position)) for position in range(len(wrt))]
