"""The llvm backend's matrix products: register-blocked loops against BLAS's dgemm, shape by shape.

    python bench/matmul_shapes.py                       # the default shapes: ~1 minute
    python bench/matmul_shapes.py 1797x64x32 256x784x256 --rounds 9

Each ``MxKxN`` is ``C[M, N] = A[M, K] @ B[K, N]``, timed as written and with A transposed
(``transpose(A) @ B``, A stored ``[K, M]``: the weight gradients of a backward pass). Both kernels
are compiled from the same text with ``tensor_ir.BLAS_MIN`` set to force one path; per round each
runs a block of calls in turn (side by side, so a change in the machine's load falls on both), and
the minimum over rounds of the thread's CPU time per call is printed, with the path that
``BLAS_MIN`` picks. Run it on one pinned core with one BLAS thread (``taskset -c 1``,
``OPENBLAS_NUM_THREADS=1``) to choose ``BLAS_MIN``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import graphc
from graphc.backends.llvm import tensor_ir

# T1's and T2's products (forward and backward), and squares and panels around the thresholds
SHAPES = (
    "1797x64x32 1797x32x10 1797x10x32 32x1797x10 64x1797x32 "
    "256x784x256 256x256x10 256x10x256 256x256x64 256x64x256 48x512x512 "
    "16x16x16 32x32x32 64x64x64 96x96x96 128x128x128"
)


def timed(
    kernels: dict[str, graphc.Kernel], values: dict[str, np.ndarray], calls: int, rounds: int
) -> dict[str, float]:
    times: dict[str, list[float]] = {label: [] for label in kernels}
    for _ in range(rounds):
        for label, kernel in kernels.items():
            start = time.thread_time()
            for _ in range(calls):
                kernel(**values)
            times[label].append((time.thread_time() - start) / calls)
    return {label: min(spent) for label, spent in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "shapes", nargs="*", default=SHAPES.split(), help="MxKxN (default: T1's, T2's and more)"
    )
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ["GRAPHC_NO_CACHE"] = "1"
    rng = np.random.default_rng(0)
    chosen = tensor_ir.BLAS_MIN
    print(f"{'shape':>16} {'form':>14} {'loops us':>9} {'dgemm us':>9} {'loops/dgemm':>11}  BLAS_MIN picks")
    for shape in args.shapes:
        m, k, n = (int(x) for x in shape.split("x"))
        for form, text, a_shape in (
            ("A @ B", f"A: [{m}, {k}]; B: [{k}, {n}]; A @ B", (m, k)),
            ("transpose(A)@B", f"A: [{k}, {m}]; B: [{k}, {n}]; transpose(A) @ B", (k, m)),
        ):
            kernels = {}
            for label, least in (("loops", (10**12, 0, 0)), ("dgemm", (1, 1, 1))):
                tensor_ir.BLAS_MIN = least
                kernels[label] = graphc.compile(text, backend="llvm", threads=1)
            tensor_ir.BLAS_MIN = chosen
            values = {"A": rng.random(a_shape), "B": rng.random((k, n))}
            calls = max(1, int(2e6 // (m * k * n)))
            best = timed(kernels, values, calls, args.rounds)
            picks = (
                "dgemm" if all(s >= t for s, t in zip((m * n * k, n, k), chosen, strict=True)) else "loops"
            )
            print(
                f"{shape:>16} {form:>14} {best['loops'] * 1e6:9.0f} {best['dgemm'] * 1e6:9.0f} "
                f"{best['loops'] / best['dgemm']:11.2f}  {picks}",
                flush=True,
            )


if __name__ == "__main__":
    main()
