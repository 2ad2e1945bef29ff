"""T2's floor (bench/t2_floor.py): its dgemm calls compute the products, and a tiny run publishes."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
sys.path.insert(0, BENCH)

import t2_floor
import tensor_problems

from graphc.backends.llvm.tensor_blas import dgemm_address


@pytest.mark.parametrize("product", t2_floor.PRODUCTS, ids=lambda p: p.text)
def test_each_product_through_graphcs_dgemm_is_numpys(product):
    """The call the floor times is the product (transposed operands by dgemm's flags, no copy)."""
    stored = t2_floor.operands(tensor_problems.PROBLEMS["T2"].arrays(batch=24))
    _, a, b, c = t2_floor.dgemm_product(product, stored, dgemm_address())()
    want = (a.T if product.a_transposed else a) @ (b.T if product.b_transposed else b)
    np.testing.assert_allclose(c, want, rtol=1e-13, atol=1e-13)


def test_a_tiny_run_publishes_the_floor_and_graphcs_split(tmp_path):
    t2_floor.main(["--systems", "numpy-hand,graphc-llvm", "--rounds", "1", "--block", "0.01",
                   "--out", str(tmp_path)])  # fmt: skip
    results = json.loads((tmp_path / "t2_floor.json").read_text(encoding="utf-8"))
    kinds = {(f["kind"], f["name"]) for f in results["figures"]}
    for product in t2_floor.PRODUCTS:
        assert ("numpy", product.text) in kinds and ("dgemm", product.text) in kinds
    assert ("step", "graphc-llvm") in kinds and ("step", "numpy-hand") in kinds
    assert results["missing"] == {} and results["without_blas"]["cpu_s"] > 0
    assert results["shapes"]["Xᵀ @ G1"] == [784, 256, 256]
    page = (tmp_path / "t2_floor.md").read_text(encoding="utf-8")
    assert page.startswith("# T2's floor")
    assert (
        "Made by `python bench/t2_floor.py --systems numpy-hand,graphc-llvm --rounds 1 --block 0.01`" in page
    )
    assert "Best peer: **numpy-hand**" in page and "## Where graphc-llvm's step goes" in page
    assert "| **floor: their sum** |" in page
