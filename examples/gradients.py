"""Five ways to differentiate one graph, and what each costs.

Run: python examples/gradients.py
"""

import math

import numpy as np

import graphc

# 1. One formula, every method: each is a graph-to-graph transformation, all agree.
formula = "x1*x2 + exp(x1*x2) - sin(x2)"
point = {"x1": 1.5, "x2": 0.5}
exact = (0.5 + 0.5 * math.exp(0.75), 1.5 + 1.5 * math.exp(0.75) - math.cos(0.5))
for method in graphc.METHODS:
    gradient = graphc.grad(formula, method=method)(**point)
    print(f"{method:>9}: ∂f/∂x1 = {float(gradient[0]):.15f}   ∂f/∂x2 = {float(gradient[1]):.15f}")
    tolerance = 1e-8 if method == "numeric" else 1e-13
    assert np.allclose(gradient, exact, rtol=tolerance, atol=0), method

# 2. The path-aggregation lemma: a1 = w*w; a2 = a1*a1; ... has 2^L paths from w to the output.
for layers in (5, 10, 40):
    program = "; ".join(["a1 = w*w", *(f"a{i + 1} = a{i}*a{i}" for i in range(1, layers)), f"a{layers}"])
    print(f"{layers} product layers: {graphc.count_paths(program)['w']:,} paths")
program5 = "a1 = w*w; a2 = a1*a1; a3 = a2*a2; a4 = a3*a3; a4*a4"
assert graphc.count_paths(program5) == {"w": 32}
by_paths = graphc.differentiate(program5, method="paths")
by_dp = graphc.differentiate(program5, method="dp")
print(f"paths summed {by_paths.info['terms']} products; dp made {by_dp.info['passes']} backward pass")
assert np.isclose(graphc.grad(program5, method="paths")(w=1.01)[0], 32 * 1.01**31, rtol=1e-13)

# ... and with 40 layers the path method refuses before it starts, while dp is instant.
program40 = "; ".join(["a1 = w*w", *(f"a{i + 1} = a{i}*a{i}" for i in range(1, 40)), "a40"])
try:
    graphc.grad(program40, method="paths")
except graphc.TooManyPathsError as err:
    print("paths:", err)
else:
    raise AssertionError("2^40 paths must be refused")
print("dp:    ∂f/∂w at w=1 is", float(graphc.grad(program40)(w=1.0)[0]), "(= 2^40)")

# 3. Jacobians: forward mode builds a column per input, reverse a row per output.
jacobian = graphc.jacobian("x*y, x + y, x - y")
print("jacobian mode chosen:", jacobian.mode)
print(jacobian(2.0, 3.0))
assert jacobian.mode == "forward" and jacobian(2.0, 3.0).tolist() == [[3, 2], [1, 1], [1, -1]]

# 4. Methods compose: a Hessian differentiates the gradient graph.
hessian = graphc.hessian("(1-x)^2 + 100*(y-x^2)^2")(1.0, 1.0)
print("Rosenbrock Hessian at (1, 1):", hessian.tolist())
assert hessian.tolist() == [[802.0, -400.0], [-400.0, 200.0]]

# 5. Non-smooth points follow one policy in every method but numeric.
for method in ("dp", "forward", "paths", "symbolic"):
    kink = graphc.grad("relu(x) + abs(y) + max(x, y)", method=method)(0.0, 0.0)
    assert [float(v) for v in kink] == [0.5, 0.5], (method, kink)
print("relu'(0) = 0, abs'(0) = 0, a max tie splits evenly: every method agrees")
