"""BLAS's ``dgemm`` for tensor kernels: SciPy's, found through ``scipy.linalg.cython_blas``.

SciPy exports the BLAS it is built with as Cython functions whose addresses sit in PyCapsules
(``cython_blas.__pyx_capi__``); the address of ``dgemm`` is given to the JIT as the symbol
:data:`DGEMM`, which tensor kernels call (the Fortran ABI: every argument a pointer, 32-bit
integers, column-major matrices). This is how Numba's ``np.dot`` reaches BLAS too.
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


@functools.cache
def dgemm_address() -> int:
    """The address of SciPy's ``dgemm`` (a BackendError if SciPy cannot be imported)."""
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
