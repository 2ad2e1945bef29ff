"""What convolution's masked forms (graphc/masked_conv.py) cost: T3's network with a ``where``.

    python bench/masked_conv.py [--backend numpy|llvm] [--n 1797] [--repeats 30]

T3's shapes (bench/tensor_problems.py: digits [n, 1, 8, 8] -> conv 8x3x3 -> maxpool 2 -> dense 10,
softmax cross-entropy), once with ``relu`` (T3 itself: no flag, plain conv VJPs) and once with
``where(A > 0, A, 0)``, so the adjoint of ``A = conv2d(X, K) + c`` carries a flag per element and
K's adjoint is a ``masked_conv2d_filter``. Prints each one's build time (differentiate, compile,
first call) and the median and best of ``--repeats`` calls of the ``dp`` gradient wrt K, c, W, b
on the digits-like data (seed 0), the kernel's kind on llvm, and the median of
``masked_conv2d_filter``'s NumPy against ``conv2d_filter``'s on T3's shapes: finite, and with two
infinite pixels (each call on a fresh copy of the adjoint, as a kernel's step has it). Run it with
one BLAS thread (OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from harness import call_times

import graphc

LAYERS = (
    "X: [n, 1, 8, 8]; T: [n, 10]; K: [8, 1, 3, 3]; c: [8, 1, 1]; W: [72, 10]; b: [10]\n"
    "A = conv2d(X, K) + c; h = maxpool2d({activation}, 2); z = reshape(h, [n, 72]) @ W + b\n"
    "-mean(sum(T * log_softmax(z, axis=-1), axis=-1))"
)
ACTIVATIONS = {"relu": "relu(A)", "where": "where(A > 0, A, 0)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--n", type=int, default=1797)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.n
    values = {
        "X": rng.random((n, 1, 8, 8)),
        "T": np.eye(10)[rng.integers(0, 10, n)],
        "K": rng.normal(size=(8, 1, 3, 3)),
        "c": rng.normal(size=(8, 1, 1)) * 0.1,
        "W": rng.normal(size=(72, 10)) * 0.1,
        "b": np.zeros(10),
    }
    print(f"graphc from {graphc.__file__}")
    for name, activation in ACTIVATIONS.items():
        start = time.perf_counter()
        kernel = graphc.grad(
            LAYERS.format(activation=activation), wrt=["K", "c", "W", "b"], backend=args.backend
        )
        kernel(**values)
        build = time.perf_counter() - start
        times = call_times(lambda kernel=kernel: kernel(**values), args.repeats)
        kind = getattr(kernel.function, "kind", "numpy")
        print(
            f"T3 with {name:5s} dp, {args.backend} ({kind}), n={n}: build+first call {build:.2f} s, "
            f"median {statistics.median(times) * 1e3:.2f} ms, best {min(times) * 1e3:.2f} ms"
        )
    from graphc.ops import block_helpers

    helpers = block_helpers()
    plain, masked = helpers["_conv2d_filter"], helpers.get("_masked_conv")
    if masked is None:  # a tree from before the masked forms
        return
    g = rng.normal(size=(n, 8, 6, 6))
    live = (rng.random((n, 8, 6, 6)) < 0.5).astype(float)
    g *= live
    bad = values["X"].copy()
    bad[5, 0, 3, 3], bad[100 % n, 0, 0, 7] = np.inf, -np.inf
    with np.errstate(all="ignore"):
        for label, call in [
            ("conv2d_filter(X, g)", lambda: plain(values["X"], g, 1, 0, (3, 3), 1)),
            (
                "masked_conv2d_filter, X finite",
                lambda: masked(plain, 1, values["X"], g, live, 1, 0, (3, 3), 1),
            ),
            (
                "masked_conv2d_filter, 2 infinite pixels",
                lambda: masked(plain, 1, bad, g, live, 1, 0, (3, 3), 1),
            ),
        ]:
            print(f"{label:42s} median {statistics.median(call_times(call, args.repeats)) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
