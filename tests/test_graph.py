"""The hash-consed graph: sharing, slots as edges, the few rewrites, stats, transforms."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

import graphc
from graphc import Graph


def test_equal_subexpressions_are_one_node():
    g = graphc.parse("sin(x*y) + sin(y*x)")
    assert g.stats()["ops"]["sin"] == 1
    assert g.stats()["ops"]["mul"] == 1


def test_x_times_x_is_a_product_with_two_parallel_edges():
    g = graphc.parse("x*x")
    (product,) = g.outputs
    assert g.op(product) == "mul"
    x = g.variable("x")
    assert g.args(product) == (x, x)
    assert sorted(g.nx.get_edge_data(x, product)) == [0, 1]
    assert g.nx.number_of_edges() == 2


def test_the_seed_product_graph_keeps_its_paths():
    g = graphc.parse("a1 = w*w; a2 = a1*a1; a3 = a2*a2; a4 = a3*a3; a5 = a4*a4; a5")
    assert g.stats() == {"nodes": 6, "edges": 10, "ops": {"mul": 5, "var": 1}, "depth": 5}
    paths = sum(1 for _ in nx.all_simple_edge_paths(g.nx, g.variable("w"), g.outputs[0]))
    assert paths == 32


def test_nx_mirrors_args_with_one_keyed_edge_per_slot():
    g = graphc.parse("u = x - y; atan2(u, x) / u + u**x")
    assert isinstance(g.nx, nx.MultiDiGraph)
    assert sorted(g.nx.nodes) == list(range(len(g)))
    for node in g.nx.nodes:
        args = g.args(node)
        assert g.nx.nodes[node]["args"] == args
        assert g.nx.in_degree(node) == len(args)
        for slot, arg in enumerate(args):
            assert g.nx.has_edge(arg, node, key=slot)
            assert arg < node, "ids are a topological order"


def test_nx_stays_in_step_with_later_building():
    g = graphc.parse("x + y")
    assert g.nx.number_of_nodes() == 3
    g2 = g.copy()
    g2.set_outputs([g2.apply("sin", g2.outputs[0])])
    assert g2.nx.number_of_nodes() == 4
    assert g.nx.number_of_nodes() == 3, "building on a copy leaves the original unchanged"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x + 0", "x"),
        ("0 + x", "x"),
        ("x - 0", "x"),
        ("x*1", "x"),
        ("1*x", "x"),
        ("x*0", "0"),
        ("0*sin(x)", "0"),
        ("--x", "x"),
        ("-(-x)", "x"),
        ("x**1", "x"),
        ("x**0", "1"),
        ("2*3 + x", "x + 6"),
        ("sin(0) + x", "x"),
        ("pi", "pi"),
    ],
)
def test_build_time_rewrites(text, expected):
    assert graphc.parse(text).to_text() == expected


@pytest.mark.parametrize("text", ["x*x", "x - x", "x/x", "x + x", "x**2", "1*x*x", "x/1"])
def test_no_other_rewrites(text):
    g = graphc.parse(text)
    assert g.stats()["nodes"] > 1, f"{text} must not be simplified beyond the listed rewrites"


def test_commutative_operands_have_canonical_order():
    assert graphc.parse("x*y - y*x").stats()["ops"]["mul"] == 1
    g = graphc.parse("max(y, x) - max(x, y)")
    assert g.stats()["ops"]["max"] == 1


def test_constants_are_shared_by_value_and_nan_is_one_node():
    g = Graph()
    assert g.const(2) == g.const(2.0) == g.const(np.float64(2.0)) == g.const(2.0)
    assert g.const(float("nan")) == g.const(float("nan")) == g.const(-np.nan)
    assert g.const(0.0) != g.const(-0.0)
    assert g.const(-0.0) == g.const(-0.0) != g.const(0.0)  # asked again, in either order
    assert g.const_value(g.const(-0.0)) == 0.0 and math.copysign(1.0, g.const_value(g.const(-0.0))) == -1.0
    assert len({g.const(v) for v in (0.5, -0.5, 1.0, 1.0, 0.5)}) == 3


def test_a_copy_shares_constants_but_not_what_is_built_on_it():
    g = Graph()
    two = g.const(2.0)
    h = g.copy()
    assert h.const(2.0) == two
    three = h.const(3.0)
    assert len(g) == 1 and g.const(3.0) == len(g) - 1 and h.const(3.0) == three
    assert g.const_value(g.const(3.0)) == 3.0 and len(g) == 2


def test_stats_counts_nodes_edges_ops_and_depth():
    stats = graphc.parse("sin(x*y) + exp(x)").stats()
    assert stats == {
        "nodes": 6,
        "edges": 6,
        "ops": {"add": 1, "exp": 1, "mul": 1, "sin": 1, "var": 2},
        "depth": 3,
    }


def test_building_twice_gives_the_same_graph():
    text = "u = x*y; v = sin(u); v + u**2, cos(v)*x"
    a, b = graphc.parse(text), graphc.parse(text)
    assert (a._op, a._args, a._data, a.outputs) == (b._op, b._args, b._data, b.outputs)


def test_unused_bindings_are_pruned_but_variables_are_kept():
    g = graphc.parse("u = sin(x)*cos(y); x*0 + z")
    assert g.variables == ["x", "y", "z"]
    assert "sin" not in g.stats()["ops"]


def test_unknown_variable_lookup_is_a_graphc_error():
    with pytest.raises(graphc.UnknownVariableError, match="unknown variable 'q'.*x, y"):
        graphc.parse("x + y").variable("q")


def test_apply_checks_arity():
    g = Graph()
    with pytest.raises(graphc.GraphcError, match="sin takes 1"):
        g.apply("sin", g.var("x"), g.var("y"))


def test_deep_graphs_walk_without_recursion():
    g = graphc.parse("sin(" * 20_000 + "x" + ")" * 20_000)
    assert g.stats()["depth"] == 20_000
    assert all(g.reachable())
    assert len(g.pruned()) == 20_001
    assert g.to_text().count("sin(") == 20_000


def test_parsing_and_building_a_kernel_pause_the_collector_and_resume_it(monkeypatch):
    import gc
    import importlib

    from graphc.graph import collector_paused

    parse_module = importlib.import_module("graphc.parse")  # (graphc.parse is the function)
    seen = []
    parse_whole = parse_module._Parser.parse

    def parse_probed(parser):
        seen.append(gc.isenabled())
        return parse_whole(parser)

    monkeypatch.setattr(parse_module._Parser, "parse", parse_probed)

    def probe(graph, order):
        seen.append(gc.isenabled())
        return graphc.compile(graph)

    assert gc.isenabled()
    graphc.api._kernel("x*y", probe, None, None)
    with collector_paused():
        seen.append(gc.isenabled())
        with collector_paused():  # nested: only the outermost resumes it
            pass
        seen.append(gc.isenabled())
    assert seen == [False, False, False, False] and gc.isenabled()
    gc.disable()
    try:
        graphc.parse("sin(x)")
        assert not gc.isenabled()  # a collector the caller disabled stays disabled
    finally:
        gc.enable()
    with pytest.raises(graphc.ParseError):
        graphc.parse("sin(")
    assert gc.isenabled()  # resumed after an error too


def _digest(graph):
    import hashlib
    import json

    return len(graph), hashlib.sha256(json.dumps(graph.to_data(), sort_keys=True).encode()).hexdigest()[:16]


def test_the_builder_and_the_sparse_passes_build_the_graphs_they_built_before():
    """Node for node (ids, ops, operands, constants) what the builder and the passes made at
    4950269, before they were made faster: the Bratu residuals, a random DAG of B5's kind and its
    dp gradient, the compressed Jacobians both ways and a star-coloured Hessian. A change that
    means to build other graphs updates these digests."""
    import os
    import sys

    from graphc.diff import dp
    from graphc.sparse import sparse_hessian, sparse_jacobian

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
    from problems import random_dag

    h2 = (1.0 / 61) ** 2
    bratu = graphc.parse(
        ", ".join(
            f"{f'x{i - 1} - ' if i else '-'}2*x{i}{f' + x{i + 1}' if i < 59 else ''} + {h2!r}*exp(x{i})"
            for i in range(60)
        )
    )
    dag = graphc.parse(random_dag(1000))
    wrt = [f"x{i}" for i in range(60)]
    chain = (
        "; ".join(f"u{i} = x{i}*x{i + 1}" for i in range(30))
        + "\n"
        + " + ".join(f"sin(u{i})" for i in range(30))
    )
    built = {
        "bratu": _digest(bratu),
        "dag": _digest(dag),
        "dag dp": _digest(dp.differentiate(dag)),
        "reverse": _digest(sparse_jacobian(bratu, wrt, mode="reverse").kernel.graph),
        "forward": _digest(sparse_jacobian(bratu, wrt, mode="forward").kernel.graph),
        "hessian": _digest(sparse_hessian(graphc.parse(chain), [f"x{i}" for i in range(31)]).kernel.graph),
    }
    assert built == {
        "bratu": (421, "596c9f2d24ab71a8"),
        "dag": (1160, "a92ff72cc38c1ef7"),
        "dag dp": (3113, "e92fe29a90986281"),
        "reverse": (483, "b7e4bc8dd70891d7"),
        "forward": (483, "f3a7b28ac5acd547"),
        "hessian": (554, "53bf42ad82620383"),
    }
