"""The summed finiteness test: exact on NaN / infinity, inconclusive (never wrong) on overflow."""

from __future__ import annotations

import pytest
import torch

from structebm.finite import sums_are_finite
from structebm.objectives.base import check_data
from structebm.samplers.base import ChainDivergedError, ChainState, check_chain_finite


def test_nan_and_infinity_are_caught_anywhere():
    x = torch.zeros(4, 5)
    assert sums_are_finite(x, torch.zeros(4))
    for value in (float("nan"), float("inf"), float("-inf")):
        bad = x.clone()
        bad[2, 3] = value
        assert not sums_are_finite(bad)
        assert not sums_are_finite(torch.zeros(4), bad)


def test_integer_tensors_and_half_precision():
    assert sums_are_finite(torch.arange(10))
    assert sums_are_finite(torch.full((100,), 60000.0, dtype=torch.float16))  # the float16 sum would overflow


def test_an_overflowing_sum_of_finite_values_raises_nothing():
    huge = torch.full((2, 3), 3e38)
    assert not sums_are_finite(huge)  # inconclusive ...
    check_data(huge, "data")  # ... and the exact test finds every row finite
    check_chain_finite(ChainState(x=huge, c=None, energy=torch.zeros(2)), "sampler")


def test_the_exact_test_names_the_rows():
    x = torch.zeros(5, 2)
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"row\(s\) \[3\]"):
        check_data(x, "data")
    with pytest.raises(ChainDivergedError, match=r"chain\(s\) \[3\]"):
        check_chain_finite(ChainState(x=x, c=None, energy=torch.zeros(5), step=4), "sampler")
