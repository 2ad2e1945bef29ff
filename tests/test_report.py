"""graphc report: growth fits, cost prediction, measured cells, JSON/Markdown/PNG output, the CLI."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.cli import main
from graphc.families import family
from graphc.report import Report, fit, report_methods, run
from graphc.report import runner as run_module
from graphc.report.measure import EVAL_BATCH, dag_size, describe_count, gradient_graph, measure, tree_size
from graphc.report.runner import Measured, predicted_seconds

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROW_KEYS = {
    "size", "method", "paths", "nodes", "edges", "tree_size",
    "differentiate_s", "compile_s", "eval_s", "status",
}  # fmt: skip
AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]


# --- growth fits on synthetic data ---------------------------------------------------------------


def test_fit_exponential():
    found = fit(range(1, 13), [3 * 2.0**n for n in range(1, 13)])
    assert found.kind == "exponential"
    assert found.rate == pytest.approx(2.0, rel=0.01)
    assert found.words("layer") == "×2.0 per layer (exponential)"


@pytest.mark.parametrize("exponent", [1.0, 2.0, 3.0])
def test_fit_power_law(exponent):
    found = fit(range(2, 30), [0.5 * n**exponent for n in range(2, 30)])
    assert found.kind == "power"
    assert found.rate == pytest.approx(exponent, abs=0.01)
    assert found.r2 == pytest.approx(1.0)


def test_fit_words_name_the_common_exponents():
    sizes = list(range(1, 20))
    assert fit(sizes, [7.0 * n for n in sizes]).words("layer") == "exponent 1.0 (linear)"
    assert fit(sizes, [n**2 for n in sizes]).words("layer") == "exponent 2.0 (quadratic)"
    assert fit(sizes, [n**3 for n in sizes]).words("unit") == "exponent 3.0 (cubic)"
    assert fit(sizes, [5.0] * len(sizes)).words("layer") == "exponent 0.0 (about constant)"
    assert fit(sizes, [n**1.5 for n in sizes]).words("layer") == "exponent 1.5 (polynomial)"


def test_fit_with_noise_still_tells_the_two_apart():
    rng = random.Random(1)
    sizes = list(range(1, 16))
    noisy_exponential = [1e-4 * 1.8**n * rng.uniform(0.9, 1.1) for n in sizes]
    noisy_linear = [1e-3 * n * rng.uniform(0.9, 1.1) for n in sizes]
    exponential = fit(sizes, noisy_exponential)
    assert exponential.kind == "exponential" and 1.6 < exponential.rate < 2.0
    linear = fit(sizes, noisy_linear)
    assert linear.kind == "power" and 0.8 < linear.rate < 1.2


def test_fit_sees_through_a_fixed_overhead():
    sizes = list(range(1, 13))
    assert fit(sizes, [3 * n - 1 for n in sizes]).words("layer") == "exponent 1.0 (linear)"
    assert fit(sizes, [2e-3 + 1e-5 * n**2 for n in sizes]).words("layer") == "exponent 2.0 (quadratic)"
    assert fit(sizes, [50 + 2**n for n in sizes]).words("layer") == "×2.0 per layer (exponential)"


def test_fit_calls_the_paths_method_on_the_product_family_exponential():
    # the report's headline claim, pinned on deterministic counts (not timings): each layer of the
    # product family doubles the paths, and the paths method's gradient graph grows with them
    from graphc.diff import count_paths, differentiate

    sizes = list(range(1, 13))
    graphs = [graphc.parse(family("product").generate(n)) for n in sizes]
    paths = [sum(count_paths(graph).values()) for graph in graphs]
    assert fit(sizes, paths).words("layer") == "×2.0 per layer (exponential)"
    gradients = [gradient_graph(differentiate(graph, None, "paths")) for graph in graphs]
    nodes = fit(sizes, [dag_size(gradient)[0] for gradient in gradients])
    assert nodes.kind == "exponential" and 1.8 < nodes.rate < 2.1
    trees = fit(sizes, [tree_size(gradient) for gradient in gradients])
    assert trees.kind == "exponential" and trees.rate == pytest.approx(4.0, rel=0.02)
    # the dp method on the same graphs: a DAG growing by a fixed number of nodes per layer
    dp = [dag_size(gradient_graph(differentiate(graph, None, "dp")))[0] for graph in graphs]
    assert fit(sizes, dp).words("layer") == "exponent 1.0 (linear)"


def test_fit_reads_a_high_power_over_few_sizes_as_exponential():
    # what the paths method's differentiation time looks like once times under 1 ms are dropped
    # (a recorded run of `graphc report --family product --sizes 1:12`, seconds at sizes 7..12)
    found = fit([7, 8, 9, 10, 11, 12], [1.52e-3, 13e-3, 12.2e-3, 18.9e-3, 55.7e-3, 85.9e-3])
    assert found.kind == "exponential" and 1.3 < found.rate < 2.0


def test_fit_needs_three_usable_points():
    assert fit([1, 2], [1.0, 2.0]) is None
    assert fit([1, 2, 3, 4], [1.0, None, 0.0, math.inf]) is None  # only one usable point
    assert fit([1, 2, 3], [2.0, 4.0, 8.0]).points == 3


# --- prediction and one cell ---------------------------------------------------------------------


def test_prediction_scales_by_edges_and_by_unexplained_growth():
    assert predicted_seconds([], 100, 1, by_paths=False) == 0.0
    assert predicted_seconds([Measured(10, 1, 1.0)], 30, 1, by_paths=False) == pytest.approx(3.0)
    # time doubled while the graph grew by 10%: the next step is predicted to double again
    history = [Measured(100, 1, 1.0), Measured(110, 1, 2.0)]
    assert predicted_seconds(history, 121, 1, by_paths=False) == pytest.approx(2.0 * 1.1 * 2.0 / 1.1)
    # the paths method grows at least with the path count
    assert predicted_seconds([Measured(10, 1000, 0.5)], 11, 2000, by_paths=True) == pytest.approx(1.0)


def test_tree_and_dag_sizes_of_a_gradient():
    derivative = graphc.differentiate("a1 = w*w; a2 = a1*a1; a2", method="dp")
    gradient = gradient_graph(derivative)
    assert gradient.output_names == ["∂a2/∂w"]
    nodes, edges = dag_size(gradient)
    assert nodes == sum(gradient.reachable())
    assert edges == sum(len(gradient.args(n)) for n in range(len(gradient)) if gradient.reachable()[n])
    assert tree_size(gradient) > nodes  # shared nodes count once per use in a tree
    assert tree_size(graphc.parse("x*x")) == 3.0


def test_describe_count():
    assert describe_count(2**40) == "2^40"
    assert describe_count(1_000_000) == "1,000,000"
    assert describe_count(3**40).startswith("1.22e19")


def test_paths_cell_is_skipped_above_max_paths_without_enumerating():
    graph = graphc.parse(family("product").generate(40))
    row = measure(graph, 40, "paths", 2**40, backends=["numpy"], budget=5.0, max_paths=1_000_000)
    assert row.status == "skipped: 2^40 paths"
    assert row.nodes is None


def test_a_cell_over_its_deadline_is_stopped():
    graph = graphc.parse(family("shared").generate(13))
    row = measure(graph, 13, "symbolic", 2**13, backends=["numpy"], budget=0.01, max_paths=10**6)
    assert row.status == "over budget (stopped after 0.01 s)"


def test_a_family_report_skips_paths_above_the_limit_and_stops_over_budget():
    report = run(
        Report(
            methods=["paths"], backends=["numpy"], max_paths=100, family=family("product"), sizes=[5, 6, 7, 8]
        )
    )
    assert [row.status for row in report.rows] == ["ok", "ok", "skipped: 128 paths", "skipped: 256 paths"]
    report = run(
        Report(methods=["dp"], backends=["numpy"], budget=1e-6, family=family("nest"), sizes=[50, 60])
    )
    # building the graph runs under the budget too: the report stops there
    assert [row.status for row in report.rows] == [
        "over budget (building the graph took over 1e-06 s)",
        "over budget",
    ]
    assert [row.paths for row in report.rows] == [None, None]


def test_fit_calls_a_flat_series_constant():
    assert (
        fit([1, 2, 3, 4, 5, 6], [1.0, 1.1, 1.0, 1.2, 1.0, 1.4]).words("layer")
        == "exponent 0.0 (about constant)"
    )


def test_symbolic_failures_are_reported_in_the_cell():
    graph = graphc.parse(family("nest").generate(400))
    row = measure(graph, 400, "symbolic", 1, backends=["numpy"], budget=30.0, max_paths=10**6)
    assert row.status.startswith("error: SymPy recursed too deeply")


def test_symbolic_is_measured_with_and_without_cse():
    methods = report_methods()
    assert methods["symbolic"] == ("symbolic", {"cse": False})
    assert methods["symbolic+cse"] == ("symbolic", {"cse": True})
    assert set(graphc.METHODS) <= set(methods)


# --- a small real report -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    from graphc.report.render import write

    report = run(
        Report(
            methods=list(report_methods()),
            backends=AVAILABLE,
            budget=5.0,
            family=family("product"),
            sizes=list(range(1, 9)),
        )
    )
    out = tmp_path_factory.mktemp("report")
    write(report, out)
    return report, out


def test_report_json_schema(small_report):
    _, out = small_report
    data = json.loads((out / "report.json").read_text())
    assert data["family"] == "product"
    assert data["sizes"] == list(range(1, 9))
    assert len(data["rows"]) == 8 * len(report_methods())
    for row in data["rows"]:
        assert ROW_KEYS <= set(row)
        assert row["paths"] == 2 ** row["size"]
        assert row["method"] in report_methods()
        assert row["status"] == "ok"
        assert isinstance(row["nodes"], int) and isinstance(row["edges"], int)
        assert isinstance(row["tree_size"], int)
        for key in ("differentiate_s", "compile_s", "eval_s"):
            assert row[key] > 0
        assert set(row["backends"]) == set(AVAILABLE)
        assert row["peak_rss_mb"] is None or row["peak_rss_mb"] > 1
    assert data["fits"]["path count"]["paths"]["kind"] == "exponential"
    assert data["fits"]["path count"]["paths"]["rate"] == pytest.approx(2.0, rel=0.01)
    assert data["fit_words"][0] == "path count: ×2.0 per layer (exponential)"


def test_report_fits_say_dp_is_linear_and_paths_doubles(small_report):
    report, _ = small_report
    fits = report.fits()
    assert fits["dp"]["nodes"].words("layer") == "exponent 1.0 (linear)"
    assert fits["paths"]["nodes"].kind == "exponential"
    assert 1.7 < fits["paths"]["nodes"].rate < 2.1


def test_report_markdown_and_plots(small_report):
    _, out = small_report
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# graphc report: family product, sizes 1:8")
    assert "| size | method | paths |" in markdown
    assert "path count: ×2.0 per layer (exponential)" in markdown
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"differentiate_s.png", "nodes.png", "tree_size.png", "eval_s.png"}
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert f"]({png.name})" in markdown


# --- the command line ----------------------------------------------------------------------------


def test_cli_product_1_to_12(tmp_path, capsys):
    out = tmp_path / "product"
    assert main(["report", "--family", "product", "--sizes", "1:12", "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text())
    assert [row["paths"] for row in data["rows"] if row["method"] == "dp"] == [2**n for n in range(1, 13)]
    assert all(row["paths"] == 2 ** row["size"] for row in data["rows"])
    assert (out / "report.md").is_file()
    assert (out / "nodes.png").read_bytes()[:8] == PNG_MAGIC
    printed = capsys.readouterr().out
    assert "path count: ×2.0 per layer (exponential)" in printed
    assert "dp: DAG exponent 1.0 (linear)" in printed


def test_cli_mlp_3_by_100_counts_a_million_paths(tmp_path):
    out = tmp_path / "mlp"
    args = ["report", "--family", "mlp", "--width", "100", "--sizes", "1:3", "--methods", "paths"]
    assert main([*args, "--budget", "10", "--out", str(out)]) == 0  # room to build the graphs on a busy machine
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [row["paths"] for row in rows] == [100, 10_000, 1_000_000]
    assert rows[-1]["status"] != "ok"  # a million paths are counted, never enumerated here


def test_cli_one_expression(tmp_path, capsys):
    out = tmp_path / "expr"
    assert main(["report", "sin(w^2) + cos(w^2)", "--methods", "dp,symbolic", "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["expr"] == "sin(w^2) + cos(w^2)" and data["family"] is None
    assert [(row["size"], row["method"], row["paths"]) for row in data["rows"]] == [
        (None, "dp", 2),
        (None, "symbolic", 2),
    ]
    assert (out / "methods.png").read_bytes()[:8] == PNG_MAGIC
    assert "sin(w^2) + cos(w^2)" in capsys.readouterr().out


def test_cli_list_families(capsys):
    assert main(["report", "--list-families"]) == 0
    printed = capsys.readouterr().out
    assert "product: " in printed and "mlp: " in printed and "chain: " in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report"], "give either an expression or --family NAME"),
        (["report", "x*y", "--family", "product"], "give either an expression or --family NAME"),
        (["report", "--family", "tree"], "unknown family 'tree'"),
        (["report", "--family", "product", "--width", "3"], "--width applies to the mlp family"),
        (["report", "--family", "product", "--sizes", "5:2"], "--sizes: '5:2' is not a range"),
        (["report", "--family", "product", "--sizes", "a:b"], "--sizes expects A:B"),
        (["report", "--family", "product", "--methods", "dp,magic"], "unknown method 'magic'"),
        (["report", "--family", "product", "--backend", "cuda"], "unknown backend 'cuda'"),
        (["report", "x*y", "--sizes", "1:3"], "--sizes applies to --family reports"),
        (["report", "x*", "--methods", "dp"], "graphc: error:"),
        (["report", "2 + 3"], "'2 + 3' has no variables: there is nothing to differentiate"),
        (["report", "--family", "product", "--budget", "0"], "must be more than 0 seconds"),
    ],
)
def test_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphc: error:")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_cli_backends(backend, tmp_path, capsys):
    argv = ["report", "x*y + sin(x)", "--methods", "dp", "--backend", backend]
    if backend in UNAVAILABLE:
        assert main(argv) == 2
        assert UNAVAILABLE[backend] in capsys.readouterr().err
    else:
        assert main(argv) == 0
        assert f"eval ×{EVAL_BATCH:,} ({backend})" in capsys.readouterr().out


def test_ctrl_c_writes_the_partial_report_and_exits_130(tmp_path, capsys, monkeypatch):
    cells = []

    def interrupted(*args, **kwargs):
        if len(cells) == 3:
            raise KeyboardInterrupt
        cells.append(args)
        return real(*args, **kwargs)

    real = run_module.measure
    monkeypatch.setattr(run_module, "measure", interrupted)
    out = tmp_path / "partial"
    assert (
        main(["report", "--family", "product", "--sizes", "1:5", "--methods", "dp", "--out", str(out)]) == 130
    )
    err = capsys.readouterr().err
    assert "graphc: interrupted" in err and "partial report written" in err
    assert "Traceback" not in err
    data = json.loads((out / "report.json").read_text())
    assert data["interrupted"] is True
    assert [row["size"] for row in data["rows"]] == [1, 2, 3]


def test_import_graphc_does_not_load_matplotlib_or_rich():
    code = (
        "import sys, graphc, graphc.cli; graphc.cli.build_parser(); "
        "print(sorted(m for m in ('matplotlib', 'rich') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_symbolic_and_symbolic_cse_may_share_differently():
    # what report_methods documents: cse takes out x*y + z, which the fold of the n-ary sum misses
    graph = graphc.parse("exp(x*y + z + w) + exp(x*y + z)*w")
    plain = measure(graph, None, "symbolic", 3, backends=["numpy"], budget=None, max_paths=10)
    shared = measure(graph, None, "symbolic+cse", 3, backends=["numpy"], budget=None, max_paths=10)
    assert shared.nodes < plain.nodes


def test_evaluation_is_timed_on_a_batch_with_compiles_uncached(monkeypatch):
    import graphc.report.measure as measure_module

    seen = []

    def compile_spy(graph, backend):
        seen.append(os.environ.get("GRAPHC_NO_CACHE"))
        return lambda **point: seen.append({name: len(values) for name, values in point.items()})

    monkeypatch.delenv("GRAPHC_NO_CACHE", raising=False)
    monkeypatch.setattr(measure_module, "compile_graph", compile_spy)
    row = measure(graphc.parse("x*y"), None, "dp", 1, backends=["numpy"], budget=None, max_paths=10)
    assert row.ok
    assert seen[0] == "1" and "GRAPHC_NO_CACHE" not in os.environ  # off while compiling only
    assert seen[1] == {"x": measure_module.EVAL_BATCH, "y": measure_module.EVAL_BATCH}


def test_a_program_report_is_titled_without_its_comments():
    from graphc.report.render import title

    report = Report(methods=["dp"], backends=["numpy"], expr="# a model\nh = tanh(x*w)  # hidden\nh*h\n")
    assert report.name == "h = tanh(x*w); h*h"
    assert title(report) == "graphc report: h = tanh(x*w); h*h"
    assert Report(methods=["dp"], backends=["numpy"], family=family("product")).name == "family product"
