"""recipes/airline_lstm.py: the documented defaults, tiny end-to-end runs on Airline, CO2 and a user CSV."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml

import airline_lstm
from airline_lstm import load_shipped


def tiny(log_root: Path, *extra: str) -> list[str]:
    return [
        "--model.hidden_size", "8", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.logger.save_dir", str(log_root), *extra,
    ]  # fmt: skip


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [airline_lstm.__file__])


def test_defaults_are_the_documented_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        airline_lstm.main(["--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    data, model = config["data"], config["model"]
    assert data["dataset"] == "airline" and data["split"] == "time"
    assert data["test_fraction"] == 0.33 and data["input_length"] == 24 and data["horizon"] == 1
    assert model["cell"] == "lstm" and model["regularize"] is True and model["normalize"] is True
    assert model["dropout"] > 0 and model["recurrent_dropout"] > 0 and model["output_dropout"] > 0
    # stops early, keeps the last (annealed) weights
    assert config["early_stopping"]["restore_best_weights"] is False and config["max_norm"]["max_value"] == 3.0


@pytest.mark.slow
def test_airline_run_tests_the_keras_examples_months(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = airline_lstm.main(tiny(tmp_path))
    # torch's deprecation of a class Lightning uses inside its loops is not shown: nothing a user can act on
    assert not [w for w in caught if "LeafSpec" in str(w.message)]
    series = load_shipped("airline")
    # the yardstick is the naive forecast of months 96..143 from the month before: the same test months
    naive = float((series[96:] - series[95:-1]).pow(2).mean().sqrt())
    assert summary.yardstick == pytest.approx(naive, rel=1e-5)
    assert summary.score_name == "test RMSE" and math.isfinite(summary.score) and summary.score > 0
    assert summary.epochs_trained == 2 and summary.regularized
    assert summary.seasonal_period == 12  # the data's, for the verdict's advice
    assert summary.seasonal_option and summary.data_notes == []  # no gap in Airline
    assert (tmp_path / "airline_lstm" / "airline-lstm-regularized-seed0_0" / "forecasts.png").is_file()


@pytest.mark.slow
def test_co2_and_a_user_csv(tmp_path: Path) -> None:
    co2 = airline_lstm.main(tiny(tmp_path, "--data.dataset", "co2", "--data.input_length", "52", "--data.horizon", "4",
                                 "--trainer.limit_train_batches", "3", "--model.regularize", "false"))  # fmt: skip
    assert co2.yardstick > 0 and math.isfinite(co2.score) and not co2.regularized
    # the summary says how many weeks were filled in (the file's empty cells; pandas counts the same: 59, at most 18
    # in a row)
    filled = "59 of 2284 values (2.6%) were gaps, filled by linear interpolation (the longest: 18 steps)"
    assert co2.data_notes == [filled]
    path = tmp_path / "mine.csv"
    t = torch.arange(120.0)
    path.write_text("t,value\n" + "\n".join(f"{i},{v:.4f}" for i, v in enumerate(10 + torch.sin(t / 3))) + "\n")
    mine = airline_lstm.main(tiny(tmp_path, "--data.dataset", str(path), "--data.column", "value"))
    values = torch.tensor([float(f"{v:.4f}") for v in 10 + torch.sin(t / 3)], dtype=torch.float64)
    test_start = math.floor(120 * 0.67)
    naive = float((values[test_start:] - values[test_start - 1 : -1]).pow(2).mean().sqrt())
    assert mine.yardstick == pytest.approx(naive, rel=1e-4)
    assert mine.seasonal_period is None and "no seasonal baselines" in mine.format()


def test_bad_dataset_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        airline_lstm.main(tiny(tmp_path, "--data.dataset", "sunspot"))
    assert exit_info.value.code == 2
    names = "['airline', 'co2', 'lynx', 'nile', 'sunspots']"
    assert f"dataset must be one of {names} or the path of a .csv file, got 'sunspot'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        # before: each trained and reported a NaN test RMSE, or crashed in the test (ZeroDivisionError), or dropped
        # the option without a word
        (["1", "inf", "3"] * 40, [], "column 'v' must hold finite numbers from -1e+15 to 1e+15"),
        (["1e30", "-1e30"] * 60, [], "column 'v' must hold finite numbers"),
        (["7"] * 120, [], "the test part (the last 40 of 120 steps, with the 24 before them) must vary"),
        (["1", "2", "4"] * 40, ["--data.seasonal_period", "500"], "seasonal_period must be at most 80"),
        # too short for the windows: the message names the option that fixes it
        (["1", "2", "4", "3"] * 10, [], "fewer than input_length + horizon = 25; use a shorter input_length"),
    ],
)
def test_a_csv_the_recipe_cannot_forecast_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[str], extra: list[str], message: str
) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("t,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(rows)))
    with pytest.raises(SystemExit) as exit_info:
        airline_lstm.main(tiny(tmp_path, "--data.dataset", str(path), *extra))
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ValueError: ") and message in last


def test_column_with_a_shipped_series_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        airline_lstm.main(tiny(tmp_path, "--data.column", "sales"))  # ignored before: Airline has one column
    assert exit_info.value.code == 2
    assert "column must be None with dataset='airline'" in capsys.readouterr().err
