"""A plan's LLVM IR, written as text: the batch kernel, the point function and the parts.

The kernel is ``int64 graphc_kernel(inputs, steps, outputs, start, stop, scratch)``: ``inputs``
and ``outputs`` are arrays of pointers to doubles, ``steps[k]`` is 0 for an input broadcast from
one value (then ``inputs[k]`` holds a vector's worth of copies of it) and 1 otherwise. One loop
over the points ``start..stop``, a vector of points per iteration (the host's width: 8 with
AVX-512, 4 with AVX), loads a vector of each input, computes every node as one vector SSA value
and stores each output, so memory is touched once per input and output, not once per node, and
every instruction computes all lanes at once. graphc writes the vector code itself
(:mod:`graphc.backends.llvm.text`) rather than hoping LLVM's loop vectoriser manages. Each op is
lowered by its entry in :data:`graphc.ops.OPS`; exp, log, tanh, sin, cos are graphc's own vector
functions (:mod:`graphc.backends.llvm.vecmath`), the other C library functions are applied lane
by lane. The last points of a range go through the tail's helpers (:mod:`graphc.backends.llvm.tail`).

``graphc_point(in, out, scratch)`` runs the kernel on one point given as plain vectors, so a
call from Python on scalars builds no pointer arrays (:mod:`graphc.backends.llvm.run` calls both).
A split plan's parts are functions ``void graphc_part<k>(scratch)`` the loop calls in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import llvmlite.binding as llvm

from graphc.backends.llvm import vecmath
from graphc.backends.llvm.plan import Plan
from graphc.backends.llvm.tail import HELPERS, helper_declarations, loop
from graphc.backends.llvm.target import target_machine
from graphc.backends.llvm.text import TextEmitter, aligned_stack, own_name
from graphc.ops import OPS

ENTRY = "graphc_kernel"
POINT = "graphc_point"


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


def _point_text(plan: Plan, width: int) -> str:
    """``graphc_point(double *in, double *out, double *scratch)``: the kernel on one point; the
    pointer tables it passes are built in ``scratch``, after the kernel's own part of it.

    Left unoptimised (``optnone``): two little loops and a call, as fast either way, and less code
    generation for every kernel."""
    inputs, outputs = len(plan.graph.variables), len(plan.graph.outputs)
    tables = Scratch.of(plan, width).point_tables
    fill = loop(
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
    results = loop(
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
    fill, drain = (own_name(name, width) for name in HELPERS)
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
    lines = [
        f'target triple = "{llvm.get_process_triple()}"',
        f'target datalayout = "{target_machine().target_data}"',
        *emitter.declarations(),
        *helper_declarations(width),
        *kernel,
        _point_text(plan, width),
        *parts.functions,
        f"attributes #0 = {{ noinline nounwind {aligned_stack(width)} }}",
        f"attributes #1 = {{ nounwind {aligned_stack(width)} }}",
        f"attributes #2 = {{ {vecmath.ATTRIBUTES} }}",
        "attributes #3 = { noinline nounwind optnone }",  # the point function's
        "!0 = !{i32 1}",
        "",
    ]
    own = {s: emitter.calls[s] for s in sorted(emitter.calls) if s in vecmath.FUNCTIONS}
    return "\n".join(lines), own
