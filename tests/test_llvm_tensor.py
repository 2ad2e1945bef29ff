"""The LLVM backend's loop kernels for tensor graphs (issue 26): every tensor program of the tensor
issue compiled to loop nests (not scalarised), equal to the NumPy backend; one kernel for every
binding of the named dimensions and every batch; broadcasting; matrix products by loops and by
BLAS; fused elementwise chains; the disk cache and ``--emit llvm``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import test_tensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tensors import LECTURE, lecture_inputs
from test_tensors_hypothesis import INPUTS, programs

import graphc
from graphc.backends.llvm import tensor, tensor_ir
from graphc.backends.llvm.tensor_plan import Loop, plan

RNG = np.random.default_rng(26)


def _texts(test: Any) -> list[str]:
    """The programs a parametrized test of tests/test_tensors.py runs (its first argument)."""
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return [case[0] for case in mark.args[1]]


# every program of the tensor issue's tests: its language, its block ops, its path counts
CORPUS = sorted(
    {
        *_texts(test_tensors.test_programs_have_the_shapes_of_numpy),
        *_texts(test_tensors.test_block_ops_compute_what_numpy_computes),
        *_texts(test_tensors.test_count_paths_is_exact_at_block_level),
        LECTURE,
        "x: [3]; softmax(x), logsumexp(x), log_softmax(x)",
        "X: [n, 4]; y: [n]; W: [4, 2]; transpose(X @ W) @ y",
        "x: [4]; max(x)",
    }
)


def _inputs(graph: graphc.Graph, dims: dict[str, int], batch: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    values = {}
    for name in graph.variables:
        shape = tuple(dims[d] if isinstance(d, str) else d for d in graph.shape(graph.variable(name)))
        values[name] = RNG.normal(size=batch + shape)
    return values


def _results(kernel: graphc.Kernel, values: dict[str, np.ndarray]) -> list[Any]:
    result = kernel(**values)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], tuple):
        return [result[0], *result[1]]  # value_and_grad
    return list(result) if isinstance(result, tuple) else [result]


def _agree(text: str, make: Any, values: dict[str, np.ndarray], rtol: float = 1e-12) -> graphc.Kernel:
    """``make(text, backend)``'s kernels on both backends give equal results; the llvm one by loops."""
    by_llvm = make(text, backend="llvm")
    assert by_llvm.function.kind == "loops", text
    got, want = _results(by_llvm, values), _results(make(text, backend="numpy"), values)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert np.shape(a) == np.shape(b), text
        scale = 1.0 + np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=rtol, atol=4e-16 * scale, err_msg=text)
    return by_llvm  # type: ignore[no-any-return]


@pytest.mark.parametrize("text", CORPUS)
def test_every_tensor_program_runs_as_loops_equal_to_the_numpy_backend(text: str) -> None:
    graph = graphc.parse(text)
    values = _inputs(graph, {"n": 5})
    _agree(text, graphc.compile, values)
    if len(graph.outputs) > 1:
        return
    if graph.shape(graph.outputs[0]) == ():
        _agree(text, graphc.value_and_grad, values)
    else:  # a tensor output: the gradient of its sum of squares
        cut = max(text.rfind(";"), text.rfind("\n"))
        _agree(f"{text[:cut]}; sum(({text[cut + 1 :]})**2)", graphc.value_and_grad, values)


def test_the_lecture_gradients_by_loops_match_the_hand_backward_pass() -> None:
    values = lecture_inputs()
    kernel = graphc.grad(LECTURE, backend="llvm")
    assert kernel.function.kind == "loops"
    expected = test_tensors.lecture_by_hand(**values)
    for name, partial in zip(kernel.wrt, kernel(**values), strict=True):
        np.testing.assert_allclose(partial, expected[name], rtol=1e-12, atol=1e-14)


def test_one_kernel_serves_every_size_of_a_named_dimension_and_every_batch() -> None:
    text = "X: [n, 4]; W: [4, 3]; b: [3]; mean(logsumexp(tanh(X @ W + b), axis=1))"
    kernel = graphc.value_and_grad(text, backend="llvm")
    function = kernel.function
    for rows in (7, 300):  # both sides of the BLAS threshold too
        values = _inputs(graphc.parse(text), {"n": rows})
        _agree(text, graphc.value_and_grad, values)
        assert kernel.function is function  # the same machine code, nothing compiled again
    W = RNG.normal(size=(5, 2, 4, 3))  # batch axes (5, 2) on one input
    X, b = RNG.normal(size=(6, 4)), RNG.normal(size=3)
    value, partials = kernel(X=X, W=W, b=b)
    assert value.shape == (5, 2) and [p.shape for p in partials] == [(5, 2, 4, 3), (5, 2, 6, 4), (5, 2, 3)]
    by_numpy = graphc.value_and_grad(text)(X=X, W=W, b=b)
    np.testing.assert_allclose(value, by_numpy[0], rtol=1e-12)
    for a, e in zip(partials, by_numpy[1], strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-11, atol=1e-15)


def test_broadcasting_reads_by_strides_in_every_direction() -> None:
    text = "A: [4, 5]; r: [5]; c: [4, 1]; s * A + r - c * exp(r) / (1 + s)"
    values = {
        "A": RNG.normal(size=(4, 5)),
        "r": RNG.normal(size=5),
        "c": RNG.normal(size=(4, 1)),
        "s": RNG.normal(size=3),  # a scalar input given a batch
    }
    kernel = _agree(text, graphc.compile, values)
    assert kernel(**values).shape == (3, 4, 5)
    _agree(f"{text.rsplit(';', 1)[0]}; sum(({text.rsplit(';', 1)[1]})**2)", graphc.value_and_grad, values)


@pytest.mark.parametrize(
    ("text", "shapes"),
    [
        ("A: [m, k]; B: [k, n]; A @ B", {"m": 70, "k": 64, "n": 33}),
        ("A: [m, k]; B: [n, k]; A @ transpose(B)", {"m": 70, "k": 64, "n": 33}),
        ("A: [k, m]; B: [k, n]; transpose(A) @ B", {"m": 70, "k": 64, "n": 33}),
        ("A: [m, k]; v: [k]; A @ v", {"m": 900, "k": 64}),
        ("A: [m, k]; v: [m]; v @ A", {"m": 900, "k": 64}),
        ("A: [m, 64]; B: [64, n]; A[:, ::2] @ B[::2, :]", {"m": 70, "n": 33}),
    ],
)
def test_matrix_products_by_loops_and_by_blas_equal_numpy(
    text: str, shapes: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    graph = graphc.parse(text)
    values = _inputs(graph, shapes)
    want = graphc.compile(text)(**values)
    for least in ((10**12, 0, 0), (1, 1, 1)):  # loops only; BLAS wherever the layout allows it
        monkeypatch.setattr(tensor_ir, "BLAS_MIN", least)
        kernel = graphc.compile(text, backend="llvm")
        assert ("graphc_dgemm" in kernel.source) == ("::2" not in text)  # a unit stride: BLAS can
        np.testing.assert_allclose(kernel(**values), want, rtol=1e-12, atol=1e-12)


def test_a_chain_of_elementwise_ops_is_one_loop_storing_only_what_is_read_later() -> None:
    text = "x: [n]; y: [n]; u = sin(x) * y + 1; v = tanh(u) - u * u; sum(v * exp(v))"
    graph = graphc.parse(text)
    steps = plan(graph).steps
    loops = [s for s in steps if isinstance(s, Loop)]
    assert len(loops) == 1 and len(loops[0].members) >= 8 and loops[0].stored == []
    assert [graph.op(n) for n in loops[0].accumulations] == ["sum"]
    values = _inputs(graph, {"n": 103})
    _agree(text, graphc.compile, values)


def test_block_ops_with_no_loop_form_fall_back_to_the_scalarised_kernels() -> None:
    with graphc.blocks():  # a user block (``custom``) has a scalar form (scalar=True), no loop form
        graphc.block("scaled(a) = 3 * a * a", vjp="6 * a * g", scalar=True)
        text = "x: [3, 4]; sum(scaled(x) * x)"
        kernel = graphc.compile(text, backend="llvm")
        assert kernel.function.kind == "scalarised"
        x = RNG.normal(size=(3, 4))
        assert np.allclose(kernel(x), graphc.compile(text, backend="numpy")(x), rtol=1e-12, atol=0)
    with graphc.blocks():  # a user block with its own VJP and no scalar form: scalarise's refusal
        graphc.block("mysoftmax(a) = exp(a) / sum(exp(a))", vjp="y * (g - sum(y * g))")
        with pytest.raises(graphc.GraphcError, match="block 'mysoftmax' has its own VJP and no scalar form"):
            graphc.compile("x: [3]; sum(mysoftmax(x) * x)", backend="llvm")


def test_the_disk_cache_keys_tensor_kernels_by_shapes_and_params() -> None:
    from graphc.backends.llvm.runtime import _options

    by_rows = tensor.tensor_key(graphc.parse("A: [2, 3]; sum(A, axis=0)"), _options())
    by_columns = tensor.tensor_key(graphc.parse("A: [2, 3]; sum(A, axis=1)"), _options())
    other_shape = tensor.tensor_key(graphc.parse("A: [3, 2]; sum(A, axis=0)"), _options())
    assert len({by_rows, by_columns, other_shape}) == 3
    text = "A: [2, 3]; softmax(A, axis=0)"
    first, again = graphc.compile(text, backend="llvm"), graphc.compile(text, backend="llvm")  # the cache's
    A = RNG.normal(size=(2, 3))
    assert np.array_equal(first(A), again(A)) and first.source == again.source


def test_emit_llvm_prints_the_tensor_kernel(cli: Any) -> None:
    code, out, _ = cli("grad", "W: [3, 4]; x: [4]; sum(tanh(W @ x))", "--wrt", "W", "--emit", "llvm")
    assert code == 0 and f"define void @{tensor_ir.ENTRY}(" in out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), seed=st.integers(0, 2**16))
def test_random_tensor_programs_by_loops_equal_the_numpy_backend(program: tuple[str, Any], seed: int) -> None:
    text, _ = program
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(-1.0, 1.0, shape) for name, shape in INPUTS.items()}
    _agree(text, graphc.value_and_grad, values, rtol=1e-11)


def test_a_batch_split_across_threads_gives_the_same_bits_as_one_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "W: [8, 16]; x: [16]; b: [8]; logsumexp(tanh(W @ x + b)) + sum(W * W)"
    rng = np.random.default_rng(7)  # its own: the module's RNG is drawn by whichever tests ran before
    W, x, b = rng.normal(size=(8, 16)), rng.normal(size=(3000, 16)), rng.normal(size=8)
    one = graphc.value_and_grad(text, backend="llvm", threads=1)(W=W, x=x, b=b)
    asked = []
    pool = tensor.WORKERS.pool
    monkeypatch.setattr(tensor.WORKERS, "pool", lambda workers: asked.append(workers) or pool(workers))
    many = graphc.value_and_grad(text, backend="llvm", threads=3)(W=W, x=x, b=b)
    assert asked == [2]  # the calling thread and two of the pool's
    for a, e in zip([one[0], *one[1]], [many[0], *many[1]], strict=True):
        assert a.shape[0] == 3000 and np.array_equal(a, e)
    by_numpy = graphc.value_and_grad(text)(W=W, x=x, b=b)
    # entries near cancellation differ by an ulp of the gradient's scale, not of their own size
    scale = np.abs(by_numpy[1][0]).max()
    np.testing.assert_allclose(many[1][0], by_numpy[1][0], rtol=1e-11, atol=1e-14 * scale)


# sizes around every edge of the blocked loops: a vector (4 lanes, 8 with AVX-512), a panel of 2
# or 3 vectors, a block of 4, 6 or 12 rows, k = 1, k around multiples of CHUNK (32) and WHOLE_K (128); transposed
# operands (a strided right operand is copied to the stack when its size is known); named sizes
# (the loops' bounds read at run time)
_EDGES = [
    (1, 1, 1), (1, 5, 7), (3, 1, 4), (5, 2, 3), (7, 9, 8), (13, 4, 12), (25, 3, 17), (6, 11, 24),
    (37, 1, 33), (6, 32, 8), (5, 128, 9), (7, 129, 10), (4, 300, 3),
]  # fmt: skip


@pytest.mark.parametrize(("m", "k", "n"), _EDGES)
@pytest.mark.parametrize("named", [False, True])
@pytest.mark.parametrize(("left", "right"), [("A", "B"), ("At", "B"), ("A", "Bt"), ("At", "Bt")])
def test_blocked_matrix_products_equal_numpy_at_every_edge(
    m: int, k: int, n: int, named: bool, left: str, right: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    monkeypatch.setattr(tensor_ir, "BLAS_MIN", (10**12, 0, 0))  # loops only
    sizes = {"m": m, "k": k, "n": n}
    axes = {"A": "mk", "At": "km", "B": "kn", "Bt": "nk"}
    declared = {name: [d if named else str(sizes[d]) for d in axes[name]] for name in (left, right)}
    form = " @ ".join(f"transpose({name})" if name.endswith("t") else name for name in (left, right))
    text = "; ".join(f"{name}: [{', '.join(dims)}]" for name, dims in declared.items()) + f"; {form}"
    values = {name: RNG.normal(size=tuple(sizes[d] for d in axes[name])) for name in (left, right)}
    kernel = graphc.compile(text, backend="llvm")
    assert kernel.function.kind == "loops"
    a = values[left].T if left.endswith("t") else values[left]
    b = values[right].T if right.endswith("t") else values[right]
    want = a @ b
    tolerance = 1e-15 * k * (1.0 + np.abs(a).max() * np.abs(b).max())
    np.testing.assert_allclose(kernel(**values), want, rtol=1e-13, atol=tolerance)
    batched = {name: np.stack([v, 2.0 * v, -v]) for name, v in values.items()}  # batch axes, one kernel
    got = kernel(**batched)
    assert got.shape == (3, m, n)
    for point, factor in enumerate((1.0, 4.0, 1.0)):
        np.testing.assert_allclose(got[point], factor * want, rtol=1e-13, atol=4 * tolerance)


@pytest.mark.parametrize("width", [10, 13])
def test_a_narrow_right_operand_is_read_from_rows_padded_to_whole_vectors(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 10-wide layer's weights: B's rows are copied to the stack padded with zeros to whole
    vectors, so the k loop loads them without a mask (a mask held through the loop is one
    register too many), only C's last vector is stored masked; the product is NumPy's."""
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    monkeypatch.setattr(tensor_ir, "BLAS_MIN", (10**12, 0, 0))  # loops only
    text = f"A: [n, 64]; B: [64, {width}]; A @ B"  # k <= WHOLE_K: C is never loaded
    ir = tensor.tensor_ir(graphc.parse(text)).splitlines()
    # the k loop's masks are constants (the lanes past B's last column); the copy's are not
    assert not [line for line in ir if "@llvm.masked.load" in line and "<i1 true" in line]
    assert [line for line in ir if "@llvm.masked.store" in line and "<i1 true" in line]
    values = {"A": RNG.normal(size=(37, 64)), "B": RNG.normal(size=(64, width))}
    kernel = graphc.compile(text, backend="llvm")
    assert kernel.function.kind == "loops"
    np.testing.assert_allclose(kernel(**values), values["A"] @ values["B"], rtol=1e-13, atol=1e-13)
    got = kernel(A=np.stack([values["A"], -values["A"]]), B=values["B"])  # a batch: B's copy per point
    np.testing.assert_allclose(got[1], -(values["A"] @ values["B"]), rtol=1e-13, atol=1e-13)


def test_blocked_products_split_across_threads_give_the_same_bits_as_one_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "X: [n, 16]; W: [16, 10]; b: [10]; sum(tanh(X @ W + b) ** 2)"  # n = 37: a row remainder
    rng = np.random.default_rng(11)
    X, W, b = rng.normal(size=(400, 37, 16)), rng.normal(size=(16, 10)), rng.normal(size=10)
    one = graphc.value_and_grad(text, backend="llvm", threads=1)(X=X, W=W, b=b)
    asked = []
    pool = tensor.WORKERS.pool
    monkeypatch.setattr(tensor.WORKERS, "pool", lambda workers: asked.append(workers) or pool(workers))
    many = graphc.value_and_grad(text, backend="llvm", threads=3)(X=X, W=W, b=b)
    assert asked == [2]
    for a, e in zip([one[0], *one[1]], [many[0], *many[1]], strict=True):
        assert a.shape[0] == 400 and np.array_equal(a, e)
    by_numpy = graphc.value_and_grad(text)(X=X, W=W, b=b)
    for a, e in zip([many[0], *many[1]], [by_numpy[0], *by_numpy[1]], strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-11, atol=1e-12 * np.abs(e).max())


def test_a_gradient_through_products_with_transposed_weights_compiles_and_equals_numpy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LLVM's NewGVN pass aborted the process (an assertion) on this gradient's register-blocked
    products: the tensor pipeline runs without it."""
    text = "W: [4, 5]; x: [n, 5]; c: [4]; sum(tanh(x @ transpose(W)) * c) + logsumexp(W @ transpose(x))"
    rng = np.random.default_rng(26)
    arrays = {"W": rng.normal(size=(4, 5)), "x": rng.normal(size=(40, 5)), "c": rng.normal(size=4)}
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")  # compiled here, not loaded
    kernel = graphc.value_and_grad(text, backend="llvm")
    assert kernel.function.kind == "loops"
    want = graphc.value_and_grad(text, backend="numpy")(**arrays)
    for call in range(3):  # the quick code, then the fully optimised code (compiled from call 1 on)
        if call == 2:
            kernel.function.wait()
        got = kernel(**arrays)
        for a, b in zip(np.atleast_1d(got[0]), np.atleast_1d(want[0]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13)
        for a, b in zip(got[1], want[1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
