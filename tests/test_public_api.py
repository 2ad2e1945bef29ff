"""The package namespace: ``dir(graphc)`` is the public API, nothing imported along the way."""

from __future__ import annotations

import graphc

PUBLIC = {
    "BACKENDS", "MAX_NODES", "METHODS",
    "ArityError", "BackendError", "CheckResult", "DataError", "EvaluationError", "Graph", "GraphcError",
    "Kernel", "OutputError", "ParseError", "ResourceError", "SingularError", "SymbolicError", "TooManyPathsError",
    "UnknownFunctionError", "UnknownVariableError",
    "as_graph", "check", "compile", "count_paths", "derivative", "differentiate", "from_sympy", "grad",
    "hessian", "implicit", "jacobian", "jvp", "parse", "value_and_grad", "vjp",
    "SparseKernel", "jacobian_sparsity", "hessian_sparsity", "objective", "residuals",
    "block", "blocks", "BlockRegistry", "check_block", "forget",
    # tracing Python functions (issue 31)
    "TraceError", "Traced", "sym", "trace",
}  # fmt: skip


def test_dir_of_the_package_is_the_public_api():
    assert set(dir(graphc)) == PUBLIC | {"__version__"}
    assert set(graphc.__all__) == PUBLIC
    for name in ("Any", "TYPE_CHECKING", "annotations"):
        assert not hasattr(graphc, name)


def test_every_public_name_resolves():
    for name in PUBLIC:
        assert getattr(graphc, name) is not None
    assert graphc.from_sympy.__module__ == "graphc.sympy_bridge"  # lazily imported, still there
