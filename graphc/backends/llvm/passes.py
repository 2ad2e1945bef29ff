"""The passes a kernel's module gets: few for a small plan, none for a large one.

A small kernel calling graphc's vector functions at most :data:`INLINE_CALLS` times has them
linked in and inlined (no spilling of live vectors around calls); others call the library.
"""

from __future__ import annotations

import llvmlite.binding as llvm

from graphc.backends.llvm import vecmath
from graphc.backends.llvm.ir import kernel_text
from graphc.backends.llvm.plan import Plan
from graphc.backends.llvm.target import LOCK, fma, lanes, target_machine
from graphc.graph import Graph

INLINE_CALLS = 48  # a kernel calling graphc's vector functions at most this often has them inlined


def optimize(plan: Plan) -> llvm.ModuleRef:
    """The plan's module, verified and optimised (a few passes; a large plan, none: see below)."""
    width = lanes()
    source, own = kernel_text(plan, width)
    module = llvm.parse_assembly(source)
    if own and not plan.large and sum(own.values()) <= INLINE_CALLS:
        layout = str(target_machine().target_data)
        library = vecmath.module(list(own), {}, llvm.get_process_triple(), layout, fma(), width, inline=True)
        module.link_in(llvm.parse_assembly(library))
    module.verify()
    # A large plan's code is straight-line and already shared by the hash-consed graph: LLVM's
    # passes (even -O1's) cost much of its compile time and gain nothing measurable, so it gets none.
    passes = llvm.create_pass_builder(target_machine(), llvm.create_pipeline_tuning_options(speed_level=0))
    if plan.large:
        passes.getModulePassManager().run(module, passes)  # -O0's: the always-inliner alone
        return module
    # A small plan's code is written vectorised, its loops by hand: of -O2, what it needs is the
    # inlining of graphc's functions and the sharing of what inlined copies compute alike (sin and
    # cos of one value reduce it once). These four passes give -O2's speed in less compile time.
    # A plan calling none of graphc's functions gets none: the hash-consed graph left them nothing
    # to share.
    if not own:
        return module
    pipeline = llvm.create_new_module_pass_manager()
    pipeline.add_always_inliner_pass()
    pipeline.add_instruction_combine_pass()
    pipeline.add_new_gvn_pass()
    pipeline.add_dead_code_elimination_pass()
    pipeline.run(module, passes)
    return module


def optimized_ir(graph: Graph) -> str:
    """The optimised LLVM IR of a graph's kernel (what ``--emit llvm`` prints); a tensor graph's
    loop kernel (:mod:`graphc.backends.llvm.tensor`)."""
    if graph.tensor:
        from graphc.backends.llvm.tensor import tensor_ir

        return tensor_ir(graph)
    with LOCK:
        return str(optimize(Plan.of(graph)))
