"""Chapter 5 — numeric differentiation: the checker, and why it is not the method.

Bishop (seed 002) and seed 003: ∂E/∂w ≈ (E(w + ε) − E(w − ε)) / 2ε has error O(ε²) (the one-sided
difference O(ε)); it needs two forward passes of cost O(W) for each of the W weights, O(W²) in all,
where backpropagation costs O(W) — but it makes a good check of a backpropagation implementation.

Run: python examples/ch5_numeric_check.py
"""

import time

import numpy as np

import graphc

# 1. Truncation error: one-sided O(ε), central O(ε²), until rounding (O(eps/ε)) takes over.
f, x0 = "sin(x)*exp(x)", 0.7
exact = float(graphc.grad(f)(x0)[0])
assert abs(exact - (np.cos(x0) + np.sin(x0)) * np.exp(x0)) < 1e-15
value = graphc.compile(f)
print(f"f = {f} at x = {x0}: f' = {exact!r}")
print("      ε     one-sided error   central error")
errors = {}
for k in range(1, 8):
    eps = 10.0**-k
    one_sided = (value(x0 + eps) - value(x0)) / eps
    central = (value(x0 + eps) - value(x0 - eps)) / (2 * eps)
    errors[k] = (abs(one_sided - exact), abs(central - exact))
    print(f"  1e-{k}   {errors[k][0]:15.3e}   {errors[k][1]:13.3e}")
# Each tenfold smaller ε: the one-sided error shrinks ~10×, the central ~100× (while truncation dominates).
assert 8 < errors[2][0] / errors[3][0] < 12
assert 80 < errors[1][1] / errors[2][1] < 120
assert errors[3][1] < errors[3][0] / 100

# 2. A network with W weights: 4 inputs -> H tanh units -> 1 output, squared error on one example.
rng = np.random.default_rng(3)
features, target = [float(v) for v in rng.normal(size=4)], 0.5


def network(hidden: int) -> tuple[str, dict[str, float]]:
    lines, weights = [], {}
    for j in range(hidden):
        terms = " + ".join(f"w{j}_{i}*({features[i]!r})" for i in range(4))
        lines.append(f"h{j} = tanh({terms} + b{j})")
        weights.update({f"w{j}_{i}": float(rng.normal(0, 0.5)) for i in range(4)})
        weights[f"b{j}"] = float(rng.normal(0, 0.1))
        weights[f"v{j}"] = float(rng.normal(0, 0.5))
    lines.append("o = " + " + ".join(f"v{j}*h{j}" for j in range(hidden)) + " + c")
    weights["c"] = 0.0
    lines.append(f"0.5*(o - {target})^2")
    return "\n".join(lines), weights


print(
    "\n  W weights  forward nodes  dp gradient nodes  numeric gradient nodes  dp time     2W forward passes"
)
sizes = []
for hidden in (4, 16, 64):
    program, weights = network(hidden)
    W = len(weights)
    primal = len(graphc.parse(program))
    dp_nodes = len(graphc.differentiate(program, method="dp"))
    numeric_nodes = len(graphc.differentiate(program, method="numeric"))
    sizes.append((W, primal, dp_nodes, numeric_nodes))

    loss = graphc.compile(program)
    backprop = graphc.grad(program)
    start = time.perf_counter()
    gradient = np.array([float(g) for g in backprop(**weights)])
    dp_time = time.perf_counter() - start
    # Central differences by hand: two forward passes per weight.
    start = time.perf_counter()
    numeric = []
    for name in backprop.wrt:
        h = np.cbrt(np.finfo(float).eps) * max(1.0, abs(weights[name]))
        up, down = dict(weights), dict(weights)
        up[name] += h
        down[name] -= h
        numeric.append((float(loss(**up)) - float(loss(**down))) / (up[name] - down[name]))
    numeric_time = time.perf_counter() - start
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)
    print(
        f"  {W:>9}  {primal:>13}  {dp_nodes:>17}  {numeric_nodes:>22}  {dp_time * 1e3:7.2f} ms  "
        f"{numeric_time * 1e3:9.2f} ms"
    )
print("  (every backprop gradient agrees with the central differences to 1e-6)")

# Backprop evaluates its gradient graph once: it grows like W. Central differences by hand run
# 2W full forward passes of O(W) nodes each: O(W²) node evaluations. graphc's own numeric method
# replays only the nodes that depend on each weight, which helps, but it still grows faster than W.
(w1, p1, d1, n1), (w3, p3, d3, n3) = sizes[0], sizes[-1]
growth = w3 / w1
by_hand_1, by_hand_3 = 2 * w1 * p1, 2 * w3 * p3
print(
    f"  W grew {growth:.1f}×: backprop's node evaluations {d3 / d1:.1f}×, 2W full forward passes "
    f"{by_hand_3 / by_hand_1:.0f}× ({by_hand_1:,} -> {by_hand_3:,}), graphc's numeric graph {n3 / n1:.1f}×"
)
assert d3 / d1 < 1.5 * growth  # linear
assert by_hand_3 / by_hand_1 > 0.5 * growth**2  # quadratic
assert n3 / n1 > 2 * growth  # superlinear
assert all(d < 4 * p for _, p, d, _ in sizes)
