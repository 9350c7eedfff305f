"""Tests for the continuous and categorical state spaces."""

import math

import pytest
import torch

from structebm.spaces import CategoricalSpace, ContinuousSpace


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_bounded_noise_is_uniform_in_the_box():
    space = ContinuousSpace((2,), low=-1.0, high=torch.tensor([3.0, 1.0]))
    n = 20000
    x = space.noise(n, _generator())
    assert x.shape == (n, 2) and x.dtype == torch.get_default_dtype()
    assert (x[:, 0] >= -1).all() and (x[:, 0] <= 3).all() and (x[:, 1] <= 1).all()
    # Uniform on [a, b]: mean (a+b)/2, sd (b-a)/sqrt(12); the sample mean has sd (b-a)/sqrt(12 n).
    # 5 standard errors: a false failure has probability < 1e-6.
    widths = torch.tensor([4.0, 2.0])
    tolerance = 5 * widths / math.sqrt(12 * n)
    assert ((x.mean(0) - torch.tensor([1.0, 0.0])).abs() < tolerance).all()
    # Variance of a uniform sample variance: sd of s^2 is about sqrt((mu4 - s^4) / n) = w^2 sqrt(1/80 - 1/144) / sqrt(n).
    var_tolerance = 5 * widths**2 * math.sqrt(1 / 80 - 1 / 144) / math.sqrt(n)
    assert ((x.var(0) - widths**2 / 12).abs() < var_tolerance).all()


def test_unbounded_noise_is_standard_normal():
    space = ContinuousSpace((3,))
    n = 20000
    x = space.noise(n, _generator(1))
    # Mean of n standard normals has sd 1/sqrt(n); the sample variance has sd sqrt(2/n). 5 sd each.
    assert (x.mean(0).abs() < 5 / math.sqrt(n)).all()
    assert ((x.var(0) - 1).abs() < 5 * math.sqrt(2 / n)).all()


def test_noise_is_reproducible_from_the_generator():
    space = ContinuousSpace((4,), low=0.0, high=1.0)
    assert torch.equal(space.noise(5, _generator(3)), space.noise(5, _generator(3)))
    assert not torch.equal(space.noise(5, _generator(3)), space.noise(5, _generator(4)))


def test_continuous_validate_names_the_problem():
    space = ContinuousSpace((2,), low=0.0, high=1.0)
    space.validate(torch.rand(4, 2), "here")
    with pytest.raises(ValueError, match=r"here: expected shape \[B, 2\]"):
        space.validate(torch.rand(4, 3), "here")
    with pytest.raises(TypeError, match="floating point"):
        space.validate(torch.ones(4, 2, dtype=torch.long), "here")
    bad = torch.rand(4, 2)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN .* row\(s\) \[2\]"):
        space.validate(bad, "here")
    with pytest.raises(ValueError, match=r"outside the box .* \[1\]"):
        space.validate(torch.tensor([[0.5, 0.5], [0.5, 1.5]]), "here")


def test_continuous_construction_errors():
    with pytest.raises(ValueError, match="both low and high"):
        ContinuousSpace((2,), low=0.0)
    with pytest.raises(ValueError, match="strictly below"):
        ContinuousSpace((2,), low=1.0, high=1.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        ContinuousSpace((2,), low=torch.zeros(3), high=torch.ones(3))


def test_categorical_noise_is_uniform_per_site():
    space = CategoricalSpace(length=4, num_states=3)
    n = 30000
    x = space.noise(n, _generator())
    assert x.shape == (n, 4) and x.dtype == torch.long
    frequencies = torch.nn.functional.one_hot(x, 3).float().mean(0)
    # Each frequency is a binomial proportion with p = 1/3: sd sqrt(p(1-p)/n); 5 sd.
    tolerance = 5 * math.sqrt((1 / 3) * (2 / 3) / n)
    assert ((frequencies - 1 / 3).abs() < tolerance).all()


def test_masked_categorical_noise_uses_only_allowed_states_uniformly():
    mask = torch.tensor([[True, True, False], [False, False, True], [True, True, True]])
    space = CategoricalSpace(length=3, num_states=3, mask=mask)
    n = 20000
    x = space.noise(n, _generator(2))
    space.validate(x, "noise")
    frequencies = torch.nn.functional.one_hot(x, 3).float().mean(0)
    expected = mask.float() / mask.float().sum(1, keepdim=True)
    # Largest binomial sd among the sites is sqrt(0.5 * 0.5 / n); 5 sd.
    assert ((frequencies - expected).abs() < 5 * math.sqrt(0.25 / n)).all()


def test_categorical_validate_and_construction_errors():
    space = CategoricalSpace(3, 4, mask=torch.tensor([True, True, True, False]))
    space.validate(torch.tensor([[0, 1, 2]]), "here")
    with pytest.raises(TypeError, match="integer dtype"):
        space.validate(torch.zeros(2, 3), "here")
    with pytest.raises(ValueError, match=r"expected shape \[B, 3\]"):
        space.validate(torch.zeros(2, 4, dtype=torch.long), "here")
    with pytest.raises(ValueError, match=r"outside \[0, 4\) in row\(s\) \[1\]"):
        space.validate(torch.tensor([[0, 0, 0], [0, 5, 0]]), "here")
    with pytest.raises(ValueError, match=r"not allowed by the mask in row\(s\) \[0\]"):
        space.validate(torch.tensor([[3, 0, 0]]), "here")
    with pytest.raises(ValueError, match="allows no state at site"):
        CategoricalSpace(2, 2, mask=torch.tensor([[True, False], [False, False]]))
    with pytest.raises(ValueError, match="mask must have shape"):
        CategoricalSpace(2, 2, mask=torch.ones(3, dtype=torch.bool))
