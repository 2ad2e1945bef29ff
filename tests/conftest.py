"""Shared test setup: compiled-code caches go to a temporary directory, never to $HOME."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("graphc-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRAPHC_CACHE_DIR", str(directory / "cache"))
        patch.delenv("GRAPHC_NO_CACHE", raising=False)
        yield
