"""Compile time of the LLVM backend against graph size: a random graph's dp gradient.

    python bench/llvm_compile.py [SIZES...]      (default: 10000 50000 100000 200000 nodes)

For each size: the primal graph's nodes, the gradient graph's nodes, its parts, then the seconds
spent differentiating, generating IR, in LLVM (optimising and code generation) and loading the
machine code, and the largest relative difference between the kernel and a plain-Python evaluation
of the gradient at three points with the same functions (graphc's own sin, cos, tanh, exp). The cache is not used. Linear compile time shows
as a roughly constant "µs/node" column. "tape s": differentiating and making the kernel graphc
actually returns for a graph this large (the tape, graphc.backends.llvm.tape), which is the kernel
checked against the reference ("vs libm").
"""

from __future__ import annotations

import math
import operator
import random
import sys
import time

import numpy as np

import graphc
from graphc.backends import llvm as backend
from graphc.backends.llvm.ir import kernel_text
from graphc.backends.llvm.jit import build
from graphc.backends.llvm.plan import Plan
from graphc.backends.llvm.runtime import load
from graphc.graph import Graph

VARIABLES = 10


def random_graph(nodes: int, seed: int = 0) -> Graph:
    """A random DAG of + - * and sin, cos, tanh, sigmoid, with some sharing."""
    rng = random.Random(seed)
    g = Graph()
    made = [g.var(f"x{i}") for i in range(VARIABLES)]
    while len(g) < nodes:
        if rng.random() < 0.3:
            op = rng.choice(["sin", "cos", "tanh", "sigmoid"])
            made.append(g.apply(op, rng.choice(made[-50:])))
        else:
            op = rng.choice(["add", "mul", "sub"])
            made.append(g.apply(op, rng.choice(made[-50:]), rng.choice(made)))
    g.set_outputs([g.add(made[-1], made[-2])])
    return g


CHECKED = [0, 499, 999]  # points checked against the reference


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf


def _own(name: str):
    """graphc's own function (graphc/backends/llvm/vecmath.py), which the kernel calls, on one float."""
    function = backend.math_function(f"graphc_{name}")
    return lambda u: float(function(np.array([u]))[0])


_OWN_EXP = _own("exp")
_LIBM = {
    "sin": _own("sin"),
    "cos": _own("cos"),
    "tanh": _own("tanh"),
    "sigmoid": lambda u: 1.0 / (1.0 + _OWN_EXP(-u)),
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "neg": operator.neg,
    "pow": _pow,
}


def reference(graph: Graph, point: dict[str, float]) -> list[float]:
    """The outputs in plain Python floats, with the functions the LLVM kernel calls: the C
    library's pow, graphc's own sin, cos, tanh and exp.

    NumPy's own exp and tanh differ from those in the last bit, which a random graph this deep
    amplifies (to a relative 2.5 at 50,000 nodes), so this is the kernel's reference.
    """
    values: list[float] = []
    for node in range(len(graph)):
        op = graph.op(node)
        if op == "var":
            values.append(point[graph.name(node)])
        elif op == "const":
            values.append(graph.const_value(node))  # type: ignore[arg-type]
        else:
            values.append(_LIBM[op](*(values[a] for a in graph.args(node))))
    return [values[o] for o in graph.outputs]


def measure(nodes: int) -> dict[str, float]:
    graph = random_graph(nodes)
    start = time.perf_counter()
    gradient = graphc.differentiate(graph)
    differentiated = time.perf_counter()
    plan = Plan.of(gradient)
    module_text, _ = kernel_text(plan, backend.lanes())
    generated = time.perf_counter()
    built = build(gradient)  # generation again, then LLVM
    compiled = time.perf_counter()
    llvm_seconds = (compiled - generated) - (generated - differentiated)
    engine, *addresses = load(built.object_code, built.symbols)
    loaded = time.perf_counter()
    kernel = graphc.compile(gradient, backend="llvm")  # above TAPE_NODES: the tape, never compiled
    taped = time.perf_counter()
    point = {f"x{i}": np.linspace(-1, 1, 1000) + 0.01 * i for i in range(VARIABLES)}
    values = np.array(kernel(**point))
    expected = np.array([reference(gradient, {n: float(v[i]) for n, v in point.items()}) for i in CHECKED])
    difference = np.max(np.abs(values[:, CHECKED].T - expected) / np.maximum(np.abs(expected), 1e-300))
    del engine, addresses, module_text
    return {
        "nodes": len(graph),
        "gradient": len(gradient),
        "parts": len(plan.parts),
        "diff": differentiated - start,
        "ir": generated - differentiated,
        "llvm": llvm_seconds,
        "load": loaded - compiled,
        "total": (generated - start) + llvm_seconds + (loaded - compiled),
        "tape": (differentiated - start) + (taped - loaded),
        "difference": float(difference),
    }


def main(sizes: list[int]) -> None:
    print(
        f"{'nodes':>8} {'gradient':>9} {'parts':>5} {'diff s':>7} {'IR s':>6} {'LLVM s':>7} "
        f"{'load s':>6} {'total s':>7} {'µs/node':>8} {'tape s':>6} {'vs libm':>8}"
    )
    for size in sizes:
        r = measure(size)
        per_node = 1e6 * (r["ir"] + r["llvm"] + r["load"]) / r["gradient"]
        print(
            f"{r['nodes']:>8} {r['gradient']:>9} {r['parts']:>5} {r['diff']:>7.2f} {r['ir']:>6.2f} "
            f"{r['llvm']:>7.2f} {r['load']:>6.2f} {r['total']:>7.2f} {per_node:>8.1f} {r['tape']:>6.2f} "
            f"{r['difference']:>8.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 50_000, 100_000, 200_000])
