"""Benchmark graphc against its peers: every (system, problem) cell in a fresh process with a timeout.

    python bench/run.py --quick                      # ~10 minutes: 100,000 points, 12 s timeouts
    python bench/run.py                              # the full run: 1,000,000 points, median of 7
    python bench/run.py --problems B1,B6 --systems graphc-llvm,jax --out /tmp/bench

Writes RESULTS.md, results.json and b5_compile.png to --out (default: this directory). A missing
peer is a skipped column; a crash or timeout is recorded in its cell and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # graphc from a checkout
sys.path.insert(0, HERE)

from harness import failure, names_from, one_thread_environment, results_of
from problems import PROBLEMS
from report import machine, write_outputs
from systems import REFERENCE, SYSTEMS

FULL = {"points": 1_000_000, "repeats": 7, "timeout": 600.0}
QUICK = {"points": 100_000, "repeats": 5, "timeout": 12.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark graphc against its peers (see bench/RESULTS.md).")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100,000 points (fewer on B5-10k, B5-100k, B6), 5 repeats, 12 s timeouts",
    )
    parser.add_argument("--problems", help=f"comma-separated, from: {', '.join(PROBLEMS)} (default: all)")
    parser.add_argument("--systems", help=f"comma-separated, from: {', '.join(SYSTEMS)} (default: all)")
    parser.add_argument("--timeout", type=float, help="seconds per cell (default: 600, --quick: 12)")
    parser.add_argument("--points", type=int, help="batch size N (default: 1,000,000, --quick: 100,000)")
    parser.add_argument("--repeats", type=int, help="timed repeats after warm-up (default: 7, --quick: 5)")
    parser.add_argument("--out", default=HERE, help="directory for RESULTS.md, results.json, the plot")
    parser.add_argument(
        "--render", metavar="JSON", help="measure nothing: write RESULTS.md and the plot from a results.json"
    )
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.problems = names_from(args.problems, PROBLEMS, "problem", parser)
    args.systems = names_from(args.systems, SYSTEMS, "system", parser)
    if args.points < 1 or args.repeats < 1 or args.timeout <= 0:
        parser.error("--points and --repeats must be >= 1 and --timeout > 0")
    return args


def invocation(args: argparse.Namespace) -> str:
    """The command that repeats this run: the options that differ from their defaults."""
    defaults = QUICK if args.quick else FULL
    words = ["python bench/run.py", *(["--quick"] if args.quick else [])]
    words += [f"--{key} {getattr(args, key):g}" for key in defaults if getattr(args, key) != defaults[key]]
    for key, known in (("problems", PROBLEMS), ("systems", SYSTEMS)):
        if getattr(args, key) != list(known):
            words.append(f"--{key} {','.join(getattr(args, key))}")
    return " ".join(words)


def points_for(problem: str, args: argparse.Namespace) -> int:
    """The batch size: N, or in --quick a heavy problem's smaller batch (each cell records its own)."""
    quick = PROBLEMS[problem].quick_points
    return min(args.points, quick) if args.quick and quick else args.points


def bytecode(scratch: str) -> str:
    """The run's own directory of graphc's bytecode (PYTHONPYCACHEPREFIX), in its scratch."""
    return os.path.join(scratch, "bytecode")


def compile_graphc(scratch: str) -> None:
    """Byte-compile graphc into :func:`bytecode`, for the cells to import from: an installed
    package comes compiled (pip compiles it), a checkout may not (PYTHONDONTWRITEBYTECODE), and
    compiling graphc's LLVM backend from source took 20 ms of every graphc-llvm build."""
    import graphc

    env = dict(os.environ, PYTHONPYCACHEPREFIX=bytecode(scratch))
    package = os.path.dirname(os.path.abspath(graphc.__file__))
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], env=env, check=True)


def runtime_directory(scratch: str) -> str:
    return os.path.join(scratch, "graphc-runtime")


def prepare_runtime(scratch: str) -> float:
    """Compile graphc's runtime (its vector functions, kernel helpers and tape interpreter:
    graph-independent code, compiled once per machine into graphc's disk cache, where a user's first LLVM build puts it)
    into the run's own cache directory; the seconds it took, or -1 if it could not be kept."""
    env = dict(os.environ, GRAPHC_CACHE_DIR=runtime_directory(scratch), PYTHONPYCACHEPREFIX=bytecode(scratch))
    env.pop("GRAPHC_NO_CACHE", None)
    code = "from graphc.backends.llvm import prepare_runtime; print(prepare_runtime())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def cell_cache(scratch: str, name: str) -> str:
    """A cell's own graphc cache directory: the prepared runtime and no compiled kernel, so no cell
    reuses machine code another compiled."""
    directory = os.path.join(scratch, f"cache-{name}")
    prepared = os.path.join(runtime_directory(scratch), "runtime")
    os.makedirs(directory, mode=0o700)
    if os.path.isdir(prepared):
        shutil.copytree(prepared, os.path.join(directory, "runtime"))
    return directory


def run_cell(
    system: str, problem: str, args: argparse.Namespace, scratch: str, check_only: bool = False
) -> dict:
    """Run one cell in a fresh process; its figures, and a status: ok, timeout (Ns) or failed: why."""
    records = os.path.join(scratch, f"{problem}.{system}.jsonl")
    check = os.path.join(scratch, f"{problem}.{system}.npy")
    command = [
        sys.executable, os.path.join(HERE, "cell.py"), "--system", system, "--problem", problem,
        "--points", str(points_for(problem, args)), "--repeats", str(args.repeats),
        "--records", records, "--check", check,
    ]  # fmt: skip
    if check_only:
        command.append("--check-only")
    cache = cell_cache(scratch, f"{problem}.{system}" + ".check" * check_only)
    env = one_thread_environment(bytecode(scratch), cache)  # bytecode: see compile_graphc
    timeout = args.timeout * PROBLEMS[problem].weight * (3 if check_only else 1)
    start = time.perf_counter()
    process = subprocess.Popen(  # in the scratch directory: CasADi's JIT leaves its C files in the cwd
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        cwd=scratch,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=timeout)
        reason = failure(stderr.splitlines(), process.returncode)
        status = "ok" if process.returncode == 0 else f"failed: {reason}"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the cell and anything it started (gcc, ...)
        process.communicate()
        status = f"timeout ({timeout:g}s)"
    figures: dict[str, Any] = {"status": status, "wall_s": time.perf_counter() - start}
    if not check_only:
        figures["points"] = points_for(problem, args)
    if os.path.exists(records):
        with open(records, encoding="utf-8") as file:
            for line in file:
                figures.update(json.loads(line))
    figures["check_file"] = check if os.path.exists(check) else None
    return figures


def relative_error(check_file: str | None, reference_file: str | None) -> float | None:
    """max over partials of max|g - ref| / max|ref| on the check batch (normwise per partial)."""
    if check_file is None or reference_file is None:
        return None
    got, want = np.load(check_file), np.load(reference_file)
    if got.shape != want.shape:
        return float("inf")
    worst = 0.0
    for g, r in zip(got, want, strict=True):
        finite = np.isfinite(r)
        scale = np.abs(r[finite]).max(initial=0.0) or 1.0
        with np.errstate(invalid="ignore"):
            difference = np.abs(g[finite] - r[finite])
        worst = max(
            worst, float(difference.max(initial=0.0)) / scale if np.isfinite(difference).all() else np.inf
        )
    return worst


def run(args: argparse.Namespace) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    gave_up: dict[str, str] = {}  # system -> the smaller size of a series it timed out or failed on
    order = sorted(args.problems, key=lambda name: (PROBLEMS[name].size, args.problems.index(name)))
    order = [name for name in args.problems if not PROBLEMS[name].size] + [
        n for n in order if PROBLEMS[n].size
    ]
    with tempfile.TemporaryDirectory(prefix="graphc-bench-") as scratch:
        compile_graphc(scratch)
        runtime_s = prepare_runtime(scratch) if "graphc-llvm" in args.systems else None
        if runtime_s is not None:
            print(f"graphc's runtime compiled in {runtime_s:.3f} s", flush=True)
        for problem in order:
            reference = run_cell(REFERENCE.name, problem, args, scratch, check_only=True)
            print(f"{problem}: reference {reference['status']}", flush=True)
            for system in args.systems:
                reason = SYSTEMS[system].unavailable(problem)
                if reason is None and PROBLEMS[problem].size and system in gave_up:
                    reason = f"not run: gave up on {gave_up[system]}"
                if reason is not None:
                    cells.append({"problem": problem, "system": system, "status": reason})
                    continue
                figures = run_cell(system, problem, args, scratch)
                figures["error"] = relative_error(figures.pop("check_file"), reference["check_file"])
                cells.append({"problem": problem, "system": system, **figures})
                if PROBLEMS[problem].size and figures["status"] != "ok" and "build_s" not in figures:
                    gave_up[system] = problem  # no compile time at this size: none at a larger one
                print(f"{problem}: {system:17s} {figures['status']}  ({figures['wall_s']:.1f} s)", flush=True)
    settings = {
        key: getattr(args, key) for key in ("quick", "points", "repeats", "timeout", "problems", "systems")
    }
    settings["command"] = invocation(args)
    settings["graphc_cache"] = "a directory per cell, holding graphc's runtime"
    settings["graphc_runtime_s"] = runtime_s
    return {"machine": machine(), "settings": settings, "reference": REFERENCE.summary, "cells": cells}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = results_of(args, run)
    for path in write_outputs(results, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
