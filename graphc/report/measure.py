"""Measuring one cell of a report: one differentiation method on one graph.

A cell differentiates the graph, counts the gradient graph (its operations and edges as a DAG,
its size as a tree), compiles it with each backend (with the disk cache off: a compile time is
LLVM's work, not a cache hit) and times the gradient's evaluation on a batch of
:data:`EVAL_BATCH` points (a single point's call is mostly fixed overhead and noise). A cell
runs under a hard deadline (the budget, by ``SIGALRM`` where the platform has it), so a report
never hangs on one cell; the caller also predicts each cell's cost and skips hopeless ones.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.backends import compile_graph
from graphc.diff import METHODS, OPTIONS, TooManyPathsError, differentiate
from graphc.errors import GraphcError
from graphc.graph import Graph

EVAL_SECONDS = 0.05  # how long to repeat the gradient evaluation for a stable time per call
EVAL_CALLS = 1000
EVAL_BATCH = 1000  # points per timed evaluation: eval_s is the time of one call on this many


def report_methods() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every method a report measures: each registered method, and ``symbolic+cse`` beside
    ``symbolic`` (any method taking ``cse`` is measured with and without it).

    The two need not give gradient graphs of the same size. Both count the DAG that SymPy's
    result is built into, hash-consed; SymPy's sums and products are n-ary, and the graph holds
    them as binary nodes folded in SymPy's order, so hash-consing shares only the identical
    folds. ``sympy.cse`` also takes out parts of sums and products (``x*y + z`` out of
    ``exp(x*y + z + w)`` and ``exp(x*y + z)*w``), which the graph then shares: usually fewer
    nodes on large graphs (the mlp family), sometimes a few more, where its grouping splits a
    product that the fold would have shared. The tree sizes are of the same derivatives, rebuilt
    from differently grouped terms: equal or nearly so.
    """
    methods: dict[str, tuple[str, dict[str, Any]]] = {}
    for name in METHODS:
        methods[name] = (name, {"cse": False} if "cse" in OPTIONS[name] else {})
        if "cse" in OPTIONS[name]:
            methods[f"{name}+cse"] = (name, {"cse": True})
    return methods


@dataclass
class Row:
    """One measured (or skipped) cell; ``None`` where nothing was measured."""

    size: int | None
    method: str
    paths: int | None  # None when the graph was not even built
    nodes: int | None = None
    edges: int | None = None
    tree_size: float | None = None
    differentiate_s: float | None = None
    compile_s: float | None = None  # the first backend's; every backend's is in ``backends``
    eval_s: float | None = None  # one call on a batch of EVAL_BATCH points
    status: str = "ok"
    backends: dict[str, dict[str, float | None]] = field(default_factory=dict)
    peak_rss_mb: float | None = None  # the process's peak resident memory after the cell (monotonic)
    multiplications: int | None = None  # a Jacobian family's: per point, as kernel.info counts them
    order: str | None = None  # a Jacobian family's: the bracketing (or the mode's pass) used
    seconds: float = 0.0  # the cell's cost (repeated evaluations counted once), to predict the next

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        tree = self.tree_size
        return {
            "size": self.size,
            "method": self.method,
            "paths": self.paths,
            "nodes": self.nodes,
            "edges": self.edges,
            "tree_size": None if tree is None else (int(tree) if tree < 2**53 else _json_float(tree)),
            "differentiate_s": self.differentiate_s,
            "compile_s": self.compile_s,
            "eval_s": self.eval_s,
            "status": self.status,
            "backends": self.backends,
            "peak_rss_mb": self.peak_rss_mb,
            **({} if self.multiplications is None else {"multiplications": self.multiplications}),
            **({} if self.order is None else {"order": self.order}),
        }


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


class _OverBudget(BaseException):
    """Raised by the deadline's alarm; a BaseException so that no ``except Exception`` in the
    measured code (SymPy's, graphc's) can swallow it."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_OverBudget` in the main thread once ``seconds`` have passed (a no-op where
    there is no interval timer or off the main thread)."""
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if seconds is None or not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _OverBudget

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def gradient_graph(derivative: Graph) -> Graph:
    """The derivative graph keeping only the partials (what ``graphc.grad`` compiles)."""
    first = derivative.info["function_outputs"]
    gradient = derivative.copy()
    gradient.set_outputs(derivative.outputs[first:], derivative.output_names[first:])
    return gradient


def dag_size(graph: Graph) -> tuple[int, int]:
    """Nodes and edges (operand slots) that the outputs depend on."""
    keep = graph.reachable()
    nodes = edges = 0
    for node, kept in enumerate(keep):
        if kept:
            nodes += 1
            edges += len(graph.args(node))
    return nodes, edges


def tree_size(graph: Graph) -> float:
    """The outputs' size as trees (every shared node counted once per use), summed over outputs.

    A float: trees of shared graphs outgrow any integer worth printing (``inf`` past 1e308).
    """
    keep = graph.reachable()
    size = [0.0] * len(graph)
    for node, kept in enumerate(keep):
        if kept:
            size[node] = 1.0 + sum(size[arg] for arg in graph.args(node))
    return sum(size[output] for output in graph.outputs)


def evaluation_batch(graph: Graph, seed: int, points: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """A reproducible batch of ``points`` points, every variable in [0.5, 1] (inside every op's
    domain)."""
    rng = np.random.default_rng(random.Random(f"point:{seed}").getrandbits(64))
    return {name: rng.uniform(0.5, 1.0, points) for name in graph.variables}


@contextmanager
def disk_cache_off() -> Iterator[None]:
    """Compile with the backends' disk cache off (``GRAPHC_NO_CACHE``), as a fresh machine would."""
    previous = os.environ.get("GRAPHC_NO_CACHE")
    os.environ["GRAPHC_NO_CACHE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["GRAPHC_NO_CACHE"]
        else:
            os.environ["GRAPHC_NO_CACHE"] = previous


def time_call(function: Any, point: dict[str, Any]) -> float:
    """Seconds per call, from as many calls as fit in ``EVAL_SECONDS`` (at least one)."""
    calls, start = 0, time.perf_counter()
    elapsed = 0.0
    while calls < EVAL_CALLS and (calls == 0 or elapsed < EVAL_SECONDS):
        function(**point)
        calls += 1
        elapsed = time.perf_counter() - start
    return elapsed / calls


def describe_count(n: int) -> str:
    """A path count for a status: ``2^40`` for powers of two, else the number with commas."""
    exponent = n.bit_length() - 1
    if n > 1024 and n == 1 << exponent:
        return f"2^{exponent}"
    return f"{n:,}" if n < 10**15 else f"{n:.2e}".replace("e+", "e")


def warm_up(method: str, backends: Sequence[str]) -> None:
    """Run ``method`` and the backends once on a tiny graph, unmeasured: the first call pays for
    imports and caches (SymPy's above all), which would otherwise land on the first cell."""
    from graphc.parse import parse

    graph = parse("sin(x*y) + x")
    measure(graph, None, method, 2, backends=backends, budget=None, max_paths=10)


def measure(
    graph: Graph,
    size: int | None,
    method: str,
    paths: int,
    *,
    backends: Sequence[str],
    budget: float | None,
    max_paths: int,
    seed: int = 0,
) -> Row:
    """Differentiate ``graph`` by the report method ``method``, count, compile and time it."""
    base, options = report_methods()[method]
    if "max_paths" in OPTIONS[base]:
        options = {**options, "max_paths": max_paths}
    row = Row(size, method, paths)
    return _cell(row, budget, lambda: _run(graph, row, base, options, backends, seed))


def _cell(row: Row, budget: float | None, work: Callable[[], float]) -> Row:
    """``row`` filled by ``work()`` within ``budget`` seconds (it returns the seconds of its own
    repeats, which the row's time leaves out), or with the status saying why it stopped."""
    start = time.perf_counter()
    repeats = 0.0
    try:
        with deadline(budget):
            repeats = work()
    except _OverBudget:
        row.status = f"over budget (stopped after {budget:g} s)"
    except TooManyPathsError as err:
        row.status = f"skipped: {describe_count(err.paths)} paths"
    except MemoryError:
        row.status = "error: out of memory"
    except GraphcError as err:
        row.status = f"error: {err}"
    row.seconds = time.perf_counter() - start - repeats
    row.peak_rss_mb = peak_rss_mb()
    return row


def measure_jacobian(
    graph: Graph,
    size: int | None,
    mode: str,
    paths: int,
    *,
    backends: Sequence[str],
    budget: float | None,
    seed: int = 0,
) -> Row:
    """A Jacobian family's cell: ``graphc.jacobian(graph, wrt="x", mode=mode)`` built and compiled
    with each backend (its time is the compile column: building the Jacobian graph is part of it,
    so ``differentiate_s`` stays None), the compiled graph counted, its multiplications per point
    (``kernel.info``) kept, and one call timed on a batch of EVAL_BATCH points ``x``."""
    row = Row(size, mode, paths)
    return _cell(row, budget, lambda: _run_jacobian(graph, row, mode, backends, seed))


def jacobian_inputs(graph: Graph, seed: int, points: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """A batch of ``points`` inputs ``x`` (in [0.5, 1]) and one draw of every other input (the
    weights, in [-1, 1]), each of its declared shape: reproducible from ``seed``."""
    rng = np.random.default_rng(random.Random(f"jacobian:{seed}").getrandbits(64))
    values = {}
    for name in graph.variables:
        shape = tuple(int(d) for d in graph.shape(graph.variable(name)))  # a family's shapes are concrete
        values[name] = (
            rng.uniform(0.5, 1.0, (points, *shape)) if name == "x" else rng.uniform(-1.0, 1.0, shape)
        )
    return values


def _run_jacobian(graph: Graph, row: Row, mode: str, backends: Sequence[str], seed: int) -> float:
    from graphc.api import jacobian

    def counted(kernel: Any) -> None:
        row.nodes, row.edges = dag_size(kernel.graph)
        row.tree_size = tree_size(kernel.graph)
        row.multiplications, row.order = kernel.info["multiplications"], kernel.info["order"]

    point = jacobian_inputs(graph, seed)
    return _time_backends(row, backends, point, lambda backend: jacobian(graph, "x", mode, backend), counted)


def peak_rss_mb() -> float | None:
    """The process's peak resident set size so far, in MB (None where the platform lacks it).

    Cheap, but monotonic: a cell shows its own peak only when it is the largest so far.
    """
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)  # bytes on macOS, else KB


def _timed(function: Any, *args: Any) -> tuple[Any, float]:
    """``function(*args)`` and its time, from one run: a repeat would hit caches (SymPy's)."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def _run(
    graph: Graph, row: Row, base: str, options: dict[str, Any], backends: Sequence[str], seed: int
) -> float:
    """Fill ``row``; return the seconds spent repeating evaluations beyond the first call."""
    derivative, row.differentiate_s = _timed(lambda: differentiate(graph, None, base, **options))
    gradient = gradient_graph(derivative)
    row.nodes, row.edges = dag_size(gradient)
    row.tree_size = tree_size(gradient)
    point = evaluation_batch(graph, seed)
    return _time_backends(row, backends, point, lambda backend: compile_graph(gradient, backend))


def _time_backends(
    row: Row,
    backends: Sequence[str],
    point: Any,
    build: Callable[[str], Any],
    counted: Callable[[Any], None] | None = None,
) -> float:
    """Each backend's kernel ``build(backend)``, built with the disk cache off (timed once) and
    called on ``point`` (timed): the row's backends and its compile and eval columns (the first
    backend's); ``counted`` sees the first kernel. Returns the seconds spent repeating calls."""
    repeats = 0.0
    for backend in backends:
        with disk_cache_off():
            kernel, compiled = _timed(build, backend)
        if counted is not None and backend == backends[0]:
            counted(kernel)
        start = time.perf_counter()
        per_call = time_call(kernel, point)
        row.backends[backend] = {"compile_s": compiled, "eval_s": per_call}
        repeats += max(0.0, time.perf_counter() - start - per_call)
    first = row.backends[backends[0]] if backends else {}
    row.compile_s, row.eval_s = first.get("compile_s"), first.get("eval_s")
    return repeats
