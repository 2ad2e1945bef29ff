"""Convolution and pooling on the LLVM backend's loop kernels (issue 26): every layer program of the
convolution tests runs as loop nests (kind "loops", never scalarised) equal to the NumPy backend,
values and gradients; odd sizes, strides, padding, declared, named and batch leading axes; the
digits CNN of benchmark T3; max pooling picks the NumPy backend's elements on ties, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import test_convolution
from test_llvm_tensor import _agree, _results

import graphc
from graphc.backends.llvm import tensor_conv
from graphc.backends.llvm.tensor_plan import Step, plan
from graphc.ops import BLOCK_OPS

RNG = np.random.default_rng(126)

T3 = (
    "X: [n, 1, 8, 8]; T: [n, 10]; K: [8, 1, 3, 3]; c: [8, 1, 1]; W: [72, 10]; b: [10]\n"
    "h = maxpool2d(relu(conv2d(X, K) + c), 2); z = reshape(h, [n, 72]) @ W + b\n"
    "-mean(sum(T * log_softmax(z, axis=-1), axis=-1))"
)


def _texts(test: Any) -> list[str]:
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return [case if isinstance(case, str) else case[0] for case in mark.args[1]]


# the layer programs of tests/test_convolution.py, and more sizes, strides, paddings and axes
PROGRAMS = [
    *test_convolution.LAYERS,
    *test_convolution.SMALL,
    "X: [2, 7, 6]; K: [3, 2, 3, 2]; W: [3, 5, 5]; sum(cos(conv2d(X, K)) * W)",
    "X: [2, 7, 6]; K: [3, 2, 3, 2]; W: [3, 4, 4]; sum(conv2d(X, K, stride=2, padding=1) ** 2 * W)",
    "X: [2, 7, 6]; K: [3, 2, 3, 2]; W: [3, 3, 3]; sum(tanh(conv2d(X, K, stride=3, padding=2)) * W)",
    "X: [3, 2, 9, 7]; K: [4, 2, 2, 3]; sum(exp(conv2d(X, K, stride=2)))",
    "X: [n, 3, 5, 5]; K: [2, 3, 3, 3]; sum(sin(conv2d(X, K, padding=1)))",
    "X: [n, 2, 11, 13]; W: [n, 2, 5, 6]; sum(maxpool2d(X, 3, stride=2) * W)",
    "X: [2, 9, 9]; W: [2, 3, 3]; sum(avgpool2d(sin(X), 3) * W)",
    "X: [2, 9, 9]; W: [2, 4, 4]; sum(avgpool2d(sin(X), 3, stride=2) * W)",
    "X: [2, 7, 7]; W: [2, 6, 6]; sum(maxpool2d(X * X, 2, stride=1) * W)",
    "X: [n, 6, 5]; K: [m, n, 2, 3]; W: [m, 4, 3]; sum(tanh(conv2d(X, K, stride=2, padding=1)) * W)",
]


def _inputs(text: str, n: int = 5, batch: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    graph = graphc.parse(text)
    shapes = {v: graph.shape(graph.variable(v)) for v in graph.variables}
    return {
        v: RNG.normal(size=batch + tuple(n if isinstance(d, str) else d for d in s))
        for v, s in shapes.items()
    }


def test_every_layer_op_has_a_loop_step() -> None:
    """Every block op of the layers (and convolution's masked forms) names a loop writer; the user
    block (custom) has none (scalarised), masked_matmul is rewritten into a fused loop, the
    reductions and views are parts of other loops."""
    from graphc.backends.llvm.tensor_ir import STEPS

    layers = {name for name, op in BLOCK_OPS.items() if op.loop in tensor_conv.STEPS}
    assert layers == set(tensor_conv.STEPS) == {
        "conv2d", "conv2d_input", "conv2d_filter", "maxpool2d", "maxpool2d_select",
        "maxpool2d_route", "avgpool2d", "avgpool2d_adjoint",
        "masked_conv2d", "masked_conv2d_input", "masked_conv2d_filter", "masked_maxpool2d_route",
    }  # fmt: skip
    for name, op in BLOCK_OPS.items():
        assert op.loop == "" or op.loop in STEPS, name
    assert [name for name, op in BLOCK_OPS.items() if not op.loop and not op.view] == [
        "sum",
        "logsumexp",
        "amax",
        "amin",
        "shift",
        "masked_matmul",
    ]  # the reductions; logsumexp, shift and masked_matmul, which the plan rewrites
    assert BLOCK_OPS["custom"].loop == ""


@pytest.mark.parametrize("text", PROGRAMS)
def test_layer_programs_run_as_loops_equal_to_the_numpy_backend(text: str) -> None:
    values = _inputs(text)
    _agree(text, graphc.compile, values, rtol=1e-12)
    kernel = _agree(text, graphc.value_and_grad, values, rtol=1e-11)
    ops = {kernel.function.plan.graph.op(s.node) for s in kernel.function.plan.steps if isinstance(s, Step)}
    assert ops & set(tensor_conv.STEPS), text  # computed by the layer steps, not by something else


@pytest.mark.parametrize(
    ("text", "wrt"), [(test_convolution.SMALL[0], "K"), (test_convolution.SMALL[3], "X")]
)
def test_forward_mode_and_batch_axes_run_as_loops(text: str, wrt: str) -> None:
    """Forward mode's graphs (JVPs: conv2d of tangents, maxpool2d_select); a batch of 3 points."""
    values = _inputs(text, batch=(3,))
    make = lambda t, backend: graphc.grad(t, wrt=wrt, method="forward", backend=backend)
    _agree(text, make, values, rtol=1e-11)


def test_the_adjoints_adjoints_run_as_loops_a_hessian() -> None:
    text = "X: [1, 4, 4]; K: [1, 1, 2, 2]; sum(tanh(conv2d(X, K, stride=2, padding=1)))"
    values = _inputs(text)
    _agree(text, lambda t, backend: graphc.hessian(t, wrt="K", backend=backend), values, rtol=1e-11)
    pooled = "X: [1, 3, 3]; sum(sin(avgpool2d(X * X, 2, stride=1)) + maxpool2d(X, 2, stride=1) ** 3)"
    _agree(pooled, lambda t, backend: graphc.hessian(t, backend=backend), _inputs(pooled), rtol=1e-11)


def test_one_conv_kernel_serves_every_size_of_a_named_dimension() -> None:
    text = "X: [n, 2, 6, 6]; K: [3, 2, 3, 3]; W: [n, 3, 2, 2]; sum(maxpool2d(relu(conv2d(X, K)), 2) * W)"
    kernel = graphc.value_and_grad(text, backend="llvm")
    for n in (1, 4, 33):
        values = _inputs(text, n=n)
        got, want = _results(kernel, values), _results(graphc.value_and_grad(text), values)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
    source = kernel.source
    assert "masked.gather" in source or "masked.load" in source  # loops over pixels, not scalars


def test_the_digits_cnn_value_and_gradient_equal_numpy() -> None:
    """T3 (bench/tensor_problems.py) at a small batch: loss and gradient wrt every weight."""
    values = _inputs(T3, n=37)
    values["X"] = RNG.random((37, 1, 8, 8))
    values["T"] = np.eye(10)[RNG.integers(0, 10, 37)]
    make = lambda t, backend: graphc.value_and_grad(t, wrt=("K", "c", "W", "b"), backend=backend)
    kernel = _agree(T3, make, values, rtol=1e-11)
    assert kernel.function.kind == "loops"


def test_max_pooling_and_its_adjoints_pick_numpys_elements_on_ties_bit_for_bit() -> None:
    """Ties (whole windows equal, ties of two and of four), NaN, signed zeros and infinities: the
    value, the gradient (route) and the tangent (select) equal the NumPy backend's exactly."""
    X = RNG.integers(-1, 2, size=(3, 7, 7)).astype(float)  # many ties
    X[0, 0, 0], X[1, 2, 3], X[2, 4, 4] = np.nan, np.inf, -np.inf
    X[2, 0, :4] = [0.0, -0.0, -0.0, 0.0]
    T = RNG.normal(size=(3, 7, 7))
    for k, stride in ((2, 2), (3, 2), (2, 1), (3, 3)):
        text = f"X: [3, 7, 7]; G: [3, {(7 - k) // stride + 1}, {(7 - k) // stride + 1}]; " + (
            f"sum(maxpool2d(X, {k}, stride={stride}) * G)"
        )
        values = {"X": X, "G": RNG.normal(size=(3, (7 - k) // stride + 1, (7 - k) // stride + 1))}
        for make in (graphc.compile, graphc.value_and_grad):
            got, want = (_results(make(text, backend=b), values) for b in ("llvm", "numpy"))
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=text)
        pooled = f"X: [3, 7, 7]; maxpool2d(X, {k}, stride={stride})"
        by_llvm, by_numpy = (graphc.jvp(pooled, backend=b)(X, T) for b in ("llvm", "numpy"))
        np.testing.assert_array_equal(by_llvm, by_numpy)
        signs = graphc.compile(pooled, backend="llvm")(X), graphc.compile(pooled)(X)
        np.testing.assert_array_equal(np.signbit(signs[0]), np.signbit(signs[1]))


def test_the_lecture_tie_rule_holds_on_llvm_loops() -> None:
    """test_convolution's tie example, now through the loop kernels: 1/k to each of k maxima."""
    X = np.array([[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0], [5.0, 5.0, 1.0, 2.0], [5.0, 5.0, 7.0, 2.0]]])
    kernel = graphc.grad("X: [1, 4, 4]; sum(maxpool2d(X, 2))", backend="llvm")
    assert kernel.function.kind == "loops"
    expected = [[[0, 0.5, 0.25, 0.25], [0.5, 0, 0.25, 0.25], [0.25, 0.25, 0, 0], [0.25, 0.25, 1, 0]]]
    np.testing.assert_array_equal(kernel(X)[0], expected)


def test_padding_reads_zeros_and_drops_what_falls_outside() -> None:
    """Padding wider than the filter's reach on one side: outputs reading only padding are 0, and
    the input gradient of those outputs is dropped (a masked scatter), on a batch of images."""
    text = "X: [1, 3, 3]; K: [1, 1, 2, 2]; conv2d(X, K, stride=2, padding=2)"
    X, K = RNG.normal(size=(4, 1, 3, 3)), RNG.normal(size=(1, 1, 2, 2))
    out = graphc.compile(text, backend="llvm")(X=X, K=K)
    np.testing.assert_allclose(out, graphc.compile(text)(X=X, K=K), rtol=1e-14, atol=0)
    assert out.shape == (4, 1, 3, 3) and np.all(out[:, :, 0, :] == 0) and np.all(out[:, :, :, 0] == 0)
    loss = f"X: [1, 3, 3]; K: [1, 1, 2, 2]; W: [1, 3, 3]; sum(({text.rsplit(';', 1)[1]}) * W)"
    _agree(loss, graphc.value_and_grad, {"X": X, "K": K, "W": RNG.normal(size=(1, 3, 3))}, rtol=1e-12)


def test_the_layer_steps_read_strided_operands() -> None:
    """A transposed image and a sliced filter reach the steps as views (strides, not copies)."""
    text = "X: [5, 6, 2]; K: [3, 2, 2, 4]; sum(tanh(conv2d(transpose(X), K[:, :, :, ::2])))"
    graph = graphc.parse(text)
    steps = plan(graph).steps
    assert [plan(graph).graph.op(s.node) for s in steps if isinstance(s, Step)] == ["conv2d"]
    _agree(text, graphc.value_and_grad, _inputs(text), rtol=1e-12)


def test_threads_split_a_batch_of_images_and_give_the_same_bits() -> None:
    text = "X: [2, 8, 8]; K: [3, 2, 3, 3]; W: [3, 4, 4]; sum(maxpool2d(relu(conv2d(X, K, padding=1)), 2) * W)"
    values = _inputs(text, batch=(512,))  # enough work per point for four threads
    values["K"], values["W"] = values["K"][0], values["W"][0]  # weights shared by the batch
    one, four = (graphc.value_and_grad(text, backend="llvm", threads=t) for t in (1, 4))
    for a, b in zip(_results(one, values), _results(four, values), strict=True):
        np.testing.assert_array_equal(a, b)
    _agree(text, graphc.value_and_grad, values, rtol=1e-11)
