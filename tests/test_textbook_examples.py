"""The textbook, executable: every chapter script in examples/ runs and shows what it claims.

Each script asserts its own numbers (against the lectures' formulas, hand-written recursions and
central differences); here each runs as a subprocess from the source tree, must exit 0, and must
print the line that states its result. tests/test_examples.py runs the other examples.
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
SCRIPTS = sorted(
    (p for p in (ROOT / "examples").glob("ch*_*.py") if CHAPTER.match(p.name)), key=lambda p: p.name
)

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


def chapter(script: Path) -> int:
    match = CHAPTER.match(script.name)
    assert match is not None
    return int(match.group(1))


def test_every_chapter_has_one_script():
    assert sorted(chapter(p) for p in SCRIPTS) == sorted(SHOWS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_chapter_runs_and_shows_its_result(script):
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
    assert SHOWS[chapter(script)] in result.stdout
    assert "Traceback" not in result.stderr
