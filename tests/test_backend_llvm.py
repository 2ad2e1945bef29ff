"""The LLVM backend, tested by agreement with the NumPy backend: ops, methods, inputs, threads, cache."""

from __future__ import annotations

import gc
import math
import os
import random
import subprocess
import sys
import time
import warnings

import llvmlite.binding as llvm
import numpy as np
import pytest
from test_diff import ALL_CASES

import graphc
from graphc.backends import llvm as backend
from graphc.backends.llvm import jit, plan
from graphc.backends.llvm.cache import Cache, graph_key
from graphc.backends.llvm.ir import POINT, kernel_text
from graphc.backends.llvm.jit import interpreter_module, library_module
from graphc.backends.llvm.passes import optimize
from graphc.backends.llvm.plan import MANY_ARRAYS, Plan
from graphc.backends.llvm.runtime import resolve_symbols
from graphc.backends.llvm.tail import HELPERS
from graphc.backends.llvm.target import target_machine
from graphc.graph import Graph
from graphc.ops import OPS

REL = 1e-12
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, math.inf, -math.inf, math.nan, 1e-300, 700.0, -745.0]


def same(got: np.ndarray, expected: np.ndarray, rel: float = REL, floor: float = 1e-300) -> bool:
    """Equal within ``rel`` (``floor`` near zero), with NaN where NaN and the same infinities."""
    got, expected = np.broadcast_arrays(np.asarray(got), np.asarray(expected))
    nan = np.isnan(expected)
    close = np.isclose(got, expected, rtol=rel, atol=floor, equal_nan=True)
    return bool(np.all(np.isnan(got) == nan) and np.all(close | nan))


def all_ops_graph() -> Graph:
    g = Graph()
    x, y = g.var("x"), g.var("y")
    # a select's third operand is x again: where(x, y, x)
    g.set_outputs([g.apply(name, *(x, y, x)[: op.arity]) for name, op in OPS.items()], list(OPS))
    return g


@pytest.fixture(scope="module")
def all_ops() -> tuple[graphc.Kernel, graphc.Kernel]:
    g = all_ops_graph()
    return graphc.compile(g), graphc.compile(g, backend="llvm")


def test_every_op_has_an_llvm_lowering():
    """Registry coverage: an op without a lowering fails here (and cannot compile)."""
    for name, op in OPS.items():
        assert callable(op.llvm), name
    ir_text = backend.optimized_ir(all_ops_graph())
    assert "i64 @graphc_kernel(" in ir_text


def test_the_kernel_is_one_vector_instruction_per_node_in_one_loop():
    width = backend.lanes()
    text, own = kernel_text(Plan.of(graphc.parse("sin(x*y) + exp(x)")), width)
    assert own == {"graphc_exp": 1, "graphc_sin": 1}
    body = text.split("body:")[1].split("drain:")[0]
    d = f"<{width} x double>"
    counted = (f"fmul {d}", f"@graphc_sin_v{width}(", f"@graphc_exp_v{width}(", f"fadd {d}")
    assert [body.count(s) for s in counted] == [1, 1, 1, 1]
    plain, streamed = body.split("store.nt:")
    assert body.count(f"load {d}") == 2 and plain.count(f"store {d}") == streamed.count(f"store {d}") == 1


def test_the_tail_helpers_are_library_code_and_they_and_the_point_function_are_left_unoptimised():
    """graphc_fill and graphc_drain run once per range and depend on the vector width alone: a
    kernel declares them (compiled into every kernel, they were a third of a small kernel's code
    generation), and they are never optimised (LLVM's -O2 unrolled and vectorised their loops into
    ~800 instructions)."""
    width = backend.lanes()
    ir = backend.optimized_ir(graphc.grad("(1-x)^2 + 100*(y-x^2)^2", backend="numpy").graph)
    for name in HELPERS:
        assert f"declare void @{name}_v{width}(" in ir and f"define void @{name}" not in ir
    # the point function (two little loops and a call) is left unoptimised too
    point = llvm.parse_assembly(ir).get_function(POINT)
    assert b"optnone" in b" ".join(point.attributes)
    module = library_module([], {}, helpers=True)
    defined = [f for f in module.functions if not f.is_declaration]
    sizes = {f.name: sum(len(list(b.instructions)) for b in f.blocks) for f in defined}
    assert sizes[f"graphc_fill_v{width}"] < 80 and sizes[f"graphc_drain_v{width}"] < 60, sizes
    assert all(b"optnone" in b" ".join(f.attributes) for f in defined)


def test_spilled_vectors_sit_in_aligned_stack_slots():
    """The ABI aligns the stack to 16 bytes; a kernel, a library function or the interpreter
    spilling whole vectors aligns its own frame, so no spill straddles two cache lines (unaligned,
    they made B6's gradient 2x slower in three processes out of four, by where the caller's stack
    ended)."""
    import re

    from graphc.backends.llvm import tape, vecmath

    unaligned = re.compile(r"vmovup[sd]\s[^\n]*\(%rsp\)")
    aligned = re.compile(r"vmovap[sd]\s[^\n]*\(%rsp\)")
    terms = " + ".join(f"tanh({k}*x + {k + 1}*y) * tanh({k}*x - y)" for k in range(1, 9))
    kernel = optimize(Plan.of(graphc.differentiate(graphc.parse(terms))))
    library = library_module(list(vecmath.FUNCTIONS), {}, helpers=True)
    interpreter = interpreter_module(tape.every_opcode())
    machine = target_machine()
    code = [machine.emit_assembly(module) for module in (kernel, library, interpreter)]
    assert [len(unaligned.findall(text)) for text in code] == [0, 0, 0]
    if backend.lanes() > 1:  # the kernel's 8 inlined tanh keep more vectors live than there are registers
        assert len(aligned.findall(code[0])) > 10


def test_every_op_agrees_with_numpy_on_its_domain_and_on_special_values(all_ops):
    numpy_kernel, llvm_kernel = all_ops
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-4, 4, 200), np.repeat(SPECIAL, len(SPECIAL))])
    y = np.concatenate([rng.uniform(-4, 4, 200), np.tile(SPECIAL, len(SPECIAL))])
    x[:20] = y[:20]  # ties for max and min
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected, got = numpy_kernel(x, y), llvm_kernel(x, y)
    for name, e, g in zip(OPS, expected, got, strict=True):
        assert same(g, e), f"{name}: llvm {g[~np.isclose(g, e, equal_nan=True)][:5]}"


def test_ops_lowered_in_the_parts_of_a_split_graph_equal_ops_in_one_kernel(all_ops, monkeypatch):
    """Each op in a part of its own (values through scratch, no LLVM passes): the same bits as the
    whole graph in one optimised kernel."""
    _, whole = all_ops
    monkeypatch.setattr(plan, "PART_SIZE", 1)
    graph = all_ops_graph()
    assert len(Plan.of(graph).parts) == len(OPS)
    split = graphc.compile(graph, backend="llvm")
    x = np.repeat(SPECIAL + [0.3, -1.7], len(SPECIAL) + 2)
    y = np.tile(SPECIAL + [2.2, -0.6], len(SPECIAL) + 2)
    for name, a, b in zip(OPS, split(x, y), whole(x, y), strict=True):
        assert np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b)), name


@pytest.mark.parametrize(
    "name",
    [
        "max",
        "min",
        "relu",
        "abs",
        "sign",
        "neg",
        "where",
        "lt",
        "le",
        "gt",
        "ge",
        "eq",
        "ne",
        "and",
        "or",
        "not",
    ]
    + ["floor", "ceil"],
)
def test_selections_match_numpy_bit_for_bit_with_nan_signed_zeros_and_ties(all_ops, name):
    numpy_kernel, llvm_kernel = all_ops
    x = np.repeat(SPECIAL, len(SPECIAL))
    y = np.tile(SPECIAL, len(SPECIAL))
    i = list(OPS).index(name)
    expected, got = numpy_kernel(x, y)[i], llvm_kernel(x, y)[i]
    assert np.array_equal(np.signbit(got), np.signbit(expected)), name
    assert np.array_equal(got, expected, equal_nan=True), name


@pytest.mark.parametrize("method", list(graphc.METHODS))
def test_every_method_on_the_corpus_agrees_with_numpy(method):
    for case_id, case in ALL_CASES.items():
        names = sorted(case.points[0])
        batch = {n: np.array([p[n] for p in case.points]) for n in names}
        expected = graphc.value_and_grad(case.text, method=method)(**batch)
        got = graphc.value_and_grad(case.text, method=method, backend="llvm")(**batch)
        assert same(got[0], expected[0]), case_id
        rel = 1e-7 if method == "numeric" else REL  # numeric differences cancel to ~1e-8
        for name, g, e in zip(names, got[1], expected[1], strict=True):
            assert same(g, e, rel), f"{case_id}: ∂/∂{name} {g} vs {e}"


def test_jacobian_hessian_and_derivative_through_llvm():
    for mode in ("forward", "reverse"):
        j = graphc.jacobian("x*y, sin(x) + y", mode=mode, backend="llvm")(2.0, [1.0, 3.0])
        assert np.allclose(j, graphc.jacobian("x*y, sin(x) + y", mode=mode)(2.0, [1.0, 3.0]), rtol=REL)
    h = graphc.hessian("x**2 * y + exp(x*y)", backend="llvm")(0.3, 0.7)
    assert np.allclose(h, graphc.hessian("x**2 * y + exp(x*y)")(0.3, 0.7), rtol=REL)
    assert float(graphc.derivative("x**5", "x", order=3, backend="llvm")(2.0)) == 240.0
    many = " + ".join(f"sin(x{i}*x{(i + 1) % 9})" for i in range(9))  # 81 outputs: compiled fast
    assert len(graphc.hessian(many).outputs) > MANY_ARRAYS
    point = [np.linspace(0, 1, 7) + 0.1 * i for i in range(9)]
    got, expected = graphc.hessian(many, backend="llvm")(*point), graphc.hessian(many)(*point)
    assert got.shape == (7, 9, 9) and same(got, expected)  # batch axes first


@pytest.fixture(scope="module")
def kernels() -> tuple[graphc.Kernel, graphc.Kernel]:
    text = "u = x*y; sin(u) + u**2, x, 2, y"
    return graphc.compile(text), graphc.compile(text, backend="llvm")


def test_scalars_in_scalars_out(kernels):
    numpy_kernel, llvm_kernel = kernels
    result = llvm_kernel(1, 2.5)
    assert all(isinstance(v, np.float64) for v in result)
    assert result == numpy_kernel(1, 2.5)
    constant = graphc.compile("3", backend="llvm")()
    assert isinstance(constant, np.float64) and constant == 3.0


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (np.array(1.0), np.array(2.5)),
        (np.array([1.0]), 2.5),
        (np.ones((1, 1)), np.float32([[2.5]])),
        (1.0, [2.5]),
        (np.array([1.0]), np.array([2.5])),
        (np.array([1]), np.array([True])),
        (np.ones((1, 1, 1)), np.full((1, 1, 1), 2.5)),
        ([1.0], [2.5]),
        (np.float32(1.0), np.float64(2.5)),
        (1, 2),
        (True, np.array(2.5)),
    ],
)
def test_one_point_given_as_arrays_has_the_arrays_shape(kernels, x, y):
    # one point in arrays takes the point kernel: the same values, types and shapes as NumPy's
    numpy_kernel, llvm_kernel = kernels
    expected, got = numpy_kernel(x, y), llvm_kernel(x, y)
    assert [type(v) for v in got] == [type(v) for v in expected]
    assert all(np.shape(g) == np.shape(e) and g == e for g, e in zip(got, expected, strict=True))


@pytest.mark.parametrize(
    "w",
    [
        np.array(1.5),
        np.array([1.5]),
        np.full((1, 1, 1), 1.5),
        np.array([1.5], dtype=">f8"),  # byte-swapped: another dtype
        np.float32([1.5]),
        np.array([0.0, 1.5])[1:],  # a view, its data not at the array's start
        np.array([[1.5, 0.0]])[:, :1],  # a view that is not contiguous
        np.float64(1.5),
    ],
)
def test_one_value_at_one_point_is_read_as_numpy_reads_it(w):
    # a one-variable kernel reads a one-element float64 array's bytes unstacked
    expected = graphc.grad("sin(w)*w + exp(-w)")(w)
    kernel = graphc.grad("sin(w)*w + exp(-w)", backend="llvm")
    got = kernel(w)
    later = kernel(np.full(np.shape(w), 3.0))
    assert type(got[0]) is type(expected[0]) and np.shape(got[0]) == np.shape(expected[0])
    assert abs(float(np.ravel(got[0])[0]) - float(np.ravel(expected[0])[0])) < 1e-15
    assert not isinstance(w, np.ndarray) or not np.shares_memory(got[0], w)
    assert float(np.ravel(later[0])[0]) != float(np.ravel(got[0])[0]), "the first result is kept"


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (np.linspace(0, 1, 5), np.linspace(1, 2, 5)),  # a small batch: stacked in one array
        (np.arange(6.0).reshape(2, 3), np.ones((2, 3))),
        ([0.5, 1.5, 2.5], [1, 2, 3]),
        (np.arange(1024.0), np.arange(1024)),
        (np.arange(1025.0), np.arange(1025.0)),  # beyond the small batch
        (np.linspace(0, 1, 5), 2.5),  # broadcast
        (0.5, np.array([[1.0], [2.0]])),
        (np.zeros(0), np.zeros(0)),
    ],
)
def test_small_batches_agree_with_numpy(kernels, x, y):
    numpy_kernel, llvm_kernel = kernels
    expected, got = numpy_kernel(x, y), llvm_kernel(x, y)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == np.float64 and same(g, e)
    assert not np.shares_memory(got[0], got[1]), "each output is its own array"
    assert not np.shares_memory(got[1], x), "an input returned as an output is a copy"


def test_calls_on_several_threads_at_once(kernels):
    # a call reuses memory (results, scratch, tables): calls at once must each get their own
    from concurrent.futures import ThreadPoolExecutor

    _, llvm_kernel = kernels
    calls = []
    for i in range(48):
        x, y = 0.01 * i, 1.0 - 0.02 * i
        calls += [
            (x, y),
            (np.array([x]), y),
            (np.array([x, y, x]), np.array([y, x, 1.0])),
            (np.full(9, x), y),
        ]
    expected = [llvm_kernel(*args) for args in calls]

    def run(i: int) -> bool:
        got = llvm_kernel(*calls[i % len(calls)])
        return all(np.array_equal(g, e) for g, e in zip(got, expected[i % len(calls)], strict=True))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(run, range(8000)))
    first = llvm_kernel(np.array([1.0]), 2.0)
    llvm_kernel(np.array([3.0]), 4.0)
    assert first == llvm_kernel(np.array([1.0]), 2.0), "a result is not overwritten by the next call"


def test_broadcast_batches_and_shapes(kernels):
    numpy_kernel, llvm_kernel = kernels
    x = np.linspace(-3, 3, 100_001)
    for y in (np.array([0.7]), 0.7, np.array(0.7)):
        got, expected = llvm_kernel(x, y), numpy_kernel(x, y)
        for g, e in zip(got, expected, strict=True):
            # sin(u) + u**2 cancels to 0 near u = -0.877: a last-bit difference of sin (graphc's
            # own, within 2 ulp of the C library's) is all the difference there
            assert g.shape == (100_001,) and same(g, e, floor=1e-15)
    x2 = np.arange(6.0).reshape(2, 3)
    got, expected = llvm_kernel(x2, np.array([1.0, 2.0, 3.0])), numpy_kernel(x2, np.array([1.0, 2.0, 3.0]))
    for g, e in zip(got, expected, strict=True):
        assert g.shape == (2, 3) and g.dtype == np.float64 and same(g, e)
    got[1][0, 0] = 9.0
    assert x2[0, 0] == 0.0, "an input returned as an output is a copy"
    empty = llvm_kernel(np.zeros((0, 3)), 1.0)
    assert all(e.shape == (0, 3) for e in empty)


def test_non_contiguous_integer_and_float32_inputs(kernels):
    numpy_kernel, llvm_kernel = kernels
    strided = np.arange(40.0)[::2]
    transposed = np.arange(12.0).reshape(3, 4).T
    read_only = np.arange(20.0)
    read_only.flags.writeable = False
    cases = [(strided, np.arange(20)), (transposed, 2), (np.arange(10, dtype=np.float32), [True] * 10)]
    for x, y in [*cases, (read_only, np.float32(0.5))]:
        for g, e in zip(llvm_kernel(x, y), numpy_kernel(x, y), strict=True):
            assert g.dtype == np.float64 and same(g, e)


def test_bad_calls_are_evaluation_errors(kernels):
    _, llvm_kernel = kernels
    with pytest.raises(graphc.EvaluationError, match="do not broadcast"):
        llvm_kernel(np.ones(3), np.ones(4))
    with pytest.raises(graphc.EvaluationError, match="cannot convert str"):
        llvm_kernel("a", 1.0)


def test_results_do_not_depend_on_the_thread_count():
    text = "sin(x*y) + exp(-x**2) * atan2(y, 1 + x**2)"
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(300_000), rng.standard_normal(300_000)
    results = [graphc.grad(text, backend="llvm", threads=t)(x, y) for t in (1, 2, 3)]
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert np.array_equal(a, b)
    expected = graphc.grad(text)(x, y)  # libm and NumPy's exp differ in the last bit: cancellation
    assert all(same(a, b, floor=1e-14) for a, b in zip(results[0], expected, strict=True))


def test_a_split_batch_runs_on_threads_kept_between_calls():
    import threading

    from graphc.backends.llvm.run import _WORKERS

    kernel = graphc.compile("x * y + exp(x)", backend="llvm", threads=3)
    x = np.linspace(-1.0, 1.0, 200_000)
    expected = x * 2.0 + np.exp(x)
    kernel(x, 2.0)
    started = {t.ident for t in threading.enumerate() if t.name.startswith("graphc-llvm")}
    assert started, "a batch of 200,000 points on 3 threads was not split"
    for _ in range(5):
        assert same(kernel(x, 2.0), expected, floor=1e-15)
    later = {t.ident for t in threading.enumerate() if t.name.startswith("graphc-llvm")}
    # kept, not started per call: the first call's threads are all still there, and the pool never
    # holds more than its size (a ThreadPoolExecutor starts a thread only when none is idle, so on a
    # loaded machine the first call may have started fewer than the pool may hold)
    assert started <= later, "a worker thread of the first call was not kept"
    assert len(later) <= _WORKERS._size


def test_result_blocks_are_kept_within_limits(monkeypatch):
    from graphc.backends.llvm import run as llvm_run

    kernel = graphc.compile("x * y + exp(x)", backend="llvm", threads=1)
    x = np.linspace(-1.0, 1.0, 50_000)  # 400 kB of results
    kernel(x, 2.0)
    assert len(kernel._function._blocks) == 1
    monkeypatch.setattr(llvm_run, "RECYCLE_MAX", 100_000)
    kernel(x, 2.0)
    assert not kernel._function._blocks, "a block above RECYCLE_MAX was kept"
    kernel(x[:100], 2.0)
    assert not kernel._function._blocks, "a block below RECYCLE_MIN was kept"


@pytest.mark.parametrize("threads", [1, 3])
def test_streamed_results_are_the_stored_ones_whatever_the_outputs_alignment(monkeypatch, threads):
    """A large batch's results are written with non-temporal stores, which need every output's
    vectors aligned: the kernel streams from the first aligned point when all outputs share one
    alignment, and stores plainly otherwise; the bits never change."""
    from graphc.backends.llvm import run as llvm_run

    kernel = graphc.grad("sin(x) * y + x * x * y / (1 + y * y)", backend="llvm", threads=threads)
    assert "!nontemporal" in kernel.source and "fence seq_cst" in kernel.source
    x, y = (np.random.default_rng(seed).uniform(-2, 2, 150_011) for seed in (0, 1))
    monkeypatch.setattr(llvm_run, "STREAM_BYTES", 1 << 62)  # never streamed
    expected = [g.copy() for g in kernel(x, y)]
    monkeypatch.setattr(llvm_run, "STREAM_BYTES", 0)  # always streamed where it may be
    calls = []
    original = llvm_run.CompiledKernel._run
    monkeypatch.setattr(
        llvm_run.CompiledKernel,
        "_run",
        lambda self, memory, size, first=0: calls.append(first) or original(self, memory, size, first),
    )
    for size in (150_011, 150_008, 100, 9, 1):
        results = kernel(x[:size], y[:size])
        assert all(np.array_equal(g, e[:size]) for g, e in zip(results, expected, strict=True)), size
    lanes, n, stride = backend.lanes(), 150_011, 150_080  # rows a whole number of vectors apart
    block = np.empty(2 * stride + 64)
    aligned = -block.ctypes.data % (8 * lanes) // 8  # the block's first index on a vector's boundary
    peeled = set()
    for shifts in ((0, 0), (1, 1), (3, 3), (0, 1), (5, 2)):  # each row this many doubles off a boundary
        out = tuple(block[aligned + j * stride + k :][:n] for j, k in enumerate(shifts))
        kernel.into(out, x, y)
        assert all(np.array_equal(g, e) for g, e in zip(out, expected, strict=True)), shifts
        if shifts[0] == shifts[1]:
            peeled.add(-shifts[0] % lanes)
    assert calls.count(0) and set(calls) >= peeled, (calls, peeled)  # (0, 1) and (5, 2): not streamed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_computes_split_batches():
    kernel = graphc.compile("x * y + exp(x)", backend="llvm", threads=2)
    x = np.linspace(-1.0, 1.0, 200_000)
    expected = x * 2.0 + np.exp(x)
    kernel(x, 2.0)  # the parent's worker threads exist; the child has none of them
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports by its exit code
        try:
            os._exit(0 if same(kernel(x, 2.0), expected, floor=1e-15) else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.01)
    os.kill(child, 9)
    os.waitpid(child, 0)
    pytest.fail("the forked child hung on a split batch")


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_bad_thread_counts_are_backend_errors(threads):
    with pytest.raises(graphc.BackendError, match="threads must be a whole number"):
        graphc.compile("x", backend="llvm", threads=threads)
    with pytest.raises(graphc.BackendError, match="threads= applies to the llvm backend"):
        graphc.compile("x", threads=2)


def random_graph(nodes: int, variables: int = 6, seed: int = 0) -> Graph:
    rng = random.Random(seed)
    g = Graph()
    made = [g.var(f"x{i}") for i in range(variables)]
    while len(g) < nodes:
        if rng.random() < 0.3:
            made.append(g.apply(rng.choice(["sin", "cos", "tanh", "sigmoid"]), rng.choice(made[-40:])))
        else:
            made.append(g.apply(rng.choice(["add", "mul", "sub"]), rng.choice(made[-40:]), rng.choice(made)))
    g.set_outputs([g.add(made[-1], made[-2])])
    return g


def test_a_big_gradient_is_split_into_parts_and_agrees_with_numpy():
    graph = random_graph(3000)
    derivative = graphc.differentiate(graph)
    planned = Plan.of(derivative)
    assert len(planned.parts) >= 2 and 0 < planned.size < len(derivative)
    rng = np.random.default_rng(1)
    point = {f"x{i}": rng.uniform(-1, 1, 50) for i in range(6)}
    expected = graphc.compile(derivative)(**point)
    got = graphc.compile(derivative, backend="llvm")(**point)
    assert all(same(g, e, 1e-11) for g, e in zip(got, expected, strict=True))


def test_tiny_parts_pass_every_live_value_through_scratch(monkeypatch):
    monkeypatch.setattr(plan, "PART_SIZE", 3)
    text = "u = x*y; v = sin(u) + u; w = v*x - y; w*u + exp(v), x, u"
    planned = Plan.of(graphc.parse(text))
    assert len(planned.parts) > 2
    assert planned.size < len(planned.slots), "slots are reused once their value is dead"
    kernel, reference = graphc.compile(text, backend="llvm"), graphc.compile(text)
    for point in (([0.3, -1.2], 0.8), (0.3, 0.8)):  # a batch, and one point (the point kernel)
        assert all(same(g, e) for g, e in zip(kernel(*point), reference(*point), strict=True))


def test_kernels_compiled_on_several_threads_at_once(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    texts = [f"sin(x*{i}) + exp(y)/{i + 1}" for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        kernels = list(pool.map(lambda t: graphc.grad(t, backend="llvm"), texts))
    for text, kernel in zip(texts, kernels, strict=True):
        assert same(np.array(kernel(0.3, 0.4)), np.array(graphc.grad(text)(0.3, 0.4)))


def test_the_kernel_owns_its_execution_engine():
    kernel = graphc.grad("sin(x) * y", backend="llvm")
    gc.collect()
    assert kernel(0.5, 2.0) == (2.0 * math.cos(0.5), math.sin(0.5))


def test_a_missing_c_function_is_a_backend_error_not_a_crash():
    with pytest.raises(graphc.BackendError, match="cannot find the C library function.*graphc_no_such"):
        resolve_symbols(["sin", "graphc_no_such_function"])


def test_the_c_library_s_sin_is_found_in_the_process_without_searching_for_libm():
    """sin and cos fall back on the C library's beyond TRIG_BOUND: its functions come from the
    process (Python has libm loaded), not from a search for the file (ctypes.util: 13 ms)."""
    code = (
        "import math, sys; import graphc\n"
        "k = graphc.grad('sin(x) * atan2(y, x)', backend='llvm')\n"
        "x, y = 3e6, 0.5\n"
        "expected = (math.cos(x) * math.atan2(y, x) + math.sin(x) * -y / (x*x + y*y),"
        " math.sin(x) * x / (x*x + y*y))\n"
        "print(all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(k(x, y), expected)),"
        " 'ctypes.util' in sys.modules)\n"
    )
    env = {**os.environ, "GRAPHC_NO_CACHE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.split() == ["True", "False"]


# --- the disk cache ---------------------------------------------------------------------------


def entries(directory) -> list:
    return sorted((directory / "llvm").glob("*.bin"))


def test_the_second_compile_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    first = graphc.grad("x**3 * y", backend="llvm")
    assert len(entries(tmp_path / "cache")) == 1
    assert os.stat(tmp_path / "cache").st_mode & 0o777 == 0o700
    assert os.stat(entries(tmp_path / "cache")[0]).st_mode & 0o077 == 0

    def no_llvm(*args, **kwargs):
        raise AssertionError("LLVM ran although the cache holds the code")

    monkeypatch.setattr(jit, "build", no_llvm)
    second = graphc.grad("x**3 * y", backend="llvm")
    assert second(2.0, 3.0) == first(2.0, 3.0) == (36.0, 8.0)
    assert second.source == first.source and "graphc_kernel" in second.source


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-10] + bytes(10),  # machine code altered
        lambda data: b"garbage",
        lambda data: data[:20] + b"x" * (len(data) - 20),  # a header without its fields
        lambda data: b"",
    ],
)
def test_a_corrupt_entry_is_ignored_and_rebuilt(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    graphc.compile("exp(x) - y", backend="llvm")
    (entry,) = entries(tmp_path)
    entry.write_bytes(damage(entry.read_bytes()))
    assert graphc.compile("exp(x) - y", backend="llvm")(0.0, 1.0) == 0.0
    assert Cache(tmp_path).load(entry.stem) is not None, "the rebuilt entry replaced the corrupt one"


def test_an_entry_under_another_key_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    graphc.compile("x + 1", backend="llvm")
    graphc.compile("x + 2", backend="llvm")
    one, two = entries(tmp_path)
    two.write_bytes(one.read_bytes())  # a valid entry, but for another graph
    assert Cache(tmp_path).load(two.stem) is None


def test_an_open_or_foreign_cache_directory_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "open"))
    (tmp_path / "open").mkdir(mode=0o777)
    os.chmod(tmp_path / "open", 0o777)
    with pytest.warns(RuntimeWarning, match="permissions 777"):
        assert graphc.compile("x*2", backend="llvm")(2.0) == 4.0
    assert not (tmp_path / "open" / "llvm").exists() or not entries(tmp_path / "open")

    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "mine"))
    graphc.compile("x*3", backend="llvm")
    monkeypatch.setattr(os, "getuid", lambda: 4242)
    with pytest.warns(RuntimeWarning, match="owned by user id"):
        assert graphc.compile("x*3", backend="llvm")(2.0) == 6.0


def test_no_cache_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    graphc.compile("x - 1", backend="llvm")
    assert not entries(tmp_path)


RUNTIME_CHILD = """
import sys
import numpy as np
import graphc
from graphc.backends.llvm import runtime, tail, tape, vecmath

if sys.argv[1] == "again":  # the runtime must come from the disk: generating its IR is an error
    def compiled_again(*args, **kwargs):
        raise AssertionError("graphc's runtime was compiled again")
    tape.interpreter_text = vecmath.module = runtime._runtime_build = compiled_again
    tail.helpers_module = compiled_again
ops = ["sin({})", "exp(-{}*{})", "tanh({})", "log(1 + {}*{})", "cos({}) * y", "atan({})", "{}**2 - x"]
lines = ["a0 = x"] + [f"a{k} = " + ops[k % 7].format(f"a{k - 1}", f"a{k // 2}") for k in range(1, 1500)]
tape = graphc.grad("; ".join(lines + ["a1499"]), backend="llvm")  # > TAPE_NODES nodes: a tape
sines = graphc.compile(" + ".join(f"sin({k}*x + y)" for k in range(1, 61)), backend="llvm")
assert tape._function._program is not None and sines._function._program is None
assert "call" in sines.source  # sin called, not inlined
x = np.linspace(-3, 3, 37)
values = [*tape(x, 0.25), *tape(0.5, -1.0), sines(x, 0.25), sines(4e6, 0.5)]
print(np.hstack(values).tobytes().hex())
"""


def test_graphc_s_runtime_is_compiled_once_per_machine_and_loaded_from_the_disk(tmp_path):
    """The vector functions and the tape interpreter depend on the machine, not the graph: the
    first process compiles them into the cache's runtime folder, later ones load them (no IR
    generated), with the bits of a process that compiles its own (no cache)."""

    def child(mode: str, **env: str) -> str:
        environment = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path / "cache"), **env}
        command = [sys.executable, "-c", RUNTIME_CHILD, mode]
        result = subprocess.run(command, check=False, capture_output=True, text=True, env=environment)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    first = child("first")
    runtime = sorted((tmp_path / "cache" / "runtime").glob("*.bin"))
    assert len(runtime) == 3  # the library, the tail's helpers and the interpreter
    assert all(os.stat(entry).st_mode & 0o077 == 0 for entry in runtime)
    assert child("again") == first
    assert child("first", GRAPHC_NO_CACHE="1") == first


def test_the_cache_key_does_not_depend_on_the_hash_seed():
    program = "u = y*x; v = max(u, z); sin(v)*u + atan2(z, x), exp(-u)"
    code = (
        "import graphc; from graphc.backends.llvm.cache import graph_key; "
        f"print(graph_key(graphc.differentiate(graphc.parse({program!r}).copy()), 'o'))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(keys) == 1
    assert graph_key(graphc.parse("x + 1"), "o") != graph_key(graphc.parse("x + 2"), "o")
    assert graph_key(graphc.parse("x + 1"), "o") != graph_key(graphc.parse("x + 1"), "p")


def test_cli_emits_the_optimised_ir_of_the_function_and_its_gradient():
    from graphc.cli import main

    result = subprocess.run(
        [sys.executable, "-m", "graphc", "grad", "sin(x)*y", "--emit", "llvm"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "i64 @graphc_kernel(" in result.stdout and "x double>" in result.stdout  # sin, cos vectorised
    )
    assert callable(main)
