"""Chapter 2 — the path-aggregation lemma, its exponential cost, and the dynamic-programming collapse.

The lecture (seed 000) states S(w, o) = ∂o/∂w = Σ over paths P of Π over edges (i, j) in P of the
local derivative z(i, j), shows a graph of product nodes with 32 paths from w to o, warns of "a
million paths for a 3-layer network with 100 units per layer", and collapses the sum with the
update S(i, o) = Σ_{j ∈ A(i)} S(j, o) · z(i, j), starting from S(o, o) = 1.

Here every one of those statements is computed on graphc's graph: the paths are enumerated edge
by edge (one networkx edge per operand slot), the products evaluated, the dynamic program run by
hand, and both compared with graphc's own `paths` and `dp` methods.

Run: python examples/ch2_path_aggregation.py
"""

import math

import networkx as nx
import numpy as np

import graphc
from graphc.diff.common import LocalPartials
from graphc.trace import evaluate

W = 1.01

# 1. The product-node graph: each node multiplies its two inputs, which are the same node.
program = "a1 = w*w; a2 = a1*a1; a3 = a2*a2; a4 = a3*a3; o = a4*a4; o"
graph = graphc.parse(program)
w, o = graph.variable("w"), graph.outputs[0]
print(f"o = w^32 built from 5 product nodes: {graph.stats()['nodes']} nodes, {graph.stats()['edges']} edges")

# The local derivative z(i, j) of every edge, from the op table, as a node of a working copy.
work = graph.copy()
local = LocalPartials(work)
edge_partial = {(j, slot): local(j, slot) for j in range(len(graph)) for slot in range(len(graph.args(j)))}
value = evaluate(work, {"w": W})  # every node's value, the local derivatives included


def z(i: int, j: int, slot: int) -> float:
    node = edge_partial[(j, slot)]
    assert graph.args(j)[slot] == i
    return value[node]


# 2. The lemma, literally: enumerate the paths (edge paths: parallel edges are different paths).
paths = list(nx.all_simple_edge_paths(graph.nx, w, o))
products = [math.prod(z(i, j, slot) for i, j, slot in path) for path in paths]
print(f"paths from w to o: {len(paths)}; each path's product of local derivatives:")
print(f"  min {min(products):.12f}, max {max(products):.12f}, w^31 = {W**31:.12f}")
assert len(paths) == 32 == graphc.count_paths(program)["w"]
assert all(math.isclose(p, W**31, rel_tol=1e-14) for p in products)
lemma = sum(products)
print(f"  S(w, o) = sum of the 32 products = {lemma:.12f} = 32·w^31 = {32 * W**31:.12f}")
assert math.isclose(lemma, 32 * W**31, rel_tol=1e-14)

# 3. The dynamic program: S(o, o) = 1, then S(i, o) = Σ_j S(j, o)·z(i, j) in reverse topological order.
S = {o: 1.0}
multiplications = 0
for j in range(o, -1, -1):  # node ids are a topological order
    for slot, i in enumerate(graph.args(j)):
        if j in S and (j, slot) in edge_partial and edge_partial[(j, slot)] is not None:
            S[i] = S.get(i, 0.0) + S[j] * z(i, j, slot)
            multiplications += 1
print(
    f"dynamic programming: S(w, o) = {S[w]:.12f} with {multiplications} multiplications, "
    f"against {sum(len(p) for p in paths)} for the 32 paths"
)
assert math.isclose(S[w], lemma, rel_tol=1e-14) and multiplications == 10

# graphc's two methods are exactly these two algorithms.
by_paths = graphc.differentiate(program, method="paths")
for method in ("paths", "dp"):
    (derivative,) = graphc.grad(program, method=method)(W)
    assert math.isclose(derivative, S[w], rel_tol=1e-14), method
print(f"graphc: paths summed {by_paths.info['terms']} products, dp one backward pass; both = 32·w^31")

# 4. Growth with depth: L product layers have 2^L paths; dp stays linear.
print("\nproduct layers   paths          dp gradient nodes   (∂o/∂w at w = 1 is 2^L)")
for layers in (5, 10, 20, 40, 60):
    chain = "; ".join(["a1 = w*w", *(f"a{k + 1} = a{k}*a{k}" for k in range(1, layers)), f"a{layers}"])
    count = graphc.count_paths(chain)["w"]
    gradient = graphc.differentiate(chain, method="dp")
    (at_one,) = graphc.grad(chain)(1.0)
    print(f"{layers:>14}   {count:<14.4g} {len(gradient):>17}")
    assert count == 2**layers and at_one == 2.0**layers
try:
    graphc.grad(chain, method="paths")
except graphc.TooManyPathsError as err:
    print(f"paths method at 60 layers: {err}")
else:
    raise AssertionError("2^60 paths must be refused")

# 5. "A million paths": a dense network x -> 3 hidden tanh layers of 100 units -> o has 100^3 paths.
rng = np.random.default_rng(0)


def dense(units: int) -> str:
    """x -> 3 layers of tanh units, all-to-all, with weights of magnitude 0.1..1 -> the sum of layer 3."""

    def weight() -> str:
        return f"{rng.choice([-1, 1]) * rng.uniform(0.1, 1.0):.3f}"

    lines = [f"h1_{j} = tanh({weight()}*x)" for j in range(units)]
    for layer in (2, 3):
        for k in range(units):
            terms = " + ".join(f"{weight()}*h{layer - 1}_{j}" for j in range(units))
            lines.append(f"h{layer}_{k} = tanh({terms})")
    lines.append(" + ".join(f"h3_{k}" for k in range(units)))
    return "\n".join(lines)


big = graphc.parse(dense(100))
count = graphc.count_paths(big)["x"]
gradient = graphc.differentiate(big, method="dp")
print(f"\n3 layers x 100 units: {count:,} paths from x to o; the primal graph has {len(big):,} nodes,")
print(f"  dp's gradient graph {len(gradient):,} (linear in the edges, however many paths)")
assert count == 100**3
assert len(gradient) < 3 * len(big)
try:
    graphc.differentiate(big, method="paths", max_paths=100_000)
except graphc.TooManyPathsError as err:
    print(f"  paths method: {err}")
else:
    raise AssertionError("a million paths must be refused above max_paths")

# The same network with 10 units (1,000 paths) is small enough to enumerate: both methods agree
# with central differences.
small = dense(10)
assert graphc.count_paths(small)["x"] == 1000
(by_paths_value,) = graphc.grad(small, method="paths")(0.3)
(by_dp_value,) = graphc.grad(small)(0.3)
(by_numeric,) = graphc.grad(small, method="numeric")(0.3)
print(
    f"3 layers x 10 units (1,000 paths): paths {by_paths_value:.12f}, dp {by_dp_value:.12f}, "
    f"central differences {by_numeric:.12f}"
)
assert math.isclose(by_paths_value, by_dp_value, rel_tol=1e-12)
assert math.isclose(by_numeric, by_dp_value, rel_tol=1e-8)
