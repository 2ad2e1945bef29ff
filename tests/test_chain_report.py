"""The report family of Jacobian chain orders (``orders``): forward, reverse and the optimal
bracketing measured on chains of growing length and mixed widths, as table, JSON, fits and plots."""

from __future__ import annotations

import json

import pytest

import graphc
from graphc.chain import chain_of, plan
from graphc.cli import main
from graphc.families import ORDER_WIDTHS, family
from graphc.report import Report, run
from graphc.report.render import write

MODES = ["forward", "reverse", "optimal"]


def test_the_family_extends_its_chain_one_block_per_size() -> None:
    orders = family("orders")
    assert orders.modes == tuple(MODES)
    for size in range(1, 7):
        graph = graphc.parse(orders.generate(size, seed=2))
        links = chain_of(graph, "x")
        assert links is not None and len(links) == 2 * size - 1  # size matrices between size - 1 tanh
        widths = {link.rows for link in links} | {links[0].cols}
        assert widths <= set(ORDER_WIDTHS)
        if size > 1:  # size n + 1 extends size n: the same first widths
            before = orders.generate(size - 1, seed=2).split("\n")[0].split("; ")
            assert orders.generate(size, seed=2).split("\n")[0].split("; ")[: len(before)] == before


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, object]:
    report = run(
        Report(methods=MODES, backends=["numpy"], budget=None, family=family("orders"), sizes=[1, 2, 3, 4, 5])
    )
    out = tmp_path_factory.mktemp("orders")
    write(report, out)
    return report, out


def test_each_cell_counts_what_the_jacobian_kernel_reports(measured: tuple[Report, object]) -> None:
    report, _ = measured
    assert [(row.size, row.method) for row in report.rows] == [(s, m) for s in range(1, 6) for m in MODES]
    for size in range(1, 6):
        text = family("orders").generate(size)
        rows = {row.method: row for row in report.rows if row.size == size}
        for mode in MODES:
            assert rows[mode].ok, rows[mode].status
            kernel = graphc.jacobian(text, wrt="x", mode=mode)
            assert rows[mode].multiplications == kernel.info["multiplications"]
            assert rows[mode].order == kernel.info["order"]
            assert rows[mode].eval_s > 0 and rows[mode].nodes > 0
        links = chain_of(graphc.parse(text), "x")
        assert links is not None
        assert rows["optimal"].multiplications == plan(links).multiplications
        assert rows["optimal"].multiplications <= min(
            rows["forward"].multiplications, rows["reverse"].multiplications
        )


def test_the_json_table_fits_and_plots_carry_the_counts(measured: tuple[Report, object]) -> None:
    report, out = measured
    data = json.loads((out / "report.json").read_text())  # type: ignore[operator]
    assert data["family"] == "orders" and data["methods"] == MODES
    assert all(isinstance(row["multiplications"], int) and row["order"] for row in data["rows"])
    assert set(data["fits"]) >= {"optimal", "forward", "reverse"}
    assert all("multiplications" in data["fits"][mode] for mode in MODES)
    markdown = (out / "report.md").read_text()  # type: ignore[operator]
    assert "| size | method | paths | DAG nodes | edges | tree size | multiplications |" in markdown
    assert "- optimal: multiplications " in markdown
    assert (out / "multiplications.png").read_bytes()[:4] == b"\x89PNG"  # type: ignore[operator]
    assert report.rows[0].differentiate_s is None  # graphc.jacobian builds and compiles in one call


def test_the_command_line_runs_the_family_and_names_its_modes(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "report",
                "--family",
                "orders",
                "--sizes",
                "2:3",
                "--backend",
                "numpy",
                "--methods",
                "optimal,reverse",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "multiplications" in printed and "optimal" in printed and "forward" not in printed
    assert main(["report", "--family", "orders", "--methods", "dp"]) == 2
    assert "unknown method 'dp' (the methods are: forward, reverse, optimal)" in capsys.readouterr().err
    assert main(["report", "--list-families"]) == 0
    assert "orders: a chain of size blocks" in capsys.readouterr().out
