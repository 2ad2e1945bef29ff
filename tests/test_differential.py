"""Differential testing at scale (graphc/differential.py): random graphs of up to a few thousand
nodes, drawn from the whole op table, through every method × every available backend, all agreeing
with dp on numpy (and central differences within tolerance on graphs without kinks). A bounded
budget here; bench/differential.py runs the same check for as long as asked."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, note, settings
from hypothesis import strategies as st

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.differential import compare, points, random_program

AVAILABLE = [backend for backend in BACKENDS if backend not in UNAVAILABLE]
FAST = settings(max_examples=12, deadline=None, database=None)


def _points(rng: random.Random) -> dict[str, np.ndarray]:
    """Uniform points from a generator seeded by hypothesis: hypothesis's own Random shrinks towards
    0 and 1e-271, where kinks tie at float resolution (that is the policy tests' business)."""
    return points(random.Random(rng.getrandbits(32)), 8)


def _check(text: str, rng: random.Random) -> None:
    note(text if len(text) < 4000 else text[:4000] + " …")
    outcome = compare(text, _points(rng))
    assert outcome.kernels >= 2 * len(AVAILABLE)  # dp and forward at least, on every backend
    assert outcome.disagreements == [], outcome.disagreements[:5]


@FAST
@given(st.randoms(use_true_random=False), st.integers(1, 40))
def test_small_random_graphs_every_method_and_backend_agree(rng: random.Random, size: int) -> None:
    """Small enough for paths and symbolic to take part."""
    _check(random_program(rng, size), rng)


@settings(max_examples=4, deadline=None, database=None)
@given(st.randoms(use_true_random=False), st.integers(200, 2500))
def test_large_random_graphs_every_method_and_backend_agree(rng: random.Random, size: int) -> None:
    """Hundreds to thousands of op nodes (several thousand graph nodes): dp, forward and numeric."""
    _check(random_program(rng, size), rng)


@FAST
@given(st.randoms(use_true_random=False), st.integers(1, 30))
def test_smooth_random_graphs_match_central_differences(rng: random.Random, size: int) -> None:
    """No kinks: every method, numeric included, on the smooth part of the op table."""
    smooth = ["add", "sub", "mul", "sin", "cos", "tanh", "sigmoid", "exp", "log", "sqrt", "atan", "softplus"]
    text = random_program(rng, size, smooth)
    outcome = compare(text, _points(rng))
    assert outcome.disagreements == [], outcome.disagreements[:5]
    assert outcome.kernels >= 3 * len(AVAILABLE)  # numeric took part


def test_a_disagreement_is_reported() -> None:
    """The check can fail: a wrong reference point makes every kernel disagree."""
    at = {name: np.array([0.5]) for name in ("x", "y", "z")}
    outcome = compare("x*y + z", at, methods=["dp"], rel=-1.0)  # a negative tolerance accepts nothing
    assert len(outcome.disagreements) == 4 * len(AVAILABLE)


def test_a_graph_of_thousands_of_nodes() -> None:
    text = random_program(random.Random(7), 2500)
    assert len(graphc.parse(text)) > 3000
    outcome = compare(text, points(random.Random(7), 8))
    assert outcome.disagreements == [] and outcome.values > 0
