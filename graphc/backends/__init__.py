"""Backends turn graphs into callables: ``compile(graph) -> Kernel``, registered by name."""

from __future__ import annotations

from collections.abc import Callable

from graphc.errors import BackendError
from graphc.graph import Graph
from graphc.kernel import Kernel


def _numpy(graph: Graph) -> Kernel:
    from graphc.backends import numpy as backend

    return backend.compile_graph(graph)


def _llvm(graph: Graph) -> Kernel:
    raise BackendError("the llvm backend is not available in this version of graphc; use the numpy backend")


BACKENDS: dict[str, Callable[[Graph], Kernel]] = {"numpy": _numpy, "llvm": _llvm}


def compile_graph(graph: Graph, backend: str = "numpy") -> Kernel:
    """Compile ``graph`` with the named backend."""
    try:
        compiler = BACKENDS[backend]
    except (KeyError, TypeError):
        known = ", ".join(BACKENDS)
        raise BackendError(f"unknown backend {backend!r} (the backends are: {known})") from None
    return compiler(graph)
