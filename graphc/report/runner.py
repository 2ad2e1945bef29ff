"""Running a report: every method at every size, predicting each cell's cost before running it.

A cell is not run when its predicted cost is over the budget: the ``paths`` method when the
graph has more paths than ``max_paths`` (counted exactly, never enumerated), any method when the
time of its last measured size, scaled by the growth of the graph and of the method's own time
from size to size, exceeds the budget. Once a method is over budget it stays so for the larger
sizes. What is predicted wrongly is stopped by the cell's deadline, so a report runs past its
budget by at most one cell's worth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from graphc.diff import MAX_PATHS, OPTIONS, count_paths
from graphc.families import Family
from graphc.graph import Graph
from graphc.parse import parse
from graphc.report.growth import Fit, fit
from graphc.report.measure import (
    EVAL_BATCH,
    Row,
    _OverBudget,
    deadline,
    describe_count,
    measure,
    measure_jacobian,
    report_methods,
    warm_up,
)

DEFAULT_BUDGET = 10.0
FIT_METRICS = {  # metric: how the fit lines name it
    "multiplications": "multiplications",  # a Jacobian family's only
    "nodes": "DAG",
    "tree_size": "tree",
    "differentiate_s": "differentiate time",
    "eval_s": "eval time",
}

MIN_FIT_SECONDS = 1e-3

Step = Callable[[str], None]


@dataclass
class Report:
    """What was asked and what was measured; ``rows`` grows as cells finish."""

    methods: list[str]
    backends: list[str]
    budget: float | None = DEFAULT_BUDGET
    max_paths: int = MAX_PATHS
    family: Family | None = None
    sizes: list[int] = field(default_factory=list)
    width: int | None = None
    seed: int = 0
    expr: str | None = None
    rows: list[Row] = field(default_factory=list)
    interrupted: bool = False
    _fits: tuple[int, dict[str, dict[str, Fit]]] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """What the report is on, in one short line: ``family product``, or the expression with
        its comments and blank lines left out, its lines joined by ``; `` (at most 80 characters)."""
        if self.family is not None:
            return f"family {self.family.name}"
        lines = (line.split("#", 1)[0].strip() for line in (self.expr or "").splitlines())
        text = "; ".join(line for line in lines if line)
        return text if len(text) <= 80 else text[:79] + "…"

    @property
    def jacobian(self) -> bool:
        """Whether the report compares a Jacobian family's modes (its methods are the modes)."""
        return self.family is not None and bool(self.family.modes)

    @property
    def unit(self) -> str:
        return self.family.unit if self.family is not None else "step"

    def fits(self) -> dict[str, dict[str, Fit]]:
        """For each method (and ``path count``), the growth of each metric with size (computed once
        per number of rows: the table, JSON and Markdown all ask)."""
        if self._fits is None or self._fits[0] != len(self.rows):
            self._fits = (len(self.rows), self._fit_all())
        return self._fits[1]

    def _fit_all(self) -> dict[str, dict[str, Fit]]:
        result: dict[str, dict[str, Fit]] = {}
        if self.family is None:
            return result
        counts = {row.size: row.paths for row in self.rows if row.paths is not None}
        path_fit = fit(list(counts), [float(c) for c in counts.values()])
        if path_fit is not None:
            result["path count"] = {"paths": path_fit}
        for method in self.methods:
            rows = [row for row in self.rows if row.method == method and row.ok]
            fits = {}
            for metric in FIT_METRICS:
                values = [getattr(row, metric) for row in rows]
                if metric.endswith("_s"):  # times under a millisecond are mostly fixed overhead
                    values = [None if v is None or v < MIN_FIT_SECONDS else v for v in values]
                found = fit([row.size for row in rows], values)
                if found is not None:
                    fits[metric] = found
            if fits:
                result[method] = fits
        return result

    def fit_lines(self) -> list[str]:
        """The fits in words, one line per method."""
        lines = []
        for method, fits in self.fits().items():
            if method == "path count":
                lines.append(f"path count: {fits['paths'].words(self.unit)}")
                continue
            parts = [f"{FIT_METRICS[metric]} {found.words(self.unit)}" for metric, found in fits.items()]
            lines.append(f"{method}: " + "; ".join(parts))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "family": None if self.family is None else self.family.name,
            "expr": self.expr,
            "eval_batch": EVAL_BATCH,
            "width": self.width,
            "seed": self.seed,
            "sizes": self.sizes,
            "methods": self.methods,
            "backends": self.backends,
            "budget_s": self.budget,
            "max_paths": self.max_paths,
            "interrupted": self.interrupted,
            "rows": [row.to_json() for row in self.rows],
            "fits": {
                method: {metric: found.to_json() for metric, found in fits.items()}
                for method, fits in self.fits().items()
            },
            "fit_words": self.fit_lines(),
        }


def _total_paths(graph: Graph) -> int:
    return sum(count_paths(graph).values())


class Measured(NamedTuple):
    """A measured cell, for predicting the next size's cost."""

    edges: int  # of the function's graph
    paths: int
    seconds: float


def predicted_seconds(history: Sequence[Measured], edges: int, paths: int, *, by_paths: bool) -> float:
    """The next cell's time: the last one's, scaled by the graph's growth in edges and by the
    growth the last size step showed beyond that (a swelling symbolic tree, a forward pass per
    input); for the paths method at least by the growth of the path count.
    """
    if not history:
        return 0.0
    last = history[-1]
    growth = edges / last.edges if last.edges else 1.0
    if len(history) >= 2:
        before = history[-2]
        if before.seconds > 0 and before.edges > 0:
            growth *= max(1.0, (last.seconds / before.seconds) / (last.edges / before.edges))
    if by_paths and last.paths:
        growth = max(growth, paths / last.paths)
    return last.seconds * growth


def _over_budget(seconds: float) -> str:
    return f"over budget (predicted {seconds:.3g} s)"


def run(report: Report, step: Step | None = None) -> Report:
    """Measure every cell of ``report`` (a family's sizes, or one expression), in place.

    ``step(description)`` is called before each cell. A KeyboardInterrupt marks the report
    interrupted and propagates; the rows measured so far stay.
    """
    try:
        for method in report.methods:
            if not report.jacobian:
                warm_up(method, report.backends)
        if report.family is None:
            _run_expression(report, step)
        else:
            _run_family(report, step)
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    return report


def _cell(report: Report, graph: Graph, size: int | None, method: str, paths: int) -> Row:
    if report.jacobian:
        return measure_jacobian(
            graph, size, method, paths, backends=report.backends, budget=report.budget, seed=report.seed
        )
    return measure(
        graph,
        size,
        method,
        paths,
        backends=report.backends,
        budget=report.budget,
        max_paths=report.max_paths,
        seed=report.seed,
    )


def _run_expression(report: Report, step: Step | None) -> None:
    assert report.expr is not None
    graph = parse(report.expr)
    paths = _total_paths(graph)
    for method in report.methods:
        if step is not None:
            step(method)
        report.rows.append(_cell(report, graph, None, method, paths))


def _run_family(report: Report, step: Step | None) -> None:
    family = report.family
    assert family is not None
    history: dict[str, list[Measured]] = {method: [] for method in report.methods}
    stopped: dict[str, str] = {}
    limited = {
        method: not report.jacobian and "max_paths" in OPTIONS[report_methods()[method][0]]
        for method in report.methods
    }
    build_status = ""
    for size in report.sizes:
        built = None if build_status else _build(report, family, size)
        if built is None or isinstance(built, str):  # building the graph itself is over budget
            build_status = build_status or str(built)
            for method in report.methods:
                if step is not None:
                    step(f"size {size} · {method}")
                report.rows.append(Row(size, method, None, status=build_status))
            build_status = "over budget"
            continue
        graph, paths, edges = built
        for method in report.methods:
            if step is not None:
                step(f"size {size} · {method}")
            predicted = predicted_seconds(history[method], edges, paths, by_paths=method == "paths")
            if limited[method] and paths > report.max_paths:  # the method's own refusal comes first
                row = Row(size, method, paths, status=f"skipped: {describe_count(paths)} paths")
            elif method in stopped:
                row = Row(size, method, paths, status=stopped[method])
            elif report.budget is not None and predicted > report.budget:
                row = Row(size, method, paths, status=_over_budget(predicted))
                stopped[method] = "over budget"
            else:
                row = _cell(report, graph, size, method, paths)
                if row.ok:
                    history[method].append(Measured(edges, paths, row.seconds))
                elif row.status.startswith("over budget"):
                    stopped[method] = "over budget"
            report.rows.append(row)


def _build(report: Report, family: Family, size: int) -> tuple[Graph, int, int] | str:
    """The family's graph at ``size`` with its path count and edges, or why it was not built."""
    try:
        with deadline(report.budget):
            graph = parse(family.generate(size, report.width, report.seed))
            paths = _total_paths(graph)
    except _OverBudget:
        return f"over budget (building the graph took over {report.budget:g} s)"
    return graph, paths, graph.stats()["edges"]
