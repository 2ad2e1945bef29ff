"""jacobian(mode="auto") picks forward or reverse by an estimate of cost (graphc.diff.cost): nodes
times passes, plus the elements they carry, with a stacked tensor input one forward pass."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.diff import cost
from graphc.parse import parse

RNG = np.random.default_rng(2024)


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("x: [40]; softmax(x)", "forward"),  # one stacked pass against 40 reverse passes
        ("x: [3]; W: [2, 3]; tanh(W @ x)", "forward"),  # one against 2: element counts said reverse
        ("x: [1000]; sum(sin(x) * x)", "reverse"),  # one pass each: forward carries 1000x the elements
        ("x: [1000]; W: [2, 1000]; W @ sin(x)", "reverse"),  # 2 reverse passes, far fewer elements
        ("x: [1, 1, 6, 6]; sum(maxpool2d(x, 2), axis=[0, 1])", "forward"),  # pooling stacks: 1 pass against 9
        ("x*y, x + y, x - y", "forward"),  # scalar: inputs against outputs, as before
        ("x*y + z, x - y", "reverse"),
    ],
)
def test_auto_picks_the_mode_of_lower_estimated_cost(text: str, mode: str) -> None:
    graph = parse(text)
    wrt = "x" if "x" in graph.variables and graph.tensor else None
    kernel = graphc.jacobian(text, wrt=wrt)
    forward, reverse = cost.costs(graph, kernel.wrt)
    assert kernel.info["costs"] == {"forward": forward, "reverse": reverse}
    assert kernel.mode == mode and (forward < reverse) == (mode == "forward")
    values = {name: RNG.normal(size=graph.shape(graph.variable(name))) for name in graph.variables}
    other = graphc.jacobian(text, wrt=wrt, mode="reverse" if mode == "forward" else "forward")
    for a, b in zip(np.atleast_1d(kernel(**values)), np.atleast_1d(other(**values)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_stacked_input_is_one_pass_and_an_unstacked_one_a_pass_per_element() -> None:
    stacked = parse("x: [4, 4]; sum(x * x, axis=0)")
    masked = parse("x: [4, 4]; a: [2, 4]; f: [2, 4]; sum(masked_matmul(a, f, x), axis=0)")  # no stacked rule
    (f1, _), (f2, _) = cost.costs(stacked, ["x"]), cost.costs(masked, ["x"])
    assert f1 < 2 * cost.OVERHEAD * len(stacked)  # one pass
    assert f2 >= 16 * cost.OVERHEAD  # sixteen passes


def test_scalar_inputs_are_not_walked_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scalar input is one forward pass whatever the graph: the estimate walks the graph once for
    all of them (a walk per input made a 2,000-input Jacobian's estimate quadratic)."""
    n = 50
    graph = parse(
        "; ".join(f"r{i} = x{i} * x{(i + 1) % n}" for i in range(n))
        + "; "
        + ", ".join(f"r{i}" for i in range(n))
    )
    walks = []
    real = cost.depends_on
    monkeypatch.setattr(cost, "depends_on", lambda g, sources: walks.append(sources) or real(g, sources))
    forward, reverse = cost.costs(graph, [f"x{i}" for i in range(n)])
    assert len(walks) == 1 and forward == reverse
