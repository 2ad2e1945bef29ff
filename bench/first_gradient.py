"""Time from a fresh process to graphc's first loss and gradient on the tensor problems, with an
empty disk cache ("fresh") and with the cache a previous process filled ("cached").

    python bench/first_gradient.py                      # T1 and T2, graphc-llvm, 5 starts each
    python bench/first_gradient.py --problems T1 --starts 7 --backend numpy --graphc /other/checkout
    python bench/first_gradient.py --backend numpy --starts 7 --graphc /work/main,.   # alternating

Each start is a new interpreter pinned to one core (``taskset``, where there is one) with one BLAS
thread, which loads the problem's arrays (random, of the problem's shapes: the timing does not
depend on the values), imports graphc, builds the loss and gradient kernel and the loss kernel,
as bench/tensor_systems.py's graphc systems do, and computes the first loss and gradient. It
reports the wall-clock seconds from the parent starting it to that first gradient, the process's
CPU seconds by then, and, inside the process, the seconds from the text to the first gradient
after graphc is imported (``in-process``), then the time of the next loss and gradient and loss
calls (``second calls``: where deferred work shows). Medians over the starts; bytecode is written
once, before the first start, to a private directory. Several checkouts (``--graphc a,b``) take
their starts in turn, so a change in the machine's load falls on each alike. The numpy backend has
no disk cache: its starts are all fresh. The machine's load average is printed: on a
shared machine the wall clock includes other processes' turns, the CPU seconds do not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from tensor_problems import PROBLEMS

WORKER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
with np.load(sys.argv[2]) as file:
    arrays = {name: file[name] for name in file.files}
text, wrt, backend, begun = sys.argv[3], sys.argv[4].split(","), sys.argv[5], float(sys.argv[6])
threads = {"threads": 1} if backend == "llvm" else {}
import graphc
start = time.perf_counter()
kernel = graphc.value_and_grad(text, wrt=wrt, backend=backend, **threads)
loss = graphc.compile(text, backend=backend, **threads)
kernel(**arrays)
first, wall, cpu = time.perf_counter(), time.time() - begun, time.process_time()
kernel(**arrays), loss(**arrays), loss(**arrays)
print(json.dumps({"wall": wall, "cpu": cpu, "in_process": first - start, "second": time.perf_counter() - first}))
"""


def arrays_of(problem: str, scratch: str) -> str:
    """The problem's arrays, random, of its shapes, saved to a .npz in ``scratch``."""
    spec = PROBLEMS[problem]
    rng = np.random.default_rng(0)
    inputs = tuple(int(d) for d in spec.text.split("X: [n, ")[1].split("]")[0].split(","))  # (64,), (1, 8, 8)
    arrays = {
        "X": rng.random((spec.batch, *inputs)),
        "T": np.eye(10)[rng.integers(0, 10, spec.batch)],
        **{name: rng.normal(0.0, 0.1, shape) for name, shape in spec.shapes.items()},
    }
    path = os.path.join(scratch, f"{problem}.npz")
    np.savez(path, **arrays)
    return path


def start(
    args: argparse.Namespace, problem: str, data: str, env: dict[str, str], checkout: str
) -> dict[str, float]:
    spec = PROBLEMS[problem]
    command = [sys.executable, "-c", WORKER, checkout, data, spec.text, ",".join(spec.wrt), args.backend]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(args.core), *command]
    command.append(repr(time.time()))  # the worker's clock for the wall time to its first gradient
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="T1,T2")
    parser.add_argument("--backend", default="llvm")
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--core", type=int, default=1)
    parser.add_argument(
        "--graphc",
        default=os.path.dirname(HERE),
        help="the checkout to import graphc from (several: a,b, in turn)",
    )
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="graphc-first-")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("GRAPHC_NO_CACHE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "bytecode")
    print(f"load average at the start: {os.getloadavg()[0]:.1f}; graphc from {args.graphc}")
    checkouts = [os.path.abspath(c) for c in args.graphc.split(",")]
    kinds = ["fresh", "cached"] if args.backend == "llvm" else ["fresh"]
    try:
        for problem in args.problems.split(","):
            data = arrays_of(problem, scratch)
            runs: dict[tuple[str, str], list[dict[str, float]]] = {}
            for n, checkout in enumerate(checkouts):
                env["GRAPHC_CACHE_DIR"] = os.path.join(scratch, "warm-up")
                start(args, problem, data, env, checkout)  # bytecode written, files in the OS's cache
                env["GRAPHC_CACHE_DIR"] = os.path.join(scratch, f"{problem}-{n}-cached")
                start(args, problem, data, env, checkout)  # fills the cache every cached start reads
                runs |= {(checkout, kind): [] for kind in kinds}
            for i in range(args.starts):
                for n, checkout in enumerate(checkouts):
                    env["GRAPHC_CACHE_DIR"] = os.path.join(scratch, f"{problem}-{n}-fresh-{i}")
                    runs[checkout, "fresh"].append(start(args, problem, data, env, checkout))
                    if "cached" in kinds:
                        env["GRAPHC_CACHE_DIR"] = os.path.join(scratch, f"{problem}-{n}-cached")
                        runs[checkout, "cached"].append(start(args, problem, data, env, checkout))
            for (checkout, kind), figures in runs.items():
                median = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
                where = f" [{checkout}]" if len(checkouts) > 1 else ""
                print(
                    f"{problem} {args.backend} {kind:6}: first gradient {median['wall']:.3f} s wall, "
                    f"{median['cpu']:.3f} s CPU; in-process {median['in_process']:.3f} s; "
                    f"second calls {median['second']:.3f} s (medians of {args.starts}){where}"
                )
    finally:
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
