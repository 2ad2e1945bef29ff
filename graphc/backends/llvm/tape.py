"""The LLVM backend's tape: a large graph run by a compiled interpreter instead of compiled itself.

Compiling a graph costs LLVM time per instruction (even with no passes and ``-O0`` code
generation), while a large graph's code gains little from being compiled: its values live in
memory (scratch) anyway, not in registers. So a large graph becomes a **tape**, one row
``(opcode, result, operand...)`` of int32 per node in creation order (:func:`row_words` words: room
for the most operands an op of :data:`graphc.ops.OPS` takes), and a small interpreter runs it: the interpreter of every op (:func:`every_opcode`), part of
graphc's runtime kept in the disk cache, or, with the cache off, one compiled in the process for
the set of ops the tape uses.

Each row computes :data:`BLOCK` vectors of points: the interpreter's dispatch (a ``switch`` on
the opcode) is paid once per row and block, the op's code is the same lowering (from
:data:`graphc.ops.OPS`) the compiled kernel uses, so the tape gives the compiled kernel's
results bit for bit. A block of at most one vector's points (a point, a tiny batch) computes the
first vector only, which makes a point call on a large tape about twice as fast. A value lives in a
*slot* of scratch, ``BLOCK`` vectors wide; the inputs occupy the first slots, the constants the
next (filled once per call), and a computed value takes a slot freed by a value whose last reader
came before it (a row may write over its own operand: each vector is read before it is written).

The interpreter's signature is the kernel's (:mod:`graphc.backends.llvm.run`) with the program,
a table of int64 words (:class:`Program`), before it; ``graphc_tape_point`` runs one point.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graphc.backends.llvm.text import TextBuilder, TextEmitter, aligned_stack, vector
from graphc.backends.llvm.vecmath import ATTRIBUTES
from graphc.graph import Graph
from graphc.ops import CONST, OPS, VAR

BLOCK = 4  # vectors of points per slot: the rows of the tape are dispatched once per BLOCK vectors
ENTRY = "graphc_tape"
POINT = "graphc_tape_point"


def operand_slots() -> int:
    """Operand slots per row (0 where unused): the most operands an op of the table takes."""
    return max(op.arity for op in OPS.values())


def row_words() -> int:
    """int32 words per row: opcode, result slot, operand slots."""
    return 2 + operand_slots()


def _specialised() -> dict[str, frozenset[float]]:
    return {name: op.specialised for name, op in OPS.items() if op.specialised}


def every_opcode() -> tuple[str, ...]:
    """Every opcode there is, read from the op table when called (an op added at run time is
    among them): the interpreter of them all runs any tape (graphc's runtime, compiled once per
    machine and table when the disk cache is on: see graphc.backends.llvm.runtime). A row of an op
    whose last operand is one of the constants its entry lists as ``specialised`` (``x**2`` is
    ``x*x``) has an opcode of its own (``"pow 2.0"``) whose code has the constant built in."""
    constants = (f"{name} {c!r}" for name, specialised in _specialised().items() for c in specialised)
    return tuple(sorted([*OPS, *constants]))


@dataclass
class Program:
    """A graph as a tape, and the table the interpreter reads it from."""

    opcodes: tuple[str, ...]  # the ops of the tape, by opcode (sorted names)
    tape: np.ndarray  # int32 (rows, row_words()): opcode, result slot, operand slots (0 where unused)
    constants: np.ndarray  # float64: the constants' values, in the slots after the inputs'
    results: np.ndarray  # int64: the slot of each output
    slots: int  # slots in all
    inputs: int
    words: np.ndarray  # int64: the header the interpreter reads (it points at the arrays above)

    @classmethod
    def of(
        cls, graph: Graph, keep: Sequence[bool] | None = None, opcodes: tuple[str, ...] | None = None
    ) -> Program:
        """The tape of the nodes the outputs depend on (``keep``, default ``graph.reachable()``),
        numbered for an interpreter of ``opcodes`` (default: the tape's own ops, sorted)."""
        ops, operands, value = graph.ops, graph.operands, graph.const_value
        specialised, width = _specialised(), row_words()
        padding = [(0,) * (width - 2 - arity) for arity in range(width - 1)]  # a row's unused operand words
        keep = graph.reachable() if keep is None else keep
        inputs = [graph.variable(name) for name in graph.variables]
        slot = [0] * len(ops)  # each kept node's slot
        for k, node in enumerate(inputs):
            slot[node] = k
        constants: list[float] = []
        computed: list[int] = []
        last = [-1] * len(ops)  # the last row reading each value
        names: dict[str, int] = {}  # a row's op name: its opcode, for now in order of appearance
        codes: list[int] = []  # each row's opcode
        for node in itertools.compress(range(len(ops)), keep):
            op = ops[node]
            if op == CONST:
                slot[node] = len(inputs) + len(constants)
                constants.append(value(node))  # type: ignore[arg-type]
            elif op != VAR:
                args = operands[node]
                if op in specialised and value(args[-1]) in specialised[op]:
                    op = f"{op} {value(args[-1])!r}"
                code = names.get(op)
                if code is None:
                    code = names[op] = len(names)
                codes.append(code)
                row = len(computed)
                for arg in args:
                    last[arg] = row
                computed.append(node)
        for out in graph.outputs:
            last[out] = len(computed)  # never freed
        fixed = len(inputs) + len(constants)
        free: list[int] = []
        size = fixed
        rows: list[int] = []
        for row, node in enumerate(computed):
            # operands whose last reader is this row free their slots first, in operand order: the
            # row may write over one of them (inputs' and constants' slots stay)
            args = operands[node]
            rows += (codes[row], 0)  # the result's slot, once the operands have freed theirs
            for arg in args:
                read = slot[arg]
                rows.append(read)
                if last[arg] == row:
                    last[arg] = -1  # x * x frees x once
                    if read >= fixed:
                        free.append(read)
            rows += padding[len(args)]
            if free:
                target = free.pop()
            else:
                target, size = size, size + 1
            slot[node] = rows[-width + 1] = target
        # by default, opcodes in sorted order of the names, so the same ops give the same interpreter
        table = tuple(sorted(names)) if opcodes is None else opcodes
        code_of = {name: code for code, name in enumerate(table)}
        renumber = np.zeros(max(len(names), 1), dtype=np.int32)
        for name, first in names.items():
            renumber[first] = code_of[name]
        tape = np.array(rows, dtype=np.int32).reshape(len(computed), width)
        tape[:, 0] = renumber[tape[:, 0]]
        results = np.array([slot[out] for out in graph.outputs], dtype=np.int64)
        constant_values = np.array(constants, dtype=np.float64)
        words = np.array(
            [
                len(inputs),
                len(graph.outputs),
                len(computed),
                tape.ctypes.data,
                results.ctypes.data,
                len(constants),
                constant_values.ctypes.data,
                len(inputs),
                size,
            ],
            dtype=np.int64,
        )
        return cls(table, tape, constant_values, results, size, len(inputs), words)

    def scratch(self, width: int) -> int:
        """Doubles of scratch per call: the slots, then the point function's tables."""
        return self.slots * BLOCK * width + 2 * self.inputs + len(self.results)


def _run_text(opcodes: tuple[str, ...], width: int) -> tuple[str, TextEmitter]:
    """``graphc_tape_run(tape, rows, slots, all)``: each row's op on BLOCK vectors, or on the first
    vector only when ``all`` is false (a block of at most one vector's points: a point call)."""
    d = vector("double", width)
    span = BLOCK * width
    lines = [
        "define internal void @graphc_tape_run(ptr %tape, i64 %rows, ptr %slots, i1 %all) #1 {",
        "entry:",
        "  %any = icmp sgt i64 %rows, 0",
        "  br i1 %any, label %dispatch, label %done",
        "dispatch:",
        "  %pc = phi i64 [0, %entry], [%pc.next, %next]",
        f"  %row = getelementptr inbounds [{row_words()} x i32], ptr %tape, i64 %pc",
    ]
    operands = [f"a{k}" for k in range(operand_slots())]
    for k, name in enumerate(("op", "r", *operands)):
        lines += [
            f"  %{name}.at = getelementptr inbounds i32, ptr %row, i64 {k}",
            f"  %{name}.32 = load i32, ptr %{name}.at, align 4",
        ]
        if name != "op":
            lines += [
                f"  %{name}.64 = sext i32 %{name}.32 to i64",
                f"  %{name}.offset = mul i64 %{name}.64, {span}",
                f"  %{name}.p = getelementptr inbounds double, ptr %slots, i64 %{name}.offset",
            ]
    cases = " ".join(f"i32 {code}, label %op{code}" for code in range(len(opcodes)))
    lines.append(f"  switch i32 %op.32, label %next [ {cases} ]")
    emitter = TextEmitter(width)
    for code, name in enumerate(opcodes):
        op, _, constant = name.partition(" ")
        lines.append(f"op{code}:")
        for k in range(BLOCK):  # unrolled: the interpreter needs no optimising passes
            if k == 1:  # one predictable branch per row spares a point call 3 vectors of work
                lines += [f"  br i1 %all, label %op{code}.rest, label %next", f"op{code}.rest:"]
            p = f"%op{code}.{k}"
            emitter.builder = TextBuilder(width, f"{p}.v")
            values = []
            arity = OPS[op].arity
            for operand in operands[:arity]:
                if constant and operand == operands[arity - 1]:  # a specialised opcode's constant
                    values.append(emitter.const(float(constant)))
                    continue
                lines += [
                    f"  {p}.{operand}.at = getelementptr inbounds double, ptr %{operand}.p, i64 {k * width}",
                    f"  {p}.{operand} = load {d}, ptr {p}.{operand}.at, align 8",
                ]
                values.append(f"{p}.{operand}")
            value = OPS[op].llvm(emitter, tuple(values))
            lines += [
                *emitter.builder.lines,
                f"  {p}.r.at = getelementptr inbounds double, ptr %r.p, i64 {k * width}",
                f"  store {d} {value}, ptr {p}.r.at, align 8",
            ]
        lines.append("  br label %next")
    lines += [
        "next:",
        "  %pc.next = add i64 %pc, 1",
        "  %more = icmp slt i64 %pc.next, %rows",
        "  br i1 %more, label %dispatch, label %done",
        "done:",
        "  ret void",
        "}",
    ]
    return "\n".join(lines), emitter


def _header(names: tuple[str, ...]) -> list[str]:
    """Lines loading the program's header words into ``%<name>`` (``-`` skips a word)."""
    lines = []
    for k, name in enumerate(names):
        if name == "-":
            continue
        lines += [
            f"  %{name}.at = getelementptr inbounds i64, ptr %program, i64 {k}",
            f"  %{name}.word = load i64, ptr %{name}.at, align 8",
        ]
        if name in ("tape", "results", "constants"):
            lines.append(f"  %{name} = inttoptr i64 %{name}.word to ptr")
        else:
            lines.append(f"  %{name} = add i64 %{name}.word, 0")
    return lines


def _entry_text(width: int) -> str:
    """``graphc_tape(program, inputs, steps, outputs, start, stop, scratch)``: fill the constants'
    slots, then per block of points copy the inputs into their slots (the last point repeated
    past the end of the range), run the tape, copy the results out."""
    span = BLOCK * width
    lines = [
        (
            f"define i64 @{ENTRY}(ptr %program, ptr %inputs, ptr %steps, ptr %outputs, i64 %start, "
            "i64 %stop, ptr %scratch) #1 {"
        ),
        "entry:",
        *_header(
            ("inputs.n", "outputs.n", "rows", "tape", "results", "constants.n", "constants", "first", "-")
        ),
        "  br label %c.head",
        "c.head:",
        "  %c = phi i64 [0, %entry], [%c.next, %c.body]",
        "  %c.more = icmp slt i64 %c, %constants.n",
        "  br i1 %c.more, label %c.body, label %blocks",
        "c.body:",
        "  %c.value.at = getelementptr inbounds double, ptr %constants, i64 %c",
        "  %c.value = load double, ptr %c.value.at, align 8",
        f"  %c.vector = insertelement <{span} x double> poison, double %c.value, i64 0",
        (
            f"  %c.splat = shufflevector <{span} x double> %c.vector, <{span} x double> poison, "
            f"<{span} x i32> zeroinitializer"
        ),
        "  %c.slot = add i64 %first, %c",
        f"  %c.offset = mul i64 %c.slot, {span}",
        "  %c.to = getelementptr inbounds double, ptr %scratch, i64 %c.offset",
        f"  store <{span} x double> %c.splat, ptr %c.to, align 8",
        "  %c.next = add i64 %c, 1",
        "  br label %c.head",
        "blocks:",
        "  %any = icmp slt i64 %start, %stop",
        "  br i1 %any, label %block, label %done",
        "block:",
        "  %i = phi i64 [%start, %blocks], [%i.next, %o.done]",
        "  %left = sub i64 %stop, %i",
        f"  %short = icmp slt i64 %left, {span}",
        f"  %count = select i1 %short, i64 %left, i64 {span}",
        "  %last = sub i64 %count, 1",
        "  %full = xor i1 %short, true",  # the block is whole (no point repeated)
        "  br label %k.head",
        "k.head:",
        "  %k = phi i64 [0, %block], [%k.next, %j.done]",
        "  %k.more = icmp slt i64 %k, %inputs.n",
        "  br i1 %k.more, label %k.body, label %run",
        "k.body:",
        "  %in.at = getelementptr inbounds ptr, ptr %inputs, i64 %k",
        "  %in = load ptr, ptr %in.at, align 8",
        "  %step.at = getelementptr inbounds i64, ptr %steps, i64 %k",
        "  %step = load i64, ptr %step.at, align 8",
        f"  %k.offset = mul i64 %k, {span}",
        "  %k.slot = getelementptr inbounds double, ptr %scratch, i64 %k.offset",
        "  %contiguous = icmp eq i64 %step, 1",
        "  %whole = and i1 %contiguous, %full",
        "  br i1 %whole, label %k.vector, label %j.head",
        "k.vector:",  # a whole block of a contiguous input: one vector copy
        "  %k.from = getelementptr inbounds double, ptr %in, i64 %i",
        f"  %k.values = load <{span} x double>, ptr %k.from, align 8",
        f"  store <{span} x double> %k.values, ptr %k.slot, align 8",
        "  br label %j.done",
        "j.head:",
        "  %j = phi i64 [0, %k.body], [%j.next, %j.body]",
        f"  %j.more = icmp slt i64 %j, {span}",
        "  br i1 %j.more, label %j.body, label %j.done",
        "j.body:",
        "  %j.past = icmp sgt i64 %j, %last",
        "  %j.point = select i1 %j.past, i64 %last, i64 %j",
        "  %j.at = add i64 %i, %j.point",
        "  %j.offset = mul i64 %j.at, %step",
        "  %j.from = getelementptr inbounds double, ptr %in, i64 %j.offset",
        "  %j.value = load double, ptr %j.from, align 8",
        "  %j.to = getelementptr inbounds double, ptr %k.slot, i64 %j",
        "  store double %j.value, ptr %j.to, align 8",
        "  %j.next = add i64 %j, 1",
        "  br label %j.head",
        "j.done:",
        "  %k.next = add i64 %k, 1",
        "  br label %k.head",
        "run:",
        f"  %all = icmp sgt i64 %count, {width}",
        "  call void @graphc_tape_run(ptr %tape, i64 %rows, ptr %scratch, i1 %all)",
        "  br label %o.head",
        "o.head:",
        "  %o = phi i64 [0, %run], [%o.next, %p.done]",
        "  %o.more = icmp slt i64 %o, %outputs.n",
        "  br i1 %o.more, label %o.body, label %o.done",
        "o.body:",
        "  %out.at = getelementptr inbounds ptr, ptr %outputs, i64 %o",
        "  %out = load ptr, ptr %out.at, align 8",
        "  %out.from = getelementptr inbounds double, ptr %out, i64 %i",
        "  %o.slot.at = getelementptr inbounds i64, ptr %results, i64 %o",
        "  %o.slot = load i64, ptr %o.slot.at, align 8",
        f"  %o.offset = mul i64 %o.slot, {span}",
        "  %o.values = getelementptr inbounds double, ptr %scratch, i64 %o.offset",
        "  br i1 %short, label %p.head, label %o.vector",
        "o.vector:",
        f"  %o.block = load <{span} x double>, ptr %o.values, align 8",
        f"  store <{span} x double> %o.block, ptr %out.from, align 8",
        "  br label %p.done",
        "p.head:",
        "  %p = phi i64 [0, %o.body], [%p.next, %p.body]",
        "  %p.more = icmp slt i64 %p, %count",
        "  br i1 %p.more, label %p.body, label %p.done",
        "p.body:",
        "  %p.from = getelementptr inbounds double, ptr %o.values, i64 %p",
        "  %p.value = load double, ptr %p.from, align 8",
        "  %p.to = getelementptr inbounds double, ptr %out.from, i64 %p",
        "  store double %p.value, ptr %p.to, align 8",
        "  %p.next = add i64 %p, 1",
        "  br label %p.head",
        "p.done:",
        "  %o.next = add i64 %o, 1",
        "  br label %o.head",
        "o.done:",
        f"  %i.next = add i64 %i, {span}",
        "  %i.more = icmp slt i64 %i.next, %stop",
        "  br i1 %i.more, label %block, label %done",
        "done:",
        "  ret i64 0",
        "}",
    ]
    return "\n".join(lines)


def _point_text(width: int) -> str:
    """``graphc_tape_point(program, in, out, scratch)``: the tape on one point given as plain
    vectors; the tables it passes are built in ``scratch`` after the slots."""
    span = BLOCK * width
    return "\n".join(
        [
            f"define i64 @{POINT}(ptr %program, ptr %in, ptr %out, ptr %scratch) #1 {{",
            "entry:",
            *_header(("inputs.n", "outputs.n", "-", "-", "-", "-", "-", "-", "slots")),
            f"  %tables.offset = mul i64 %slots, {span}",
            "  %tables = getelementptr inbounds double, ptr %scratch, i64 %tables.offset",
            "  %steps = getelementptr inbounds i64, ptr %tables, i64 %inputs.n",
            "  %two = add i64 %inputs.n, %inputs.n",
            "  %results = getelementptr inbounds ptr, ptr %tables, i64 %two",
            "  br label %k.head",
            "k.head:",
            "  %k = phi i64 [0, %entry], [%k.next, %k.body]",
            "  %k.more = icmp slt i64 %k, %inputs.n",
            "  br i1 %k.more, label %k.body, label %j.head",
            "k.body:",
            "  %value = getelementptr inbounds double, ptr %in, i64 %k",
            "  %pointer = getelementptr inbounds ptr, ptr %tables, i64 %k",
            "  store ptr %value, ptr %pointer, align 8",
            "  %step = getelementptr inbounds i64, ptr %steps, i64 %k",
            "  store i64 0, ptr %step, align 8",
            "  %k.next = add i64 %k, 1",
            "  br label %k.head",
            "j.head:",
            "  %j = phi i64 [0, %k.head], [%j.next, %j.body]",
            "  %j.more = icmp slt i64 %j, %outputs.n",
            "  br i1 %j.more, label %j.body, label %call",
            "j.body:",
            "  %result = getelementptr inbounds double, ptr %out, i64 %j",
            "  %slot = getelementptr inbounds ptr, ptr %results, i64 %j",
            "  store ptr %result, ptr %slot, align 8",
            "  %j.next = add i64 %j, 1",
            "  br label %j.head",
            "call:",
            (
                f"  %r = call i64 @{ENTRY}(ptr %program, ptr %tables, ptr %steps, ptr %results, i64 0, i64 1, "
                "ptr %scratch)"
            ),
            "  ret i64 %r",
            "}",
        ]
    )


def interpreter_text(opcodes: tuple[str, ...], width: int, triple: str, layout: str) -> str:
    """The interpreter's module for a tape of these ops."""
    run, emitter = _run_text(opcodes, width)
    text = [
        f'target triple = "{triple}"',
        f'target datalayout = "{layout}"',
        *emitter.declarations(),
        run,
        _entry_text(width),
        _point_text(width),
        f"attributes #1 = {{ nounwind {aligned_stack(width)} }}",
        f"attributes #2 = {{ {ATTRIBUTES} }}",
        "",
    ]
    return "\n".join(text)
