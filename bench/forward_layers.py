"""Forward mode through convolution and pooling: T3 and T4 (bench/tensor_problems.py) at a small
batch, differentiated wrt every weight by ``forward`` (and ``dp`` for scale): the derivative graph's
node count, its passes, the time to build it (differentiate) and to compile it, and a call's time,
medians of repeats.

    OPENBLAS_NUM_THREADS=1 python bench/forward_layers.py [--batch 16] [--repeats 3] [--backend llvm]

Figures go to bench/RESULTS.md ("forward through layers").
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import graphc
from graphc.parse import parse

try:
    from tensor_problems import PROBLEMS
except ImportError:  # run as a module from the checkout's root
    from bench.tensor_problems import PROBLEMS


def measure(
    name: str, batch: int, method: str, repeats: int, backend: str
) -> tuple[int, int, float, float, float, float]:
    """Nodes, passes, median differentiate s, median compile s, median call s, max |method - dp|."""
    problem = PROBLEMS[name]
    text = problem.text.replace("[n,", f"[{batch},")
    graph = parse(text)
    wrt = list(problem.wrt)
    builds, compiles = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        derivative = graphc.differentiate(graph, wrt, method=method)
        builds.append(time.perf_counter() - start)
        start = time.perf_counter()
        kernel = graphc.compile(derivative, backend=backend)
        compiles.append(time.perf_counter() - start)
    arrays = problem.arrays(batch=batch)
    values = {v: arrays[v] for v in graph.variables}
    reference = graphc.compile(graphc.differentiate(graph, wrt, method="dp"))(**values)
    error = max(float(np.max(np.abs(a - b))) for a, b in zip(kernel(**values), reference, strict=True))
    calls = []
    for _ in range(5 * repeats):
        start = time.perf_counter()
        kernel(**values)
        calls.append(time.perf_counter() - start)
    return (
        len(derivative),
        derivative.info["passes"],
        statistics.median(builds),
        statistics.median(compiles),
        statistics.median(calls),
        error,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    print(
        f"| problem | method | nodes | passes | differentiate s | {args.backend} compile s | call ms | max abs vs dp |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in ("T3", "T4"):
        if args.only not in name:
            continue
        for method in ("forward", "dp"):
            nodes, passes, build, comp, call, error = measure(
                name, args.batch, method, args.repeats, args.backend
            )
            row = f"| {name} | {method} | {nodes} | {passes} | {build:.3f} | {comp:.3f} | {call * 1e3:.3f} | {error:.1e} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
