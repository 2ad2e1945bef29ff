"""Display formulas write the negation of a product or quotient without brackets: -x/z, not -(x/z)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.printing import formula, render


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("-(x/z)", "-x/z"),
        ("-(x*y)", "-x*y"),
        ("-(x*y/z)", "-x*y/z"),
        ("-(x + y)", "-(x + y)"),
        ("-(x**2)", "-x**2"),
    ],
)
def test_display_drops_brackets_only_where_the_value_is_equal(text, shown):
    graph = graphc.parse(text)
    assert formula(graph, graph.outputs[0], simplify_below=0) == shown
    point = {"x": 1.7, "y": -0.3, "z": 2.9}
    names = graph.variables
    original = graphc.compile(graph)(**{n: point[n] for n in names})
    reparsed = graphc.compile(shown)(**{n: point[n] for n in graphc.parse(shown).variables})
    assert np.float64(original) == np.float64(reparsed)  # negation is exact: equal bit for bit


def test_exact_text_keeps_the_brackets_so_it_parses_back_to_the_same_graph():
    graph = graphc.parse("-(x/z)")
    bindings, outputs = render(graph)
    assert (bindings, outputs) == ([], ["-(x/z)"])
    assert graphc.parse(graph.to_text()).to_text() == graph.to_text()
