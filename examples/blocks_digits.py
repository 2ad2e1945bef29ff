"""Chapter 9 at block level — the digits MLP and a small CNN, each a few lines of graphc.

The 003 lecture's "larger blocks": a layer is one node (``W @ x``, ``conv2d``, ``maxpool2d``), not
thousands of scalar products, and the lecture's layers — a convolution of 8 filters 3×3, relu,
max pooling 2×2, a dense layer to 10 classes — are each one op whose VJP is the 004 lecture's
formula. Each program is one example's loss; graphc's kernels broadcast, so one call takes a
minibatch (the examples' extra leading axis) and returns each example's gradient, whose mean is
the step. Trained with momentum on scikit-learn's 8×8 digits.

Needs scikit-learn: pip install '.[examples]'.
Run: python examples/blocks_digits.py
"""

import time

import numpy as np
from sklearn.datasets import load_digits

import graphc

MLP = """x: [64]; t: [10]; W1: [32, 64]; b1: [32]; W2: [10, 32]; b2: [10]
-sum(t * log_softmax(W2 @ tanh(W1 @ x + b1) + b2))"""

CNN = """X: [1, 8, 8]; t: [10]; K: [8, 1, 3, 3]; c: [8]; W: [10, 72]; b: [10]
h = maxpool2d(relu(conv2d(X, K) + reshape(c, [8, 1, 1])), 2)
-sum(t * log_softmax(W @ reshape(h, [72]) + b))"""

features, labels = load_digits(return_X_y=True)
rng = np.random.default_rng(0)
order = rng.permutation(len(labels))
features, labels = features[order] / 16.0, labels[order]
TRAIN = 1400
one_hot = np.eye(10)[labels]


def scalar_mlp() -> str:
    """The same MLP unrolled into scalars, as chapter 9's iris network is written."""
    lines = [
        f"h{j} = tanh(" + " + ".join(f"w1_{j}_{i}*x{i}" for i in range(64)) + f" + b1_{j})" for j in range(32)
    ]
    lines += [
        f"o{k} = " + " + ".join(f"w2_{k}_{j}*h{j}" for j in range(32)) + f" + b2_{k}" for k in range(10)
    ]
    lines.append("lse = log(" + " + ".join(f"exp(o{k})" for k in range(10)) + ")")
    lines.append("-(" + " + ".join(f"t{k}*(o{k} - lse)" for k in range(10)) + ")")
    return "\n".join(lines)


def train(
    program: str, params: dict[str, np.ndarray], inputs: np.ndarray, steps: int, rate: float
) -> list[float]:
    """Minibatch gradient descent with momentum; returns the minibatch losses."""
    names = sorted(params)
    start = time.perf_counter()
    step_kernel = graphc.value_and_grad(program, wrt=names)
    compile_time = time.perf_counter() - start
    velocity = {name: np.zeros_like(value) for name, value in params.items()}
    data = "x" if "x:" in program else "X"
    losses, start = [], time.perf_counter()
    for _ in range(steps):
        batch = rng.choice(TRAIN, 128, replace=False)
        value, gradient = step_kernel(**{data: inputs[batch], "t": one_hot[batch]}, **params)
        losses.append(float(np.mean(value)))
        for name, g in zip(names, gradient, strict=True):
            velocity[name] = 0.9 * velocity[name] + np.mean(g, axis=0)
            params[name] -= rate * velocity[name]
    per_step = (time.perf_counter() - start) / steps
    print(
        f"  {len(graphc.parse(program))} graph nodes, compiled in {compile_time * 1e3:.0f} ms, "
        f"{per_step * 1e3:.1f} ms per step of 128 examples"
    )
    return losses


def accuracy(program: str, params: dict[str, np.ndarray], inputs: np.ndarray) -> float:
    """Held-out accuracy: the class whose one-hot label gives the smallest loss."""
    kernel = graphc.compile(program)
    data = "x" if "x:" in program else "X"
    test = slice(TRAIN, None)
    losses = np.stack([kernel(**{data: inputs[test], "t": np.eye(10)[k]}, **params) for k in range(10)])
    return float(np.mean(np.argmin(losses, axis=0) == labels[test]))


# 1. The MLP, 64 -> 32 tanh -> 10, beside its scalar unrolling.
start = time.perf_counter()
unrolled = graphc.parse(scalar_mlp())
unrolled_time = time.perf_counter() - start
block_nodes = len(graphc.parse(MLP))
print(f"MLP 64 -> 32 -> 10: {block_nodes} block nodes; unrolled into scalars {len(unrolled)} nodes")
print(f"  (parsing the scalar unrolling alone takes {unrolled_time * 1e3:.0f} ms)")
assert block_nodes < 30 and len(unrolled) > 2000
mlp = {
    "W1": rng.normal(0, 0.2, (32, 64)),
    "b1": np.zeros(32),
    "W2": rng.normal(0, 0.2, (10, 32)),
    "b2": np.zeros(10),
}
losses = train(MLP, mlp, features, steps=300, rate=0.05)
mlp_accuracy = accuracy(MLP, mlp, features)
print(f"  loss {losses[0]:.3f} -> {np.mean(losses[-20:]):.3f}; test accuracy {mlp_accuracy:.3f}")
assert np.mean(losses[-20:]) < 0.25 * losses[0] and mlp_accuracy >= 0.95

# 2. The CNN: conv 8 filters 3×3, relu, maxpool 2, dense 10.
print("CNN conv 8@3×3 -> relu -> maxpool 2 -> dense 10:")
cnn = {
    "K": rng.normal(0, 0.3, (8, 1, 3, 3)),
    "c": np.zeros(8),
    "W": rng.normal(0, 0.1, (10, 72)),
    "b": np.zeros(10),
}
images = features.reshape(-1, 1, 8, 8)
losses = train(CNN, cnn, images, steps=400, rate=0.1)
cnn_accuracy = accuracy(CNN, cnn, images)
print(f"  loss {losses[0]:.3f} -> {np.mean(losses[-20:]):.3f}; test accuracy {cnn_accuracy:.3f}")
assert np.mean(losses[-20:]) < 0.25 * losses[0] and cnn_accuracy >= 0.97

# 3. The conv layer's gradients by dp agree with forward mode (no hand-written backward anywhere).
point = {name: value.copy() for name, value in cnn.items()} | {"X": images[0], "t": one_hot[0]}
by_dp = graphc.grad(CNN, wrt=["K", "W"])(**point)
by_forward = graphc.grad(CNN, wrt=["K", "W"], method="forward")(**point)
for dp, forward in zip(by_dp, by_forward, strict=True):
    np.testing.assert_allclose(dp, forward, rtol=1e-10, atol=1e-12)
print("the trained CNN's filter and dense gradients: dp (the 004 lecture's VJPs) equals forward mode")
