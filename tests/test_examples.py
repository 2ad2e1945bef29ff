"""Every script in examples/ runs from the source tree and passes its own assertions.

The textbook's chapter scripts (``ch1_...`` to ``ch9_...``) assert their own numbers (against the
lectures' formulas, hand-written recursions and central differences) and must also print the line
that states their result (:data:`SHOWS`); each chapter has exactly one script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = re.compile(r"ch(\d+)_\w+\.py\Z")
SCRIPTS = sorted((ROOT / "examples").glob("*.py"), key=lambda p: p.name)

# One line (a substring) each chapter's output must contain: the result it demonstrates.
SHOWS = {
    1: "products by w²'s local derivative 2w: dp 1 (adjoints summed first), paths 2",
    2: "3 layers x 100 units: 1,000,000 paths from x to o",
    3: "every δ, Δ and weight gradient equals the hand-written recursion",
    4: "forward mode makes 3 passes (a column each), reverse mode 2 (a row each)",
    5: "(every backprop gradient agrees with the central differences to 1e-6)",
    6: "graphc's Jacobian of softmax equals Diag(y) − y yᵀ",
    7: "all nine of the slides' ∂L/∂X_ij formulas and four ∂L/∂F_mn formulas hold",
    8: "dz/dx = -x/z",
    9: "gradient check at the start: largest relative difference from central differences",
}


def chapter(script: Path) -> int | None:
    match = CHAPTER.match(script.name)
    return None if match is None else int(match.group(1))


def test_there_are_examples_and_every_chapter_has_one_script():
    assert any(chapter(p) is None for p in SCRIPTS)
    assert sorted(n for n in map(chapter, SCRIPTS) if n is not None) == sorted(SHOWS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs(script):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    number = chapter(script)
    if number is not None:
        assert SHOWS[number] in result.stdout
