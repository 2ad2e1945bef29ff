"""BLAS's ``dgemm`` for tensor kernels: SciPy's, found through ``scipy.linalg.cython_blas``.

SciPy exports the BLAS it is built with as Cython functions whose addresses sit in PyCapsules
(``cython_blas.__pyx_capi__``); the address of ``dgemm`` is given to the JIT as the symbol
:data:`DGEMM`, which tensor kernels call (the Fortran ABI: every argument a pointer, 32-bit
integers, column-major matrices). This is how Numba's ``np.dot`` reaches BLAS too.
"""

from __future__ import annotations

import ctypes
import functools

import llvmlite.binding as llvm

from graphc.errors import BackendError

DGEMM = "graphc_dgemm"


@functools.cache
def dgemm_address() -> int:
    """The address of SciPy's ``dgemm`` (a BackendError if SciPy cannot be imported)."""
    try:
        from scipy.linalg import cython_blas
    except ImportError as err:  # a core dependency: only a broken install lacks it
        raise BackendError(f"the llvm backend needs SciPy's BLAS for large matrix products: {err}") from None
    capsule = cython_blas.__pyx_capi__["dgemm"]
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = pointer(capsule, name(capsule))
    if not address:
        raise BackendError("SciPy's cython_blas gave no address for dgemm")
    return int(address)


def register() -> None:
    """Give the JIT the address of dgemm as :data:`DGEMM` (call under the backend's LOCK)."""
    if not llvm.address_of_symbol(DGEMM):
        llvm.add_symbol(DGEMM, dgemm_address())
