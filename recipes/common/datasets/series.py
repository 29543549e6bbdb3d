"""Real series to forecast: Airline and Lynx (sktime), CO2, sunspots and Nile (statsmodels), or a user's CSV column."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..baselines import arima_forecasts, rmse, seasonal_naive_forecasts
from ..data import ForecastDataModule
from .files import package_file, user_file

__all__ = ["SHIPPED", "RealSeriesDataModule", "load_shipped", "read_series_csv"]


def read_series_csv(path: str | Path, column: str | None = None) -> Tensor:
    """Read one numeric column of a CSV file with a header line (pandas); empty cells are gaps, filled linearly.

    Args:
        path: the CSV file.
        column: the column's name in the header. Default: the last column.

    Returns:
        The series, float64 ``(T,)``, in file order (blank lines skipped).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, if pandas cannot read it, it has no row, the column is not in
            the header, a cell is not a number (the message gives the row and the cell), or the
            column starts or ends with a gap.

    Example:
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        ...     _ = f.write("month,sales\\n2020-01,3\\n2020-02,\\n2020-03,5\\n")
        >>> read_series_csv(f.name, "sales").tolist()
        [3.0, 4.0, 5.0]
        >>> os.remove(f.name)
    """
    path = user_file(path, "the series CSV file")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: pandas cannot read it as a CSV file with a header line: {error}") from None
    frame.columns = [str(name).strip() for name in frame.columns]
    if frame.empty:
        raise ValueError(f"{path}: a series CSV needs a header line and at least one row, got no row")
    name = frame.columns[-1] if column is None else column
    if name not in frame.columns:
        raise ValueError(f"{path}: column must be one of the header's names {list(frame.columns)}, got {column!r}")
    cells = frame[name]
    values = pd.to_numeric(cells, errors="coerce")
    bad = values.isna() & cells.notna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise ValueError(
            f"{path}, row {row + 1}: column {name!r} must hold numbers (or nothing, for a gap), got {cells.iloc[row]!r}"
        )
    if values.isna().iloc[[0, -1]].any():
        raise ValueError(f"{path}: column {name!r} must start and end with a value to fill its gaps by interpolation")
    return torch.tensor(values.interpolate(method="linear").to_numpy(), dtype=torch.float64)


SHIPPED: dict[str, tuple[str, str, str | None, int | None]] = {
    # name: (package, file inside it, column, period of the seasonal baselines)
    # monthly international airline passengers (thousands), 1949-1960, 144 months
    "airline": ("sktime", "datasets/data/Airline/Airline.csv", "Passengers", 12),
    # weekly atmospheric CO2 at Mauna Loa (ppm), March 1958 - December 2001, 2284 weeks (59 gaps, filled)
    "co2": ("statsmodels", "datasets/co2/co2.csv", "co2", 52),
    # yearly sunspot numbers, 1700-2008 (309 years; a roughly 11-year cycle)
    "sunspots": ("statsmodels", "datasets/sunspots/sunspots.csv", "SUNACTIVITY", 11),
    # yearly flow of the Nile at Aswan (10^8 m^3), 1871-1970 (100 years; no season)
    "nile": ("statsmodels", "datasets/nile/nile.csv", "volume", None),
    # yearly Canadian lynx trappings, 1821-1934 (114 years; a roughly 10-year cycle)
    "lynx": ("sktime", "datasets/data/Lynx/Lynx.csv", None, 10),
}
"""The series that installed packages ship, by name; the comments say what each is."""


def load_shipped(name: str) -> Tensor:
    """A series of :data:`SHIPPED`, read from the file its package ships, as float64 ``(T,)``.

    Raises:
        ValueError: if ``name`` is not in :data:`SHIPPED`.
        MissingDataError: if the package is not installed.

    Example:
        >>> load_shipped("airline")[:3].tolist()
        [112.0, 118.0, 132.0]
    """
    if name not in SHIPPED:
        raise ValueError(f"name must be one of {sorted(SHIPPED)}, got {name!r}")
    package, relative, column, _ = SHIPPED[name]
    label = "CO2" if name == "co2" else name.capitalize()
    path = package_file(package, relative, dataset=label, distribution=package, own_file="--data.dataset")
    return read_series_csv(path, column)


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
        if dataset not in SHIPPED and not str(dataset).lower().endswith(".csv"):
            raise ValueError(f"dataset must be one of {sorted(SHIPPED)} or the path of a .csv file, got {dataset!r}")
        if seasonal_period is not None and (isinstance(seasonal_period, bool) or seasonal_period < 2):
            raise ValueError(f"seasonal_period must be an int >= 2 or None, got {seasonal_period!r}")
        self.dataset = dataset
        self.column = column
        if seasonal_period is None and dataset in SHIPPED:
            seasonal_period = SHIPPED[dataset][3]
        self.seasonal_period = seasonal_period

    def load_series(self) -> list[Tensor]:
        """The one series, as a list of one ``(T,)`` tensor."""
        if self.dataset in SHIPPED:
            return [load_shipped(self.dataset)]
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
