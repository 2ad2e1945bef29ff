"""The host the LLVM backend compiles for: its target machine, vector width and features.

LLVM's global context is not thread-safe, so compiling and loading happen one at a time, under
:data:`LOCK`.
"""

from __future__ import annotations

import functools
import threading

import llvmlite.binding as llvm

LOCK = threading.Lock()


@functools.cache
def target_machine(fast: bool = False) -> llvm.TargetMachine:
    """The host's target machine for optimising and code generation (never given to an engine).

    ``fast``: code generation at ``-O0`` (fast instruction selection and register allocation).
    """
    return new_target_machine(0 if fast else 3)


def new_target_machine(level: int = 3) -> llvm.TargetMachine:
    """A fresh target machine for the host (``llvm.initialize`` is gone: initialise the target only).

    An execution engine takes ownership of its target machine and frees it with itself, so each
    engine needs its own.
    """
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    cpu, features = host()
    return target.create_target_machine(cpu=cpu, features=features, opt=level, codemodel="jitdefault")


@functools.cache
def host() -> tuple[str, str]:
    """The host CPU's name and its features as LLVM spells them (asked once: every engine needs a
    target machine of its own)."""
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


@functools.cache
def lanes() -> int:
    """Points per vector: the host's widest vector of doubles (AVX-512: 8, AVX: 4, else SSE2's 2)."""
    features = llvm.get_host_cpu_features()
    if features.get("avx512f", False):
        return 8
    return 4 if features.get("avx", False) else 2


@functools.cache
def fma() -> bool:
    """Whether the host fuses multiply-adds (graphc's own exp, log... use them if so)."""
    return bool(llvm.get_host_cpu_features().get("fma", False))
