"""Every script in examples/ runs from a fresh install and passes its own assertions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The textbook's chapter scripts (ch1_... ch9_...) run in test_textbook_examples.py.
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not re.match(r"ch\d+_", p.name))


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(script)], check=False, capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
