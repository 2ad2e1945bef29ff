"""A digits MLP (64 -> 32 tanh -> 10 softmax) written as a Python function, traced into graphc.

The model is ordinary NumPy-style Python: a loop over its layers, `@`, `np.tanh`, `np.sum` and
graphc.numpy's `log_softmax`. `graphc.trace` runs it once on symbols (shapes from `shapes=`, the
batch a named dimension `n`) and gets the same block-level graph as the program text; graphc then
compiles the loss and its gradient, checked against central differences, and plain gradient
descent trains the network on scikit-learn's 8x8 digits.

Needs scikit-learn: pip install '.[examples]'.
Run: python examples/traced_mlp.py
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphc
import graphc.numpy as gnp

SIZES = (64, 32, 10)


def logits(X, W1, b1, W2, b2):
    h = X
    layers = [(W1, b1), (W2, b2)]
    for k, (W, b) in enumerate(layers):
        h = h @ W + b
        if k < len(layers) - 1:  # Python control flow on Python values runs at trace time
            h = np.tanh(h)
    return h


def loss(X, T, W1, b1, W2, b2):
    """The mean cross-entropy of the batch: -Σ_k T_k log softmax(o)_k, averaged over examples."""
    return np.mean(-np.sum(T * gnp.log_softmax(logits(X, W1, b1, W2, b2), axis=1), axis=1))


weights = ["W1", "b1", "W2", "b2"]
shapes = {"X": ["n", 64], "T": ["n", 10], "W1": [64, 32], "b1": [32], "W2": [32, 10], "b2": [10]}
loss_graph = graphc.trace(loss, shapes=shapes)
logits_graph = graphc.trace(logits, shapes={k: v for k, v in shapes.items() if k != "T"})

# 1. The traced model is the text's graph: the same nodes, edges, ops and depth.
text = (
    "X: [n, 64]; T: [n, 10]; W1: [64, 32]; b1: [32]; W2: [32, 10]; b2: [10]\n"
    "o = tanh(X @ W1 + b1) @ W2 + b2\n"
    "mean(-sum(T * log_softmax(o, axis=1), axis=1))"
)
assert loss_graph.stats() == graphc.parse(text).stats()
print(f"traced loss: {len(loss_graph)} nodes (one per block), the same graph as its text")

value_and_grad = graphc.value_and_grad(loss_graph, wrt=weights)
predict = graphc.compile(logits_graph)

# 2. The data: 8x8 digits, pixels scaled to [0, 1], one-hot labels.
features, labels = load_digits(return_X_y=True)
train_x, test_x, train_y, test_y = train_test_split(
    features / 16.0, labels, test_size=0.25, random_state=0, stratify=labels
)
train_t = np.eye(10)[train_y]
rng = np.random.default_rng(0)
params = {
    "W1": rng.normal(0.0, 1 / np.sqrt(64), (64, 32)),
    "b1": np.zeros(32),
    "W2": rng.normal(0.0, 1 / np.sqrt(32), (32, 10)),
    "b2": np.zeros(10),
}


def accuracy(x, y):
    return float(np.mean(np.argmax(predict(X=x, **params), axis=1) == y))


# 3. The compiled gradient against central differences, at a few weights.
start, gradient = value_and_grad(X=train_x, T=train_t, **params)
compiled_loss = graphc.compile(loss_graph)
worst = 0.0
for name, index in [("W1", (10, 3)), ("b1", (5,)), ("W2", (7, 2)), ("b2", (9,))]:
    h = 1e-6
    up = {k: v.copy() for k, v in params.items()}
    down = {k: v.copy() for k, v in params.items()}
    up[name][index] += h
    down[name][index] -= h
    numeric = (compiled_loss(X=train_x, T=train_t, **up) - compiled_loss(X=train_x, T=train_t, **down)) / (
        2 * h
    )
    exact = gradient[weights.index(name)][index]
    worst = max(worst, abs(exact - numeric) / max(1e-6, abs(numeric)))
print(f"gradient check: largest relative difference from central differences {worst:.1e}")
assert worst < 1e-5

# 4. Full-batch gradient descent.
rate = 0.5
for step in range(1, 201):
    value, gradient = value_and_grad(X=train_x, T=train_t, **params)
    params = {k: params[k] - rate * g for k, g in zip(weights, gradient)}
    if step % 50 == 0:
        print(f"step {step:>3}: loss {float(value):.4f}, test accuracy {accuracy(test_x, test_y):.3f}")
final = float(value_and_grad(X=train_x, T=train_t, **params)[0])
test_accuracy = accuracy(test_x, test_y)
print(f"loss {float(start):.4f} -> {final:.4f}; test accuracy {test_accuracy:.3f}")
assert final < 0.25 * float(start)
assert test_accuracy > 0.9
