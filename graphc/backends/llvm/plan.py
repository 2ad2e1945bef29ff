"""The plan of a kernel: which nodes it computes, in which part, and through which scratch slot.

LLVM's code generation is superlinear on one huge basic block, so a large graph is split into
parts of :data:`PART_SIZE` nodes, each its own (never inlined) function; the values a later part
needs travel through ``scratch``, a vector per value, its slot reused once the value is dead.
A graph computing more than :data:`TAPE_NODES` nodes is not compiled at all but run as a tape
(:mod:`graphc.backends.llvm.tape`): from about that size on, the tape is as fast as compiled code
and ready in a fraction of the time (bench/RESULTS.md, changelog).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from graphc.graph import Graph
from graphc.ops import CONST, VAR

MANY_ARRAYS = 64  # more input and output arrays than this: compile fast (see Plan.large)
PART_SIZE = 2000  # nodes per function of a split graph: small enough for LLVM's code generation
TAPE_NODES = 2500  # a graph computing more nodes than this runs as a tape, not compiled


@dataclass
class Plan:
    """The nodes to compute, split into parts, and the scratch slot of each value crossing parts."""

    graph: Graph
    parts: list[list[int]]  # compute nodes in creation order; one part means no splitting
    slots: dict[int, int]  # node -> scratch slot, for values used by a later part or the loop
    size: int  # scratch slots per point

    @property
    def large(self) -> bool:
        """Whether to compile fast (no LLVM passes, ``-O0`` code generation) rather than well.

        A split graph's parts are straight-line code the hash-consed graph has already shared:
        LLVM's passes cost much of its compile time for code no faster, and ``-O3`` code generation
        several times ``-O0``'s for code little faster. With hundreds of arrays (a Hessian), the register allocator at
        ``-O3`` spends long on their addresses, live across the loop, for code no faster (the
        kernel is bound by memory).
        """
        return len(self.parts) > 1 or len(self.graph.variables) + len(self.graph.outputs) > MANY_ARRAYS

    @classmethod
    def of(cls, graph: Graph, part_size: int | None = None) -> Plan:
        part_size = PART_SIZE if part_size is None else part_size
        keep = graph.reachable()
        nodes = [n for n in range(len(graph)) if keep[n] and graph.op(n) not in (VAR, CONST)]
        if len(nodes) <= part_size:
            return cls(graph, [nodes], {}, 0)
        parts = [nodes[i : i + part_size] for i in range(0, len(nodes), part_size)]
        home = {graph.variable(name): -1 for name in graph.variables}  # -1: the loop itself
        for p, part in enumerate(parts):
            home.update((n, p) for n in part)
        last: dict[int, int] = {}  # the last part (len(parts): the loop, storing outputs) using a value
        for p, part in enumerate(parts):
            for n in part:
                for arg in graph.args(n):
                    if arg in home:
                        last[arg] = p
        for out in graph.outputs:
            if graph.op(out) not in (VAR, CONST):
                last[out] = len(parts)
        starts: dict[int, list[int]] = {}
        ends: dict[int, list[int]] = {}
        for node, p in last.items():
            if p > home[node]:
                starts.setdefault(home[node], []).append(node)
                ends.setdefault(p, []).append(node)
        slots: dict[int, int] = {}
        free: list[int] = []
        size = 0
        for p in range(-1, len(parts)):
            for node in sorted(starts.get(p, ())):
                if free:
                    slots[node] = free.pop()
                else:
                    slots[node], size = size, size + 1
            # a slot is free for the values of the next parts once its last reader is done
            free.extend(slots[node] for node in sorted(ends.get(p, ()), reverse=True))
        return cls(graph, parts, slots, size)


def computed_nodes(graph: Graph, keep: Sequence[bool] | None = None) -> int:
    """The nodes a kernel computes: those the outputs depend on (``keep``, default
    ``graph.reachable()``), leaves aside."""
    used = list(itertools.compress(graph.ops, graph.reachable() if keep is None else keep))
    return len(used) - used.count(VAR) - used.count(CONST)
