"""The benchmark harness (bench/run.py) on a tiny problem with graphc alone: no peer needed."""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import pytest

import graphc

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
sys.path.insert(0, BENCH)

import convert
import problems
import run


def read(directory) -> tuple[dict, str]:
    with open(directory / "results.json", encoding="utf-8") as file:
        results = json.load(file)
    return results, (directory / "RESULTS.md").read_text(encoding="utf-8")


def test_a_cell_runs_and_is_published(tmp_path):
    run.main(["--quick", "--problems", "B2a", "--systems", "graphc-numpy", "--points", "1000", "--repeats", "1",
              "--out", str(tmp_path)])  # fmt: skip
    results, text = read(tmp_path)
    assert results["settings"]["points"] == 1000 and results["settings"]["quick"] is True
    assert set(results["machine"]["versions"]) >= {"numpy", "sympy", "jax", "casadi"}
    (cell,) = results["cells"]
    assert (cell["problem"], cell["system"], cell["status"]) == ("B2a", "graphc-numpy", "ok")
    for figure in ("build_s", "grad_s", "func_s", "call_s", "peak_mb"):
        assert cell[figure] > 0, figure
    assert cell["finite"] is True
    assert cell["error"] <= 1e-10  # against the forward-mode reference
    assert "## B2a: x1*x2 + exp(x1*x2) - sin(x2)" in text
    assert (
        "| graphc-numpy | " in text
        and "fewer points than the full run" in text
        and "Batch: N = 1,000 points" in text
    )
    assert "## The goals, judged on this run" in text
    rendered = tmp_path / "rendered"
    run.main(["--render", str(tmp_path / "results.json"), "--out", str(rendered)])
    assert read(rendered)[1] == text  # the same figures give the same page


def test_a_timeout_is_a_cell_not_a_crash(tmp_path):
    run.main(["--problems", "B2b", "--systems", "graphc-llvm,c-hand", "--points", "10", "--repeats", "1",
              "--timeout", "0.01", "--out", str(tmp_path)])  # fmt: skip
    results, text = read(tmp_path)
    by_system = {cell["system"]: cell for cell in results["cells"]}
    assert by_system["graphc-llvm"]["status"] == "timeout (0.01s)"
    assert by_system["graphc-llvm"]["error"] is None and "grad_s" not in by_system["graphc-llvm"]
    assert by_system["c-hand"]["status"] == "n/a (only B1)"
    assert "timeout (0.01s)" in text and "n/a (only B1)" in text


def test_a_failing_cell_is_recorded(tmp_path):
    args = run.parse_args(["--points", "10", "--repeats", "1", "--timeout", "60"])
    figures = run.run_cell("no-such-system", "B2a", args, str(tmp_path))
    assert figures["status"].startswith("failed: KeyError")
    assert figures["check_file"] is None


def test_unknown_names_are_refused(capsys):
    with pytest.raises(SystemExit):
        run.parse_args(["--problems", "B9"])
    assert "unknown problem 'B9'" in capsys.readouterr().err


def test_the_relative_error_is_normwise_per_partial(tmp_path):
    reference, close, off = tmp_path / "r.npy", tmp_path / "c.npy", tmp_path / "o.npy"
    np.save(reference, np.array([[1.0, 2.0], [100.0, np.nan]]))
    np.save(close, np.array([[1.0, 2.0 + 2e-12], [100.0, 5.0]]))
    np.save(off, np.array([[1.0, np.nan], [100.0, 5.0]]))
    assert run.relative_error(str(close), str(reference)) == pytest.approx(1e-12)
    assert run.relative_error(str(off), str(reference)) == math.inf
    assert run.relative_error(None, str(reference)) is None


def test_the_converter_rebuilds_every_problem_node_by_node():
    # Python floats and math's functions as the "peer": the converted value is graphc's value.
    for problem in problems.PROBLEMS.values():
        if problem.name.startswith(("B3", "B5-1")):
            continue  # 2^20-fold products and big DAGs: covered by the harness, not needed here
        graph = graphc.parse(problem.text)
        assert graph.variables == problem.variables
        point = [float(x[0]) for x in problem.sample(1, 0)]
        values = dict(zip(problem.variables, point, strict=True))
        (got,) = convert.convert(graph, values.__getitem__, float, convert.python_table(math))
        assert got == pytest.approx(float(graphc.compile(graph)(*point)), rel=1e-12)


def test_the_converter_names_an_op_it_cannot_build():
    with pytest.raises(convert.UnsupportedOpError, match="op 'sigmoid'"):
        convert.convert(graphc.parse("sigmoid(x)"), lambda name: 1.0, float, convert.python_table(math))


def test_problems_are_seeded():
    assert problems.random_dag(50) == problems.random_dag(50)
    assert problems.random_dag(50, seed=1) != problems.random_dag(50)
    assert graphc.count_paths(problems.product_layers(20)) == {"w": 2**20}


def test_the_reference_agrees_with_graphc_on_every_op_it_knows():
    import reference

    text = "x/y + x^2.5 + log(y) + sqrt(x) + exp(-x) + tanh(y) - cos(x*y) + sin(x)*x"
    graph = graphc.parse(text)
    xs = [np.array([0.5, 1.5, 2.5]), np.array([0.7, 1.1, 3.0])]
    got = reference.dual_gradient(graph, xs)
    want = graphc.grad(graph)(*xs)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13)
