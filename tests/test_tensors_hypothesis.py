"""Random tensor programs (shapes and block ops drawn together): dp, forward and numeric agree with
each other, and the value and gradient agree with a NumPy twin of the program written
independently of graphc (its gradient by central differences on the twin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc

Twin = Callable[[dict[str, np.ndarray]], np.ndarray]
INPUTS = {"x": (3,), "y": (3,), "A": (2, 3), "B": (3, 2)}


def _softmax(v: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _logsumexp(v: np.ndarray, axis: int) -> np.ndarray:
    top = v.max(axis=axis, keepdims=True)
    return np.squeeze(np.log(np.exp(v - top).sum(axis=axis, keepdims=True)) + top, axis=axis)


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, Twin]:
    """A program of 2-7 statements over INPUTS ending in a scalar, and its NumPy twin."""
    values: list[tuple[str, tuple[int, ...], Twin]] = [
        (name, shape, (lambda env, n=name: env[n])) for name, shape in INPUTS.items()
    ]
    lines = ["x: [3]; y: [3]; A: [2, 3]; B: [3, 2]"]
    for k in range(draw(st.integers(2, 7))):
        name, shape, twin = draw(st.sampled_from(values))
        choice = draw(
            st.sampled_from(["unary", "binary", "matmul", "reduce", "softmax", "structure", "where"])
        )
        rank = len(shape)
        text: str
        new: Twin
        if choice == "where":  # continuous at the switch: central differences stay valid
            text = f"where({name} > 0, sin({name}), 2 * {name})"
            new, out = (lambda env, t=twin: np.where(t(env) > 0, np.sin(t(env)), 2 * t(env))), shape
        elif choice == "unary" or (choice in ("reduce", "softmax", "structure") and rank == 0):
            fn = draw(st.sampled_from(["sin", "tanh", "sigmoid", "softplus"]))
            numpy_fn = {
                "sin": np.sin,
                "tanh": np.tanh,
                "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
                "softplus": lambda v: np.logaddexp(0, v),
            }[fn]
            text, new, out = f"{fn}({name})", (lambda env, t=twin, f=numpy_fn: f(t(env))), shape
        elif choice == "binary":
            partners = [v for v in values if v[1] == shape or v[1] == () or shape == ()]
            other, other_shape, other_twin = draw(st.sampled_from(partners))
            op = draw(st.sampled_from(["+", "-", "*"]))
            numpy_op = {"+": np.add, "-": np.subtract, "*": np.multiply}[op]
            text = f"{name} {op} {other}"
            new = lambda env, a=twin, b=other_twin, f=numpy_op: f(a(env), b(env))
            out = shape if shape else other_shape
        elif choice == "matmul":
            partners = [v for v in values if rank in (1, 2) and len(v[1]) in (1, 2) and shape[-1] == v[1][0]]
            if not partners:
                continue
            other, other_shape, other_twin = draw(st.sampled_from(partners))
            text = f"{name} @ {other}"
            new = lambda env, a=twin, b=other_twin: a(env) @ b(env)
            out = np.empty(shape).__matmul__(np.empty(other_shape)).shape
        elif choice == "reduce":
            fn = draw(st.sampled_from(["sum", "mean", "logsumexp", "max", "min"]))
            axis = draw(st.integers(-rank, rank - 1))
            numpy_reduce = {
                "sum": lambda v, a: v.sum(axis=a),
                "mean": lambda v, a: v.mean(axis=a),
                "logsumexp": _logsumexp,
                "max": lambda v, a: v.max(axis=a),
                "min": lambda v, a: v.min(axis=a),
            }[fn]
            text = f"{fn}({name}, axis={axis})"
            new = lambda env, t=twin, f=numpy_reduce, a=axis: f(t(env), a)
            out = tuple(d for i, d in enumerate(shape) if i != axis % rank)
        elif choice == "softmax":
            axis = draw(st.integers(-rank, rank - 1))
            text, new, out = (
                f"softmax({name}, axis={axis})",
                (lambda env, t=twin, a=axis: _softmax(t(env), a)),
                shape,
            )
        else:
            form = draw(st.sampled_from(["transpose", "flatten", "index", "slice"]))
            if form == "transpose":
                text, new, out = f"transpose({name})", (lambda env, t=twin: t(env).T), shape[::-1]
            elif form == "flatten":
                size = int(np.prod(shape))
                text = f"reshape({name}, [{size}])"
                new, out = (lambda env, t=twin: t(env).reshape(-1)), (size,)
            elif form == "index":
                text, new, out = f"{name}[-1]", (lambda env, t=twin: t(env)[-1]), shape[1:]
            else:
                text, new = f"{name}[::2]", (lambda env, t=twin: t(env)[::2])
                out = ((shape[0] + 1) // 2, *shape[1:])
        lines.append(f"t{k} = {text}")
        values.append((f"t{k}", out, new))
    name, shape, twin = values[-1]
    lines.append(f"sum({name} * {name})" if shape else f"{name} * {name}")
    return "; ".join(lines), (lambda env, t=twin: np.sum(t(env) * t(env)))


def twin_gradient(twin: Twin, env: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Central differences of the twin, element by element (independent of graphc)."""
    grad = np.zeros_like(env[name])
    for index in np.ndindex(env[name].shape):
        h = 1e-6 * max(1.0, abs(env[name][index]))
        up, down = {k: v.copy() for k, v in env.items()}, {k: v.copy() for k, v in env.items()}
        up[name][index] += h
        down[name][index] -= h
        grad[index] = (twin(up) - twin(down)) / (2 * h)
    return grad


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), seed=st.integers(0, 2**16))
def test_random_tensor_programs_dp_forward_numeric_and_numpy_agree(
    program: tuple[str, Twin], seed: int
) -> None:
    text, twin = program
    rng = np.random.default_rng(seed)
    env = {name: rng.uniform(-1.0, 1.0, shape) for name, shape in INPUTS.items()}
    graph = graphc.parse(text)
    np.testing.assert_allclose(graphc.compile(graph)(**env), twin(env), rtol=1e-12, atol=1e-12, err_msg=text)
    results: dict[str, Any] = {}
    for method in ("dp", "forward", "numeric"):
        results[method] = graphc.grad(graph, method=method)(**env)
    for i, name in enumerate(graphc.grad(graph).wrt):
        reference = twin_gradient(twin, env, name)
        scale = 1.0 + np.abs(reference).max()
        np.testing.assert_allclose(results["dp"][i], results["forward"][i], rtol=1e-10, atol=1e-10 * scale)
        np.testing.assert_allclose(results["dp"][i], reference, rtol=1e-5, atol=1e-6 * scale, err_msg=text)
        np.testing.assert_allclose(
            results["numeric"][i], reference, rtol=1e-5, atol=1e-6 * scale, err_msg=text
        )
