"""Benchmark graphc on tensor problems (T1-T3) against hand-written NumPy, JAX and PyTorch.

    python bench/tensors.py                            # every problem and installed system: ~5 minutes
    python bench/tensors.py --problems T1 --systems numpy-hand,jax --rounds 3 --out /tmp/tensors
    python bench/tensors.py --graphc /path/to/a/graphc/checkout   # graphc's column from another tree

Every system runs in fresh processes (bench/tensor_cell.py) pinned to one core with one thread.
Per problem: one untimed warm-up start per system (bytecode compiled, files in the OS cache), then
each system's worker starts (its time to the first gradient is the first of the --cold samples),
its loss and gradient are checked against numpy-hand's to 1e-10 relative (a system that disagrees
is not timed, and the run exits with status 1), further fresh starts give the other samples, and
the workers, all alive and waiting, are timed in turns, round after round: side by side, so a
change in the machine's load falls on every system alike.

Writes tensor_results.json and the "Tensor problems" section of RESULTS.md to --out (default:
this directory), keeping the rest of RESULTS.md as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import failure, names_from, one_thread_environment, results_of
from report import splice
from tensor_problems import PROBLEMS
from tensor_report import markdown, tensor_machine
from tensor_systems import REFERENCE, SYSTEMS

AGREEMENT = 1e-10  # relative, normwise per array: every system against numpy-hand
SLOW_START = 10.0  # seconds: a system whose first start took longer gets no further cold samples


class WorkerError(RuntimeError):
    pass


class Worker:
    """One tensor_cell.py process: JSON lines in, commands out, stderr kept for a failure's reason."""

    def __init__(self, command: list[str], env: dict[str, str], result: str) -> None:
        self.result = result  # where it saves its first loss and gradient
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, start_new_session=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(
            target=self._pump, args=(self.process.stderr, self.errors.append), daemon=True
        ).start()

    @staticmethod
    def _pump(stream: Any, put: Any) -> None:
        for line in stream:
            put(line)
        put(None)

    def receive(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"timeout ({timeout:g}s)") from None
        if line is None:
            self.process.wait()
            raise WorkerError(failure(self.errors, self.process.returncode))
        return json.loads(line)

    def ask(self, command: str, timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.receive(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS), help=f"from {', '.join(PROBLEMS)}")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"from {', '.join(SYSTEMS)}")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--cold", type=int, default=3, help="fresh starts per system for the first gradient")
    parser.add_argument("--block", type=float, default=0.25, help="seconds of calls per timed block")
    parser.add_argument("--batch", type=int, help="batch size instead of each problem's own (smoke tests)")
    parser.add_argument("--core", type=int, default=max(os.sched_getaffinity(0)), help="the core to pin to")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a worker may take to start")
    parser.add_argument("--graphc", help="a graphc checkout to import graphc from (default: this one)")
    parser.add_argument("--out", default=HERE, help="directory for tensor_results.json and RESULTS.md")
    parser.add_argument(
        "--render", metavar="JSON", help="measure nothing: write RESULTS.md's section from it"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other problems' cells of --out's tensor_results.json: the problems measured "
        "replace theirs, and the page says which run each problem's rows come from",
    )
    args = parser.parse_args(argv)
    args.problems = names_from(args.problems, PROBLEMS, "problem", parser)
    args.systems = names_from(args.systems, SYSTEMS, "system", parser)
    if REFERENCE not in args.systems:
        args.systems.insert(0, REFERENCE)  # the check needs it
    if args.rounds < 1 or args.cold < 1 or args.block <= 0:
        parser.error("--rounds and --cold must be >= 1 and --block > 0")
    return args


def invocation(args: argparse.Namespace) -> str:
    words = ["python bench/tensors.py"]
    defaults = parse_args([])
    for key in ("problems", "systems", "rounds", "cold", "block", "batch", "graphc"):
        value = getattr(args, key)
        if value != getattr(defaults, key):
            words.append(f"--{key} {','.join(value) if isinstance(value, list) else value}")
    if args.merge:
        words.append("--merge")
    return " ".join(words)


def merged(previous: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """``previous`` with the problems of ``results`` re-measured: their cells replaced, the run
    that measured them listed under ``remeasured`` (the page's header stays the first run's)."""
    problems = results["settings"]["problems"]
    cells = [cell for cell in previous["cells"] if cell["problem"] not in problems] + results["cells"]
    order = {name: index for index, name in enumerate(PROBLEMS)}
    cells.sort(key=lambda cell: order.get(cell["problem"], len(order)))  # stable: systems keep their order
    runs = [run for run in previous.get("remeasured", []) if set(run["problems"]) - set(problems)]
    runs.append(
        {
            "problems": problems,
            "command": results["settings"]["command"],
            "date": results["machine"]["date"],
            "graphc_commit": results["machine"]["graphc_commit"],
            "versions": results["machine"]["versions"],
            "settings": results["settings"],
        }
    )
    return {**previous, "cells": cells, "remeasured": runs}


def environment(scratch: str, fresh: str) -> dict[str, str]:
    """One thread everywhere; no cache from an earlier process (``fresh`` is the process's own
    directory) but the bytecode, shared (see the module's docstring)."""
    env = one_thread_environment(os.path.join(scratch, "bytecode"), os.path.join(fresh, "graphc"))
    env.update(JAX_PLATFORMS="cpu", TORCHINDUCTOR_CACHE_DIR=os.path.join(fresh, "inductor"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up start writes the bytecode every start reads
    return env


def start(args: argparse.Namespace, scratch: str, system: str, problem: str, once: bool) -> Worker:
    fresh = tempfile.mkdtemp(prefix=f"{problem}.{system}-", dir=scratch)
    result = os.path.join(fresh, "result.npz")
    command = [
        "taskset", "-c", str(args.core), sys.executable, os.path.join(HERE, "tensor_cell.py"),
        "--system", system, "--problem", problem, "--arrays", os.path.join(scratch, f"{problem}.npz"),
        "--result", result, "--block", str(args.block), *(["--graphc", args.graphc] if args.graphc else []),
        *(["--once"] if once else []),
    ]  # fmt: skip
    return Worker(command, environment(scratch, fresh), result)


def first_gradient(worker: Worker, timeout: float) -> tuple[float | None, dict[str, Any]]:
    """Seconds from the process's start to its first gradient (None if it skipped), and its message."""
    message = worker.receive(timeout)
    return (None if "skipped" in message else time.perf_counter() - worker.started), message


def add_start(cell: dict[str, Any], seconds: float | None, message: dict[str, Any]) -> None:
    """One fresh start's time to the first gradient: wall clock, and the process's CPU time."""
    cell.setdefault("first_s_all", []).append(seconds)
    cell.setdefault("first_cpu_s_all", []).append(message.get("cpu_s"))


def disagreement(result: str, reference: str, names: tuple[str, ...]) -> tuple[float, str]:
    """The largest relative difference from the reference's loss and gradients, and where it is."""
    worst, where = 0.0, "loss"
    with np.load(result) as got, np.load(reference) as want:
        for name in ("loss", *names):
            g, w = got[name], want[name]
            if g.shape != w.shape:
                return float("inf"), f"{name} (shape {g.shape}, not {w.shape})"
            scale = float(np.abs(w).max(initial=0.0)) or 1.0
            error = float(np.abs(g - w).max(initial=0.0)) / scale if np.isfinite(g).all() else float("inf")
            if error > worst or np.isnan(error):
                worst, where = error, name
    return worst, where


def measure(args: argparse.Namespace, problem: str, scratch: str) -> list[dict[str, Any]]:
    """Every system on one problem, in the phases the module's docstring lists."""
    spec = PROBLEMS[problem]
    np.savez(os.path.join(scratch, f"{problem}.npz"), **spec.arrays(args.batch))
    cells = {name: {"problem": problem, "system": name, "status": "ok"} for name in args.systems}
    for name in args.systems:
        cells[name]["status"] = SYSTEMS[name].unavailable(spec) or "ok"
    session = Session(args, scratch, problem, cells)
    try:
        session.warm_up()
        session.start_workers()
        session.check(spec.wrt)
        session.cold_starts()
        session.time_rounds()
    finally:
        session.close()
    for cell in cells.values():
        for figure in ("first", "first_cpu", "step", "loss", "step_cpu", "loss_cpu"):
            values = [value for value in cell.get(f"{figure}_s_all", []) if value is not None]
            if values:
                cell[f"{figure}_s"] = statistics.median(values)
        cell["batch"] = args.batch or spec.batch
    return list(cells.values())


class Session:
    """One problem's workers and the cells their figures go to (a cell whose status is not "ok"
    takes no further part)."""

    def __init__(self, args: argparse.Namespace, scratch: str, problem: str, cells: dict[str, Any]) -> None:
        self.args, self.scratch, self.problem, self.cells = args, scratch, problem, cells
        self.workers: dict[str, Worker] = {}

    def running(self) -> list[str]:
        return [name for name, cell in self.cells.items() if cell["status"] == "ok"]

    def start(self, system: str, once: bool) -> Worker:
        return start(self.args, self.scratch, system, self.problem, once)

    def warm_up(self) -> None:
        """One untimed start per system: bytecode written, files in the OS's cache, skips found."""
        for name in self.running():
            warm = self.start(name, once=True)
            try:
                _, message = first_gradient(warm, self.args.timeout)
                if "skipped" in message:
                    self.cells[name]["status"] = f"skipped: {message['skipped']}"
            except WorkerError as error:
                self.cells[name]["status"] = f"failed: {error}"
            warm.kill()

    def start_workers(self) -> None:
        """The workers that will be timed, started one at a time: each start is a cold sample."""
        for name in self.running():
            worker = self.start(name, once=False)
            try:
                seconds, message = first_gradient(worker, self.args.timeout)
                add_start(self.cells[name], seconds, message)
                self.cells[name]["build_s"] = message["build_s"]
                worker.receive(self.args.timeout)  # ready: its loss warmed up too
                self.workers[name] = worker
            except WorkerError as error:
                self.cells[name]["status"] = f"failed: {error}"
                worker.kill()

    def check(self, names: tuple[str, ...]) -> None:
        """Every system's first loss and gradient against the reference's; one that disagrees is
        not timed."""
        reference = self.workers.get(REFERENCE)
        for name in list(self.workers):
            if reference is None:
                self.drop(name, f"failed: no {REFERENCE} result to check against")
                continue
            error, where = disagreement(self.workers[name].result, reference.result, names)
            self.cells[name]["error"] = error
            if not error <= AGREEMENT:
                self.drop(name, f"failed: {where} differs from {REFERENCE}'s by {error:.1e} relative")

    def cold_starts(self) -> None:
        for _ in range(self.args.cold - 1):
            for name in list(self.workers):
                if self.cells[name]["first_s_all"][0] >= SLOW_START:
                    continue
                cold = self.start(name, once=True)
                try:
                    add_start(self.cells[name], *first_gradient(cold, self.args.timeout))
                except WorkerError as error:
                    self.drop(name, f"failed: a fresh start: {error}")
                cold.kill()

    def time_rounds(self) -> None:
        """Each round times every worker in turn, starting one later than the round before."""
        for index in range(self.args.rounds):
            names = list(self.workers)
            shift = index % len(names) if names else 0
            for name in names[shift:] + names[:shift]:
                try:
                    for figure in ("step", "loss"):
                        answer = self.workers[name].ask(figure, 60 + 20 * self.args.block)
                        self.cells[name].setdefault(f"{figure}_s_all", []).append(answer["seconds"])
                        self.cells[name].setdefault(f"{figure}_cpu_s_all", []).append(answer["cpu_seconds"])
                except WorkerError as error:
                    self.drop(name, f"failed: while timed: {error}")

    def drop(self, name: str, status: str) -> None:
        self.cells[name]["status"] = status
        worker = self.workers.pop(name, None)
        if worker is not None:
            worker.kill()

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()


def run(args: argparse.Namespace) -> dict[str, Any]:
    cells = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="graphc-tensors-") as scratch:
        for problem in args.problems:
            for cell in measure(args, problem, scratch):
                cells.append(cell)
                print(f"{problem}: {cell['system']:14s} {cell['status']}", flush=True)
    settings = {
        key: getattr(args, key) for key in ("problems", "systems", "rounds", "cold", "block", "batch", "core")
    }
    settings.update(
        command=invocation(args),
        graphc=args.graphc or os.path.dirname(HERE),
        agreement=AGREEMENT,
        load_average=[load, os.getloadavg()[0]],
    )
    return {"machine": tensor_machine(settings["graphc"]), "settings": settings, "cells": cells}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = results_of(args, run)
    if not args.render:
        previous = os.path.join(args.out, "tensor_results.json")
        if args.merge and os.path.exists(previous):
            with open(previous, encoding="utf-8") as file:
                results = merged(json.load(file), results)
        with open(os.path.join(args.out, "tensor_results.json"), "w", encoding="utf-8") as file:
            json.dump(results, file, indent=1)
    path = os.path.join(args.out, "RESULTS.md")
    splice(path, "tensor", markdown(results))
    print(f"wrote {path}")
    disagreed = [cell for cell in results["cells"] if "differs from" in cell["status"]]
    return 1 if disagreed else 0


if __name__ == "__main__":
    sys.exit(main())
