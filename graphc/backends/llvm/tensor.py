"""The LLVM backend on tensor graphs: loop nests over blocks, or the scalarised graph.

A tensor graph whose block ops all have a loop form (:mod:`graphc.backends.llvm.tensor_plan`:
matmul, the reductions, softmax's shift, logsumexp, count, the views reshape/transpose/broadcast/
index, unindex, masked products, convolution and pooling and their adjoints, and every
elementwise op) compiles to
one :class:`LoopKernel`: a loop nest per block node and per run of fused elementwise nodes
(:mod:`graphc.backends.llvm.tensor_ir`, :mod:`graphc.backends.llvm.tensor_conv`), large matrix
products through BLAS (:mod:`graphc.backends.llvm.tensor_blas`). Its loop bounds are read
at run time, so one kernel serves every value of the named dimensions and every batch shape; it
is compiled when the kernel is built, quickly, then fully in the background from its second call
on (:data:`QUICK_CALLS`), and kept in the disk cache keyed by the graph with its shapes and params.

Graphs with a block op that has no loop form (a user block, ``custom``)
take the fallback, :class:`TensorFunction`: the graph scalarised (graphc.scalarise) for the
concrete shapes of a call and compiled by the scalar LLVM backend; its variables are the inputs' elements
(``W[1,2]``), its outputs the outputs' elements, compiled once per binding of the named dimensions.

Both bind the named dimensions and the batch shape as the NumPy backend does (``graphc.shapes.bind``:
extra leading axes of an input are batch axes, broadcast between inputs) and return ``batch + shape``
per output: the batch rule of every kernel.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm
import numpy as np

from graphc.backends.llvm import vecmath
from graphc.backends.llvm.cache import Build, Cache, graph_key
from graphc.backends.llvm.jit import engine_of, external_symbols, library_symbols
from graphc.backends.llvm.run import _WORKERS as WORKERS
from graphc.backends.llvm.run import _address, usable_cores
from graphc.backends.llvm.target import LOCK, fma, lanes, target_machine
from graphc.backends.llvm.tensor_blas import DGEMM
from graphc.backends.llvm.tensor_blas import register as register_blas
from graphc.backends.llvm.tensor_ir import ENTRY, tensor_text
from graphc.backends.llvm.tensor_plan import Unsupported, plan
from graphc.errors import BackendError
from graphc.graph import Graph
from graphc.kernel import Kernel, Outputs
from graphc.scalarise import Scalarised, element_name, indices, scalarise
from graphc.shapes import BIND_SOURCE, Shape, concrete


class _Compiled:
    """The scalar kernel of one binding of the named dimensions, and where its scalars go."""

    def __init__(self, graph: Graph, threads: int | None) -> None:
        from graphc.backends.llvm.runtime import compile_graph

        scalar: Scalarised = scalarise(graph, what="the llvm backend")
        self.kernel = compile_graph(scalar.graph, threads=threads)
        self.outputs = scalar.outputs
        # the position of each input element among the scalar kernel's (sorted) variables
        position = {name: i for i, name in enumerate(scalar.graph.variables)}
        self.slots = {
            name: [position[element_name(name, index)] for index in indices(shape)]
            for name, shape in scalar.inputs.items()
        }

    def __call__(
        self, arrays: dict[str, np.ndarray], declared: dict[str, Shape], batch: tuple[int, ...]
    ) -> list[Any]:
        values: list[Any] = [None] * len(self.kernel.variables)
        for name, array in arrays.items():
            lead = array.ndim - len(declared[name])
            flat = array.reshape(array.shape[:lead] + (-1,))
            for k, slot in enumerate(self.slots[name]):
                values[slot] = flat[..., k]
        raw = self.kernel.function(*values)
        results = raw if isinstance(raw, tuple) else (raw,)
        shaped = []
        start = 0
        for shape in self.outputs:
            count = math.prod(shape)
            if batch:
                block = np.empty(batch + (count,))
                for k in range(count):
                    block[..., k] = results[start + k]  # broadcast: an element may not vary
            else:
                block = np.array(results[start : start + count], dtype=np.float64)
            shaped.append(block.reshape(batch + shape))
            start += count
        return shaped


class TensorFunction:
    """The fallback's callable: the scalarised graph's kernels, inputs in the graph's variable order."""

    kind = "scalarised"

    def __init__(self, graph: Graph, threads: int | None) -> None:
        self.graph = graph
        self.threads = threads
        self.declared = {name: graph.shape(graph.variable(name)) for name in graph.variables}
        self.named = sorted({d for shape in graph.shapes for d in shape if isinstance(d, str)})
        self._compiled: dict[tuple[int, ...], _Compiled] = {}
        self._lock = threading.Lock()
        scope: dict[str, Any] = {"np": np}
        exec(BIND_SOURCE, scope)  # noqa: S102 - graphc.shapes' own constant source
        self._bind = scope["_bind"]
        if not self.named:
            self._compiled[()] = _Compiled(graph, threads)

    @property
    def source(self) -> str:
        """The LLVM IR of the kernel when the shapes are concrete, else a note saying when it is made."""
        first = self._compiled.get(())
        if first is not None:
            return first.kernel.source
        return f"; compiled at call time, once per value of the named dimensions {', '.join(self.named)}"

    def compiled(self, dims: dict[str, int]) -> _Compiled:
        """The scalar kernel for these values of the named dimensions (compiled on first use)."""
        key = tuple(dims[d] for d in self.named)
        with self._lock:
            found = self._compiled.get(key)
            if found is None:
                found = self._compiled[key] = _Compiled(self.graph.with_dims(dims), self.threads)
        return found

    def __call__(self, *values: Any, out: Sequence[np.ndarray] | None = None) -> Any:
        arrays = {
            name: np.asarray(v, dtype=np.float64)
            for name, v in zip(self.graph.variables, values, strict=True)
        }
        dims, batch = self._bind(self.declared, {name: a.shape for name, a in arrays.items()})
        results = self.compiled(dims)(arrays, self.declared, batch)
        if out is not None:
            for target, value in zip(out, results, strict=True):
                target[...] = value
            return list(out)
        return results[0] if len(results) == 1 else tuple(results)


# A kernel compiled afresh runs its first QUICK_CALLS calls on quick code (its module without
# passes, through LLVM's fast instruction selection and register allocation: a fraction of the
# compile time, slower loops, the same bits), then is compiled fully (the passes, then code
# generation at -O3) in a thread of its own, which the next call starts: the first result comes
# sooner, calls meanwhile run the quick code, and every call after the swap the full code. Which
# code a call runs depends on timing; its results do not. The disk cache keeps both (the quick
# code under :func:`_quick_key`). A kernel's ``source`` is the IR of the code it was loaded with:
# the quick code's is the kernel's own IR unoptimised, declaring graphc's vector functions it links in.
QUICK_CALLS = 1
_KERNEL_TYPE = ctypes.CFUNCTYPE(None, *(ctypes.c_void_p,) * 6, ctypes.c_int64, ctypes.c_int64)
# a batch is split across threads when each would get at least this many doubles of work (inputs,
# outputs and workspace per point, times its points): below it, a thread costs more than it saves
THREAD_DOUBLES = 1 << 16
FULL_CODE_THREAD = "graphc-full-code"  # the name of the threads compiling kernels' full code
SHAPES_KEPT = 64  # a kernel remembers what calls with this many tuples of input shapes need


@dataclass(frozen=True)
class _Shaped:
    """What a loop kernel's call with inputs of some shapes needs besides the arrays."""

    spread: list[tuple[int, ...] | None]  # per input: the shape to broadcast it to, or None
    outputs: list[tuple[int, ...]]  # each output's shape: the batch's, then its own
    steps: np.ndarray  # per input: doubles from one batch point to the next (0: not batched)
    dims: np.ndarray  # the named dimensions' values, in ``LoopKernel.named`` order
    offsets: np.ndarray  # where each buffer starts in the workspace
    at: tuple[int, int, int]  # the addresses of steps, dims and offsets (the arrays above keep them)
    size: int  # the workspace's doubles
    count: int  # batch points
    per_point: int  # doubles of workspace and outputs per batch point


def _linked(text: str, own: Collection[str] | None = None) -> llvm.ModuleRef:
    """The tensor kernel's module with graphc's vector functions ``own`` (None: those ``text``
    declares) linked in (a kernel needs no library then: loaded from the disk cache, it is
    ready), verified."""
    module = llvm.parse_assembly(text)
    if own is None:
        own, _ = library_symbols(external_symbols(module))
    if own:
        layout = str(target_machine().target_data)
        width = lanes()
        library = vecmath.module(list(own), {}, llvm.get_process_triple(), layout, fma(), width, inline=True)
        module.link_in(llvm.parse_assembly(library))
    module.verify()
    return module


def _optimize(module: llvm.ModuleRef) -> llvm.ModuleRef:
    """The module optimised in place by the few passes its loops need: the vector functions
    inlined, SROA (the accumulators the IR keeps in stack slots into registers), instcombine, CFG
    simplification. LLVM's -O2 pipeline costs several times the compile time (unrolling,
    vectorising what is written vectorised) for little. No NewGVN (llvmlite's only GVN): it trips
    an assertion of LLVM's on the register-blocked products' stack copies (a tanh(x @ Wᵀ) gradient
    aborted the process); code generation's own CSE shares the address arithmetic."""
    pipeline = llvm.create_new_module_pass_manager()
    pipeline.add_always_inliner_pass()
    pipeline.add_sroa_pass()
    pipeline.add_instruction_combine_pass()
    pipeline.add_simplify_cfg_pass()
    pipeline.add_dead_code_elimination_pass()
    passes = llvm.create_pass_builder(target_machine(), llvm.create_pipeline_tuning_options(speed_level=0))
    pipeline.run(module, passes)
    return module


def tensor_key(graph: Graph, options: str) -> str:
    """The disk cache's key of a tensor kernel: the graph's key (ops, operands, names, constants)
    with every node's shape and params, which decide the loops."""
    layout = [[list(map(str, graph.shape(n))), repr(graph.params(n))] for n in range(len(graph))]
    extra = hashlib.sha256(json.dumps(layout).encode()).hexdigest()
    return graph_key(graph, f"tensor|{extra}|{options}")


def _quick_key(key: str) -> str:
    """The disk cache's key of the quick code of the kernel whose full code has ``key``."""
    return hashlib.sha256(f"{key}|quick".encode()).hexdigest()


def tensor_ir(graph: Graph) -> str:
    """The optimised LLVM IR of a tensor graph's loop kernel (``--emit llvm``); Unsupported for a
    graph with a block op that has no loop form."""
    steps = plan(graph)
    with LOCK:
        text, own, _ = tensor_text(steps, lanes())
        return str(_optimize(_linked(text, own)))


class LoopKernel:
    """The callable of a tensor graph's loop kernel: inputs in the graph's (sorted) variable order."""

    kind = "loops"  # the scalarised fallback's TensorFunction has kind "scalarised"

    def __init__(self, graph: Graph, threads: int | None, cache: Cache | None = None) -> None:
        from graphc.backends.llvm.runtime import _options, load

        self.graph = graph
        self.threads = threads
        self.plan = plan(graph)
        lowered = self.plan.graph
        self.declared = {name: graph.shape(graph.variable(name)) for name in graph.variables}
        self.named = sorted({d for shape in lowered.shapes for d in shape if isinstance(d, str)})
        self.outputs = [lowered.shape(o) for o in lowered.outputs]
        self.buffers = [lowered.shape(n) for n in self.plan.buffers]
        self._layouts: dict[tuple[int, ...], tuple[np.ndarray, int]] = {}
        self._shaped: dict[tuple[tuple[int, ...], ...], _Shaped] = {}  # by the inputs' shapes
        self._spare: list[np.ndarray] = []  # workspaces no call is using (each call takes its own)
        scope: dict[str, Any] = {"np": np}
        exec(BIND_SOURCE, scope)  # noqa: S102 - graphc.shapes' own constant source
        self._bind = scope["_bind"]
        cache = Cache.from_environment() if cache is None else cache
        with LOCK:
            key = tensor_key(lowered, _options()) if cache.directory is not None else ""
        # the full code if the cache has it, else the quick code (then compiled fully later)
        built, quick = cache.load(key), False
        if built is None and key:
            built = cache.load(_quick_key(key))
            quick = built is not None
        with LOCK:
            if built is None:  # the quick code: the linked module, no passes, fast code generation
                text, own, _ = tensor_text(self.plan, lanes())
                module = _linked(text, own)
                code = target_machine(fast=True).emit_object(module)
                built = Build(code, external_symbols(module), 0, text)
                cache.store(_quick_key(key), built)
                quick = True
            if DGEMM in built.symbols:
                register_blas()
            engine, (address,) = load(built.object_code, built.symbols, None, (ENTRY,))
        self.source = built.ir
        self._engines = [engine]  # every engine whose code a call may still be running
        self._kernel = _KERNEL_TYPE(address)
        # the quick code serves the first QUICK_CALLS calls, then the full code is compiled
        self._full: tuple[Build, Cache, str] | None = (built, cache, key) if quick else None
        self._quick_calls = QUICK_CALLS
        self._compiler: threading.Thread | None = None  # the thread compiling the full code
        self._starting = threading.Lock()  # held while that thread is started

    def _compile_fully(self) -> None:
        """Compile the full code, keep it in the disk cache, and let every later call run it (in
        a thread of its own, started by :meth:`_begin_full`: calls meanwhile run the quick code)."""
        full = self._full
        if full is None:
            return
        quick, cache, key = full
        with LOCK:
            module = _optimize(_linked(quick.ir))  # the quick code's IR: the kernel's own, unlinked
            ir = str(module)
            built = Build(target_machine().emit_object(module), external_symbols(module), 0, ir)
            engine, (address,) = engine_of(built.object_code, (ENTRY,))  # its symbols resolved already
        cache.store(key, built)
        self._engines.append(engine)  # the quick engine stays: a call may be running its code
        self._kernel = _KERNEL_TYPE(address)
        self._full = None

    def _begin_full(self) -> None:
        """Start compiling the full code in the background, unless that has begun. The thread is
        not a daemon: a process ending meanwhile waits for it rather than leave LLVM mid-compile."""
        with self._starting:
            if self._compiler is None:
                self._compiler = threading.Thread(target=self._compile_fully, name=FULL_CODE_THREAD)
                self._compiler.start()

    def wait(self) -> None:
        """Return once the full code, if it is being compiled, is what calls run."""
        compiler = self._compiler
        if compiler is not None:
            compiler.join()

    def layout(self, dims: dict[str, int]) -> tuple[np.ndarray, int]:
        """Where each buffer starts in the workspace, and its size, for these named dimensions."""
        key = tuple(dims[d] for d in self.named)
        found = self._layouts.get(key)
        if found is None:
            sizes = [math.prod(concrete(shape, dims)) for shape in self.buffers]
            offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=offsets[1:])
            found = self._layouts[key] = (offsets, int(offsets[-1]))
        return found

    def shaped(self, shapes: tuple[tuple[int, ...], ...]) -> _Shaped:
        """What a call with inputs of these shapes needs besides the arrays (worked out once per
        tuple of shapes: a small batch's call costs little more than its loops); a ValueError
        naming the input for shapes that do not fit the declared ones."""
        found = self._shaped.get(shapes)
        if found is not None:
            return found
        names = self.graph.variables
        dims, batch = self._bind(self.declared, dict(zip(names, shapes, strict=True)))
        offsets, size = self.layout(dims)
        steps, spread = [], []
        for name, shape in zip(names, shapes, strict=True):
            lead = len(shape) - len(self.declared[name])
            spread.append(batch + shape[lead:] if lead and shape[:lead] != batch else None)
            steps.append(math.prod(shape[lead:]) if lead else 0)
        outputs = [batch + concrete(shape, dims) for shape in self.outputs]
        count = math.prod(batch)
        step_table = np.array(steps or [0], dtype=np.int64)
        dim_table = np.array([dims[d] for d in self.named] or [0], dtype=np.int64)
        found = _Shaped(
            spread=spread,
            outputs=outputs,
            steps=step_table,
            dims=dim_table,
            offsets=offsets,
            at=(step_table.ctypes.data, dim_table.ctypes.data, offsets.ctypes.data),
            size=size,
            count=count,
            per_point=size + sum(math.prod(shape) for shape in outputs) // max(count, 1),
        )
        if len(self._shaped) >= SHAPES_KEPT:
            self._shaped.clear()
        self._shaped[shapes] = found
        return found

    def _run(self, tables: tuple[int, ...], call: _Shaped) -> None:
        """The kernel on the batch points ``0..count``, split across threads when each gets enough
        work; every point is computed alike on any thread, so the results never depend on it."""
        count = call.count
        pieces = 1
        if count > 1 and self.threads != 1:
            threads = usable_cores() if self.threads is None else self.threads
            pieces = max(1, min(threads, count, count * call.per_point // THREAD_DOUBLES))
        bounds = [count * i // pieces for i in range(pieces + 1)]
        offsets, size = call.at[2], call.size

        def run(i: int) -> None:
            spare = self._spare
            work = spare.pop() if spare else np.empty(0)  # a workspace no call is using, if any
            if work.size < size:
                work = np.empty(max(size, 1))
            try:
                self._kernel(*tables, offsets, _address(work), bounds[i], bounds[i + 1])
            finally:
                spare.append(work)

        if pieces == 1:
            run(0)
            return
        pool = WORKERS.pool(pieces - 1)
        waiting = [pool.submit(run, i) for i in range(1, pieces)]
        try:
            run(0)
        finally:  # the tables and the outputs must outlive every piece
            for piece in waiting:
                piece.result()

    def __call__(self, *values: Any, out: Sequence[np.ndarray] | None = None) -> Any:
        if self._full is not None:
            if self._quick_calls > 0:
                self._quick_calls -= 1
            elif self._compiler is None:
                self._begin_full()
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        call = self.shaped(tuple(a.shape for a in arrays))
        inputs = [
            np.ascontiguousarray(a if spread is None else np.broadcast_to(a, spread))
            for a, spread in zip(arrays, call.spread, strict=True)
        ]
        shapes = call.outputs
        # arrays Kernel.into checked (Outputs) are written as they are; others if they can be
        given = out is not None and (
            isinstance(out, Outputs) or all(_writable(t, s) for t, s in zip(out, shapes, strict=True))
        )
        results = list(out) if given else [np.empty(shape) for shape in shapes]  # type: ignore[arg-type]
        addresses = [_address(a) for a in inputs]
        if isinstance(out, Outputs):
            addresses += out.addresses
        else:
            addresses += [_address(a) for a in results]
        table = np.array(addresses or [0], dtype=np.uint64)
        pointers = _address(table)
        tables = (pointers, call.at[0], pointers + 8 * len(inputs), call.at[1])
        self._run(tables, call)
        if given:
            return list(out)  # type: ignore[arg-type]
        shaped = [r if r.ndim else r[()] for r in results]
        if out is not None:
            for target, value in zip(out, shaped, strict=True):
                target[...] = value
            return list(out)
        return shaped[0] if len(shaped) == 1 else tuple(shaped)


def _writable(target: Any, shape: tuple[int, ...]) -> bool:
    """Whether the kernel can write an output of ``shape`` straight into ``target``."""
    return (
        isinstance(target, np.ndarray)
        and target.shape == shape
        and target.dtype == np.float64
        and target.flags.c_contiguous
        and target.flags.writeable
    )


def compile_graph(graph: Graph, threads: int | None = None) -> Kernel:
    """A Kernel computing the tensor ``graph``: its loop kernel, or (for block ops with no loop
    form) the scalar LLVM backend on its scalarisation."""
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise BackendError(f"threads must be a whole number >= 1, got {threads!r}")
    try:
        loops = LoopKernel(graph, threads)
    except Unsupported:
        function = TensorFunction(graph, threads)
        return Kernel(graph, function, backend="llvm", source=function.source)
    return Kernel(graph, loops, backend="llvm", source=loops.source)
