"""The manual builds with warnings as errors, and its generated tables are the code's own.

This is how the README's test command (and .ci/run) keeps docs/ from rotting: a broken
cross-reference, a docstring that is not valid reST, or a page missing from the table of contents
fails the suite.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from graphc.policy import POLICY, REWRITES

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manual built once, as HTML, with every warning an error."""
    out = tmp_path_factory.mktemp("html")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def page_text(built: Path, page: str) -> str:
    """A built page as plain text (tags dropped, entities decoded, white space collapsed)."""
    text = re.sub(r"<[^>]+>", "", (built / f"{page}.html").read_text(encoding="utf-8"))
    return " ".join(html.unescape(text).split())


def test_the_manual_builds_without_warnings(built: Path) -> None:
    for page in ("index", "language", "methods", "policy", "backends", "reports", "robustness", "cli", "api"):
        assert (built / f"{page}.html").is_file(), page


def test_the_policy_page_is_the_policy_module(built: Path) -> None:
    text = page_text(built, "policy")
    for row in POLICY + REWRITES:  # each row's expression and reason, as written (no emphasis eaten)
        assert row.expr in text, row
        assert row.why in text, row
    tables = (built / "policy.html").read_text(encoding="utf-8").split("</table>")
    policy, rewrites = [table for table in tables if "<p>expression</p>" in table]
    assert policy.count("<tr") == len(POLICY) + 1  # the header and one row per point: none dropped
    assert rewrites.count("<tr") == len(REWRITES) + 1


def test_the_api_page_documents_every_public_name(built: Path) -> None:
    import graphc

    text = page_text(built, "api")
    for name in graphc.__all__:
        assert f"graphc.{name}" in text, name


def test_the_language_page_lists_every_function(built: Path) -> None:
    from graphc.ops import FUNCTIONS

    text = page_text(built, "language")
    for name in FUNCTIONS:
        assert f"{name}(x" in text, name


def test_the_cli_page_has_every_command(built: Path) -> None:
    text = page_text(built, "cli")
    for command in ("grad", "eval", "trace", "implicit", "report", "check"):
        assert f"graphc {command}" in text and f"usage: graphc {command}" in text, command
