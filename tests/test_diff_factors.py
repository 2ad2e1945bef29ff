"""Power-of-two factors in ``dp`` and ``forward`` (graphc.diff.common's terms): they save operations
and change no value.

``∂(a*a)/∂a`` has two edges, each contributing ``adj*a``: summed as nodes that is ``t + t`` at every
layer of a chain of squarings, summed as terms it is ``(t, 2k)``, with one multiply by ``2**n`` at
the end. Multiplying by a power of two is exact, so each partial is bit for bit the plain sum's.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from test_diff import assert_close, operations, product_layers

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.diff.common import LocalPartials, Terms
from graphc.graph import Graph
from graphc.trace import evaluate

AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]

# Layer 1 of a chain of squarings a_{i+1} = a_i*a_i: the lectures' (w, w), the benchmark's B3x
# (w, 1.5*w), a negated operand, and two different operands.
FIRST_LAYERS = {"w,w": "w*w", "w,1.5w": "w*(1.5*w)", "w,-w": "w*(-w)", "sin,w+1": "sin(w)*(w + 1)"}


@pytest.mark.parametrize("method", ["dp", "forward"])
@pytest.mark.parametrize("layers", [20, 40, 100])
@pytest.mark.parametrize("first", list(FIRST_LAYERS.values()), ids=list(FIRST_LAYERS))
def test_a_chain_of_squarings_costs_at_most_twice_the_function(first: str, layers: int, method: str) -> None:
    """One product per layer and a multiply by a power of two at the end, not ``t = adj*a; t + t``
    per layer (B3x at 20 layers: 44 operations for a function of 21, where the plain sums took 62;
    100 layers pass the factor's bound, 2^64, and multiply it in once on the way)."""
    graph = graphc.parse(product_layers(layers, first))
    derivative = graphc.differentiate(graph, method=method)
    assert operations(derivative) <= 2 * operations(graph) + 4, (
        f"{operations(derivative)} operations for a function of {operations(graph)}"
    )


@pytest.mark.parametrize("first", list(FIRST_LAYERS.values()), ids=list(FIRST_LAYERS))
def test_squaring_chain_gradients_agree_with_forward_and_central_differences(first: str) -> None:
    text = product_layers(6, first)  # f = first**32
    dp, forward, numeric = (graphc.grad(text, method=method) for method in ("dp", "forward", "numeric"))
    for w in (0.55, 0.7, 0.85, -0.8):
        (by_dp,), (by_forward,), (by_numeric,) = dp(w), forward(w), numeric(w)
        assert_close(float(by_dp), float(by_forward), "dp", f"∂f/∂w at {w} against forward")
        assert_close(float(by_numeric), float(by_dp), "numeric", f"∂f/∂w at {w} against dp")


# --- no value changes: bit for bit the plain sums ------------------------------------------------


def plain_partials(text: str, point: dict[str, float]) -> tuple[list[float], list[float]]:
    """The gradient at ``point`` by a reverse pass and by forward passes in plain float64, each
    edge's product summed as it comes, with the op table's local partials: what dp and forward
    computed before they carried factors."""
    graph = graphc.parse(text)
    work = graph.copy()
    local = LocalPartials(work)
    edges = [[local(node, slot) for slot in range(len(graph.args(node)))] for node in range(len(graph))]
    values = evaluate(work, point)
    (output,) = graph.outputs
    adjoint = {output: 1.0}
    for node in range(output, -1, -1):
        seed = adjoint.get(node)
        for arg, z in zip(graph.args(node), edges[node], strict=True):
            if seed is not None and z is not None:
                term = seed * values[z]
                adjoint[arg] = adjoint[arg] + term if arg in adjoint else term
    reverse, forward = [], []
    for name in graph.variables:
        source = graph.variable(name)
        reverse.append(adjoint.get(source, 0.0))
        tangent = {source: 1.0}
        for node in range(source + 1, len(graph)):
            pairs = zip(graph.args(node), edges[node], strict=True)
            terms = [values[z] * tangent[arg] for arg, z in pairs if arg in tangent and z is not None]
            if terms:
                tangent[node] = _summed(terms)
        forward.append(tangent.get(output, 0.0))
    return reverse, forward


def _summed(terms: list[float]) -> float:
    """Left to right, as the methods accumulate (``math.fsum`` would round once)."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


RATIONAL_FORMS = ("{a}*{a}", "{a}*{a}", "{a}*{b}", "{a} + {b}", "{a} - {b}", "-{a}", "{a}/(1 + {b}*{b})")


def rational_program(seed: int, size: int = 24) -> str:
    """A seeded random program of ``+ - * /`` and negation over x, y, z, squaring often: every op
    correctly rounded, so a scalar evaluation and the compiled kernel agree bit for bit."""
    rng = random.Random(f"factors:{seed}")
    names, lines = ["x", "y", "z"], []
    for i in range(size):
        a, b = (names[max(0, len(names) - 1 - int(rng.expovariate(0.7)))] for _ in range(2))
        form = rng.choice(RATIONAL_FORMS)
        lines.append(f"t{i} = {form.format(a=a, b=b)}")
        names.append(f"t{i}")
    return "\n".join([*lines, " + ".join(names[-3:])])


ROOT = math.sqrt(2.0 / 3.0)
BIT_CASES: list[tuple[str, dict[str, float]]] = [
    *[(product_layers(20), {"w": w}) for w in (1.0 - 3e-7, 1.0 + 8e-7, -1.0)],
    *[(product_layers(20, "w*(1.5*w)"), {"w": ROOT * s}) for s in (1.0 - 4e-7, 1.0 + 9e-7)],
    *[(product_layers(40, first), {"w": 0.9999999999}) for first in ("w*w", "w*(-w)")],
    *[(rational_program(seed), {"x": 0.31, "y": -0.72, "z": 0.55}) for seed in range(12)],
    ("u = x*y - x; v = u*u; w = v*v - u*u; -(w*w) + x*w", {"x": 0.7, "y": 1.3}),
    ("x*x*x + (x - y)*(x - y) - 3*(x*y)*(x*y)", {"x": 1.1, "y": -0.4}),
]


@pytest.mark.parametrize("case", range(len(BIT_CASES)))
def test_dp_and_forward_equal_the_plain_sums_bit_for_bit(case: int) -> None:
    text, values = BIT_CASES[case]
    point = {name: values[name] for name in graphc.parse(text).variables}
    reverse, forward = plain_partials(text, point)
    assert all(math.isfinite(v) for v in reverse + forward)  # nothing over- or underflows here
    by_dp = [float(v) for v in graphc.grad(text, method="dp")(**point)]
    by_forward = [float(v) for v in graphc.grad(text, method="forward")(**point)]
    assert by_dp == reverse  # == equal: bit for bit but for the sign of a zero
    assert by_forward == forward


# --- B3x: finite and exact where the function is finite ------------------------------------------


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("method", ["dp", "forward"])
def test_b3x_gradient_is_finite_and_exact_wherever_the_function_is_finite(method: str, backend: str) -> None:
    """B3x: f = (1.5 w²)^(2^19) at the benchmark's points (w within 1e-6 of sqrt(2/3)), where f is
    finite; its derivative 2^20 f/w must be too (a constant 1.5^(2^19) folded anywhere overflows)."""
    text = product_layers(20, "w*(1.5*w)")
    w = ROOT * (1.0 + np.linspace(-1e-6, 1e-6, 201))
    value, (partial,) = graphc.value_and_grad(text, method=method, backend=backend)(w)
    assert np.isfinite(value).all() and value.min() < 0.5 and value.max() > 2.0
    assert np.isfinite(partial).all()
    np.testing.assert_allclose(partial, 2.0**20 * value / w, rtol=1e-12)


# --- the terms themselves --------------------------------------------------------------------------


def test_terms_sum_a_node_with_itself_as_a_factor_and_opposite_factors_as_a_subtraction() -> None:
    g = Graph()
    x, y = g.var("x"), g.var("y")
    t = g.mul(x, y)
    terms = Terms(g)
    assert terms.accumulated((t, 1.0), (t, 1.0)) == (t, 2.0)
    assert terms.accumulated((t, 2.0), (t, 1.0)) == (g.mul(t, g.const(3.0)), 1.0)  # odd part 3
    assert terms.accumulated((t, 2.0**64), (t, 2.0**64)) == (g.mul(t, g.const(2.0**65)), 1.0)  # bound
    assert terms.accumulated((x, 1.0), (g.neg(y), 1.0)) == (g.sub(x, y), 1.0)
    assert terms.accumulated((x, -1.0), (y, 1.0)) == (g.sub(y, x), 1.0)  # the positive factor
    assert terms.accumulated((x, 4.0), (y, 1.0)) == (g.add(y, g.mul(x, g.const(4.0))), 1.0)
    assert terms.scaled((t, 4.0), g.const(-1.0)) == (t, -4.0)  # a partial of -1 is a factor
    assert terms.scaled((g.const(-1.0), 1.0), g.neg(x)) == (x, 1.0)  # -1 * -x is x
    assert terms.spread((t, -4.0)) == (g.mul(t, g.const(4.0)), -1.0)  # the sign rides on
    assert terms.materialised((g.sub(x, y), -1.0)) == g.sub(y, x)
    assert terms.materialised((g.mul(x, g.const(3.0)), 4.0)) == g.mul(x, g.const(12.0))
