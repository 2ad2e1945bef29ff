"""The LLVM backend's tape: the same bits as compiled code, for every op, call shape and thread."""

from __future__ import annotations

import numpy as np
import pytest
from test_backend_llvm import SPECIAL, all_ops_graph, random_graph

import graphc
from graphc.backends import llvm as backend
from graphc.backends.llvm import plan
from graphc.backends.llvm import tape as llvm_tape
from graphc.backends.llvm.cache import Cache
from graphc.backends.llvm.plan import TAPE_NODES, computed_nodes
from graphc.graph import Graph
from graphc.ops import OPS


def identical(a: object, b: object) -> bool:
    """The same values bit for bit (NaN where NaN, zeros of the same sign), output by output."""
    pairs = zip(a, b, strict=True) if isinstance(a, tuple) else [(a, b)]
    for x, y in pairs:
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or not np.array_equal(x.view(np.int64), y.view(np.int64)):
            return False
    return True


def compiled(graph: Graph, monkeypatch: pytest.MonkeyPatch, **options: object) -> graphc.Kernel:
    monkeypatch.setattr(plan, "TAPE_NODES", 10**9)
    return backend.compile_graph(graph, cache=Cache(None), **options)  # type: ignore[arg-type]


def test_every_op_on_the_tape_gives_the_compiled_kernels_bits(monkeypatch):
    graph = all_ops_graph()
    x = np.repeat(SPECIAL + [0.3, -1.7], len(SPECIAL) + 2)
    y = np.tile(SPECIAL + [2.2, -0.6], len(SPECIAL) + 2)
    tape = backend.compile_tape(graph)
    monkeypatch.setattr(plan, "PART_SIZE", 1)  # each op called as in a split graph
    for name, a, b in zip(OPS, tape(x, y), compiled(graph, monkeypatch)(x, y), strict=True):
        assert identical(a, b), name


@pytest.mark.parametrize("exponent", [2.0, -1.0, 3.0, 0.5])
def test_a_power_by_a_constant_is_lowered_as_the_compiled_kernel_lowers_it(monkeypatch, exponent):
    """x**2 is x*x and x**-1 is 1/x in compiled code (not the C library's pow, which differs from
    them in the last bit): the tape gives those rows opcodes of their own."""
    g = Graph()
    x, y = g.var("x"), g.var("y")
    g.set_outputs([g.pow(g.apply("sin", x), g.const(exponent)), g.pow(x, y)])
    program = llvm_tape.Program.of(g)
    special = exponent in (2.0, -1.0)
    assert (f"pow {exponent!r}" in program.opcodes) == special
    rng = np.random.default_rng(0)
    x_values, y_values = rng.uniform(0.1, 3.0, 100_000), rng.uniform(-2, 2, 100_000)
    assert identical(
        backend.compile_tape(g)(x_values, y_values), compiled(g, monkeypatch)(x_values, y_values)
    )


@pytest.mark.parametrize("seed", range(4))
def test_random_graphs_on_the_tape_equal_compiled_code_in_every_call_shape(monkeypatch, seed):
    graph = graphc.grad(random_graph(600, seed=seed), backend="numpy").graph
    tape = backend.compile_tape(graph, threads=2)
    machine = compiled(graph, monkeypatch, threads=1)
    rng = np.random.default_rng(seed)
    names = graph.variables
    for size in (1, 2, 4, 5, 8, 9, 31, 32, 33, 63, 100, 70_001):
        values = [rng.uniform(-1.5, 1.5, size) for _ in names]
        assert identical(tape(*values), machine(*values)), size
    point = [0.25 * (k + 1) for k in range(len(names))]
    assert identical(tape(*point), machine(*point))
    broadcast = [rng.uniform(-1, 1, (3, 40)), *point[1:]]  # one array, the rest scalars
    assert identical(tape(*broadcast), machine(*broadcast))
    out = [np.empty(1000) for _ in graph.outputs]
    values = [rng.uniform(-1, 1, 1000) for _ in names]
    written = tape.into(tuple(out), *values)
    assert all(w is o for w, o in zip(written, out, strict=True))
    assert identical(tuple(written), machine(*values))


def test_a_value_s_slot_is_reused_once_its_last_reader_is_done():
    g = Graph()
    value = g.var("x")
    for k in range(10_000):  # a chain: each value is dead once the next is computed
        value = g.add(g.apply("sin", value), g.const(float(k % 7)))
    g.set_outputs([value])
    program = llvm_tape.Program.of(g)
    assert len(program.tape) == 10_000 + sum(1 for k in range(10_000) if k % 7)  # x + 0 is x
    assert program.slots <= 1 + 6 + 2  # the input, the constants, and two values at a time
    kernel = backend.compile_tape(g)
    x = np.linspace(-2, 2, 101)
    expected = x.copy()
    for k in range(10_000):
        expected = np.sin(expected) + k % 7
    assert np.allclose(kernel(x), expected, rtol=1e-12)


def test_a_large_graph_runs_on_the_tape_and_a_small_one_is_compiled(monkeypatch):
    large = graphc.grad(random_graph(TAPE_NODES, seed=7), backend="numpy").graph
    assert computed_nodes(large) > TAPE_NODES
    kernel = graphc.compile(large, backend="llvm")
    assert kernel.source.startswith("; a tape of")
    x = np.random.default_rng(1).uniform(-1, 1, (6, 257))
    assert identical(kernel(*x), compiled(large, monkeypatch)(*x))
    # NumPy's sin differs from graphc's in the last bit, and this random graph amplifies it ~1e7 times
    for got, expected in zip(kernel(*x), graphc.compile(large)(*x), strict=True):
        assert np.allclose(got, expected, rtol=1e-5)
    assert not graphc.compile("sin(x) * y", backend="llvm").source.startswith("; a tape")


def test_without_the_disk_cache_interpreters_are_compiled_once_per_set_of_ops(monkeypatch):
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    g = random_graph(300, seed=3)
    first = backend.compile_tape(g)
    other = backend.compile_tape(graphc.grad(g, backend="numpy").graph)  # more ops: another interpreter
    again = backend.compile_tape(g)
    assert again._function._engine is first._function._engine
    assert other._function._engine is not first._function._engine


def test_with_the_disk_cache_every_tape_runs_on_the_runtime_s_interpreter_of_every_op(monkeypatch):
    """The runtime's interpreter (of every opcode, kept on disk) gives the bits of the one compiled
    for the tape's own ops."""
    g = random_graph(300, seed=5)
    first = backend.compile_tape(g)
    other = backend.compile_tape(graphc.grad(g, backend="numpy").graph)  # more ops, the same interpreter
    assert first._function._engine is other._function._engine
    assert first._function._program.opcodes == llvm_tape.every_opcode()
    assert len(set(llvm_tape.every_opcode())) == len(OPS) + sum(len(op.specialised) for op in OPS.values())
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    own = backend.compile_tape(g)
    assert own._function._program.opcodes != llvm_tape.every_opcode()
    x = np.random.default_rng(5).uniform(-1.5, 1.5, (6, 1001))
    assert identical(first(*x), own(*x))
    assert identical(first(*x[:, 0]), own(*x[:, 0]))


def test_a_deep_nesting_runs_on_the_tape():
    depth = 10_000
    kernel = graphc.grad("sin(" * depth + "x" + ")" * depth, backend="llvm")
    assert kernel.source.startswith("; a tape of")
    value = 0.5
    derivative = 1.0
    for _ in range(depth):
        derivative *= np.cos(value)
        value = np.sin(value)
    assert np.isclose(kernel(0.5)[0], derivative, rtol=1e-9)


NEW_OP_CHILD = """
import numpy as np
import graphc
from graphc import ops
from graphc.graph import Graph
from graphc.backends.llvm import compile_graph, compile_tape, tape
from graphc.backends.llvm.cache import Cache

assert "madd 1.0" not in tape.every_opcode()  # the table as it is when asked
# an op of three operands, with a specialised constant last operand, known to nothing but the table
ops.OPS["madd"] = ops.Op(
    "madd", 3, "{0} * {1} + {2}", lambda x, y, z: x * y + z,
    lambda e, a: e.builder.fadd(e.builder.fmul(a[0], a[1]), a[2]),
    (lambda b, a, o: a[1], lambda b, a, o: a[0], lambda b, a, o: b.const(1.0)),
    specialised=frozenset({1.0}),
)
assert ops.ALL_OPS["madd"] is ops.OPS["madd"]  # the table of every op, by name (elementwise and block)

g = Graph()
x, y, z = g.var("x"), g.var("y"), g.var("z")
u = g.apply("madd", x, y, z)
v = g.apply("madd", u, g.apply("sin", x), g.const(1.0))
g.set_outputs([g.apply("madd", v, z, u), v])
assert tape.row_words() == 5 and "madd 1.0" in tape.every_opcode()
program = tape.Program.of(g)
assert program.tape.shape == (4, 5) and "madd 1.0" in program.opcodes
rng = np.random.default_rng(3)
point = {name: rng.uniform(-2, 2, 37) for name in "xyz"}
expected = graphc.compile(g)(**point)
for kernel in (compile_tape(g, cache=Cache(None)), compile_graph(g, cache=Cache(None))):
    for got, want in zip(kernel(**point), expected, strict=True):
        assert np.array_equal(got.view(np.int64), want.view(np.int64))
print("agreed")
"""


def test_a_new_op_of_three_operands_runs_on_the_tape_with_no_edit_in_the_backend():
    """The tape's rows, its opcodes and the interpreter come from the op table alone, read when a
    tape is built: an op of three operands added to it after the backend is imported (in a child
    process, to leave this one's table alone) runs on the tape and in a compiled kernel with NumPy's bits."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "GRAPHC_NO_CACHE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", NEW_OP_CHILD], check=False, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "agreed"
