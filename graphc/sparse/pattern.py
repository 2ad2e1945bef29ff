"""Structural sparsity, read off the graph without evaluating anything.

A node's *dependencies* are a bitset (a Python int) of the ``wrt`` positions it depends on: a
variable's own bit, else the OR of its operands' over the slots that carry a derivative (an op
entry's partial rule for the slot is not None: ``sign(x)`` depends on ``x`` but has no partial, and
every exact method of graphc gives its partial as a structural zero too).

The Hessian's pattern is the standard propagation of nonlinear interactions: at every node whose
adjoint is not structurally zero, operand slots ``a`` and ``b`` with a structurally nonzero second
partial ``∂²op/∂a∂b`` join every input of operand ``a`` to every input of operand ``b``. Which
pairs of slots interact is derived from the op entry's own partial rules (:func:`interactions`), so
no op is named here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np

from graphc.graph import Graph
from graphc.ops import OPS, VAR

# Above this many set bits, a bitset's positions are read through NumPy rather than bit by bit.
_MANY_BITS = 64


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
) -> Iterator[tuple[int, int, dict[int, int]]]:
    """``(node, dependencies, live)`` for every kept node in creation order; ``live`` holds the
    nonzero bitsets of the node's operands (and others still to be used). A node's bitset is
    dropped after its last use, so the live bitsets follow the graph's live set, not its size (a
    bitset of 20,000 inputs takes 2.7 kB)."""
    positions = _positions(graph, wrt)
    ops, operands = graph.ops, graph.operands
    last = _last_uses(graph, keep)
    bits: dict[int, int] = {}
    for node in range(len(keep)):
        if not keep[node]:
            continue
        if ops[node] == VAR:
            position = positions.get(node)
            value = 0 if position is None else 1 << position
        else:
            value = 0
            args = operands[node]
            for slot in differentiable_slots(ops[node]):
                value |= bits.get(args[slot], 0)
        if value:
            bits[node] = value
        yield node, value, bits
        for arg in operands[node]:
            if last[arg] == node:
                bits.pop(arg, None)
        if last[node] == -1:
            bits.pop(node, None)


def jacobian_rows(graph: Graph, wrt: Sequence[str]) -> list[list[int]]:
    """For each output, the ``wrt`` positions it depends on (ascending): the Jacobian's pattern."""
    roots = set(graph.outputs)
    found: dict[int, list[int]] = {}
    for node, value, _ in _dependencies(graph, wrt, graph.reachable()):
        if node in roots:
            found[node] = bit_positions(value)
    return [found[output] for output in graph.outputs]


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
    rows: dict[int, int] = {}
    ops, operands = graph.ops, graph.operands
    live = _adjoint_reachable(graph, output)
    for node, value, bits in _dependencies(graph, wrt, graph.reachable()):
        if not value or not live[node] or ops[node] == VAR:
            continue
        args = operands[node]
        for a, b in interactions(ops[node]):
            left, right = bits.get(args[a], 0), bits.get(args[b], 0)
            if not left or not right:
                continue
            for position in bit_positions(left):
                rows[position] = rows.get(position, 0) | right
            if a != b:
                for position in bit_positions(right):
                    rows[position] = rows.get(position, 0) | left
    return [bit_positions(rows.get(position, 0)) for position in range(len(wrt))]
