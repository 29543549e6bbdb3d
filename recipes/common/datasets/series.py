"""Real series to forecast: Airline and Lynx (sktime), CO2, sunspots and Nile (statsmodels), or a user's CSV column."""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..baselines import arima_forecasts, rmse, seasonal_naive_forecasts
from ..data import ForecastDataModule
from .files import package_file, user_file

__all__ = [
    "RealSeriesDataModule",
    "fill_gaps",
    "load_airline",
    "load_co2",
    "load_lynx",
    "load_nile",
    "load_sunspots",
    "read_series_csv",
]


def fill_gaps(values: list[float]) -> Tensor:
    """The values as a float64 tensor, each run of NaNs replaced by the straight line between its neighbours.

    Raises:
        ValueError: if the series starts or ends with a gap, or holds no value.

    Example:
        >>> fill_gaps([1.0, float("nan"), float("nan"), 4.0]).tolist()
        [1.0, 2.0, 3.0, 4.0]
    """
    series = torch.tensor(values, dtype=torch.float64)
    missing = torch.isnan(series)
    if not missing.any():
        return series
    if missing.all() or missing[0] or missing[-1]:
        raise ValueError("a series must start and end with a value to fill its gaps by interpolation")
    steps = torch.arange(len(series), dtype=torch.float64)
    known = (~missing).nonzero().squeeze(1)
    # for each gap, the known steps on either side; the line between them fills it
    right = torch.searchsorted(known, steps[missing].long())
    left = right - 1
    x0, x1 = steps[known[left]], steps[known[right]]
    y0, y1 = series[known[left]], series[known[right]]
    series[missing] = y0 + (y1 - y0) * (steps[missing] - x0) / (x1 - x0)
    return series


def read_series_csv(path: str | Path, column: str | None = None) -> Tensor:
    """Read one numeric column of a CSV file with a header line; empty cells are gaps, filled by interpolation.

    Args:
        path: the CSV file.
        column: the column's name in the header. Default: the last column.

    Returns:
        The series, float64 ``(T,)``, in file order.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file has no header or no rows, the column is not in the header, a row
            is too short, or a cell is not a number (the message gives the line and the cell).

    Example:
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        ...     _ = f.write("month,sales\\n2020-01,3\\n2020-02,\\n2020-03,5\\n")
        >>> read_series_csv(f.name, "sales").tolist()
        [3.0, 4.0, 5.0]
        >>> os.remove(f.name)
    """
    path = user_file(path, "the series CSV file")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise ValueError(f"{path}: a series CSV needs a header line and at least one row, got {len(rows)} line(s)")
    header = [name.strip() for name in rows[0]]
    if column is None:
        index = len(header) - 1
    elif column in header:
        index = header.index(column)
    else:
        raise ValueError(f"{path}: column must be one of the header's names {header}, got {column!r}")
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if index >= len(row):
            raise ValueError(f"{path}, line {line}: the row has {len(row)} cells, no column {header[index]!r}")
        cell = row[index].strip()
        try:
            values.append(float(cell) if cell else math.nan)
        except ValueError:
            raise ValueError(
                f"{path}, line {line}: column {header[index]!r} must hold numbers (or nothing, for a gap), got {cell!r}"
            ) from None
    try:
        return fill_gaps(values)
    except ValueError as error:
        raise ValueError(f"{path}: column {header[index]!r}: {error}") from None


def load_airline() -> Tensor:
    """The Airline series shipped with sktime: monthly international airline passengers (thousands), 1949-1960.

    Returns:
        float64 ``(144,)``.

    Raises:
        MissingDataError: if sktime is not installed.
    """
    path = package_file(
        "sktime",
        "datasets/data/Airline/Airline.csv",
        dataset="Airline",
        distribution="sktime",
        own_file="--data.dataset",
    )
    return read_series_csv(path, "Passengers")


def load_co2() -> Tensor:
    """The CO2 series shipped with statsmodels: weekly atmospheric CO2 at Mauna Loa (ppm), March 1958 - December 2001.

    The 59 missing weeks are filled by linear interpolation between their neighbours.

    Returns:
        float64 ``(2284,)``.

    Raises:
        MissingDataError: if statsmodels is not installed.
    """
    path = package_file(
        "statsmodels", "datasets/co2/co2.csv", dataset="CO2", distribution="statsmodels", own_file="--data.dataset"
    )
    return read_series_csv(path, "co2")


def load_sunspots() -> Tensor:
    """The yearly sunspot numbers shipped with statsmodels, 1700-2008 (``(309,)``, float64).

    Raises:
        MissingDataError: if statsmodels is not installed.
    """
    path = package_file(
        "statsmodels", "datasets/sunspots/sunspots.csv", dataset="sunspots", distribution="statsmodels",
        own_file="--data.dataset",
    )  # fmt: skip
    return read_series_csv(path, "SUNACTIVITY")


def load_nile() -> Tensor:
    """The yearly flow of the Nile at Aswan shipped with statsmodels, 1871-1970 (``(100,)``, float64, 10^8 m^3).

    Raises:
        MissingDataError: if statsmodels is not installed.
    """
    path = package_file(
        "statsmodels", "datasets/nile/nile.csv", dataset="Nile", distribution="statsmodels", own_file="--data.dataset"
    )
    return read_series_csv(path, "volume")


def load_lynx() -> Tensor:
    """The yearly Canadian lynx trappings shipped with sktime, 1821-1934 (``(114,)``, float64).

    Raises:
        MissingDataError: if sktime is not installed.
    """
    path = package_file(
        "sktime", "datasets/data/Lynx/Lynx.csv", dataset="Lynx", distribution="sktime", own_file="--data.dataset"
    )
    return read_series_csv(path)


_BUILTIN = {"airline": load_airline, "co2": load_co2, "sunspots": load_sunspots, "nile": load_nile, "lynx": load_lynx}
# the period of the seasonal naive forecast and of the seasonal ARIMA candidates: months, weeks, and
# the roughly 11- and 10-year cycles of sunspots and lynx; the Nile has none
_PERIODS = {"airline": 12, "co2": 52, "sunspots": 11, "lynx": 10, "nile": None}


@functools.lru_cache(maxsize=32)
def _arima_rmse(
    values: tuple[float, ...], train_end: int, origins: tuple[int, ...], horizon: int, period: int | None
) -> tuple[float, str]:
    # several seconds of model selection, the same for every seed of a run: computed once per process
    series = np.asarray(values)
    forecasts, name = arima_forecasts(series, train_end, list(origins), horizon, period)
    targets = np.stack([series[o : o + horizon] for o in origins])
    return rmse(forecasts, targets), name


class RealSeriesDataModule(ForecastDataModule):
    """Forecast one real series, cut in time: the first part trains, the next validates, the last tests.

    The defaults reproduce the split of the well-known Keras LSTM example on Airline: the test
    is the last 33% of the months (from month 96 of 144), as there; of the first 67%, the last
    ``val_fraction`` of the whole series validates (for early stopping) and the rest trains.
    Test windows start ``input_length`` steps early, so every test month is forecast from the
    observed months before it (one-step-ahead with ``horizon=1``).

    Args:
        dataset: ``"airline"``, ``"lynx"`` (sktime), ``"co2"``, ``"sunspots"``, ``"nile"``
            (statsmodels), or the path of a CSV file.
        column: the CSV column to forecast. Default: the last column.
        seasonal_period: the period of the seasonal baselines (seasonal naive, seasonal ARIMA);
            None takes the data set's (12, 52, 11, 10 and none for the five above; none for a CSV).
            Default: None.
        input_length: months (steps) of history per forecast. Default: 12.
        horizon: steps forecast. Default: 1.
        val_fraction: fraction of the series for validation. Default: 0.1.
        test_fraction: fraction of the series for the test. Default: 0.33.
        split: ``"time"`` (see above) or ``"series"`` (whole series, for a CSV of several). Default: ``"time"``.
        **kwargs: the other options of :class:`ForecastDataModule` (``stride``, ``batch_size``, ...).

    Raises:
        ValueError: if ``dataset`` is neither a known name nor a path ending in ``.csv``.
        MissingDataError: when loading, if the package holding the data is not installed.

    Example:
        >>> dm = RealSeriesDataModule("airline", input_length=12)
        >>> [len(dm.series_splits[k][0]) for k in ("train", "val", "test")]
        [82, 26, 60]
    """

    def __init__(
        self,
        dataset: str = "airline",
        column: str | None = None,
        seasonal_period: int | None = None,
        input_length: int = 12,
        horizon: int = 1,
        val_fraction: float = 0.1,
        test_fraction: float = 0.33,
        split: Literal["series", "time"] = "time",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            input_length=input_length, horizon=horizon, split=split, val_fraction=val_fraction,
            test_fraction=test_fraction, **kwargs,
        )  # fmt: skip
        if dataset not in _BUILTIN and not str(dataset).lower().endswith(".csv"):
            raise ValueError(f"dataset must be one of {sorted(_BUILTIN)} or the path of a .csv file, got {dataset!r}")
        if seasonal_period is not None and (isinstance(seasonal_period, bool) or seasonal_period < 2):
            raise ValueError(f"seasonal_period must be an int >= 2 or None, got {seasonal_period!r}")
        self.dataset = dataset
        self.column = column
        self.seasonal_period = seasonal_period if seasonal_period is not None else _PERIODS.get(dataset)

    def load_series(self) -> list[Tensor]:
        """The one series, as a list of one ``(T,)`` tensor."""
        if self.dataset in _BUILTIN:
            return [_BUILTIN[self.dataset]()]
        return [read_series_csv(self.dataset, self.column)]

    def baselines(self) -> dict[str, float]:
        """Test RMSE of the naive, seasonal naive and ARIMA forecasts of the test windows' targets.

        Each forecast starts where a test window's target starts and uses the series before it
        (see :mod:`common.baselines`); ARIMA's order and parameters come from the training part
        only. With ``split="series"`` (several series) only the naive forecast is given.
        """
        out = {"naive last-value forecast RMSE": self.yardstick()[1]}
        if self.split != "time" or len(self.series_splits["test"]) != 1:
            return out
        series = self._load()[0]
        if series.shape[1] != 1:
            return out
        values = series[:, 0].double().numpy()
        length = len(values)
        test_start = math.floor(length * (1.0 - self.test_fraction))
        train_end = math.floor(length * (1.0 - self.val_fraction - self.test_fraction))
        part_start = max(test_start - self.input_length, 0)
        windows = (length - part_start - self.input_length - self.horizon) // self.stride + 1
        origins = [part_start + self.input_length + k * self.stride for k in range(windows)]
        targets = np.stack([values[o : o + self.horizon] for o in origins])
        period = self.seasonal_period
        if period is not None and period <= min(origins):
            seasonal = seasonal_naive_forecasts(values, origins, self.horizon, period)
            out[f"seasonal naive (period {period}) RMSE"] = rmse(seasonal, targets)
        score, name = _arima_rmse(tuple(values.tolist()), train_end, tuple(origins), self.horizon, period)
        out[f"ARIMA RMSE ({name}, order by AIC on the training part)"] = score
        return out
