"""Chapter 4 — forward mode and reverse mode: evaluation traces, Jacobian columns and rows, costs.

Bishop (seed 002) writes f(x1, x2) = x1·x2 + exp(x1·x2) − sin(x2) as primal variables v1..v7,
propagates tangents v̇ = ∂v/∂x_i forward and adjoints v̄ = ∂f/∂v backward, and notes that one
forward pass gives a column of the Jacobian, one reverse pass a row. `graphc trace` prints those
traces; here they are checked against Bishop's equations. Two remarks on the text itself:
Bishop groups f as exp(v3) + (v3 − sin v2), graphc parses it as written, (v3 + exp v3) − sin v2,
so one intermediate row differs while every shared row agrees; and the book's adjoint line
"v̄2 = v̄2·v1 + v̄4·cos(v2)" is a typo for v̄2 = v̄3·v1 + v̄4·cos(v2) (checked below).

Run: python examples/ch4_forward_reverse.py
"""

import math

import numpy as np

import graphc
from graphc.cli import main as graphc_cli
from graphc.trace import trace

F = "x1*x2 + exp(x1*x2) - sin(x2)"
x1, x2 = 1.5, 0.5
point = {"x1": x1, "x2": x2}

# Bishop's primal trace, in his order.
v1, v2 = x1, x2
v3 = v1 * v2
v4 = math.sin(v2)
v5 = math.exp(v3)
v6 = v3 - v4
v7 = v5 + v6
bishop_values = {"x1": v1, "x2": v2, "v1 * v2": v3, "sin(v2)": v4, "exp(v3)": v5}


# Bishop's tangent trace, seeded with v̇1 = 1, v̇2 = 0 (∂/∂x1) or v̇1 = 0, v̇2 = 1 (∂/∂x2).
def tangents(dv1: float, dv2: float) -> dict[str, float]:
    dv3 = v1 * dv2 + dv1 * v2
    dv4 = dv2 * math.cos(v2)
    dv5 = dv3 * math.exp(v3)
    dv6 = dv3 - dv4
    return {"x1": dv1, "x2": dv2, "v1 * v2": dv3, "sin(v2)": dv4, "exp(v3)": dv5, "f": dv5 + dv6}


# Bishop's adjoint trace (with the typo corrected).
a7 = 1.0
a6 = a7
a5 = a7
a4 = -a6
a3 = a5 * v5 + a6
a2 = a3 * v1 + a4 * math.cos(v2)
a1 = a3 * v2
bishop_adjoints = {"x1": a1, "x2": a2, "v1 * v2": a3, "sin(v2)": a4, "exp(v3)": a5}

print(f"f(x1, x2) = {F} at x1 = {x1}, x2 = {x2}\n")
for wrt, seed in (("x1", (1.0, 0.0)), ("x2", (0.0, 1.0))):
    result = trace(graphc.parse(F), point, "forward", wrt)
    expected = tangents(*seed)
    for row in result.rows:
        if row.definition in expected:
            assert math.isclose(row.value, bishop_values[row.definition], rel_tol=1e-15), row
            assert math.isclose(row.derivative, expected[row.definition], rel_tol=1e-14, abs_tol=1e-15), row
    assert math.isclose(result.rows[-1].value, v7, rel_tol=1e-15)
    assert math.isclose(result.gradient[wrt], expected["f"], rel_tol=1e-14)
status = graphc_cli(["trace", F, "--at", "x1=1.5,x2=0.5", "--mode", "forward", "--wrt", "x1"])
assert status == 0
print("  (the tangent of every row Bishop also has equals his equations, for x1 and for x2)\n")

result = trace(graphc.parse(F), point, "reverse")
for row in result.rows:
    if row.definition in bishop_adjoints:
        assert math.isclose(row.derivative, bishop_adjoints[row.definition], rel_tol=1e-14), row
assert math.isclose(result.gradient["x1"], a1, rel_tol=1e-14)
assert math.isclose(result.gradient["x2"], a2, rel_tol=1e-14)
assert graphc_cli(["trace", F, "--at", "x1=1.5,x2=0.5", "--mode", "reverse"]) == 0
print("  (every adjoint equals Bishop's reverse-mode equations: one pass gives both partials)")
# The book's typo, taken literally, would make v̄2 depend on itself; the corrected line is what holds.
assert not math.isclose(a2, a2 * v1 + a4 * math.cos(v2))

# 2. Jacobians: a forward pass per input gives a column, a reverse pass per output a row.
print("\nF(x, y) = (x²y, 5x + sin y) (seed 000): J = [[2xy, x²], [5, cos y]]")
x, y = 1.2, -0.7
hand = np.array([[2 * x * y, x**2], [5.0, math.cos(y)]])
for mode in ("forward", "reverse"):
    J = graphc.jacobian("x^2*y, 5*x + sin(y)", mode=mode)(x, y)
    np.testing.assert_allclose(J, hand, rtol=1e-15)
    print(f"  {mode:>7} mode: {J.round(6).tolist()}")
G = "x1*x2*x3, sin(x1) + x3^2"  # 3 inputs, 2 outputs
forward, reverse = graphc.differentiate(G, method="forward"), graphc.differentiate(G, method="dp")
print(
    f"  for {G!r} (3 inputs, 2 outputs): forward mode makes {forward.info['passes']} passes "
    f"(a column each), reverse mode {reverse.info['passes']} (a row each); "
    f"jacobian(mode='auto') picks {graphc.jacobian(G).mode}"
)
assert (forward.info["passes"], reverse.info["passes"], graphc.jacobian(G).mode) == (3, 2, "reverse")
np.testing.assert_allclose(
    graphc.jacobian(G, mode="forward")(0.3, 0.5, 0.7), graphc.jacobian(G, mode="reverse")(0.3, 0.5, 0.7)
)

# 3. Cost for n inputs and m outputs: forward work grows with n, reverse work with m.
print("\n  n inputs  m outputs  forward: passes, new nodes   reverse: passes, new nodes")
costs = {}
for n, m in ((24, 1), (1, 24), (8, 8)):
    # s mixes every input; a chain of 10 steps uses s at each step; m outputs read the chain's end.
    rng = np.random.default_rng(n * 100 + m)
    inputs = [f"x{i}" for i in range(n)]
    lines = ["s = " + " + ".join(f"{rng.uniform(0.5, 1.5):.3f}*{v}" for v in inputs), "u0 = s"]
    lines += [f"u{d + 1} = sin(u{d})*s" for d in range(10)]
    lines.append(", ".join(f"tanh({rng.uniform(0.5, 1.5):.3f}*u10 + {k})" for k in range(m)))
    program = "\n".join(lines)
    primal = len(graphc.parse(program))
    fwd = graphc.differentiate(program, method="forward")
    rev = graphc.differentiate(program, method="dp")
    costs[(n, m)] = (len(fwd) - primal, len(rev) - primal)
    print(
        f"  {n:>8}  {m:>9}  {fwd.info['passes']:>15}, {len(fwd) - primal:>9}   "
        f"{rev.info['passes']:>15}, {len(rev) - primal:>9}"
    )
    np.testing.assert_allclose(
        graphc.jacobian(program, mode="forward")(*np.linspace(0.1, 1.0, n)),
        graphc.jacobian(program, mode="reverse")(*np.linspace(0.1, 1.0, n)),
        rtol=1e-13,
    )
assert costs[(24, 1)][1] < costs[(24, 1)][0] / 2  # one output: reverse is far cheaper
assert costs[(1, 24)][0] < costs[(1, 24)][1] / 2  # one input: forward is far cheaper

# Seed 003: multiplying a chain of L Jacobians (n×n) into a gradient row: left to right is L
# vector-matrix products, O(L n²); right to left multiplies matrices first, O((L−1) n³ + n²).
L, n = 6, 40
rng = np.random.default_rng(1)
row, chain = rng.normal(size=(1, n)), [rng.normal(size=(n, n)) / n for _ in range(L)]
left = row
for J in chain:
    left = left @ J
right = chain[-1]
for J in reversed(chain[:-1]):
    right = J @ right
np.testing.assert_allclose(left, row @ right, rtol=1e-10)
print(
    f"\n  a chain of {L} Jacobians {n}×{n}: left to right {L * n * n:,} multiply-adds, "
    f"right to left {(L - 1) * n**3 + n * n:,} (the same row)"
)
