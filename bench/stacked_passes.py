"""Forward and numeric on tensor inputs, one block op each: the derivative graph's node count,
its build time (differentiate + compile) and one call's time, medians of repeats.

    python bench/stacked_passes.py [--repeats 5]

Figures go to bench/RESULTS.md (section "stacked passes"), with the machine's load said there.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import graphc
from graphc.parse import parse

N = 200
PROGRAMS = {
    "matmul": f"x: [{N}]; W: [50, {N}]; sum(tanh(W @ x))",
    "matmul both (x@x)": f"x: [{N}]; dot(sin(x), x)",
    "matrix @ stacked": f"x: [{N}, 4]; W: [3, {N}]; sum(W @ x)",
    "outer": f"x: [{N}]; sum(outer(x, sin(x)))",
    "logsumexp": f"x: [{N}]; logsumexp(x * x)",
    "max/min": f"x: [{N}]; max(sin(x)) + min(x)",
    "where": f"x: [{N}]; sum(where(x > 0, sqrt(x), -x))",
    "broadcast": f"x: [{N}]; sum(broadcast(x, shape=[3, {N}]) * 2)",
    "unindex": f"x: [{N}]; sum(exp(unindex(x, at=[0:{N}], shape=[{N + 5}])))",
    "softmax n=40": "x: [40]; softmax(x)",
    "sum(sin(x)*x) n=1000": "x: [1000]; sum(sin(x) * x)",
}


def measure(text: str, method: str, repeats: int) -> tuple[int, int, float, float]:
    graph = parse(text)
    rng = np.random.default_rng(0)
    values = {v: rng.normal(size=graph.shape(graph.variable(v))) for v in graph.variables}
    builds, calls = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        derivative = graphc.differentiate(graph, "x", method=method)
        kernel = graphc.compile(derivative)
        builds.append(time.perf_counter() - start)
        kernel(**values)
        for _ in range(5):
            start = time.perf_counter()
            kernel(**values)
            calls.append(time.perf_counter() - start)
    return len(derivative), derivative.info["passes"], statistics.median(builds), statistics.median(calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    print("| program | method | nodes | passes | build s | call ms |")
    print("|---|---|---:|---:|---:|---:|")
    for name, text in PROGRAMS.items():
        if args.only and args.only not in name:
            continue
        for method in ("forward", "numeric"):
            nodes, passes, build, call = measure(text, method, args.repeats)
            print(f"| {name} | {method} | {nodes} | {passes} | {build:.3f} | {call * 1e3:.3f} |", flush=True)


if __name__ == "__main__":
    main()
