"""RecipeCLI and TensorBoard: run names that say what ran; the HParams view, queried from a real server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.cli import RecipeCLI, run_name
from common.model import SequenceModel
from sine_lstm import SineDataModule
from tests.recipes.sine_classes import SineClassificationDataModule

TINY_DATA = ["--data.num_series", "10", "--data.length", "40", "--data.input_length", "12", "--data.horizon", "4"]
TINY_RUN = [*TINY_DATA, "--model.hidden_size", "8", "--trainer.max_epochs", "2"]
TINY_RUN += ["--trainer.enable_progress_bar", "false"]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["recipe.py"])


def _cli(tmp_path: Path, *args: str, data: type = SineDataModule) -> RecipeCLI:
    return RecipeCLI("demo", SequenceModel, data, args=["--trainer.logger.save_dir", str(tmp_path), *args])


def test_runs_are_named_by_data_choices_regularization_and_seed_and_numbered(tmp_path: Path) -> None:
    first = _cli(tmp_path, *TINY_DATA, "--model.cell", "gru", "--model.regularize", "false")
    assert first.trainer.logger.version == "Sine-gru-unregularized-seed0_0"
    Path(first.trainer.logger.log_dir).mkdir(parents=True)
    again = _cli(tmp_path, *TINY_DATA, "--model.cell", "gru", "--model.regularize", "false")
    assert again.trainer.logger.version == "Sine-gru-unregularized-seed0_1"  # unique per run
    other = _cli(tmp_path, *TINY_DATA, "--seed_everything", "3")
    assert other.trainer.logger.version == "Sine-lstm-regularized-seed3_0"
    assert first.config["trainer"]["logger"].init_args.version is None  # what config.yaml will say
    chosen = _cli(tmp_path, *TINY_DATA, "--trainer.logger.version", "mine")
    assert chosen.trainer.logger.version == "mine" and Path(chosen.trainer.logger.log_dir).name == "mine"
    assert chosen.config["trainer"]["logger"].init_args.version == "mine"
    assert run_name({"dataset": "data/my_series.csv"}, SineDataModule, {"task": "forecast"}, 1) == (
        "my_series-regularized-seed1"
    )


def test_effective_hparams_hold_the_rates_in_use_callbacks_data_and_trainer(tmp_path: Path) -> None:
    flags = ["--model.recurrent_dropout", "0.3", "--max_norm.max_value", "2.5", "--trainer.max_epochs", "3"]
    on = _cli(tmp_path, *TINY_DATA, *flags).effective_hparams()
    assert on["model/recurrent_dropout"] == 0.3 and on["rates/rnn.recurrent_dropout"] == 0.3
    assert on["max_norm"] == "true" and on["max_norm/max_value"] == 2.5
    assert on["early_stopping"] == "true" and on["early_stopping/patience"] == 5
    assert on["forecast_plot"] == "true" and on["data/num_series"] == 10 and on["trainer/max_epochs"] == 3
    assert on["recipe"] == "demo" and on["seed"] == 0 and on["model/regularize"] == "true"
    assert not [key for key in on if "_instantiator" in key]
    off = _cli(
        tmp_path, *TINY_DATA, "--model.recurrent_dropout", "0.3", "--model.regularize", "false",
        "--forecast_plot.enabled", "false",
    ).effective_hparams()  # fmt: skip
    assert off["model/recurrent_dropout"] == 0.0 and off["rates/rnn.recurrent_dropout"] == 0.0
    assert all(value == 0.0 for key, value in off.items() if key.startswith("rates/"))
    assert off["max_norm"] == off["early_stopping"] == off["forecast_plot"] == "false"
    assert not [key for key in off if key.startswith(("max_norm/", "early_stopping/", "forecast_plot/"))]
    assert off["regularization_monitor"] == "true"
    classify = _cli(tmp_path, "--data.num_sequences", "60", data=SineClassificationDataModule).effective_hparams()
    assert classify["confusion_matrix_plot"] == "true" and "forecast_plot" not in classify


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tensorboard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A TensorBoard server (its own process) over an empty log folder; stopped and reaped afterwards."""
    logs = tmp_path / "logs"
    logs.mkdir()
    port = _free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--port", str(port)]
    command += ["--host", "127.0.0.1", "--load_fast", "false", "--reload_interval", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}", logs
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        assert server.poll() is not None


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _session_groups(base: str, runs: int, timeout: float = 90.0) -> list[dict[str, Any]]:
    """The session groups of the HParams view as the frontend asks for them, once ``runs`` sessions are loaded."""
    body = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [],
        "startIndex": 0,
        "sliceSize": 100,
    }
    deadline = time.monotonic() + timeout
    while True:
        try:
            groups = _post(f"{base}/data/plugin/hparams/session_groups", body).get("sessionGroups", [])
            if len(groups) >= runs:
                return groups
        except (urllib.error.URLError, ConnectionError):
            pass  # not serving yet
        if time.monotonic() > deadline:
            raise AssertionError(f"TensorBoard at {base} listed fewer than {runs} sessions in {timeout} s")
        time.sleep(0.5)


@pytest.mark.slow
def test_tensorboard_hparams_view_lists_effective_hparams_and_real_test_metrics(
    tensorboard: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, logs = tensorboard
    args = ["--trainer.logger.save_dir", str(logs), *TINY_RUN]
    # the recipe's default recurrent_dropout is 0.2: unregularized, the run uses 0
    off = RecipeCLI("demo", SequenceModel, SineDataModule, args=[*args, "--model.regularize", "false"]).fit_and_test()
    on = RecipeCLI("demo", SequenceModel, SineDataModule, args=[*args, "--max_norm.max_value", "2.5"]).fit_and_test()
    capsys.readouterr()

    groups = {group["name"]: group for group in _session_groups(base, runs=2)}
    experiment = _post(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
    metric_tags = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"test_rmse", "test_rmse_baseline", "test_mae", "epochs_trained", "val_loss"} <= metric_tags
    assert "hp_metric" not in metric_tags
    hparam_names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"model/recurrent_dropout", "rates/rnn.recurrent_dropout", "data/batch_size", "trainer/max_epochs"} <= (
        hparam_names
    )
    # the columns are every session's: max_norm/max_value is there although the first run had no max-norm
    assert {"max_norm", "early_stopping", "max_norm/max_value", "forecast_plot/num_series"} <= hparam_names
    assert not [name for name in hparam_names if "_instantiator" in name]

    # the saved config reruns into a new folder, not into this run's
    saved = (logs / "demo/Sine-lstm-unregularized-seed0_0/config.yaml").read_text()
    assert "version: null" in saved
    for summary, regularized in ((off, False), (on, True)):
        run = f"demo/Sine-lstm-{'regularized' if regularized else 'unregularized'}-seed0_0"
        assert summary.log_dir == str(logs / run)
        (session,) = groups[run]["sessions"]
        hparams = groups[run]["hparams"]
        metrics = {value["name"]["tag"]: value["value"] for value in session["metricValues"]}
        assert metrics["test_rmse"] == pytest.approx(summary.score) and metrics["test_rmse"] != -1
        assert metrics["test_rmse_baseline"] == pytest.approx(summary.yardstick)
        assert metrics["epochs_trained"] == summary.epochs_trained
        assert hparams["data/num_series"] == 10 and hparams["trainer/max_epochs"] == 2
        assert hparams["model/regularize"] == ("true" if regularized else "false")
        rate = 0.2 if regularized else 0.0
        assert hparams["model/recurrent_dropout"] == hparams["rates/rnn.recurrent_dropout"] == pytest.approx(rate)
        assert hparams["max_norm"] == hparams["early_stopping"] == ("true" if regularized else "false")
        assert ("max_norm/max_value" in hparams) == regularized
    assert groups["demo/Sine-lstm-regularized-seed0_0"]["hparams"]["max_norm/max_value"] == 2.5


def test_doctests() -> None:
    import doctest

    import common.cli

    result = doctest.testmod(common.cli)
    assert result.attempted > 0 and result.failed == 0
