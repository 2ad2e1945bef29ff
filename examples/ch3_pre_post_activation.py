"""Chapter 3 — backpropagation with pre-activation and post-activation variables.

Bishop (seed 002, "General Network") computes deltas of the pre-activations a_j:
    δ_j = ∂E/∂a_j = h'(a_j) Σ_k w_kj δ_k,   ∂E/∂w_ji = δ_j z_i.
The lecture of seed 000 also uses the post-activation values z_j = h(a_j):
    Δ_j = ∂E/∂z_j = Σ_k w_kj Δ_k h'(a_k),   and δ_j = h'(a_j) Δ_j.
Here a small MLP (2 inputs -> 3 units -> 2 units -> 1 linear output, squared error) is written as
scalar formulas for each activation — sigmoid, tanh, ReLU, hard tanh — and graphc's gradients are
compared with both hand-written recursions. To read off ∂E/∂a_j and ∂E/∂z_j from graphc, each
pre-activation gets a probe variable e_j (a_j = Σ w z + e_j) and each post-activation a probe d_j
(z_j = h(a_j) + d_j), both evaluated at 0: ∂E/∂e_j = δ_j and ∂E/∂d_j = Δ_j.

Then the lecture's table of forward and backward rules per activation is checked the same way.

Run: python examples/ch3_pre_post_activation.py
"""

import numpy as np

import graphc

ACTIVATIONS = {
    # name: (graphc formula of a, NumPy forward, h'(a) written from the forward values as the table does)
    "sigmoid": ("sigmoid({})", lambda a: 1 / (1 + np.exp(-a)), lambda a, z: z * (1 - z)),
    "tanh": ("tanh({})", np.tanh, lambda a, z: 1 - z * z),
    "relu": ("relu({})", lambda a: np.maximum(a, 0.0), lambda a, z: (a > 0).astype(float)),
    "hard tanh": (
        "max(-1, min(1, {}))",
        lambda a: np.clip(a, -1, 1),
        lambda a, z: (np.abs(a) < 1).astype(float),
    ),
}
LAYERS = (2, 3, 2)  # inputs, hidden layer 1, hidden layer 2; then one linear output unit

rng = np.random.default_rng(7)
point = {"x1": 0.8, "x2": -1.3, "t": 0.25}
W1 = rng.normal(0.0, 1.2, (3, 2))  # W1[j, i]: input i -> unit j of layer 1
W2 = rng.normal(0.0, 1.2, (2, 3))  # W2[k, j]: unit j of layer 1 -> unit k of layer 2
V = rng.normal(0.0, 1.0, 2)  # V[k]: unit k of layer 2 -> output
for (j, i), w in np.ndenumerate(W1):
    point[f"w1_{j}{i}"] = w
for (k, j), w in np.ndenumerate(W2):
    point[f"w2_{k}{j}"] = w
for k, w in enumerate(V):
    point[f"v_{k}"] = w
probes = [
    f"{kind}{layer}_{u}" for layer, units in ((1, 3), (2, 2)) for kind in ("e", "d") for u in range(units)
]
point.update({name: 0.0 for name in probes})


def program(activation: str) -> str:
    """The network and its loss as graphc text, with probes e (pre-) and d (post-activation)."""
    h = ACTIVATIONS[activation][0]
    lines = []
    for j in range(3):
        lines.append(f"a1_{j} = w1_{j}0*x1 + w1_{j}1*x2 + e1_{j}")
        lines.append(f"z1_{j} = {h.format(f'a1_{j}')} + d1_{j}")
    for k in range(2):
        lines.append(f"a2_{k} = " + " + ".join(f"w2_{k}{j}*z1_{j}" for j in range(3)) + f" + e2_{k}")
        lines.append(f"z2_{k} = {h.format(f'a2_{k}')} + d2_{k}")
    lines.append("o = v_0*z2_0 + v_1*z2_1")
    lines.append("0.5*(o - t)^2")
    return "\n".join(lines)


print("network 2 -> 3 -> 2 -> 1, loss E = (o - t)²/2; graphc's gradient against the hand recursions")
for activation, (_, forward, slope) in ACTIVATIONS.items():
    # The forward pass by hand.
    x = np.array([point["x1"], point["x2"]])
    a1 = W1 @ x
    z1 = forward(a1)
    a2 = W2 @ z1
    z2 = forward(a2)
    o = V @ z2
    # Pre-activation deltas (Bishop): δ_o = ∂E/∂o (a linear output unit), then δ_j = h'(a_j) Σ_k w_kj δ_k.
    delta_o = o - point["t"]
    delta2 = slope(a2, z2) * (V * delta_o)
    delta1 = slope(a1, z1) * (W2.T @ delta2)
    # Post-activation deltas (seed 000): Δ_o = ∂E/∂o, then Δ_j = Σ_k w_kj Δ_k h'(a_k) (h' = 1 at o).
    big_delta2 = V * delta_o
    big_delta1 = W2.T @ (big_delta2 * slope(a2, z2))

    kernel = graphc.grad(program(activation))
    gradient = dict(zip(kernel.wrt, (float(g) for g in kernel(**point))))

    def graphc_vector(prefix: str, units: int, gradient: dict[str, float] = gradient) -> np.ndarray:
        return np.array([gradient[f"{prefix}_{u}"] for u in range(units)])

    checks = {
        "δ layer 2 = ∂E/∂a2": (graphc_vector("e2", 2), delta2),
        "δ layer 1 = ∂E/∂a1": (graphc_vector("e1", 3), delta1),
        "Δ layer 2 = ∂E/∂z2": (graphc_vector("d2", 2), big_delta2),
        "Δ layer 1 = ∂E/∂z1": (graphc_vector("d1", 3), big_delta1),
        "∂E/∂w2_kj = δ_k z_j": (
            np.array([[gradient[f"w2_{k}{j}"] for j in range(3)] for k in range(2)]),
            np.outer(delta2, z1),
        ),
        "∂E/∂w1_ji = δ_j x_i": (
            np.array([[gradient[f"w1_{j}{i}"] for i in range(2)] for j in range(3)]),
            np.outer(delta1, x),
        ),
        "∂E/∂v_k = δ_o z_k": (np.array([gradient["v_0"], gradient["v_1"]]), delta_o * z2),
    }
    active = int(np.count_nonzero(slope(a1, z1))) + int(np.count_nonzero(slope(a2, z2)))
    print(
        f"  {activation:>9}: E = {0.5 * (o - point['t']) ** 2:.6f}, δ1 = {np.round(delta1, 6) + 0.0}, "
        f"units passing gradient: {active} of 5"
    )
    for label, (ours, theirs) in checks.items():
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15, err_msg=f"{activation}: {label}")
    np.testing.assert_allclose(delta1, slope(a1, z1) * big_delta1, rtol=1e-12, atol=1e-15)
print("  every δ, Δ and weight gradient equals the hand-written recursion; δ_j = h'(a_j)·Δ_j")

# The table of forward and backward rules, one row per activation: backward g_i from g_{i+1}.
print("\nforward / backward rules (g = upstream gradient), checked elementwise by graphc.grad")
a = np.array([-2.5, -0.7, -0.2, 0.3, 0.9, 1.8])
g_up = rng.normal(size=a.shape)
rules = {
    "sigmoid": ("z = sigmoid(a)", "g ⊙ z ⊙ (1 - z)"),
    "tanh": ("z = tanh(a)", "g ⊙ (1 - z ⊙ z)"),
    "relu": ("z = a ⊙ I(a > 0)", "g ⊙ I(a > 0)"),
    "hard tanh": ("z = clip(a, -1, 1)", "g where |a| < 1, else 0"),
}
print(f"  {'unit':<10}{'forward':<20}backward")
for activation, (forward_text, backward_text) in rules.items():
    formula, forward, slope = ACTIVATIONS[activation]
    (local,) = graphc.grad(f"g*{formula.format('a')}", wrt="a")(a=a, g=g_up)
    np.testing.assert_allclose(local, g_up * slope(a, forward(a)), rtol=1e-13, atol=1e-15, err_msg=activation)
    print(f"  {activation:<10}{forward_text:<20}{backward_text}")

# Max: the gradient goes to the maximal input, the others get 0.
(ga, gb, gc) = graphc.grad("g*max(max(p, q), r)", wrt="p,q,r")(p=a, q=a[::-1], r=0.5, g=g_up)
winner = np.argmax(np.stack([a, a[::-1], np.full_like(a, 0.5)]), axis=0)
for index, got in enumerate((ga, gb, gc)):
    np.testing.assert_allclose(got, np.where(winner == index, g_up, 0.0), rtol=1e-15)
print(f"  {'max':<10}{'z = max(inputs)':<20}g to the maximal input, 0 to the others")

# Linear: z_{i+1} = Wᵀ z_i forward, g_i = W g_{i+1} backward (the Jacobian is Wᵀ).
W = rng.normal(size=(2, 3))
layer = ", ".join(" + ".join(f"({float(W[i, k])!r})*z{i}" for i in range(2)) for k in range(3))
jacobian = graphc.jacobian(layer, wrt="z0,z1")(z0=0.4, z1=-0.9)
np.testing.assert_allclose(jacobian, W.T, rtol=1e-15)
g_next = rng.normal(size=3)
np.testing.assert_allclose(jacobian.T @ g_next, W @ g_next, rtol=1e-14)
print(f"  {'linear':<10}{'z = Wᵀ z':<20}g = W g (graphc's Jacobian of the layer is Wᵀ)")
