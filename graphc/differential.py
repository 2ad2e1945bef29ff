"""Differential testing: random graphs through every method × backend, compared with each other.

:func:`random_program` draws a DAG of any size from the whole op table (operands favour recent
nodes, so the graph is deep and shared; an operand outside its op's natural domain is squashed
into it with a sigmoid); :func:`compare` differentiates it by every method, compiles every result
with every backend, evaluates all of them on one batch of points and reports each value that
disagrees with ``dp`` on ``numpy``. Used by tests/test_differential.py (a bounded hypothesis run)
and bench/differential.py (a long run).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from graphc.api import value_and_grad
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.diff import METHODS
from graphc.diff.paths import count_paths
from graphc.graph import Graph
from graphc.ops import ALL_OPS, OPS, Derived
from graphc.parse import parse
from graphc.printing import to_text

VARIABLES = ("x", "y", "z")
# the ops central differences may straddle a kink of (derived from the entries, as ops.FUNCTIONS is)
KINKS = Derived(lambda: {name: op for name, op in ALL_OPS.items() if op.kink})
# Ops whose value jumps. NumPy's SIMD cosh, sinh, tanh, exp, log and arctan differ from the C
# library's (which the LLVM backend calls) in the last bit for a few percent of inputs; a jump
# downstream can turn that bit into an O(1) difference between backends. Disagreements on graphs
# with a jump are reported as such (Outcome.jumps), not as a bug of either backend.
JUMPS = frozenset(  # sign, floor, the comparisons and logic (no partial at all), and where (a select)
    name for name, op in OPS.items() if op.gate is not None or all(p is None for p in op.partials)
)
_ANY = (-3.0, 3.0)


@dataclass(frozen=True)
class Disagreement:
    """One output of one method on one backend that differs from dp on numpy at one point."""

    method: str
    backend: str
    output: str
    point: dict[str, float]
    got: float
    want: float


@dataclass
class Outcome:
    """What :func:`compare` checked, and what disagreed."""

    nodes: int = 0
    kernels: int = 0
    values: int = 0  # individual numbers compared
    skipped_points: int = 0  # points where the reference is not finite or too large to compare
    jumps: bool = False  # the graph has an op whose value jumps (see JUMPS)
    disagreements: list[Disagreement] = field(default_factory=list)


def random_program(rng: random.Random, size: int, ops: Sequence[str] = ()) -> str:
    """``size`` op nodes over x, y, z drawn from ``ops`` (default: the whole op table), summed at the end."""
    names = list(ops) or sorted(OPS)
    pool = list(VARIABLES)
    lines = []
    for i in range(size):
        op = OPS[rng.choice(names)]
        operands = []
        for lo, hi in op.domain or ((_ANY,) * op.arity):
            back = min(rng.expovariate(0.5), len(pool))  # mean 2 back; never inf
            text = pool[max(0, len(pool) - 1 - int(back))]
            if (lo, hi) != _ANY or rng.random() < 0.5:  # keep values finite: squash into the domain
                text = f"({lo:g} + {hi - lo:g}*sigmoid({text}))"
            operands.append(text)
        lines.append(f"t{i} = {_call(op.name, operands)}")
        pool.append(f"t{i}")
    lines.append(" + ".join(pool[-3:]))
    return "\n".join(lines)


def _call(name: str, operands: list[str]) -> str:
    op = OPS[name]
    if op.function:
        return f"{op.function}({', '.join(operands)})"
    if op.arity == 1:
        return f"{op.infix}({operands[0]})"
    return f"({operands[0]}) {op.infix} ({operands[1]})"


def points(rng: random.Random, count: int) -> dict[str, np.ndarray]:
    """``count`` points with x, y, z uniform in [-2, 2]."""
    return {name: np.array([rng.uniform(-2.0, 2.0) for _ in range(count)]) for name in VARIABLES}


def compare(
    program: str | Graph,
    at: dict[str, np.ndarray],
    *,
    methods: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    rel: float = 1e-7,
    numeric_rel: float = 1e-4,
    max_paths: int = 20_000,
    max_symbolic_nodes: int = 60,
) -> Outcome:
    """Every method × backend on ``program`` at the points ``at``, against dp on numpy.

    Exact methods must agree to ``rel`` (relative to the largest magnitude among the point's
    reference outputs, so cancellation in long sums is allowed for); ``numeric`` to
    ``numeric_rel``, and only on graphs without kinks. ``paths`` runs only below ``max_paths``
    paths and ``symbolic`` only on graphs of at most ``max_symbolic_nodes`` nodes (SymPy's
    expressions swell with depth). Points where the reference has a non-finite output or one
    above 1e6 are skipped (counted in the outcome).
    """
    graph = program if isinstance(program, Graph) else parse(program)
    methods = list(METHODS) if methods is None else list(methods)
    backends = [b for b in BACKENDS if b not in UNAVAILABLE] if backends is None else list(backends)
    outcome = Outcome(nodes=len(graph), jumps=any(graph.op(node) in JUMPS for node in range(len(graph))))
    args = {name: at[name] for name in graph.variables}
    reference = _flat(value_and_grad(graph, method="dp", backend="numpy")(**args))
    usable = np.all([np.isfinite(r) & (np.abs(r) <= 1e6) for r in reference], axis=0)
    outcome.skipped_points = int(np.size(usable) - np.count_nonzero(usable))
    scale = np.max([np.where(usable, np.abs(r), 0.0) for r in reference], axis=0)
    names = ["value", *(f"∂/∂{name}" for name in graph.variables)]
    smooth = not any(graph.op(node) in KINKS for node in range(len(graph)))
    for method in methods:
        if method == "paths" and sum(count_paths(graph).values()) > max_paths:
            continue
        if method == "symbolic" and len(graph) > max_symbolic_nodes:
            continue
        if method == "numeric" and not smooth:
            continue
        tolerance = numeric_rel if method == "numeric" else rel
        for backend in backends:
            got = _flat(value_and_grad(graph, method=method, backend=backend)(**args))
            outcome.kernels += 1
            for name, g, r in zip(names, got, reference, strict=True):
                with np.errstate(invalid="ignore"):  # inf - inf where the point is not usable
                    bad = usable & ~(np.abs(g - r) <= tolerance * np.maximum(1.0, scale))
                outcome.values += int(np.count_nonzero(usable))
                for i in np.flatnonzero(bad):
                    point = {k: float(v[i]) for k, v in args.items()}
                    outcome.disagreements.append(
                        Disagreement(method, backend, name, point, float(g[i]), float(r[i]))
                    )
    return outcome


def _flat(result: tuple[object, tuple[object, ...]]) -> list[np.ndarray]:
    value, gradient = result
    return [np.asarray(value, dtype=float), *(np.asarray(g, dtype=float) for g in gradient)]


def describe(program: str | Graph) -> str:
    """A short text of a failing program, for reports (its first 2,000 characters)."""
    text = program if isinstance(program, str) else to_text(program)
    return text if len(text) <= 2000 else text[:2000] + " …"
