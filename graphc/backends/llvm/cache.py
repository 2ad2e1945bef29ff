"""The disk cache of the LLVM backend: machine code keyed by a hash of the graph and the options.

Loading cached machine code runs it, so the cache is a code-execution boundary. It lives in a
per-user directory (``$GRAPHC_CACHE_DIR``, else ``$XDG_CACHE_HOME/graphc``, else
``~/.cache/graphc``) created with mode 0700; a directory owned by someone else or open to group
or others is not used (a warning says why). Each entry starts with a header holding the key and
a SHA-256 of the rest; an entry that is truncated, altered, foreign or unreadable is ignored and
rebuilt. ``GRAPHC_NO_CACHE=1`` turns the cache off.

Kernels live in ``llvm/``, graphc's runtime (:func:`graphc.backends.llvm.runtime.runtime`: its vector
functions and its tape interpreter, code that depends on the machine but not on any graph) in
``runtime/``: compiled once per machine, not once per process.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from graphc.graph import Graph

FORMAT = b"graphc-llvm-cache 1\n"


@dataclass
class Build:
    """What compiling a graph produces, and what the disk cache keeps of it."""

    object_code: bytes
    symbols: list[str]  # C functions the code calls
    scratch: int  # scratch slots per point
    ir: str  # the optimised LLVM IR
    exports: list[str] = field(default_factory=list)  # functions it defines for other code to call


def graph_key(graph: Graph, options: str) -> str:
    """A SHA-256 of the graph's nodes, variables and outputs and of ``options``.

    Built from node ids, op names, names and the bits of constants only, so the same graph
    gives the same key in every process (it does not depend on ``PYTHONHASHSEED``).
    """
    digest = hashlib.sha256(FORMAT + options.encode() + b"\0")
    for node in range(len(graph)):
        value = graph.const_value(node)
        if value is not None:
            data = struct.pack("<d", value).hex()
        elif graph.op(node) == "var":
            data = graph.name(node)
        else:
            data = ",".join(map(str, graph.args(node)))
        digest.update(f"{graph.op(node)}:{data}\n".encode())
    digest.update(json.dumps([graph.variables, graph.outputs]).encode())
    return digest.hexdigest()


def _encode(key: str, built: Build) -> bytes:
    meta = json.dumps({"symbols": built.symbols, "scratch": built.scratch, "exports": built.exports}).encode()
    ir = zlib.compress(built.ir.encode(), 1)
    body = struct.pack("<QQQ", len(meta), len(ir), len(built.object_code)) + meta + ir + built.object_code
    return (
        FORMAT
        + key.encode()
        + b"\n"
        + hashlib.sha256(key.encode() + body).hexdigest().encode()
        + b"\n"
        + body
    )


def _decode(key: str, data: bytes) -> Build | None:
    """The entry's Build, or None unless the header names ``key`` and the body's hash matches."""
    header = len(FORMAT) + 65 * 2
    if len(data) < header + 24 or not data.startswith(FORMAT):
        return None
    body = data[header:]
    expected = key.encode() + b"\n" + hashlib.sha256(key.encode() + body).hexdigest().encode() + b"\n"
    if data[len(FORMAT) : header] != expected:
        return None
    sizes = struct.unpack_from("<QQQ", body)
    if 24 + sum(sizes) != len(body):
        return None
    meta_end = 24 + sizes[0]
    ir_end = meta_end + sizes[1]
    try:
        meta = json.loads(body[24:meta_end])
        ir = zlib.decompress(body[meta_end:ir_end]).decode()
        symbols, scratch = [str(s) for s in meta["symbols"]], int(meta["scratch"])
        exports = [str(s) for s in meta.get("exports", [])]
    except (ValueError, KeyError, TypeError, AttributeError, zlib.error):
        return None
    return Build(bytes(body[ir_end:]), symbols, scratch, ir, exports)


class Cache:
    """A directory of cache entries, or no cache at all (``directory`` None)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @classmethod
    def from_environment(cls) -> Cache:
        if os.environ.get("GRAPHC_NO_CACHE", "") not in ("", "0"):
            return cls(None)
        configured = os.environ.get("GRAPHC_CACHE_DIR")
        if configured:
            return cls(Path(configured))
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(Path(base) / "graphc")

    def usable(self, folder: str = "llvm") -> bool:
        """Whether entries can be kept in ``folder`` (else a warning has said why)."""
        return self._usable_directory(folder) is not None

    def _usable_directory(self, folder: str = "llvm") -> Path | None:
        """The directory, created 0700 if missing, if it is ours and closed to others; else None."""
        if self.directory is None:
            return None
        directory = self.directory / folder
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.mkdir(mode=0o700, exist_ok=True)
            for path in (self.directory, directory):
                info = path.lstat()
                problem = _unsafe(info)
                if problem:
                    warnings.warn(
                        f"graphc: not using the cache directory {path}: {problem}",
                        RuntimeWarning,
                        stacklevel=4,
                    )
                    return None
        except OSError as err:
            warnings.warn(
                f"graphc: not using the cache directory {directory}: {err}", RuntimeWarning, stacklevel=4
            )
            return None
        return directory

    def load(self, key: str, folder: str = "llvm") -> Build | None:
        directory = self._usable_directory(folder)
        if directory is None:
            return None
        try:
            fd = os.open(directory / f"{key}.bin", os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        with os.fdopen(fd, "rb") as file:
            try:
                if _unsafe(os.fstat(fd)) or not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                data = file.read()
            except OSError:
                return None
        return _decode(key, data)

    def store(self, key: str, built: Build, folder: str = "llvm") -> None:
        """Write the entry atomically (a private temporary file renamed over the old one)."""
        directory = self._usable_directory(folder)
        if directory is None:
            return
        try:
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # mode 0600
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(_encode(key, built))
                os.replace(temporary, directory / f"{key}.bin")
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            pass  # a full disk or a read-only cache only costs the next compile its time


def _unsafe(info: os.stat_result) -> str | None:
    """Why a cache directory or file must not be trusted, or None."""
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"owned by user id {info.st_uid}, not by you"
    if info.st_mode & 0o077:
        return f"its permissions {stat.S_IMODE(info.st_mode):o} let other users write or read it"
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    return None
