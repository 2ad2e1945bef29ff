"""forward and numeric differentiate a tensor input in one stacked pass (graphc.diff.stacked):
the graph grows with the function, not with the input's element count, and the gradients are
today's."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.diff import stacked
from graphc.graph import Graph
from graphc.parse import parse

RNG = np.random.default_rng(24)

PROGRAMS = [
    "x: [3, 4]; sum(exp(x) * x, axis=1)",
    "x: [4]; y: [3, 4]; transpose(y * x)[1:3] * 2 + sum(x)",
    "x: [2, 3]; logsumexp(x * x, axis=0) + max(x) - min(x, axis=1)[0]",
    "x: [5]; reshape(x*x, [1, 5]) + x",
    "x: [2, 4]; softmax(x * x, axis=0) + log_softmax(x)",
    "x: [3]; c*x + c, sum(x)",
    "x: [3]; W: [2, 3]; W @ sin(x)",  # matmul: forward and numeric one element at a time
    "x: [4]; where(x > 0, x * x, -x)",  # a where: forward one element at a time
]


def _values(graph: Graph) -> dict[str, np.ndarray]:
    return {name: RNG.normal(size=graph.shape(graph.variable(name))) for name in graph.variables}


def test_a_large_input_is_one_pass_of_a_small_graph_with_the_gradient_of_dp() -> None:
    graph = parse("x: [1000]; sum(sin(x) * x)")
    x = RNG.normal(size=1000)
    expected = np.sin(x) + x * np.cos(x)
    (value, reverse) = graphc.compile(graphc.differentiate(graph, method="dp"))(x=x)
    np.testing.assert_allclose(reverse, expected, rtol=1e-13)
    for method, passes, tolerance in [("forward", 1, 1e-13), ("numeric", 2, 1e-7)]:
        derivative = graphc.differentiate(graph, method=method)
        assert len(derivative) < 40 and derivative.info["passes"] == passes, method
        (same, gradient) = graphc.compile(derivative)(x=x)
        assert same == value and gradient.shape == (1000,)
        np.testing.assert_allclose(gradient, reverse, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("text", PROGRAMS)
def test_stacked_forward_and_numeric_agree_with_dp(text: str) -> None:
    graph = parse(text)
    values = _values(graph)
    reverse = graphc.compile(graphc.differentiate(graph, method="dp"))(**values)
    forward = graphc.compile(graphc.differentiate(graph, method="forward"))(**values)
    numeric = graphc.compile(graphc.differentiate(graph, method="numeric"))(**values)
    for r, f, n in zip(reverse, forward, numeric, strict=True):
        assert np.shape(r) == np.shape(f) == np.shape(n)
        np.testing.assert_allclose(f, r, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(n, r, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(1,), (4,), (2, 3), (2, 1, 2)])
def test_the_stacked_identity_holds_each_elements_one_hot_in_five_nodes(shape: tuple[int, ...]) -> None:
    graph = Graph()
    before = len(graph)
    eye = stacked.identity(graph, shape)
    assert len(graph) - before <= 7  # the constants 1.0 (and 0.0 for unindex) and five ops
    graph.set_outputs([eye], ["E"])
    n = int(np.prod(shape))
    np.testing.assert_array_equal(graphc.compile(graph)(), np.eye(n).reshape((n, *shape)))


@pytest.mark.parametrize(
    ("text", "forward", "numeric"),
    [
        ("x: [3]; sum(x * x)", True, True),
        ("x: [3]; logsumexp(x)", False, True),  # not linear: its JVP is not itself
        ("x: [3]; softmax(x)", True, True),  # its max shift is a constant to differentiation
        ("x: [3]; where(x > 0, x, 0)", False, False),  # flags per element are not stacked
        ("x: [3]; W: [2, 3]; W @ x", False, False),  # two operands: no stacked rule
    ],
)
def test_only_functions_whose_every_op_can_carry_the_stacked_axis_are_stacked(
    text: str, forward: bool, numeric: bool
) -> None:
    graph = parse(text)
    every = [True] * len(graph)
    assert stacked.stackable(graph, every, tangent=True) == forward
    assert stacked.stackable(graph, every, tangent=False) == numeric
    n = 3
    passes = graphc.differentiate(graph, "x", method="forward").info["passes"]
    assert passes == (1 if forward else n)
    passes = graphc.differentiate(graph, "x", method="numeric").info["passes"]
    assert passes == (2 if numeric else 2 * n)
