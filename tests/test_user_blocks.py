"""User-defined blocks: ``def`` in the language (expanded where used), ``graphc.block`` with a VJP
of the user's (which dp uses), ``graphc.check_block`` (the 003 lecture's MySoftmax check)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

import graphc
from graphc.printing import to_text

RNG = np.random.default_rng(3)


@pytest.fixture(autouse=True)
def _registry() -> Iterator[None]:
    """Each test registers its blocks in a registry of its own, left when it ends: nothing leaks."""
    with graphc.blocks():
        yield


def test_a_def_expands_to_the_graph_its_body_builds() -> None:
    by_block = graphc.parse("def sq(a) = a * a; def f(a, b) = sq(a) + sin(b); f(x + 1, y)")
    by_hand = graphc.parse("(x + 1) * (x + 1) + sin(y)")
    assert to_text(by_block) == to_text(by_hand)
    assert by_block.nx.number_of_nodes() == by_hand.nx.number_of_nodes()  # x + 1 is one node


def test_a_def_works_on_tensors_and_every_op() -> None:
    text = (
        "def dense(W, x, b) = relu(W @ x + b)\n"
        "def head(a) = log_softmax(a)[0]\n"
        "W1: [4, 3]; b1: [4]; W2: [2, 4]; b2: [2]; x: [3]\n"
        "head(dense(W2, dense(W1, x, b1), b2))"
    )
    args = {"W1": RNG.normal(size=(4, 3)), "b1": RNG.normal(size=4), "W2": RNG.normal(size=(2, 4))}
    args |= {"b2": RNG.normal(size=2), "x": RNG.normal(size=3)}
    h = np.maximum(args["W2"] @ np.maximum(args["W1"] @ args["x"] + args["b1"], 0) + args["b2"], 0)
    expected = h[0] - np.log(np.sum(np.exp(h)))
    np.testing.assert_allclose(graphc.compile(text)(**args), expected, rtol=1e-13)


def test_deeply_nested_defs_expand_without_recursion() -> None:
    defs = ["def b0(a) = a + 1"] + [f"def b{i}(a) = b{i - 1}(a) * 2" for i in range(1, 400)]
    graph = graphc.parse("; ".join(defs) + "; b399(x)")
    assert graph.stats()["depth"] == 400


@pytest.mark.parametrize(
    "text,message",
    [
        ("def f(a) = a * z; f(x)", "block 'f' reads 'z', which is not one of its parameters"),
        ("def f(a, b) = a * b; f(x)", r"block 'f' takes 2 argument\(s\) \(1 given\)"),
        ("def sin(a) = a; sin(x)", "cannot define 'sin': it is a built-in name"),
        ("def f(a, a) = a; f(x, y)", "parameter 'a' is repeated"),
        ("def f(a) a; f(x)", "expected '=' and the body"),
        ("def f(a) = ; f(x)", "block 'f' has an empty body"),
        ("x: [3]; y: [2]; def f(a, b) = a @ b; f(x, y)", r"in block 'f': cannot matmul \[3\] by \[2\]"),
        ("def f(a) = a +; f(x)", "in block 'f': expected an operand"),
    ],
)
def test_block_errors_name_the_block(text: str, message: str) -> None:
    with pytest.raises(graphc.ParseError, match=message):
        graphc.parse(text)


def test_a_block_error_points_at_the_call() -> None:
    text = "x: [3]; y: [2]; def f(a, b) = a @ b; 1 + f(x, y)"
    with pytest.raises(graphc.ParseError) as err:
        graphc.parse(text)
    assert err.value.position == text.index("f(x, y)")


# --- blocks with their own VJP -------------------------------------------------------------------


def test_mysoftmax_matches_softmax_and_its_vjp_checks() -> None:
    """The 003 lecture: MySoftmax with a hand-written backward, checked against softmax."""
    graphc.block("mysoftmax(a) = exp(a) / sum(exp(a))", vjp="y * (g - sum(y * g))")
    x = RNG.normal(size=(5, 4))
    mine = graphc.value_and_grad("x: [4]; w: [4]; sum(mysoftmax(x) * w)")
    theirs = graphc.value_and_grad("x: [4]; w: [4]; sum(softmax(x) * w)")
    w = RNG.normal(size=4)
    (v1, (g1, _)), (v2, (g2, _)) = mine(x=x, w=w), theirs(x=x, w=w)
    np.testing.assert_allclose(v1, v2, rtol=1e-13)
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-14)
    assert graphc.check_block("mysoftmax", RNG.normal(size=6)) < 1e-12


def test_dp_uses_the_users_vjp_and_check_block_catches_a_wrong_one() -> None:
    graphc.block("wrong(a) = exp(a) / sum(exp(a))", vjp="y * g")  # the diagonal only: wrong
    x, w = np.array([0.3, -0.2, 1.0]), np.array([1.0, 2.0, -1.0])
    (by_dp,) = graphc.grad("x: [3]; w: [3]; sum(wrong(x) * w)", wrt="x")(x=x, w=w)
    y = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(by_dp, y * w, rtol=1e-14)  # the user's formula, not the body's
    (by_forward,) = graphc.grad("x: [3]; w: [3]; sum(wrong(x) * w)", wrt="x", method="forward")(x=x, w=w)
    np.testing.assert_allclose(by_forward, y * (w - y @ w), rtol=1e-13)  # the body's derivative
    with pytest.raises(graphc.GraphcError, match="block 'wrong': the VJP of 'a' differs"):
        graphc.check_block("wrong", x)


def test_a_block_of_two_parameters_and_a_scalar_one() -> None:
    graphc.block("affine(W, x) = W @ x + 1", vjp=("outer(g, x)", "transpose(W) @ g"))
    assert graphc.check_block("affine", RNG.normal(size=(2, 3)), RNG.normal(size=3)) < 1e-12
    graphc.block("scaled(a) = 3 * a * a", vjp="6 * a * g")
    (d,) = graphc.grad("scaled(sin(x))")(x=0.5)
    assert d == pytest.approx(6 * np.sin(0.5) * np.cos(0.5), rel=1e-14)
    assert graphc.check_block("scaled", 0.7) < 1e-12


def test_a_registered_block_inside_a_def_and_a_second_derivative() -> None:
    graphc.block("scaled(a) = 3 * a * a", vjp="6 * a * g")
    h = graphc.hessian("def twice(a) = scaled(a) + scaled(a); twice(x)")(x=0.3)
    assert float(np.squeeze(h)) == pytest.approx(12.0, rel=1e-14)


def test_block_definition_errors() -> None:
    with pytest.raises(graphc.GraphcError, match="one VJP formula per parameter"):
        graphc.block("bad(a, b) = a * b", vjp="g")
    with pytest.raises(graphc.GraphcError, match="the VJP of block 'bad' reads 'z'"):
        graphc.block("bad(a) = a * a", vjp="z * g")
    with pytest.raises(graphc.ParseError, match="a block is one definition"):
        graphc.block("bad(a) = a; bad(x)")
    graphc.block("bad(a) = sum(a)", vjp="g")  # the adjoint must have the parameter's shape
    with pytest.raises(
        graphc.GraphcError, match=r"the VJP of block 'bad' is shaped \[\], its parameter \[3\]"
    ):
        graphc.grad("x: [3]; bad(x)")
    with pytest.raises(graphc.GraphcError, match="no block 'nothing' with a VJP"):
        graphc.check_block("nothing", 1.0)


# --- scoped registries ---------------------------------------------------------------------------


def test_a_scope_s_blocks_vanish_when_it_is_left() -> None:
    with graphc.blocks() as scope:
        graphc.block("twice(a) = 2 * a")
        assert graphc.compile("twice(x)")(3.0) == 6.0 and "twice" in scope
    with pytest.raises(graphc.ParseError, match="twice"):
        graphc.parse("twice(x)")  # the test's own registry never saw it
    with scope:  # a registry can be entered again
        assert graphc.compile("twice(x)")(4.0) == 8.0


def test_a_new_scope_starts_empty_or_with_a_copy_of_the_current_blocks() -> None:
    graphc.block("twice(a) = 2 * a")
    with graphc.blocks():
        with pytest.raises(graphc.ParseError, match="twice"):
            graphc.parse("twice(x)")
        graphc.block("twice(a) = 3 * a")  # its own twice: the outer one is untouched
        assert graphc.compile("twice(x)")(1.0) == 3.0
    with graphc.blocks(inherit=True):
        assert graphc.compile("twice(x)")(1.0) == 2.0
        graphc.forget("twice")
        graphc.block("half(a) = a / 2")
    assert graphc.compile("twice(x)")(1.0) == 2.0  # forgetting in the copy left the outer one
    with pytest.raises(graphc.ParseError, match="half"):
        graphc.parse("half(x)")


def test_registry_objects_define_and_forget_without_being_entered() -> None:
    mine = graphc.BlockRegistry()
    mine.block("cube(a) = a * a * a", vjp="3 * a * a * g")
    with pytest.raises(graphc.ParseError, match="cube"):
        graphc.parse("cube(x)")
    with mine:
        assert graphc.grad("cube(x)")(2.0) == (12.0,)
        assert graphc.check_block("cube", 0.5) < 1e-12
    mine.forget("cube")
    assert "cube" not in mine


def test_a_graph_keeps_its_blocks_after_the_scope_is_left() -> None:
    """A custom node holds its block (and the user's VJP), so the graph needs no registry."""
    with graphc.blocks():
        graphc.block("mysoftmax(a) = exp(a) / sum(exp(a))", vjp="y * (g - sum(y * g))")
        graph = graphc.parse("x: [3]; w: [3]; sum(mysoftmax(x) * w)")
    x, w = RNG.normal(size=3), RNG.normal(size=3)
    y = np.exp(x) / np.exp(x).sum()
    expected = y * (w - np.sum(y * w))
    np.testing.assert_allclose(graphc.grad(graph, wrt="x")(w=w, x=x)[0], expected, rtol=1e-13)


def test_two_threads_define_the_same_name_without_clashing() -> None:
    """Each thread's scope is its own (a context variable): both define 'f', each reads its own."""
    start = threading.Barrier(2)
    results: dict[int, list[float]] = {}

    def work(factor: int) -> None:
        with graphc.blocks():
            graphc.block(f"f(a) = {factor} * a")
            start.wait()  # both defined before either reads
            results[factor] = [float(graphc.compile("f(x)")(1.0)) for _ in range(5)]

    threads = [threading.Thread(target=work, args=(k,)) for k in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {2: [2.0] * 5, 3: [3.0] * 5}
    with pytest.raises(graphc.ParseError, match="'f'"):
        graphc.parse("f(x)")  # and neither leaked into this thread


# --- a block's scalar form -------------------------------------------------------------------------


def test_a_block_whose_body_is_its_scalar_form_works_in_every_method_and_backend() -> None:
    """scalar=True: paths, symbolic and llvm compute and differentiate the body; its derivative is
    the automatic one, which agrees with a correct VJP (dp keeps using the VJP)."""
    graphc.block("mysoftmax(a) = exp(a) / sum(exp(a))", vjp="y * (g - sum(y * g))", scalar=True)
    text = "x: [3]; w: [3]; sum(mysoftmax(x) * w)"
    x, w = RNG.normal(size=3), RNG.normal(size=3)
    expected = graphc.grad(text)(w=w, x=x)
    for method, backend in (("paths", "numpy"), ("symbolic", "numpy"), ("dp", "llvm"), ("paths", "llvm")):
        got = graphc.grad(text, method=method, backend=backend)(w=w, x=x)
        for partial, reference in zip(got, expected, strict=True):
            np.testing.assert_allclose(partial, reference, rtol=1e-12, err_msg=f"{method} {backend}")


def test_without_a_scalar_form_the_scalar_methods_refuse_by_the_block_s_name() -> None:
    graphc.block("wrong(a) = exp(a) / sum(exp(a))", vjp="y * g")
    with pytest.raises(
        graphc.GraphcError, match=r"block 'wrong' has its own VJP and no scalar form.*scalar=True"
    ):
        graphc.differentiate("x: [3]; sum(wrong(x) * x)", method="paths")


def test_a_scalar_form_is_the_body_even_where_the_vjp_is_wrong() -> None:
    """What scalar=True promises: the scalar methods differentiate the body, so a wrong VJP (which
    check_block catches) shows as dp disagreeing with them."""
    graphc.block("wrong(a) = exp(a) / sum(exp(a))", vjp="y * g", scalar=True)
    text = "x: [3]; w: [3]; sum(wrong(x) * w)"
    x, w = RNG.normal(size=3), RNG.normal(size=3)
    by_body = graphc.grad(text, method="paths")(w=w, x=x)
    np.testing.assert_allclose(by_body[1], graphc.grad(text, method="forward")(w=w, x=x)[1], rtol=1e-12)
    assert not np.allclose(graphc.grad(text)(w=w, x=x)[1], by_body[1])


def test_scalar_is_for_a_block_with_its_own_vjp() -> None:
    with pytest.raises(graphc.GraphcError, match="scalar=True is for a block with its own vjp"):
        graphc.block("twice(a) = 2 * a", scalar=True)
