"""graphc's policy at kinks, singular points and overflow (graphc/policy.py), the one place it is
tested: every row (graphc's algebra, the rewrites' rows, too), for every method but numeric and
every available backend, exactly (signed zeros too) or NaN where the row says NaN; more points
beside kinks and at inner nodes' kinks; the op table's local rules at the kinks on their own. (That the manual's policy
table is this module's own is tests/test_docs.py's to check: the manual generates it.)"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.graph import Graph
from graphc.ops import OPS
from graphc.policy import POLICY, REWRITES, Row, text, uncovered

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
@pytest.mark.parametrize("row", POLICY + REWRITES, ids=[_id(row) for row in POLICY + REWRITES])
def test_every_method_and_backend_gives_the_policy(row: Row, method: str, backend: str) -> None:
    kernel = graphc.value_and_grad(row.expr, wrt=sorted(row.at), method=method, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the policy points raise no NumPy warnings either
        value, gradient = kernel(**row.at)
    got = [np.asarray(v, dtype=float) for v in (value, *gradient)]  # a tensor's partial: an array
    want = [np.asarray(v, dtype=float) for v in (row.value, *row.gradient)]
    assert [g.shape for g in got] == [w.shape for w in want], f"got {got}, the policy says {want}"
    pairs = [(g, w) for a, b in zip(got, want, strict=True) for g, w in zip(a.flat, b.flat, strict=True)]
    assert all(same(float(g), float(w)) for g, w in pairs), f"got {got}, the policy says {want}"


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


# --- more kink points: gradients beside the kinks, at inner nodes' kinks, on a batch --------------

KINK_POINTS = [
    ("relu(x)", {"x": 0.0}, (0.0,)),
    ("relu(x)", {"x": 0.7}, (1.0,)),
    ("relu(x)", {"x": 1e-300}, (1.0,)),
    ("relu(x)", {"x": -0.7}, (0.0,)),
    ("abs(x)", {"x": 0.0}, (0.0,)),
    ("abs(x)", {"x": -2.0}, (-1.0,)),
    ("abs(x)", {"x": 2.0}, (1.0,)),
    ("max(x, y)", {"x": 1.0, "y": 1.0}, (0.5, 0.5)),
    ("max(x, y)", {"x": 0.0, "y": 0.0}, (0.5, 0.5)),
    ("max(x, y)", {"x": 2.0, "y": 1.0}, (1.0, 0.0)),
    ("max(x, y)", {"x": -2.0, "y": 1.0}, (0.0, 1.0)),
    ("min(x, y)", {"x": -3.0, "y": -3.0}, (0.5, 0.5)),
    ("min(x, y)", {"x": 2.0, "y": 1.0}, (0.0, 1.0)),
    ("max(y, x)", {"x": 1.5, "y": 1.5}, (0.5, 0.5)),
    ("relu(x*x - 1)", {"x": 1.0}, (0.0,)),  # the kink of an inner node
    ("abs(x*x - 4)", {"x": -2.0}, (0.0,)),
    ("max(x*x, 2*y)", {"x": 1.0, "y": 0.5}, (1.0, 1.0)),
    ("min(x*x, 2*y)", {"x": 1.0, "y": 0.5}, (1.0, 1.0)),
    ("relu(x) + relu(-x)", {"x": 0.0}, (0.0,)),
    ("sign(x)", {"x": 0.0}, (0.0,)),
]


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "text, point, expected", KINK_POINTS, ids=[f"{t}@{list(p.values())}" for t, p, _ in KINK_POINTS]
)
def test_non_smooth_policy_is_exact(
    text: str, point: dict[str, float], expected: tuple[float, ...], method: str, backend: str
) -> None:
    """relu'(0) = 0, abs'(0) = 0, a max/min tie splits evenly: exactly, as JAX and PyTorch do."""
    got = graphc.grad(text, method=method, backend=backend)(**point)
    assert tuple(float(v) for v in got) == expected


@pytest.mark.parametrize("method", METHODS)
def test_non_smooth_policy_on_a_batch(method: str) -> None:
    xs = np.array([-1.0, -0.0, 0.0, 1e-12, 2.0])
    (relu,) = graphc.grad("relu(x)", method=method)(xs)
    assert relu.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    (absolute,) = graphc.grad("abs(x)", method=method)(xs)
    assert absolute.tolist() == [-1.0, 0.0, 0.0, 1.0, 1.0]
    dx, dy = graphc.grad("max(x, y)", method=method)(xs, 0.0)
    assert dx.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0] and dy.tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]


# --- the op table's local rules at the kinks, on their own -----------------------------------------


@pytest.mark.parametrize(
    "name, point, slot, expected",
    [
        ("relu", (0.0,), 0, 0.0),
        ("abs", (0.0,), 0, 0.0),
        ("max", (1.0, 1.0), 0, 0.5),
        ("max", (1.0, 1.0), 1, 0.5),
        ("min", (1.0, 1.0), 0, 0.5),
        ("min", (2.0, 1.0), 0, 0.0),
        ("max", (2.0, 1.0), 0, 1.0),
    ],
)
def test_non_smooth_policy(name, point, slot, expected):
    """relu'(0) = 0, abs'(0) = 0, and a max/min tie splits evenly (the JAX/PyTorch policy)."""
    g = Graph()
    variables = tuple(g.var(f"a{i}") for i in range(len(point)))
    out = g.apply(name, *variables)
    g.set_outputs([OPS[name].partials[slot](g, variables, out)])
    kernel = graphc.compile(g)
    assert float(kernel(*point)) == expected
