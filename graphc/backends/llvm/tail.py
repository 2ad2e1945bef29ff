"""The tail's helpers: the last points of a range, fewer than a vector, through a small buffer.

``graphc_fill`` copies those points into a buffer in ``scratch`` (the missing lanes repeating the
last point) and ``graphc_drain`` copies their results out. They depend on the vector width alone,
so they are library code, compiled once (a part of graphc's runtime, or once per process with the
cache off) and called by every kernel, not compiled into each.
"""

from __future__ import annotations

import llvmlite.binding as llvm

from graphc.backends.llvm.target import target_machine
from graphc.backends.llvm.text import own_name


def loop(label: str, count: str, body: list[str], after: str) -> list[str]:
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
        declared.append(f"declare {result} @{own_name(name, width)}{arguments}")
    return declared


def helpers_module(width: int) -> str:
    """The module defining the tail's helpers for vectors of ``width`` doubles (see :func:`_helpers`).

    Compiled once (a part of the runtime of their own, or once per process with the cache off),
    not into every kernel, where they were a large share of a small kernel's code generation.
    """
    return "\n".join(
        [
            f'target triple = "{llvm.get_process_triple()}"',
            f'target datalayout = "{target_machine().target_data}"',
            _helpers(width),
            # they run once a range: unoptimised, they cost no compile time (optimised, LLVM
            # unrolls and vectorises their little loops into hundreds of instructions)
            "attributes #3 = { noinline nounwind optnone }",
            "",
        ]
    )


def _helpers(width: int) -> str:
    """``graphc_fill``: the last points of a range (fewer than a vector) copied into a buffer, the
    missing lanes repeating the last point; ``graphc_drain``: the results of those points copied out.
    Their symbols carry the width (``graphc_fill_v8``)."""
    fill = loop(
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
    fill_inputs = loop(
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
    tables_in = loop(
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
    tables_out = loop(
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
    drain = loop(
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
    drain_outputs = loop(
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
                f"define void @{own_name('graphc_fill', width)}(ptr %inputs, ptr %steps, i64 %n, i64 %i, "
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
                f"define void @{own_name('graphc_drain', width)}(ptr %outputs, i64 %n, i64 %i, "
                "i64 %left, ptr %from.all) #3 {"
            ),
            "j.enter:",
            *drain_outputs,
            "done:",
            "  ret void",
            "}",
        ]
    )
