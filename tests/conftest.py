"""Shared test setup: compiled-code caches go to a temporary directory, never to $HOME."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("graphc-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRAPHC_CACHE_DIR", str(directory / "cache"))
        patch.delenv("GRAPHC_NO_CACHE", raising=False)
        yield


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``cli("eval", "x", "--at", "x=1")`` runs the command line: (exit status, stdout, stderr)."""
    from graphc.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
