"""The LLVM backend's tensor kernels from text to a first call: BLAS found without importing SciPy,
kernels loaded from the disk cache without building IR, and ``Kernel.into`` on tensor kernels."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest

import graphc
from graphc.backends.llvm import tensor, tensor_blas

RNG = np.random.default_rng(2624)
MLP = (
    "X: [n, 6]; T: [n, 3]; W1: [6, 5]; b1: [5]; W2: [5, 3]; b2: [3]\n"
    "h = tanh(X @ W1 + b1); z = h @ W2 + b2\n"
    "-mean(sum(T * log_softmax(z, axis=-1), axis=-1))"
)
WEIGHTS = ["W1", "b1", "W2", "b2"]


def _mlp_arrays(n: int = 7) -> dict[str, np.ndarray]:
    return {
        "X": RNG.normal(size=(n, 6)),
        "T": np.eye(3)[RNG.integers(0, 3, n)],
        "W1": RNG.normal(size=(6, 5)),
        "b1": RNG.normal(size=5),
        "W2": RNG.normal(size=(5, 3)),
        "b2": RNG.normal(size=3),
    }


_DGEMM = ctypes.CFUNCTYPE(None, *(ctypes.c_void_p,) * 13)


def _product(address: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` by the Fortran dgemm at ``address`` (row-major operands: computes ``bᵀ aᵀ``)."""
    (m, k), n = a.shape, b.shape[1]
    c = np.zeros((m, n))
    ints = [ctypes.c_int32(v) for v in (n, m, k, n, k, n)]
    alpha, beta, no = ctypes.c_double(1.0), ctypes.c_double(0.0), ctypes.c_char(b"N")
    _DGEMM(address)(
        *(ctypes.addressof(x) for x in (no, no, ints[0], ints[1], ints[2], alpha)),
        b.ctypes.data, ctypes.addressof(ints[3]), a.ctypes.data, ctypes.addressof(ints[4]),
        ctypes.addressof(beta), c.ctypes.data, ctypes.addressof(ints[5]),
    )  # fmt: skip
    return c


def test_the_bundled_dgemm_multiplies_as_scipys_cython_blas_does() -> None:
    bundled = tensor_blas._bundled_dgemm()
    if not bundled:
        pytest.skip("this SciPy does not bundle its BLAS as a library of its own")
    capsule = tensor_blas._cython_blas().__pyx_capi__["dgemm"]
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    by_cython = int(pointer(capsule, name(capsule)))
    a, b = RNG.normal(size=(7, 5)), RNG.normal(size=(5, 4))
    assert np.array_equal(_product(bundled, a, b), _product(by_cython, a, b))
    np.testing.assert_allclose(_product(bundled, a, b), a @ b, rtol=1e-13, atol=1e-14)


def test_a_tensor_kernel_with_blas_in_a_fresh_process_never_imports_scipy(
    tmp_path: Any,
) -> None:
    if not tensor_blas._bundled_dgemm():
        pytest.skip("this SciPy does not bundle its BLAS: dgemm comes through scipy.linalg.cython_blas")
    program = (
        "import sys, numpy as np, graphc\n"
        "from graphc.backends.llvm import tensor\n"
        "text = 'A: [m, k]; B: [k, n]; sum(tanh(A @ B))'\n"
        "kernel = graphc.value_and_grad(text, backend='llvm')\n"
        "rng = np.random.default_rng(1)\n"
        "value, (dA, dB) = kernel(A=rng.normal(size=(90, 80)), B=rng.normal(size=(80, 70)))\n"
        "assert 'graphc_dgemm' in kernel.source\n"
        "print('scipy' in sys.modules, repr(float(value)), float(dA.sum()).hex())\n"
    )
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "cache"))
    runs = [
        subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
        for _ in range(2)  # the first compiles and stores the kernel, the second loads it
    ]
    first, second = (run.stdout.split() for run in runs)
    assert first[0] == second[0] == "False"  # SciPy's package was never imported
    assert first[1:] == second[1:]  # the cached kernel computes the same bits


def test_a_tensor_kernel_from_the_disk_cache_builds_no_ir_and_computes_the_same_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arrays = _mlp_arrays()
    first = graphc.value_and_grad(MLP, wrt=WEIGHTS, backend="llvm")
    built: list[str] = []
    text, linked = tensor.tensor_text, tensor._linked
    monkeypatch.setattr(tensor, "tensor_text", lambda *a: built.append("text") or text(*a))
    monkeypatch.setattr(tensor, "_linked", lambda *a: built.append("linked") or linked(*a))
    again = graphc.value_and_grad(MLP, wrt=WEIGHTS, backend="llvm")
    assert built == [] and again.source == first.source
    (value, partials), (cached, cached_partials) = first(**arrays), again(**arrays)
    assert value == cached and all(
        np.array_equal(a, b) for a, b in zip(partials, cached_partials, strict=True)
    )
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    graphc.value_and_grad(MLP, wrt=WEIGHTS, backend="llvm")
    assert built == ["text", "linked"]  # the counting sees a compile when there is one


def _flat(result: Any) -> list[Any]:
    """A kernel's result (an array, a tuple, nested tuples) as a flat list of arrays."""
    if isinstance(result, tuple):
        return [leaf for item in result for leaf in _flat(item)]
    return [result]


def _like(result: Any) -> Any:
    """Fresh arrays shaped like a kernel's result, nested the same way."""
    if isinstance(result, tuple):
        return tuple(_like(item) for item in result)
    return np.full(np.shape(result), np.nan)


KERNELS = {
    "compile": lambda backend: graphc.compile(MLP, backend=backend),
    "grad": lambda backend: graphc.grad(MLP, wrt=WEIGHTS, backend=backend),
    "value_and_grad": lambda backend: graphc.value_and_grad(MLP, wrt=WEIGHTS, backend=backend),
    "jacobian": lambda backend: graphc.jacobian("x: [3]; W: [2, 3]; tanh(W @ x)", backend=backend),
}


@pytest.mark.parametrize("backend", ["llvm", "numpy"])
@pytest.mark.parametrize("make", list(KERNELS))
def test_into_a_tensor_kernels_arrays_equals_a_call(make: str, backend: str) -> None:
    kernel = KERNELS[make](backend)
    if make == "jacobian":
        calls = [{"x": RNG.normal(size=3), "W": RNG.normal(size=(2, 3))}]
        calls.append({"x": RNG.normal(size=(4, 3)), "W": RNG.normal(size=(2, 3))})  # a batch of 4
    else:
        calls = [_mlp_arrays(7), _mlp_arrays(7), _mlp_arrays(30)]  # a new n: a new shape
    for arrays in calls:
        want = kernel(**arrays)
        out = _like(want)
        assert kernel.into(out, **arrays) is out
        for got, expected in zip(_flat(out), _flat(want), strict=True):
            assert got.shape == np.shape(expected) and np.array_equal(got, expected)


def test_into_checks_a_tensor_kernels_arrays_once_per_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphc import kernel as kernel_module

    kernel = graphc.value_and_grad(MLP, wrt=WEIGHTS, backend="llvm")
    checks: list[int] = []
    check = kernel_module._check_arrays
    monkeypatch.setattr(kernel_module, "_check_arrays", lambda *a: checks.append(1) or check(*a))
    arrays = _mlp_arrays(9)
    out = _like(kernel(**arrays))
    for _ in range(3):
        kernel.into(out, **_mlp_arrays(9))
    assert len(checks) == 1
    kernel.into(_like(out), **arrays)  # other arrays: checked
    assert len(checks) == 2
    for _ in range(2):  # an input found clear once is not measured again; an output as input is
        kernel.into(out, **arrays)
        with pytest.raises(graphc.OutputError, match=r"out for output 2 \(∂f/∂b1\) overlaps the input 'b1'"):
            kernel.into(out, **{**arrays, "b1": out[1][1]})


@pytest.mark.parametrize("backend", ["llvm", "numpy"])
def test_into_a_tensor_kernel_refuses_unfit_arrays_in_one_line(backend: str) -> None:
    kernel = graphc.value_and_grad(MLP, wrt=WEIGHTS, backend=backend)
    arrays = _mlp_arrays(5)
    good = _like(kernel(**arrays))
    value, (dW1, db1, dW2, db2) = good
    readonly = np.empty(3)
    readonly.flags.writeable = False
    wrong = {
        r"out for output 1 \(∂f/∂W1\) has shape \(5, 6\), but its result has shape \(6, 5\)": (
            value,
            (np.empty((5, 6)), db1, dW2, db2),
        ),
        r"out for output 0 \(f\) has shape \(1,\), but its result has shape \(\)": (
            np.empty(1),
            (dW1, db1, dW2, db2),
        ),
        r"out for output 2 \(∂f/∂b1\) must have dtype float64, got float32": (
            value,
            (dW1, np.empty(5, np.float32), dW2, db2),
        ),
        r"out for output 3 \(∂f/∂W2\) must be C-contiguous": (value, (dW1, db1, np.empty((3, 5)).T, db2)),
        r"out for output 4 \(∂f/∂b2\) is read-only": (value, (dW1, db1, dW2, readonly)),
        r"out for output 4 \(∂f/∂b2\) overlaps the input 'b2'": (value, (dW1, db1, dW2, arrays["b2"])),
        r"out must be a tuple of 4 arrays \(the partials\), got 3 items": (value, (dW1, db1, dW2)),
    }
    for message, out in wrong.items():
        with pytest.raises(graphc.OutputError, match=f"^{message}$"):
            kernel.into(out, **arrays)
    with pytest.raises(graphc.EvaluationError, match="input 'W1' is declared"):
        kernel.into(good, **{**arrays, "W1": np.ones((5, 6))})
    assert kernel.into(good, **arrays) is good  # the good arrays still work


def test_a_fresh_tensor_kernel_runs_quick_code_first_then_the_full_code_with_the_same_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "W: [4, 5]; x: [n, 5]; c: [4]; sum(tanh(x @ transpose(W)) * c) + logsumexp(W @ transpose(x))"
    arrays = {"W": RNG.normal(size=(4, 5)), "x": RNG.normal(size=(40, 5)), "c": RNG.normal(size=4)}
    levels: list[bool] = []
    machine = tensor.target_machine
    monkeypatch.setattr(tensor, "target_machine", lambda fast=False: levels.append(fast) or machine(fast))
    kernel = graphc.value_and_grad(text, backend="llvm")
    loops = kernel.function
    assert True in levels and loops._full is not None  # compiled quickly
    levels.clear()
    first = _flat(kernel(**arrays))
    assert levels == [] and loops._full is not None  # the first call ran the quick code
    for _ in range(3):  # the quick code or the full code, as the background compile goes
        assert all(np.array_equal(a, b) for a, b in zip(_flat(kernel(**arrays)), first, strict=True))
    loops.wait()
    assert levels and True not in levels  # then fully (not quickly), once:
    assert loops._full is None and len(loops._engines) == 2
    assert all(np.array_equal(a, b) for a, b in zip(_flat(kernel(**arrays)), first, strict=True))
    compiled = len(levels)
    again = graphc.value_and_grad(text, backend="llvm")  # the cache has the full code now
    assert len(levels) == compiled and again.function._full is None
    assert all(np.array_equal(a, b) for a, b in zip(_flat(again(**arrays)), first, strict=True))


def test_calls_run_the_quick_code_while_the_full_code_compiles_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    W, x = RNG.normal(size=(3, 6)), RNG.normal(size=(9, 6))
    release = threading.Event()
    optimize = tensor._optimize
    monkeypatch.setattr(tensor, "_optimize", lambda module: release.wait(60) and optimize(module))
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")  # compiled here, not loaded
    kernel = graphc.value_and_grad("W: [3, 6]; x: [n, 6]; sum(exp(W @ transpose(x)))", backend="llvm")
    loops = kernel.function
    try:
        first = _flat(kernel(W=W, x=x))
        for _ in range(3):  # the second call starts the full compile, held back here: none waits
            assert all(np.array_equal(a, b) for a, b in zip(_flat(kernel(W=W, x=x)), first, strict=True))
        assert loops._full is not None and loops._compiler is not None and loops._compiler.is_alive()
        assert len(loops._engines) == 1
    finally:
        release.set()
    loops.wait()
    assert loops._full is None and len(loops._engines) == 2
    assert all(np.array_equal(a, b) for a, b in zip(_flat(kernel(W=W, x=x)), first, strict=True))


def test_quick_code_from_the_disk_cache_is_compiled_fully_from_the_second_call_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "W: [3, 6]; x: [6]; sum(exp(W @ x) * (W @ x))"
    W, x = RNG.normal(size=(3, 6)), RNG.normal(size=6)
    graphc.grad(text, backend="llvm")  # stores the quick code only: never called
    loaded = graphc.grad(text, backend="llvm")
    assert loaded.function._full is not None  # the quick code, from the cache
    monkeypatch.setattr(tensor, "tensor_text", lambda *a: pytest.fail("the IR was built again"))
    first = loaded(W, x)
    assert all(np.array_equal(a, b) for a, b in zip(loaded(W, x), first, strict=True))
    loaded.function.wait()
    assert loaded.function._full is None
    assert all(np.array_equal(a, b) for a, b in zip(loaded(W, x), first, strict=True))


def test_a_loop_kernel_binds_each_tuple_of_input_shapes_once_and_forgets_beyond_its_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel = graphc.value_and_grad(MLP, wrt=WEIGHTS, backend="llvm")
    loops = kernel.function
    binds: list[int] = []
    bind = loops._bind
    monkeypatch.setattr(loops, "_bind", lambda *a: binds.append(1) or bind(*a))
    monkeypatch.setattr(tensor, "SHAPES_KEPT", 3)
    numpy_kernel = graphc.value_and_grad(MLP, wrt=WEIGHTS)
    for n in (7, 7, 1, 7, 30, 1, 30):
        arrays = _mlp_arrays(n)
        got, want = _flat(kernel(**arrays)), _flat(numpy_kernel(**arrays))
        assert all(np.allclose(a, b, rtol=1e-12, atol=1e-13) for a, b in zip(got, want, strict=True))
    assert len(binds) == 3  # n = 7, 1 and 30: each bound once
    kernel(**_mlp_arrays(2))  # a fourth tuple of shapes: the kept ones are forgotten
    kernel(**_mlp_arrays(7))
    assert len(binds) == 5 and len(loops._shaped) == 2
    with pytest.raises(graphc.EvaluationError, match="input 'W1' is declared"):
        kernel(**{**_mlp_arrays(7), "W1": np.ones((5, 6))})
    with pytest.raises(graphc.EvaluationError, match="unexpected argument 'w1'"):
        kernel(**{("w1" if name == "W1" else name): v for name, v in _mlp_arrays(7).items()})
