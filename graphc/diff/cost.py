"""What a Jacobian costs by forward and by reverse accumulation, estimated before building either:
the rule ``graphc.jacobian(mode="auto")`` picks by.

Every pass is counted as visiting the active nodes (those between the inputs and the outputs):
each costs a fixed part (a node built, a NumPy statement run: :data:`OVERHEAD`, in elementwise
operations) and the elements it carries. ``forward`` makes, for each input, one pass if the input
is stacked (graphc.diff.stacked: all its ``n`` elements at once, each node carrying ``n`` times its
elements) or one pass per element; ``dp`` makes one pass per output element. So the estimate is
nodes times passes, plus the arithmetic. On a scalar graph it is the count of inputs against the
count of outputs; a stacked tensor input counts as one pass, not one per element, but its
``n``-fold elements count against it where the outputs are few.

>>> from graphc.parse import parse
>>> costs(parse("x: [40]; softmax(x)"), ["x"])  # one stacked pass against 40 reverse passes
(9880, 204880)
"""

from __future__ import annotations

from collections.abc import Sequence

from graphc.diff.blocks import stacks
from graphc.diff.common import depends_on
from graphc.graph import Graph
from graphc.ops import CONST, VAR
from graphc.shapes import size

# A node's fixed cost in elementwise operations: a NumPy statement on a few elements takes about
# as long as one on a thousand (bench/RESULTS.md, "stacked passes").
OVERHEAD = 1000


def costs(graph: Graph, names: Sequence[str]) -> tuple[int, int]:
    """The estimated cost of the Jacobian of ``graph``'s outputs with respect to ``names``:
    ``(forward, reverse)``."""
    keep = graph.reachable()
    sources = [graph.variable(name) for name in names]
    active = [d and k for d, k in zip(depends_on(graph, sources), keep, strict=True)]
    visited = [v for v, a in enumerate(active) if a and graph.op(v) not in (VAR, CONST)]
    nodes, elements = len(visited), sum(size(graph.shape(v)) for v in visited)
    forward = 0
    for source in sources:
        n = size(graph.shape(source))
        passes = 1 if n == 1 else _stacked_passes(graph, source, keep, n)
        forward += passes * OVERHEAD * nodes + n * elements
    reverse = sum(size(graph.shape(o)) * (OVERHEAD * nodes + elements) for o in graph.outputs if active[o])
    return forward, reverse


def _stacked_passes(graph: Graph, source: int, keep: list[bool], n: int) -> int:
    """Forward's passes for a tensor input of ``n`` elements: 1 if it is stacked, else ``n`` (a
    scalar input is one pass either way, and is not walked: a graph of thousands of scalar inputs
    would make the walks quadratic)."""
    dependent = [d and k for d, k in zip(depends_on(graph, [source]), keep, strict=True)]
    return 1 if stacks(graph, graph.shape(source), dependent, tangent=True) else n
