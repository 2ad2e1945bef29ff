"""Pickled kernels: the graph and the options travel, machine code does not; another process
compiles them again (or loads them from its disk cache) and computes the same bits."""

from __future__ import annotations

import multiprocessing
import pickle
import pickletools
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphc
from graphc.errors import DataError
from graphc.graph import Graph
from graphc.kernel import rebuild

EXPR = "sin(x*y) + exp(x)/(1 + y*y)"

KINDS: dict[str, Callable[[str], graphc.Kernel]] = {
    "compile": lambda backend: graphc.compile(f"{EXPR}, x*y - tanh(y)", backend),
    "grad": lambda backend: graphc.grad(EXPR, backend=backend),
    "value_and_grad": lambda backend: graphc.value_and_grad(EXPR, backend=backend),
    "jacobian": lambda backend: graphc.jacobian(f"{EXPR}, x/y, atan2(x, y)", backend=backend),
    "hessian": lambda backend: graphc.hessian(EXPR, backend=backend),
    "derivative": lambda backend: graphc.derivative(EXPR, "x", order=3, backend=backend),
    "implicit": lambda backend: graphc.implicit("x^2 + y^2 - 1", "y", backend=backend),
    "threads": lambda backend: graphc.grad(EXPR, backend=backend, threads=2 if backend == "llvm" else None),
}
RNG = np.random.default_rng(28)
ARGS = (RNG.uniform(-2.0, 2.0, 2001), RNG.uniform(0.5, 2.0, 2001))


def _arrays(result: Any) -> Iterator[np.ndarray]:
    """Every array in a kernel's result (a tuple, a value and a tuple of partials, an array)."""
    stack = [result]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
        else:
            yield np.asarray(item)


def _bits(result: Any) -> list[tuple[tuple[int, ...], bytes]]:
    return [(a.shape, a.tobytes()) for a in _arrays(result)]


def _call_pickled(blob: bytes, args: tuple[Any, ...]) -> list[tuple[tuple[int, ...], bytes]]:
    """In a worker: load the kernel, call it, return its result's shapes and bytes."""
    kernel = pickle.loads(blob)
    return _bits(kernel(*args))


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    # spawn: a fresh interpreter, nothing inherited from this process's compiled code
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        yield executor


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_pickled_kernel_gives_the_same_bits_in_another_process(
    kind: str, backend: str, pool: ProcessPoolExecutor
) -> None:
    kernel = KINDS[kind](backend)
    blob = pickle.dumps(kernel)
    here = _bits(kernel(*ARGS))
    there = pool.submit(_call_pickled, blob, ARGS).result(timeout=120)
    assert there == here
    at_a_point = pool.submit(_call_pickled, blob, (0.75, 1.25)).result(timeout=120)
    assert at_a_point == _bits(kernel(0.75, 1.25))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_loaded_kernel_keeps_its_names_and_options(kind: str) -> None:
    kernel = KINDS[kind]("llvm")
    loaded = pickle.loads(pickle.dumps(kernel))
    assert (loaded.variables, loaded.outputs, loaded.wrt, loaded.mode, loaded.result, loaded.threads) == (
        kernel.variables,
        kernel.outputs,
        kernel.wrt,
        kernel.mode,
        kernel.result,
        kernel.threads,
    )
    assert loaded.graph.to_data() == kernel.graph.to_data()
    assert loaded.source == kernel.source


def test_a_pickle_names_one_function_and_holds_no_machine_code() -> None:
    blob = pickle.dumps(graphc.value_and_grad(EXPR, backend="llvm"))
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(blob)]
    # one import (STACK_GLOBAL takes the module and the name from the two strings pushed before it)
    assert [name for name, _ in ops if "GLOBAL" in name] == ["STACK_GLOBAL"]
    position = [name for name, _ in ops].index("STACK_GLOBAL")
    assert [arg for _, arg in ops[:position] if isinstance(arg, str)][-2:] == ["graphc.kernel", "rebuild"]
    assert not any("BYTES" in name for name, _ in ops)


def test_a_worker_pool_loads_the_machine_code_from_the_disk_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(cache))
    kernel = graphc.value_and_grad("cosh(x*y) - x/(2 + sin(y))", backend="llvm")  # compiled and stored here
    blob = pickle.dumps(kernel)
    context = multiprocessing.get_context("spawn")
    # graphc's runtime (the vector functions every kernel calls) is compiled once per machine too:
    # this process has it in memory already, so a first fresh process stores it
    with ProcessPoolExecutor(1, mp_context=context) as first:
        first.submit(_call_pickled, blob, ARGS).result(timeout=120)
    entries = {path.relative_to(cache): path.stat().st_ino for path in cache.rglob("*.bin")}
    assert {path.parts[0] for path in entries} == {"llvm", "runtime"}
    with ProcessPoolExecutor(2, mp_context=context) as workers:
        results = list(workers.map(_call_pickled, [blob] * 6, [ARGS] * 6, timeout=180))
    assert all(result == _bits(kernel(*ARGS)) for result in results)
    # an entry compiled again would have been written anew (a new file renamed over the old one)
    after = {path.relative_to(cache): path.stat().st_ino for path in cache.rglob("*.bin")}
    assert after == entries


def _state(kernel: graphc.Kernel) -> dict[str, Any]:
    function, (state,) = kernel.__reduce__()
    assert function is rebuild
    return state


def test_loading_checks_the_state_against_graphcs_own_tables() -> None:
    good = _state(graphc.grad("sin(x)*y"))
    assert rebuild(good)(1.0, 2.0) == graphc.grad("sin(x)*y")(1.0, 2.0)
    cases: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (lambda s: s.update(format="something else"), "not a pickled graphc kernel"),
        (lambda s: s.update(result=["os.system", 1]), "unknown result"),
        (lambda s: s.update(result=["matrix", "1", 2]), "malformed result"),
        (lambda s: s.update(backend=["numpy"]), "backend is not a name"),
        (lambda s: s.update(wrt="x"), "wrt is not a list"),
        (lambda s: s["graph"]["nodes"][1].__setitem__(0, "system"), "node 1 has an unknown op 'system'"),
        (lambda s: s["graph"]["nodes"][1].__setitem__(1, [5]), "not an earlier node"),
        (lambda s: s["graph"]["nodes"][1].__setitem__(1, [0, 0]), "node 1 (sin) needs 1 operand"),
        (lambda s: s["graph"]["nodes"].append(["var", [], None, "x"]), "not a new variable"),
        (lambda s: s["graph"]["nodes"].append(["sin", [0], None, None]), "repeats node 1"),
        (lambda s: s["graph"].update(outputs=[99]), "not a node id below"),
        (lambda s: s["graph"].update(info={"wrt": [print]}), "holds a builtin_function_or_method"),
    ]
    for change, message in cases:
        state = _state(graphc.grad("sin(x)*y"))
        change(state)
        with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
            rebuild(state)


def test_graph_data_round_trips_node_for_node() -> None:
    graph = graphc.differentiate("a = x*y; b = exp(-a); b*b + 0.5*pi - (-0.0) * x", method="dp")
    again = Graph.from_data(graph.to_data())
    assert again.to_data() == graph.to_data()
    assert again.to_text() == graph.to_text()
    assert again.info == graph.info
    # hash-consing still works on the loaded graph: building an existing node returns it
    x, y = again.variable("x"), again.variable("y")
    assert again.mul(x, y) == graph.mul(graph.variable("x"), graph.variable("y"))
