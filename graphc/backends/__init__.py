"""Backends turn graphs into callables: ``compile(graph) -> Kernel``, registered by name."""

from __future__ import annotations

from collections.abc import Callable

from graphc.errors import BackendError
from graphc.graph import Graph
from graphc.kernel import Kernel


def _numpy(graph: Graph) -> Kernel:
    from graphc.backends import numpy as backend

    return backend.compile_graph(graph)


_LLVM_MISSING = "the llvm backend is not available in this version of graphc; use the numpy backend"


def _llvm(graph: Graph) -> Kernel:
    raise BackendError(_LLVM_MISSING)


BACKENDS: dict[str, Callable[[Graph], Kernel]] = {"numpy": _numpy, "llvm": _llvm}
UNAVAILABLE: dict[str, str] = {"llvm": _LLVM_MISSING}  # registered names that cannot compile yet


def check_backend(backend: str) -> None:
    """Raise BackendError unless ``backend`` names a backend that can compile here."""
    if backend not in BACKENDS:
        known = ", ".join(BACKENDS)
        raise BackendError(f"unknown backend {backend!r} (the backends are: {known})")
    if backend in UNAVAILABLE:
        raise BackendError(UNAVAILABLE[backend])


def compile_graph(graph: Graph, backend: str = "numpy") -> Kernel:
    """Compile ``graph`` with the named backend."""
    try:
        compiler = BACKENDS[backend]
    except (KeyError, TypeError):
        known = ", ".join(BACKENDS)
        raise BackendError(f"unknown backend {backend!r} (the backends are: {known})") from None
    return compiler(graph)
