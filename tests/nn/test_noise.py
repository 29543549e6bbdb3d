"""Tests specific to regdrop.nn.noise (the common checks are in test_common.py)."""

from __future__ import annotations

import math

import pytest
import torch

from regdrop.nn import GaussianDropout, GaussianNoise


def test_gaussian_dropout_refuses_rate_one() -> None:
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\), got 1.0$"):
        GaussianDropout(1.0)


def test_gaussian_dropout_statistics_follow_a_reassigned_p() -> None:
    torch.manual_seed(0)
    module = GaussianDropout(0.2)
    x = torch.ones(200_000, dtype=torch.float64)
    for p in (0.2, 0.6):
        module.p = p
        y = module(x)
        assert abs(y.mean().item() - 1.0) < 0.01
        assert abs(y.var().item() / (p / (1 - p)) - 1.0) < 0.02


@pytest.mark.parametrize(
    ("sigma", "error", "match"),
    [
        (-0.5, ValueError, r"^sigma must be a finite number >= 0, got -0.5$"),
        (math.inf, ValueError, r"^sigma must be a finite number >= 0, got inf$"),
        ("0.1", TypeError, r"^sigma must be a number >= 0, got str '0.1'$"),
    ],
)
def test_gaussian_noise_validates_sigma(sigma: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        GaussianNoise(sigma)  # type: ignore[arg-type]
    module = GaussianNoise(0.1)
    module.sigma = sigma  # type: ignore[assignment]
    with pytest.raises(error, match=match):
        module(torch.zeros(3))


def test_gaussian_noise_is_not_a_dropout_rate() -> None:
    assert GaussianNoise.rate_names == ()
    assert GaussianDropout.rate_names == ("p",)
    torch.manual_seed(1)
    module = GaussianNoise(0.3)
    assert abs(module(torch.zeros(100_000)).std().item() - 0.3) < 0.005
    assert torch.equal(module.eval()(torch.ones(4)), torch.ones(4))


def test_gaussian_noise_accepts_keras_stddev() -> None:
    from regdrop.nn import GaussianNoise

    assert GaussianNoise(stddev=0.3).sigma == 0.3
    assert GaussianNoise(sigma=0.2).sigma == 0.2
    with pytest.raises(TypeError, match="not both; got sigma=0.1, stddev=0.2"):
        GaussianNoise(0.1, stddev=0.2)
    with pytest.raises(TypeError, match=r"^sigma must be .*Keras spells it stddev.*got None"):
        GaussianNoise()
    with pytest.raises(ValueError, match="sigma"):
        GaussianNoise(stddev=-1.0)
