"""Write the manual's generated pages into ``docs/_generated/`` (run by conf.py when a build starts).

Each page restates something the code or a benchmark run owns, read from it at build time:

* ``policy.md``: :func:`graphc.policy.markdown` of :data:`graphc.policy.POLICY` and
  :data:`graphc.policy.REWRITES`, and :data:`graphc.policy.SMOOTH`;
* ``functions.md`` and ``operators.md``: the op table, :data:`graphc.ops.OPS`, with each function's
  derivative as graphc itself prints it;
* ``cli.md``: the ``--help`` text of ``graphc`` and of each of its commands;
* ``guards.md``: ``bench/guard_growth.py``'s node counts of ``dp`` gradients with and without the
  guards of the NaN-free rule of ``where``;
* ``results.md`` and ``results-1m.md``: ``bench/RESULTS.md`` and ``bench/results-1m/RESULTS.md``,
  their headings moved two levels down and their links to neighbouring files turned into paths.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def _escaped(markdown: str) -> str:
    """Markdown with ``*`` and ``_`` outside code spans escaped (``2*x^1 = 2*x`` is not emphasis)."""
    lines = []
    for line in markdown.splitlines():
        spans = line.split("`")
        spans[::2] = [re.sub(r"([*_])", r"\\\1", span) for span in spans[::2]]
        lines.append("`".join(spans))
    return "\n".join(lines) + "\n"


def policy_page() -> str:
    from graphc.policy import REWRITES, SMOOTH, markdown

    smooth = ["| op | why it needs no row |", "| --- | --- |"]
    smooth += [f"| `{name}` | {_escaped(why).strip()} |" for name, why in SMOOTH.items()]
    return (
        _escaped(markdown())
        + "\nOps with no hard point to state (`graphc.policy.SMOOTH`):\n\n"
        + "\n".join(smooth)
        + "\n\ngraphc's algebra: the build-time rewrites at the points where they differ from IEEE "
        + "arithmetic (`graphc.policy.REWRITES`), held by every method and backend like the table above:\n\n"
        + _escaped(markdown(REWRITES))
    )


def _derivatives(text: str) -> str:
    """The partials of ``text`` as graphc prints them, one per variable in sorted order."""
    import graphc
    from graphc.printing import formula

    graph = graphc.differentiate(text)
    return "; ".join(f"`{formula(graph, node)}`" for node in graph.outputs[1:]) or "0 (no partial is built)"


def functions_page() -> str:
    from graphc.ops import OPS

    lines = ["| function | arguments | NumPy form | derivative (as `graphc grad` prints it) |"]
    lines.append("| --- | --- | --- | --- |")
    for op in OPS.values():
        if not op.function:
            continue
        names = ("x", "y", "z")[: op.arity]
        call = f"{op.function}({', '.join(names)})"
        template = op.numpy.format(*names)
        spellings = "".join(f" (also `{alias}({', '.join(names)})`)" for alias in op.names)  # NumPy's names
        lines.append(f"| `{call}`{spellings} | {op.arity} | `{template}` | {_derivatives(call)} |")
    return "\n".join(lines) + "\n"


def operators_page() -> str:
    from graphc.ops import OPS

    lines = [
        "| operator | op | precedence (higher binds tighter) | derivative |",
        "| --- | --- | --- | --- |",
    ]
    for op in sorted(OPS.values(), key=lambda op: -op.precedence):
        if not op.infix:
            continue
        written = f"{op.infix}{' ' * op.infix.isalpha()}x" if op.arity == 1 else f"x {op.infix} y"
        lines.append(f"| `{written}` | `{op.name}` | {op.precedence} | {_derivatives(written)} |")
    return "\n".join(lines) + "\n"


# Run in one child process (``python -m graphc`` is the stable entry point; the command line
# installs its own signal handlers, which the Sphinx process should not get): print the help of
# ``graphc`` and of each command it lists, as JSON {"": top, command: help, ...}.
_HELP_SCRIPT = """
import contextlib, io, json, re, runpy, sys

def help(*argv):
    sys.argv = ["graphc", *argv, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        runpy.run_module("graphc", run_name="__main__", alter_sys=True)
    return out.getvalue()

top = help()
# the commands are the help's indented "name  summary" lines under the COMMAND argument
commands = re.findall(r"^ {4}([a-z][a-z_-]*) {2,}\\S", top, flags=re.MULTILINE)
print(json.dumps({"": top, **{command: help(command) for command in commands}}))
"""


def cli_page() -> str:
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb")
    done = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    helps: dict[str, str] = json.loads(done.stdout)
    parts = []
    for command, text in helps.items():
        title = f"graphc {command}" if command else "graphc"
        parts += [f"## `{title}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(parts)


_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def results_page(path: Path, out: Path) -> str:
    """A RESULTS.md ready to include: headings one level down, links to local files as paths."""
    folder = path.parent

    def link(match: re.Match[str]) -> str:
        image, label, target = match.groups()
        if "://" in target:
            return match.group(0)
        if image:  # an image beside RESULTS.md: copied next to the generated page
            copy = f"{folder.name}-{Path(target).name}"
            shutil.copyfile(folder / target, out / copy)
            return f"![{label}](_generated/{copy})"
        return f"`{(folder / target).relative_to(ROOT)}`"

    text = _LINK.sub(link, path.read_text(encoding="utf-8"))
    return re.sub(r"^(#+) ", r"##\1 ", text, flags=re.MULTILINE)


def guards_page() -> str:
    """``bench/guard_growth.py``'s table: node counts are exact, so they are measured at build time."""
    spec = importlib.util.spec_from_file_location("guard_growth", BENCH / "guard_growth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.table())


def write_all(out: Path) -> None:
    out.mkdir(exist_ok=True)
    pages = {
        "policy.md": policy_page(),
        "functions.md": functions_page(),
        "operators.md": operators_page(),
        "cli.md": cli_page(),
        "guards.md": guards_page(),
        "results.md": results_page(BENCH / "RESULTS.md", out),
        "results-1m.md": results_page(BENCH / "results-1m" / "RESULTS.md", out),
    }
    for name, text in pages.items():
        target = out / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_all(Path(__file__).resolve().parent / "_generated")
