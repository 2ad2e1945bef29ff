"""A first look at graphc: text -> graph -> compiled function.

Run: python examples/quickstart.py
"""

import numpy as np
import sympy

import graphc

# 1. Parse: equal subexpressions are one node; every operand slot is one edge.
graph = graphc.parse("u = x*y; sin(u) + cos(u) + u**2")
print("variables:", graph.variables)
print("stats:    ", graph.stats())
assert graph.stats()["ops"]["mul"] == 1, "x*y is built once and shared"

# The graph is a networkx MultiDiGraph underneath: x*x has two parallel edges (slots 0 and 1).
square = graphc.parse("x*x")
print("x*x edges:", list(square.nx.edges(keys=True)))
assert square.nx.number_of_edges() == 2

# 2. Compile with the NumPy backend and evaluate on scalars or broadcast arrays.
f = graphc.compile(graph)
print("f(1.5, 2) =", f(x=1.5, y=2.0))
values = f(x=np.linspace(0, 1, 5), y=2.0)
print("f(x=linspace(0, 1, 5), y=2) =", values)
u = np.linspace(0, 1, 5) * 2.0
assert np.allclose(values, np.sin(u) + np.cos(u) + u**2)

# The generated source is readable Python that needs only NumPy.
print(f.source)

# 3. Several outputs, and conversion to and from SymPy.
both = graphc.compile("x*y, sin(x)")
print("both(2, 3) =", both(2.0, 3.0))
print("as SymPy:  ", graph.to_sympy())
x, y = sympy.symbols("x y")
from_sympy = graphc.compile(sympy.exp(x) * sympy.sin(y))
assert np.isclose(from_sympy(x=1.0, y=2.0), np.exp(1.0) * np.sin(2.0))

# 4. Errors say what is wrong and where; nothing in the text ever reaches Python.
try:
    graphc.parse("sin(x) + __import__('os').system('ls')")
except graphc.ParseError as err:
    print(err.render())
