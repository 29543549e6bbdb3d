"""recipes/common/baselines.py: each baseline against a hand-checked case or a property it must have."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

import common.baselines
from common.baselines import (
    arima_forecasts,
    kneser_ney_bigram_perplexity,
    majority_accuracy,
    one_nn_dtw_accuracy,
    rmse,
    seasonal_naive_forecasts,
    unigram_perplexity,
)


def test_doctests() -> None:
    result = doctest.testmod(common.baselines)
    assert result.attempted > 0 and result.failed == 0


def test_majority() -> None:
    assert majority_accuracy(torch.tensor([2, 2, 0]), torch.tensor([2, 0, 1, 2])) == 0.5


def _bump(length: int, at: int) -> torch.Tensor:
    x = torch.zeros(length, 1)
    x[at : at + 3, 0] = torch.tensor([1.0, 3.0, 1.0])
    return x


def test_dtw_matches_shifted_shapes_that_euclidean_distance_confuses() -> None:
    # class 0: one bump; class 1: two bumps. The test bumps are shifted, so by Euclidean distance
    # the single bump at 12 lies closer to the double bump whose second bump is at 12.
    one, two = _bump(20, 2), _bump(20, 2) + _bump(20, 12)
    shifted_one = _bump(20, 12)
    shifted_two = _bump(20, 4) + _bump(20, 15)
    train, labels = [one, two], torch.tensor([0, 1])
    euclidean = [int(torch.stack([(t - s).norm() for s in train]).argmin()) for t in (shifted_one, shifted_two)]
    assert euclidean[0] == 1  # the premise: Euclidean 1-NN gets the first case wrong
    assert one_nn_dtw_accuracy(train, labels, [shifted_one, shifted_two], torch.tensor([0, 1])) == 1.0


def test_dtw_takes_sequences_of_different_lengths() -> None:
    up = [torch.linspace(0, 1, n).unsqueeze(1).repeat(1, 2) for n in (9, 12)]
    down = [torch.linspace(1, 0, n).unsqueeze(1).repeat(1, 2) for n in (10, 14)]
    accuracy = one_nn_dtw_accuracy(
        [up[0], down[0]], torch.tensor([0, 1]), [up[1], down[1]], torch.tensor([0, 1]), max_length=8
    )
    assert accuracy == 1.0


def test_seasonal_naive() -> None:
    series = np.arange(10.0)
    # period 2, horizon 3: steps 0 and 1 look one period back, step 2 two periods back
    assert seasonal_naive_forecasts(series, [4], 3, period=2).tolist() == [[2.0, 3.0, 2.0]]
    with pytest.raises(ValueError, match=r"origins must lie in \[1, 8\] for a series of length 10 and horizon 2"):
        seasonal_naive_forecasts(series, [9], 2, period=1)
    with pytest.raises(ValueError, match=r"period must be in \[1, 3\].*got 5"):
        seasonal_naive_forecasts(series, [3, 4], 1, period=5)


def test_arima_recovers_an_ar1_process_and_forecasts_from_the_history_before_each_origin() -> None:
    rng = np.random.default_rng(0)
    series = np.zeros(400)
    for t in range(1, 400):
        series[t] = 0.8 * series[t - 1] + rng.normal()
    origins = list(range(300, 399))
    one_step, name = arima_forecasts(series, 250, origins, 1)
    assert name.startswith("ARIMA(") and one_step.shape == (99, 1)
    # the one-step forecast of an AR(1) is close to 0.8 times the previous value
    assert np.allclose(one_step[:, 0], 0.8 * series[np.array(origins) - 1], atol=0.25)
    assert rmse(one_step, series[origins][:, None]) < 1.2  # the noise has standard deviation 1
    two_step, same = arima_forecasts(series, 250, origins[:-1], 2)
    assert same == name and two_step.shape == (98, 2)
    assert np.allclose(two_step[:, 0], one_step[:-1, 0])  # the first step of a forecast is the one-step one
    with pytest.raises(ValueError, match="train_end must be >= 8"):
        arima_forecasts(series, 5, origins, 1)


def test_kneser_ney_probabilities_sum_to_one_and_beat_the_unigram_on_structured_text() -> None:
    train = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3, 4, 0, 1, 2])
    vocab = 6  # word 5 never occurs
    for history in (0, 1, 5):
        # a two-token test stream scores exactly one bigram: its perplexity is 1 / p(w | history)
        total = sum(1.0 / kneser_ney_bigram_perplexity(train, torch.tensor([history, w]), vocab) for w in range(vocab))
        assert total == pytest.approx(1.0)
    assert kneser_ney_bigram_perplexity(train, train, vocab) < unigram_perplexity(train, train, vocab)
    with pytest.raises(ValueError, match=r"discount must be in \(0, 1\), got 1.0"):
        kneser_ney_bigram_perplexity(train, train, vocab, discount=1.0)
