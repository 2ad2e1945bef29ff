"""Optimal Jacobian chains: the matrix-chain DP's bracketing, its counted multiplications against
forward and reverse mode, and its Jacobian against theirs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc
from graphc.chain import Link, plan

RNG = np.random.default_rng(11)
ISSUE = "A: [8, 2]; B: [2, 8]; C: [8, 8]; x: [8]; A @ (B @ (C @ x))"
MODES = ("forward", "reverse", "optimal")


def test_the_issues_chain_costs_less_than_forward_and_reverse() -> None:
    args = {"A": RNG.normal(size=(8, 2)), "B": RNG.normal(size=(2, 8)), "C": RNG.normal(size=(8, 8))}
    args["x"] = RNG.normal(size=8)
    kernels = {mode: graphc.jacobian(ISSUE, wrt="x", mode=mode) for mode in ("forward", "reverse", "optimal")}
    best = kernels["optimal"]
    assert best.mode == "optimal" and best.info["order"] == "J3 @ (J2 @ J1)"
    assert best.info["multiplications"] == 2 * 8 * 8 + 8 * 2 * 8  # B @ C, then A @ (BC)
    for mode in ("forward", "reverse"):
        assert best.info["multiplications"] < kernels[mode].info["multiplications"], mode
        np.testing.assert_allclose(best(**args), kernels[mode](**args), rtol=1e-12, atol=1e-14)
    assert best.info["forward"] == best.info["reverse"] == 8 * (64 + 16 + 16)  # n tangents/adjoints


def test_the_issues_chain_counts_are_pinned_per_mode() -> None:
    """Forward: 8 tangents through C, B, A (64 + 16 + 16 each); reverse: 8 adjoints back through
    Aᵀ, Bᵀ, Cᵀ, the same 96 each, so 768 both; optimal B @ C then A @ (BC), 256. Reverse once
    counted 1536: dp also builds the adjoints of A, B and C (an outer product per row, 96 more),
    which the kernel never computes, as the wrt is x alone."""
    counts = {m: graphc.jacobian(ISSUE, wrt="x", mode=m).info["multiplications"] for m in MODES}
    assert counts == {"forward": 768, "reverse": 768, "optimal": 256}


def test_the_weights_adjoints_are_counted_when_asked_for() -> None:
    """The count follows what the kernel computes: asking for A's Jacobian too adds its 8 outer
    products of [8] by [2] (and the 8 rows of adjoints through Aᵀ are shared)."""
    alone = graphc.jacobian(ISSUE, wrt="x", mode="reverse").info["multiplications"]
    both = graphc.jacobian(ISSUE, wrt=["x", "A"], mode="reverse").info["multiplications"]
    assert both == alone + 8 * (8 * 2)


@pytest.mark.parametrize("seed", range(4))
def test_forward_and_reverse_counts_are_the_models_on_matrix_chains(seed: int) -> None:
    """On a chain of matrix blocks the counted multiplications of forward and reverse mode are
    exactly n_0·Σ c_i and n_L·Σ c_i, the counts the optimal plan compares itself with."""
    rng = np.random.default_rng(100 + seed)
    widths = [int(w) for w in rng.integers(1, 7, size=int(rng.integers(3, 6)))]
    declared = "; ".join(f"W{i}: [{widths[i + 1]}, {widths[i]}]" for i in range(len(widths) - 1))
    body = "x"
    for i in range(len(widths) - 1):
        body = f"W{i} @ ({body})"
    text = f"{declared}; x: [{widths[0]}]; {body}"
    best = graphc.jacobian(text, wrt="x", mode="optimal")
    assert best.mode == "optimal"
    for mode in ("forward", "reverse"):
        assert graphc.jacobian(text, wrt="x", mode=mode).info["multiplications"] == best.info[mode], text
    assert best.info["multiplications"] <= min(best.info["forward"], best.info["reverse"])


def brute_force(dims: list[int]) -> int:
    """The cheapest bracketing of a product of matrices dims[i] x dims[i+1], by trying them all
    (Catalan many: a small chain only)."""
    best: dict[tuple[int, int], int] = {}
    n = len(dims) - 1
    for span, i in itertools.chain.from_iterable(((s, i) for i in range(n - s)) for s in range(n)):
        j = i + span
        best[(i, j)] = (
            0
            if i == j
            else min(
                best[(i, k)] + best[(k + 1, j)] + dims[i] * dims[k + 1] * dims[j + 1] for k in range(i, j)
            )
        )
    return best[(0, n - 1)]


@pytest.mark.parametrize("seed", range(6))
def test_the_dp_finds_the_cheapest_bracketing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dims = [int(d) for d in rng.integers(1, 30, size=int(rng.integers(3, 8)))]
    # links from the input side: link i maps dims[-(i+1)] to dims[-(i+2)]
    links = [Link(0, 0, dims[-(i + 2)], dims[-(i + 1)], False, f"J{i + 1}") for i in range(len(dims) - 1)]
    assert plan(links).multiplications == brute_force(dims)


def test_the_lectures_left_to_right_claim() -> None:
    """003: for a scalar at the end of L square blocks, left to right is O(L n^2), right to left
    O((L-1) n^3): the DP picks left to right."""
    n, L = 10, 5
    links = [Link(0, 0, n, n, False, f"J{i + 1}") for i in range(L)] + [Link(0, 0, 1, n, False, "J6")]
    chosen = plan(links)
    assert chosen.multiplications == L * n * n
    assert chosen.order == "((((J6 @ J5) @ J4) @ J3) @ J2) @ J1"


def test_elementwise_links_are_diagonal_factors() -> None:
    text = "W1: [6, 4]; W2: [3, 6]; x: [4]; tanh(W2 @ sin(W1 @ x))"
    args = {"W1": RNG.normal(size=(6, 4)), "W2": RNG.normal(size=(3, 6)), "x": RNG.normal(size=4)}
    best = graphc.jacobian(text, wrt="x", mode="optimal")
    assert best.info["order"].count("J") == 4
    expected = graphc.jacobian(text, wrt="x", mode="forward")(**args)
    np.testing.assert_allclose(best(**args), expected, rtol=1e-12, atol=1e-14)
    assert best.info["multiplications"] < min(best.info["forward"], best.info["reverse"])


def test_optimal_is_auto_where_the_graph_is_not_a_chain() -> None:
    text = "x: [3]; W: [3, 3]; W @ x + x"
    kernel = graphc.jacobian(text, wrt="x", mode="optimal")
    # auto's choice: one stacked forward pass against three reverse ones
    assert kernel.mode == graphc.jacobian(text, wrt="x").mode == "forward"
    assert kernel.info["multiplications"] > 0
    assert graphc.jacobian("x*y, x + y, x - y", mode="optimal").mode == "forward"
