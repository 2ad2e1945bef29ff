"""graphc's runtime, the disk cache, and the backend's entry: a graph to a Kernel.

The runtime is the code that depends on the machine but on no graph: graphc's vector functions
and the C library wrappers (``library``), the tail's helpers (``helpers``) and the interpreter of
every opcode (``interpreter``). With a usable disk cache (:mod:`graphc.backends.llvm.cache`) it is
compiled once per machine and loaded by every process; with the cache off, each process compiles
the functions and an interpreter of the ops it uses. Kernels are cached there too, keyed by the
graph and everything else that decides the machine code (:func:`_options`).

:func:`compile_graph` sends a graph computing more than :data:`~graphc.backends.llvm.plan.TAPE_NODES`
nodes to the tape (:func:`compile_tape`), else compiles it (or loads it from the cache); either
way the Kernel calls the machine code through :class:`~graphc.backends.llvm.run.CompiledKernel`.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

from graphc import ops
from graphc.backends.llvm import jit, passes, plan, tail, tape, vecmath
from graphc.backends.llvm.cache import Build, Cache, graph_key
from graphc.backends.llvm.ir import ENTRY, POINT
from graphc.backends.llvm.run import CompiledKernel
from graphc.backends.llvm.target import LOCK, host, lanes, target_machine
from graphc.backends.llvm.text import libm_name, own_name
from graphc.errors import BackendError
from graphc.graph import Graph
from graphc.kernel import Kernel

RUNTIME_PARTS = ("library", "helpers", "interpreter")
# the parts of the runtime loaded in this process (from whichever cache directory came first):
# their code lives as long as the process
_RUNTIME: dict[str, tuple[llvm.ExecutionEngine, Build, list[int]]] = {}
_COMPILED: set[str] = set()  # the parts this process compiled (the cache did not hold them)


@functools.cache
def _generator() -> str:
    """The host, LLVM, and a hash of the code that generates IR (a new lowering is a new key)."""
    digest = hashlib.sha256()
    for path in (Path(ops.__file__ or ""), *sorted(Path(__file__).parent.glob("*.py"))):
        digest.update(path.read_bytes())
    machine = f"{llvm.get_process_triple()}|{'|'.join(host())}"
    return f"{machine}|{llvm.llvm_version_info}|{llvmlite.__version__}|{digest.hexdigest()}"


def _options() -> str:
    """What, besides the graph, decides the machine code: the key's other half (the settings read
    from their modules when called: a test may change them)."""
    return f"{plan.PART_SIZE}|{lanes()}|{passes.INLINE_CALLS}|{_generator()}"


def _runtime_build(part: str) -> Build:
    """Compile one part of the runtime: ``library``, every one of graphc's vector functions and
    every C library wrapper an op calls; ``helpers``, the tail's helpers every kernel calls (a part
    of their own, so that a kernel calling no vector function does not load the library); or
    ``interpreter``, the tape interpreter of every opcode."""
    width = lanes()
    if part == "library":
        _, libm = jit.library_symbols(jit.external_symbols(jit.interpreter_module(tape.every_opcode())))
        module = jit.library_module(list(vecmath.FUNCTIONS), libm, helpers=False)  # no passes
        exports = [own_name(n, width) for n in vecmath.FUNCTIONS]
        exports += [libm_name(s, width) for s in libm]
    elif part == "helpers":
        module = jit.library_module([], {}, helpers=True)
        exports = [own_name(n, width) for n in tail.HELPERS]
    else:
        module = jit.interpreter_module(tape.every_opcode())
        exports = [tape.ENTRY, tape.POINT]
    return Build(target_machine().emit_object(module), jit.external_symbols(module), 0, str(module), exports)


def runtime(part: str, cache: Cache) -> tuple[llvm.ExecutionEngine, Build, list[int]] | None:
    """One part of graphc's runtime (see :data:`RUNTIME_PARTS`), loaded once per process from the
    disk cache's ``runtime/`` folder, where it is compiled and stored the first time on a machine:
    its engine, its Build, and the addresses of its exports; None when the cache is off or
    unusable. The library's and the helpers' functions are given to the JIT's symbol resolution.
    Call under LOCK.
    """
    if cache.directory is None:
        return None
    # the parts are built for the op table as it is (an op added at run time makes a new runtime)
    table = f"{part}|{','.join(tape.every_opcode())}"
    loaded = _RUNTIME.get(table)
    if loaded is not None:
        return loaded
    if not cache.usable("runtime"):
        return None
    key = hashlib.sha256(f"graphc runtime {table}|{_options()}".encode()).hexdigest()
    built = cache.load(key, "runtime")
    if built is None:
        built = _runtime_build(part)
        cache.store(key, built, "runtime")
        _COMPILED.add(part)
    engine, addresses = load(built.object_code, built.symbols, cache, built.exports)
    if part != "interpreter":
        for name, address in zip(built.exports, addresses, strict=True):
            llvm.add_symbol(name, address)
    _RUNTIME[table] = engine, built, addresses
    return _RUNTIME[table]


def prepare_runtime() -> float:
    """Compile graphc's runtime into the disk cache if it is not there yet (what the first use on a
    machine does); the seconds it took, 0 when the cache held it, or -1 when the cache is off."""
    cache = Cache.from_environment()
    start = time.perf_counter()
    with LOCK:
        compiled = len(_COMPILED)
        found = [runtime(part, cache) for part in RUNTIME_PARTS]
        fresh = len(_COMPILED) > compiled
    if not all(found):
        return -1.0
    return time.perf_counter() - start if fresh else 0.0


def resolve_symbols(symbols: Sequence[str], cache: Cache | None = None) -> None:
    """Make sure the JIT can link every symbol, taking graphc's library code from ``cache``'s
    runtime where it can (else compiling it); else a BackendError. Call under LOCK."""
    if cache is not None:
        own, libm = jit.missing(*jit.library_symbols(symbols))
        functions = [n for n in own if n not in tail.HELPERS]
        needed = (("helpers", len(functions) < len(own)), ("library", functions or libm))
        for part, needs in needed:  # the runtime's parts that hold them, loaded in turn
            if needs and runtime(part, cache) is None:
                break
    jit.resolve_symbols(symbols)  # anything the runtime lacked


def load(
    object_code: bytes,
    symbols: Sequence[str],
    cache: Cache | None = None,
    names: Sequence[str] = (ENTRY, POINT),
) -> tuple[llvm.ExecutionEngine, list[int]]:
    """An execution engine holding the machine code, and the addresses of its functions ``names``
    (the batch and point kernels'). Call under LOCK."""
    resolve_symbols(symbols, cache)
    return jit.engine_of(object_code, names)


def compile_tape(
    graph: Graph, threads: int | None = None, keep: Sequence[bool] | None = None, cache: Cache | None = None
) -> Kernel:
    """Compile ``graph`` to a Kernel running its tape (:mod:`graphc.backends.llvm.tape`); ``keep``:
    ``graph.reachable()``, if the caller has it. With a usable disk cache the tape runs on the
    runtime's interpreter of every op, else on one compiled in this process for the tape's ops."""
    cache = Cache.from_environment() if cache is None else cache
    with LOCK:
        every = runtime("interpreter", cache)
    program = tape.Program.of(graph, keep, tape.every_opcode() if every else None)
    with LOCK:
        if every is None:
            engine, batch, point, ir = jit.interpreter(program.opcodes)
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
    if len(graph) > plan.TAPE_NODES:  # else it computes TAPE_NODES at most
        keep = graph.reachable()
        if plan.computed_nodes(graph, keep) > plan.TAPE_NODES:
            return compile_tape(graph, threads, keep, cache)
    with LOCK:
        options = _options()
    key = graph_key(graph, options) if cache.directory is not None else ""
    built = cache.load(key)
    with LOCK:
        if built is None:
            built = jit.build(graph)
            cache.store(key, built)
        engine, (batch, point) = load(built.object_code, built.symbols, cache)
    arrays = len(graph.variables), len(graph.outputs)
    function = CompiledKernel(engine, batch, point, *arrays, built.scratch, threads, lanes())
    return Kernel(graph, function, backend="llvm", source=built.ir)
