"""recipes/sine_lstm.py, its data: sine waves, their statistics, determinism, and the data modules built on them."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

import sine_lstm
from sine_lstm import SineDataModule, sine_waves
from tests.recipes.sine_classes import SineClassificationDataModule


def test_doctests() -> None:
    result = doctest.testmod(sine_lstm)
    assert result.attempted > 0, "no doctest ran: the examples are gone"
    assert result.failed == 0


def test_waves_have_the_drawn_amplitude_period_and_noise() -> None:
    generator = torch.Generator().manual_seed(0)
    periods = torch.tensor([10.0, 25.0])
    noisy, clean = sine_waves(periods, [500, 500], (1.5, 1.5), (0.2, 0.2), generator)
    for wave, period in zip(clean, periods, strict=True):
        assert float(wave.abs().max()) == pytest.approx(1.5, abs=0.02)
        # a sine of amplitude A has RMS A / sqrt(2)
        assert float(wave.pow(2).mean().sqrt()) == pytest.approx(1.5 / math.sqrt(2), rel=0.02)
        spectrum = torch.fft.rfft(wave.double()).abs()
        assert int(spectrum.argmax()) == round(500 / float(period))
    for n, c in zip(noisy, clean, strict=True):
        assert float((n - c).std()) == pytest.approx(0.2, rel=0.15)


def test_waves_depend_only_on_the_generator_state() -> None:
    a = sine_waves(torch.tensor([9.0]), [50], (0.5, 2.0), (0.0, 0.3), torch.Generator().manual_seed(5))
    b = sine_waves(torch.tensor([9.0]), [50], (0.5, 2.0), (0.0, 0.3), torch.Generator().manual_seed(5))
    c = sine_waves(torch.tensor([9.0]), [50], (0.5, 2.0), (0.0, 0.3), torch.Generator().manual_seed(6))
    assert torch.equal(a[0][0], b[0][0]) and not torch.equal(a[0][0], c[0][0])


def test_sine_module_is_reproducible_and_truth_is_aligned() -> None:
    kwargs = dict(num_series=20, length=80, input_length=16, horizon=4, noise=(0.1, 0.1), seed=7)
    dm, again = SineDataModule(**kwargs), SineDataModule(**kwargs)
    for s, t in zip(dm.test_series, again.test_series, strict=True):
        assert torch.equal(s, t)
    truth = dm.test_truth()
    assert len(truth) == len(dm.test_series) == 3
    for noisy, clean in zip(dm.test_series, truth, strict=True):
        assert noisy.shape == clean.shape == (80, 1)
        assert float((noisy - clean).std()) == pytest.approx(0.1, rel=0.3)
    amplitudes = [float(s.abs().max()) for s in truth]
    assert all(0.45 <= a <= 2.0 for a in amplitudes) and max(amplitudes) - min(amplitudes) > 0.1
    assert dm.num_features == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_series": 0}, r"num_series must be an int >= 1, got 0"),
        ({"period": (5.0, 2.0)}, r"period must be a pair \(low, high\) with 0 < low <= high, got \(5.0, 2.0\)"),
        ({"period": (0.0, 2.0)}, r"period must be a pair \(low, high\) with 0 < low <= high"),
        ({"noise": (-0.1, 0.2)}, r"noise must be a finite number >= 0, got -0.1"),
        ({"amplitude": (1.0,)}, r"amplitude must be a pair \(low, high\), got \(1.0,\)"),
    ],
)
def test_sine_module_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SineDataModule(**kwargs)


def test_classification_waves_are_balanced_and_banded_by_period() -> None:
    dm = SineClassificationDataModule(num_sequences=90, num_classes=3, min_length=64, max_length=80, noise=(0.0, 0.0))
    sequences, labels = dm.load_sequences()
    assert torch.bincount(labels).tolist() == [30, 30, 30]
    assert all(64 <= len(s) <= 80 for s in sequences)
    # the class is the period band: the mean rate of sign changes falls as the class rises
    crossing_rate = torch.tensor([float((s[1:].sign() != s[:-1].sign()).float().mean()) for s in sequences])
    means = [float(crossing_rate[labels == k].mean()) for k in range(3)]
    assert means[0] > means[1] > means[2]
    assert dm.num_classes == 3 and dm.num_features == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, r"num_classes must be an int >= 2, got 1"),
        ({"min_length": 10, "max_length": 5}, r"max_length must be >= min_length = 10, got 5"),
        ({"num_sequences": 2, "num_classes": 3}, r"num_sequences must be >= num_classes = 3, got 2"),
    ],
)
def test_classification_module_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SineClassificationDataModule(**kwargs)
