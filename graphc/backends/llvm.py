"""The LLVM backend: a graph as one LLVM function over a batch, JIT-compiled in-process.

The kernel is ``int64 graphc_kernel(inputs, steps, outputs, start, stop, scratch)``: ``inputs``
and ``outputs`` are arrays of pointers to doubles, ``steps[k]`` is 0 for an input broadcast from
one value and 1 otherwise. One loop over the points ``start..stop`` loads each input, computes
every node as an SSA value (each op lowered by its entry in :data:`graphc.ops.OPS`; exp, log,
tanh, sin, cos by graphc's own inlined functions, :mod:`graphc.backends.llvm_math`, so the loop
vectorises) and stores each output, so memory is touched once per input and output, not once per
node. It returns nonzero if a sin or cos argument was beyond the inlined code's range: the range
is then recomputed by the exact kernel (see :func:`compile_graph`).

``graphc_point(in, out, scratch)`` runs the kernel on one point given as plain vectors, so a
call from Python on scalars builds no pointer arrays (:mod:`graphc.backends.llvm_run` calls both).

LLVM's code generation is superlinear on one huge basic block, so a large graph is split into
parts of :data:`PART_SIZE` nodes, each its own (never inlined) function, written as IR text
(:mod:`graphc.backends.llvm_text`); the values a later part needs travel through ``scratch``, a
per-point buffer whose slots are reused once their value is dead. Compile time then grows
linearly with the graph.

The machine code can be cached on disk (:mod:`graphc.backends.llvm_cache`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import math
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llvmlite
import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from graphc import ops
from graphc.backends import llvm_math, llvm_text
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
SCOPED_OUTPUTS = 32  # outputs told apart from each other by alias scopes (metadata grows as n²)
PART_SIZE = 2000  # nodes per function of a split graph: small enough for LLVM's code generation
ENTRY = "graphc_kernel"
POINT = "graphc_point"

_DOUBLE = ir.DoubleType()
_I64 = ir.IntType(64)
_PTR = ir.PointerType()


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
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=level,
        codemodel="jitdefault",
    )


class _Emitter:
    """What an op's lowering gets (see :class:`graphc.ops.Emitter`), building with ``llvmlite.ir``."""

    def __init__(self, module: ir.Module, builder: ir.IRBuilder, scratch: Any, guard: bool = False) -> None:
        self.module = module
        self.builder = builder
        self.scratch = scratch
        self.guard = guard  # note where an inlined sin or cos is not exact (see build_module)
        self.far: list[Any] = []  # i1 values: true where the point needs the C library

    def call(self, symbol: str, *args: Any) -> Any:
        function = self.module.globals.get(symbol)
        if function is None:
            function = ir.Function(self.module, ir.FunctionType(_DOUBLE, [_DOUBLE] * len(args)), symbol)
        if self.guard and symbol in llvm_math.GUARDED:  # llvm_math.beyond, built with llvmlite.ir
            b, size = self.builder, self.call("llvm.fabs.f64", *args)
            above = b.fcmp_ordered(">", size, self.const(llvm_math.TRIG_BOUND))
            self.far.append(b.and_(above, b.fcmp_ordered("<", size, self.const(math.inf))))
        return self.builder.call(function, args)

    def const(self, value: float) -> Any:
        return ir.Constant(_DOUBLE, value)

    def _slot(self, slot: int) -> Any:
        return self.builder.gep(self.scratch, [ir.Constant(_I64, slot)], source_etype=_DOUBLE)

    def load(self, slot: int) -> Any:
        return self.builder.load(self._slot(slot), typ=_DOUBLE)

    def store(self, value: Any, slot: int) -> None:
        self.builder.store(value, self._slot(slot))


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
        """Whether to compile fast (``-O1`` passes, ``-O0`` code generation) rather than well.

        A split graph's parts are straight-line code the hash-consed graph has already shared:
        ``-O2`` costs four times ``-O1`` on them, ``-O3`` code generation four times ``-O0``, for
        code about 7% faster. With hundreds of arrays (a Hessian), the register allocator at
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


class _Values:
    """The SSA value of each node inside one function; values from elsewhere come from scratch."""

    def __init__(self, plan: Plan, emitter: _Emitter | TextEmitter, known: dict[int, Any] | None = None):
        self.plan = plan
        self.emitter = emitter
        self.known: dict[int, Any] = dict(known or {})

    def __getitem__(self, node: int) -> Any:
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


def parts_module(plan: Plan) -> str:
    """The IR text of a module defining each part of a split graph as ``void graphc_partN(ptr scratch)``.

    Parts are never inlined (inlined back, they would be one huge block again).
    """
    emitter = TextEmitter()
    for index, part in enumerate(plan.parts):
        _Values(plan, emitter).compute(part, spill=True)
        emitter.define(part_name(index))
    return emitter.module(llvm.get_process_triple(), str(target_machine().target_data))


def build_module(plan: Plan, guard: bool = False) -> ir.Module:
    """The LLVM module of a plan: the kernel, and one function per part when the graph is split.

    The kernel returns 0, or with ``guard``, nonzero if an (inlined, vectorisable) sin or cos met
    an argument beyond :data:`llvm_math.TRIG_BOUND` at some point of the range: the caller then
    recomputes the range with the exact kernel (see :func:`compile_graph`).
    """
    graph = plan.graph
    module = ir.Module(name="graphc")
    module.triple = llvm.get_process_triple()
    module.data_layout = str(target_machine().target_data)
    split = len(plan.parts) > 1
    part_type = ir.FunctionType(ir.VoidType(), [_PTR])
    parts = [ir.Function(module, part_type, part_name(i)) for i in range(len(plan.parts))] if split else []

    kernel_type = ir.FunctionType(_I64, [_PTR, _PTR, _PTR, _I64, _I64, _PTR])
    kernel = ir.Function(module, kernel_type, ENTRY)
    kernel.attributes.add("nounwind")
    inputs, steps, outputs, start, stop, scratch = kernel.args
    for argument, name in zip(kernel.args, ("inputs", "steps", "outputs", "start", "stop", "scratch")):
        argument.name = name
    for pointer in (inputs, steps, outputs, scratch):
        pointer.add_attribute("noalias")
    entry, loop, done = (kernel.append_basic_block(name) for name in ("entry", "loop", "done"))

    b = ir.IRBuilder(entry)  # the arrays' addresses and steps are read once, before the loop

    def element(array: Any, index: int) -> Any:
        return b.gep(array, [ir.Constant(_I64, index)], source_etype=_PTR)

    variables = [graph.variable(name) for name in graph.variables]
    in_ptrs = [b.load(element(inputs, k), typ=_PTR) for k in range(len(variables))]
    in_steps = [
        b.load(b.gep(steps, [ir.Constant(_I64, k)], source_etype=_I64), typ=_I64)
        for k in range(len(variables))
    ]
    out_ptrs = [b.load(element(outputs, j), typ=_PTR) for j in range(len(graph.outputs))]
    b.cbranch(b.icmp_signed("<", start, stop), loop, done)

    b.position_at_end(loop)
    i = b.phi(_I64, "i")
    i.add_incoming(start, entry)
    far = b.phi(_I64, "far")  # an or-reduction: vectorises
    far.add_incoming(ir.Constant(_I64, 0), entry)
    emitter = _Emitter(module, b, scratch, guard)
    scopes = _Scopes(module, len(graph.outputs))
    loaded = {}
    for node, pointer, step in zip(variables, in_ptrs, in_steps, strict=True):
        loaded[node] = b.load(b.gep(pointer, [b.mul(i, step)], source_etype=_DOUBLE), typ=_DOUBLE)
        scopes.tag(loaded[node], None)
    values = _Values(plan, emitter, loaded)
    if split:
        for node in variables:
            if node in plan.slots:
                emitter.store(loaded[node], plan.slots[node])
        for function in parts:
            b.call(function, [scratch])
    else:
        values.compute(plan.parts[0], spill=False)
    for j, (out, pointer) in enumerate(zip(graph.outputs, out_ptrs, strict=True)):
        scopes.tag(b.store(values[out], b.gep(pointer, [i], source_etype=_DOUBLE)), j)
    far_here = functools.reduce(b.or_, emitter.far, ir.Constant(ir.IntType(1), 0))
    far_next = b.or_(far, b.zext(far_here, _I64))
    far.add_incoming(far_next, loop)
    following = b.add(i, ir.Constant(_I64, 1))
    i.add_incoming(following, loop)
    b.cbranch(b.icmp_signed("<", following, stop), loop, done)

    b.position_at_end(done)
    result = b.phi(_I64, "any_far")
    result.add_incoming(ir.Constant(_I64, 0), entry)
    result.add_incoming(far_next, loop)
    b.ret(result)
    _point_function(module, kernel, len(variables), len(graph.outputs))
    return module


class _Scopes:
    """Alias scopes telling LLVM that output arrays overlap neither the inputs nor each other.

    The runner guarantees it (outputs are freshly allocated); without it, the loop vectoriser
    needs a run-time overlap check per pair of arrays and gives up on a gradient's many outputs.
    Telling outputs apart takes metadata quadratic in their number, so beyond
    :data:`SCOPED_OUTPUTS` outputs share one scope (still apart from the inputs).
    """

    def __init__(self, module: ir.Module, outputs: int) -> None:
        domain = module.add_metadata([ir.MetaDataString(module, "graphc arrays")])
        self.inputs = module.add_metadata([ir.MetaDataString(module, "graphc inputs"), domain])
        count = outputs if outputs <= SCOPED_OUTPUTS else 1
        self.outputs = [
            module.add_metadata([ir.MetaDataString(module, f"graphc output {j}"), domain])
            for j in range(count)
        ]
        self.module = module
        self._lists: dict[int | None, tuple[Any, Any]] = {}

    def tag(self, instruction: Any, output: int | None) -> None:
        """Mark a load from an input (``output`` None) or a store to output ``output``."""
        key = None if output is None else min(output, len(self.outputs) - 1)
        lists = self._lists.get(key)
        if lists is None:
            own = self.inputs if key is None else self.outputs[key]
            others = [s for s in [self.inputs, *self.outputs] if s is not own]
            lists = (self.module.add_metadata([own]), self.module.add_metadata(others))
            self._lists[key] = lists
        instruction.set_metadata("alias.scope", lists[0])
        instruction.set_metadata("noalias", lists[1])


def _point_function(module: ir.Module, kernel: ir.Function, inputs: int, outputs: int) -> None:
    """``graphc_point(double *in, double *out, double *scratch)``: the kernel on one point.

    Arguments and results are plain vectors, so a call from Python builds no pointer arrays.
    """
    function = ir.Function(module, ir.FunctionType(_I64, [_PTR, _PTR, _PTR]), POINT)
    function.attributes.add("nounwind")
    values, results, scratch = function.args
    b = ir.IRBuilder(function.append_basic_block("entry"))
    in_ptrs = b.alloca(_PTR, size=max(inputs, 1))
    steps = b.alloca(_I64, size=max(inputs, 1))
    out_ptrs = b.alloca(_PTR, size=max(outputs, 1))
    for k in range(inputs):
        index = [ir.Constant(_I64, k)]
        b.store(b.gep(values, index, source_etype=_DOUBLE), b.gep(in_ptrs, index, source_etype=_PTR))
        b.store(ir.Constant(_I64, 0), b.gep(steps, index, source_etype=_I64))
    for j in range(outputs):
        index = [ir.Constant(_I64, j)]
        b.store(b.gep(results, index, source_etype=_DOUBLE), b.gep(out_ptrs, index, source_etype=_PTR))
    b.ret(b.call(kernel, [in_ptrs, steps, out_ptrs, ir.Constant(_I64, 0), ir.Constant(_I64, 1), scratch]))


def optimize(plan: Plan, exact: bool = False) -> llvm.ModuleRef:
    """The plan's module, its parts linked in, verified and optimised (``-O2``, or ``-O1`` if large).

    graphc's own functions (exp, sin...) are inlined so the loop vectorises, unless the plan is
    large or ``exact`` is asked: then they are called, and sin and cos call the C library
    themselves for arguments beyond their bound.
    """
    inline = not (plan.large or exact)
    module = llvm.parse_assembly(str(build_module(plan, guard=inline)))
    if len(plan.parts) > 1:
        module.link_in(llvm.parse_assembly(parts_module(plan)))
    own = [f.name for f in module.functions if f.is_declaration and f.name in llvm_math.FUNCTIONS]
    if own and inline:  # graphc's exp, log...: defined here, inlined by the passes below
        layout = str(target_machine().target_data)
        text = llvm_math.module(own, llvm.get_process_triple(), layout, _fma(), inline=True)
        module.link_in(llvm.parse_assembly(text))
    # else they stay external, resolved to the process's math library (see resolve_symbols)
    module.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=1 if plan.large else 2)
    passes = llvm.create_pass_builder(target_machine(), tuning)
    passes.getModulePassManager().run(module, passes)
    return module


@functools.cache
def _fma() -> bool:
    """Whether the host fuses multiply-adds (graphc's own exp, log... use them if so)."""
    return bool(llvm.get_host_cpu_features().get("fma", False))


def external_symbols(module: llvm.ModuleRef) -> list[str]:
    """The C functions the optimised module calls (libm's), which the process must provide."""
    return sorted(f.name for f in module.functions if f.is_declaration and not f.name.startswith("llvm."))


def resolve_symbols(symbols: Sequence[str]) -> None:
    """Make sure the JIT can link every symbol, loading libm if needed; else a BackendError.

    Checked before linking: LLVM aborts the whole process on a symbol it cannot resolve.
    """
    if any(s in llvm_math.FUNCTIONS for s in symbols):
        _math_library()
    missing = [s for s in symbols if not llvm.address_of_symbol(s)]
    if missing:
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


def load(object_code: bytes, symbols: Sequence[str]) -> tuple[llvm.ExecutionEngine, int, int]:
    """An execution engine holding the machine code, and the batch and point kernels' addresses."""
    resolve_symbols(symbols)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), new_target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(object_code))
    engine.finalize_object()
    addresses = [engine.get_function_address(name) for name in (ENTRY, POINT)]
    if not all(addresses):
        raise BackendError(f"the compiled code lacks {ENTRY} or {POINT}")
    return engine, addresses[0], addresses[1]


def build(graph: Graph, part_size: int | None = None, exact: bool = False) -> Build:
    """Generate, optimise and compile a graph to machine code (no caching)."""
    plan = Plan.of(graph, part_size)
    optimized = optimize(plan, exact)
    object_code = target_machine(fast=plan.large).emit_object(optimized)
    return Build(object_code, external_symbols(optimized), plan.size, str(optimized))


def optimized_ir(graph: Graph) -> str:
    """The optimised LLVM IR of a graph's kernel (what ``--emit llvm`` prints)."""
    with _LLVM_LOCK:
        return str(optimize(Plan.of(graph)))


@functools.cache
def _generator() -> str:
    """The host, LLVM, and a hash of the code that generates IR (a new lowering is a new key)."""
    digest = hashlib.sha256()
    for module in (ops, sys.modules[__name__], llvm_text, llvm_math):
        digest.update(Path(module.__file__ or "").read_bytes())
    host = f"{llvm.get_process_triple()}|{llvm.get_host_cpu_name()}|{llvm.get_host_cpu_features().flatten()}"
    return f"{host}|{llvm.llvm_version_info}|{llvmlite.__version__}|{digest.hexdigest()}"


def _options() -> str:
    """What, besides the graph, decides the machine code: the key's other half."""
    return f"{PART_SIZE}|{_generator()}"


@functools.cache
def _math_library() -> llvm.ExecutionEngine:
    """graphc's own functions, not inlined, compiled once per process (at ``-O2``; a split graph's
    code is generated at ``-O0``, too slow for them) and given to the JIT's symbol resolution."""
    layout = str(target_machine().target_data)
    names = sorted(llvm_math.FUNCTIONS)
    module = llvm.parse_assembly(llvm_math.module(names, llvm.get_process_triple(), layout, _fma(), False))
    resolve_symbols(sorted(llvm_math.LIBM[name] for name in llvm_math.GUARDED))  # sin, cos: libm
    module.verify()
    passes = llvm.create_pass_builder(target_machine(), llvm.create_pipeline_tuning_options(speed_level=2))
    passes.getModulePassManager().run(module, passes)
    engine = llvm.create_mcjit_compiler(module, new_target_machine())
    engine.finalize_object()
    for name in names:
        llvm.add_symbol(name, engine.get_function_address(name))
    return engine  # cached: the code must live as long as the process may call it


def math_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """One of graphc's own functions (``"graphc_exp"``...) applied to a float64 array, with the
    values it has in kernels: for measuring its accuracy."""
    layout = str(target_machine().target_data)
    with _LLVM_LOCK:
        # not inlined: sin and cos then call the C library beyond their bound themselves
        text = llvm_math.module([name], llvm.get_process_triple(), layout, _fma(), inline=False)
        module = llvm.parse_assembly(text)
        module.link_in(llvm.parse_assembly(llvm_math.array_loop(name)))
        module.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=2)
        passes = llvm.create_pass_builder(target_machine(), tuning)
        passes.getModulePassManager().run(module, passes)
        engine = llvm.create_mcjit_compiler(module, new_target_machine())
        engine.finalize_object()
        apply = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
            engine.get_function_address("graphc_apply")
        )

    def run(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.empty_like(x)
        apply(x.ctypes.data, y.ctypes.data, x.size)
        return y

    run.engine = engine  # type: ignore[attr-defined]  # the code lives as long as the function
    return run


def compile_graph(graph: Graph, threads: int | None = None, cache: Cache | None = None) -> Kernel:
    """Compile ``graph`` to a Kernel running JIT-compiled machine code.

    ``threads`` caps the threads a large batch is split across (default: the usable cores).
    The disk cache (``GRAPHC_CACHE_DIR``, off with ``GRAPHC_NO_CACHE=1``) skips LLVM entirely
    for a graph compiled before.
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise BackendError(f"threads must be a whole number >= 1, got {threads!r}")
    cache = Cache.from_environment() if cache is None else cache
    built, function = _compiled(graph, threads, cache, exact=False)
    return Kernel(graph, function, backend="llvm", source=built.ir)


def _compiled(graph: Graph, threads: int | None, cache: Cache, exact: bool) -> tuple[Build, CompiledKernel]:
    """The machine code of ``graph``, from the cache or built, loaded and callable.

    The kernel vectorises sin and cos for arguments up to :data:`llvm_math.TRIG_BOUND`; where a
    call meets a larger one, it recomputes the range with the ``exact`` kernel (sin and cos
    calling the C library for those arguments), compiled then, the first time one is met.
    """
    with _LLVM_LOCK:
        options = _options() + "|exact" * exact
    key = graph_key(graph, options)
    built = cache.load(key)
    with _LLVM_LOCK:
        if built is None:
            built = build(graph, exact=exact)
            cache.store(key, built)
        engine, batch, point = load(built.object_code, built.symbols)
    fallback = None if exact else (lambda: _compiled(graph, threads, cache, exact=True)[1])
    arrays = len(graph.variables), len(graph.outputs)
    function = CompiledKernel(engine, batch, point, *arrays, built.scratch, threads, fallback)
    return built, function
