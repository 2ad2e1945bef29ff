"""LLVM IR written as text, for the parts of a split graph (the bulk of a big kernel's code).

``llvmlite.ir`` builds and prints an instruction in about 15 µs of Python; a 100,000-node
gradient has half a million of them. :class:`TextBuilder` offers the few IRBuilder methods the
op lowerings use (``fadd``, ``fcmp_ordered``, ``select``...) with the same signatures, but its
values are the names of SSA registers and it appends one line of IR text per instruction,
about ten times faster. Each part becomes a small module of its own, linked into the kernel's.
"""

from __future__ import annotations

import struct
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


class TextBuilder:
    """The subset of ``llvmlite.ir.IRBuilder`` the op lowerings use, emitting IR text."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._count = 0

    def instruction(self, text: str) -> str:
        name = f"%v{self._count}"
        self._count += 1
        self.lines.append(f"  {name} = {text}")
        return name

    def fadd(self, a: str, b: str) -> str:
        return self.instruction(f"fadd double {a}, {b}")

    def fsub(self, a: str, b: str) -> str:
        return self.instruction(f"fsub double {a}, {b}")

    def fmul(self, a: str, b: str) -> str:
        return self.instruction(f"fmul double {a}, {b}")

    def fdiv(self, a: str, b: str) -> str:
        return self.instruction(f"fdiv double {a}, {b}")

    def fneg(self, a: str) -> str:
        return self.instruction(f"fneg double {a}")

    def fcmp_ordered(self, op: str, a: str, b: str) -> str:
        return self.instruction(f"fcmp {_ORDERED[op]} double {a}, {b}")

    def fcmp_unordered(self, op: str, a: str, b: str) -> str:
        return self.instruction(f"fcmp {_UNORDERED[op]} double {a}, {b}")

    def or_(self, a: str, b: str) -> str:
        return self.instruction(f"or i1 {a}, {b}")

    def select(self, condition: str, a: str, b: str) -> str:
        return self.instruction(f"select i1 {condition}, double {a}, double {b}")


class TextEmitter:
    """An op lowering's emitter (see :class:`graphc.ops.Emitter`) writing a module of part functions.

    Instructions go to the function being written; :meth:`define` closes it as
    ``void name(ptr scratch)`` and starts the next.
    """

    def __init__(self) -> None:
        self.builder = TextBuilder()
        self.arities: dict[str, int] = {}  # the C functions and intrinsics called
        self.functions: list[str] = []

    def call(self, symbol: str, *args: Any) -> str:
        self.arities[symbol] = len(args)
        operands = ", ".join(f"double {a}" for a in args)
        return self.builder.instruction(f"call double @{symbol}({operands})")

    def const(self, value: float) -> str:
        return double(value)

    def load(self, slot: int) -> str:
        pointer = self.builder.instruction(f"getelementptr inbounds double, ptr %scratch, i64 {slot}")
        return self.builder.instruction(f"load double, ptr {pointer}, align 8")

    def store(self, value: str, slot: int) -> None:
        pointer = self.builder.instruction(f"getelementptr inbounds double, ptr %scratch, i64 {slot}")
        self.builder.lines.append(f"  store double {value}, ptr {pointer}, align 8")

    def define(self, name: str) -> None:
        """Close the instructions written so far as the function ``void name(ptr scratch)``."""
        lines = self.builder.lines
        self.functions.append(
            "\n".join(
                [f"define void @{name}(ptr noalias %scratch) #0 {{", "entry:", *lines, "  ret void", "}"]
            )
        )
        self.builder = TextBuilder()

    def module(self, triple: str, data_layout: str) -> str:
        """The module text: the functions defined, and declarations of what they call."""
        declarations = [
            f"declare double @{symbol}({', '.join(['double'] * arity)})"
            for symbol, arity in sorted(self.arities.items())
        ]
        header = [f'target triple = "{triple}"', f'target datalayout = "{data_layout}"', *declarations]
        return "\n".join([*header, *self.functions, "attributes #0 = { noinline nounwind }", ""])
