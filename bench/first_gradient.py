"""Time from a fresh process to graphc's first loss and gradient on the tensor problems, with an
empty disk cache ("fresh") and with the cache a previous process filled ("cached").

    python bench/first_gradient.py                      # T1 and T2, graphc-llvm, 5 starts each
    python bench/first_gradient.py --problems T1 --starts 7 --backend numpy --graphc /other/checkout
    python bench/first_gradient.py --problems T1,T3 --starts 7 --graphc /work/main,.   # taking turns

Each start is a new interpreter pinned to one core (``taskset``, where there is one) with one BLAS
thread, which loads the problem's arrays (bench/tensor_problems.py's, made once by the parent),
imports graphc, builds the loss and gradient kernel and the loss kernel,
as bench/tensor_systems.py's graphc systems do, and computes the first loss and gradient. It
reports the wall-clock seconds from the parent starting it to that first gradient, the process's
CPU seconds by then, and, inside the process, the seconds from the text to the first gradient
after graphc is imported (``in-process``), then the time of the next loss and gradient and loss
calls (``second calls``: where deferred work shows). Medians over the starts; bytecode is written
once, before the first start, to a private directory. The machine's load average is printed: on a
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
    """The problem's arrays (bench/tensor_problems.py's: its data and seeded weights), saved to a
    .npz in ``scratch``."""
    path = os.path.join(scratch, f"{problem}.npz")
    np.savez(path, **PROBLEMS[problem].arrays())
    return path


def start(
    args: argparse.Namespace, checkout: str, problem: str, data: str, env: dict[str, str]
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
        help="the checkout to import graphc from; several, separated by commas, take turns start by start",
    )
    args = parser.parse_args()
    checkouts = args.graphc.split(",")
    scratch = tempfile.mkdtemp(prefix="graphc-first-")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("GRAPHC_NO_CACHE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "bytecode")
    print(f"load average at the start: {os.getloadavg()[0]:.1f}; graphc from {', '.join(checkouts)}")
    try:
        for problem in args.problems.split(","):
            data = arrays_of(problem, scratch)
            runs: dict[tuple[int, str], list[dict[str, float]]] = {}
            for c, checkout in enumerate(checkouts):
                env["GRAPHC_CACHE_DIR"] = os.path.join(scratch, f"warm-up-{c}")
                start(args, checkout, problem, data, env)  # bytecode written, files in the OS's cache
                env["GRAPHC_CACHE_DIR"] = os.path.join(scratch, f"{problem}-cached-{c}")
                start(args, checkout, problem, data, env)  # fills the cache every cached start reads
                runs[c, "fresh"], runs[c, "cached"] = [], []
            for i in range(args.starts):
                for c, checkout in enumerate(checkouts):
                    env["GRAPHC_CACHE_DIR"] = os.path.join(scratch, f"{problem}-fresh-{c}-{i}")
                    runs[c, "fresh"].append(start(args, checkout, problem, data, env))
                    env["GRAPHC_CACHE_DIR"] = os.path.join(scratch, f"{problem}-cached-{c}")
                    runs[c, "cached"].append(start(args, checkout, problem, data, env))
            for (c, kind), figures in runs.items():
                median = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
                which = f" [{checkouts[c]}]" if len(checkouts) > 1 else ""
                print(
                    f"{problem} {args.backend} {kind:6}: first gradient {median['wall']:.3f} s wall, "
                    f"{median['cpu']:.3f} s CPU; in-process {median['in_process']:.3f} s; "
                    f"second calls {median['second']:.3f} s (medians of {args.starts}){which}"
                )
    finally:
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
