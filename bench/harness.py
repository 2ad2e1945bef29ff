"""What the benchmark drivers (run.py: scalar problems, tensors.py: tensor problems, and the
single-question scripts) share: reading a comma list of names, a worker process's environment, a
failed worker's reason, timing a call or a block of calls, and measuring or rendering the results."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any


def names_from(
    given: str | None, known: dict[str, Any], what: str, parser: argparse.ArgumentParser
) -> list[str]:
    """The names in a comma list (``None``: every known one); an unknown name is a usage error."""
    if given is None:
        return list(known)
    names = [name.strip() for name in given.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown[0]!r} (the {what}s are: {', '.join(known)})")
    return names


def call_times(call: Callable[[], object], repeats: int) -> list[float]:
    """The wall-clock seconds of ``repeats`` calls of ``call``, one by one."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def block_timer(run: Callable[[], Any], block: float) -> Callable[[], tuple[float, float]]:
    """A timer of ``run``: each call times one block of calls and returns the mean wall-clock and
    CPU seconds (the process's, all threads) per call. The block's length is fixed here, from one
    call, so every block is the same work."""
    start = time.perf_counter()
    run()
    loops = max(1, round(block / max(time.perf_counter() - start, 1e-7)))

    def timed() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(loops):
            run()
        return (time.perf_counter() - start) / loops, (time.process_time() - cpu) / loops

    return timed


def one_thread_environment(bytecode: str, cache: str) -> dict[str, str]:
    """A worker's environment: one thread for BLAS and XLA, graphc's bytecode from ``bytecode`` and
    its disk cache in ``cache`` (never the user's, nor turned off)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.update(
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        PYTHONPYCACHEPREFIX=bytecode,  # never into another checkout
        GRAPHC_CACHE_DIR=cache,
    )
    env.pop("GRAPHC_NO_CACHE", None)
    return env


def failure(stderr: Iterable[str], code: int) -> str:
    """Why a worker failed: the last line it wrote to stderr, else how it ended."""
    lines = [line.strip() for line in stderr if line and line.strip()]
    if lines:
        return lines[-1][:200]
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def results_of(
    args: argparse.Namespace, run: Callable[[argparse.Namespace], dict[str, Any]]
) -> dict[str, Any]:
    """The results to write to ``args.out`` (made if missing): ``run``'s, or with ``--render`` the
    saved ones, measuring nothing."""
    os.makedirs(args.out, exist_ok=True)
    if args.render:
        with open(args.render, encoding="utf-8") as file:
            return json.load(file)  # type: ignore[no-any-return]
    return run(args)
