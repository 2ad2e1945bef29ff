"""The benchmark problems B1..B6, each a graphc program plus the box its points are drawn from.

Every system builds its own expression from the same program: graphc parses it, and the peers get
it through :mod:`convert` (graphc's graph, node by node in creation order, into the peer's own
expression type), so all of them differentiate the same function. Weights and random DAGs come
from seeded generators: a problem name always means the same text.

>>> PROBLEMS["B2a"].text
'x1*x2 + exp(x1*x2) - sin(x2)'
>>> len(PROBLEMS["B5-1k"].text.splitlines())
1001
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Problem:
    """A function of float64 arrays to differentiate, and where its points live."""

    name: str
    title: str
    text: str  # a graphc program with one output
    box: dict[str, tuple[float, float]]  # each variable's interval (uniform draws)
    order: int = 1  # 1: the gradient; n > 1: the n-th derivative in the single variable
    size: int = 0  # the number of operations, for the B5 size axis (0: not a size series)
    notes: str = ""
    quick_points: int = 0  # --quick's batch for a heavy problem (0: the run's N)
    weight: float = 1.0  # the cell timeout is --timeout times this
    variables: list[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", sorted(self.box))

    def sample(self, points: int, seed: int) -> list[np.ndarray]:
        """``points`` draws of every variable (in ``variables`` order), the same for a seed."""
        rng = np.random.default_rng(seed)
        return [rng.uniform(*self.box[name], points) for name in self.variables]


def rosenbrock(n: int) -> str:
    names = [f"x{i:02d}" for i in range(n)]  # zero-padded: sorted order is numeric order
    return " + ".join(f"(1 - {a})^2 + 100*({b} - {a}^2)^2" for a, b in itertools.pairwise(names))


def product_layers(layers: int, scale: str = "") -> str:
    """The lectures' product-node graph: two nodes per layer, each the product of the two below.

    Layer 0 is ``(w, w)``, or ``(w, scale*w)``; with equal inputs both nodes of a layer are the
    same product, which hash-consing shares, so the graph is a chain with 2^layers paths.
    """
    second = f"{scale}*w" if scale else "w"
    lines = [f"a1 = w*({second})", f"b1 = ({second})*w"]
    for i in range(2, layers + 1):
        lines += [f"a{i} = a{i - 1}*b{i - 1}", f"b{i} = b{i - 1}*a{i - 1}"]
    return "; ".join([*lines, f"a{layers}"])


def tanh_network(seed: int = 0, hidden: int = 16) -> str:
    """A 2-16-1 network as scalar formulas, fixed seeded weights, squared error against 0.5."""
    rng = random.Random(f"B4:{seed}")

    def weight() -> str:
        return f"({rng.uniform(-1.0, 1.0):.4f})"

    lines = [f"h{j} = tanh({weight()}*x1 + {weight()}*x2 + {weight()})" for j in range(1, hidden + 1)]
    output = " + ".join(f"{weight()}*h{j}" for j in range(1, hidden + 1))
    lines += [f"y = {output} + {weight()}", "(y - 0.5)^2"]
    return "\n".join(lines)


_UNARY = ("sin({})", "cos({})", "tanh({})")
_BINARY = ("{} + {}", "{} - {}", "{} * {}")


def random_dag(operations: int, variables: int = 8, seed: int = 0) -> str:
    """``operations`` seeded random operations over x1..x8, operands favouring recent nodes (so the
    DAG is deep and shares subexpressions), one in ten a variable; the output sums the nodes nothing
    else uses.

    Half the operations are bounded (sin, cos, tanh), so values stay moderate at any size.
    """
    rng = random.Random(f"B5:{seed}:{operations}")
    names = [f"x{i}" for i in range(1, variables + 1)]
    used: set[str] = set()
    lines = []
    for i in range(1, operations + 1):
        unary = rng.random() < 0.5
        template = rng.choice(_UNARY if unary else _BINARY)
        operands = [_operand(rng, names, variables) for _ in range(1 if unary else 2)]
        used.update(operands)
        lines.append(f"v{i} = {template.format(*operands)}")
        names.append(f"v{i}")
    sinks = [name for name in names[variables:] if name not in used]
    lines.append(" + ".join(sinks))
    return "\n".join(lines)


def _operand(rng: random.Random, names: list[str], variables: int) -> str:
    """A variable one time in ten, else a recent name (mean distance 2 back)."""
    if rng.random() < 0.1:
        return names[rng.randrange(variables)]
    return names[max(0, len(names) - 1 - int(rng.expovariate(0.5)))]


def nested_sin(depth: int) -> str:
    return "; ".join(["a1 = sin(x)"] + [f"a{i} = sin(a{i - 1})" for i in range(2, depth + 1)] + [f"a{depth}"])


def _problems() -> dict[str, Problem]:
    unit = (-1.0, 1.0)
    # w^(2^20) stays finite only within about 1e-6 of |w| = 1 (and (1.5 w^2)^(2^19) of w = sqrt(2/3)).
    near_one = (1.0 - 1e-6, 1.0 + 1e-6)
    root = math.sqrt(2.0 / 3.0)
    near_root = (root * (1.0 - 1e-6), root * (1.0 + 1e-6))
    problems = [
        Problem(
            "B1", "Rosenbrock, 10 variables", rosenbrock(10), {f"x{i:02d}": (-2.0, 2.0) for i in range(10)}
        ),
        Problem(
            "B2a", "x1*x2 + exp(x1*x2) - sin(x2)", "x1*x2 + exp(x1*x2) - sin(x2)", {"x1": unit, "x2": unit}
        ),
        Problem("B2b", "sin(w^2) + cos(w^2)", "sin(w^2) + cos(w^2)", {"w": (-2.0, 2.0)}),
        Problem(
            "B3",
            "product-node graph, 20 layers (2^20 paths), layer 0 = (w, w)",
            product_layers(20),
            {"w": near_one},
            notes="w within 1e-6 of 1, where w^(2^20) is finite",
        ),
        Problem(
            "B3x",
            "product-node graph, 20 layers, layer 0 = (w, 1.5*w)",
            product_layers(20, "1.5"),
            {"w": near_root},
            notes="f = (1.5 w^2)^(2^19) is finite here; a folded constant 1.5^(2^19) overflows",
        ),
        Problem(
            "B4",
            "2-16-1 tanh network, squared error, gradient wrt the 2 inputs",
            tanh_network(),
            {"x1": (-2.0, 2.0), "x2": (-2.0, 2.0)},
        ),
    ]
    for size, label, weight in ((1_000, "1k", 1.0), (10_000, "10k", 1.0), (100_000, "100k", 3.0)):
        problems.append(
            Problem(
                f"B5-{label}",
                f"seeded random DAG, {size:,} operations over 8 variables",
                random_dag(size),
                {f"x{i}": unit for i in range(1, 9)},
                size=size,
                quick_points=30_000_000 // size,
                weight=weight,
            )
        )
    problems.append(
        Problem(
            "B6",
            "10th derivative of sin nested 7 deep",
            nested_sin(7),
            {"x": (-3.0, 3.0)},
            order=10,
            notes="the 'gradient' is d^10 f/dx^10, the 'function' f",
            quick_points=10_000,
        )
    )
    return {problem.name: problem for problem in problems}


PROBLEMS: dict[str, Problem] = _problems()
