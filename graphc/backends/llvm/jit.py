"""Machine code in the process: linking, execution engines, graphc's library of vector functions.

Every engine gets a target machine of its own and must outlive the code it holds (a kernel keeps
its engine). Before code is linked, every symbol it calls must resolve: LLVM aborts the whole
process on one it cannot. graphc's vector functions, the tail's helpers and the lane-by-lane
wrappers of C library functions are compiled into a library once per process (or loaded from the
runtime on disk: :mod:`graphc.backends.llvm.runtime`) and given to the JIT's symbol resolution;
the C library's own functions are found in the process. Call everything here under
:data:`graphc.backends.llvm.target.LOCK`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence

import llvmlite.binding as llvm
import numpy as np

from graphc.backends.llvm import tail, tape, vecmath
from graphc.backends.llvm.cache import Build
from graphc.backends.llvm.ir import Scratch
from graphc.backends.llvm.passes import optimize
from graphc.backends.llvm.plan import Plan
from graphc.backends.llvm.target import LOCK, fma, lanes, new_target_machine, target_machine
from graphc.backends.llvm.text import libm_applied, libm_name, own_name
from graphc.errors import BackendError
from graphc.graph import Graph


def external_symbols(module: llvm.ModuleRef) -> list[str]:
    """The C functions the optimised module calls (libm's), which the process must provide."""
    return sorted(f.name for f in module.functions if f.is_declaration and not f.name.startswith("llvm."))


def library_symbols(symbols: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """Which of ``symbols`` are graphc's own library code, vector functions or the tail's helpers
    (by their name without the width, ``graphc_sin``), and which its lane-by-lane wrappers of C
    library functions (symbol: arity)."""
    width = lanes()
    own_names = {own_name(name, width): name for name in (*vecmath.FUNCTIONS, *tail.HELPERS)}
    own = [own_names[s] for s in symbols if s in own_names]
    applied = (libm_applied(s, width) for s in symbols)
    arity = vecmath.libm_arity()
    libm = {f: arity[f] for f in applied if f is not None}
    return own, libm


def missing(own: Sequence[str], libm: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    """Those of the library's functions ``own`` and wrappers ``libm`` the JIT cannot link yet."""
    width = lanes()
    return (
        [n for n in own if not llvm.address_of_symbol(own_name(n, width))],
        {s: a for s, a in libm.items() if not llvm.address_of_symbol(libm_name(s, width))},
    )


# graphc's vector functions compiled so far: their code lives as long as the process
_LIBRARY: list[llvm.ExecutionEngine] = []


def library_module(own: list[str], libm: dict[str, int], helpers: bool) -> llvm.ModuleRef:
    """The verified module of graphc's vector functions ``own``, the wrappers ``libm`` and, if
    ``helpers``, the tail's helpers."""
    width, layout = lanes(), str(target_machine().target_data)
    module = llvm.parse_assembly(vecmath.module(own, libm, llvm.get_process_triple(), layout, fma(), width))
    if helpers:
        module.link_in(llvm.parse_assembly(tail.helpers_module(width)))
    module.verify()
    return module


def compile_library(own: list[str], libm: dict[str, int]) -> None:
    """Compile graphc's vector functions ``own`` and the wrappers ``libm`` not compiled yet (once
    per process) and give them to the JIT's symbol resolution."""
    own, libm = missing(own, libm)
    if not own and not libm:
        return
    width = lanes()
    functions = [n for n in own if n not in tail.HELPERS]
    _resolve([*libm, *(vecmath.LIBM[n] for n in functions if n in vecmath.GUARDED)])
    module = library_module(functions, libm, len(functions) < len(own))
    # No passes: the functions are written as straight-line vector code, and -O2 gives the same
    # machine code's speed and the same bits for more compile time.
    engine = llvm.create_mcjit_compiler(module, new_target_machine())
    engine.finalize_object()
    names = [own_name(n, width) for n in own] + [libm_name(s, width) for s in libm]
    for name in names:
        llvm.add_symbol(name, engine.get_function_address(name))
    _LIBRARY.append(engine)


def _from_process(symbols: Sequence[str]) -> None:
    """Give the JIT the addresses of those of ``symbols`` the process has loaded already: the C
    library's sin, atan2... (Python links libm), without searching for libm's file (ctypes.util
    imports subprocess and asks ldconfig: slow)."""
    try:
        process = ctypes.CDLL(None)
    except (OSError, TypeError):  # no handle on the process itself here (Windows)
        return
    for symbol in symbols:
        function = getattr(process, symbol, None)
        if function is not None:
            llvm.add_symbol(symbol, ctypes.cast(function, ctypes.c_void_p).value)


def resolve_symbols(symbols: Sequence[str]) -> None:
    """Make sure the JIT can link every symbol (compiling graphc's vector functions and finding
    the C library's); else a BackendError."""
    own, libm = library_symbols(symbols)
    try:
        compile_library(own, libm)
    finally:
        _resolve(symbols)


def _resolve(symbols: Sequence[str]) -> None:
    missing = [s for s in symbols if not llvm.address_of_symbol(s)]
    if missing:
        _from_process(missing)
        missing = [s for s in missing if not llvm.address_of_symbol(s)]
    if missing:
        import ctypes.util  # here, not at the top: it imports subprocess, rarely needed

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


def engine_of(object_code: bytes, names: Sequence[str]) -> tuple[llvm.ExecutionEngine, list[int]]:
    """An execution engine holding the machine code (its symbols resolved already), and the
    addresses of its functions ``names``."""
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


def math_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """One of graphc's own functions (``"graphc_exp"``...) applied to a float64 array, with the
    values it has in kernels: for measuring its accuracy."""
    width = lanes()
    with LOCK:
        compile_library([name], {})
        module = llvm.parse_assembly(vecmath.array_loop(name, width))
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


# the tape interpreters compiled so far, by the ops they run: their engine, entry and point function
_INTERPRETERS: dict[tuple[str, ...], tuple[llvm.ExecutionEngine, int, int, str]] = {}


def interpreter_module(opcodes: tuple[str, ...]) -> llvm.ModuleRef:
    """The interpreter of these ops, verified, with the passes it gets (the always-inliner)."""
    layout = str(target_machine().target_data)
    module = llvm.parse_assembly(tape.interpreter_text(opcodes, lanes(), llvm.get_process_triple(), layout))
    module.verify()
    # its code is already unrolled, straight-line per op: -O2's passes would find nothing to do
    passes = llvm.create_pass_builder(target_machine(), llvm.create_pipeline_tuning_options(speed_level=0))
    passes.getModulePassManager().run(module, passes)
    return module


def interpreter(opcodes: tuple[str, ...]) -> tuple[llvm.ExecutionEngine, int, int, str]:
    """The interpreter of tapes of these ops (compiled once per process, without passes): its engine,
    the addresses of its batch and point functions, and its optimised IR."""
    found = _INTERPRETERS.get(opcodes)
    if found is None:
        module = interpreter_module(opcodes)
        resolve_symbols(external_symbols(module))
        engine = llvm.create_mcjit_compiler(module, new_target_machine())
        engine.finalize_object()
        addresses = [engine.get_function_address(name) for name in (tape.ENTRY, tape.POINT)]
        if not all(addresses):
            raise BackendError(f"the compiled interpreter lacks {tape.ENTRY} or {tape.POINT}")
        found = engine, addresses[0], addresses[1], str(module)
        _INTERPRETERS[opcodes] = found
    return found
