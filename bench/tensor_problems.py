"""The tensor benchmark problems T1..T3: a network's loss and its gradient wrt every weight, per step.

Each problem is a graphc program in the tensor issue's language (the contract its held-out tests
use), the names to differentiate, and seeded arrays: the data and the weights at which every
system computes the loss and the gradient. The arrays are made once by the runner and handed to
every system, so all of them compute the same step.

>>> PROBLEMS["T1"].wrt
('W1', 'b1', 'W2', 'b2')
>>> arrays = PROBLEMS["T2"].arrays(batch=4)
>>> arrays["X"].shape, arrays["T"].sum(axis=1).tolist()
((4, 784), [1.0, 1.0, 1.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_LOSS = "-mean(sum(T * log_softmax(z, axis=-1), axis=-1))"


@dataclass(frozen=True)
class TensorProblem:
    name: str
    title: str
    text: str  # the graphc program: declarations, bindings, the loss
    wrt: tuple[str, ...]  # the weights, in the order every system returns their gradients
    shapes: dict[str, tuple[int, ...]]  # each weight's shape
    inputs: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]  # batch, rng -> X, T
    batch: int  # the batch the benchmark times
    graphc: bool = True  # False: graphc's language cannot state it yet (peers only)

    def arrays(self, batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """X, T and the weights (fan-in scaled normal draws, biases small and non-zero), float64."""
        rng = np.random.default_rng(seed)
        x, t = self.inputs(batch or self.batch, rng)
        arrays = {"X": np.ascontiguousarray(x, dtype=np.float64), "T": t}
        for name, shape in self.shapes.items():
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            scale = 0.1 if len(shape) == 1 or shape[1:] == (1, 1) else fan_in**-0.5
            arrays[name] = rng.normal(0.0, scale, shape)
        return arrays


def one_hot(labels: np.ndarray, classes: int = 10) -> np.ndarray:
    return np.eye(classes)[labels]


def _digits(batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits (bundled with scikit-learn, no download), pixels scaled to [0, 1];
    the first ``batch`` images, repeated if more are asked for."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = np.arange(batch) % len(digits.target)
    return digits.data[rows] / 16.0, one_hot(digits.target[rows])


def _digit_images(batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, t = _digits(batch, rng)
    return x.reshape(-1, 1, 8, 8), t


def _random(batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(batch, 784)), one_hot(rng.integers(0, 10, batch))


def _mlp(inputs: int, hidden: int, activation: str) -> str:
    return (
        f"X: [n, {inputs}]; T: [n, 10]; W1: [{inputs}, {hidden}]; b1: [{hidden}]; W2: [{hidden}, 10]; b2: [10]\n"
        f"h = {activation}(X @ W1 + b1); z = h @ W2 + b2\n"
        f"{_LOSS}"
    )


PROBLEMS: dict[str, TensorProblem] = {
    problem.name: problem
    for problem in (
        TensorProblem(
            "T1",
            "digits MLP: [1797, 64] -> tanh [32] -> softmax cross-entropy over 10, mean over the batch",
            _mlp(64, 32, "tanh"),
            ("W1", "b1", "W2", "b2"),
            {"W1": (64, 32), "b1": (32,), "W2": (32, 10), "b2": (10,)},
            _digits,
            batch=1797,
        ),
        TensorProblem(
            "T2",
            "MLP: [256, 784] random inputs -> relu [256] -> softmax cross-entropy over 10",
            _mlp(784, 256, "relu"),
            ("W1", "b1", "W2", "b2"),
            {"W1": (784, 256), "b1": (256,), "W2": (256, 10), "b2": (10,)},
            _random,
            batch=256,
        ),
        TensorProblem(
            "T3",
            "digits CNN: [1797, 1, 8, 8] -> conv 8x3x3 -> relu -> maxpool 2 -> dense 10, softmax cross-entropy",
            # issue 27's conv2d (PyTorch's semantics) and maxpool2d; c is the per-filter bias
            "X: [n, 1, 8, 8]; T: [n, 10]; K: [8, 1, 3, 3]; c: [8, 1, 1]; W: [72, 10]; b: [10]\n"
            "h = maxpool2d(relu(conv2d(X, K) + c), 2); z = reshape(h, [n, 72]) @ W + b\n"
            f"{_LOSS}",
            ("K", "c", "W", "b"),
            {"K": (8, 1, 3, 3), "c": (8, 1, 1), "W": (72, 10), "b": (10,)},
            _digit_images,
            batch=1797,
        ),
        TensorProblem(
            "T4",
            "digits conv layer: [1797, 1, 8, 8] -> conv 8x3x3 -> relu -> dense 10 (no pooling), softmax cross-entropy",
            "X: [n, 1, 8, 8]; T: [n, 10]; K: [8, 1, 3, 3]; c: [8, 1, 1]; W: [288, 10]; b: [10]\n"
            "h = relu(conv2d(X, K) + c); z = reshape(h, [n, 288]) @ W + b\n"
            f"{_LOSS}",
            ("K", "c", "W", "b"),
            {"K": (8, 1, 3, 3), "c": (8, 1, 1), "W": (288, 10), "b": (10,)},
            _digit_images,
            batch=1797,
        ),
    )
}
