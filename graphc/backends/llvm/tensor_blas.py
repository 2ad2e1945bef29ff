"""BLAS's ``dgemm`` for tensor kernels: SciPy's, found through ``scipy.linalg.cython_blas``.

SciPy exports the BLAS it is built with as Cython functions whose addresses sit in PyCapsules
(``cython_blas.__pyx_capi__``); the address of ``dgemm`` is given to the JIT as the symbol
:data:`DGEMM`, which tensor kernels call (the Fortran ABI: every argument a pointer, 32-bit
integers, column-major matrices). This is how Numba's ``np.dot`` reaches BLAS too.

Loading ``cython_blas`` imports the ``scipy`` package (its Cython utilities live there), which
costs a cached kernel most of its load time. SciPy's wheels ship their BLAS as a library of its
own (``scipy.libs/libscipy_openblas*.so``, ``scipy/.dylibs/`` on macOS) whose ``scipy_dgemm_`` is
the function ``cython_blas.dgemm`` calls, with the same arguments: that library is opened
directly when it is there, and the capsule is the way for every other build of SciPy.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

import llvmlite.binding as llvm

from graphc.errors import BackendError

DGEMM = "graphc_dgemm"


# the dgemm of the OpenBLAS that SciPy's wheels bundle, by the folders they keep it in
_BUNDLED = (("scipy.libs", "libscipy_openblas"), (os.path.join("scipy", ".dylibs"), "libscipy_openblas"))
_BUNDLED_DGEMM = "scipy_dgemm_"


@functools.cache
def dgemm_address() -> int:
    """The address of SciPy's ``dgemm`` (a BackendError if SciPy cannot be imported)."""
    bundled = _bundled_dgemm()
    if bundled:
        return bundled
    try:
        capsule = _cython_blas().__pyx_capi__["dgemm"]
    except (ImportError, OSError, KeyError, AttributeError) as err:  # a core dependency: a broken install
        raise BackendError(f"the llvm backend needs SciPy's BLAS for large matrix products: {err}") from None
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = pointer(capsule, name(capsule))
    if not address:
        raise BackendError("SciPy's cython_blas gave no address for dgemm")
    return int(address)


def _bundled_dgemm() -> int:
    """The address of ``scipy_dgemm_`` in the BLAS library SciPy's wheel bundles, or 0 when SciPy
    was built otherwise (no such library, or it lacks the symbol)."""
    scipy = importlib.util.find_spec("scipy")  # finds the package without importing it
    if scipy is None or not scipy.submodule_search_locations:
        return 0
    site = os.path.dirname(next(iter(scipy.submodule_search_locations)))
    for folder, prefix in _BUNDLED:
        try:
            names = sorted(os.listdir(os.path.join(site, folder)))
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and not name.startswith(prefix + "64"):  # 32-bit integers only
                try:
                    function = getattr(ctypes.CDLL(os.path.join(site, folder, name)), _BUNDLED_DGEMM)
                except (OSError, AttributeError):
                    continue
                return int(ctypes.cast(function, ctypes.c_void_p).value or 0)
    return 0


def _cython_blas() -> ModuleType | Any:
    """``scipy.linalg.cython_blas``, loaded from its own file when SciPy's linalg package is not
    imported yet: the package's ``__init__`` imports all of scipy.linalg, several times the time
    of the rest of a first gradient, for one address."""
    name = "scipy.linalg.cython_blas"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    scipy = importlib.util.find_spec("scipy")
    if scipy is None or not scipy.submodule_search_locations:
        raise ImportError("SciPy is not installed")
    folder = os.path.join(next(iter(scipy.submodule_search_locations)), "linalg")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, f"cython_blas{suffix}")
        if os.path.exists(path):
            loader = importlib.machinery.ExtensionFileLoader(name, path)
            spec = importlib.util.spec_from_file_location(name, path, loader=loader)
            if spec is None:
                break
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
            return module
    import scipy.linalg.cython_blas as imported  # another layout: the ordinary import

    return imported


def register() -> None:
    """Give the JIT the address of dgemm as :data:`DGEMM` (call under the backend's LOCK)."""
    if not llvm.address_of_symbol(DGEMM):
        llvm.add_symbol(DGEMM, dgemm_address())
