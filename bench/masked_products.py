"""What the masked products (graphc/masked.py) cost: T1's network with a ``where`` activation.

    python bench/masked_products.py [--backend numpy|llvm] [--n 1797] [--repeats 100]

T1's shapes (bench/tensor_problems.py: [n, 64] -> [32] -> softmax cross-entropy over 10) with
``h = where(A > 0, tanh(A), 0)``, so the adjoint of ``A = X @ W1 + b1`` carries a flag per element
and W1's adjoint is a masked product. Prints the build time and the median and best of
``--repeats`` calls of the ``dp`` gradient wrt W1, b1, W2, b2 on random data (seed 0), and the
median of ``_masked_matmul`` against ``@`` on W1's adjoint shapes, finite and with two non-finite
columns. Run it with one BLAS thread (OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1) on two trees
(PYTHONPATH=...) to compare them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from harness import call_times

import graphc

TEXT = (
    "X: [n, 64]; T: [n, 10]; W1: [64, 32]; b1: [32]; W2: [32, 10]; b2: [10]\n"
    "A = X @ W1 + b1; h = where(A > 0, tanh(A), 0); z = h @ W2 + b2\n"
    "-mean(sum(T * log_softmax(z, axis=-1), axis=-1))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--n", type=int, default=1797)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.n
    values = {
        "X": rng.random((n, 64)),
        "T": np.eye(10)[rng.integers(0, 10, n)],
        "W1": rng.normal(size=(64, 32)) * 0.1,
        "b1": rng.normal(size=32) * 0.1,
        "W2": rng.normal(size=(32, 10)) * 0.1,
        "b2": np.zeros(10),
    }
    start = time.perf_counter()
    kernel = graphc.grad(TEXT, wrt=["W1", "b1", "W2", "b2"], method="dp", backend=args.backend)
    kernel(**values)
    build = time.perf_counter() - start
    times = call_times(lambda: kernel(**values), args.repeats)
    print(f"graphc from {graphc.__file__}")
    print(
        f"T1 with where, dp, {args.backend}, n={n}: build+first call {build:.2f} s, "
        f"median {statistics.median(times) * 1e3:.3f} ms, best {min(times) * 1e3:.3f} ms"
    )
    from graphc.ops import block_helpers

    masked = block_helpers().get("_masked_matmul")
    if masked is None:
        return
    g = rng.normal(size=(32, n))
    live = (rng.random((32, n)) < 0.5).astype(float)
    g *= live
    bad = values["X"].copy()
    bad[5, 3], bad[100 % n, 40] = np.inf, np.nan
    with np.errstate(all="ignore"):
        for label, call in [
            ("plain g @ X", lambda: g @ values["X"]),
            ("masked_matmul, X finite", lambda: masked(g, live, values["X"])),
            ("masked_matmul, 2 non-finite columns", lambda: masked(g, live, bad)),
        ]:
            print(f"{label:38s} median {statistics.median(call_times(call, args.repeats)) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
