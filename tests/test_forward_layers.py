"""forward and numeric carry the stacked axis (graphc.diff.stacked) through convolution, pooling,
their adjoints and user blocks: one pass per input, a graph that grows with the layers and not
with the input's elements, and dp's gradients, with declared and call-time batch axes, on both
backends (the LLVM kernel lowers the stacked form through its loop plan)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.backends.llvm.tensor_plan import Step, plan
from graphc.graph import Graph
from graphc.parse import parse

RNG = np.random.default_rng(2424)

LAYERS = [
    "X: [2, 1, 6, 6]; K: [3, 1, 3, 3]; sum(tanh(conv2d(X, K)) ** 2)",
    "X: [2, 2, 6, 6]; K: [3, 2, 3, 3]; W: [2, 3, 3, 3]; sum(sin(conv2d(X, K, stride=2, padding=1)) * W)",
    # T3's layers: conv, bias, relu, max pool
    "X: [2, 1, 8, 8]; K: [2, 1, 3, 3]; c: [2, 1, 1]; W: [2, 2, 3, 3]; sum(maxpool2d(relu(conv2d(X, K) + c), 2) * W)",
    "X: [2, 2, 6, 6]; W: [2, 2, 5, 5]; sum(exp(avgpool2d(sin(X), 2, stride=1)) * W)",
    "X: [1, 2, 7, 7]; sum(maxpool2d(X * X, 3, stride=2))",
    # two conv layers with a pool between: the second one's image is stacked, its filter not
    (
        "X: [2, 1, 7, 7]; K: [2, 1, 2, 2]; L: [3, 2, 2, 2]; "
        "sum(tanh(conv2d(avgpool2d(tanh(conv2d(X, K)), 2, stride=1), L, padding=1)))"
    ),
]


def _values(graph: Graph, batch: int = 0) -> dict[str, np.ndarray]:
    """Normal draws for every input; ``batch`` > 0 gives X a call-time batch axis of that length."""
    values = {name: RNG.normal(size=graph.shape(graph.variable(name))) for name in graph.variables}
    if batch:
        values["X"] = RNG.normal(size=(batch, *values["X"].shape))
    return values


def _gradients(graph: Graph, method: str, values: dict[str, np.ndarray], backend: str = "numpy") -> tuple:
    derivative = graphc.differentiate(graph, method=method)
    return derivative, graphc.compile(derivative, backend=backend)(**values)


@pytest.mark.parametrize("text", LAYERS)
@pytest.mark.parametrize("batch", [0, 3])
def test_forward_and_numeric_take_one_pass_per_input_with_dps_gradient(text: str, batch: int) -> None:
    graph = parse(text)
    values = _values(graph, batch)
    _, reverse = _gradients(graph, "dp", values)
    inputs = len(graph.variables)
    for method, passes, rtol, atol in [
        ("forward", inputs, 1e-11, 1e-12),
        ("numeric", 2 * inputs, 1e-5, 1e-6),
    ]:
        derivative, got = _gradients(graph, method, values)
        assert derivative.info["passes"] == passes, method
        for r, g in zip(reverse, got, strict=True):
            assert np.shape(g) == np.shape(r)
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)


def _cnn(image: int, channels: int, window: int) -> str:
    """T3's network with its sizes as parameters (the same ops in the same order at every size)."""
    pooled = (image - window + 1) // 2
    dense = channels * pooled * pooled
    return (
        f"X: [4, 1, {image}, {image}]; T: [4, 10]; K: [{channels}, 1, {window}, {window}]; "
        f"c: [{channels}, 1, 1]; W: [{dense}, 10]; b: [10]\n"
        f"h = maxpool2d(relu(conv2d(X, K) + c), 2); z = reshape(h, [4, {dense}]) @ W + b\n"
        "-mean(sum(T * log_softmax(z, axis=-1), axis=-1))"
    )


def test_the_forward_graph_of_a_cnn_does_not_grow_with_its_filters_or_images() -> None:
    """One element at a time, T3's forward gradient built a pass per element of K and c (82 passes,
    1,510 nodes at its own sizes); stacked, its size is the network's, whatever the sizes."""
    small, large = parse(_cnn(8, 2, 3)), parse(_cnn(12, 6, 5))  # K: 18 -> 150 elements
    sizes = []
    for graph in (small, large):
        derivative = graphc.differentiate(graph, ["K", "c", "W", "b"], method="forward")
        assert derivative.info["passes"] == 4
        sizes.append(len(derivative) - len(graph))
    # 102 nodes stacked alone; the seeds' structural-zero flags (issue 25) add the flag's own
    # convolution and views and one masked product: 120, still the network's size, not its weights'
    assert sizes[0] == sizes[1] <= 120
    values = _values(large)
    values["T"] = np.eye(10)[RNG.integers(0, 10, 4)]
    (_, *reverse) = graphc.value_and_grad(large, wrt=["K", "c", "W", "b"])(**values)[1:]
    (_, *forward) = graphc.value_and_grad(large, wrt=["K", "c", "W", "b"], method="forward")(**values)[1:]
    for r, f in zip(reverse, forward, strict=True):
        np.testing.assert_allclose(f, r, rtol=1e-11, atol=1e-13)


def test_a_max_pool_tie_splits_evenly_in_the_stacked_jacobian() -> None:
    X = np.array([[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0], [5.0, 5.0, 1.0, 2.0], [5.0, 5.0, 7.0, 2.0]]])
    text = "X: [1, 4, 4]; maxpool2d(X, 2)"
    assert graphc.differentiate(text, method="forward").info["passes"] == 1
    forward = graphc.jacobian(text, mode="forward")(X)
    np.testing.assert_array_equal(forward, graphc.jacobian(text, mode="reverse")(X))
    assert forward[0, 1, 0].sum() == 1.0 and np.count_nonzero(forward[0, 1, 0]) == 4  # four 5s: 1/4 each


def test_numeric_stacks_an_image_and_a_filter_that_depend_on_one_input() -> None:
    """Both conv2d operands stacked (numeric replays them together): a block-diagonal filter."""
    text = "x: [2, 2, 4, 4]; sum(tanh(conv2d(x, x[0:1, :, 1:3, 0:2], padding=1)))"
    graph = parse(text)
    values = _values(graph)
    _, (_, reverse) = _gradients(graph, "dp", values)
    for method, passes, rtol in [("forward", 1, 1e-11), ("numeric", 2, 1e-6)]:
        derivative, (_, got) = _gradients(graph, method, values)
        assert derivative.info["passes"] == passes
        np.testing.assert_allclose(got, reverse, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("wrt", ["K", "X"])
def test_second_derivatives_stack_through_the_adjoint_ops(wrt: str) -> None:
    """forward and numeric over dp's gradient: conv2d_input, conv2d_filter and maxpool2d_route
    carry the stacked axis (numeric with both of their operands stacked)."""
    text = "X: [2, 1, 5, 5]; K: [2, 1, 2, 2]; sum(maxpool2d(tanh(conv2d(X, K)), 2, stride=1))"
    gradient = graphc.differentiate(text, wrt, method="dp")
    values = _values(parse(text))
    exact = graphc.compile(graphc.differentiate(gradient, wrt, method="dp"))(**values)
    for method, passes, rtol in [("forward", 1, 1e-10), ("numeric", 2, 1e-4)]:
        second = graphc.differentiate(gradient, wrt, method=method)
        assert second.info["passes"] == passes
        got = graphc.compile(second)(**values)
        for e, g in zip(exact, got, strict=True):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)


def test_a_user_block_passes_its_bodys_stacked_tangent() -> None:
    with graphc.blocks():
        graphc.block("softplus2(a) = log(1 + exp(a)) * 2", vjp="2 * g / (1 + exp(-a))")
        text = "X: [2, 1, 6, 6]; K: [2, 1, 3, 3]; sum(maxpool2d(softplus2(conv2d(X, K)), 2))"
        graph = parse(text)
        values = _values(graph, batch=2)
        _, reverse = _gradients(graph, "dp", values)
        derivative, forward = _gradients(graph, "forward", values)
        assert derivative.info["passes"] == 2
        for r, f in zip(reverse, forward, strict=True):
            np.testing.assert_allclose(f, r, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("text", [LAYERS[1], LAYERS[2], LAYERS[5]])
def test_the_llvm_kernel_runs_the_stacked_form_through_its_loops(text: str) -> None:
    graph = parse(text)
    derivative = graphc.differentiate(graph, method="forward")
    assert derivative.info["passes"] == len(graph.variables)
    steps = plan(derivative).steps  # raises Unsupported if an op had no loop form (scalarised)
    assert sum(isinstance(s, Step) for s in steps) >= 2
    values = _values(graph, batch=2)
    on_numpy = graphc.compile(derivative)(**values)
    on_llvm = graphc.compile(derivative, backend="llvm")(**values)
    for n, m in zip(on_numpy, on_llvm, strict=True):
        np.testing.assert_allclose(m, n, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize(
    ("text", "passes"),
    [
        ("X: [n, 3]; W: [3, 2]; sum(tanh(X @ W))", 6),  # W's 6 elements one at a time
        ("X: [n, 3]; W: [3, 2]; sum(tanh(transpose(W) @ transpose(X)))", 6),
        # T3 as bench/tensor_problems.py states it: the batch a name
        (
            (
                "X: [n, 1, 6, 6]; K: [2, 1, 3, 3]; c: [2, 1, 1]; W: [8, 3]\n"
                "h = maxpool2d(relu(conv2d(X, K) + c), 2); sum(tanh(reshape(h, [n, 8]) @ W))"
            ),
            18 + 2 + 24,  # K's stack would pass the batch axis n, and every weight meets the matmul
        ),
    ],
)
def test_a_named_batch_dimension_goes_one_element_at_a_time(text: str, passes: int, backend: str) -> None:
    """Rows named ``n`` cannot be laid end to end in a shape (the stacked matmul raised on
    ``int('n')``): those inputs go one element at a time, with dp's gradient; bound, they stack."""
    graph = parse(text)
    values = {
        name: RNG.normal(size=tuple(5 if d == "n" else d for d in graph.shape(graph.variable(name))))
        for name in graph.variables
    }
    weights = [name for name in graph.variables if name != "X"]  # X's size is n's: no forward pass
    reverse = graphc.compile(graphc.differentiate(graph, weights), backend=backend)(**values)
    derivative = graphc.differentiate(graph, weights, method="forward")
    assert derivative.info["passes"] == passes
    forward = graphc.compile(derivative, backend=backend)(**values)
    for r, f in zip(reverse, forward, strict=True):
        np.testing.assert_allclose(f, r, rtol=1e-11, atol=1e-13)
    bound = graphc.differentiate(graph.with_dims({"n": 5}), weights, method="forward")
    assert bound.info["passes"] == len(weights)


def test_a_filter_with_named_channels_goes_one_element_at_a_time() -> None:
    """A stacked filter is laid along its output channels, which needs their number: named, the
    input is differentiated one element at a time (as before stacking), with the same gradient."""
    text = "s: [1, 1, 2, 2]; Kn: [o, 1, 2, 2]; X: [1, 4, 4]; sum(tanh(conv2d(X, s * Kn)))"
    values = {
        "s": RNG.normal(size=(1, 1, 2, 2)),
        "Kn": RNG.normal(size=(3, 1, 2, 2)),
        "X": RNG.normal(size=(1, 4, 4)),
    }
    (expected,) = graphc.grad(text, wrt="s")(**values)
    for method, passes, rtol in [("forward", 4, 1e-12), ("numeric", 8, 1e-6)]:
        derivative = graphc.differentiate(text, "s", method=method)
        assert derivative.info["passes"] == passes
        np.testing.assert_allclose(graphc.compile(derivative)(**values)[1], expected, rtol=rtol, atol=rtol)
    bound = graphc.differentiate(text, "s", method="forward", dims={"o": 3})
    assert bound.info["passes"] == 1
