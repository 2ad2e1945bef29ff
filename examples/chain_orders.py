"""The order of a Jacobian chain — the 003 lecture's "left-to-right is cheaper: O(Ln²) vs O((L−1)n³)".

For chains of growing length with mixed widths, ``tanh(W_L @ … tanh(W_1 @ x))``, compare the
Jacobian accumulated right to left (forward mode: a tangent per input element), left to right
(reverse mode: an adjoint per output element) and in the bracketing the matrix-chain DP chooses
(``graphc.jacobian(..., mode="optimal")``): the scalar multiplications each kernel reports per
point (``kernel.info``), and its time per call. All three give the same Jacobian.

Run: python examples/chain_orders.py
"""

import time

import numpy as np

import graphc
from graphc.chain import Link, plan

rng = np.random.default_rng(5)


def program(widths: list[int]) -> str:
    """A chain from x (widths[0]) through len(widths) - 1 dense tanh layers."""
    declared = [f"x: [{widths[0]}]"] + [
        f"W{i}: [{widths[i]}, {widths[i - 1]}]" for i in range(1, len(widths))
    ]
    body = "x"
    for i in range(1, len(widths)):
        body = f"tanh(W{i} @ {body})"
    return "; ".join(declared) + "; " + body


def per_call(kernel: graphc.Kernel, args: dict[str, np.ndarray]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        kernel(**args)
        best = min(best, time.perf_counter() - start)
    return best


print(f"{'layers':>6}  {'widths':<34} {'forward':>9} {'reverse':>9} {'optimal':>9}  times (ms) f/r/o   order")
for layers in (2, 4, 8, 12):
    widths = [int(w) for w in rng.choice([2, 4, 32, 64], size=layers + 1)]
    text = program(widths)
    args = {"x": rng.normal(size=widths[0])}
    args |= {f"W{i}": rng.normal(size=(widths[i], widths[i - 1])) / 4 for i in range(1, layers + 1)}
    kernels = {mode: graphc.jacobian(text, wrt="x", mode=mode) for mode in ("forward", "reverse", "optimal")}
    counts = {mode: k.info["multiplications"] for mode, k in kernels.items()}
    times = [per_call(k, args) * 1e3 for k in kernels.values()]
    reference = kernels["forward"](**args)
    for kernel in kernels.values():
        np.testing.assert_allclose(kernel(**args), reference, rtol=1e-10, atol=1e-13)
    assert counts["optimal"] <= min(counts["forward"], counts["reverse"])
    print(
        f"{layers:>6}  {widths!s:<34} {counts['forward']:>9,} {counts['reverse']:>9,} {counts['optimal']:>9,}"
        f"  {times[0]:.2f}/{times[1]:.2f}/{times[2]:.2f}   {kernels['optimal'].info['order']}"
    )

# The lecture's case: a scalar loss after L square n×n blocks. Left to right costs L·n², right to
# left (L−1)·n³ (plus the last row); the DP picks left to right.
n, L = 50, 6
links = [Link(0, 0, n, n, False, f"J{i + 1}") for i in range(L)] + [Link(0, 0, 1, n, False, f"J{L + 1}")]
chosen = plan(links)
right_to_left = (L - 1) * n**3 + n * n
assert chosen.multiplications == L * n * n < right_to_left
print(
    f"\na scalar after {L} blocks of {n}×{n}: the DP's order {chosen.order} costs {chosen.multiplications:,} "
    f"multiplications (L·n²); right to left would cost {right_to_left:,} ((L−1)·n³ + n²)"
)
