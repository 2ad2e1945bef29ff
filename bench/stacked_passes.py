"""Forward and numeric on tensor inputs, one block op each: the derivative graph's node count,
its build time (differentiate + compile) and a call's time, medians of repeats.

    OPENBLAS_NUM_THREADS=1 python bench/stacked_passes.py [--repeats 3] [--only NAME]
    OPENBLAS_NUM_THREADS=1 python bench/stacked_passes.py --against /path/to/other/checkout

``--against`` times this checkout's generated NumPy kernels and another checkout's (its source
generated there, in a subprocess) interleaved call by call in one process, which a loaded machine
disturbs far less than separate runs do. Figures go to bench/RESULTS.md ("stacked passes").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

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
METHODS = ("forward", "numeric")
_SOURCE = "import sys, graphc; print(graphc.compile(graphc.differentiate(sys.argv[1], 'x', method=sys.argv[2])).source)"


def _values(text: str) -> dict[str, np.ndarray]:
    graph = parse(text)
    rng = np.random.default_rng(0)
    return {v: rng.normal(size=graph.shape(graph.variable(v))) for v in graph.variables}


def measure(text: str, method: str, repeats: int) -> tuple[int, int, float, float]:
    graph, values = parse(text), _values(text)
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


def _function(source: str) -> Any:
    scope: dict[str, Any] = {}
    exec(compile(source, "<kernel>", "exec"), scope)  # noqa: S102 - a kernel graphc generated
    return scope["f"]


def against(other: str, names: list[str], calls: int) -> None:
    """Median call ms of this checkout's kernel and ``other``'s, interleaved."""
    print(f"| program | method | this ms | {other} ms |")
    print("|---|---|---:|---:|")
    env = {**os.environ, "PYTHONPATH": other}
    for name in names:
        text, values = PROGRAMS[name], _values(PROGRAMS[name])
        for method in METHODS:
            theirs = subprocess.run(
                [sys.executable, "-c", _SOURCE, text, method],
                cwd=other,  # not this checkout's directory, which -c would put first on the path
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            mine = graphc.compile(graphc.differentiate(text, "x", method=method)).source
            functions = [_function(mine), _function(theirs)]
            times: list[list[float]] = [[], []]
            for _ in range(calls):
                for f, t in zip(functions, times, strict=True):
                    start = time.perf_counter()
                    f(**values)
                    t.append(time.perf_counter() - start)
            a, b = (statistics.median(t) * 1e3 for t in times)
            print(f"| {name} | {method} | {a:.3f} | {b:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--against", default="", help="another checkout: time both kernels interleaved")
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    names = [name for name in PROGRAMS if args.only in name]
    if args.against:
        against(args.against, names, args.calls)
        return
    print("| program | method | nodes | passes | build s | call ms |")
    print("|---|---|---:|---:|---:|---:|")
    for name in names:
        for method in METHODS:
            nodes, passes, build, call = measure(PROGRAMS[name], method, args.repeats)
            print(f"| {name} | {method} | {nodes} | {passes} | {build:.3f} | {call * 1e3:.3f} |", flush=True)


if __name__ == "__main__":
    main()
