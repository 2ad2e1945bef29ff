"""A tensor plan's LLVM IR: one loop nest per step, over buffers read and written by strides.

The kernel is ``void graphc_tensor(inputs, steps, outputs, dims, offsets, work, start, stop)``:
``inputs``/``outputs`` are tables of pointers to C-contiguous doubles, ``steps[k]`` how far input
``k`` moves from one batch point to the next (0: the same for every point), ``dims`` the values of
the named dimensions (sorted by name), ``offsets`` where each buffer of the plan starts in the
workspace ``work``, and ``start..stop`` the batch points to compute (a thread's share). The loop
bounds are read from
``dims``, so one kernel serves every size of the named dimensions and of the batch.

Every value of a node is an :class:`Array`: a pointer, a shape and strides (in elements), each an
IR operand (``"3"`` or a register). Views (transpose, broadcast, index, reshape) only make new
Arrays. A loop nest runs scalar loops over the outer axes and a vector loop over the innermost
(``lanes`` elements per instruction, a masked last iteration); an operand's innermost stride
decides how a vector is read: a load (stride 1), a splat (0: broadcast), a gather (any other).
Elementwise ops are lowered by their entries in :data:`graphc.ops.OPS`, as in scalar kernels;
so are the reductions' combining ops (``add``, ``max``, ``min``).

A matrix product runs as register-blocked loops, or, when it is large and wide (the sizes
:data:`BLAS_MIN`, decided at run time: the sizes may be named) and both operands have a unit
stride, as a call of BLAS's ``dgemm`` (:mod:`graphc.backends.llvm.tensor_blas`): column-major, so
the row-major ``C = A @ B`` is computed as ``Cᵀ = Bᵀ Aᵀ``. Convolution and pooling are loop nests of
:mod:`graphc.backends.llvm.tensor_conv`; every step is found by its op entry's ``loop``
(:data:`STEPS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import llvmlite.binding as llvm

from graphc.backends.llvm import tensor_conv
from graphc.backends.llvm.target import fma, target_machine
from graphc.backends.llvm.tensor_blas import DGEMM
from graphc.backends.llvm.tensor_plan import REDUCTIONS, Copy, Loop, TensorPlan
from graphc.backends.llvm.text import TextEmitter, aligned_stack, double, vector
from graphc.ops import ALL_OPS, OPS

ENTRY = "graphc_tensor"
# from which sizes a matrix product calls dgemm rather than loops: multiply-adds, columns of C, steps
# of k (all three); narrower or shallower products run faster as register-blocked loops (chosen by
# measuring both on many shapes: bench/matmul_shapes.py)
BLAS_MIN = (1 << 18, 96, 32)
# a matrix product over a k longer than WHOLE_K (or named) takes its steps CHUNK at a time, every
# block of C per chunk, so the chunk's rows of A and B stay in the first-level cache
CHUNK, WHOLE_K = 32, 128
PACK_LIMIT = 4096  # elements of a strided right operand copied to the stack so its rows are contiguous
_IDENTITY = {"add": 0.0, "max": float("-inf"), "min": float("inf")}


class Array(NamedTuple):
    pointer: str
    shape: tuple[str, ...]
    strides: tuple[str, ...]


def _same(a: str, b: str) -> bool:
    """Whether two IR operands are the same integer (literals by value, registers by name)."""
    x, y = _literal(a), _literal(b)
    return a == b if x is None or y is None else x == y


def _literal(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class _Writer:
    """The kernel's IR lines, with the loops, loads and stores every step is written with."""

    def __init__(self, plan: TensorPlan, width: int) -> None:
        self.plan = plan
        self.graph = plan.graph
        self.width = width
        self.emitter = TextEmitter(width)
        self.d = vector("double", width)
        self.mask_type = vector("i1", width)
        self.ivec = vector("i64", width)
        self.entry: list[str] = []
        self.labels = 0
        self.arrays: dict[int, Array] = {}
        self.dims = sorted({d for s in self.graph.shapes for d in s if isinstance(d, str)})
        self.blas = False
        self.depth = 0  # loops open around the instructions being written
        self.products: dict[tuple[str, str], str] = {}
        self.lines: list[str] = self.emitter.builder.lines  # the batch loop's body, written in order

    # --- instructions ------------------------------------------------------------------------

    def reg(self, text: str) -> str:
        return self.emitter.builder.instruction(text)  # type: ignore[no-any-return]

    def label(self, stem: str) -> str:
        self.labels += 1
        return f"{stem}{self.labels}"

    def alloca(self, kind: str) -> str:
        name = f"%a{len(self.entry)}"
        self.entry.append(f"  {name} = alloca {kind}, align 64")
        return name

    def imul(self, a: str, b: str) -> str:
        """``a * b``: a literal when both are, else one instruction; outside loops the same
        product is the same register (so strides compare equal as text: :meth:`merged`)."""
        key = (a, b) if a <= b else (b, a)
        found = self.products.get(key) if self.depth == 0 else None
        if found is None:
            found = self._product(a, b)
            if self.depth == 0:
                self.products[key] = found
        return found

    def _product(self, a: str, b: str) -> str:
        x, y = _literal(a), _literal(b)
        if x is not None and y is not None:
            return str(x * y)
        if x == 0 or y == 0:
            return "0"
        if x == 1:
            return b
        if y == 1:
            return a
        return self.reg(f"mul i64 {a}, {b}")

    def iadd(self, a: str, b: str) -> str:
        x, y = _literal(a), _literal(b)
        if x is not None and y is not None:
            return str(x + y)
        if x == 0:
            return b
        if y == 0:
            return a
        return self.reg(f"add i64 {a}, {b}")

    def dim(self, d: object) -> str:
        return str(d) if isinstance(d, int) else f"%dim{self.dims.index(str(d))}"

    def shape(self, node: int) -> tuple[str, ...]:
        return tuple(self.dim(d) for d in self.graph.shape(node))

    def contiguous(self, pointer: str, shape: tuple[str, ...]) -> Array:
        strides = ["1"] * len(shape)
        for a in range(len(shape) - 2, -1, -1):
            strides[a] = self.imul(strides[a + 1], shape[a + 1])
        return Array(pointer, shape, tuple(strides))

    def size(self, shape: tuple[str, ...]) -> str:
        total = "1"
        for d in shape:
            total = self.imul(total, d)
        return total

    def splat(self, value: str, kind: str = "double") -> str:
        vtype = vector(kind, self.width)
        if self.width == 1:
            return value
        one = self.reg(f"insertelement {vtype} poison, {kind} {value}, i64 0")
        return self.reg(f"shufflevector {vtype} {one}, {vtype} poison, <{self.width} x i32> zeroinitializer")

    def lane0(self, value: str) -> str:
        return value if self.width == 1 else self.reg(f"extractelement {self.d} {value}, i64 0")

    def iota(self) -> str:
        return "<" + ", ".join(f"i64 {i}" for i in range(self.width)) + ">"

    # --- loops -------------------------------------------------------------------------------

    def scalar_loop(self, count: str, body: Callable[[str], None], start: str = "0", step: int = 1) -> str:
        """``body(i)`` for i = start, start + step... while i + step <= count; the first i not run
        (a register of the loop's exit, or ``count`` for a loop of unit steps)."""
        name = self.label("l")
        self.lines += [f"  br label %{name}.pre", f"{name}.pre:", f"  br label %{name}.head", f"{name}.head:"]
        self.lines.append(f"  %{name}.i = phi i64 [{start}, %{name}.pre], [%{name}.next, %{name}.latch]")
        if step == 1:
            self.lines.append(f"  %{name}.go = icmp slt i64 %{name}.i, {count}")
        else:
            self.lines.append(f"  %{name}.end = add i64 %{name}.i, {step}")
            self.lines.append(f"  %{name}.go = icmp sle i64 %{name}.end, {count}")
        self.lines += [f"  br i1 %{name}.go, label %{name}.body, label %{name}.exit", f"{name}.body:"]
        self.depth += 1
        body(f"%{name}.i")
        self.depth -= 1
        self.lines += [f"  br label %{name}.latch", f"{name}.latch:"]
        self.lines += [
            f"  %{name}.next = add i64 %{name}.i, {step}",
            f"  br label %{name}.head",
            f"{name}.exit:",
        ]
        return count if step == 1 else f"%{name}.i"

    def vector_loop(self, count: str, body: Callable[[str, str | None], None]) -> None:
        """``body(j, mask)`` for j = 0, lanes, 2 lanes... < count; the last, partial vector masked."""
        name = self.label("v")
        w = self.width
        self.lines += [f"  br label %{name}.pre", f"{name}.pre:"]
        self.lines.append(f"  %{name}.last = sub i64 {count}, {w}")
        self.lines += [f"  br label %{name}.head", f"{name}.head:"]
        self.lines.append(f"  %{name}.j = phi i64 [0, %{name}.pre], [%{name}.next, %{name}.latch]")
        self.lines.append(f"  %{name}.go = icmp sle i64 %{name}.j, %{name}.last")
        self.lines += [f"  br i1 %{name}.go, label %{name}.body, label %{name}.check", f"{name}.body:"]
        self.depth += 1
        body(f"%{name}.j", None)
        self.lines += [f"  br label %{name}.latch", f"{name}.latch:"]
        self.lines += [
            f"  %{name}.next = add i64 %{name}.j, {w}",
            f"  br label %{name}.head",
            f"{name}.check:",
        ]
        self.lines.append(f"  %{name}.rest = icmp slt i64 %{name}.j, {count}")
        self.lines += [f"  br i1 %{name}.rest, label %{name}.tail, label %{name}.exit", f"{name}.tail:"]
        lanes = self.reg(f"add {self.ivec} {self.splat(f'%{name}.j', 'i64')}, {self.iota()}")
        mask = self.reg(f"icmp slt {self.ivec} {lanes}, {self.splat(count, 'i64')}")
        body(f"%{name}.j", mask)
        self.depth -= 1
        self.lines += [f"  br label %{name}.exit", f"{name}.exit:"]

    def nest(
        self,
        shape: tuple[str, ...],
        body: Callable[[list[str], str, str | None], None],
        before: Callable[[list[str]], None] | None = None,
        after: Callable[[list[str]], None] | None = None,
    ) -> None:
        """Loops over ``shape`` (a scalar: one element): ``body(outer indices, j, mask)`` per vector
        of the innermost axis, ``before``/``after`` around each run of the innermost loop."""
        shape = shape or ("1",)

        def inner(indices: list[str]) -> None:
            if before is not None:
                before(indices)
            self.vector_loop(shape[-1], lambda j, mask: body(indices, j, mask))
            if after is not None:
                after(indices)

        def level(a: int, indices: list[str]) -> None:
            if a == len(shape) - 1:
                inner(indices)
            else:
                self.scalar_loop(shape[a], lambda i: level(a + 1, [*indices, i]))

        level(0, [])  # one call per axis of the tensor: its rank, not the graph's depth

    # --- reading and writing ------------------------------------------------------------------

    def aligned(self, array: Array, shape: tuple[str, ...]) -> list[str]:
        """``array``'s stride along each axis of a loop over ``shape`` (0 where it broadcasts)."""
        shape = shape or ("1",)
        lead = len(shape) - len(array.shape)
        strides = []
        for a, d in enumerate(shape):
            k = a - lead
            if k < 0 or (array.shape[k] == "1" and d != "1"):
                strides.append("0")
            else:
                strides.append(array.strides[k])
        return strides

    def address(self, array: Array, strides: list[str], indices: list[str], j: str) -> str:
        offset = "0"
        for i, s in zip([*indices, j], strides, strict=True):
            offset = self.iadd(offset, self.imul(i, s))
        if offset == "0":
            return array.pointer
        return self.reg(f"getelementptr inbounds double, ptr {array.pointer}, i64 {offset}")

    def pointers(self, base: str, stride: str) -> str:
        steps = self.reg(f"mul {self.ivec} {self.iota()}, {self.splat(stride, 'i64')}")
        return self.reg(f"getelementptr inbounds double, ptr {base}, {self.ivec} {steps}")

    def load(self, array: Array, strides: list[str], indices: list[str], j: str, mask: str | None) -> str:
        pointer = self.address(array, strides, indices, j)
        inner, d = strides[-1], self.d
        if inner == "0":
            return self.splat(self.reg(f"load double, ptr {pointer}, align 8"))
        if inner == "1" and mask is None:
            return self.reg(f"load {d}, ptr {pointer}, align 8")
        if inner == "1":
            return self.reg(
                f"call {d} @llvm.masked.load.v{self.width}f64.p0(ptr align 8 {pointer}, "
                f"{self.mask_type} {mask}, {d} zeroinitializer)"
            )
        every = mask or self.splat("true", "i1")
        return self.reg(
            f"call {d} @llvm.masked.gather.v{self.width}f64.v{self.width}p0(<{self.width} x ptr> align 8 "
            f"{self.pointers(pointer, inner)}, {self.mask_type} {every}, {d} zeroinitializer)"
        )

    def store(
        self, value: str, array: Array, strides: list[str], indices: list[str], j: str, mask: str | None
    ) -> None:
        pointer = self.address(array, strides, indices, j)
        inner, d = strides[-1], self.d
        if inner == "0":  # a one-element innermost axis: its single lane
            self.lines.append(f"  store double {self.lane0(value)}, ptr {pointer}, align 8")
        elif inner == "1" and mask is None:
            self.lines.append(f"  store {d} {value}, ptr {pointer}, align 8")
        elif inner == "1":
            self.lines.append(
                f"  call void @llvm.masked.store.v{self.width}f64.p0({d} {value}, ptr align 8 {pointer}, "
                f"{self.mask_type} {mask})"
            )
        else:
            every = mask or self.splat("true", "i1")
            self.lines.append(
                f"  call void @llvm.masked.scatter.v{self.width}f64.v{self.width}p0({d} {value}, "
                f"<{self.width} x ptr> align 8 {self.pointers(pointer, inner)}, {self.mask_type} {every})"
            )

    def combine(self, op: str, a: str, b: str) -> str:
        return OPS[op].llvm(self.emitter, (a, b))  # type: ignore[no-any-return]

    def horizontal(self, op: str, value: str) -> str:
        """The lanes of ``value`` combined by ``op``, in lane 0."""
        half = self.width // 2
        while half >= 1:
            picks = ", ".join(f"i32 {i + half if i < half else i}" for i in range(self.width))
            moved = self.reg(
                f"shufflevector {self.d} {value}, {self.d} poison, <{self.width} x i32> <{picks}>"
            )
            value = self.combine(op, value, moved)
            half //= 2
        return value

    # --- arrays of nodes ----------------------------------------------------------------------

    def view(self, node: int) -> Array:
        g = self.graph
        op, params = g.op(node), g.params(node)
        source = self.arrays[g.args(node)[0]]
        shape = self.shape(node)
        if op == "reshape":
            return self.contiguous(source.pointer, shape)
        if op == "transpose":
            return Array(source.pointer, shape, tuple(source.strides[p] for p in params))
        if op == "broadcast":
            return Array(source.pointer, shape, tuple(self.aligned(source, shape)) if shape else ())
        return self.indexed(source, params, shape)

    def indexed(self, source: Array, params: tuple[object, ...], shape: tuple[str, ...]) -> Array:
        offset, strides = "0", []
        for a, item in enumerate(params):
            stride = source.strides[a]
            if item is None:
                strides.append(stride)
            elif isinstance(item, tuple):
                start, _, step = item
                offset = self.iadd(offset, self.imul(str(start), stride))
                strides.append(self.imul(stride, str(step)))
            else:
                offset = self.iadd(offset, self.imul(str(item), stride))
        strides += source.strides[len(params) :]
        pointer = source.pointer
        if offset != "0":
            pointer = self.reg(f"getelementptr inbounds double, ptr {pointer}, i64 {offset}")
        return Array(pointer, shape, tuple(strides))

    def value(
        self,
        node: int,
        shape: tuple[str, ...],
        indices: list[str],
        j: str,
        mask: str | None,
        known: dict[int, str],
    ) -> str:
        found = known.get(node)
        if found is None:
            constant = self.graph.const_value(node)
            if constant is not None:
                return self.emitter.const(constant)  # type: ignore[no-any-return]
            array = self.arrays[node]
            found = known[node] = self.load(array, self.aligned(array, shape), indices, j, mask)
        return found

    # --- steps ----------------------------------------------------------------------------------

    def loop(self, step: Loop, outputs: list[Array]) -> None:
        g = self.graph
        shape = self.shape_of(step.shape) or ("1",)
        inside = set(step.members)
        arrays: dict[tuple[str, int], Array] = {}  # what the loop reads and writes, by role
        for node in [*step.members, *step.accumulations]:
            for arg in g.args(node):
                if arg not in inside and g.const_value(arg) is None:
                    arrays["read", arg] = self.arrays[arg]
        for node in step.stored:
            arrays["store", node] = self.arrays[node]
        for node, slot in step.outputs:
            arrays["out", slot] = outputs[slot]
        strides = {key: self.aligned(array, shape) for key, array in arrays.items()}
        targets: dict[int, Array] = {}
        for node in step.accumulations:
            axes = g.params(node)[0]
            kept = tuple(d for a, d in enumerate(shape) if a not in axes and step.shape)
            target = targets[node] = self.contiguous(self.arrays[node].pointer, kept)
            rest = iter(target.strides)
            strides["acc", node] = [
                "0" if a in axes or not step.shape else next(rest) for a in range(len(shape))
            ]
            self.fill(target.pointer, self.size(kept), _IDENTITY[REDUCTIONS[g.op(node)]])
        shape, strides = self.merged(shape, strides)
        registers = {n: self.alloca(self.d) for n in step.accumulations if strides["acc", n][-1] == "0"}

        def before(indices: list[str]) -> None:
            for node, register in registers.items():
                identity = self.emitter.const(_IDENTITY[REDUCTIONS[g.op(node)]])
                self.lines.append(f"  store {self.d} {identity}, ptr {register}, align 64")

        def body(indices: list[str], j: str, mask: str | None) -> None:
            known: dict[int, str] = {}

            def value(node: int) -> str:
                found = known.get(node)
                if found is None:
                    constant = g.const_value(node)
                    if constant is not None:
                        return self.emitter.const(constant)  # type: ignore[no-any-return]
                    key = ("read", node)
                    found = known[node] = self.load(arrays[key], strides[key], indices, j, mask)
                return found

            for node in step.members:
                known[node] = OPS[g.op(node)].llvm(self.emitter, tuple(value(a) for a in g.args(node)))
            for node in step.stored:
                self.store(known[node], arrays["store", node], strides["store", node], indices, j, mask)
            for node, slot in step.outputs:
                self.store(known[node], arrays["out", slot], strides["out", slot], indices, j, mask)
            for node in step.accumulations:
                op = REDUCTIONS[g.op(node)]
                x = value(g.args(node)[0])
                register = registers.get(node)
                if register is not None:
                    if mask is not None:
                        x = self.emitter.builder.select(mask, x, self.emitter.const(_IDENTITY[op]))
                    total = self.reg(f"load {self.d}, ptr {register}, align 64")
                    self.lines.append(
                        f"  store {self.d} {self.combine(op, total, x)}, ptr {register}, align 64"
                    )
                else:
                    target, at = targets[node], strides["acc", node]
                    total = self.load(target, at, indices, j, mask)
                    self.store(self.combine(op, total, x), target, at, indices, j, mask)

        def after(indices: list[str]) -> None:
            for node, register in registers.items():
                op, target, at = REDUCTIONS[g.op(node)], targets[node], strides["acc", node]
                total = self.horizontal(op, self.reg(f"load {self.d}, ptr {register}, align 64"))
                here = self.load(target, at, indices, "0", None)
                self.store(self.combine(op, here, total), target, at, indices, "0", None)

        self.nest(shape, body, before, after)

    def merged(
        self, shape: tuple[str, ...], strides: dict[tuple[str, int], list[str]]
    ) -> tuple[tuple[str, ...], dict[tuple[str, int], list[str]]]:
        """The loop over ``shape`` with each run of axes that every array steps through as one
        (its stride along an axis is the next axis's times that axis's size) made one axis: a
        longer innermost loop, fewer masked vectors (a ``[n, 1]`` loop is a loop over n)."""
        dims = [shape[0]]
        merged: dict[tuple[str, int], list[str]] = {key: [s[0]] for key, s in strides.items()}
        for a in range(1, len(shape)):
            if all(_same(merged[key][-1], self.imul(s[a], shape[a])) for key, s in strides.items()):
                dims[-1] = self.imul(dims[-1], shape[a])
                for key, s in strides.items():
                    merged[key][-1] = s[a]
            else:
                dims.append(shape[a])
                for key, s in strides.items():
                    merged[key].append(s[a])
        return tuple(dims), merged

    def shape_of(self, shape: tuple[object, ...]) -> tuple[str, ...]:
        return tuple(self.dim(d) for d in shape)

    def fill(self, pointer: str, count: str, value: float) -> None:
        flat = Array(pointer, (count,), ("1",))
        constant = self.emitter.const(value)
        self.vector_loop(count, lambda j, mask: self.store(constant, flat, ["1"], [], j, mask))

    def copy(self, source: Array, target: Array) -> None:
        shape = source.shape

        def body(indices: list[str], j: str, mask: str | None) -> None:
            x = self.load(source, self.aligned(source, shape), indices, j, mask)
            self.store(x, target, self.aligned(target, shape), indices, j, mask)

        self.nest(shape, body)

    def matmul(self, node: int) -> None:
        a, b = (self.arrays[x] for x in self.graph.args(node))
        if len(a.shape) == 1:  # a row; its unused stride keeps BLAS's leading dimension valid
            a = Array(a.pointer, ("1", a.shape[0]), (a.shape[0], a.strides[0]))
        if len(b.shape) == 1:  # a column
            b = Array(b.pointer, (b.shape[0], "1"), (b.strides[0], b.shape[0]))
        (m, k), n = a.shape, b.shape[1]
        c = self.contiguous(self.arrays[node].pointer, (m, n))
        work = self.imul(self.imul(m, n), k)
        sizes = list(zip((work, n, k), BLAS_MIN, strict=True))
        small = any(_literal(size) is not None and int(size) < least for size, least in sizes)
        if small or _blas_layout(a) is None or _blas_layout(b) is None:
            self._matmul_loops(a, b, c)  # (no dgemm branch: less code to compile)
            return
        name = self.label("mm")
        big = "true"
        for size, least in sizes:
            enough = self.reg(f"icmp sge i64 {size}, {least}")
            big = self.reg(f"and i1 {big}, {enough}")
        self.lines += [f"  br i1 {big}, label %{name}.blas, label %{name}.loops", f"{name}.blas:"]
        self.depth += 1  # two branches: neither's instructions are seen after them
        self._dgemm(a, b, c, f"{name}.loops", f"{name}.done")
        self.lines.append(f"{name}.loops:")
        self._matmul_loops(a, b, c)
        self.depth -= 1
        self.lines += [f"  br label %{name}.done", f"{name}.done:"]

    def _matmul_loops(self, a: Array, b: Array, c: Array) -> None:
        (m, k), n = a.shape, b.shape[1]
        if n == "1":  # matrix times vector: each row's products summed in a vector register
            row = Array(a.pointer, (m, k), a.strides)
            column = Array(b.pointer, (k,), (b.strides[0],))
            register = self.alloca(self.d)
            zero = self.emitter.const(0.0)

            def before(indices: list[str]) -> None:
                self.lines.append(f"  store {self.d} {zero}, ptr {register}, align 64")

            def body(indices: list[str], j: str, mask: str | None) -> None:
                x = self.load(row, list(row.strides), indices, j, mask)
                y = self.load(column, list(column.strides), [], j, mask)
                product = self.emitter.builder.fmul(x, y)
                if mask is not None:
                    product = self.emitter.builder.select(mask, product, zero)
                total = self.reg(f"load {self.d}, ptr {register}, align 64")
                self.lines.append(
                    f"  store {self.d} {self.emitter.builder.fadd(total, product)}, ptr {register}"
                )

            def after(indices: list[str]) -> None:
                total = self.horizontal("add", self.reg(f"load {self.d}, ptr {register}, align 64"))
                self.store(total, c, [c.strides[0], "0"], indices, "0", None)

            self.nest((m, k), body, before, after)
            return
        self._blocked(a, b, c)

    def _blocked(self, a: Array, b: Array, c: Array) -> None:
        """``C = A @ B`` in register blocks: ``rows`` rows of C by ``vectors`` vectors of its
        columns, each block's sums kept in registers through the whole k loop (each step: one
        vector of B per column vector, one element of A per row, rows x vectors multiply-adds).
        A is read by its strides; B, when it is small and its size known, is first copied to the
        stack if its rows are not contiguous (a transposed weight) or not a whole number of vectors
        (a 10-wide layer): its rows then padded with zeros to whole vectors, so the step reads them
        unmasked (a mask held through the k loop is one register too many: a sum is spilled).
        A long k is cut into chunks of :data:`CHUNK` steps, all of C's blocks computed for one
        chunk before the next, so the chunk's rows of A and B stay in cache (each sum still adds
        its terms in the order of k)."""
        (m, k), n = a.shape, b.shape[1]
        w = self.width
        steps, width = _literal(k), _literal(n)
        padded = -(-width // w) * w if width is not None else 0
        size = (steps or 0) * padded
        whole = False  # whether B's rows are readable to a whole number of vectors
        if (b.strides[1] not in ("0", "1") or padded != width) and 0 < size <= PACK_LIMIT:
            packed = self.contiguous(self.alloca(f"[{size} x double]"), (k, str(padded)))
            if padded != width:
                self.fill(packed.pointer, str(size), 0.0)
            rows_of_b = Array(packed.pointer, (k, n), packed.strides)
            self.copy(b, rows_of_b)
            b, whole = rows_of_b, True
        rows, vectors = _blocking(n, w)
        span = vectors * w

        chunk: tuple[str, str] | None = None  # the k steps of the current chunk; None: all of k

        def columns(i: str, count: int) -> None:
            """The blocks of ``count`` rows from row ``i``: whole panels of columns, then the rest."""
            width = _literal(n)
            done = "0"
            if width is None or width >= span:  # (no loop that never runs: less code to compile)
                done = self.scalar_loop(
                    n, lambda j: self._block(a, b, c, i, count, j, [None] * vectors, chunk, whole), step=span
                )
            if width is not None:
                rest = width % span
                if rest:
                    masks: list[str | None] = [None] * (rest // w)
                    if rest % w:
                        lanes = ", ".join(f"i1 {'true' if t < rest % w else 'false'}" for t in range(w))
                        masks.append(f"<{lanes}>")
                    self._block(a, b, c, i, count, str(width - rest), masks, chunk, whole)
                return
            name = self.label("rest")
            left = self.reg(f"icmp slt i64 {done}, {n}")
            self.lines += [f"  br i1 {left}, label %{name}, label %{name}.done", f"{name}:"]
            self.depth += 1  # a branch: its instructions are not seen after it
            tails: list[str | None] = []
            for t in range(vectors):
                lanes = self.reg(
                    f"add {self.ivec} {self.splat(self.iadd(done, str(t * w)), 'i64')}, {self.iota()}"
                )
                tails.append(self.reg(f"icmp slt {self.ivec} {lanes}, {self.splat(n, 'i64')}"))
            self._block(a, b, c, i, count, done, tails, chunk, whole)
            self.depth -= 1
            self.lines += [f"  br label %{name}.done", f"{name}.done:"]

        def blocks() -> None:
            height = _literal(m)
            done = "0"
            if height is None or height >= rows:
                done = self.scalar_loop(m, lambda i: columns(i, rows), step=rows)
            if height is None:
                self.scalar_loop(m, lambda i: columns(i, 1), start=done)
            elif height % rows:
                columns(str(height - height % rows), height % rows)

        steps = _literal(k)
        if steps is not None and steps <= WHOLE_K:
            blocks()
            return
        self.fill(c.pointer, self.size((m, n)), 0.0)
        count = self.reg(f"udiv i64 {self.iadd(k, str(CHUNK - 1))}, {CHUNK}")

        def part(q: str) -> None:
            nonlocal chunk
            first = self.reg(f"mul i64 {q}, {CHUNK}")
            end = self.reg(f"add i64 {first}, {CHUNK}")
            short = self.reg(f"icmp slt i64 {end}, {k}")
            chunk = (first, self.reg(f"select i1 {short}, i64 {end}, i64 {k}"))
            blocks()

        self.scalar_loop(count, part)

    def _block(
        self,
        a: Array,
        b: Array,
        c: Array,
        i: str,
        rows: int,
        j: str,
        masks: list[str | None],
        chunk: tuple[str, str] | None,
        whole: bool,
    ) -> None:
        """C's ``rows`` rows from ``i`` by ``len(masks)`` vectors of columns from ``j`` (the
        vector ``t`` masked by ``masks[t]`` where not None; B's too unless ``whole``: its rows
        padded to whole vectors): the sums over all of k from zero, or over the steps ``chunk``
        added to C's."""
        w, d = self.width, self.d
        k = a.shape[1]
        row = [self.iadd(i, str(s)) for s in range(rows)]
        column = [self.iadd(j, str(t * w)) for t in range(len(masks))]
        sums = [[self.alloca(d) for _ in masks] for _ in row]
        zero = self.emitter.const(0.0)
        for s, r in enumerate(row):
            for t, slot in enumerate(sums[s]):
                start = zero if chunk is None else self.load(c, list(c.strides), [r], column[t], masks[t])
                self.lines.append(f"  store {d} {start}, ptr {slot}, align 64")

        def step(p: str) -> None:
            y = [
                self.load(b, list(b.strides), [p], column[t], None if whole else masks[t])
                for t in range(len(masks))
            ]
            for s, r in enumerate(row):
                pointer = self.address(a, list(a.strides), [r], p)
                x = self.splat(self.reg(f"load double, ptr {pointer}, align 8"))
                for t, slot in enumerate(sums[s]):
                    total = self.reg(f"load {d}, ptr {slot}, align 64")
                    self.lines.append(
                        f"  store {d} {self.multiply_add(x, y[t], total)}, ptr {slot}, align 64"
                    )

        if chunk is None:
            self.scalar_loop(k, step)
        else:
            self.scalar_loop(chunk[1], step, start=chunk[0])
        for s, r in enumerate(row):
            for t, slot in enumerate(sums[s]):
                total = self.reg(f"load {d}, ptr {slot}, align 64")
                self.store(total, c, list(c.strides), [r], column[t], masks[t])

    def multiply_add(self, x: str, y: str, z: str) -> str:
        """``x * y + z``: one fused instruction where the host has them."""
        if fma():
            return self.reg(
                f"call {self.d} @llvm.fma.v{self.width}f64({self.d} {x}, {self.d} {y}, {self.d} {z})"
            )
        return self.emitter.builder.fadd(self.emitter.builder.fmul(x, y), z)

    def _dgemm(self, a: Array, b: Array, c: Array, otherwise: str, done: str) -> None:
        """Call dgemm for ``C = A @ B`` unless a leading dimension is too small for BLAS (a view
        whose other stride is 1 too): then branch to ``otherwise``."""
        self.blas = True
        (m, k), n = a.shape, b.shape[1]
        first, second = _blas_layout(b), _blas_layout(a)
        assert first is not None and second is not None
        (op_b, axis_b), (op_a, axis_a) = first, second
        ld_b, ld_a = b.strides[axis_b], a.strides[axis_a]
        rows_b = n if op_b == "N" else k
        rows_a = k if op_a == "N" else m
        fits_b = self.reg(f"icmp sge i64 {ld_b}, {rows_b}")
        fits_a = self.reg(f"icmp sge i64 {ld_a}, {rows_a}")
        fits = self.reg(f"and i1 {fits_b}, {fits_a}")
        name = self.label("gemm")
        self.lines += [f"  br i1 {fits}, label %{name}, label %{otherwise}", f"{name}:"]
        ints = []
        for value in (n, m, k, ld_b, ld_a, n):
            slot = self.alloca("i32")
            small = self.reg(f"trunc i64 {value} to i32") if _literal(value) is None else value
            self.lines.append(f"  store i32 {small}, ptr {slot}, align 4")
            ints.append(slot)
        chars = []
        for flag in (op_b, op_a):
            slot = self.alloca("i8")
            self.lines.append(f"  store i8 {ord(flag)}, ptr {slot}, align 1")
            chars.append(slot)
        scalars = []
        for number in (1.0, 0.0):
            slot = self.alloca("double")
            self.lines.append(f"  store double {double(number)}, ptr {slot}, align 8")
            scalars.append(slot)
        args = [
            chars[0], chars[1], ints[0], ints[1], ints[2], scalars[0], b.pointer, ints[3],
            a.pointer, ints[4], scalars[1], c.pointer, ints[5],
        ]  # fmt: skip
        self.lines.append(f"  call void @{DGEMM}({', '.join(f'ptr {x}' for x in args)})")
        self.lines.append(f"  br label %{done}")

    def count(self, node: int) -> None:
        g = self.graph
        operand = g.shape(g.args(node)[0])
        total = self.size(tuple(self.dim(operand[k]) for k in g.params(node)))
        value = self.reg(f"sitofp i64 {total} to double")
        self.lines.append(f"  store double {value}, ptr {self.arrays[node].pointer}, align 8")

    def unindex(self, node: int) -> None:
        g = self.graph
        target = self.arrays[node]
        self.fill(target.pointer, self.size(target.shape), 0.0)
        source = self.arrays[g.args(node)[0]]
        index = g.params(node)[0]
        self.copy(source, self.indexed(target, index, source.shape))

    # --- the kernel ---------------------------------------------------------------------------

    def kernel(self) -> str:
        plan, g = self.plan, self.graph
        self.entry += [
            f"  %dim{k}.at = getelementptr inbounds i64, ptr %dims, i64 {k}\n"
            f"  %dim{k} = load i64, ptr %dim{k}.at, align 8"
            for k in range(len(self.dims))
        ]
        for k, name in enumerate(g.variables):
            node = g.variable(name)
            base = self.reg(f"getelementptr inbounds ptr, ptr %inputs, i64 {k}")
            data = self.reg(f"load ptr, ptr {base}, align 8")
            move_at = self.reg(f"getelementptr inbounds i64, ptr %steps, i64 {k}")
            move = self.reg(f"load i64, ptr {move_at}, align 8")
            moved = self.reg(f"mul i64 %b, {move}")
            pointer = self.reg(f"getelementptr inbounds double, ptr {data}, i64 {moved}")
            self.arrays[node] = self.contiguous(pointer, self.shape(node))
        outputs = []
        for j, node in enumerate(g.outputs):
            base = self.reg(f"getelementptr inbounds ptr, ptr %outputs, i64 {j}")
            data = self.reg(f"load ptr, ptr {base}, align 8")
            shape = self.shape(node)
            moved = self.reg(f"mul i64 %b, {self.size(shape)}")
            pointer = self.reg(f"getelementptr inbounds double, ptr {data}, i64 {moved}")
            outputs.append(self.contiguous(pointer, shape))
        for node, j in plan.homes.items():
            self.arrays[node] = outputs[j]
        for k, node in enumerate(plan.buffers):
            at = self.reg(f"getelementptr inbounds i64, ptr %offsets, i64 {k}")
            offset = self.reg(f"load i64, ptr {at}, align 8")
            pointer = self.reg(f"getelementptr inbounds double, ptr %work, i64 {offset}")
            self.arrays[node] = self.contiguous(pointer, self.shape(node))
        keep = g.reachable()
        for node in range(len(g)):  # a constant read through an Array (a view's, a copy's): one double
            value = g.const_value(node)
            if value is not None and keep[node]:
                slot = self.alloca("double")
                self.entry.append(f"  store double {double(value)}, ptr {slot}, align 8")
                self.arrays[node] = Array(slot, (), ())
        for node in range(len(g)):  # views after the buffers they read: in creation order
            if node in plan.views:
                self.arrays[node] = self.view(node)
        for step in plan.steps:
            if isinstance(step, Loop):
                self.loop(step, outputs)
            elif isinstance(step, Copy):
                source = self.arrays[step.source]
                if step.target is None:
                    target = outputs[step.output]
                else:
                    target = self.contiguous(self.arrays[step.target].pointer, source.shape)
                self.copy(source, target)
            else:
                STEPS[ALL_OPS[g.op(step.node)].loop](self, step.node)
        return "\n".join(
            [
                f"define void @{ENTRY}({SIGNATURE}) #0 {{",
                "entry:",
                *self.entry,
                "  br label %batch.head",
                "batch.head:",
                "  %b = phi i64 [%start, %entry], [%b.next, %batch.latch]",
                "  %b.go = icmp slt i64 %b, %stop",
                "  br i1 %b.go, label %batch.body, label %batch.exit",
                "batch.body:",
                *self.lines,
                "  br label %batch.latch",
                "batch.latch:",
                "  %b.next = add i64 %b, 1",
                "  br label %batch.head",
                "batch.exit:",
                "  ret void",
                "}",
            ]
        )


# a block op's loop step by the name its entry's ``loop`` gives: the writer of its loop nest
STEPS: dict[str, Callable[[_Writer, int], None]] = {
    "matmul": _Writer.matmul,
    "count": _Writer.count,
    "unindex": _Writer.unindex,
    **tensor_conv.STEPS,
}

SIGNATURE = (
    "ptr noalias %inputs, ptr noalias %steps, ptr noalias %outputs, ptr noalias %dims, "
    "ptr noalias %offsets, ptr noalias %work, i64 %start, i64 %stop"
)


def _blocking(n: str, width: int) -> tuple[int, int]:
    """Rows and column vectors of a block of C with ``n`` columns: about twelve vector sums
    (sixteen vector registers: the sums, a vector of B per column vector, an element of A), the
    vectors chosen so that the columns are whole panels where they can be."""
    columns = _literal(n)
    count = -(-columns // width) if columns is not None else 2
    vectors = count if count <= 3 else 3 if count % 3 == 0 else 2
    return 12 // vectors, vectors


def _blas_layout(array: Array) -> tuple[str, int] | None:
    """How BLAS reads the row-major matrix ``array``: ``("N", 0)`` when its rows are contiguous
    (column-major, it is its own transpose, leading dimension its stride 0), ``("T", 1)`` when its
    columns are; None when neither stride is 1 or the other is 0 (a broadcast)."""
    first, second = array.strides
    if second == "1" and first != "0":
        return "N", 0
    if first == "1" and second != "0":
        return "T", 1
    return None


def tensor_text(plan: TensorPlan, width: int) -> tuple[str, dict[str, int], bool]:
    """The IR text of the plan's module, how often it calls each of graphc's vector functions, and
    whether it calls dgemm."""
    writer = _Writer(plan, width)
    kernel = writer.kernel()
    emitter = writer.emitter
    lines = [
        f'target triple = "{llvm.get_process_triple()}"',
        f'target datalayout = "{target_machine().target_data}"',
        *emitter.declarations(),
        *([f"declare void @{DGEMM}({', '.join(['ptr'] * 13)})"] if writer.blas else []),
        kernel,
        f"attributes #0 = {{ nounwind {aligned_stack(width)} }}",
        "attributes #2 = { nounwind willreturn memory(none) }",
        "",
    ]
    from graphc.backends.llvm import vecmath

    own = {s: emitter.calls[s] for s in sorted(emitter.calls) if s in vecmath.FUNCTIONS}
    return "\n".join(lines), own, writer.blas
