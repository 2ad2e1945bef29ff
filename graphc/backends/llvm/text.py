"""LLVM IR written as text: every kernel's code, over vectors of points.

``llvmlite.ir`` builds and prints an instruction slowly for a large gradient's hundreds of
thousands of them. :class:`TextBuilder` offers the few IRBuilder methods the op lowerings use
(``fadd``, ``fcmp_ordered``, ``select``...) with the same signatures, but its values are the names
of SSA registers and it appends one line of IR text per instruction, many times faster. Every value is a vector of ``lanes`` doubles, one per point: the kernel
computes ``lanes`` points per instruction without relying on LLVM's loop vectoriser.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

_ORDERED = {
    "==": "oeq",
    "!=": "one",
    "<": "olt",
    "<=": "ole",
    ">": "ogt",
    ">=": "oge",
    "ord": "ord",
    "uno": "uno",
}
_UNORDERED = {
    "==": "ueq",
    "!=": "une",
    "<": "ult",
    "<=": "ule",
    ">": "ugt",
    ">=": "uge",
    "ord": "ord",
    "uno": "uno",
}


def double(value: float) -> str:
    """A double constant as LLVM writes it exactly: the hexadecimal of its IEEE bits."""
    return f"0x{struct.unpack('<Q', struct.pack('<d', value))[0]:016X}"


# --- names and types over vectors of ``lanes`` doubles (one place for every module that writes IR) --


def vector(kind: str, lanes: int) -> str:
    """The IR type of ``lanes`` values of the scalar type ``kind`` (the scalar itself for one lane)."""
    return kind if lanes == 1 else f"<{lanes} x {kind}>"


def splat(value: str, kind: str, lanes: int) -> str:
    """An operand: a register as it is, a literal (``0x3FF0...``, ``52``) in every lane."""
    if value.startswith("%") or lanes == 1:
        return value
    return f"splat ({kind} {value})"


def aligned_stack(lanes: int) -> str:
    """The attribute that makes a function align its stack frame to a vector of ``lanes`` doubles.

    The x86-64 ABI aligns the stack to 16 bytes only. A function spilling 64-byte vectors there
    (a large kernel's parts, with dozens of live values; a small one's, with inlined sin or tanh)
    put them at offsets that straddled two cache lines in three processes out of four, wherever the
    caller's stack happened to end, and such a process ran the kernel about twice as slowly.
    Aligned, every spill is one line, and the code uses aligned moves.
    """
    return f"alignstack={8 * lanes}"


def intrinsic_name(name: str, lanes: int) -> str:
    """The LLVM intrinsic ``llvm.<name>`` on ``lanes`` doubles (``llvm.fabs.v8f64``)."""
    return f"llvm.{name}.{'f64' if lanes == 1 else f'v{lanes}f64'}"


def own_name(name: str, lanes: int) -> str:
    """The symbol of graphc's function ``name`` (``graphc_sin``) on ``lanes`` points: ``graphc_sin_v8``."""
    return f"{name}_v{lanes}"


def libm_name(symbol: str, lanes: int) -> str:
    """The symbol applying the C library's ``symbol`` (``atan``) lane by lane: ``graphc_libm_atan_v8``."""
    return f"graphc_libm_{symbol}_v{lanes}"  # (libm_applied reads it back)


def libm_applied(name: str, lanes: int) -> str | None:
    """The C library function a :func:`libm_name` symbol applies (``atan``), or None for another."""
    prefix, suffix = "graphc_libm_", f"_v{lanes}"
    return name[len(prefix) : -len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else None


class TextBuilder:
    """The IRBuilder methods the op lowerings use, emitting IR text over vectors of ``lanes`` doubles
    (a literal operand, from :meth:`TextEmitter.const`, is already a splat)."""

    def __init__(self, lanes: int = 1, prefix: str = "%v") -> None:
        self.lines: list[str] = []
        self._count = 0
        self.prefix = prefix
        self.double = vector("double", lanes)
        self.boolean = vector("i1", lanes)

    def instruction(self, text: str) -> str:
        name = f"{self.prefix}{self._count}"
        self._count += 1
        self.lines.append(f"  {name} = {text}")
        return name

    def fadd(self, a: str, b: str) -> str:
        return self.instruction(f"fadd {self.double} {a}, {b}")

    def fsub(self, a: str, b: str) -> str:
        return self.instruction(f"fsub {self.double} {a}, {b}")

    def fmul(self, a: str, b: str) -> str:
        return self.instruction(f"fmul {self.double} {a}, {b}")

    def fdiv(self, a: str, b: str) -> str:
        return self.instruction(f"fdiv {self.double} {a}, {b}")

    def fneg(self, a: str) -> str:
        return self.instruction(f"fneg {self.double} {a}")

    def fcmp_ordered(self, op: str, a: str, b: str) -> str:
        return self.instruction(f"fcmp {_ORDERED[op]} {self.double} {a}, {b}")

    def fcmp_unordered(self, op: str, a: str, b: str) -> str:
        return self.instruction(f"fcmp {_UNORDERED[op]} {self.double} {a}, {b}")

    def or_(self, a: str, b: str) -> str:
        return self.instruction(f"or {self.boolean} {a}, {b}")

    def and_(self, a: str, b: str) -> str:
        return self.instruction(f"and {self.boolean} {a}, {b}")

    def select(self, condition: str, a: str, b: str) -> str:
        return self.instruction(f"select {self.boolean} {condition}, {self.double} {a}, {self.double} {b}")


def vector_symbol(symbol: str, lanes: int) -> str:
    """What a lowering's call of ``symbol`` calls on vectors: the intrinsic's vector form
    (``llvm.fabs.v8f64``), graphc's own vector function (``graphc_sin_v8``), or the C library's
    function applied lane by lane (``graphc_libm_atan_v8``)."""
    if symbol.startswith("llvm."):
        return intrinsic_name(symbol.removeprefix("llvm.").removesuffix(".f64"), lanes)
    if symbol.startswith("graphc_"):
        return own_name(symbol, lanes)
    return libm_name(symbol, lanes)


class TextEmitter:
    """An op lowering's emitter (see :class:`graphc.ops.Emitter`) writing IR text over vectors of
    ``lanes`` points, one vector per node.

    A value kept in scratch slot ``s`` is the ``lanes`` doubles at ``scratch + s * lanes``.
    Instructions go to the function being written; :meth:`define` closes it as
    ``void name(ptr scratch)`` and starts the next.
    """

    def __init__(self, lanes: int, prefix: str = "%v") -> None:
        self.lanes = lanes
        self.prefix = prefix
        self.builder = TextBuilder(lanes, prefix)
        self.called: dict[str, tuple[str, int]] = {}  # a lowering's symbol: (what is called, arity)
        self.calls: Counter[str] = Counter()  # a lowering's symbol: how often it is called
        self.functions: list[str] = []

    def call(self, symbol: str, *args: Any) -> str:
        target = vector_symbol(symbol, self.lanes)
        self.called[symbol] = (target, len(args))
        self.calls[symbol] += 1
        d = self.builder.double
        operands = ", ".join(f"{d} {a}" for a in args)
        return self.builder.instruction(f"call {d} @{target}({operands})")

    def const(self, value: float) -> str:
        return splat(double(value), "double", self.lanes)

    def _slot(self, slot: int) -> str:
        return self.builder.instruction(
            f"getelementptr inbounds double, ptr %scratch, i64 {slot * self.lanes}"
        )

    def load(self, slot: int) -> str:
        return self.builder.instruction(f"load {self.builder.double}, ptr {self._slot(slot)}, align 8")

    def store(self, value: str, slot: int) -> None:
        pointer = self._slot(slot)
        self.builder.lines.append(f"  store {self.builder.double} {value}, ptr {pointer}, align 8")

    def define(self, name: str) -> None:
        """Close the instructions written so far as the function ``void name(ptr scratch)``."""
        lines = self.builder.lines
        self.functions.append(
            "\n".join(
                [f"define void @{name}(ptr noalias %scratch) #0 {{", "entry:", *lines, "  ret void", "}"]
            )
        )
        self.builder = TextBuilder(self.lanes, self.prefix)

    def declarations(self) -> list[str]:
        """Declarations of the functions and intrinsics the lowerings called."""
        d = self.builder.double
        return [
            f"declare {d} @{target}({', '.join([d] * arity)}) #2"
            for target, arity in sorted(set(self.called.values()))
        ]
