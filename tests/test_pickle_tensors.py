"""Tensor graphs as plain data and tensor kernels pickled: declared shapes (named dimensions
too), block-op params and user blocks travel; the loaded graph is node for node the same, and the
loaded kernel computes the same bits."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest

import graphc
from graphc.errors import DataError
from graphc.graph import Graph

# Every block op the language spells, named dimensions among them; their derivatives add the
# adjoint ops (unindex, broadcast, shift, count, conv2d_input/filter, the pooling adjoints).
PROGRAMS = [
    "W: [3, n]; x: [n]; b: [3]; h = tanh(W @ x + b); sum(h * h) + max(x) + h[1:3] @ b[0:2]",
    "A: [2, 3]; y = softmax(A, axis=0) + log_softmax(A); sum(y * reshape(logsumexp(A, axis=1), [2, 1]))",
    "A: [3, 4]; v: [4]; sum(reshape(A, [2, -1])[1, ::-2]) + dot(v, v) + sum(transpose(A) @ A[:, 0])",
    "X: [n, 4]; w: [4]; mean(reshape(X, [n, 2, 2]), axis=0)[1, 1] + sum(exp(X @ w)) + min(w)",
    "x: [3]; y: [4]; sum(outer(x, y) ** 2) + sum(x[::-1] * x)",
    "X: [1, 8, 8]; K: [2, 1, 3, 3]; W: [2, 3, 3]; sum(maxpool2d(relu(conv2d(X, K)), 2) * W)",
    "X: [2, 6, 6]; K: [3, 2, 3, 3]; W: [3, 3, 3]; sum(sin(conv2d(X, K, stride=2, padding=1)) * W)",
    "X: [2, 6, 6]; W: [2, 5, 5]; sum(exp(avgpool2d(X, 2, stride=1)) * W)",
    "x: [4]; s = sum(x); where(s > 0, sum(sqrt(abs(x))), -s) + s * s",
]


def _graph(text: str, method: str) -> Graph:
    if method == "parse":
        return graphc.parse(text)
    return graphc.differentiate(text, method=method, dims={"n": 4} if method == "forward" else None)


def _same_nodes(a: Graph, b: Graph) -> None:
    assert list(a.ops) == list(b.ops)
    assert list(a.operands) == list(b.operands)
    assert list(a.shapes) == list(b.shapes)
    assert [a.params(n) for n in range(len(a))] == [b.params(n) for n in range(len(b))]
    assert [a.const_value(n) for n in range(len(a))] == [b.const_value(n) for n in range(len(b))]
    assert (a.outputs, a.output_names, a.variables, a.tensor) == (
        b.outputs,
        b.output_names,
        b.variables,
        b.tensor,
    )


@pytest.mark.parametrize("method", ["parse", "dp", "forward"])
@pytest.mark.parametrize("text", PROGRAMS)
def test_a_tensor_graph_round_trips_node_for_node(text: str, method: str) -> None:
    graph = _graph(text, method)
    data = graph.to_data()
    again = Graph.from_data(pickle.loads(pickle.dumps(data)))
    _same_nodes(again, graph)
    assert again.to_data() == data
    assert again.info == graph.info
    # hash-consing works on the loaded graph: the same block op with the same params is found
    for node in range(len(graph)):
        params = graph.params(node)
        if params is not None:
            args = graph.args(node)
            assert again.apply(graph.op(node), *args, params=params) == node
            break


def test_plain_data_holds_plain_values_only() -> None:
    stack: list[Any] = [graphc.differentiate(PROGRAMS[5], method="dp").to_data()]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            assert all(isinstance(k, str) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            assert item is None or type(item) in (str, int, float, bool), type(item)


def test_a_scalar_graphs_data_is_what_it_was_before_tensors() -> None:
    graph = graphc.parse("sin(x*y) + 2")
    assert all(len(entry) == 4 for entry in graph.to_data()["nodes"])


EXPR = "W: [3, n]; x: [n]; b: [3]; h = tanh(W @ x + b); sum(h * h) + max(x) + h[1:3] @ b[0:2]"
KINDS: dict[str, Callable[[str], graphc.Kernel]] = {
    "compile": lambda backend: graphc.compile(EXPR.replace("; sum(", "; h, sum("), backend),
    "grad": lambda backend: graphc.grad(EXPR, backend=backend),
    "value_and_grad": lambda backend: graphc.value_and_grad(EXPR, backend=backend),
    "jacobian": lambda backend: graphc.jacobian(
        "W: [3, n]; x: [n]; tanh(W @ x)", wrt="x", backend=backend, dims={"n": 4}
    ),
    "hessian": lambda backend: graphc.hessian(EXPR, wrt="x", backend=backend, dims={"n": 4}),
    "vjp": lambda backend: graphc.vjp("W: [3, n]; x: [n]; tanh(W @ x)", backend=backend),
    "jvp": lambda backend: graphc.jvp("W: [3, n]; x: [n]; tanh(W @ x)", backend=backend),
}
RNG = np.random.default_rng(28)
VALUES = {
    "W": RNG.normal(size=(3, 4)),
    "x": RNG.normal(size=4),
    "b": RNG.normal(size=3),
    "tangent_W": RNG.normal(size=(3, 4)),
    "tangent_x": RNG.normal(size=4),
}


def _arguments(kernel: graphc.Kernel, batch: bool) -> dict[str, Any]:
    """Values for the kernel's variables (a cotangent is shaped like the output, tanh(W @ x))."""
    values = {name: VALUES.get(name, RNG.normal(size=3)) for name in kernel.variables}
    if batch:  # a leading batch axis on one input
        values["x"] = np.stack([values["x"], values["x"] * 0.5, -values["x"]])
        if "tangent_x" in values:
            values["tangent_x"] = values["x"][::-1].copy()
    return values


def _bits(result: Any) -> list[tuple[tuple[int, ...], bytes]]:
    stack, bits = [result], []
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
        else:
            bits.append((np.shape(item), np.asarray(item, dtype=np.float64).tobytes()))
    return bits


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_pickled_tensor_kernel_computes_the_same_bits(kind: str, backend: str) -> None:
    kernel = KINDS[kind](backend)
    loaded = pickle.loads(pickle.dumps(kernel))
    _same_nodes(loaded.graph, kernel.graph)
    assert (loaded.variables, loaded.outputs, loaded.wrt, loaded.result) == (
        kernel.variables,
        kernel.outputs,
        kernel.wrt,
        kernel.result,
    )
    for batch in (False, True):
        arguments = _arguments(kernel, batch)
        assert _bits(loaded(**arguments)) == _bits(kernel(**arguments))


def _call_pickled(blob: bytes, arguments: dict[str, Any]) -> list[tuple[tuple[int, ...], bytes]]:
    return _bits(pickle.loads(blob)(**arguments))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_pickled_tensor_kernel_gives_the_same_bits_in_another_process(backend: str) -> None:
    kernel = KINDS["value_and_grad"](backend)
    arguments = _arguments(kernel, batch=True)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = pool.submit(_call_pickled, pickle.dumps(kernel), arguments).result(timeout=180)
    assert there == _bits(kernel(**arguments))


def test_a_user_block_travels_with_the_kernel_not_with_the_registry() -> None:
    graphc.block("mysoftmax2(a) = exp(a) / sum(exp(a))", vjp="y * (g - sum(y * g))")
    try:
        text = "x: [3]; t: [3]; -sum(t * log(mysoftmax2(x)))"
        kernels = [graphc.compile(text), graphc.value_and_grad(text, wrt="x")]
        graph = graphc.parse(text)
    finally:
        graphc.forget("mysoftmax2")
    again = Graph.from_data(graph.to_data())
    _same_nodes(again, graph)
    custom = [n for n in range(len(again)) if again.op(n) == "custom"]
    assert custom and again.params(custom[0]) == graph.params(custom[0])  # the Block, equal
    # differentiating the loaded graph builds the user's VJP from the formula's text
    assert graphc.differentiate(again, "x").to_data() == graphc.differentiate(graph, "x").to_data()
    x, t = np.array([0.2, -1.0, 0.5]), np.array([0.1, 0.3, 0.6])
    for kernel in kernels:
        assert _bits(pickle.loads(pickle.dumps(kernel))(x, t)) == _bits(kernel(x, t))


def _data(text: str) -> dict[str, Any]:
    return graphc.parse(text).to_data()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["nodes"][0].__setitem__(4, [3, "n m"]),
            "node 0 has a shape that is not a list of sizes",
        ),
        (lambda d: d["nodes"][0].__setitem__(4, [3, -1]), "node 0 has a shape that is not"),
        (lambda d: d["nodes"][0].__setitem__(4, "[3]"), "node 0 has a shape that is not"),
        (
            lambda d: d["nodes"][1].__setitem__(4, [[0], "os.system('x')"]),
            r"holding the string \"os\.system\('x'\)\"",
        ),
        (lambda d: d["nodes"][1].__setitem__(4, [[0], 0.5]), "holding a float"),
        (lambda d: d["nodes"][1].__setitem__(4, [[5], False]), r"node 1 \(sum\): .*axis"),
        (lambda d: d["nodes"][1].__setitem__(4, None), r"node 1 \(sum\)"),
        (
            lambda d: d["nodes"][1].__setitem__(4, {"block": 1}),
            r"node 1 \(sum\) has malformed params",
        ),
        (lambda d: d["nodes"][2].append([1]), r"node 2 \(sin\) is elementwise: it takes no params"),
        (lambda d: d["nodes"][1].__setitem__(4, [[[[[[[[[[0]]]]]]]]], False]), "nested too deep"),
        (lambda d: d["nodes"][1].extend([1, 2]), r"node 1 is not \[op, args, value, name\]"),
    ],
)
def test_bad_tensor_data_is_a_data_error_naming_the_node(change: Callable[[Any], None], message: str) -> None:
    data = _data("x: [3, n]; sin(sum(x, axis=0))")
    change(data)
    with pytest.raises(DataError, match=message):
        Graph.from_data(data)


def test_params_an_op_would_never_build_are_a_data_error_when_the_kernel_loads() -> None:
    from graphc.kernel import rebuild

    _, (state,) = graphc.compile("x: [3]; sum(x)").__reduce__()
    state["graph"]["nodes"][1][4] = [[], 7]  # keepdims 7: the shape rule takes it, the emitter does not
    with pytest.raises(DataError, match=r"pickled kernel: its graph does not compile \(SyntaxError"):
        rebuild(state)


def test_a_user_blocks_formulas_are_read_as_the_language_only() -> None:
    graphc.block("twice3(a) = a + a", vjp="2 * g")
    try:
        data = graphc.parse("x: [3]; sum(twice3(x))").to_data()
    finally:
        graphc.forget("twice3")
    (custom,) = [entry for entry in data["nodes"] if entry[0] == "custom"]
    assert custom[4] == {"block": "twice3", "params": ["a"], "body": "a + a", "vjp": ["2 * g"]}
    custom[4]["vjp"] = ["2 * g $ __import__('os')"]
    with pytest.raises(DataError, match=r"node \d+ \(custom\): block 'twice3': .*'\$'"):
        Graph.from_data(data)
    custom[4]["vjp"] = None
    custom[4]["extra"] = 1
    with pytest.raises(DataError, match="malformed block params"):
        Graph.from_data(data)
