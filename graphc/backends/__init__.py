"""Backends turn graphs into callables: ``compile(graph) -> Kernel``, registered by name."""

from __future__ import annotations

from collections.abc import Callable

from graphc.errors import BackendError
from graphc.graph import Graph
from graphc.kernel import Kernel


def _numpy(graph: Graph, threads: int | None = None) -> Kernel:
    from graphc.backends import numpy as backend

    if threads is not None:
        raise BackendError("threads= applies to the llvm backend; the numpy backend runs on one thread")
    return backend.compile_graph(graph)


def _llvm(graph: Graph, threads: int | None = None) -> Kernel:
    from graphc.backends import llvm as backend

    if graph.tensor:
        raise BackendError(
            "the llvm backend compiles scalar graphs: this one has tensor (block) nodes, which need "
            "scalarising first; use backend='numpy'"
        )
    return backend.compile_graph(graph, threads=threads)


BACKENDS: dict[str, Callable[..., Kernel]] = {"numpy": _numpy, "llvm": _llvm}
UNAVAILABLE: dict[str, str] = {}  # registered names that cannot compile here, with the reason


def check_backend(backend: str) -> None:
    """Raise BackendError unless ``backend`` names a backend that can compile here."""
    if backend not in BACKENDS:
        known = ", ".join(BACKENDS)
        raise BackendError(f"unknown backend {backend!r} (the backends are: {known})")
    if backend in UNAVAILABLE:
        raise BackendError(UNAVAILABLE[backend])


def compile_graph(graph: Graph, backend: str = "numpy", *, threads: int | None = None) -> Kernel:
    """Compile ``graph`` with the named backend (``threads``: the llvm backend's thread cap)."""
    try:
        compiler = BACKENDS[backend]
    except (KeyError, TypeError):
        known = ", ".join(BACKENDS)
        raise BackendError(f"unknown backend {backend!r} (the backends are: {known})") from None
    kernel = compiler(graph, threads=threads)
    kernel.threads = threads  # what a pickled kernel is compiled with again
    return kernel
