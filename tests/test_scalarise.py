"""Scalarisation: every block op's scalar graph computes what its NumPy source computes (hypothesis
over shapes and params), scalar path counts equal the block-level counts, and the methods that
work on the scalarised graph (paths, symbolic) and the llvm backend on tensor graphs agree with dp
and with the 003 lecture's hand-written backward pass."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tensors import LECTURE, NOT_YET_SCALARISED, lecture_by_hand, lecture_inputs
from test_tensors_hypothesis import INPUTS, programs

import graphc
from graphc.graph import Graph
from graphc.ops import BLOCK_OPS, index_params
from graphc.scalarise import element_name, scalarise
from graphc.user_blocks import Block

RNG = np.random.default_rng(2024)
METHODS = ("dp", "forward", "paths", "symbolic", "numeric")


def scalar_values(s: Any, values: dict[str, np.ndarray]) -> list[float]:
    """The scalarised graph's arguments, in its variables' order, from the tensors' values."""
    flat = {
        element_name(name, index): float(values[name][index])
        for name, shape in s.inputs.items()
        for index in itertools.product(*(range(d) for d in shape))
    }
    return [flat[name] for name in s.graph.variables]


def evaluated_scalarised(graph: Graph, values: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The tensor graph's outputs, computed by the scalar NumPy backend on its scalarised graph."""
    s = scalarise(graph)
    result = graphc.compile(s.graph)(*scalar_values(s, values))
    flat = iter(result if isinstance(result, tuple) else (result,))
    return [np.array([next(flat) for _ in range(int(np.prod(shape)))]).reshape(shape) for shape in s.outputs]


# --- every block op, over shapes: scalarised == the op's NumPy source --------------------------------

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


LAYER_OPS = {
    "conv2d", "conv2d_input", "conv2d_filter", "maxpool2d", "maxpool2d_select", "maxpool2d_route",
    "avgpool2d", "avgpool2d_adjoint",
}  # fmt: skip


@st.composite
def layer_programs(draw: st.DrawFn, g: Graph, op: str) -> int:
    """A convolution or pooling op (or one of their adjoints) on small drawn images: a batch axis
    or none, strides, padding and windows that fit (graphc.convolution's scalar forms)."""
    lead = draw(st.sampled_from([(), (2,)]))
    height, width = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    stride = draw(st.integers(1, 2))
    if op.startswith("conv2d"):
        c_in, c_out, padding = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        kh, kw = draw(st.integers(1, height + 2 * padding)), draw(st.integers(1, width + 2 * padding))
        out = ((height + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1)
        image, upstream = (*lead, c_in, height, width), (*lead, c_out, *out)
        if op == "conv2d":
            return g.apply(op, g.var("a", image), g.var("b", (c_out, c_in, kh, kw)), params=(stride, padding))
        if op == "conv2d_input":
            a, b = g.var("a", upstream), g.var("b", (c_out, c_in, kh, kw))
            return g.apply(op, a, b, params=(stride, padding, (height, width)))
        return g.apply(op, g.var("a", image), g.var("b", upstream), params=(stride, padding, (kh, kw)))
    k = draw(st.integers(1, min(height, width, 3)))
    pooled = (*lead, (height - k) // stride + 1, (width - k) // stride + 1)
    image = (*lead, height, width)
    if op in ("maxpool2d", "avgpool2d"):
        return g.apply(op, g.var("a", image), params=(k, stride))
    if op == "maxpool2d_select":
        return g.apply(op, g.var("a", image), g.var("b", image), params=(k, stride))
    if op == "maxpool2d_route":
        return g.apply(op, g.var("a", image), g.var("b", pooled), params=(k, stride))
    return g.apply(op, g.var("a", pooled), params=(k, stride, (height, width)))


@st.composite
def block_programs(draw: st.DrawFn) -> tuple[str, Graph, dict[str, np.ndarray]]:
    """One block op on variables of drawn shapes, with drawn params (built through the builder)."""
    op = draw(st.sampled_from(sorted(set(BLOCK_OPS) - NOT_YET_SCALARISED)))
    g = Graph()
    shape = draw(shapes)
    if op == "matmul":
        n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
        left = draw(st.sampled_from([(k,), (n, k)]))
        right = draw(st.sampled_from([(k,), (k, m)]))
        node = g.apply("matmul", g.var("a", left), g.var("b", right))
    elif op == "masked_matmul":  # the mask's values are drawn too: some 0, most not
        n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
        mask = g.apply("gt", g.var("f", (n, k)), g.const(0.0))
        node = g.apply("masked_matmul", g.var("a", (n, k)), mask, g.var("b", (k, m)))
    elif op in LAYER_OPS:
        node = draw(layer_programs(g, op))
    elif op == "masked_maxpool2d_route":  # the route's program, a flag per window
        plain = draw(layer_programs(g, "maxpool2d_route"))
        operands = g.args(plain)
        mask = g.apply("gt", g.var("f", g.shape(operands[1])), g.const(0.0))
        node = g.apply(op, *operands, mask, params=g.params(plain))
    elif op.removeprefix("masked_") in LAYER_OPS:  # the plain op's program, one operand flagged
        plain = draw(layer_programs(g, op.removeprefix("masked_")))
        slot = draw(st.integers(0, 1))
        operands = g.args(plain)
        mask = g.apply("gt", g.var("f", g.shape(operands[slot])), g.const(0.0))
        node = g.apply(op, *operands, mask, params=(*g.params(plain), slot))
    elif op == "custom":  # a user block whose body is its scalar form: the body's elements
        x = g.var("a", shape)
        node = g.apply("custom", x, g.apply("sin", x), params=Block("b", ("a",), ((), ()), (), scalar=True))
    else:
        x = g.var("a", shape)
        rank = len(shape)
        axes = tuple(sorted(draw(st.sets(st.integers(0, rank - 1)))))
        if op in ("sum", "logsumexp", "amax", "amin"):
            node = g.apply(op, x, params=(axes, draw(st.booleans())))
        elif op == "shift":
            node = g.sub(x, g.apply("shift", x, params=axes))
        elif op == "count":
            node = g.mul(g.apply("count", x, params=axes), g.apply("sum", x, params=(axes, False)))
        elif op == "reshape":
            size = int(np.prod(shape))
            node = g.apply("reshape", x, params=draw(st.sampled_from([(size,), (size, 1), shape[::-1]])))
        elif op == "transpose":
            node = g.apply("transpose", x, params=tuple(draw(st.permutations(range(rank)))))
        elif op == "broadcast":
            node = g.apply("broadcast", x, params=(draw(st.integers(1, 3)), *shape))
        elif op in ("index", "unindex"):
            items: list[Any] = []
            for dim in shape[: draw(st.integers(1, rank))]:
                kind = draw(st.sampled_from(["int", "slice", "all"]))
                if kind == "int":
                    items.append(draw(st.integers(-dim, dim - 1)))
                elif kind == "slice":
                    step = draw(st.sampled_from([1, 2, -1]))
                    items.append((draw(st.integers(0, dim - 1)), None, step))
                else:
                    items.append(None)
            index = index_params(shape, items)
            if op == "index":
                node = g.apply("index", x, params=index)
            else:  # unindex: a value of the indexed shape placed in a tensor of ``shape``
                inner = g.apply("index", x, params=index)
                node = g.apply("unindex", g.apply("sin", inner), params=(index, shape))
        else:  # a new block op: give it a program here
            raise AssertionError(f"no program for the block op {op}")
    g.set_outputs([node])
    values = {name: RNG.normal(size=g.shape(g.variable(name))) for name in g.variables}
    return op, g, values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block_programs())
def test_every_block_op_scalarised_computes_what_its_numpy_source_computes(
    program: tuple[str, Graph, dict[str, np.ndarray]],
) -> None:
    op, graph, values = program
    tensor = graphc.compile(graph)(**values)
    (scalar,) = evaluated_scalarised(graph, values)
    np.testing.assert_allclose(scalar, tensor, rtol=1e-12, atol=1e-14, err_msg=op)


def test_every_block_op_entry_has_a_scalarise_rule() -> None:
    for name, op in BLOCK_OPS.items():  # or is listed, on purpose, as refused by name
        assert callable(op.scalarise) or name in NOT_YET_SCALARISED, f"block op {name} lacks scalarise"
    assert all(BLOCK_OPS[name].scalarise is None for name in NOT_YET_SCALARISED)


@pytest.mark.parametrize(
    "text",
    [
        "A: [2, 3]; softmax(A) + log_softmax(A, axis=0)",
        "x: [4]; y: [4]; outer(x, y) @ x + mean(y)",
        "A: [3, 4]; transpose(A)[1:3, ::2] + reshape(A[0, 1:3], [2, 1])",
        "A: [3, 4]; max(A, axis=0) - min(A, axis=-1)[0]",
    ],
)
def test_composites_and_structure_scalarise_to_the_same_values(text: str) -> None:
    graph = graphc.parse(text)
    values = {name: RNG.normal(size=graph.shape(graph.variable(name))) for name in graph.variables}
    (scalar,) = evaluated_scalarised(graph, values)
    np.testing.assert_allclose(scalar, graphc.compile(graph)(**values), rtol=1e-12)


def test_structural_ops_build_no_scalar_node() -> None:
    s = scalarise(graphc.parse("A: [3, 4]; reshape(transpose(A)[::-1, 1:], [8])"))
    assert s.graph.stats()["ops"] == {"var": 12} and s.outputs == [(8,)]


def test_element_names_are_the_tensor_name_and_its_index() -> None:
    s = scalarise(graphc.parse("W: [2, 3]; x: [3]; s * (W @ x)"))
    assert "W[1,2]" in s.graph.variables and "x[0]" in s.graph.variables and "s" in s.graph.variables
    assert s.graph.output_names == ["f[0]", "f[1]"]
    assert s.inputs == {"W": (2, 3), "s": (), "x": (3,)}


def test_scalarised_logsumexp_and_softmax_are_stable_at_1000() -> None:
    graph = graphc.parse("x: [3]; logsumexp(x) + sum(softmax(x) * x)")
    values = {"x": np.array([1000.0, 999.0, -1000.0])}
    (scalar,) = evaluated_scalarised(graph, values)
    assert np.isfinite(scalar) and np.isclose(scalar, graphc.compile(graph)(**values), rtol=1e-14)


def test_a_named_dimension_must_be_bound_to_scalarise() -> None:
    with pytest.raises(
        graphc.GraphcError, match=r"dimension 'n' of input 'X' \[n, 2\].*dims=\{'n': \.\.\.\}"
    ):
        scalarise(graphc.parse("X: [n, 2]; sum(X)"))
    assert scalarise(graphc.parse("X: [n, 2]; sum(X)", dims={"n": 3})).inputs == {"X": (3, 2)}


# --- paths: the block-level count is the scalarised graph's -----------------------------------------


def scalar_path_counts(graph: Graph) -> dict[str, int]:
    """Each input's paths counted on the scalarised graph, summed over the input's elements."""
    s = scalarise(graph)
    scalar = graphc.count_paths(s.graph)
    return {
        name: sum(scalar[element_name(name, index)] for index in np.ndindex(shape))
        for name, shape in s.inputs.items()
    }


@pytest.mark.parametrize(
    "text",
    [
        LECTURE,
        "x: [3]; sum(x*x)",
        "A: [3, 4]; x: [4]; y = tanh(A @ x); sum(y*y)",
        "A: [2, 3]; B: [3, 2]; sum(logsumexp(A @ B, axis=0))",
        "A: [2, 3]; sum(log_softmax(A, axis=0) * softmax(A))",
        "x: [4]; max(x) * min(x) + x[0] * sum(reshape(x, [2, 2])[1])",
        "x: [3]; s = sum(x); s*s + mean(transpose(outer(x, x)))",
    ],
)
def test_block_path_counts_equal_the_scalarised_graphs(text: str) -> None:
    graph = graphc.parse(text)
    expected = scalar_path_counts(graph)
    assert graphc.count_paths(graph) == expected
    d = graphc.differentiate(graph, method="paths")
    assert d.info["paths"] == d.info["terms"] == sum(expected.values())


@pytest.mark.parametrize(
    "text",
    [
        "A: [2, 3]; F: [2, 3]; B: [3, 2]; y = masked_matmul(A, F, B); sum(y * y)",
        "X: [2, 1, 3, 3]; K: [2, 1, 2, 2]; F: [2, 1, 3, 3]; y = masked_conv2d(X, K, F, stride=1, padding=1, masked=0); sum(y * y)",
        "G: [2, 2, 2]; K: [2, 1, 2, 2]; F: [2, 1, 2, 2]; sum(sin(masked_conv2d_input(G, K, F, stride=1, padding=0, size=[3, 3], masked=1)))",
        "X: [2, 1, 3, 3]; G: [2, 2, 2, 2]; F: [2, 2, 2, 2]; sum(exp(masked_conv2d_filter(X, G, F, stride=1, padding=0, size=[2, 2], masked=1)))",
    ],
)
def test_a_masked_ops_path_counts_equal_its_scalarised_graphs(text: str) -> None:
    """Its flag carries no derivative (a ``where``'s condition, an inert slot): no path from it
    is counted, and every counted path gives a term (graphc.masked, graphc.masked_conv)."""
    graph = graphc.parse(text)
    counts = graphc.count_paths(graph)
    assert counts == scalar_path_counts(graph)
    assert counts["F"] == 0
    d = graphc.differentiate(graph, method="paths")
    assert d.info["paths"] == d.info["terms"] == sum(counts.values())


@pytest.mark.parametrize(
    "text", ["x: [3]; sum(x*x)", "W: [2, 2]; x: [2]; logsumexp(W @ x)", "A: [2, 3]; max(A[1]) * A[0, 2]"]
)
def test_listed_paths_of_a_tensor_graph_are_the_scalar_paths_block_counted(text: str) -> None:
    from graphc.diff.paths import list_paths

    graph = graphc.parse(text)
    _, found = list_paths(graph)
    inputs = scalarise(graph).inputs
    elements = {name: {element_name(name, i) for i in np.ndindex(shape)} for name, shape in inputs.items()}
    for name, count in graphc.count_paths(graph).items():
        assert sum(path.input in elements[name] for path in found) == count


def test_paths_refuses_by_the_block_count_before_scalarising() -> None:
    text = "A: [60, 60]; B: [60, 60]; C = A @ B; sum(C @ C)"
    with pytest.raises(graphc.TooManyPathsError, match="more than max_paths=1,000,000") as caught:
        graphc.differentiate(text, method="paths")
    assert caught.value.paths == sum(graphc.count_paths(text).values())


# --- the 003 lecture: five methods, two backends ------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("method", METHODS)
def test_the_003_lecture_gives_the_same_gradients_by_every_method_on_both_backends(
    method: str, backend: str
) -> None:
    values = lecture_inputs()
    expected = lecture_by_hand(**values)
    kernel = graphc.grad(LECTURE, method=method, backend=backend)
    tolerance = 1e-6 if method == "numeric" else 1e-12
    for name, partial in zip(kernel.wrt, kernel(**values), strict=True):
        np.testing.assert_allclose(partial, expected[name], rtol=tolerance, atol=tolerance, err_msg=name)


@pytest.mark.parametrize("method", ["paths", "symbolic"])
def test_scalar_methods_on_tensor_graphs_give_partials_shaped_out_shape_plus_in_shape(method: str) -> None:
    text = "W: [2, 3]; x: [3]; tanh(W @ x)"
    W, x = RNG.normal(size=(2, 3)), RNG.normal(size=(3,))
    for wrt in ("W", "x"):
        J = graphc.jacobian(text, wrt=wrt)(W, x)
        d = graphc.differentiate(text, wrt, method)
        by_method = graphc.compile(d)(W, x)[1]
        assert by_method.shape == J.shape
        np.testing.assert_allclose(by_method, J, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", ["paths", "symbolic"])
def test_named_dimensions_are_bound_with_dims_for_paths_and_symbolic(method: str) -> None:
    text = "X: [n, 2]; w: [2]; sum(tanh(X @ w))"
    with pytest.raises(graphc.GraphcError, match=rf"the {method} method needs concrete shapes.*'n'.*dims="):
        graphc.grad(text, method=method)
    X, w = RNG.normal(size=(4, 2)), RNG.normal(size=2)
    got = graphc.grad(text, method=method, dims={"n": 4})(X, w)
    for a, b in zip(got, graphc.grad(text)(X, w), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_symbolic_refuses_a_scalarised_graph_beyond_its_size_limit() -> None:
    with pytest.raises(graphc.SymbolicError, match="exceed 5,000 scalar nodes.*method='dp'"):
        graphc.differentiate("A: [20, 20]; B: [20, 20]; sum(A @ B)", method="symbolic")


# --- the llvm backend on tensor graphs -----------------------------------------------------------------


def test_llvm_tensor_kernels_put_batch_axes_in_front_as_numpy_does() -> None:
    values = lecture_inputs()
    batched = {**values, "W": RNG.normal(size=(4, 3, 5)), "x": RNG.normal(size=(2, 1, 5))}
    by_numpy = graphc.value_and_grad(LECTURE)(**batched)
    by_llvm = graphc.value_and_grad(LECTURE, backend="llvm")(**batched)
    assert by_llvm[0].shape == (2, 4) and [g.shape for g in by_llvm[1]] == [
        (2, 4, 3, 5),
        (2, 4, 3),
        (2, 4, 3),
        (2, 4, 5),
    ]
    np.testing.assert_allclose(by_llvm[0], by_numpy[0], rtol=1e-12)
    for a, b in zip(by_llvm[1], by_numpy[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_the_scalarised_llvm_fallback_compiles_once_per_binding_of_the_named_dimensions() -> None:
    # the fallback of block ops with no loop form (tests/test_llvm_tensor.py: one loop kernel serves all)
    from graphc.backends.llvm.tensor import TensorFunction

    function = TensorFunction(graphc.parse("X: [n, 3]; softmax(X, axis=0)"), None)
    assert "call time" in function.source
    for rows in (2, 2, 5):
        X = RNG.normal(size=(rows, 3))
        np.testing.assert_allclose(
            function(X), graphc.compile("X: [n, 3]; softmax(X, axis=0)")(X), rtol=1e-12
        )
    assert sorted(function._compiled) == [(2,), (5,)]


def test_llvm_tensor_kernels_explain_bad_shapes() -> None:
    kernel = graphc.compile("A: [3, 4]; x: [4]; A @ x", backend="llvm")
    with pytest.raises(graphc.EvaluationError, match=r"input 'x' is declared \[4\] but given shape \(5,\)"):
        kernel(np.ones((3, 4)), np.ones(5))


@pytest.mark.parametrize(
    "text",
    [
        "A: [2, 3]; B: [3, 2]; A @ B",
        "A: [2, 3]; x: [3]; max(A, axis=1) + A @ x",
        "x: [3]; y: [3]; dot(x, y), outer(x, y)",
        "x: [5]; x[::-2] * x[1:4]",
        "A: [2, 3]; mean(softmax(A, axis=0), axis=1)",
    ],
)
def test_llvm_tensor_kernels_compute_what_numpy_computes(text: str) -> None:
    graph = graphc.parse(text)
    values = {name: RNG.normal(size=(2, *graph.shape(graph.variable(name)))) for name in graph.variables}
    by_numpy = graphc.compile(text)(**values)
    by_llvm = graphc.compile(text, backend="llvm")(**values)
    if len(graph.outputs) == 1:
        by_numpy, by_llvm = (by_numpy,), (by_llvm,)
    for a, b in zip(by_llvm, by_numpy, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12)


# --- random tensor programs: the scalarised routes agree with dp at block level ----------------------


def _agree_with_dp(text: str, seed: int, method: str, backend: str) -> None:
    rng = np.random.default_rng(seed)
    env = {name: rng.uniform(-1.0, 1.0, shape) for name, shape in INPUTS.items()}
    graph = graphc.parse(text)
    reference = graphc.value_and_grad(graph)(**env)
    value, partials = graphc.value_and_grad(graph, method=method, backend=backend)(**env)
    np.testing.assert_allclose(value, reference[0], rtol=1e-12, atol=1e-12, err_msg=text)
    for got, expected in zip(partials, reference[1], strict=True):
        scale = 1.0 + np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12 * scale, err_msg=text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), seed=st.integers(0, 2**16), backend=st.sampled_from(["numpy", "llvm"]))
def test_random_tensor_programs_by_paths_and_by_llvm_agree_with_dp(
    program: tuple[str, Any], seed: int, backend: str
) -> None:
    text = program[0]
    method = "paths" if sum(graphc.count_paths(text).values()) <= 20_000 else "dp"
    _agree_with_dp(text, seed, method, backend)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), seed=st.integers(0, 2**16))
def test_random_tensor_programs_by_symbolic_agree_with_dp(program: tuple[str, Any], seed: int) -> None:
    _agree_with_dp(program[0], seed, "symbolic", "numpy")


def test_a_tensor_graph_goes_to_sympy_as_arrays_of_its_scalarised_elements() -> None:
    import sympy

    W = {(i, j): sympy.Symbol(f"W[{i},{j}]", real=True) for i in range(2) for j in range(2)}
    x = [sympy.Symbol(f"x[{i}]", real=True) for i in range(2)]
    product, total = graphc.parse("x: [2]; W: [2, 2]; W @ x, sum(x)").to_sympy()
    assert product.shape == (2,) and total == x[0] + x[1]
    assert list(product) == [W[i, 0] * x[0] + W[i, 1] * x[1] for i in range(2)]
