"""The baselines a recipe's score is printed beside, computed by the libraries that own them.

- classification: the majority class, and 1-nearest-neighbour DTW (sktime's
  ``KNeighborsTimeSeriesClassifier``), the classic yardstick of the UCR/UEA archive;
- forecasting: the naive (last value) and seasonal naive forecasts, and an ARIMA model
  (statsmodels' ``SARIMAX``) whose order is chosen by AIC on the training part;
- language model: the unigram and an interpolated Kneser-Ney bigram model of the training words.

Every function takes the data as the recipe splits it, so a baseline and the network see the
same training and test cases.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "arima_forecasts",
    "kneser_ney_bigram_perplexity",
    "majority_accuracy",
    "one_nn_dtw_accuracy",
    "rmse",
    "seasonal_naive_forecasts",
    "unigram_perplexity",
]


def majority_accuracy(train_labels: Tensor, test_labels: Tensor) -> float:
    """Test accuracy of always answering the most frequent training class.

    Example:
        >>> majority_accuracy(torch.tensor([0, 1, 1]), torch.tensor([1, 0, 1, 1]))
        0.75
    """
    majority = torch.bincount(train_labels).argmax()
    return float((test_labels == majority).float().mean())


def one_nn_dtw_accuracy(
    train: Sequence[Tensor],
    train_labels: Tensor,
    test: Sequence[Tensor],
    test_labels: Tensor,
    *,
    max_length: int = 256,
    window: float = 0.1,
    full_window_up_to: int = 512,
) -> float:
    r"""Test accuracy of 1-nearest-neighbour classification under dynamic time warping (sktime).

    Sequences of one length are compared as they are; sets whose sequences differ in length
    are resampled (sktime's ``TSInterpolator``) to one length, the longest training length but at
    most ``max_length``. Up to ``full_window_up_to`` steps the warping is unconstrained; longer
    sequences use a Sakoe-Chiba band of ``window`` times the length, which keeps the cost
    :math:`O(N_{train} N_{test} L^2 \cdot window)` within minutes on a CPU.

    Args:
        train: training sequences, each ``(L_i, C)``.
        train_labels: their class indices ``(N_train,)``.
        test: test sequences, each ``(L_j, C)``.
        test_labels: their class indices ``(N_test,)``.
        max_length: the length unequal sequences are resampled to, at most. Default: 256.
        window: the band's width, as a fraction of the length, for long sequences. Default: 0.1.
        full_window_up_to: the longest length warped without a band. Default: 512.

    Raises:
        ModuleNotFoundError: if sktime (or numba, which its DTW needs) is not installed.

    Example:
        >>> up, down = torch.linspace(0, 1, 8).unsqueeze(1), torch.linspace(1, 0, 8).unsqueeze(1)
        >>> one_nn_dtw_accuracy([up, down], torch.tensor([0, 1]), [up * 0.9, down], torch.tensor([0, 1]))
        1.0
    """
    import pandas as pd
    from sktime.classification.distance_based import KNeighborsTimeSeriesClassifier
    from sktime.transformations.panel.interpolate import TSInterpolator

    lengths = {s.shape[0] for s in [*train, *test]}
    length = max(s.shape[0] for s in train) if len(lengths) > 1 else lengths.pop()
    length = min(length, max_length) if len(lengths) > 1 else length
    params = None if length <= full_window_up_to else {"window": window}
    classifier = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw", distance_params=params)

    def panel(sequences: Sequence[Tensor]) -> np.ndarray:
        frames = [pd.DataFrame(s.double().numpy()) for s in sequences]  # sktime's "df-list": cases of any length
        if any(len(frame) != length for frame in frames):
            frames = TSInterpolator(length).fit_transform(frames)
        return np.stack([frame.to_numpy().T for frame in frames])  # (N, C, L)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sktime's notes on numba and on the pandas version
        classifier.fit(panel(train), train_labels.numpy())
        predicted = classifier.predict(panel(test))
    return float((torch.as_tensor(np.asarray(predicted, dtype=np.int64)) == test_labels).float().mean())


def rmse(forecasts: np.ndarray, targets: np.ndarray) -> float:
    """Root mean squared error over every element.

    Example:
        >>> rmse(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
        1.4142135623730951
    """
    return float(np.sqrt(np.mean((np.asarray(forecasts) - np.asarray(targets)) ** 2)))


def _check_origins(series: np.ndarray, origins: Sequence[int], horizon: int) -> None:
    if len(origins) == 0 or min(origins) < 1 or max(origins) + horizon > len(series):
        raise ValueError(
            f"origins must lie in [1, {len(series) - horizon}] for a series of length {len(series)} "
            f"and horizon {horizon}, got {min(origins, default=None)} .. {max(origins, default=None)}"
        )


def seasonal_naive_forecasts(series: np.ndarray, origins: Sequence[int], horizon: int, period: int) -> np.ndarray:
    """The value one period before: step ``j`` from origin ``o`` is ``series[o + j - period * ceil((j+1)/period)]``.

    Raises:
        ValueError: if ``period`` is below 1 or an origin has less than one period of history.

    Example:
        >>> seasonal_naive_forecasts(np.array([1.0, 2, 3, 1, 2, 3]), [3, 4], 2, period=3).tolist()
        [[1.0, 2.0], [2.0, 3.0]]
    """
    _check_origins(series, origins, horizon)
    if period < 1 or min(origins) < period:
        raise ValueError(f"period must be in [1, {min(origins)}] (the history before the first origin), got {period}")
    steps = np.arange(horizon)
    back = period * np.ceil((steps + 1) / period).astype(int)
    return series[np.asarray(origins)[:, None] + steps[None, :] - back[None, :]]


# small orders cover the usual non-seasonal dynamics; a wide grid costs minutes on a CPU for little AIC
_ORDERS = ((1, 0, 0), (2, 0, 0), (1, 0, 1), (2, 0, 1), (0, 1, 1), (1, 1, 0), (1, 1, 1), (2, 1, 0), (2, 1, 1))


def arima_forecasts(
    series: np.ndarray,
    train_end: int,
    origins: Sequence[int],
    horizon: int,
    period: int | None = None,
) -> tuple[np.ndarray, str]:
    r"""Forecasts of an ARIMA model fitted on ``series[:train_end]``, from each origin with the history before it.

    The order is chosen by AIC among nine small non-seasonal orders (AR(1), AR(2), ARMA(1,1),
    ARMA(2,1) with a constant; ARIMA(0,1,1), (1,1,0), (1,1,1), (2,1,0), (2,1,1)) and, when
    ``period`` is at most 24 and the training part holds three periods, four orders with a
    seasonal :math:`(0, 1, 1)_{period}` part (longer periods make the state-space fit too slow
    for a CPU baseline), all fitted by statsmodels' ``SARIMAX`` on the training part only. The
    chosen parameters are then applied to the whole series (no refit), and each forecast uses the
    observations before its origin: one-step-ahead predictions for ``horizon=1``, dynamic
    ``horizon``-step forecasts otherwise.

    Args:
        series: the series ``(T,)``.
        train_end: the length of the training part.
        origins: the first forecast step of each forecast.
        horizon: steps per forecast.
        period: the seasonal period, if any. Default: None.

    Returns:
        The forecasts ``(len(origins), horizon)`` and the chosen model's name, e.g. ``"ARIMA(2,1,0)"``.

    Raises:
        ValueError: if the origins leave the series or ``train_end`` is too short to fit.
        ModuleNotFoundError: if statsmodels is not installed.
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    _check_origins(series, origins, horizon)
    if train_end < 8:
        raise ValueError(f"train_end must be >= 8 to fit an ARIMA model, got {train_end}")
    series = np.asarray(series, dtype=np.float64)
    train = series[:train_end]
    candidates = [((p, d, q), (0, 0, 0, 0)) for p, d, q in _ORDERS]
    if period is not None and 1 < period <= 24 and train_end >= 3 * period:
        candidates += [(order, (0, 1, 1, period)) for order in ((0, 1, 1), (1, 1, 0), (0, 0, 1), (1, 0, 0))]
    best: tuple[float, object, str] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and start-parameter notes of the candidate fits
        for (p, d, q), season in candidates:
            trend = "c" if d == 0 and not season[1] else None
            try:
                fitted = SARIMAX(train, order=(p, d, q), seasonal_order=season, trend=trend).fit(disp=False)
            except (ValueError, np.linalg.LinAlgError):
                continue
            if not math.isfinite(fitted.aic):
                continue
            name = f"ARIMA({p},{d},{q})" + (f"({season[0]},{season[1]},{season[2]})[{season[3]}]" if season[3] else "")
            if best is None or fitted.aic < best[0]:
                best = (fitted.aic, fitted, name)
        if best is None:
            raise ValueError("no ARIMA candidate could be fitted on the training part")
        whole = best[1].apply(series)  # type: ignore[attr-defined]
        if horizon == 1:
            predicted = np.asarray(whole.predict(start=min(origins), end=max(origins)))
            return predicted[np.asarray(origins) - min(origins)][:, None], best[2]
        rows = [np.asarray(whole.predict(start=o, end=o + horizon - 1, dynamic=0)) for o in origins]
    return np.stack(rows), best[2]


def unigram_perplexity(train: Tensor, test: Tensor, vocab_size: int) -> float:
    """Test perplexity of the add-one smoothed unigram model of the training tokens.

    Example:
        >>> round(unigram_perplexity(torch.tensor([0, 0, 1]), torch.tensor([0, 1]), 2), 4)
        2.0412
    """
    counts = torch.bincount(train, minlength=vocab_size).double() + 1.0
    log_p = (counts / counts.sum()).log()
    return float((-log_p[test].mean()).exp())


def kneser_ney_bigram_perplexity(train: Tensor, test: Tensor, vocab_size: int, discount: float = 0.75) -> float:
    r"""Test perplexity of an interpolated Kneser-Ney bigram model (Chen & Goodman 1998) of the training tokens.

    .. math::
        p(w \mid v) = \frac{\max(c(v w) - D, 0)}{c(v)} + \frac{D\, N_{1+}(v \bullet)}{c(v)}\, p_{cont}(w),
        \qquad p_{cont}(w) = \frac{N_{1+}(\bullet w) + 1}{N_{1+}(\bullet \bullet) + V},

    with :math:`c` the counts of the training stream, :math:`N_{1+}` the number of distinct
    neighbours, and :math:`p(w \mid v) = p_{cont}(w)` for a :math:`v` never seen before another
    token. (The continuation counts get add-one smoothing, so no word has probability 0.)

    Example:
        >>> stream = torch.tensor([0, 1, 0, 1, 0, 1, 2])
        >>> bigram = kneser_ney_bigram_perplexity(stream, stream, 3)
        >>> bigram < unigram_perplexity(stream, stream, 3)
        True
    """
    if not 0.0 < discount < 1.0:
        raise ValueError(f"discount must be in (0, 1), got {discount}")
    tokens = train.tolist()
    pairs = Counter(pairwise(tokens))
    history = Counter(tokens[:-1])
    followers = Counter(v for v, _ in pairs)
    continuation = Counter(w for _, w in pairs)
    total = len(pairs) + vocab_size
    log_likelihood = 0.0
    sequence = test.tolist()
    for v, w in pairwise(sequence):
        p_cont = (continuation[w] + 1) / total
        seen = history[v]
        p = (max(pairs[v, w] - discount, 0.0) + discount * followers[v] * p_cont) / seen if seen else p_cont
        log_likelihood += math.log(p)
    return math.exp(-log_likelihood / max(len(sequence) - 1, 1))
