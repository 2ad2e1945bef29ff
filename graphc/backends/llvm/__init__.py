"""The LLVM backend: a graph as one LLVM function over a batch, JIT-compiled in-process.

The modules follow the pipeline: :mod:`~graphc.backends.llvm.plan` (which nodes, split into
parts) → :mod:`~graphc.backends.llvm.ir` (the kernel's IR, written as text with
:mod:`~graphc.backends.llvm.text`; the tail's helpers in :mod:`~graphc.backends.llvm.tail`) →
:mod:`~graphc.backends.llvm.passes` → :mod:`~graphc.backends.llvm.jit` (linking, engines, the
library of vector functions, for the host of :mod:`~graphc.backends.llvm.target`) →
:mod:`~graphc.backends.llvm.runtime` (graphc's runtime and the disk cache of
:mod:`~graphc.backends.llvm.cache`, the choice between compiled code and the tape) →
:mod:`~graphc.backends.llvm.run` (calling the machine code on a batch, on several threads).
:mod:`~graphc.backends.llvm.vecmath` holds graphc's vector exp, log, tanh, sin and cos, and
:mod:`~graphc.backends.llvm.tape` the interpreter that runs a large graph instead of compiling it.
A tensor graph is scalarised and compiled per concrete shape by :mod:`~graphc.backends.llvm.tensor`.
Every op is lowered by its entry in :data:`graphc.ops.OPS`: no module here names an op.
"""

from __future__ import annotations

from graphc.backends.llvm.jit import math_function
from graphc.backends.llvm.passes import optimized_ir
from graphc.backends.llvm.runtime import compile_graph, compile_tape, prepare_runtime
from graphc.backends.llvm.target import lanes

__all__ = ["compile_graph", "compile_tape", "lanes", "math_function", "optimized_ir", "prepare_runtime"]
