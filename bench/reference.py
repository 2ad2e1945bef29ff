"""The reference gradient: forward-mode dual numbers over graphc's primal graph, in NumPy's extended
precision (``np.longdouble``: 64-bit significands on x86-64, where the C library's ``sinl``,
``expl``... are correctly rounded or nearly), rounded to float64 at the end. So the reference is
some 2,000 times more precise than any float64 system it checks, and the error column measures each
system's own error (on deep graphs: float64 rounding amplified by the graph's conditioning) rather
than how closely its float64 math library matches NumPy's.

It shares nothing with graphc's differentiation (its own small table of derivatives, its own
evaluation loop) and it works on the parsed function graph alone, so it scales to B5's 100,000
operations on the check batch. Nodes are freed after their last use, as a compiler would.
Higher derivatives (B6) have no dual-number form here: for them the reference is graphc's
``forward`` method on the NumPy backend (tangent propagation, not the dp method graphc's systems time).

>>> import graphc
>>> x = np.array([1.0, 2.0])
>>> [g.tolist() for g in dual_gradient(graphc.parse("x*y + sin(x)"), [x, 3 * x])]
[[3.5403023058681398, 5.583853163452858], [1.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.graph import Graph
from graphc.ops import CONST, VAR

Partials = Callable[..., tuple[Any, ...]]  # (operand values..., result) -> one local derivative per operand

# op: (the value, the local derivatives)
DUALS: dict[str, tuple[Callable[..., Any], Partials]] = {
    "add": (np.add, lambda a, b, out: (1.0, 1.0)),
    "sub": (np.subtract, lambda a, b, out: (1.0, -1.0)),
    "mul": (np.multiply, lambda a, b, out: (b, a)),
    "div": (np.divide, lambda a, b, out: (1.0 / b, -out / b)),
    "neg": (np.negative, lambda a, out: (-1.0,)),
    "pow": (np.power, lambda a, b, out: (b * a ** (b - 1.0), out * np.log(a))),
    "sin": (np.sin, lambda a, out: (np.cos(a),)),
    "cos": (np.cos, lambda a, out: (-np.sin(a),)),
    "tanh": (np.tanh, lambda a, out: (1.0 - out * out,)),
    "exp": (np.exp, lambda a, out: (out,)),
    "log": (np.log, lambda a, out: (1.0 / a,)),
    "sqrt": (np.sqrt, lambda a, out: (0.5 / out,)),
}


def dual_gradient(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The gradient of the graph's one output wrt every variable (sorted), at the given points."""
    names = graph.variables
    count = len(names)
    points = len(inputs[0])
    inputs = [np.asarray(x, dtype=np.longdouble) for x in inputs]
    last_use = list(range(len(graph)))
    for node in range(len(graph)):
        for arg in graph.args(node):
            last_use[arg] = node
    (output,) = graph.outputs
    value: dict[int, Any] = {}
    tangent: dict[int, np.ndarray | None] = {}  # None: a constant (no tangent)
    with np.errstate(all="ignore"):
        for node in range(len(graph)):
            op, args = graph.op(node), graph.args(node)
            if op == VAR:
                index = names.index(graph.name(node))
                value[node] = inputs[index]
                unit = np.zeros((count, points), dtype=np.longdouble)
                unit[index] = 1.0
                tangent[node] = unit
            elif op == CONST:
                value[node], tangent[node] = np.longdouble(graph.const_value(node)), None
            else:
                function, partials = DUALS[op]
                operands = [value[arg] for arg in args]
                result = function(*operands)
                total = None
                for arg, local in zip(args, partials(*operands, result), strict=True):
                    if tangent[arg] is not None:  # a constant operand contributes nothing (pow's exponent)
                        term = tangent[arg] * local
                        total = term if total is None else total + term
                value[node], tangent[node] = result, total
            for arg in set(args):
                if last_use[arg] == node and arg != output:
                    del value[arg], tangent[arg]
    result = tangent[output]
    return list(np.zeros((count, points)) if result is None else result.astype(np.float64))
