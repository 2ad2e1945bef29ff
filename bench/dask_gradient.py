"""A gradient over N points on a Dask cluster (docs/distributed.md), and what Dask support costs.

    python bench/dask_gradient.py [--points 1e8] [--chunk 5e6] [--workers 2] [--backend llvm]
                                  [--inputs random|ramp] [--timeout 900] [--append bench/RESULTS.md]

Starts a ``LocalCluster`` of ``--workers`` processes (one thread each) on 127.0.0.1, makes x and
y in the workers (nothing of size N passes through the client): drawn uniformly (``random``), or
(``ramp``, far cheaper, so that a run of 10⁹ points measures the gradient rather than the random
number generator) x evenly spaced in [-2, 2] and y = 0.5 + 0.75·|x|, computed in the kernel's own
block task; computes
``value_and_grad`` of the issue's function on every block, and reduces each output to its sum
(so the run measures the gradient, not moving 3N floats back). It reports the wall time of that
compute, the same kernel on one block in this process (so the cluster's overhead is the rest), and
kernel construction with Dask installed and with it blocked (``sys.modules['dask'] = None``).
The compute is bounded by ``--timeout`` seconds: past it the run stops and reports so.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import graphc

EXPR = "sin(x*y) + exp(x)/(1 + y*y)"

CONSTRUCTION = """
import sys, time
{block}
import graphc
times = []
for i in range(7):
    start = time.perf_counter()
    graphc.value_and_grad("sin(x*y) + exp(x)/(1 + y*y) + {{}}".format(i), backend="numpy")(1.0, 2.0)
    times.append(time.perf_counter() - start)
assert not any(m == "dask" or m.startswith("dask.") for m in sys.modules if sys.modules[m] is not None)
print(sorted(times)[3])
"""


def construction_ms(block_dask: bool) -> float:
    """The median time to build and call a fresh value_and_grad kernel, in a fresh process."""
    block = "sys.modules['dask'] = None  # as if Dask were not installed" if block_dask else ""
    code = CONSTRUCTION.format(block=block)
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(output.stdout) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=float, default=1e8)
    parser.add_argument("--chunk", type=float, default=5e6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="llvm")
    parser.add_argument("--inputs", choices=("random", "ramp"), default="random")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds the cluster's compute may take")
    parser.add_argument("--append", type=Path, help="append the results as a markdown section to this file")
    args = parser.parse_args()
    points, chunk = int(args.points), int(args.chunk)

    import dask.array as da
    from dask.distributed import Client, LocalCluster

    kernel = graphc.value_and_grad(
        EXPR, backend=args.backend, **({"threads": 1} if args.backend == "llvm" else {})
    )
    rng = np.random.default_rng(0)
    x1, y1 = rng.uniform(-2.0, 2.0, chunk), rng.uniform(-2.0, 2.0, chunk)
    kernel(x1, y1)
    start = time.perf_counter()
    kernel(x1, y1)
    block_s = time.perf_counter() - start
    del x1, y1

    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        if args.inputs == "random":
            generator = da.random.default_rng(1)
            x = generator.uniform(-2.0, 2.0, points, chunks=chunk)
            y = generator.uniform(-2.0, 2.0, points, chunks=chunk)
        else:
            x = da.linspace(-2.0, 2.0, points, chunks=chunk)
            y = 0.5 + 0.75 * abs(x)
        value, (dx, dy) = kernel(x, y)
        sums = [value.sum(), dx.sum(), dy.sum()]
        start = time.perf_counter()
        try:
            totals = [future.result(timeout=args.timeout) for future in client.compute(sums)]
        except TimeoutError:
            raise SystemExit(f"the compute did not finish within --timeout {args.timeout:g} s") from None
        cluster_s = time.perf_counter() - start
        # the inputs alone: what making the 2N inputs costs the same workers
        start = time.perf_counter()
        client.compute([x.sum(), y.sum()], sync=True)
        inputs_s = time.perf_counter() - start

    with_dask, without_dask = construction_ms(False), construction_ms(True)
    blocks = -(-points // chunk)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True
    ).stdout.strip()
    machine = platform.processor() or platform.machine()
    command = (
        f"python bench/dask_gradient.py --points {args.points:g} --chunk {args.chunk:g} "
        f"--workers {args.workers} --backend {args.backend} --inputs {args.inputs}"
    )
    lines = [
        "",
        f"### Dask: a {points:,}-point gradient on a local cluster (bench/dask_gradient.py)",
        "",
        (
            f"Run on {now} at commit {commit}: `{command}`; {machine}, {os.cpu_count()} cores "
            f"(shared with other work: load average {os.getloadavg()[0]:.1f} at the end)."
        ),
        "",
        "| figure | value |",
        "|---|---:|",
        f"| points, chunk, blocks | {points:,}, {chunk:,}, {blocks} |",
        f"| workers (processes x 1 thread) | {args.workers} |",
        f"| value_and_grad + 3 sums on the cluster, s | {cluster_s:.2f} |",
        f"| inputs ({args.inputs}) x and y alone on the cluster, s | {inputs_s:.2f} |",
        f"| one block in this process (kernel only, 1 thread), s | {block_s:.3f} |",
        f"| kernel-only time for all blocks / workers, s | {block_s * blocks / args.workers:.2f} |",
        f"| sums (f, df/dx, df/dy) | {totals[0]:.6g}, {totals[1]:.6g}, {totals[2]:.6g} |",
        f"| value_and_grad construction + 1 call, Dask installed, ms | {with_dask:.1f} |",
        f"| the same with Dask blocked (as if not installed), ms | {without_dask:.1f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with args.append.open("a") as file:
            file.write(text)


if __name__ == "__main__":
    main()
