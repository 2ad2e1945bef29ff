"""Kernel.into: results written into caller-provided arrays, on every backend, checked loudly; and
the result blocks plain calls write into again once their caller let go of them."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE

AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]
EXPR = "x*y + sin(x)"
X = np.linspace(-2.0, 2.0, 7)


def same_results(got: object, expected: object) -> None:
    """``got`` and ``expected`` have the same structure and equal arrays, to the bit."""
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            same_results(a, b)
    else:
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def empty_like_result(result: object) -> object:
    if isinstance(result, tuple):
        return tuple(empty_like_result(r) for r in result)
    return np.full(np.shape(result), np.nan)


KERNELS = {
    "compile one": lambda b: graphc.compile(EXPR, backend=b),
    "compile several": lambda b: graphc.compile("x*y, x + y, x", backend=b),
    "grad": lambda b: graphc.grad(EXPR, backend=b),
    "grad one partial": lambda b: graphc.grad(EXPR, wrt="x", backend=b),
    "value_and_grad": lambda b: graphc.value_and_grad(EXPR, backend=b),
    "jacobian": lambda b: graphc.jacobian("x*y, exp(x) - y, 2", backend=b),
    "hessian": lambda b: graphc.hessian("x**2 * y + sin(y)", backend=b),
    "derivative": lambda b: graphc.derivative("x**3 * y", "x", order=2, backend=b),
}


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("kind", list(KERNELS))
@pytest.mark.parametrize("size", [0, 1, 7, 40_000], ids=lambda n: f"n{n}")  # 40,000: chunks, threads
def test_into_writes_what_a_call_returns_and_returns_out(backend: str, kind: str, size: int) -> None:
    k = KERNELS[kind](backend)
    x = np.linspace(-2.0, 2.0, size)
    expected = k(x, 0.75)
    out = empty_like_result(expected)
    assert k.into(out, x, 0.75) is out
    same_results(out, expected)
    again = k.into(out, x, -1.5)  # the same memory, new values
    same_results(again, k(x, -1.5))


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("kind", list(KERNELS))
def test_into_at_one_point_takes_zero_dimensional_arrays(backend: str, kind: str) -> None:
    k = KERNELS[kind](backend)
    expected = k(0.5, 2.0)
    out = empty_like_result(expected)
    k.into(out, 0.5, 2.0)
    same_results(out, expected)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_variable_named_out_is_still_an_input(backend: str) -> None:
    k = graphc.grad("out * y", backend=backend)
    assert k.variables == ("out", "y")
    buffers = (np.empty(3), np.empty(3))
    k.into(buffers, out=np.array([1.0, 2.0, 3.0]), y=2.0)
    np.testing.assert_array_equal(buffers[0], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(buffers[1], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("backend", AVAILABLE)
def test_an_input_returned_as_an_output_is_copied_into_out(backend: str) -> None:
    k = graphc.compile("x, 2.5", backend=backend)
    out = (np.empty(7), np.empty(7))
    k.into(out, X)
    np.testing.assert_array_equal(out[0], X)
    np.testing.assert_array_equal(out[1], np.full(7, 2.5))


def bad_outs() -> list[tuple[str, object, str]]:
    """(case, out for grad(EXPR) at 7 points, the expected message)."""
    base = np.empty(14)
    read_only = np.empty(7)
    read_only.flags.writeable = False
    return [
        ("not a tuple", np.empty(7), "out must be a tuple of 2 arrays (one per partial), got ndarray"),
        ("too few", (np.empty(7),), "out must be a tuple of 2 arrays (one per partial), got 1 items"),
        (
            "a list inside",
            ([0.0] * 7, np.empty(7)),
            "out for output 0 (∂f/∂x) must be a NumPy array, got list",
        ),
        (
            "shape",
            (np.empty(7), np.empty((1, 7))),
            "out for output 1 (∂f/∂y) has shape (1, 7), but the arguments broadcast to (7,)",
        ),
        (
            "dtype",
            (np.empty(7, dtype=np.float32), np.empty(7)),
            "out for output 0 (∂f/∂x) must have dtype float64, got float32",
        ),
        ("strided", (np.empty(7), base[::2]), "out for output 1 (∂f/∂y) must be C-contiguous"),
        ("read-only", (read_only, np.empty(7)), "out for output 0 (∂f/∂x) is read-only"),
        (
            "overlapping outputs",
            (base[:7], base[6:13]),
            "out for output 0 (∂f/∂x) and out for output 1 (∂f/∂y) overlap",
        ),
        ("the same array twice", (base[:7], base[:7]), "overlap"),
    ]


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("case", bad_outs(), ids=lambda c: c[0])
def test_unusable_outs_are_output_errors_naming_the_problem(backend: str, case: tuple) -> None:
    _, out, message = case
    k = graphc.grad(EXPR, backend=backend)
    with pytest.raises(graphc.OutputError) as err:
        k.into(out, X, 1.0)
    assert message in str(err.value)
    assert isinstance(err.value, graphc.EvaluationError)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_an_out_overlapping_an_input_is_refused(backend: str) -> None:
    k = graphc.grad(EXPR, backend=backend)
    x = X.copy()
    with pytest.raises(graphc.OutputError, match="out for output 1 \\(∂f/∂y\\) overlaps the input 'x'"):
        k.into((np.empty(7), x), x, 1.0)
    wide = np.empty((2, 7))
    with pytest.raises(graphc.OutputError, match="overlaps the input 'y'"):
        k.into((wide[0], np.empty(7)), X, wide[0, :1])  # y: a view into the same memory
    np.testing.assert_array_equal(x, X)  # nothing was written


@pytest.mark.parametrize("backend", AVAILABLE)
def test_matrix_outs_need_the_rows_and_columns(backend: str) -> None:
    k = graphc.jacobian("x*y, x + y", backend=backend)
    expected = r"out must be an array of shape \(\*batch, 2, 2\), got shape \(4, 7\)"
    with pytest.raises(graphc.OutputError, match=expected):
        k.into(np.empty((4, 7)), X, 1.0)
    with pytest.raises(graphc.OutputError, match="must be C-contiguous"):
        k.into(np.empty((2, 2, 7)).transpose(2, 0, 1), X, 1.0)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_bad_arguments_are_still_evaluation_errors(backend: str) -> None:
    k = graphc.grad(EXPR, backend=backend)
    with pytest.raises(graphc.EvaluationError, match="missing value for variable y"):
        k.into((np.empty(7), np.empty(7)), x=X)
    with pytest.raises(graphc.EvaluationError, match="do not broadcast"):
        k.into((np.empty(7), np.empty(7)), X, np.ones(3))


def test_a_kernel_computing_after_the_compiled_code_has_no_into() -> None:
    k = graphc.implicit("x^2 + z^2 - 1", solve_for="z")
    with pytest.raises(graphc.OutputError, match="into is not available"):
        k.into((np.empty(()),), x=0.6, z=0.8)


@pytest.mark.parametrize("size", [7, 40_000])
def test_the_generated_numpy_module_takes_out_too(size: int) -> None:
    k = graphc.grad(EXPR)
    namespace: dict = {}
    exec(compile(k.source, "<generated>", "exec"), namespace)  # noqa: S102 - graphc's own output
    x = np.linspace(-2.0, 2.0, size)
    out = [np.empty(size), np.empty(size)]
    namespace["f"](x, 0.5, out=out)
    same_results(tuple(out), k(x, 0.5))


def _start(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_result_block_let_go_is_written_again_and_one_still_held_never_is(backend: str) -> None:
    kernel = graphc.grad("x * y + sin(x)", backend=backend)
    x = np.linspace(-1.0, 1.0, 50_000)  # 2 partials: 800 kB, a recycled size

    first = kernel(x, 2.0)
    address = _start(first[0])
    del first
    second = kernel(x, 3.0)
    assert _start(second[0]) == address, "a block its caller let go of was not reused"
    assert np.allclose(second[0], 3.0 + np.cos(x), rtol=1e-15, atol=1e-15)

    # Anything of the caller's that refers to the block keeps it: a row, a view of a row, a copy
    # made by np.asarray (the same array), a memoryview.
    for keep in (lambda r: r[1], lambda r: r[0][::2], lambda r: np.asarray(r[0]), lambda r: memoryview(r[1])):
        held = keep(second)
        before = np.array(held, copy=True)
        del second
        second = kernel(x, 4.0)
        assert _start(second[0]) != address or not np.shares_memory(np.asarray(held), second[0])
        assert np.array_equal(np.asarray(held), before), "a later call overwrote results still held"
        assert np.allclose(second[0], 4.0 + np.cos(x), rtol=1e-15, atol=1e-15)
        address = _start(second[0])
        del held

    # Another batch size takes new memory, and a small result is never kept.
    other = kernel(x[:1000], 2.0)
    assert not np.shares_memory(other[0], second[0])


# Within what each backend's results match NumPy's own: the NumPy backend calls the same ufuncs, the
# LLVM backend graphc's own exp (within an ulp; x*y + exp(x) cancels where x*y = -exp(x)).
AGREES = {"numpy": {"rtol": 1e-15, "atol": 0.0}, "llvm": {"rtol": 1e-12, "atol": 1e-15}}


@pytest.mark.parametrize("backend", AVAILABLE)
def test_calls_on_several_threads_never_write_into_each_others_results_or_scratch(backend: str) -> None:
    import threading

    kernel = graphc.compile("x * y + exp(x)", backend=backend)
    x = np.linspace(-1.0, 1.0, 50_000)  # 400 kB of results: a kept size
    y = np.full_like(x, 2.0)  # every input an array: NumPy's sliced body, with its scratch
    errors = []

    def worker(z: float) -> None:
        for _ in range(30):
            result = kernel(x, y * z)
            if not np.allclose(result, x * y * z + np.exp(x), **AGREES[backend]):
                errors.append(z)

    workers = [threading.Thread(target=worker, args=(float(z),)) for z in range(4)]
    for worker_thread in workers:
        worker_thread.start()
    for worker_thread in workers:
        worker_thread.join()
    assert not errors, "calls on several threads wrote into each other's results or scratch"


@pytest.mark.parametrize("backend", AVAILABLE)
def test_out_arrays_are_checked_once_per_shape_not_on_every_call(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graphc.kernel

    checks = []
    original = graphc.kernel._check_arrays
    monkeypatch.setattr(graphc.kernel, "_check_arrays", lambda *a: checks.append(a[1]) or original(*a))
    k = graphc.compile(", ".join(f"x*{i}.0 + sin(y)" for i in range(1, 60)), backend=backend)
    out = tuple(np.empty(7) for _ in range(59))
    for y in (0.5, 1.5, 2.5):
        k.into(out, X, y)
        same_results(out, k(X, y))
    k.into(list(out), X, 0.5)  # the same arrays in another sequence: known by identity
    assert checks == [(7,)]
    wide = tuple(np.empty((2, 7)) for _ in range(59))
    k.into(wide, np.stack([X, X]), 0.5)
    assert checks == [(7,), (2, 7)]


@pytest.mark.parametrize("backend", AVAILABLE)
def test_remembered_outs_still_refuse_what_they_cannot_take(backend: str) -> None:
    k = graphc.grad(EXPR, backend=backend)
    out = [np.empty(7), np.empty(7)]
    k.into(out, X, 1.0)
    # other arguments' shape
    with pytest.raises(graphc.OutputError, match=r"has shape \(7,\), but the arguments broadcast to \(3,\)"):
        k.into(out, X[:3], 1.0)
    # an input overlapping a remembered output, found on every call
    with pytest.raises(graphc.OutputError, match=r"out for output 0 \(∂f/∂x\) overlaps the input 'y'"):
        k.into(out, X, out[0][2:5].reshape(3, 1)[:1, 0])
    # the list changed: the new array is checked
    out[1] = np.empty(7, dtype=np.float32)
    with pytest.raises(graphc.OutputError, match="out for output 1 .* must have dtype float64, got float32"):
        k.into(out, X, 1.0)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_dead_out_arrays_id_is_never_mistaken_for_a_new_array(backend: str) -> None:
    k = graphc.compile("x + y", backend=backend)
    for _ in range(20):  # NumPy reuses freed array objects: an id comes back often
        good = np.empty(7)
        k.into(good, X, 1.0)
        np.testing.assert_array_equal(good, X + 1.0)
        del good
        bad = np.empty(5)
        with pytest.raises(graphc.OutputError, match=r"has shape \(5,\)"):
            k.into(bad, X, 1.0)
        del bad


@pytest.mark.parametrize("backend", AVAILABLE)
def test_a_matrix_out_needs_the_arguments_batch_and_float64(backend: str) -> None:
    k = graphc.jacobian("x*y, x + y", backend=backend)
    with pytest.raises(
        graphc.OutputError, match=r"out has batch shape \(5,\), but the arguments broadcast to \(7,\)"
    ):
        k.into(np.empty((5, 2, 2)), X, 1.0)
    with pytest.raises(graphc.OutputError, match="out must have dtype float64, got float32"):
        k.into(np.empty((7, 2, 2), dtype=np.float32), X, 1.0)


def _no_outputs() -> graphc.Graph:
    graph = graphc.Graph()
    graph.var("x")
    graph.var("y")
    graph.set_outputs([])
    return graph


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize(
    "args",
    [(0.5, 2.0), (X, 2.0), (np.linspace(0.0, 1.0, 40_000), X[:1]), (X[:, None], X), (X[:0], 1.0)],
    ids=["point", "batch", "large", "grid", "empty"],
)
def test_a_kernel_of_no_outputs_returns_an_empty_tuple(backend: str, args: tuple) -> None:
    k = graphc.compile(_no_outputs(), backend=backend)
    assert k.outputs == ()
    assert k(*args) == ()
    out: tuple = ()
    assert k.into(out, *args) is out
    with pytest.raises(graphc.EvaluationError, match="do not broadcast"):
        k(X, np.ones(3))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_into_on_a_tensor_kernel_writes_what_a_call_returns(backend: str) -> None:
    kernel = graphc.value_and_grad("W: [3, 4]; x: [4]; sum(tanh(W @ x))", backend=backend)
    out = (np.empty(()), (np.empty((3, 4)), np.empty(4)))
    W, x = np.linspace(-1.0, 1.0, 12).reshape(3, 4), np.linspace(0.0, 2.0, 4)
    value, (dW, dx) = kernel(W, x)
    assert kernel.into(out, W, x) is out
    assert out[0] == value and np.array_equal(out[1][0], dW) and np.array_equal(out[1][1], dx)
    with pytest.raises(graphc.OutputError, match=r"has shape \(4, 3\), but its result has shape \(3, 4\)"):
        kernel.into(
            (out[0], (np.empty((4, 3)), out[1][1])), W, x
        )  # more in tests/test_llvm_tensor_startup.py
