"""The lectures' numbers, reproduced and measured: the same families `graphc report` runs.

Run: python examples/report_seeds.py
"""

import math

import graphc
from graphc.families import CHAIN_LAYERS, FAMILIES
from graphc.report import Report, run
from graphc.report.measure import dag_size, gradient_graph

# 1. "All 32 paths": five layers of product nodes, a_i = a_{i-1} * a_{i-1}.
product5 = FAMILIES["product"].generate(5)
print(product5)
assert graphc.count_paths(product5) == {"w": 32}
by_paths = graphc.differentiate(product5, method="paths")
by_dp = graphc.differentiate(product5, method="dp")
assert by_paths.info["terms"] == 32  # the path method sums one product per path
w = 0.9
expected = 32 * w**31  # d/dw of w^32
for derivative in (by_paths, by_dp):
    assert math.isclose(float(graphc.compile(gradient_graph(derivative))(w=w)), expected, rel_tol=1e-12)
print(
    f"32 paths; paths' gradient graph: {dag_size(gradient_graph(by_paths))[0]} nodes, "
    f"dp's: {dag_size(gradient_graph(by_dp))[0]} nodes"
)

# The same, measured over growing depth: the path count doubles per layer, dp's graph grows by 3 nodes.
report = run(
    Report(methods=["paths", "dp"], backends=["numpy"], family=FAMILIES["product"], sizes=list(range(1, 13)))
)
assert [row.paths for row in report.rows if row.method == "dp"] == [2**size for size in range(1, 13)]
fits = report.fits()
print("\n".join(report.fit_lines()))
assert fits["path count"]["paths"].words("layer") == "×2.0 per layer (exponential)"
assert fits["paths"]["nodes"].kind == "exponential" and 1.8 < fits["paths"]["nodes"].rate < 2.2
assert fits["dp"]["nodes"].words("layer") == "exponent 1.0 (linear)"

# 2. "A million paths for a 3-layered network with 100 units in each layer": counted, not enumerated.
mlp = graphc.parse(FAMILIES["mlp"].generate(3, 100))
assert graphc.count_paths(mlp) == {"x": 1_000_000}
try:
    graphc.differentiate(mlp, method="paths", max_paths=100_000)
except graphc.TooManyPathsError as err:
    assert err.paths == 1_000_000
    print(f"mlp 3×100: {err.paths:,} paths; the path method refuses: {err}")
else:
    raise AssertionError("the path method should refuse a million paths above max_paths=100,000")

# 3. sin(w²) + cos(w²): dp does not differentiate w² twice. Its gradient multiplies by the local
# derivative 2·w once, (cos(w²) - sin(w²))·2w; the path and forward methods once per path.
shared = FAMILIES["shared"].generate(1)
for method, uses in (("dp", 1), ("paths", 2), ("forward", 2)):
    gradient = gradient_graph(graphc.differentiate(shared, method=method))
    keep = gradient.reachable()
    two_w = [
        n
        for n in range(len(gradient))
        if keep[n]
        and gradient.op(n) == "mul"
        and gradient.variable("w") in gradient.args(n)
        and gradient.const_value(gradient.args(n)[1]) == 2.0
    ]
    users = sum(1 for n in range(len(gradient)) if keep[n] for a in gradient.args(n) if a in two_w)
    print(f"{method:>8}: multiplies by 2·w {users} time(s)")
    assert len(two_w) == 1 and users == uses, (method, users)

# 4. Forward vs reverse on a Jacobian chain: L layers of n×n maps. Forward accumulation carries a
# tangent per input through every layer, O(L·n³); reverse carries one adjoint back, O(L·n²).
sizes = [2, 4, 8, 16]
forward_nodes, reverse_nodes = [], []
for n in sizes:
    chain = graphc.parse(FAMILIES["chain"].generate(n))
    forward_nodes.append(dag_size(gradient_graph(graphc.differentiate(chain, method="forward")))[0])
    reverse_nodes.append(dag_size(gradient_graph(graphc.differentiate(chain, method="dp")))[0])
    print(
        f"chain of {CHAIN_LAYERS} {n}×{n} layers: forward {forward_nodes[-1]:,} nodes, reverse {reverse_nodes[-1]:,}"
    )
forward_growth = math.log2(forward_nodes[-1] / forward_nodes[-2])  # log2 of the growth from n=8 to 16
reverse_growth = math.log2(reverse_nodes[-1] / reverse_nodes[-2])
print(f"from n=8 to 16: forward grows as n^{forward_growth:.1f}, reverse as n^{reverse_growth:.1f}")
assert 2.6 < forward_growth < 3.2 and 1.7 < reverse_growth < 2.1
assert forward_nodes[-1] > 5 * reverse_nodes[-1]
