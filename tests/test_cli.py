"""The command line: graphc eval, its output formats, and one-line errors with exit status 2."""

from __future__ import annotations

import ast
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphc.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def test_eval_prints_the_value(cli):
    code, out, err = cli("eval", "sin(x*y) + exp(x)", "--at", "x=1.5,y=2")
    assert (code, err) == (0, "")
    assert out == "4.622809078397932\n"


def test_eval_json(cli):
    code, out, _ = cli("eval", "x*y", "--at", "x=1.5", "--at", "y=2", "--json")
    assert code == 0
    assert json.loads(out) == {"expr": "x*y", "backend": "numpy", "value": 3.0}


def test_eval_several_outputs(cli):
    code, out, _ = cli("eval", "x*y, sin(x)", "--at", "x=0,y=2")
    assert (code, out) == (0, "f1 = 0.0\nf2 = 0.0\n")
    code, out, _ = cli("eval", "x*y, log(x)", "--at", "x=0,y=2", "--json")
    assert json.loads(out)["value"] == [0.0, "-inf"]


def test_eval_values_may_be_constant_expressions(cli):
    code, out, _ = cli("eval", "sin(x)", "--at", "x=pi/2")
    assert (code, out) == (0, "1.0\n")
    code, out, _ = cli("eval", "x + y", "--at", "x=atan2(1, 1)*4,y=-pi")
    assert float(out) == pytest.approx(0.0, abs=1e-15)


def test_expression_may_start_with_a_minus(cli):
    assert cli("eval", "-x**2", "--at", "x=3")[1] == "-9.0\n"
    assert cli("eval", "--at", "x=3", "-x**2")[1] == "-9.0\n"
    assert cli("eval", "--json", "-x", "--at", "x=3")[0] == 0


def test_constant_expression_needs_no_point(cli):
    assert cli("eval", "2*pi")[1] == "6.283185307179586\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "sin(x", "--at", "x=1"], "'sin(' is never closed"),
        (["eval", "x + y", "--at", "x=1"], "missing value for y"),
        (["eval", "x", "--at", "x=1,z=2"], "unknown variable 'z'"),
        (["eval", "x", "--at", "x"], "name=value"),
        (["eval", "x", "--at", "x=1,x=2"], "given twice"),
        (["eval", "x", "--at", "x=y"], "must be a number"),
        (["eval", "x", "--at", "x=1+"], "not a number"),
        (["eval", "x", "--at", "1x=2"], "not a variable name"),
        (["eval", "x", "--backend", "cuda"], "invalid choice: 'cuda'"),
        (["eval"], "required: EXPR"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
        (["eval", "x", "--bogus"], "unrecognized arguments"),
        (["eval", "__import__('os').system('echo hi')"], "unknown function '__import__'"),
        (["eval", "x.__class__", "--at", "x=1"], "no attributes"),
        (["eval", "foo(x)", "--at", "x=1"], "unknown function 'foo'"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    first, *rest = err.splitlines()
    assert first.startswith("graphc: error: ")
    assert message in first
    if rest:  # only a parse error adds the source line and a caret
        assert len(rest) == 2 and rest[1].strip() == "^"
    assert "Traceback" not in err


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "eval" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "--at" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("graphc ")


@pytest.mark.parametrize("launcher", [["-m", "graphc"], [str(ROOT / "cli.py")]])
def test_launchers_behave_like_graphc(launcher):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run(
        [sys.executable, *launcher, "eval", "x*y", "--at", "x=2,y=3"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert (ok.returncode, ok.stdout) == (0, "6.0\n")
    bad = subprocess.run(
        [sys.executable, *launcher, "eval", "x +"], check=False, capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("graphc: error: expected an operand")
    assert "Traceback" not in bad.stderr


def test_a_gradient_at_a_point_imports_neither_networkx_nor_sympy():
    """Importing networkx is 100 ms and SymPy 240 ms: a `graphc grad --at` run (0.2 s) needs neither.
    The networkx mirror of a graph is still there, imported on first use."""
    script = (
        "import sys\n"
        "from graphc.cli import main\n"
        "main(['grad', 'sin(x*y) + exp(x)', '--at', 'x=1.5,y=2', '--backend', 'numpy'])\n"
        "print(sorted(m for m in ('networkx', 'sympy') if m in sys.modules))\n"
        "import graphc\n"
        "print(graphc.parse('x*x').nx.number_of_edges(), 'networkx' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env)
    assert done.stdout.splitlines()[-2:] == ["[]", "2 True"]


def test_expr_from_a_file_or_standard_input(cli, tmp_path, monkeypatch):
    program = tmp_path / "program.gc"
    program.write_text("u = x*y\nsin(u) + u^2\n", encoding="utf-8")
    code, out, _ = cli("eval", f"@{program}", "--at", "x=0,y=2")
    assert (code, out) == (0, "0.0\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("x*y"))
    code, out, _ = cli("grad", "-", "--at", "x=2,y=3")
    assert (code, out) == (0, "f = 6.0\n∂f/∂x = 3.0\n∂f/∂y = 2.0\n")


class _Unreadable(io.StringIO):
    def read(self, *args):
        raise OSError("reading from stdin while output is captured")


@pytest.mark.parametrize("stdin", [None, _Unreadable(), io.BytesIO(b"\xff x"), "closed"])
def test_an_unreadable_standard_input_is_one_line_with_status_2(cli, monkeypatch, stdin):
    if stdin == "closed":
        stdin = io.StringIO("x")
        stdin.close()
    elif isinstance(stdin, io.BytesIO):
        stdin = io.TextIOWrapper(stdin, encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, err = cli("grad", "-")
    assert (code, out) == (2, "")
    assert (
        err.startswith("graphc: error: cannot read the formula from standard input: ")
        and err.count("\n") == 1
    )


@pytest.mark.parametrize("name", ["missing.gc", "binary.gc"])
def test_an_unreadable_expr_file_is_one_line_with_status_2(cli, tmp_path, name):
    (tmp_path / "binary.gc").write_bytes(b"\xff\xfe x")
    code, out, err = cli("grad", f"@{tmp_path / name}")
    assert (code, out) == (2, "")
    assert err.startswith("graphc: error: cannot read the formula from ") and err.count("\n") == 1


def _imports(path: Path, package: str) -> set[str]:
    """The modules a source file of ``package`` imports, absolute or relative (read with ast)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_no_module_outside_the_cli_package_imports_it():
    library = sorted((ROOT / "graphc").rglob("*.py"))
    assert len(library) > 20
    offenders = [
        str(path.relative_to(ROOT))
        for path in library
        if "cli" not in path.relative_to(ROOT / "graphc").parts[:1]
        and path.name != "__main__.py"  # python -m graphc runs the command line
        and any(
            name == "graphc.cli" or name.startswith("graphc.cli.")
            for name in _imports(path, ".".join(path.relative_to(ROOT).parent.parts))
        )
    ]
    assert offenders == []


def test_the_import_scan_sees_absolute_and_relative_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..cli import common\nimport graphc.cli.grad\nfrom . import runner\n", encoding="utf-8"
    )
    found = _imports(probe, "graphc.report")
    assert {"graphc.cli", "graphc.cli.common", "graphc.cli.grad", "graphc.report.runner"} <= found


def test_every_command_module_has_two_public_functions_add_parser_and_run():
    from graphc import cli

    for module in cli.COMMANDS:
        public = {
            name
            for name, value in vars(module).items()
            if callable(value)
            and not isinstance(value, type)
            and not name.startswith("_")
            and getattr(value, "__module__", "") == module.__name__
        }
        assert public == {"add_parser", "run"}, module.__name__
    assert set(build_parser().commands) == {
        "grad",
        "eval",
        "trace",
        "implicit",
        "report",
        "check",
        "paths",
        "export",
    }


def test_eval_at_a_list_computes_a_batch(cli):
    code, out, err = cli("eval", "x*y + 1", "--at", "x=[1, 2, 3], y=2")
    assert (code, err) == (0, "")
    assert out == "[3.0, 5.0, 7.0]\n"


def test_eval_at_a_nested_list_and_json_writes_nested_lists(cli):
    code, out, err = cli("eval", "W*s", "--at", "W=[[1,2],[3,4]],s=0.5", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["value"] == [[0.5, 1.0], [1.5, 2.0]]
    code, out, _ = cli("eval", "log(x)", "--at", "x=[0, 1, -1]", "--json")
    assert json.loads(out)["value"] == ["-inf", 0.0, "nan"]


def test_eval_at_a_npy_file(cli, tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.array([[1.0, -2.0], [0.0, 4.0]]))
    code, out, err = cli("eval", "abs(W)", "--at", f"W=@{path}", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["value"] == [[1.0, 2.0], [0.0, 4.0]]


def test_commas_inside_brackets_do_not_split_pairs(cli):
    code, out, _ = cli("eval", "x + y", "--at", "x=atan2(1, 1)*4,y=[1,2]")
    assert (code, out) == (0, f"{[math.pi + 1, math.pi + 2]!r}\n")


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("x=[1,,2]", "--at: the value of 'x': expected a number or '[', got ',' (column 4)"),
        ("x=[1, a]", "--at: the value of 'x': 'a' is not a number (column 5)"),
        ("x=[[1,2],[3]]", "the rows have different lengths"),
        ("x=[1, 2", "the list is not closed: 1 ']' missing"),
        ("x=[1] 2", "unexpected '2' after the closing ']' (column 5)"),
        ("x=[1 2]", "expected ',' or ']', got '2' (column 4)"),
        ("x=@/no/such/file.npy", "cannot read '/no/such/file.npy' as a .npy file"),
    ],
)
def test_bad_lists_are_one_line_errors_with_a_column(cli, at, message):
    code, out, err = cli("eval", "x", "--at", at)
    assert (code, out) == (2, "")
    assert err.startswith("graphc: error: ") and err.count("\n") == 1
    assert message in err


def test_trace_and_check_take_one_number_per_variable(cli):
    for command in ("trace", "check"):
        code, _, err = cli(command, "x*y", "--at", "x=[1,2],y=1")
        assert code == 2
        assert f"graphc {command} takes one number per variable; 'x' is an array" in err
