"""recipes/airline_lstm.py, its data: Airline, CO2, user CSVs, the time split of the Keras example, the baselines."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import airline_lstm
from airline_lstm import (
    RealSeriesDataModule,
    arima_forecasts,
    load_shipped,
    read_series_csv,
    rmse,
    seasonal_naive_forecasts,
)
from common.files import MissingDataError
from tests.recipes._uninstall import uninstall  # noqa: F401


def test_airline_is_the_144_monthly_passenger_counts() -> None:
    series = load_shipped("airline")
    assert series.shape == (144,) and series.dtype == torch.float64
    assert series[:4].tolist() == [112.0, 118.0, 132.0, 129.0]  # January-April 1949
    assert series[-1].item() == 432.0 and series.max().item() == 622.0  # December 1960; July 1960


def test_co2_fills_its_gaps_linearly() -> None:
    series = load_shipped("co2")
    assert series.shape == (2284,) and not torch.isnan(series).any()
    assert series[0].item() == pytest.approx(316.1)
    # the raw file has 59 empty weeks; each filled value lies between its neighbours' range
    assert series.min().item() > 310 and series.max().item() < 380
    assert series[-520:].mean() > series[:520].mean() + 40  # four decades of rise


def test_gaps_are_filled_linearly(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("t,v\n0,1\n1,\n2,5\n3,\n4,\n5,2\n")
    assert read_series_csv(path).tolist() == [1.0, 3.0, 5.0, 4.0, 3.0, 2.0]
    path.write_text("t,v\n0,\n1,1\n")
    with pytest.raises(ValueError, match="must start and end with a value"):
        read_series_csv(path)


def test_airline_split_is_the_keras_examples(tmp_path: Path) -> None:
    dm = RealSeriesDataModule("airline", input_length=12, horizon=1)
    series = load_shipped("airline").float().unsqueeze(1)
    splits = dm.series_splits
    # the test forecasts months 96..143: the last 33%, as int(144 * 0.67) = 96 in the Keras example
    assert torch.equal(splits["test"][0], series[96 - 12 :])
    assert torch.equal(splits["train"][0], series[:82])
    assert torch.equal(splits["val"][0], series[82 - 12 : 96])
    x, y = dm.windows("test").tensors
    assert x.shape == (48, 12, 1) and torch.equal(y[:, 0, 0], series[96:, 0])


def test_user_csv(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    rows = "\n".join(f"2020-{i:03d},{10 + i},{100 - i}" for i in range(40))
    path.write_text(f"day,a,b\n{rows}\n")
    assert read_series_csv(path).tolist() == [100.0 - i for i in range(40)]  # the last column by default
    dm = RealSeriesDataModule(str(path), column="a", input_length=4, horizon=2)
    assert torch.equal(dm.series_splits["train"][0][:, 0], torch.arange(10.0, 10.0 + 22))


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("a,b\n1,2\n", "c", r"column must be one of the header's names \['a', 'b'\], got 'c'"),
        ("a,b\n1,2\n3,x\n", "b", r"row 2: column 'b' must hold numbers \(or nothing, for a gap\), got 'x'"),
        ("a,b\n1,2\n3\n", "b", r"column 'b' must start and end with a value"),  # a short last row: a gap
        ("a,b\n1,2\n3,4,5\n", "b", r"pandas cannot read it.*Expected 2 fields in line 3, saw 3"),
        ("a,b\n", None, r"needs a header line and at least one row"),
        ("", None, r"pandas cannot read it"),
        ("a\n\n1\n", None, None),
        ("a,b\n,1\n2,3\n", "a", r"column 'a' must start and end with a value"),
        # another separator, a repeated name, no header line: each read silently before, or with a puzzling message
        ("a;b\n1;2\n3;4\n", "b", r"must be separated by commas, got ';' in its header line"),
        ('a;b\n1;"2,5"\n', None, r"must be separated by commas, got ';'"),  # a decimal comma
        ("a\tb\n1\t2\n", None, r"must be separated by commas, got '\\t'"),
        ("b,b\n1,2\n3,4\n", "b", r"the header's names must differ from each other, got \['b'\] more than once"),
        ("112\n118\n132\n", None, r"first line must be a header of column names, got '112', which looks like the rows"),
        ("1949-01,112\n1949-02,118\n", None, r"got '1949-01,112', which looks like the rows below it"),
        # values the network cannot compute with in float32 (a NaN or infinite RMSE before), or not numbers
        (
            "a,b\n1,2\n3,inf\n",
            "b",
            r"row 2: column 'b' must hold finite numbers from -1e\+15 to 1e\+15 \(the "
            r"network computes in float32; rescale the column\), got inf",
        ),
        ("a,b\n1,-1e400\n3,4\n", "b", r"row 1: column 'b' must hold finite numbers.*got -inf"),
        ("a,b\n1,2\n3,1e30\n", "b", r"row 2: column 'b' must hold finite numbers.*got 1e\+30"),
        ("t,v,\n1,2,\n3,4,\n", None, r"column 'Unnamed: 2' must hold numbers, got only empty cells; a comma ends each"),
        ("a,b\n1,\n2,\n", "b", r"column 'b' must hold numbers, got only empty cells$"),
        ("a,b\n1,True\n2,False\n", "b", r"row 1: column 'b' must hold numbers \(or nothing, for a gap\), got True"),
    ],
)
def test_malformed_csv(tmp_path: Path, text: str, column: str | None, message: str | None) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    if message is None:
        assert read_series_csv(path, column).tolist() == [1.0]  # blank lines are skipped
        return
    with pytest.raises(ValueError, match=message) as error:
        read_series_csv(path, column)
    assert str(path) in str(error.value)  # the message names the file


def test_headers_pandas_writes_and_gap_markers(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    # pandas' Series.to_csv: an unnamed index and a column named 0, as sktime's Lynx.csv
    path.write_text(",0\n1821,269\n1822,321\n1823,585\n")
    assert read_series_csv(path).tolist() == [269.0, 321.0, 585.0]
    # a header of numbers is one when the column is named; NA markers are gaps, as empty cells
    path.write_text("1,2\n3,4\n5,NA\n7,nan\n9,10\n")
    assert read_series_csv(path, "2").tolist() == [4.0, 6.0, 8.0, 10.0]
    path.write_text("t,v\n0,-1e15\n1,1e15\n")
    assert read_series_csv(path).tolist() == [-1e15, 1e15]  # the bounds themselves are allowed


def test_bad_arguments_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"name must be one of \['airline', 'co2', 'lynx', 'nile', 'sunspots'\]"):
        load_shipped("sunspot")
    with pytest.raises(
        ValueError,
        match=r"dataset must be one of \['airline', 'co2', 'lynx', 'nile', 'sunspots'\] or the path of a .csv file, "
        r"got 'sunspot'",
    ):
        RealSeriesDataModule("sunspot")
    with pytest.raises(ValueError, match="seasonal_period must be an int >= 2 or None, got 1"):
        RealSeriesDataModule("airline", seasonal_period=1)
    with pytest.raises(FileNotFoundError, match="the series CSV file: no such file"):
        RealSeriesDataModule(str(tmp_path / "none.csv")).series_splits
    (tmp_path / "folder.csv").mkdir()  # "no such file" before, for a path that exists
    with pytest.raises(FileNotFoundError, match=r"the series CSV file: '.*folder.csv' is a folder, not a file"):
        RealSeriesDataModule(str(tmp_path / "folder.csv")).series_splits
    # column picks a CSV file's column: ignored before with a shipped series
    with pytest.raises(ValueError, match=r"column must be None with dataset='airline' .*, got 'sales'"):
        RealSeriesDataModule("airline", column="sales")


def write_series(path: Path, values: list[float]) -> str:
    path.write_text("t,v\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(values)))
    return str(path)


def test_series_the_recipe_cannot_forecast(tmp_path: Path) -> None:
    wave = [100.0 + 10.0 * math.sin(i / 2) for i in range(120)]
    # the seasonal naive forecast needs a period of history before the first test forecast (month 80 of 120);
    # a longer period was dropped from the baselines without a word before
    csv = write_series(tmp_path / "wave.csv", wave)
    assert RealSeriesDataModule(csv, seasonal_period=80).series_splits["test"][0].shape == (52, 1)
    with pytest.raises(
        ValueError,
        match=r"seasonal_period must be at most 80, the steps before the first test forecast of a series of "
        r"length 120 \(test_fraction=0.33\), got 81",
    ):
        RealSeriesDataModule(csv, seasonal_period=81).series_splits
    # a constant test part: the test crashed on a division by zero (the amplitude ratio) before
    csv = write_series(tmp_path / "flat.csv", wave[:60] + [7.0] * 60)
    with pytest.raises(
        ValueError,
        match=r"the test part \(the last 40 of 120 steps, with the 12 before them\) must vary, got every value "
        r"equal to 7.0",
    ):
        RealSeriesDataModule(csv).series_splits
    # values far below the network's smallest scale (1e-5): every forecast was noise around them before
    csv = write_series(tmp_path / "tiny.csv", [v * 1e-9 for v in wave])
    with pytest.raises(ValueError, match=r"must vary by at least 1e-05 .*rescale the column .*got at most 7.\d+e-09"):
        RealSeriesDataModule(csv).series_splits
    assert len(RealSeriesDataModule(write_series(tmp_path / "small.csv", [v * 1e-5 for v in wave])).windows("test"))


def test_missing_packages(uninstall: Callable[[str], None]) -> None:
    uninstall("sktime")
    uninstall("statsmodels")
    with pytest.raises(MissingDataError, match=r"the Airline data ships in the PyPI package 'sktime'.*--data.dataset"):
        RealSeriesDataModule("airline").series_splits
    with pytest.raises(MissingDataError, match=r"the CO2 data ships in the PyPI package 'statsmodels'"):
        load_shipped("co2")


@pytest.mark.parametrize(
    ("name", "length", "first", "period"),
    [("sunspots", 309, 5.0, 11), ("nile", 100, 1120.0, None), ("lynx", 114, 269.0, 10)],
)
def test_more_shipped_series(name: str, length: int, first: float, period: int | None) -> None:
    dm = RealSeriesDataModule(name)
    series = dm._load()[0]
    assert series.shape == (length, 1) and series[0, 0] == first and dm.seasonal_period == period


@pytest.mark.slow
def test_baselines_score_the_test_windows() -> None:
    dm = RealSeriesDataModule("lynx", input_length=10)
    baselines = dm.baselines()
    names = list(baselines)
    # the first is the trivial one, the same number as the yardstick of the windows
    assert names[0] == "naive last-value forecast RMSE" and baselines[names[0]] == pytest.approx(dm.yardstick()[1])
    values = dm._load()[0][:, 0].double()
    test_start = math.floor(114 * (1 - 0.33))
    truth = values[test_start:]
    seasonal = values[test_start - 10 : 114 - 10]
    expected = float((truth - seasonal).pow(2).mean().sqrt())
    assert baselines["seasonal naive (period 10) RMSE"] == pytest.approx(expected)
    arima = next(name for name in names if name.startswith("ARIMA RMSE ("))
    # ARIMA follows lynx's cycle better than either naive forecast
    assert baselines[arima] < min(baselines[names[0]], expected)
    # the per-window squared errors the summary's margin test reads are the same forecasts, window by window
    errors = dm.baseline_case_losses()
    assert list(errors) == names and all(len(e) == len(dm.windows("test")) for e in errors.values())
    assert {name: float(e.mean() ** 0.5) for name, e in errors.items()} == pytest.approx(baselines, rel=1e-6)
    assert errors["seasonal naive (period 10) RMSE"] == pytest.approx((truth - seasonal).pow(2).numpy())


def test_rolling_origin_folds_move_the_validation_part_back() -> None:
    dm = RealSeriesDataModule("nile")  # 100 years: train 57, validation 10, test 33 (+ context)
    own = dm.series_splits
    folds = [dm.fold(3, i) for i in range(3)]
    assert [len(f.series_splits["train"][0]) for f in folds] == [37, 47, 57]
    assert [len(f.windows("val")) for f in folds] == [len(dm.windows("val"))] * 3 == [10] * 3
    for f in folds:
        # every validation target comes after the fold's training part, and the test part stays
        train_end = len(f.series_splits["train"][0])
        _, y = f.windows("val").tensors
        series = dm._load()[0]
        assert torch.equal(y[:, 0, 0], series[train_end : train_end + 10, 0])
        assert torch.equal(f.series_splits["test"][0], own["test"][0])
    # the last fold is the module's own split; folding leaves the module as it was
    assert all(torch.equal(folds[-1].series_splits[k][0], own[k][0]) for k in own)
    assert dm.series_splits is own and len(dm.windows("val")) == 10


def test_only_a_series_cut_in_time_can_fold() -> None:
    # --tune cross-validates only where can_fold (common.tuning.tuning_folds): rolling origins need
    # split="time"; a split by series has no origins to roll, and fold() refuses it
    assert RealSeriesDataModule("nile").can_fold
    # and a series cut in time always folds, however long its validation part (overlapping windows)
    assert RealSeriesDataModule("co2").fold_always
    by_series = RealSeriesDataModule("nile", split="series", val_fraction=0.4, test_fraction=0.4)
    assert not by_series.can_fold and not by_series.fold_always
    with pytest.raises(ValueError, match="rolling origins need split='time'"):
        by_series.fold(3, 0)


def test_bad_folds() -> None:
    dm = RealSeriesDataModule("nile")
    bad = [
        (1, 0, "folds must be an int >= 2, got 1"),
        (True, 0, "folds must be an int >= 2"),
        (3, 3, "index must be an int from 0 to 2, got 3"),
        (3, -1, "from 0 to 2, got -1"),
    ]
    for folds, index, message in bad:
        with pytest.raises(ValueError, match=message):
            dm.fold(folds, index)
    with pytest.raises(ValueError, match=r"rolling origins need split='time', got split='series'"):
        RealSeriesDataModule("nile", split="series").fold(3, 0)
    # six origins back the Nile's first fold has no training part left: the error names the fold
    with pytest.raises(ValueError, match=r"the train part \(fold 0 of 7\) of a series of length 100 has 0 steps"):
        dm.fold(7, 0).series_splits


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


def test_doctests() -> None:
    import doctest

    result = doctest.testmod(airline_lstm)
    assert result.attempted > 0 and result.failed == 0
