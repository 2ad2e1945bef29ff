"""The tracing page's examples run as shown (doctest over docs/tracing.md's ``pycon`` blocks)."""

from __future__ import annotations

import doctest
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "tracing.md"


def test_the_tracing_pages_examples_run_as_shown() -> None:
    # a fence ends an example's expected output, as a blank line does for doctest
    lines = ["" if line.startswith("```") else line for line in PAGE.read_text().splitlines()]
    test = doctest.DocTestParser().get_doctest("\n".join(lines), {}, PAGE.name, str(PAGE), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    failed, tried = runner.summarize(verbose=False)
    assert tried >= 40
    assert failed == 0
