"""Chapter 1 — the chain rule along one path and along several paths.

The lecture (seed 000, "Backpropagation along single path" and "multiple paths") differentiates
cos(w²) by multiplying local derivatives, then sin(w²) + cos(w²), where w² feeds two paths.
graphc reproduces both, and shows that with w² one shared node, reverse mode (dp) multiplies by
its local derivative 2w once, while the path method does it once per path.

Run: python examples/ch1_chain_rule.py
"""

import numpy as np

import graphc
from graphc.printing import formula

W = np.linspace(-2.0, 2.0, 41)


def show(title: str, derivative: graphc.Graph) -> str:
    text = formula(derivative, derivative.outputs[1])
    print(f"  {title}: {derivative.output_names[1]} = {text}")
    return text


# 1. One path: f(g(w)) = cos(w²); the lecture's product of local derivatives is -sin(y)·2w, y = w².
print("One path: f(g(w)) = cos(w^2)")
text = show("graphc", graphc.differentiate("cos(w^2)"))
assert text in ("-sin(w**2)*(2*w)", "-2*w*sin(w**2)"), text
(dcos,) = graphc.grad("cos(w^2)")(W)
np.testing.assert_allclose(dcos, -2 * W * np.sin(W**2), rtol=1e-15, atol=0)
print("  equals -2w·sin(w²) at 41 points in [-2, 2]")

# The lecture's opening example: the sigmoid of a sigmoid, 1/(1 + exp(-1/(1 + exp(-w)))).
nested = "1/(1 + exp(-1/(1 + exp(-w))))"
(dnested,) = graphc.grad(nested)(W)
inner = 1 / (1 + np.exp(-W))
outer = 1 / (1 + np.exp(-inner))
np.testing.assert_allclose(dnested, outer * (1 - outer) * inner * (1 - inner), rtol=1e-13)
(dsigmoid,) = graphc.grad("sigmoid(sigmoid(w))")(W)
np.testing.assert_allclose(dsigmoid, dnested, rtol=1e-13)
print("  sigmoid(sigmoid(w)): graphc equals s(s(w))(1 - s(s(w))) · s(w)(1 - s(w))")

# Seed 003's composition sqrt(log(x²)): J = (1/2)z^(-1/2) · y^(-1) · 2x with y = x², z = log y.
X = np.linspace(1.5, 4.0, 11)
(dsqrtlog,) = graphc.grad("sqrt(log(x^2))")(X)
y = X**2
z = np.log(y)
np.testing.assert_allclose(dsqrtlog, 0.5 * z**-0.5 * y**-1 * 2 * X, rtol=1e-14)
print("  sqrt(log(x^2)): graphc equals (1/2)z^(-1/2) · (1/y) · 2x")

# 2. Several paths: o = K(p, q) = p + q with p = cos(y), q = sin(z), y = z = w² (one shared node).
print("\nSeveral paths: o = sin(w^2) + cos(w^2)")
expr = "sin(w^2) + cos(w^2)"
graph = graphc.parse(expr)
stats = graph.stats()
print(f"  the graph: {stats['nodes']} nodes, ops {stats['ops']}; w^2 is one node")
assert stats["ops"]["pow"] == 1
assert graphc.count_paths(expr) == {"w": 2}
by_dp = graphc.differentiate(expr, method="dp")
by_paths = graphc.differentiate(expr, method="paths")
show("dp   ", by_dp)
show("paths", by_paths)
for method in ("dp", "paths", "forward", "symbolic"):
    (value,) = graphc.grad(expr, method=method)(W)
    np.testing.assert_allclose(value, -2 * W * np.sin(W**2) + 2 * W * np.cos(W**2), rtol=1e-12, atol=1e-13)
print("  every method equals -2w·sin(w²) + 2w·cos(w²)")


def uses_of_local_derivative(derivative: graphc.Graph) -> int:
    """How many products in the derivative graph take w²'s local derivative 2w as an operand."""
    probe = derivative.copy()
    two_w = probe.mul(probe.const(2.0), probe.var("w"))  # hash-consing finds the existing node
    assert two_w < len(derivative), "2*w must already be a node of the derivative graph"
    reachable = derivative.reachable()
    return sum(
        1
        for node in range(len(derivative))
        if reachable[node] and derivative.op(node) == "mul" and two_w in derivative.args(node)
    )


dp_uses, paths_uses = uses_of_local_derivative(by_dp), uses_of_local_derivative(by_paths)
print(f"  products by w²'s local derivative 2w: dp {dp_uses} (adjoints summed first), paths {paths_uses}")
assert (dp_uses, paths_uses) == (1, 2)
print(f"  the path method summed {by_paths.info['terms']} path products; dp made {by_dp.info['passes']} pass")
