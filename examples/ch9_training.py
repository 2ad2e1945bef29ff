"""Chapter 9 — training a network with graphc's compiled gradients.

A small network, 4 inputs -> 6 tanh units -> 3 softmax outputs (51 weights), is written as one
graphc program over its weights and one example's features and one-hot label. graphc compiles
the loss and its gradient (reverse mode, `dp`) into a NumPy kernel; because kernels broadcast,
one call evaluates the whole training set (weights as scalars, features as arrays), and the
batch gradient is the mean over examples. Before training the gradient is checked against
central differences; then plain gradient descent trains it on scikit-learn's iris data set.

Needs scikit-learn: pip install '.[examples]'.
Run: python examples/ch9_training.py
"""

import itertools

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import graphc

INPUTS, HIDDEN, CLASSES = 4, 6, 3

# 1. The network as text: hidden units, logits, and the cross-entropy of one example.
lines = []
for j in range(HIDDEN):
    lines.append(f"h{j} = tanh(" + " + ".join(f"w1_{j}_{i}*x{i}" for i in range(INPUTS)) + f" + b1_{j})")
for k in range(CLASSES):
    lines.append(f"o{k} = " + " + ".join(f"w2_{k}_{j}*h{j}" for j in range(HIDDEN)) + f" + b2_{k}")
network = "\n".join(lines)
# −Σ t_k log softmax(o)_k, with log softmax(o)_k = o_k − log Σ_j exp(o_j)
loss_program = (
    network
    + "\nlse = log("
    + " + ".join(f"exp(o{k})" for k in range(CLASSES))
    + ")"
    + "\n-("
    + " + ".join(f"t{k}*(o{k} - lse)" for k in range(CLASSES))
    + ")"
)
logits_program = network + "\n" + ", ".join(f"o{k}" for k in range(CLASSES))

weight_names = (
    [f"w1_{j}_{i}" for j in range(HIDDEN) for i in range(INPUTS)]
    + [f"b1_{j}" for j in range(HIDDEN)]
    + [f"w2_{k}_{j}" for k in range(CLASSES) for j in range(HIDDEN)]
    + [f"b2_{k}" for k in range(CLASSES)]
)
loss = graphc.compile(loss_program)
value_and_grad = graphc.value_and_grad(loss_program, wrt=weight_names)
logits = graphc.compile(logits_program)
print(
    f"network {INPUTS} -> {HIDDEN} tanh -> {CLASSES} softmax: {len(weight_names)} weights; "
    f"loss graph {len(graphc.parse(loss_program))} nodes, loss-and-gradient kernel "
    f"{len(value_and_grad.source.splitlines())} lines of NumPy"
)

# 2. The data: iris, standardised with the training set's statistics.
features, labels = load_iris(return_X_y=True)
train_x, test_x, train_y, test_y = train_test_split(
    features, labels, test_size=0.25, random_state=0, stratify=labels
)
mean, std = train_x.mean(axis=0), train_x.std(axis=0)
train_x, test_x = (train_x - mean) / std, (test_x - mean) / std


def data(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    one_hot = np.eye(CLASSES)[y]
    return {f"x{i}": x[:, i] for i in range(INPUTS)} | {f"t{k}": one_hot[:, k] for k in range(CLASSES)}


def mean_loss_and_gradient(
    weights: dict[str, float], batch: dict[str, np.ndarray]
) -> tuple[float, np.ndarray]:
    value, partials = value_and_grad(**weights, **batch)
    return float(np.mean(value)), np.array([np.mean(p) for p in partials])


def accuracy(weights: dict[str, float], x: np.ndarray, y: np.ndarray) -> float:
    scores = np.stack(logits(**weights, **{f"x{i}": x[:, i] for i in range(INPUTS)}))
    return float(np.mean(np.argmax(scores, axis=0) == y))


train, test = data(train_x, train_y), data(test_x, test_y)
rng = np.random.default_rng(0)
weights = {name: float(rng.normal(0.0, 0.5)) for name in weight_names}

# 3. Check the compiled gradient against central differences of the compiled loss, weight by weight.
start_loss, gradient = mean_loss_and_gradient(weights, train)
numeric = np.empty(len(weight_names))
for index, name in enumerate(weight_names):
    h = 1e-5
    up, down = dict(weights), dict(weights)
    up[name] += h
    down[name] -= h
    numeric[index] = (np.mean(loss(**up, **train)) - np.mean(loss(**down, **train))) / (2 * h)
worst = float(np.max(np.abs(gradient - numeric) / np.maximum(1e-3, np.abs(numeric))))
print(f"gradient check at the start: largest relative difference from central differences {worst:.2e}")
assert worst < 1e-6

# 4. Full-batch gradient descent.
rate = 0.5
history = [start_loss]
print(
    f"\nstep    loss     train acc  test acc\n   0  {start_loss:.4f}   "
    f"{accuracy(weights, train_x, train_y):8.3f}  {accuracy(weights, test_x, test_y):8.3f}"
)
for step in range(1, 301):
    value, gradient = mean_loss_and_gradient(weights, train)
    history.append(value)
    weights = {name: w - rate * g for (name, w), g in zip(weights.items(), gradient)}
    if step % 50 == 0:
        print(
            f"{step:>4}  {value:.4f}   {accuracy(weights, train_x, train_y):8.3f}  "
            f"{accuracy(weights, test_x, test_y):8.3f}"
        )
final_loss = mean_loss_and_gradient(weights, train)[0]
train_accuracy, test_accuracy = accuracy(weights, train_x, train_y), accuracy(weights, test_x, test_y)
print(
    f"\nloss {start_loss:.4f} -> {final_loss:.4f}; accuracy: train {train_accuracy:.3f}, "
    f"test {test_accuracy:.3f} ({len(test_y)} held-out flowers)"
)
assert final_loss < 0.25 * start_loss
assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(history[1:]))  # falls every step
assert train_accuracy >= 0.95 and test_accuracy >= 0.9
