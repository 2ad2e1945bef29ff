"""graphc's policy at kinks, singular points and overflow (graphc/policy.py), point by point:
every row, for every method but numeric and every available backend, exactly (signed zeros too),
or NaN where the row says NaN. (That the manual's policy table is this module's own is
tests/test_docs.py's to check: the manual generates it.)"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.policy import POLICY, Row, text, uncovered

METHODS = [method for method in graphc.METHODS if method != "numeric"]
AVAILABLE = [backend for backend in BACKENDS if backend not in UNAVAILABLE]


def same(got: float, want: float) -> bool:
    """Equal as IEEE values and in sign (0.0 is not -0.0), or both NaN."""
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


def _id(row: Row) -> str:
    return f"{row.expr}@" + ",".join(f"{k}={v!r}" for k, v in row.at.items())


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("row", POLICY, ids=[_id(row) for row in POLICY])
def test_every_method_and_backend_gives_the_policy(row: Row, method: str, backend: str) -> None:
    kernel = graphc.value_and_grad(row.expr, wrt=sorted(row.at), method=method, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the policy points raise no NumPy warnings either
        value, gradient = kernel(**row.at)
    got = (float(value), *(float(g) for g in gradient))
    want = (row.value, *row.gradient)
    assert len(got) == len(want)
    assert all(same(g, w) for g, w in zip(got, want, strict=True)), f"got {got}, the policy says {want}"


@pytest.mark.parametrize("backend", AVAILABLE)
def test_the_policy_holds_on_a_batch(backend: str) -> None:
    """The same numbers when the points come as one array (the backends' vector paths)."""
    for method in METHODS:
        dx, dy = graphc.grad("max(x, y)", method=method, backend=backend)(np.array([-1.0, 0.0, 2.0]), 0.0)
        assert dx.tolist() == [0.0, 0.5, 1.0] and dy.tolist() == [1.0, 0.5, 0.0]
        (ds,) = graphc.grad("sqrt(x)", method=method, backend=backend)(np.array([-0.0, 0.0, 4.0]))
        assert ds.tolist() == [-math.inf, math.inf, 0.25]


def test_every_op_has_a_policy_or_is_smooth() -> None:
    assert uncovered() == []


def test_spellings_of_max_with_zero_agree_and_relu_differs() -> None:
    """max(x, 0), max(0, x) and (x + abs(x))/2 give 1/2 at 0; relu gives 0 (JAX/PyTorch)."""
    for method in METHODS:
        at_zero = [
            float(graphc.grad(e, method=method)(x=0.0)[0])
            for e in ("max(x, 0)", "max(0, x)", "(x + abs(x))/2")
        ]
        assert at_zero == [0.5, 0.5, 0.5]
        assert float(graphc.grad("relu(x)", method=method)(x=0.0)[0]) == 0.0


def test_text_shows_signs_and_constants() -> None:
    assert [text(v) for v in (-0.0, 0.0, math.nan, -math.inf, math.pi / 2, 0.5, 1e16)] == [
        "-0.0",
        "0",
        "nan",
        "-inf",
        "π/2",
        "0.5",
        "1e+16",
    ]
