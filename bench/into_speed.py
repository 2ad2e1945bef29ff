"""``Kernel.into`` against a plain call on a kernel of many outputs (issue 26's 2,410-output case).

    python bench/into_speed.py [--outputs 2410] [--points 100] [--repeats 31] [--append bench/RESULTS.md]

Builds ``compile`` of ``--outputs`` outputs of two variables (each output ``sin(x*c + y) + k*y``)
on both backends, and times, over ``--repeats`` calls after a warm-up, the median of a plain call
(fresh results) and of ``into`` writing into the same arrays every call. Run it with another
checkout first on ``PYTHONPATH`` to measure before a change.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import time
from pathlib import Path

import numpy as np

import graphc


def median_ms(call: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=2410)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--append", type=Path, help="append the results as a markdown section to this file")
    args = parser.parse_args()
    text = ", ".join(f"sin(x*{i % 7 + 1}.0 + y) + {i}.0*y" for i in range(args.outputs))
    x, y = np.linspace(0.0, 1.0, args.points), 0.5
    rows = []
    for backend in ("llvm", "numpy"):
        kernel = graphc.compile(text, backend=backend)
        out = tuple(np.empty(args.points) for _ in range(args.outputs))
        kernel(x, y)
        kernel.into(out, x, y)
        call = median_ms(lambda k=kernel: k(x, y), args.repeats)
        into = median_ms(lambda k=kernel, o=out: k.into(o, x, y), args.repeats)
        rows.append(f"| {backend} | {call:.2f} | {into:.2f} | {into / call:.2f} |")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "",
        f"### Kernel.into on {args.outputs:,} outputs (bench/into_speed.py)",
        "",
        (
            f"Run on {now} at commit {commit} (graphc from {Path(graphc.__file__).parent}): "
            f"`python bench/into_speed.py --outputs {args.outputs} --points {args.points} "
            f"--repeats {args.repeats}`; {os.cpu_count()} cores shared with other work (load average "
            f"{os.getloadavg()[0]:.1f}). Medians of {args.repeats} calls, ms."
        ),
        "",
        "| backend | call | into | into / call |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.append:
        with args.append.open("a") as file:
            file.write(report)


if __name__ == "__main__":
    main()
