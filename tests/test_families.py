"""The report families: each generates a graphc program whose path count is what it claims."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc
from graphc.families import CHAIN_LAYERS, FAMILIES, FamilyError, describe, family

GRADIENT_FAMILIES = [name for name, f in FAMILIES.items() if not f.modes]
JACOBIAN_FAMILIES = [name for name, f in FAMILIES.items() if f.modes]


@pytest.mark.parametrize("name", JACOBIAN_FAMILIES)
@pytest.mark.parametrize("size", [1, 2, 5])
def test_every_jacobian_family_is_a_chain_whose_modes_agree(name, size):
    from graphc.chain import chain_of
    from graphc.report.measure import jacobian_inputs

    graph = graphc.parse(FAMILIES[name].generate(size))
    assert len(graph.outputs) == 1 and chain_of(graph, "x") is not None
    args = jacobian_inputs(graph, seed=0, points=3)
    expected = graphc.jacobian(graph, wrt="x", mode="forward")(**args)
    for mode in FAMILIES[name].modes:
        np.testing.assert_allclose(
            graphc.jacobian(graph, wrt="x", mode=mode)(**args), expected, rtol=1e-12, atol=1e-14
        )


@pytest.mark.parametrize("name", GRADIENT_FAMILIES)
@pytest.mark.parametrize("size", [1, 2, 5])
def test_every_family_parses_and_differentiates(name, size):
    graph = graphc.parse(FAMILIES[name].generate(size))
    assert len(graph.outputs) == 1
    gradient = graphc.grad(graph)
    point = {variable: 0.7 for variable in graph.variables}
    numeric = graphc.grad(graph, method="numeric")
    assert gradient(**point) == pytest.approx(numeric(**point), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_families_are_reproducible(name):
    assert FAMILIES[name].generate(4, seed=3) == FAMILIES[name].generate(4, seed=3)


@pytest.mark.parametrize("name", ["mlp", "chain", "random"])
def test_the_seed_changes_weights_or_shape(name):
    assert FAMILIES[name].generate(6, seed=1) != FAMILIES[name].generate(6, seed=2)


@pytest.mark.parametrize("size", range(1, 21))
def test_product_has_two_to_the_size_paths(size):
    assert graphc.count_paths(FAMILIES["product"].generate(size)) == {"w": 2**size}


def test_product_at_five_layers_is_the_lectures_32_paths():
    assert FAMILIES["product"].generate(5) == "a1 = w*w; a2 = a1*a1; a3 = a2*a2; a4 = a3*a3; a5 = a4*a4; a5"
    assert graphc.count_paths(FAMILIES["product"].generate(5)) == {"w": 32}


@pytest.mark.parametrize(("width", "depth"), [(1, 3), (2, 1), (3, 4), (7, 2)])
def test_mlp_has_width_to_the_depth_paths(width, depth):
    assert graphc.count_paths(FAMILIES["mlp"].generate(depth, width)) == {"x": width**depth}


def test_mlp_3_by_100_has_a_million_paths():
    assert graphc.count_paths(FAMILIES["mlp"].generate(3, 100)) == {"x": 1_000_000}


def test_mlp_weights_are_never_zero():  # a zero weight would fold away and cut paths
    text = FAMILIES["mlp"].generate(2, 30)
    assert "0*" not in text.replace("0.", "")


def test_nest_is_one_path_deep():
    graph = graphc.parse(FAMILIES["nest"].generate(40))
    assert graphc.count_paths(graph) == {"x": 1}
    assert graph.stats()["depth"] == 40


def test_shared_size_one_is_the_lectures_function():
    f = graphc.compile(FAMILIES["shared"].generate(1))
    assert float(f(w=0.3)) == pytest.approx(math.sin(0.09) + math.cos(0.09))
    assert graphc.count_paths(FAMILIES["shared"].generate(6)) == {"w": 2**6}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_chain_has_n_inputs_and_n_to_the_layers_paths_each(n):
    paths = graphc.count_paths(FAMILIES["chain"].generate(n))
    assert paths == {f"x{i}": n**CHAIN_LAYERS for i in range(1, n + 1)}


def test_random_dags_grow_by_extension_and_use_every_node():
    small, large = (FAMILIES["random"].generate(size, seed=5) for size in (10, 30))
    assert large.split("; ")[:10] == small.split("; ")[:10]
    graph = graphc.parse(large)
    assert set(graph.variables) <= {"x", "y", "z"}
    assert all(graph.reachable())


def test_family_errors():
    with pytest.raises(FamilyError, match="unknown family 'tree'.*product"):
        family("tree")
    with pytest.raises(FamilyError, match="size of at least 1"):
        FAMILIES["product"].generate(0)
    with pytest.raises(FamilyError, match="width of at least 1"):
        FAMILIES["mlp"].generate(2, 0)


def test_describe_names_every_family():
    text = describe()
    for name in FAMILIES:
        assert f"{name}: " in text
