"""Convolution's masked forms (graphc/masked_conv.py): conv2d and its adjoints never take a term
whose flagged element is dead, so below a ``where`` with a condition per element an infinite or
NaN pixel or tap read by a selected and an unselected output gives the selected outputs'
derivative, in ``dp``, ``forward`` and ``paths``, first and second order, on both backends."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc
from graphc.backends import BACKENDS, UNAVAILABLE
from graphc.graph import Graph

AVAILABLE = [name for name in BACKENDS if name not in UNAVAILABLE]
RNG = np.random.default_rng(2512)


def _terms(x_shape, k_shape, stride, padding):
    """Every term of conv2d's trilinear form: (image index, filter index, output index)."""
    *lead, channels, height, width = x_shape
    c_out, _, kh, kw = k_shape
    oh, ow = (height + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1
    for before, o, c, i, j, h, w in itertools.product(
        itertools.product(*map(range, lead)), *map(range, (c_out, channels, kh, kw, oh, ow))
    ):
        y, z = stride * h + i - padding, stride * w + j - padding
        if 0 <= y < height and 0 <= z < width:
            yield (*before, c, y, z), (o, c, i, j), (*before, o, h, w)


def _oracle(op, slot, a, b, f, x_shape, k_shape, out_shape, stride, padding):
    """The masked sum term by term (IEEE products, the dead ones left out): the oracle."""
    roles = {"conv2d": ("x", "k", "o"), "conv2d_input": ("o", "k", "x"), "conv2d_filter": ("x", "o", "k")}[op]
    out = np.zeros(out_shape)
    with np.errstate(invalid="ignore", over="ignore"):
        for x_at, k_at, o_at in _terms(x_shape, k_shape, stride, padding):
            at = dict(zip("xko", (x_at, k_at, o_at), strict=True))
            if f[at[roles[slot]]] != 0:
                out[at[roles[2]]] += a[at[roles[0]]] * b[at[roles[1]]]
    return out


def _poisoned(shape, count):
    """Normal values with ``count`` elements made inf, -inf or NaN (seeded)."""
    values = RNG.normal(size=shape)
    for k, index in enumerate(RNG.choice(values.size, size=count, replace=False)):
        values.flat[index] = (np.inf, -np.inf, np.nan)[k % 3]
    return values


# (op, its operands' shapes, params): a batch axis, stride 2 and padding 1, several channels
FORMS = [
    ("conv2d", (2, 2, 5, 5), (3, 2, 3, 3), (2, 1)),
    ("conv2d", (2, 2, 4, 4), (3, 2, 2, 2), (1, 0)),
    ("conv2d_input", (2, 3, 3, 3), (3, 2, 3, 3), (2, 1, (5, 5))),
    ("conv2d_input", (2, 3, 3, 3), (3, 2, 2, 2), (1, 0, (4, 4))),
    ("conv2d_filter", (2, 2, 5, 5), (2, 3, 3, 3), (2, 1, (3, 3))),
    ("conv2d_filter", (2, 2, 4, 4), (2, 3, 3, 3), (1, 0, (2, 2))),
]


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("slot", [0, 1])
@pytest.mark.parametrize(("op", "first", "second", "params"), FORMS)
def test_a_masked_convolution_never_takes_a_dead_term(op, first, second, params, slot, backend):
    """Against the term-by-term oracle, with inf, -inf and NaN in either operand or both (dead and
    live ones) and without (the plain op's path); a pixel in the padding is no term."""
    g = Graph()
    a, b = g.var("a", first), g.var("b", second)
    f = g.var("f", (first, second)[slot])
    node = g.apply(f"masked_{op}", a, b, f, params=(*params, slot))
    g.set_outputs([node])
    stride, padding = params[:2]
    shapes = {"conv2d": (first, second), "conv2d_input": (None, second), "conv2d_filter": (first, None)}[op]
    out_shape = g.shape(node)
    x_shape = shapes[0] or out_shape
    k_shape = shapes[1] or out_shape
    kernel = graphc.compile(g, backend=backend)
    for counts in ((0, 0), (5, 0), (0, 5), (5, 5)):
        values = {"a": _poisoned(first, counts[0]), "b": _poisoned(second, counts[1])}
        flags = (RNG.random((first, second)[slot]) < 0.5).astype(float)
        got = kernel(**values, f=flags)
        want = _oracle(
            op, slot, values["a"], values["b"], flags, x_shape, k_shape, out_shape, stride, padding
        )
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
