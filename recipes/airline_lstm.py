"""Forecast a real series (Airline passengers by default; CO2 or a CSV column of yours) with a regularized LSTM.

The split is the one of the well-known Keras LSTM example on Airline: the first 67% of the
months train (here the last 10% of the series out of them validate, for early stopping), the
last 33% test, so the test RMSE (thousands of passengers) compares with that example's 47.53.
Each month is forecast one step ahead from the 24 observed months before it (the Keras
example used 1); the model standardizes each input window and maps its forecast back.
``--model.difference 12`` makes the network forecast the change from the same month a year
before (the seasonal difference), and ``--tune N`` tries both on validation data. The
network is a 2-layer ``regdrop.nn.LSTM`` with variational dropout between layers and
recurrent dropout, ``LockedDropout`` before the head, ``MaxNorm`` and early stopping.

Run it (CPU, well under a minute)::

    python recipes/airline_lstm.py
    python recipes/airline_lstm.py --model.regularize false        # the same network, unregularized
    python recipes/airline_lstm.py --model.difference 12            # forecast the change from a year before
    python recipes/airline_lstm.py --tune 8                          # a study on validation data, then a test
    python recipes/airline_lstm.py --data.dataset co2 --data.input_length 52 --data.horizon 4
    python recipes/airline_lstm.py --data.dataset my_series.csv --data.column sales
    python recipes/airline_lstm.py --help                          # every option
    tensorboard --logdir lightning_logs
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make `import common` work as it does for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.cli import ArgsType
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from common import RecipeCLI, RunSummary, SequenceModel
from common.data import ForecastDataModule
from common.files import package_file, user_file

__all__ = [
    "SHIPPED",
    "RealSeriesDataModule",
    "arima_forecasts",
    "cli",
    "fill_gaps",
    "load_shipped",
    "main",
    "read_series_column",
    "read_series_csv",
    "rmse",
    "seasonal_naive_forecasts",
    "shipped_file",
]

# The data: Airline and Lynx (sktime), CO2, sunspots and Nile (statsmodels), or a user's CSV column.

# the largest magnitude a series may hold: the squared errors of the loss and the RMSE, summed over many
# windows in float32 (largest 3.4e38), stay finite far beyond it
_LARGEST = 1e15
# the floor of SequenceModel's scale when it standardizes an input window (common/model.py): a series whose windows
# all vary less is not standardized, and the network sees next to nothing
_SMALLEST_SPREAD = 1e-5


def _shown(cell: object) -> str:
    """A CSV cell for a message: a string quoted, a value pandas parsed (a number, True/False) as it prints."""
    return repr(cell) if isinstance(cell, str) else str(cell)


def _kinds(cells: pd.Series) -> list[str]:
    """Each cell of a row: ``"empty"``, ``"number"`` (a finite one, or a string of one) or ``"text"``."""
    kinds = []
    for cell in cells:
        try:
            kinds.append("empty" if pd.isna(cell) else "number" if math.isfinite(float(cell)) else "text")
        except ValueError:
            kinds.append("text")
    return kinds


def read_series_csv(path: str | Path, column: str | None = None) -> Tensor:
    """Read one numeric column of a comma-separated file with a header line (pandas); gaps are filled linearly.

    :func:`read_series_column` reads and checks the column; :func:`fill_gaps` fills it.

    A gap is an empty cell or one of pandas' missing-value markers (``NA``, ``NaN``, ``null``, ...).

    Args:
        path: the CSV file.
        column: the column's name in the header. Default: the last column.

    Returns:
        The series, float64 ``(T,)``, in file order (blank lines skipped).

    Raises:
        FileNotFoundError: if the file does not exist, or is a folder.
        ValueError: naming the file, if pandas cannot read it, its header line
            is one name with a ``;`` or a tab in it (another separator) or repeats a name, (without
            ``column``) its first line looks like the next one and ends with a number (no header
            line: the first row would be lost), it has no row, the column is not in the header, a
            cell is not a number (``True``/``False`` included), is infinite or its magnitude is
            above 1e15 (the message gives the row and the cell), or the column is empty or starts
            or ends with a gap.

    Example:
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        ...     _ = f.write("month,sales\\n2020-01,3\\n2020-02,\\n2020-03,5\\n")
        >>> read_series_csv(f.name, "sales").tolist()
        [3.0, 4.0, 5.0]
        >>> os.remove(f.name)
    """
    return fill_gaps(read_series_column(path, column))[0]


def read_series_column(path: str | Path, column: str | None = None) -> pd.Series:
    """The checked column of :func:`read_series_csv` (same arguments and errors), float64, its gaps left as NaN."""
    path = user_file(path, "the series CSV file")
    try:
        # the header as written (read_csv renames a repeated name, "value" -> "value.1"), read first: a file
        # separated by another character may have rows that commas split into more fields than its header
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, skipinitialspace=True).iloc[0]
        names = [str(name).strip() for name in header.dropna()]
        separator = next((c for c in ";\t" if len(header) == 1 and c in str(header.iloc[0])), None)
        frame = pd.read_csv(path, skipinitialspace=True) if separator is None else None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: pandas cannot read it as a CSV file with a header line: {error}") from None
    if frame is None:
        raise ValueError(f"{path}: a series CSV must be separated by commas, got {separator!r} in its header line")
    frame.columns = [str(name).strip() for name in frame.columns]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: the header's names must differ from each other, got {repeated} more than once")
    # a first line of numbers where the next has numbers, e.g. "112" over "118": no header line, so the first
    # row would be lost (pandas writes a header of ",0" over "1821,269", which is one)
    kinds = _kinds(header)
    if column is None and not frame.empty and kinds == _kinds(frame.iloc[0]) and kinds[-1] == "number":
        raise ValueError(
            f"{path}: the first line must be a header of column names, got {','.join(header.fillna(''))!r}, which "
            "looks like the rows below it (a file without a header line would lose its first row); add a header line"
        )
    if frame.empty:
        raise ValueError(f"{path}: a series CSV needs a header line and at least one row, got no row")
    name = frame.columns[-1] if column is None else column
    if name not in frame.columns:
        raise ValueError(f"{path}: column must be one of the header's names {list(frame.columns)}, got {column!r}")
    cells = frame[name]
    values = pd.to_numeric(cells, errors="coerce")
    # pandas reads a column of True/False as booleans, which would pass as 1 and 0
    bad = cells.notna() if pd.api.types.is_bool_dtype(cells) else values.isna() & cells.notna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        cell = _shown(cells.iloc[row])
        raise ValueError(
            f"{path}, row {row + 1}: column {name!r} must hold numbers (or nothing, for a gap), got {cell}"
        )
    large = values.abs() > _LARGEST  # infinities too; a gap (NaN) is not
    if large.any():
        row = int(large.to_numpy().argmax())
        raise ValueError(
            f"{path}, row {row + 1}: column {name!r} must hold finite numbers from -{_LARGEST:.0e} to {_LARGEST:.0e} "
            f"(the network computes in float32; rescale the column), got {_shown(cells.iloc[row])}"
        )
    if values.isna().all():
        # a comma at the end of every line makes an unnamed, empty last column
        hint = "; a comma ends each line? Name the column to read" if name.startswith("Unnamed: ") else ""
        raise ValueError(f"{path}: column {name!r} must hold numbers, got only empty cells{hint}")
    if values.isna().iloc[[0, -1]].any():
        raise ValueError(f"{path}: column {name!r} must start and end with a value to fill its gaps by interpolation")
    return values.astype("float64").reset_index(drop=True)


def fill_gaps(values: pd.Series) -> tuple[Tensor, str | None]:
    """``values`` with their gaps (NaN) filled by linear interpolation, and a sentence on how many there were.

    Example:
        >>> series, note = fill_gaps(pd.Series([1.0, None, None, 4.0, None, 6.0]))
        >>> series.tolist()
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        >>> note
        '3 of 6 values (50.0%) were gaps, filled by linear interpolation (the longest: 2 steps)'
        >>> fill_gaps(pd.Series([1.0, 2.0]))[1] is None
        True
    """
    gaps = values.isna().to_numpy()
    filled = torch.tensor(values.interpolate(method="linear").to_numpy(), dtype=torch.float64)
    if not gaps.any():
        return filled, None
    # the length of each run of gaps: the steps between where it starts and where it ends
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], gaps.astype(int), [0]]))))[::2]
    count, total = int(gaps.sum()), len(gaps)
    note = (
        f"{count} of {total} values ({100 * count / total:.1f}%) were gaps, filled by linear interpolation "
        f"(the longest: {int(runs.max())} steps)"
    )
    return filled, note


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
    return read_series_csv(*shipped_file(name))


def shipped_file(name: str) -> tuple[Path, str | None]:
    """The file of a series of :data:`SHIPPED` inside its installed package, and its column (errors as above)."""
    if name not in SHIPPED:
        raise ValueError(f"name must be one of {sorted(SHIPPED)}, got {name!r}")
    package, relative, column, _ = SHIPPED[name]
    label = "CO2" if name == "co2" else name.capitalize()
    return package_file(package, relative, dataset=label, distribution=package, own_file="--data.dataset"), column


# The baselines: naive, seasonal naive, and ARIMA (statsmodels), from the same origins as the network.


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


@functools.lru_cache(maxsize=32)
def _cached_arima_forecasts(
    values: tuple[float, ...], train_end: int, origins: tuple[int, ...], horizon: int, period: int | None
) -> tuple[np.ndarray, str]:
    # several seconds of model selection, the same for every seed of a run: computed once per process
    # a minute or more on a series of tens of thousands of steps
    rank_zero_info(f"ARIMA baseline (statsmodels): choosing the order by AIC on {train_end} training steps...")
    return arima_forecasts(np.asarray(values), train_end, list(origins), horizon, period)


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
        column: the CSV column to forecast (a CSV file only: a shipped series has one). Default: the last column.
        seasonal_period: the period of the seasonal baselines (seasonal naive, seasonal ARIMA);
            None takes the data set's (12, 52, 11, 10 and none for the five above; none for a CSV).
            Default: None.
        input_length: months (steps) of history per forecast. Default: 12.
        horizon: steps forecast. Default: 1.
        val_fraction: fraction of the series for validation. Default: 0.1.
        test_fraction: fraction of the series for the test. Default: 0.33.
        split: ``"time"`` (see above); ``"series"`` (whole series to each split) needs several series, and the
            module reads one, so it fails when splitting. Default: ``"time"``.
        **kwargs: the other options of :class:`ForecastDataModule` (``stride``, ``batch_size``, ...).

    Raises:
        ValueError: if ``dataset`` is neither a known name nor a path ending in ``.csv``, or ``column`` is given
            with a known name; when splitting, if ``seasonal_period`` is longer than the history before the first
            test forecast, the test part is constant (the naive forecast is exact: nothing to compare), or no training
            input window has a standard deviation of 1e-5 or more (the network's smallest scale).
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
        if column is not None and dataset in SHIPPED:
            raise ValueError(
                f"column must be None with dataset={dataset!r} (a series of one column; column picks a CSV file's), "
                f"got {column!r}"
            )
        self.dataset = dataset
        self.column = column
        if seasonal_period is None and dataset in SHIPPED:
            seasonal_period = SHIPPED[dataset][3]
        self.seasonal_period = seasonal_period

    def load_series(self) -> list[Tensor]:
        """The one series, as a list of one ``(T,)`` tensor; ``data_notes`` says how many gaps were filled."""
        path, column = shipped_file(self.dataset) if self.dataset in SHIPPED else (self.dataset, self.column)
        series, note = fill_gaps(read_series_column(path, column))
        self.data_notes = [] if note is None else [note]  # the summary prints them
        return [series]

    def _split(self, series: list[Tensor]) -> dict[str, list[Tensor]]:
        out = super()._split(series)
        if self.split != "time":
            return out
        length, name = series[0].shape[0], type(self).__name__
        test_start = math.floor(length * (1.0 - self.test_fraction))
        period = self.seasonal_period
        if period is not None and period > test_start:  # the seasonal naive forecast looks one period back
            raise ValueError(
                f"{name}: seasonal_period must be at most {test_start}, the steps before the first test forecast "
                f"of a series of length {length} (test_fraction={self.test_fraction}), got {period}"
            )
        test = out["test"][0]
        if bool((test == test[0]).all()):  # the naive forecast is exact there: no score could say anything
            raise ValueError(
                f"{name}: the test part (the last {length - test_start} of {length} steps, with the "
                f"{self.input_length} before them) must vary, got every value equal to {test[0, 0].item()}; use "
                "another series or test_fraction"
            )
        train = out["train"][0]
        spread = float(train.unfold(0, self.input_length, 1).std(dim=-1, correction=0).max())
        if spread < _SMALLEST_SPREAD:
            raise ValueError(
                f"{name}: the series must vary by at least {_SMALLEST_SPREAD:.0e} (standard deviation) within some "
                f"training input window, as the network standardizes each window with a scale of at least that; "
                f"rescale the column (multiply it by a power of ten), got at most {spread:.3g}"
            )
        return out

    def _baseline_forecasts(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The test windows' targets ``(W, horizon)`` and the seasonal naive and ARIMA forecasts of them, by name
        (none with ``split="series"`` or several channels)."""
        if self.split != "time" or len(self.series_splits["test"]) != 1:
            return np.zeros((0, self.horizon)), {}
        series = self._load()[0]
        if series.shape[1] != 1:
            return np.zeros((0, self.horizon)), {}
        values = series[:, 0].double().numpy()
        length = len(values)
        test_start = math.floor(length * (1.0 - self.test_fraction))
        train_end = math.floor(length * (1.0 - self.val_fraction - self.test_fraction))
        part_start = max(test_start - self.input_length, 0)
        windows = (length - part_start - self.input_length - self.horizon) // self.stride + 1
        origins = [part_start + self.input_length + k * self.stride for k in range(windows)]
        targets = np.stack([values[o : o + self.horizon] for o in origins])
        out = {}
        period = self.seasonal_period
        if period is not None and period <= min(origins):
            seasonal = seasonal_naive_forecasts(values, origins, self.horizon, period)
            out[f"seasonal naive (period {period}) RMSE"] = seasonal
        forecasts, name = _cached_arima_forecasts(
            tuple(values.tolist()), train_end, tuple(origins), self.horizon, period
        )
        out[f"ARIMA RMSE ({name}, order by AIC on the training part)"] = forecasts
        return targets, out

    def baselines(self) -> dict[str, float]:
        """Test RMSE of the naive, seasonal naive and ARIMA forecasts of the test windows' targets.

        Each forecast starts where a test window's target starts and uses the series before it
        (:func:`seasonal_naive_forecasts`, :func:`arima_forecasts`); ARIMA's order and parameters come from
        the training part only. With ``split="series"`` (several series) only the naive forecast is given.
        """
        targets, forecasts = self._baseline_forecasts()
        return {"naive last-value forecast RMSE": self.yardstick()[1]} | {
            name: rmse(values, targets) for name, values in forecasts.items()
        }

    def baseline_case_losses(self) -> dict[str, np.ndarray]:
        """Each baseline's squared error per test window, keyed as :meth:`baselines`, in the windows' order."""
        targets, forecasts = self._baseline_forecasts()
        return super().baseline_case_losses() | {
            name: ((values - targets) ** 2).mean(axis=1) for name, values in forecasts.items()
        }


# The recipe: the model's defaults and the command line.

MODEL_DEFAULTS = {
    "cell": "lstm",
    "hidden_size": 32,
    "num_layers": 2,
    "dropout": 0.2,
    "recurrent_dropout": 0.2,
    "output_dropout": 0.2,
    "lr": 0.003,
}
# two years of months: a window that holds two periods lets --tune try the seasonal difference (--model.difference)
DATA_DEFAULTS = {"dataset": "airline", "input_length": 24, "horizon": 1, "batch_size": 16}
TRAINER_DEFAULTS = {"max_epochs": 150, "gradient_clip_val": 1.0, "log_every_n_steps": 5}
# early stopping stops the run but keeps the last weights (Keras's and Lightning's default): the learning rate
# halves on every plateau, so the last weights are the annealed ones, and the validation window (10% of a short
# series, just before the test) is a poor judge of the best epoch: restoring it cost 1.0 RMSE on sunspots and
# 6-115 on lynx (recipes/STOPPING.md); --early_stopping.restore_best_weights true restores it
CALLBACK_DEFAULTS = {
    "early_stopping.patience": 25,
    "early_stopping.start_from_epoch": 10,
    "early_stopping.restore_best_weights": False,
}


def cli(args: ArgsType = None) -> RecipeCLI:
    """Parse ``args`` (default: the command line) and build the trainer, model and data, without running."""
    return RecipeCLI(
        "airline_lstm",
        SequenceModel,
        RealSeriesDataModule,
        args=args,
        model_defaults=MODEL_DEFAULTS,
        data_defaults=DATA_DEFAULTS,
        trainer_defaults=TRAINER_DEFAULTS,
        callback_defaults=CALLBACK_DEFAULTS,
        description=__doc__.split("\n\n")[0] + " See recipes/airline_lstm.py for examples.",
    )


def main(args: ArgsType = None) -> RunSummary:
    """Run the recipe with ``args`` (default: the command line) and return its summary."""
    return cli(args).fit_and_test()


if __name__ == "__main__":
    main()
