"""Kernels called with Dask arrays: lazy Dask results, one kernel call per block, on a real cluster."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import graphc

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

EXPR = "sin(x*y) + exp(x)/(1 + y*y)"
KINDS = {
    "compile": lambda backend: graphc.compile(f"{EXPR}, x*y", backend),
    "grad": lambda backend: graphc.grad(EXPR, backend=backend),
    "value_and_grad": lambda backend: graphc.value_and_grad(EXPR, backend=backend),
    "jacobian": lambda backend: graphc.jacobian(f"{EXPR}, x/y, x - y", backend=backend),
    "hessian": lambda backend: graphc.hessian(EXPR, backend=backend),
    "derivative": lambda backend: graphc.derivative(EXPR, "x", order=2, backend=backend),
}


def _leaves(result: Any) -> list[Any]:
    """The arrays of a result, in order (a tuple, a value and a tuple of partials, an array)."""
    stack, leaves = [result], []
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
        else:
            leaves.append(item)
    return leaves


def _same_bits(got: Any, expected: Any) -> bool:
    pairs = zip(_leaves(got), _leaves(expected), strict=True)
    return all(
        np.shape(a) == np.shape(b) and np.asarray(a).tobytes() == np.asarray(b).tobytes() for a, b in pairs
    )


RNG = np.random.default_rng(28)
X = RNG.uniform(-2.0, 2.0, (700, 12))
Y = RNG.uniform(0.5, 2.0, 12)


@pytest.mark.parametrize("kind", list(KINDS))
def test_dask_inputs_give_lazy_dask_results_equal_to_numpy(kind: str) -> None:
    kernel = KINDS[kind]("numpy")
    result = kernel(da.from_array(X, chunks=(250, 5)), Y)
    leaves = _leaves(result)
    assert all(isinstance(leaf, da.Array) for leaf in leaves)
    assert isinstance(result, tuple) == isinstance(kernel(X, Y), tuple)  # a tuple stays a tuple
    (computed,) = dask.compute(result, scheduler="synchronous")
    assert _same_bits(computed, kernel(X, Y))


def test_nothing_is_computed_until_compute() -> None:
    blocks: list[tuple[int, ...]] = []
    lock = threading.Lock()

    def source(block: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
        with lock:
            blocks.append(tuple(block_info[None]["chunk-location"]) if block_info else ())
        return block

    x = da.from_array(X, chunks=(100, 6)).map_blocks(source, meta=np.empty((0, 0)))
    value, partials = graphc.value_and_grad(EXPR)(x, 1.5)
    assert blocks == []
    dask.compute(value, *partials, scheduler="synchronous")
    assert sorted(blocks) == sorted({(i, j) for i in range(7) for j in range(2)})


def test_one_kernel_call_per_block_for_every_output() -> None:
    calls: list[tuple[int, ...]] = []
    kernel = graphc.grad(EXPR)
    original = kernel.compute

    def counting(out: list[np.ndarray], values: tuple[Any, ...]) -> None:
        calls.append(out[0].shape)
        original(out, values)

    kernel.compute = counting  # type: ignore[method-assign]
    dx, dy = kernel(da.from_array(X, chunks=(350, 6)), Y)
    dask.compute(dx, dy, scheduler="synchronous")
    assert len(calls) == 4  # 2 x 2 blocks, both partials from each call
    assert sorted(calls) == [(350, 6)] * 4


def test_chunks_are_aligned_as_broadcasting_needs() -> None:
    kernel = graphc.compile("x*y + z")
    x = da.from_array(X, chunks=(300, 4))  # (700, 12)
    y = da.from_array(Y, chunks=5)  # (12,): the trailing axis, chunked differently
    z = da.from_array(X[:1], chunks=(1, 12))  # (1, 12): broadcasts along the first axis
    result = kernel(x, y, z)
    assert result.shape == (700, 12)
    assert result.chunks == ((300, 300, 100), (4, 1, 3, 2, 2))  # the common refinement
    assert np.array_equal(result.compute(scheduler="synchronous"), kernel(X, Y, X[:1]))


def test_shapes_that_do_not_broadcast_are_an_evaluation_error() -> None:
    with pytest.raises(graphc.EvaluationError, match="do not broadcast"):
        graphc.compile("x*y")(da.ones((4, 3)), np.ones(4))


def test_an_implicit_kernel_refuses_dask_arrays() -> None:
    kernel = graphc.implicit("x^2 + y^2 - 1", "y")
    with pytest.raises(graphc.EvaluationError, match="implicit kernel .* not Dask arrays"):
        kernel(da.ones(3), 0.5)


def test_importing_and_compiling_does_not_import_dask() -> None:
    code = (
        "import sys, graphc; k = graphc.value_and_grad('sin(x*y)'); k(1.0, 2.0); k([1.0], [2.0]);"
        "assert not any(m == 'dask' or m.startswith('dask.') for m in sys.modules), 'dask imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        timeout="60s",
    )
    try:
        with distributed.Client(cluster, timeout="60s") as connected:
            yield connected
    finally:
        cluster.close(timeout=30)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("kind", ["value_and_grad", "jacobian", "hessian"])
def test_a_local_cluster_of_two_processes_computes_what_numpy_does(
    kind: str, backend: str, client: Any
) -> None:
    kernel = KINDS[kind](backend)
    x = da.from_array(X, chunks=(175, 12))
    y = da.from_array(np.broadcast_to(Y, X.shape).copy(), chunks=(350, 6))
    futures = client.compute(_leaves(kernel(x, y)))
    computed = [future.result(timeout=120) for future in futures]
    assert _same_bits(computed, _leaves(kernel(X, Y)))  # the same compiled code, in the workers
    reference = _leaves(KINDS[kind]("numpy")(X, Y))
    assert all(np.allclose(a, b, rtol=1e-11, atol=1e-11) for a, b in zip(computed, reference, strict=True))
    workers = client.run(lambda: sorted(m for m in sys.modules if m.startswith("graphc")), wait=True)
    assert len(workers) == 2


def _count_rebuilds() -> None:
    """In a worker: count the kernels loaded from pickles from now on."""
    from graphc import kernel

    original = kernel.rebuild
    kernel.rebuilt = 0  # type: ignore[attr-defined]

    def counting(state: Any) -> graphc.Kernel:
        kernel.rebuilt += 1  # type: ignore[attr-defined]
        return original(state)

    kernel.rebuild = counting


def _rebuilds() -> int:
    from graphc import kernel

    return int(kernel.rebuilt)  # type: ignore[attr-defined]


def test_each_worker_loads_a_kernel_once_not_once_per_block(client: Any) -> None:
    client.run(_count_rebuilds)
    kernel = graphc.grad("cos(x) * y - x/(1 + y*y)", backend="llvm")
    dx, dy = kernel(da.from_array(X.ravel(), chunks=200), 0.5)  # 42 blocks
    assert dx.numblocks == (42,)
    (total,) = client.compute([dx.sum() + dy.sum()])
    assert np.isclose(total.result(timeout=120), sum(part.sum() for part in kernel(X.ravel(), 0.5)))
    counts = list(client.run(_rebuilds).values())
    assert len(counts) == 2 and all(count <= 1 for count in counts) and sum(counts) >= 1


# Tensor kernels: blocks along the batch axes only, the declared (core) axes whole.
TENSOR = "W: [3, n]; x: [n]; b: [3]; h = tanh(W @ x + b); sum(h * h)"
TENSOR_KINDS = {
    "compile": lambda backend: graphc.compile(TENSOR.replace("; sum(", "; h, sum("), backend),
    "value_and_grad": lambda backend: graphc.value_and_grad(TENSOR, backend=backend),
    "jacobian": lambda backend: graphc.jacobian(
        "W: [3, n]; x: [n]; b: [3]; tanh(W @ x + b)", wrt="x", backend=backend, dims={"n": 4}
    ),
    "hessian": lambda backend: graphc.hessian(TENSOR, wrt="x", backend=backend, dims={"n": 4}),
    "vjp": lambda backend: graphc.vjp("W: [3, n]; x: [n]; tanh(W @ x)", backend=backend),
}
TW = RNG.normal(size=(3, 4))
TX = RNG.normal(size=(2, 9, 4))  # batch (2, 9)
TB = RNG.normal(size=(9, 3))  # batch (9,): broadcasts against x's


def _tensor_arguments(kernel: graphc.Kernel, chunked: bool) -> dict[str, Any]:
    values = {"W": TW, "x": TX, "b": TB, "cotangent": TB[:1]}
    arguments = {name: values[name] for name in kernel.variables}
    if chunked:  # x chunked along its batch axes and, needlessly, its core axis
        arguments["x"] = da.from_array(TX, chunks=(1, 4, 3))
    return arguments


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("kind", list(TENSOR_KINDS))
def test_a_tensor_kernel_on_dask_arrays_gives_numpys_bits_block_by_batch_block(
    kind: str, backend: str
) -> None:
    kernel = TENSOR_KINDS[kind](backend)
    result = kernel(**_tensor_arguments(kernel, chunked=True))
    expected = kernel(**_tensor_arguments(kernel, chunked=False))
    leaves = _leaves(result)
    assert all(isinstance(leaf, da.Array) for leaf in leaves)
    assert isinstance(result, tuple) == isinstance(expected, tuple)
    for leaf, want in zip(leaves, _leaves(expected), strict=True):
        assert leaf.shape == want.shape
        assert leaf.chunks[:2] == ((1, 1), (4, 4, 1))  # the batch's blocks, as x was cut
        assert all(len(c) == 1 for c in leaf.chunks[2:])  # the core axes whole
    (computed,) = dask.compute(result, scheduler="synchronous")
    assert _same_bits(computed, expected)


def test_a_tensor_kernel_is_called_once_per_batch_block() -> None:
    calls: list[tuple[int, ...]] = []
    kernel = graphc.value_and_grad(TENSOR)
    original = kernel._function

    def counting(*values: Any) -> Any:
        calls.append(np.shape(values[2]))  # x's block
        return original(*values)

    kernel._function = counting
    value, (_, _, dx) = kernel(W=TW, b=TB, x=da.from_array(TX, chunks=(1, 5, 4)))
    assert calls == []  # nothing computed yet
    dask.compute(value, dx, scheduler="synchronous")
    assert sorted(calls) == sorted([(1, 5, 4), (1, 4, 4)] * 2)


def test_tensor_shapes_that_do_not_fit_are_an_evaluation_error_before_anything_runs() -> None:
    kernel = graphc.compile(TENSOR)
    with pytest.raises(
        graphc.EvaluationError, match=r"input 'x' is declared \[n\] but given shape \(2, 9, 5\)"
    ):
        kernel(W=TW, b=TB, x=da.ones((2, 9, 5)))
    with pytest.raises(graphc.EvaluationError, match="batch axes do not broadcast"):
        kernel(W=TW, b=np.ones((4, 3)), x=da.ones((2, 9, 4)))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_local_cluster_computes_a_tensor_gradient_as_numpy_does(backend: str, client: Any) -> None:
    kernel = TENSOR_KINDS["value_and_grad"](backend)
    futures = client.compute(_leaves(kernel(**_tensor_arguments(kernel, chunked=True))))
    computed = [future.result(timeout=120) for future in futures]
    assert _same_bits(tuple(computed), kernel(**_tensor_arguments(kernel, chunked=False)))


# Kernel.into with Dask arguments: computed now, block by block, into the caller's arrays.
class _Recording:
    """An array-like target (as zarr or h5py arrays are): a shape and item assignment."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.data = np.full(shape, np.nan)
        self.writes = 0

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        self.writes += 1
        self.data[key] = value


@pytest.mark.parametrize("kind", ["compile", "grad", "value_and_grad", "jacobian", "hessian"])
def test_into_with_dask_arguments_writes_each_block_into_out(kind: str) -> None:
    kernel = KINDS[kind]("numpy")
    expected = kernel(X, Y)
    out = _shaped_like(expected, lambda shape: np.full(shape, np.nan))
    with dask.config.set(scheduler="synchronous"):
        assert kernel.into(out, da.from_array(X, chunks=(350, 6)), Y) is out
    assert _same_bits(out, expected)


def _shaped_like(result: Any, make: Any) -> Any:
    if isinstance(result, tuple):
        return tuple(_shaped_like(item, make) for item in result)
    return make(np.shape(result))


def test_into_with_dask_arguments_takes_array_likes_written_block_by_block() -> None:
    kernel = graphc.grad(EXPR)
    out = (_Recording(X.shape), _Recording(X.shape))
    with dask.config.set(scheduler="threads"):  # in this process (a cluster's workers write copies)
        kernel.into(out, da.from_array(X, chunks=(350, 6)), Y)
    assert [target.writes for target in out] == [4, 4]  # 2 x 2 blocks each
    assert _same_bits((out[0].data, out[1].data), kernel(X, Y))


def test_into_with_dask_arguments_refuses_outs_that_cannot_take_the_result() -> None:
    kernel = graphc.grad(EXPR)
    x = da.from_array(X, chunks=(350, 6))
    cases = [
        ((np.empty(X.shape),), "out must hold 2 arrays"),
        (
            (np.empty(X.shape), np.empty((700, 11))),
            r"out array 1 has shape \(700, 11\), but the result's is \(700, 12\)",
        ),
        ((np.empty(X.shape, dtype=np.float32), np.empty(X.shape)), "out array 0 must have dtype float64"),
        ((np.empty(X.shape), "dx"), "out array 1 must be an array that can be written into, got str"),
    ]
    for out, message in cases:
        with pytest.raises(graphc.OutputError, match=message):
            kernel.into(out, x, Y)


def test_into_with_dask_arguments_on_a_cluster_refuses_numpy_outs(client: Any) -> None:
    kernel = graphc.grad(EXPR)
    out = (np.zeros(X.shape), np.zeros(X.shape))
    with pytest.raises(graphc.OutputError, match="distributed cluster cannot write into NumPy arrays"):
        kernel.into(out, da.from_array(X, chunks=(350, 6)), Y)
