"""One benchmark cell, run by run.py in a fresh process: one system on one problem.

Each figure is appended to the records file (one JSON object per line) as soon as it is measured,
so a cell that is killed at its timeout still reports what it measured before. The gradient on the
check batch is saved to ``--check`` (an .npy array, partials x points) for run.py to compare with
the reference.

    python bench/cell.py --system graphc-llvm --problem B1 --points 100000 --repeats 5 \
        --records cell.jsonl --check cell.npy
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # graphc from a checkout

CHECK_POINTS = 1000  # the check batch the error is measured on (seed 1)
BATCH_SEED, CHECK_SEED, POINT_SEED = 0, 1, 2
CALL_BUDGET = 0.2  # seconds of calls per repeat when timing one point


class Records:
    """Append-only JSON-lines output, flushed per figure."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the cell

    def __call__(self, **figures: Any) -> None:
        self.file.write(json.dumps(figures) + "\n")
        self.file.flush()


def median_time(run: Callable[[], Any], repeats: int, loops: int = 1) -> float:
    """The median over ``repeats`` of the time of one call, each repeat timing ``loops`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            run()
        times.append((time.perf_counter() - start) / loops)
    return statistics.median(times)


def resident_mb() -> float:
    with open("/proc/self/statm") as file:
        pages = int(file.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run_cell(args: argparse.Namespace) -> None:
    from problems import PROBLEMS
    from systems import REFERENCE, SYSTEMS

    import graphc

    record = Records(args.records)
    system = REFERENCE if args.system == REFERENCE.name else SYSTEMS[args.system]
    problem = PROBLEMS[args.problem]
    start = time.perf_counter()
    for module in system.requires:
        importlib.import_module(module)
    record(import_s=time.perf_counter() - start)
    graph = graphc.parse(problem.text)
    record(base_mb=resident_mb())

    point = problem.sample(1, POINT_SEED)  # drawn before the clock: NumPy's random module loads in 10 ms

    start = time.perf_counter()
    built = system.build(problem, graph)
    one = built.prepare(point)
    built.gradient(one)
    record(build_s=time.perf_counter() - start)

    check = built.to_numpy(built.gradient(built.prepare(problem.sample(CHECK_POINTS, CHECK_SEED))))
    check = np.stack([np.broadcast_to(np.asarray(g, dtype=float).ravel(), (CHECK_POINTS,)) for g in check])
    np.save(args.check, check)
    record(finite=bool(np.isfinite(check).all()), peak_mb=peak_mb())
    if args.check_only:
        return

    batch = built.prepare(problem.sample(args.points, BATCH_SEED))
    built.gradient(batch)  # warm-up (JAX compiles for this shape here)
    record(grad_s=median_time(lambda: built.gradient(batch), args.repeats), peak_mb=peak_mb())
    function = built.function()
    function(batch)
    record(func_s=median_time(lambda: function(batch), args.repeats), peak_mb=peak_mb())

    single = median_time(lambda: built.gradient(one), 1)
    loops = max(10, min(20_000, int(CALL_BUDGET / max(single, 1e-7))))
    record(call_s=median_time(lambda: built.gradient(one), 5, loops), peak_mb=peak_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--problem", required=True)
    parser.add_argument("--points", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--records", required=True)
    parser.add_argument("--check", required=True)
    parser.add_argument("--check-only", action="store_true")
    run_cell(parser.parse_args())


if __name__ == "__main__":
    main()
