"""The LLVM backend: a graph as one LLVM function over a batch, JIT-compiled in-process.

The kernel is ``int64 graphc_kernel(inputs, steps, outputs, start, stop, scratch)``: ``inputs``
and ``outputs`` are arrays of pointers to doubles, ``steps[k]`` is 0 for an input broadcast from
one value (then ``inputs[k]`` holds :data:`LANES` copies of it) and 1 otherwise. One loop over
the points ``start..stop``, :data:`LANES` points per iteration (the host's vector width: 8 with
AVX-512, 4 with AVX), loads a vector of each input, computes every node as one vector SSA value
and stores each output, so memory is touched once per input and output, not once per node, and
every instruction computes all lanes at once. graphc writes the vector code itself (as IR text,
:mod:`graphc.backends.llvm_text`) rather than hoping LLVM's loop vectoriser manages. Each op is
lowered by its entry in :data:`graphc.ops.OPS`; exp, log, tanh, sin, cos are graphc's own vector
functions (:mod:`graphc.backends.llvm_math`), the other C library functions are applied lane by
lane. The last points of a range, fewer than a vector, go through a small buffer in ``scratch``.

``graphc_point(in, out, scratch)`` runs the kernel on one point given as plain vectors, so a
call from Python on scalars builds no pointer arrays (:mod:`graphc.backends.llvm_run` calls both).

LLVM's code generation is superlinear on one huge basic block, so a large graph is split into
parts of :data:`PART_SIZE` nodes, each its own (never inlined) function; the values a later part
needs travel through ``scratch``, a vector per value, its slot reused once the value is dead.
Compile time then grows linearly with the graph. graphc's vector functions are compiled into a
library and called; a small kernel has them inlined instead.

A graph computing more than :data:`TAPE_NODES` nodes is not compiled at all: it runs as a tape
on an interpreter (:mod:`graphc.backends.llvm_tape`), with the same results bit for bit, about as
fast, and ready in a fraction of the time.

The machine code can be cached on disk (:mod:`graphc.backends.llvm_cache`). So is graphc's
*runtime* (:func:`runtime`), the vector functions, the kernels' tail helpers and the interpreter of
every op: compiled once per machine instead of once per process; with the cache off, each process
compiles the functions and an interpreter of the ops it uses.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import llvmlite
import llvmlite.binding as llvm
import numpy as np

from graphc import ops
from graphc.backends import llvm_math, llvm_tape, llvm_text
from graphc.backends.llvm_cache import Build, Cache, graph_key
from graphc.backends.llvm_run import CompiledKernel
from graphc.backends.llvm_text import TextEmitter
from graphc.errors import BackendError
from graphc.graph import Graph
from graphc.kernel import Kernel
from graphc.ops import CONST, OPS, VAR

# LLVM's global context is not thread-safe: compiling and loading happen one at a time.
_LLVM_LOCK = threading.Lock()

MANY_ARRAYS = 64  # more input and output arrays than this: compile fast (see Plan.large)
PART_SIZE = 2000  # nodes per function of a split graph: small enough for LLVM's code generation
# A graph computing more nodes than this runs as a tape (graphc.backends.llvm_tape), not compiled:
# measured on seeded random DAGs, the tape is as fast as compiled code from about 3,000 nodes on
# (B5-1k's gradient: 34 against 46 ms; B5-10k's 35 against 38 ms; B5-100k's 39 against 37 ms)
# and is ready in a fraction of the time (B5-10k: 0.19 against 0.61 s from graph to kernel).
TAPE_NODES = 2500
ENTRY = "graphc_kernel"
POINT = "graphc_point"


@functools.cache
def target_machine(fast: bool = False) -> llvm.TargetMachine:
    """The host's target machine for optimising and code generation (never given to an engine).

    ``fast``: code generation at ``-O0`` (fast instruction selection and register allocation).
    """
    return new_target_machine(0 if fast else 3)


def new_target_machine(level: int = 3) -> llvm.TargetMachine:
    """A fresh target machine for the host (``llvm.initialize`` is gone: initialise the target only).

    An execution engine takes ownership of its target machine and frees it with itself, so each
    engine needs its own.
    """
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    cpu, features = host()
    return target.create_target_machine(cpu=cpu, features=features, opt=level, codemodel="jitdefault")


@functools.cache
def host() -> tuple[str, str]:
    """The host CPU's name and its features as LLVM spells them (asking LLVM takes 0.3 ms, and every
    engine needs a target machine of its own)."""
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


# --- the plan: which nodes, in which part, through which scratch slot ------------------------------


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
        ``-O1`` passes take 40% of its compile time for code no faster, ``-O3`` code generation
        four times ``-O0`` for code about 7% faster. With hundreds of arrays (a Hessian), the register allocator at
        ``-O3`` spends seconds on their addresses, live across the loop, for code no faster (the
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


# --- IR ----------------------------------------------------------------------------------------------


@functools.cache
def lanes() -> int:
    """Points per vector: the host's widest vector of doubles (AVX-512: 8, AVX: 4, else SSE2's 2)."""
    features = llvm.get_host_cpu_features()
    if features.get("avx512f", False):
        return 8
    return 4 if features.get("avx", False) else 2


class _Values:
    """The SSA value of each node inside one function; values from elsewhere come from scratch."""

    def __init__(self, plan: Plan, emitter: TextEmitter, known: dict[int, str] | None = None):
        self.plan = plan
        self.emitter = emitter
        self.known: dict[int, str] = dict(known or {})

    def __getitem__(self, node: int) -> str:
        value = self.known.get(node)
        if value is None:
            constant = self.plan.graph.const_value(node)
            if constant is not None:
                return self.emitter.const(constant)
            value = self.emitter.load(self.plan.slots[node])
            self.known[node] = value
        return value

    def compute(self, nodes: Sequence[int], spill: bool) -> None:
        """One SSA value per node; with ``spill``, values needed later are stored to their slots."""
        graph, emitter, slots = self.plan.graph, self.emitter, self.plan.slots
        for node in nodes:
            value = OPS[graph.op(node)].llvm(emitter, tuple(self[a] for a in graph.args(node)))
            self.known[node] = value
            if spill and node in slots:
                emitter.store(value, slots[node])


def part_name(index: int) -> str:
    return f"graphc_part{index}"


class Scratch(NamedTuple):
    """Where each thing lives in a call's scratch, counted in 8-byte words from its start."""

    tail_in: int  # after the parts' vectors: a vector per input for the last points of a range
    tail_out: int  # a vector per output for them
    tail_tables: int  # the tables of their addresses: inputs, steps (all 1), outputs
    point_tables: int  # the point function's tables: inputs, outputs, steps (all 0), the stream flag (0)
    size: int  # words in all

    @classmethod
    def of(cls, plan: Plan, width: int) -> Scratch:
        inputs, outputs = len(plan.graph.variables), len(plan.graph.outputs)
        tables = 2 * inputs + outputs + 1
        tail_in = width * plan.size
        tail_out = tail_in + width * inputs
        tail_tables = tail_out + width * outputs
        return cls(tail_in, tail_out, tail_tables, tail_tables + tables, tail_tables + 2 * tables)


def _loop(label: str, count: str, body: list[str], after: str) -> list[str]:
    """IR lines of ``for %{label} in 0..count: body``, falling through to the block ``after``."""
    if body and body[-1].lstrip().startswith("br "):  # a nested loop ends the body: a block of its own
        body = [*body, f"{label}.end:"]
    return [
        f"  %{label}.any = icmp sgt i64 {count}, 0",
        f"  br i1 %{label}.any, label %{label}.loop, label %{after}",
        f"{label}.loop:",
        f"  %{label} = phi i64 [0, %{label}.enter], [%{label}.next, %{label}.latch]",
        *body,
        f"  br label %{label}.latch",
        f"{label}.latch:",
        f"  %{label}.next = add i64 %{label}, 1",
        f"  %{label}.more = icmp slt i64 %{label}.next, {count}",
        f"  br i1 %{label}.more, label %{label}.loop, label %{after}",
    ]


HELPERS = ("graphc_fill", "graphc_drain")  # the tail's helpers: library code, like the vector functions
_HELPER_TYPES = {
    "graphc_fill": "void (ptr, ptr, i64, i64, i64, ptr, ptr, i64, ptr)",
    "graphc_drain": "void (ptr, i64, i64, i64, ptr)",
}


def helper_declarations(width: int) -> list[str]:
    """The declarations a kernel makes of the tail's helpers (defined by :func:`helpers_module`)."""
    declared = []
    for name in HELPERS:
        result, arguments = _HELPER_TYPES[name].split(" ", 1)
        declared.append(f"declare {result} @{llvm_text.own_name(name, width)}{arguments}")
    return declared


def helpers_module(width: int) -> str:
    """The module defining the tail's helpers for vectors of ``width`` doubles (see :func:`_helpers`).

    They depend on the vector width alone, so they are compiled once (a part of the runtime of their
    own, or once per process with the cache off), not into every kernel: in a kernel's module they
    were 2-3 ms of its code generation (a third of a small kernel's, B1's gradient 21 -> 18 ms).
    """
    return "\n".join(
        [
            f'target triple = "{llvm.get_process_triple()}"',
            f'target datalayout = "{target_machine().target_data}"',
            _helpers(width),
            # they run once a range: unoptimised, they cost no compile time (optimised, LLVM
            # unrolled and vectorised their little loops into ~800 instructions)
            "attributes #3 = { noinline nounwind optnone }",
            "",
        ]
    )


def _helpers(width: int) -> str:
    """``graphc_fill``: the last points of a range (fewer than a vector) copied into a buffer, the
    missing lanes repeating the last point; ``graphc_drain``: the results of those points copied out.
    Their symbols carry the width (``graphc_fill_v8``)."""
    fill = _loop(
        "lane",
        str(width),
        [
            "  %short = icmp slt i64 %lane, %last",
            "  %m = select i1 %short, i64 %lane, i64 %last",
            "  %at = add i64 %i, %m",
            "  %offset = mul i64 %at, %s",
            "  %from = getelementptr inbounds double, ptr %p, i64 %offset",
            "  %v = load double, ptr %from, align 8",
            "  %slot = add i64 %base, %lane",
            "  %to.lane = getelementptr inbounds double, ptr %to, i64 %slot",
            "  store double %v, ptr %to.lane, align 8",
        ],
        "k.latch",
    )
    fill_inputs = _loop(
        "k",
        "%n",
        [
            "  %pp = getelementptr inbounds ptr, ptr %inputs, i64 %k",
            "  %p = load ptr, ptr %pp, align 8",
            "  %sp = getelementptr inbounds i64, ptr %steps, i64 %k",
            "  %s = load i64, ptr %sp, align 8",
            f"  %base = mul i64 %k, {width}",
            "  br label %lane.enter",
            "lane.enter:",
            *fill,
        ],
        "done",
    )
    tables_in = _loop(
        "t",
        "%n",
        [
            f"  %t.offset = mul i64 %t, {width}",
            "  %t.vector = getelementptr inbounds double, ptr %to, i64 %t.offset",
            "  %t.pointer = getelementptr inbounds ptr, ptr %table, i64 %t",
            "  store ptr %t.vector, ptr %t.pointer, align 8",
            "  %t.at = add i64 %t, %n",
            "  %t.step = getelementptr inbounds i64, ptr %table, i64 %t.at",
            "  store i64 1, ptr %t.step, align 8",
        ],
        "u.enter",
    )
    tables_out = _loop(
        "u",
        "%n.out",
        [
            f"  %u.offset = mul i64 %u, {width}",
            "  %u.vector = getelementptr inbounds double, ptr %to.out, i64 %u.offset",
            "  %u.n2 = add i64 %n, %n",
            "  %u.at = add i64 %u, %u.n2",
            "  %u.pointer = getelementptr inbounds ptr, ptr %table, i64 %u.at",
            "  store ptr %u.vector, ptr %u.pointer, align 8",
        ],
        "end",
    )
    drain = _loop(
        "lane",
        "%left",
        [
            "  %slot = add i64 %base, %lane",
            "  %from = getelementptr inbounds double, ptr %from.all, i64 %slot",
            "  %v = load double, ptr %from, align 8",
            "  %at = add i64 %i, %lane",
            "  %to = getelementptr inbounds double, ptr %p, i64 %at",
            "  store double %v, ptr %to, align 8",
        ],
        "j.latch",
    )
    drain_outputs = _loop(
        "j",
        "%n",
        [
            "  %pp = getelementptr inbounds ptr, ptr %outputs, i64 %j",
            "  %p = load ptr, ptr %pp, align 8",
            f"  %base = mul i64 %j, {width}",
            "  br label %lane.enter",
            "lane.enter:",
            *drain,
        ],
        "done",
    )
    return "\n".join(
        [
            (
                f"define void @{llvm_text.own_name('graphc_fill', width)}(ptr %inputs, ptr %steps, i64 %n, i64 %i, "
                "i64 %left, ptr %to, ptr %table, i64 %n.out, ptr %to.out) #3 {"
            ),
            "k.enter:",
            "  %last = sub i64 %left, 1",
            *fill_inputs,
            "done:",
            "  br label %t.enter",
            "t.enter:",
            *tables_in,
            "u.enter:",
            *tables_out,
            "end:",
            "  ret void",
            "}",
            (
                f"define void @{llvm_text.own_name('graphc_drain', width)}(ptr %outputs, i64 %n, i64 %i, "
                "i64 %left, ptr %from.all) #3 {"
            ),
            "j.enter:",
            *drain_outputs,
            "done:",
            "  ret void",
            "}",
        ]
    )


def _point_text(plan: Plan, width: int) -> str:
    """``graphc_point(double *in, double *out, double *scratch)``: the kernel on one point; the
    pointer tables it passes are built in ``scratch``, after the kernel's own part of it.

    Left unoptimised (``optnone``): two little loops and a call, as fast either way (B1's point call
    4.6 us both ways), and 0.7-1.5 ms less code generation a kernel (B3's 5.8 -> 4.6 ms)."""
    inputs, outputs = len(plan.graph.variables), len(plan.graph.outputs)
    tables = Scratch.of(plan, width).point_tables
    fill = _loop(
        "k",
        str(inputs),
        [
            "  %value = getelementptr inbounds double, ptr %in, i64 %k",
            "  %pointer = getelementptr inbounds ptr, ptr %tables, i64 %k",
            "  store ptr %value, ptr %pointer, align 8",
            "  %step = getelementptr inbounds i64, ptr %steps, i64 %k",
            "  store i64 0, ptr %step, align 8",
        ],
        "j.enter",
    )
    results = _loop(
        "j",
        str(outputs),
        [
            "  %result = getelementptr inbounds double, ptr %out, i64 %j",
            "  %slot = getelementptr inbounds ptr, ptr %results, i64 %j",
            "  store ptr %result, ptr %slot, align 8",
        ],
        "call",
    )
    return "\n".join(
        [
            f"define i64 @{POINT}(ptr noalias %in, ptr noalias %out, ptr noalias %scratch) #3 {{",
            "k.enter:",
            f"  %tables = getelementptr inbounds double, ptr %scratch, i64 {tables}",
            f"  %results = getelementptr inbounds ptr, ptr %tables, i64 {inputs}",
            f"  %steps = getelementptr inbounds i64, ptr %tables, i64 {inputs + outputs}",
            f"  %flag = getelementptr inbounds i64, ptr %steps, i64 {inputs}",
            "  store i64 0, ptr %flag, align 8",
            *fill,
            "j.enter:",
            *results,
            "call:",
            f"  %r = call i64 @{ENTRY}(ptr %tables, ptr %steps, ptr %results, i64 0, i64 1, ptr %scratch)",
            "  ret i64 %r",
            "}",
        ]
    )


SIGNATURE = "ptr noalias %inputs, ptr noalias %steps, ptr noalias %outputs, i64 %start, i64 %stop, ptr noalias %scratch"


def kernel_text(plan: Plan, width: int) -> tuple[str, dict[str, int]]:
    """The IR text of a plan's module (the kernel, the point function, the helpers, and one
    function per part when the graph is split), and how often it calls each of graphc's vector
    functions."""
    graph = plan.graph
    d = f"<{width} x double>" if width > 1 else "double"
    variables = [graph.variable(name) for name in graph.variables]
    n_in, n_out = len(variables), len(graph.outputs)
    split = len(plan.parts) > 1
    scratch = Scratch.of(plan, width)
    entry = [
        f"  %stream.at = getelementptr inbounds i64, ptr %steps, i64 {n_in}",
        "  %stream.word = load i64, ptr %stream.at, align 8",
        "  %stream = icmp ne i64 %stream.word, 0",
        f"  %tail.in = getelementptr inbounds double, ptr %scratch, i64 {scratch.tail_in}",
        f"  %tail.out = getelementptr inbounds double, ptr %scratch, i64 {scratch.tail_out}",
        f"  %tail.inputs = getelementptr inbounds double, ptr %scratch, i64 {scratch.tail_tables}",
        f"  %tail.steps = getelementptr inbounds ptr, ptr %tail.inputs, i64 {n_in}",
        f"  %tail.outputs = getelementptr inbounds ptr, ptr %tail.inputs, i64 {2 * n_in}",
    ]
    # The body reads the arrays' addresses from tables each block (a load from the L1 cache beats
    # keeping dozens of them live across the loop); the last points read the tail's tables.
    body = [
        "  %itab = phi ptr [%inputs, %block], [%tail.inputs, %fill]",
        "  %stab = phi ptr [%steps, %block], [%tail.steps, %fill]",
        "  %otab = phi ptr [%outputs, %block], [%tail.outputs, %fill]",
        "  %at = phi i64 [%i, %block], [0, %fill]",
    ]
    known: dict[int, str] = {}
    for k, node in enumerate(variables):
        body += [
            f"  %in{k}.at = getelementptr inbounds ptr, ptr %itab, i64 {k}",
            f"  %in{k} = load ptr, ptr %in{k}.at, align 8",
            f"  %step{k}.at = getelementptr inbounds i64, ptr %stab, i64 {k}",
            f"  %step{k} = load i64, ptr %step{k}.at, align 8",
            f"  %x{k}.offset = mul i64 %at, %step{k}",
            f"  %x{k}.from = getelementptr inbounds double, ptr %in{k}, i64 %x{k}.offset",
            f"  %x{k} = load {d}, ptr %x{k}.from, align 8",
        ]
        known[node] = f"%x{k}"
    emitter = TextEmitter(width)
    values = _Values(plan, emitter, known)
    if split:
        for node in variables:
            if node in plan.slots:
                emitter.store(known[node], plan.slots[node])
        emitter.builder.lines += [
            f"  call void @{part_name(p)}(ptr %scratch)" for p in range(len(plan.parts))
        ]
    else:
        values.compute(plan.parts[0], spill=False)
    results = [values[out] for out in graph.outputs]
    body += emitter.builder.lines
    for j in range(len(results)):
        body += [
            f"  %out{j}.at = getelementptr inbounds ptr, ptr %otab, i64 {j}",
            f"  %out{j} = load ptr, ptr %out{j}.at, align 8",
            f"  %y{j}.to = getelementptr inbounds double, ptr %out{j}, i64 %at",
        ]
    # A large batch's results are streamed to memory (non-temporal stores, when the caller sets
    # the flag after the steps: every output's vectors aligned): a store then writes its line
    # without first reading it, a third of a memory-bound kernel's traffic (see STREAM_BYTES).
    body += ["  %not.tail = xor i1 %tail, true", "  %nt = and i1 %stream, %not.tail"]
    body += ["  br i1 %nt, label %store.nt, label %store"]
    body += ["store:", *(f"  store {d} {v}, ptr %y{j}.to, align 8" for j, v in enumerate(results))]
    body += ["  br label %stored", "store.nt:"]
    body += [
        f"  store {d} {v}, ptr %y{j}.to, align {8 * width}, !nontemporal !0" for j, v in enumerate(results)
    ]
    body += ["  br label %stored", "stored:"]
    fill, drain = (llvm_text.own_name(name, width) for name in HELPERS)
    kernel = [
        f"define i64 @{ENTRY}({SIGNATURE}) #1 {{",
        "entry:",
        *entry,
        "  %any = icmp slt i64 %start, %stop",
        "  br i1 %any, label %block, label %done",
        "block:",
        "  %i = phi i64 [%start, %entry], [%next, %latch]",
        "  %left = sub i64 %stop, %i",
        f"  %tail = icmp slt i64 %left, {width}",
        "  br i1 %tail, label %fill, label %body",
        "fill:",
        (
            f"  call void @{fill}(ptr %inputs, ptr %steps, i64 {n_in}, i64 %i, i64 %left, ptr %tail.in, "
            f"ptr %tail.inputs, i64 {n_out}, ptr %tail.out)"
        ),
        "  br label %body",
        "body:",
        *body,
        "  br i1 %tail, label %drain, label %latch",
        "drain:",
        f"  call void @{drain}(ptr %outputs, i64 {n_out}, i64 %i, i64 %left, ptr %tail.out)",
        "  br label %done",
        "latch:",
        f"  %next = add i64 %i, {width}",
        "  %more = icmp slt i64 %next, %stop",
        "  br i1 %more, label %block, label %done",
        "done:",
        "  br i1 %stream, label %fence, label %exit",
        "fence:",  # the streamed stores are weakly ordered: done before the caller reads them
        "  fence seq_cst",
        "  br label %exit",
        "exit:",
        "  ret i64 0",
        "}",
    ]
    parts = TextEmitter(width, prefix="%p")
    if split:
        for index, part in enumerate(plan.parts):
            _Values(plan, parts).compute(part, spill=True)
            parts.define(part_name(index))
    emitter.called.update(parts.called)
    emitter.calls.update(parts.calls)
    text = [
        f'target triple = "{llvm.get_process_triple()}"',
        f'target datalayout = "{target_machine().target_data}"',
        *emitter.declarations(),
        *helper_declarations(width),
        *kernel,
        _point_text(plan, width),
        *parts.functions,
        f"attributes #0 = {{ noinline nounwind {llvm_text.aligned_stack(width)} }}",
        f"attributes #1 = {{ nounwind {llvm_text.aligned_stack(width)} }}",
        f"attributes #2 = {{ {llvm_math.ATTRIBUTES} }}",
        "attributes #3 = { noinline nounwind optnone }",  # the point function's
        "!0 = !{i32 1}",
        "",
    ]
    own = {s: emitter.calls[s] for s in sorted(emitter.calls) if s in llvm_math.FUNCTIONS}
    return "\n".join(text), own


INLINE_CALLS = 48  # a kernel calling graphc's vector functions at most this often has them inlined


def optimize(plan: Plan) -> llvm.ModuleRef:
    """The plan's module, verified and optimised (a few passes; a large plan, none: see below).

    A small kernel calling graphc's vector functions at most :data:`INLINE_CALLS` times has them
    inlined (no spilling of live vectors around calls); others call the process's library.
    """
    width = lanes()
    text, own = kernel_text(plan, width)
    module = llvm.parse_assembly(text)
    if own and not plan.large and sum(own.values()) <= INLINE_CALLS:
        layout = str(target_machine().target_data)
        library = llvm_math.module(
            list(own), {}, llvm.get_process_triple(), layout, _fma(), width, inline=True
        )
        module.link_in(llvm.parse_assembly(library))
    module.verify()
    # A large plan's code is straight-line and already shared by the hash-consed graph: LLVM's
    # passes (even -O1's) cost about 40% of its compile time and gain nothing measurable
    # (B5-10k's gradient: 0.52 s of passes for code 0-5% faster), so it gets none.
    passes = llvm.create_pass_builder(target_machine(), llvm.create_pipeline_tuning_options(speed_level=0))
    if plan.large:
        passes.getModulePassManager().run(module, passes)  # -O0's: the always-inliner alone
        return module
    # A small plan's code is written vectorised, its loops by hand: of -O2, what it needs is the
    # inlining of graphc's functions and the sharing of what inlined copies compute alike (sin and
    # cos of one value reduce it once: B2b's gradient 0.33 -> 0.19 ms). These four passes give the
    # same speed as -O2 on B1..B5-1k's kernels in 20-30% less compile time (B4's gradient 59 -> 43 ms).
    # A plan calling none of graphc's functions gets none: the hash-consed graph left them nothing
    # to share (B1's and B3's gradients as fast, built 1.5 and 0.7 ms sooner).
    if not own:
        return module
    pipeline = llvm.create_new_module_pass_manager()
    pipeline.add_always_inliner_pass()
    pipeline.add_instruction_combine_pass()
    pipeline.add_new_gvn_pass()
    pipeline.add_dead_code_elimination_pass()
    pipeline.run(module, passes)
    return module


@functools.cache
def _fma() -> bool:
    """Whether the host fuses multiply-adds (graphc's own exp, log... use them if so)."""
    return bool(llvm.get_host_cpu_features().get("fma", False))


def external_symbols(module: llvm.ModuleRef) -> list[str]:
    """The C functions the optimised module calls (libm's), which the process must provide."""
    return sorted(f.name for f in module.functions if f.is_declaration and not f.name.startswith("llvm."))


def _library_symbols(symbols: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """Which of ``symbols`` are graphc's own library code, vector functions or the tail's helpers
    (by their name without the width, ``graphc_sin``), and which its lane-by-lane wrappers of C
    library functions (symbol: arity)."""
    width = lanes()
    own_names = {llvm_text.own_name(name, width): name for name in (*llvm_math.FUNCTIONS, *HELPERS)}
    own = [own_names[s] for s in symbols if s in own_names]
    applied = (llvm_text.libm_applied(s, width) for s in symbols)
    libm = {f: 2 if f in llvm_math.BINARY else 1 for f in applied if f is not None}
    return own, libm


# graphc's vector functions compiled so far: their code lives as long as the process
_LIBRARY: list[llvm.ExecutionEngine] = []


def _library_module(own: list[str], libm: dict[str, int], helpers: bool) -> llvm.ModuleRef:
    """The verified module of graphc's vector functions ``own``, the wrappers ``libm`` and, if
    ``helpers``, the tail's helpers."""
    width, layout = lanes(), str(target_machine().target_data)
    module = llvm.parse_assembly(
        llvm_math.module(own, libm, llvm.get_process_triple(), layout, _fma(), width)
    )
    if helpers:
        module.link_in(llvm.parse_assembly(helpers_module(width)))
    module.verify()
    return module


def _library(own: list[str], libm: dict[str, int], cache: Cache | None = None) -> None:
    """Compile graphc's vector functions ``own`` and the wrappers ``libm`` not compiled yet (once
    per process) and give them to the JIT's symbol resolution; with a usable disk cache, the whole
    library comes from the runtime kept there (see :func:`runtime`)."""
    width = lanes()
    own = [n for n in own if not llvm.address_of_symbol(llvm_text.own_name(n, width))]
    libm = {s: a for s, a in libm.items() if not llvm.address_of_symbol(llvm_text.libm_name(s, width))}
    if not own and not libm:
        return
    functions = [n for n in own if n not in HELPERS]
    helpers = len(functions) < len(own)
    if cache is not None:
        parts = [part for part, needed in (("helpers", helpers), ("library", functions or libm)) if needed]
        if all(runtime(part, cache) is not None for part in parts):
            _library(own, libm)  # anything the runtime lacks (nothing: it has every function)
            return
    _resolve([*libm, *(llvm_math.LIBM[n] for n in functions if n in llvm_math.GUARDED)])
    module = _library_module(functions, libm, helpers)
    # No passes: the functions are written as straight-line vector code, and -O2 gave the same
    # machine code's speed and the same bits for all seven, for 40% more compile time.
    engine = llvm.create_mcjit_compiler(module, new_target_machine())
    engine.finalize_object()
    names = [llvm_text.own_name(n, width) for n in own] + [llvm_text.libm_name(s, width) for s in libm]
    for name in names:
        llvm.add_symbol(name, engine.get_function_address(name))
    _LIBRARY.append(engine)


def _from_process(symbols: Sequence[str]) -> None:
    """Give the JIT the addresses of those of ``symbols`` the process has loaded already: the C
    library's sin, atan2... (Python links libm). Searching for libm's file instead (ctypes.util,
    which imports subprocess and asks ldconfig) was 13 ms of a cold build calling sin or cos."""
    try:
        process = ctypes.CDLL(None)
    except (OSError, TypeError):  # no handle on the process itself here (Windows)
        return
    for symbol in symbols:
        function = getattr(process, symbol, None)
        if function is not None:
            llvm.add_symbol(symbol, ctypes.cast(function, ctypes.c_void_p).value)


def resolve_symbols(symbols: Sequence[str], cache: Cache | None = None) -> None:
    """Make sure the JIT can link every symbol (compiling graphc's vector functions, or loading
    them from ``cache``'s runtime, and finding the C library's); else a BackendError.

    Checked before linking: LLVM aborts the whole process on a symbol it cannot resolve.
    """
    own, libm = _library_symbols(symbols)
    try:
        _library(own, libm, cache)
    finally:
        _resolve(symbols)


def _resolve(symbols: Sequence[str]) -> None:
    missing = [s for s in symbols if not llvm.address_of_symbol(s)]
    if missing:
        _from_process(missing)
        missing = [s for s in missing if not llvm.address_of_symbol(s)]
    if missing:
        import ctypes.util  # here, not at the top: it imports subprocess (10 ms), rarely needed

        path = ctypes.util.find_library("m")
        if path:
            try:
                llvm.load_library_permanently(path)
            except RuntimeError:
                pass
        missing = [s for s in missing if not llvm.address_of_symbol(s)]
    if missing:
        raise BackendError(
            f"the llvm backend cannot find the C library function(s) {', '.join(missing)} in this process"
        )


def load(
    object_code: bytes,
    symbols: Sequence[str],
    cache: Cache | None = None,
    names: Sequence[str] = (ENTRY, POINT),
) -> tuple[llvm.ExecutionEngine, list[int]]:
    """An execution engine holding the machine code, and the addresses of its functions ``names``
    (the batch and point kernels')."""
    resolve_symbols(symbols, cache)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), new_target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(object_code))
    engine.finalize_object()
    addresses = [engine.get_function_address(name) for name in names]
    if not all(addresses):
        raise BackendError(f"the compiled code lacks one of {', '.join(names)}")
    return engine, addresses


def build(graph: Graph, part_size: int | None = None) -> Build:
    """Generate, optimise and compile a graph to machine code (no caching)."""
    plan = Plan.of(graph, part_size)
    optimized = optimize(plan)
    object_code = target_machine(fast=plan.large).emit_object(optimized)
    return Build(object_code, external_symbols(optimized), Scratch.of(plan, lanes()).size, str(optimized))


def optimized_ir(graph: Graph) -> str:
    """The optimised LLVM IR of a graph's kernel (what ``--emit llvm`` prints)."""
    with _LLVM_LOCK:
        return str(optimize(Plan.of(graph)))


@functools.cache
def _generator() -> str:
    """The host, LLVM, and a hash of the code that generates IR (a new lowering is a new key)."""
    digest = hashlib.sha256()
    for module in (ops, sys.modules[__name__], llvm_text, llvm_math, llvm_tape):
        digest.update(Path(module.__file__ or "").read_bytes())
    machine = f"{llvm.get_process_triple()}|{'|'.join(host())}"
    return f"{machine}|{llvm.llvm_version_info}|{llvmlite.__version__}|{digest.hexdigest()}"


def _options() -> str:
    """What, besides the graph, decides the machine code: the key's other half."""
    return f"{PART_SIZE}|{lanes()}|{INLINE_CALLS}|{_generator()}"


def math_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """One of graphc's own functions (``"graphc_exp"``...) applied to a float64 array, with the
    values it has in kernels: for measuring its accuracy."""
    width = lanes()
    with _LLVM_LOCK:
        _library([name], {})
        module = llvm.parse_assembly(llvm_math.array_loop(name, width))
        module.verify()
        engine = llvm.create_mcjit_compiler(module, new_target_machine())
        engine.finalize_object()
        apply = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
            engine.get_function_address("graphc_apply")
        )

    def run(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64).ravel()
        padded = np.zeros(-(-x.size // width) * width)
        padded[: x.size] = x
        y = np.empty_like(padded)
        apply(padded.ctypes.data, y.ctypes.data, padded.size)
        return y[: x.size]

    run.engine = engine  # type: ignore[attr-defined]  # the code lives as long as the function
    return run


def computed_nodes(graph: Graph, keep: Sequence[bool] | None = None) -> int:
    """The nodes a kernel computes: those the outputs depend on (``keep``, default
    ``graph.reachable()``), leaves aside."""
    used = list(itertools.compress(graph.ops, graph.reachable() if keep is None else keep))
    return len(used) - used.count(VAR) - used.count(CONST)


# the tape interpreters compiled so far, by the ops they run: their engine, entry and point function
_INTERPRETERS: dict[tuple[str, ...], tuple[llvm.ExecutionEngine, int, int, str]] = {}


def _interpreter_module(opcodes: tuple[str, ...]) -> llvm.ModuleRef:
    """The interpreter of these ops, verified, with the passes it gets (the always-inliner)."""
    layout = str(target_machine().target_data)
    module = llvm.parse_assembly(
        llvm_tape.interpreter_text(opcodes, lanes(), llvm.get_process_triple(), layout)
    )
    module.verify()
    # its code is already unrolled, straight-line per op: -O2 passes took 35 ms for nothing
    passes = llvm.create_pass_builder(target_machine(), llvm.create_pipeline_tuning_options(speed_level=0))
    passes.getModulePassManager().run(module, passes)
    return module


def interpreter(opcodes: tuple[str, ...]) -> tuple[llvm.ExecutionEngine, int, int, str]:
    """The interpreter of tapes of these ops (compiled once per process, without passes): its engine,
    the addresses of its batch and point functions, and its optimised IR. Call under _LLVM_LOCK."""
    found = _INTERPRETERS.get(opcodes)
    if found is None:
        module = _interpreter_module(opcodes)
        resolve_symbols(external_symbols(module))
        engine = llvm.create_mcjit_compiler(module, new_target_machine())
        engine.finalize_object()
        addresses = [engine.get_function_address(name) for name in (llvm_tape.ENTRY, llvm_tape.POINT)]
        if not all(addresses):
            raise BackendError(f"the compiled interpreter lacks {llvm_tape.ENTRY} or {llvm_tape.POINT}")
        found = engine, addresses[0], addresses[1], str(module)
        _INTERPRETERS[opcodes] = found
    return found


# --- graphc's runtime: the code that depends on the machine but on no graph -------------------------

RUNTIME_PARTS = ("library", "helpers", "interpreter")
# the parts of the runtime loaded in this process (from whichever cache directory came first):
# their code lives as long as the process
_RUNTIME: dict[str, tuple[llvm.ExecutionEngine, Build, list[int]]] = {}
_COMPILED: set[str] = set()  # the parts this process compiled (the cache did not hold them)


def _runtime_build(part: str) -> Build:
    """Compile one part of the runtime: ``library``, every one of graphc's vector functions and
    every C library wrapper an op calls; ``helpers``, the tail's helpers every kernel calls (a part
    of their own: loading the library costs a kernel calling no vector function 2-3 ms); or
    ``interpreter``, the tape interpreter of every opcode."""
    width = lanes()
    if part == "library":
        _, libm = _library_symbols(external_symbols(_interpreter_module(llvm_tape.EVERY_OPCODE)))
        module = _library_module(list(llvm_math.FUNCTIONS), libm, helpers=False)  # no passes, as _library
        exports = [llvm_text.own_name(n, width) for n in llvm_math.FUNCTIONS]
        exports += [llvm_text.libm_name(s, width) for s in libm]
    elif part == "helpers":
        module = _library_module([], {}, helpers=True)
        exports = [llvm_text.own_name(n, width) for n in HELPERS]
    else:
        module = _interpreter_module(llvm_tape.EVERY_OPCODE)
        exports = [llvm_tape.ENTRY, llvm_tape.POINT]
    return Build(target_machine().emit_object(module), external_symbols(module), 0, str(module), exports)


def runtime(part: str, cache: Cache) -> tuple[llvm.ExecutionEngine, Build, list[int]] | None:
    """One part of graphc's runtime (see :data:`RUNTIME_PARTS`), loaded once per process from the
    disk cache's ``runtime/`` folder, where it is compiled and stored the first time on a machine:
    its engine, its Build, and the addresses of its exports; None when the cache is off or
    unusable. The library's and the helpers' functions are given to the JIT's symbol resolution.
    Call under _LLVM_LOCK.

    Without it, each process compiles the vector functions and the interpreter it uses (B5-1k's
    gradient: 16 and 38 ms of a 55 ms build); loading both costs about 2 ms.
    """
    if cache.directory is None:
        return None
    loaded = _RUNTIME.get(part)
    if loaded is not None:
        return loaded
    if not cache.usable("runtime"):
        return None
    key = hashlib.sha256(f"graphc runtime {part}|{_options()}".encode()).hexdigest()
    built = cache.load(key, "runtime")
    if built is None:
        built = _runtime_build(part)
        cache.store(key, built, "runtime")
        _COMPILED.add(part)
    engine, addresses = load(built.object_code, built.symbols, cache, built.exports)
    if part != "interpreter":
        for name, address in zip(built.exports, addresses, strict=True):
            llvm.add_symbol(name, address)
    _RUNTIME[part] = engine, built, addresses
    return _RUNTIME[part]


def prepare_runtime() -> float:
    """Compile graphc's runtime into the disk cache if it is not there yet (what the first use on a
    machine does); the seconds it took, 0 when the cache held it, or -1 when the cache is off."""
    import time

    cache = Cache.from_environment()
    start = time.perf_counter()
    with _LLVM_LOCK:
        compiled = len(_COMPILED)
        found = [runtime(part, cache) for part in RUNTIME_PARTS]
        fresh = len(_COMPILED) > compiled
    if not all(found):
        return -1.0
    return time.perf_counter() - start if fresh else 0.0


def compile_tape(
    graph: Graph, threads: int | None = None, keep: Sequence[bool] | None = None, cache: Cache | None = None
) -> Kernel:
    """Compile ``graph`` to a Kernel running its tape (:mod:`graphc.backends.llvm_tape`); ``keep``:
    ``graph.reachable()``, if the caller has it. With a usable disk cache the tape runs on the
    runtime's interpreter of every op, else on one compiled in this process for the tape's ops."""
    cache = Cache.from_environment() if cache is None else cache
    with _LLVM_LOCK:
        every = runtime("interpreter", cache)
    program = llvm_tape.Program.of(graph, keep, llvm_tape.EVERY_OPCODE if every else None)
    with _LLVM_LOCK:
        if every is None:
            engine, batch, point, ir = interpreter(program.opcodes)
        else:  # its exports are the entry and the point function
            engine, built, (batch, point) = every
            ir = built.ir
    arrays = len(graph.variables), len(graph.outputs)
    width = lanes()
    function = CompiledKernel(
        engine, batch, point, *arrays, program.scratch(width), threads, width, program=program
    )
    source = f"; a tape of {len(program.tape)} rows over {program.slots} slots, run by:\n{ir}"
    return Kernel(graph, function, backend="llvm", source=source)


def compile_graph(graph: Graph, threads: int | None = None, cache: Cache | None = None) -> Kernel:
    """Compile ``graph`` to a Kernel running JIT-compiled machine code.

    ``threads`` caps the threads a large batch is split across (default: the usable cores).
    The disk cache (``GRAPHC_CACHE_DIR``, off with ``GRAPHC_NO_CACHE=1``) skips LLVM entirely
    for a graph compiled before.
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise BackendError(f"threads must be a whole number >= 1, got {threads!r}")
    cache = Cache.from_environment() if cache is None else cache
    if len(graph) > TAPE_NODES:  # else it computes TAPE_NODES at most
        keep = graph.reachable()
        if computed_nodes(graph, keep) > TAPE_NODES:
            return compile_tape(graph, threads, keep, cache)
    with _LLVM_LOCK:
        options = _options()
    key = graph_key(graph, options) if cache.directory is not None else ""
    built = cache.load(key)
    with _LLVM_LOCK:
        if built is None:
            built = build(graph)
            cache.store(key, built)
        engine, (batch, point) = load(built.object_code, built.symbols, cache)
    arrays = len(graph.variables), len(graph.outputs)
    function = CompiledKernel(engine, batch, point, *arrays, built.scratch, threads, lanes())
    return Kernel(graph, function, backend="llvm", source=built.ir)
