"""Differential testing for as long as asked: random op-table graphs through every method × backend.

    python bench/differential.py [--minutes N] [--max-size NODES] [--points K] [--seed S]

Each round draws a graph size (log-uniform from 1 to --max-size op nodes, default 3000), builds a
random program from the whole op table (graphc.differential.random_program), and checks every
method (paths below 20,000 paths, symbolic up to 60 graph nodes, numeric on graphs without kinks)
on every available backend against dp on numpy at K random points. Reports how many graphs, graph
nodes, kernels and numbers it checked, the largest graph, and every disagreement (with the seed
that reproduces it: ``random_program(random.Random(seed), size)``). Exit status 1 if any disagreed.
The LLVM disk cache goes to a temporary directory, so every kernel is compiled afresh.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--max-size", type=int, default=3000)
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="graphc-differential-") as cache:
        os.environ["GRAPHC_CACHE_DIR"] = cache
        return run(args)


def run(args: argparse.Namespace) -> int:
    from graphc.differential import compare, points, random_program

    deadline = time.monotonic() + 60.0 * args.minutes
    graphs = nodes = kernels = values = skipped = largest = 0
    failures: list[str] = []
    seed = args.seed
    while time.monotonic() < deadline:
        rng = random.Random(seed)
        size = max(1, int(math.exp(rng.uniform(0.0, math.log(args.max_size)))))
        program = random_program(rng, size)
        outcome = compare(program, points(rng, args.points))
        graphs += 1
        nodes += outcome.nodes
        largest = max(largest, outcome.nodes)
        kernels += outcome.kernels
        values += outcome.values
        skipped += outcome.skipped_points
        jump = " (the graph has a jump: last-bit libm differences can flip it)" if outcome.jumps else ""
        for d in outcome.disagreements[:3]:
            failures.append(
                f"seed {seed} size {size}: {d.method}/{d.backend} {d.output} at {d.point}: "
                f"{d.got!r} != {d.want!r}{jump}"
            )
        seed += 1
    print(
        f"{graphs:,} graphs ({nodes:,} graph nodes, the largest {largest:,}), {kernels:,} kernels, "
        f"{values:,} numbers compared, {skipped:,} points skipped (not finite), "
        f"{len(failures)} disagreements; seeds {args.seed}..{seed - 1}"
    )
    for line in failures:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
