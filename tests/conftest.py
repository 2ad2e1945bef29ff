"""Shared test setup: compiled-code caches go to a temporary directory, never to $HOME; hypothesis
draws the same examples on every run (a CI run checks what the author's run checked), unless
``GRAPHC_HYPOTHESIS=explore`` asks it for new ones."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from graphc.backends.llvm.tensor import FULL_CODE_THREAD

# "suite": derandomized, so the suite's verdict depends on the code only, not on the run's luck;
# "explore": fresh random examples each run, for hunting new failures (fix them, then keep them as
# explicit regression tests or @example cases).
settings.register_profile("suite", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("GRAPHC_HYPOTHESIS", "suite"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("graphc-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRAPHC_CACHE_DIR", str(directory / "cache"))
        patch.delenv("GRAPHC_NO_CACHE", raising=False)
        yield


@pytest.fixture(autouse=True)
def _full_code_compiled() -> Iterator[None]:
    """Each test ends once the loop kernels' full code it set compiling is in: no background
    compile runs on into the next test (its monkeypatches, its counts)."""
    yield
    for thread in threading.enumerate():
        if thread.name == FULL_CODE_THREAD:
            thread.join()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``cli("eval", "x", "--at", "x=1")`` runs the command line: (exit status, stdout, stderr)."""
    from graphc.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
