"""How much the NaN-free rule of ``where`` grows ``dp`` gradients: node counts with its guards and
without them.

    python bench/guard_growth.py

An adjoint that passed a ``where`` carries a flag, and every product of it with a local derivative
that is not a constant is taken as ``where(flag, product, 0)``; flags meet in ``and``/``or`` nodes
(graphc/diff/common.py). This counts what that costs: the nodes of the function, of its ``dp``
gradient graph as graphc builds it, and of the same gradient with the guards switched off (no
flags: the plain chain rule below each select, which is NaN at the points the rule is for), each
counted as the nodes the outputs reach. Node counts are exact and the same on every machine, so
docs/generate.py runs :func:`table` when the manual is built: the numbers in the docs are these.

Families: a Huber loss over n residuals of a line fit; a ladder of nested wheres (each rung a
different singular branch); a seeded random DAG over the op table's conditionals and singular
functions mixed with smooth ones; and, for reference, the same random DAG with no conditionals.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import graphc
from graphc.diff import common
from graphc.diff.blocks import differentiate_dp as tensor_dp
from graphc.diff.dp import differentiate


def huber(n: int) -> str:
    """Σ huber(y_i - (a x_i + b)), δ = 1, fixed data: the classic branch of robust regression."""
    rng = random.Random(f"huber:{n}")
    terms = []
    for i in range(n):
        x, y = round(rng.uniform(-2, 2), 3), round(rng.uniform(-2, 2), 3)
        terms.append(f"r{i} = {y} - (a*{x} + b); h{i} = where(abs(r{i}) <= 1, 0.5*r{i}^2, abs(r{i}) - 0.5)")
    return "; ".join(terms) + "; " + " + ".join(f"h{i}" for i in range(n))


_RUNGS = ["sqrt(x)", "log(x)", "1/x", "x*log(x)", "sqrt(1 - x)", "acosh(x)"]


def nested(depth: int) -> str:
    """where(x > t1, g1(x), where(x > t2, g2(x), ...)), each g singular outside its rung."""
    text = "0"
    for level in range(depth, 0, -1):
        rung = _RUNGS[level % len(_RUNGS)]
        text = f"where(x > {level / depth:.3f}, {rung}, {text})"
    return text


_SMOOTH_UNARY = ["sin({0})", "cos({0})", "tanh({0})", "exp(-{0}^2)"]
_SMOOTH_BINARY = ["{0} + {1}", "{0} * {1}", "{0} - {1}"]
_BRANCHES = ["where({0} > {1}, sqrt({0} - {1}), 0)", "where({0} != 0, sin({0})/{0}, 1)", "clip({0}, -1, {1})"]


def random_dag(size: int, seed: int, conditionals: bool = True) -> str:
    """``size`` operations over x, y, z, recent operands favoured (graphc.families' random DAG);
    with ``conditionals``, a third of them a branch with a singular unselected side."""
    rng = random.Random(f"guards:{seed}")
    names = ["x", "y", "z"]
    used: set[str] = set()
    lines = []
    for i in range(1, size + 1):
        kind = rng.random()
        if conditionals and kind < 1 / 3:
            template = rng.choice(_BRANCHES)
        else:
            template = rng.choice(_SMOOTH_UNARY if kind < 0.6 else _SMOOTH_BINARY)
        operands = [names[max(0, len(names) - 1 - int(rng.expovariate(0.5)))] for _ in range(2)]
        used.update(operands if "{1}" in template else operands[:1])
        lines.append(f"v{i} = {template.format(*operands)}")
        names.append(f"v{i}")
    sinks = [name for name in names[3:] if name not in used] or [names[-1]]
    return "; ".join(lines) + "; " + " + ".join(sinks)


@contextmanager
def unguarded() -> Iterator[None]:
    """dp without the rule's flags: a select passes no flag, so no product below it is guarded."""
    both = common.Gates.both
    common.Gates.both = lambda self, flag, condition: None  # type: ignore[method-assign,assignment,return-value]
    try:
        yield
    finally:
        common.Gates.both = both  # type: ignore[method-assign]


def counts(text: str) -> tuple[int, int, int]:
    """Nodes of the function, of its dp gradient, and of that gradient without the guards."""
    graph = graphc.parse(text)
    method = tensor_dp if graph.tensor else differentiate
    guarded = method(graph)
    with unguarded():
        plain = method(graph)
    return sum(graph.reachable()), sum(guarded.reachable()), sum(plain.reachable())


CASES = [
    *(("Huber loss", f"n = {n}", huber(n)) for n in (1, 10, 100)),
    *(("nested where", f"depth {d}", nested(d)) for d in (1, 4, 16)),
    *(
        ("random DAG with branches", f"{n} ops, seed {s}", random_dag(n, s))
        for n in (100, 1000)
        for s in (0, 1)
    ),
    *(
        ("random DAG, no branches", f"{n} ops, seed {s}", random_dag(n, s, False))
        for n in (100, 1000)
        for s in (0,)
    ),
    ("tensor where", "x: [100]", "x: [100]; sum(where(x > 0, sqrt(x), 0))"),
    (  # a flag per element through a block op: its twin on ones, and the op again on kept operands
        "tensor where over a block op",
        "X: [10, 10]",
        "X: [10, 10]; c: [10]; sum(where(c > 0, sum(sqrt(X), axis=1), 0))",
    ),
    (
        "tensor where over a softmax",
        "X: [10, 10]",
        "X: [10, 10]; c: [10, 1]; sum(where(c > 0, softmax(log(X), axis=1), 0))",
    ),
]


def table() -> str:
    """The measurements as a Markdown table."""
    lines = [
        "| family | size | function nodes | dp gradient nodes | without the guards | growth from the guards |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for family, size, text in CASES:
        function, guarded, plain = counts(text)
        growth = (guarded - plain) / plain
        lines.append(f"| {family} | {size} | {function:,} | {guarded:,} | {plain:,} | {growth:+.0%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table())
