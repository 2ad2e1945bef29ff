"""The systems the tensor benchmark compares, each turning a problem and its arrays into a step.

A system's ``build(problem, arrays)`` returns a :class:`Step`: ``step()`` computes the loss and its
gradient wrt every weight (and waits for them), ``loss()`` the loss alone, and ``to_numpy`` turns a
step's result into ``(loss, [gradient per weight in problem.wrt order])`` for the correctness check
(untimed). The arrays are put into the system's own types (device arrays, tensors) by ``build``.

``numpy-hand`` is the bar: backpropagation written out by hand in NumPy, in place where it can be.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tensor_problems import TensorProblem

Arrays = dict[str, np.ndarray]


@dataclass
class Step:
    step: Callable[[], Any]
    loss: Callable[[], Any]
    to_numpy: Callable[[Any], tuple[float, list[np.ndarray]]]
    settle: Callable[[], None] = lambda: None  # waits for work a system finishes in the background


@dataclass(frozen=True)
class TensorSystem:
    name: str
    summary: str
    build: Callable[[TensorProblem, Arrays], Step]
    requires: tuple[str, ...] = ()
    graphc: bool = False  # graphc's own: runs only problems its language can state

    def unavailable(self, problem: TensorProblem) -> str | None:
        if self.graphc and not problem.graphc:
            return "n/a (graphc's language cannot state it)"
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"skipped: {module} is not installed"
        return None


# --- hand-written NumPy ----------------------------------------------------------------------------


def _cross_entropy(z: np.ndarray, t: np.ndarray, gradient: bool) -> tuple[float, np.ndarray | None]:
    """-mean over rows of sum(t * log_softmax(z)), and its gradient wrt z (z is overwritten).

    With ``s`` the row sums of ``t``, the gradient is ``(softmax(z) * s - t) / n``; one-hot rows
    have ``s = 1``, but nothing here assumes it.
    """
    n = z.shape[0]
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1, keepdims=True)
    weight = t.sum(axis=1, keepdims=True)
    loss = (float(np.vdot(weight, np.log(total))) - float(np.vdot(t, z))) / n
    if not gradient:
        return loss, None
    weight /= total * n
    e *= weight
    e -= t / n
    return loss, e


def _mlp_hand(activation: str) -> Callable[[TensorProblem, Arrays], Step]:
    def build(problem: TensorProblem, arrays: Arrays) -> Step:
        x, t, w1, b1, w2, b2 = (arrays[name] for name in ("X", "T", "W1", "b1", "W2", "b2"))

        def forward() -> tuple[np.ndarray, np.ndarray]:
            a = x @ w1
            a += b1
            h = np.tanh(a, out=a) if activation == "tanh" else np.maximum(a, 0.0, out=a)
            z = h @ w2
            z += b2
            return h, z

        def step() -> tuple[float, list[np.ndarray]]:
            h, z = forward()
            loss, dz = _cross_entropy(z, t, gradient=True)
            assert dz is not None
            dh = dz @ w2.T
            if activation == "tanh":  # tanh' = 1 - h^2
                square = h * h
                np.subtract(1.0, square, out=square)
                dh *= square
            else:  # relu'(a) = [a > 0], and relu'(0) = 0
                dh *= h > 0.0
            return loss, [x.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)]

        return Step(step, lambda: _cross_entropy(forward()[1], t, gradient=False)[0], lambda out: out)

    return build


def _conv_hand(problem: TensorProblem, arrays: Arrays) -> Step:
    """T4: conv 8x3x3 as one product of the filters with the images' 3x3 patches (as T3's), relu,
    dense 10 on the [image, filter, row, column] rows."""
    x, t, k, c, w, b = (arrays[name] for name in ("X", "T", "K", "c", "W", "b"))
    n, filters = x.shape[0], k.shape[0]
    kernel, bias = k.reshape(filters, 9), c.reshape(filters, 1)

    def forward() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        patches = np.empty((9, n, 6, 6))
        for row, (u, v) in zip(patches, [(u, v) for u in range(3) for v in range(3)], strict=True):
            row[...] = x[:, 0, u : u + 6, v : v + 6]
        patches = patches.reshape(9, n * 36)
        y = kernel @ patches
        y += bias
        np.maximum(y, 0.0, out=y)
        flat = y.reshape(filters, n, 36).transpose(1, 0, 2).reshape(n, filters * 36)
        return patches, y, flat

    def step() -> tuple[float, list[np.ndarray]]:
        patches, y, flat = forward()
        z = flat @ w
        z += b
        loss, dz = _cross_entropy(z, t, gradient=True)
        assert dz is not None
        dy = np.ascontiguousarray((dz @ w.T).reshape(n, filters, 36).transpose(1, 0, 2)).reshape(
            filters, n * 36
        )
        dy *= y > 0.0
        dk = (dy @ patches.T).reshape(k.shape)
        return loss, [dk, dy.sum(axis=1).reshape(c.shape), flat.T @ dz, dz.sum(axis=0)]

    def loss() -> float:
        z = forward()[2] @ w
        z += b
        return _cross_entropy(z, t, gradient=False)[0]

    return Step(step, loss, lambda out: out)


def _cnn_hand(problem: TensorProblem, arrays: Arrays) -> Step:
    """conv 8x3x3 as one product of the filters with the images' 3x3 patches, channels first
    ([filter, image, row, column], so every big axis is contiguous), relu, 2x2 max pooling as the
    maximum of the windows' four corners (a window's gradient goes to its first maximum, as in JAX
    and PyTorch), dense 10."""
    x, t, k, c, w, b = (arrays[name] for name in ("X", "T", "K", "c", "W", "b"))
    n, filters = x.shape[0], k.shape[0]
    kernel = k.reshape(filters, 9)
    bias = c.reshape(filters, 1)
    offsets = [(u, v) for u in range(3) for v in range(3)]  # a patch's pixels, in K's order
    corners = [(0, 0), (0, 1), (1, 0), (1, 1)]  # a pooling window's, in row-major order

    def forward() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        patches = np.empty((9, n, 6, 6))
        for row, (u, v) in zip(patches, offsets, strict=True):
            row[...] = x[:, 0, u : u + 6, v : v + 6]
        patches = patches.reshape(9, n * 36)
        y = kernel @ patches
        y += bias
        np.maximum(y, 0.0, out=y)
        quads = y.reshape(filters, n, 3, 2, 3, 2)
        pooled = np.maximum(quads[:, :, :, 0, :, 0], quads[:, :, :, 0, :, 1])
        np.maximum(pooled, quads[:, :, :, 1, :, 0], out=pooled)
        np.maximum(pooled, quads[:, :, :, 1, :, 1], out=pooled)
        flat = pooled.transpose(1, 0, 2, 3).reshape(n, 72)  # rows (channel, row, column), as W's
        return patches, quads, pooled, flat

    def step() -> tuple[float, list[np.ndarray]]:
        patches, quads, pooled, flat = forward()
        z = flat @ w
        z += b
        loss, dz = _cross_entropy(z, t, gradient=True)
        assert dz is not None
        dpooled = np.ascontiguousarray((dz @ w.T).reshape(n, filters, 3, 3).transpose(1, 0, 2, 3))
        dpooled *= pooled > 0.0  # relu' at the window's maximum
        dquads = np.zeros_like(quads)
        free = np.ones(pooled.shape, dtype=bool)  # windows whose maximum is not yet found
        for i, j in corners:
            hit = quads[:, :, :, i, :, j] == pooled
            hit &= free
            free &= ~hit
            np.multiply(dpooled, hit, out=dquads[:, :, :, i, :, j])
        dy = dquads.reshape(filters, n * 36)
        dk = (dy @ patches.T).reshape(k.shape)
        return loss, [dk, dy.sum(axis=1).reshape(c.shape), flat.T @ dz, dz.sum(axis=0)]

    def loss() -> float:
        z = forward()[3] @ w
        z += b
        return _cross_entropy(z, t, gradient=False)[0]

    return Step(step, loss, lambda out: out)


def _numpy_hand(problem: TensorProblem, arrays: Arrays) -> Step:
    builders = {"T1": _mlp_hand("tanh"), "T2": _mlp_hand("relu"), "T3": _cnn_hand, "T4": _conv_hand}
    return builders[problem.name](problem, arrays)


# --- JAX -------------------------------------------------------------------------------------------


def _jax_loss(problem: TensorProblem) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    def cross_entropy(z: Any, t: Any) -> Any:
        return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(z, axis=-1), axis=-1))

    def mlp(activation: Callable[[Any], Any]) -> Callable[..., Any]:
        def loss(w1: Any, b1: Any, w2: Any, b2: Any, x: Any, t: Any) -> Any:
            return cross_entropy(activation(x @ w1 + b1) @ w2 + b2, t)

        return loss

    def cnn(k: Any, c: Any, w: Any, b: Any, x: Any, t: Any) -> Any:
        y = jax.nn.relu(jax.lax.conv_general_dilated(x, k, (1, 1), "VALID") + c)
        h = jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return cross_entropy(h.reshape(h.shape[0], -1) @ w + b, t)

    def conv(k: Any, c: Any, w: Any, b: Any, x: Any, t: Any) -> Any:
        h = jax.nn.relu(jax.lax.conv_general_dilated(x, k, (1, 1), "VALID") + c)
        return cross_entropy(h.reshape(h.shape[0], -1) @ w + b, t)

    return {"T1": mlp(jnp.tanh), "T2": mlp(jax.nn.relu), "T3": cnn, "T4": conv}[problem.name]


def _jax(problem: TensorProblem, arrays: Arrays) -> Step:
    import jax

    jax.config.update("jax_enable_x64", True)
    f = _jax_loss(problem)
    weights = len(problem.wrt)
    args = [jax.device_put(arrays[name]) for name in (*problem.wrt, "X", "T")]
    step = jax.jit(jax.value_and_grad(f, argnums=tuple(range(weights))))
    loss = jax.jit(f)
    return Step(
        lambda: jax.block_until_ready(step(*args)),
        lambda: jax.block_until_ready(loss(*args)),
        lambda out: (float(out[0]), [np.asarray(g) for g in out[1]]),
    )


# --- PyTorch ---------------------------------------------------------------------------------------


def _torch_loss(problem: TensorProblem) -> Callable[..., Any]:
    import torch
    import torch.nn.functional as F

    def cross_entropy(z: Any, t: Any) -> Any:
        return -(t * torch.log_softmax(z, dim=-1)).sum(dim=-1).mean()

    def mlp(activation: Callable[[Any], Any]) -> Callable[..., Any]:
        def loss(w1: Any, b1: Any, w2: Any, b2: Any, x: Any, t: Any) -> Any:
            return cross_entropy(activation(x @ w1 + b1) @ w2 + b2, t)

        return loss

    def cnn(k: Any, c: Any, w: Any, b: Any, x: Any, t: Any) -> Any:
        h = F.max_pool2d(torch.relu(F.conv2d(x, k) + c), 2)
        return cross_entropy(h.reshape(h.shape[0], -1) @ w + b, t)

    def conv(k: Any, c: Any, w: Any, b: Any, x: Any, t: Any) -> Any:
        h = torch.relu(F.conv2d(x, k) + c)
        return cross_entropy(h.reshape(h.shape[0], -1) @ w + b, t)

    return {"T1": mlp(torch.tanh), "T2": mlp(torch.relu), "T3": cnn, "T4": conv}[problem.name]


def _torch(compiled: bool) -> Callable[[TensorProblem, Arrays], Step]:
    def build(problem: TensorProblem, arrays: Arrays) -> Step:
        import torch

        torch.set_num_threads(1)
        f = _torch_loss(problem)
        if compiled:
            f = torch.compile(f)
        weights = [torch.tensor(arrays[name], requires_grad=True) for name in problem.wrt]
        data = [torch.from_numpy(arrays[name]) for name in ("X", "T")]

        def step() -> tuple[Any, tuple[Any, ...]]:
            value = f(*weights, *data)
            return value, torch.autograd.grad(value, weights)

        def loss() -> Any:
            with torch.no_grad():
                return f(*weights, *data)

        return Step(step, loss, lambda out: (out[0].item(), [g.numpy() for g in out[1]]))

    return build


# --- graphc ----------------------------------------------------------------------------------------


def _graphc(backend: str) -> Callable[[TensorProblem, Arrays], Step]:
    def build(problem: TensorProblem, arrays: Arrays) -> Step:
        import graphc

        threads = {"threads": 1} if backend == "llvm" else {}
        kernel = graphc.value_and_grad(problem.text, wrt=list(problem.wrt), backend=backend, **threads)
        function = graphc.compile(problem.text, backend=backend, **threads)

        def settle() -> None:  # graphc-llvm compiles its full code in a thread of its own
            for compiled in (kernel, function):
                getattr(compiled.function, "wait", lambda: None)()

        return Step(
            lambda: kernel(**arrays),
            lambda: function(**arrays),
            lambda out: (float(np.asarray(out[0])), [np.asarray(g) for g in out[1]]),
            settle,
        )

    return build


SYSTEMS: dict[str, TensorSystem] = {
    system.name: system
    for system in (
        TensorSystem(
            "numpy-hand", "backpropagation written by hand in NumPy (bench/tensor_systems.py)", _numpy_hand
        ),
        TensorSystem(
            "graphc-numpy",
            "graphc.value_and_grad(text, wrt=..., backend='numpy')",
            _graphc("numpy"),
            graphc=True,
        ),
        TensorSystem(
            "graphc-llvm",
            "graphc.value_and_grad(text, wrt=..., backend='llvm')",
            _graphc("llvm"),
            graphc=True,
        ),
        TensorSystem("jax", "jax.jit(jax.value_and_grad(loss, argnums=weights))", _jax, ("jax", "jaxlib")),
        TensorSystem("torch", "PyTorch eager: loss, then torch.autograd.grad", _torch(False), ("torch",)),
        TensorSystem(
            "torch-compile",
            "PyTorch: torch.compile(loss), then torch.autograd.grad",
            _torch(True),
            ("torch",),
        ),
    )
}
REFERENCE = "numpy-hand"
