"""RecipeCLI: defaults, flags and YAML reach the classes; the regularization switch; errors; a classification run."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.loggers import TensorBoardLogger

from common.callbacks import ConfusionMatrixPlot, ForecastPlot
from common.cli import RecipeCLI
from common.model import SequenceModel
from regdrop.callbacks import EarlyStopping, MaxNorm, RegularizationMonitor
from sine_lstm import SineDataModule
from tests.recipes.sine_classes import SineClassificationDataModule

TINY_DATA = ["--data.num_series", "10", "--data.length", "40", "--data.input_length", "12", "--data.horizon", "4"]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    # LightningCLI warns when it gets both args= and a command line; pytest's own argv is not ours
    monkeypatch.setattr(sys, "argv", ["recipe.py"])


def _cli(tmp_path, *args: str, data=SineDataModule, **kwargs: object) -> RecipeCLI:
    base = ["--trainer.logger.save_dir", str(tmp_path), "--model.hidden_size", "8"]
    return RecipeCLI("demo", SequenceModel, data, args=[*base, *args], **kwargs)  # type: ignore[arg-type]


def _of(cli: RecipeCLI, kind: type) -> list:
    return [cb for cb in cli.trainer.callbacks if isinstance(cb, kind)]


def test_defaults_give_the_regularized_setup(tmp_path) -> None:
    cli = _cli(tmp_path, *TINY_DATA)
    (max_norm,), (stopper,) = _of(cli, MaxNorm), _of(cli, EarlyStopping)
    assert max_norm.max_value == 3.0
    assert stopper.monitor == "val_loss" and stopper.restore_best_weights and stopper.patience == 5
    assert len(_of(cli, RegularizationMonitor)) == 1 and len(_of(cli, ForecastPlot)) == 1
    assert isinstance(cli.trainer.logger, TensorBoardLogger)
    assert cli.trainer.logger.save_dir == str(tmp_path) and cli.trainer.logger.name == "demo"
    assert type(cli.trainer.accelerator).__name__ == "CPUAccelerator" and cli.trainer.num_devices == 1
    # the data's sizes reach the model
    assert cli.model.task == "forecast" and cli.model.hparams.horizon == 4 and cli.model.hparams.input_size == 1


def test_flags_reach_model_data_trainer_and_callbacks(tmp_path) -> None:
    cli = _cli(
        tmp_path,
        *TINY_DATA,
        "--data.horizon",
        "7",
        "--model.recurrent_dropout",
        "0.4",
        "--model.cell",
        "gru",
        "--max_norm.max_value",
        "1.5",
        "--early_stopping.patience",
        "2",
        "--trainer.max_epochs",
        "3",
        "--forecast_plot.num_series",
        "2",
    )
    assert cli.datamodule.horizon == 7 and cli.model.hparams.horizon == 7 and cli.model.head.out_features == 7
    assert type(cli.model.rnn).__name__ == "GRU" and cli.model.rnn.recurrent_dropout == 0.4
    assert _of(cli, MaxNorm)[0].max_value == 1.5 and _of(cli, EarlyStopping)[0].patience == 2
    assert cli.trainer.max_epochs == 3 and _of(cli, ForecastPlot)[0].num_series == 2


def test_recipe_defaults_apply_and_flags_win(tmp_path) -> None:
    cli = _cli(
        tmp_path,
        *TINY_DATA,
        "--model.dropout",
        "0.1",
        model_defaults={"dropout": 0.35, "zoneout": 0.05},
        trainer_defaults={"max_epochs": 9},
        callback_defaults={"early_stopping.patience": 8},
    )
    assert cli.model.hparams.dropout == 0.1 and cli.model.hparams.zoneout == 0.05
    assert cli.trainer.max_epochs == 9 and _of(cli, EarlyStopping)[0].patience == 8


def test_yaml_config(tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"hidden_size": 12, "output_dropout": 0.1},
                "data": {"num_series": 10, "length": 40, "input_length": 12, "horizon": 3},
                "trainer": {"max_epochs": 4},
                "max_norm": {"max_value": 2.5},
            }
        )
    )
    cli = _cli(tmp_path, "--config", str(config))
    # --model.hidden_size 8 came before --config, so the file wins; flags after it would win in turn
    assert cli.model.hparams.hidden_size == 12 and cli.model.output_dropout.p == 0.1
    assert cli.model.hparams.horizon == 3 and cli.trainer.max_epochs == 4 and _of(cli, MaxNorm)[0].max_value == 2.5


def test_print_config_shows_every_option(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli(
            tmp_path, *TINY_DATA, "--model.recurrent_dropout", "0.3", "--print_config", model_defaults={"zoneout": 0.05}
        )
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["recurrent_dropout"] == 0.3 and printed["model"]["zoneout"] == 0.05
    assert printed["data"]["horizon"] == 4 and printed["max_norm"]["max_value"] == 3.0
    assert printed["early_stopping"]["restore_best_weights"] is True
    assert printed["trainer"]["logger"]["init_args"]["save_dir"] == str(tmp_path)


def test_regularize_false_drops_the_constraint_and_early_stopping(tmp_path) -> None:
    cli = _cli(tmp_path, *TINY_DATA, "--model.regularize", "false")
    assert not _of(cli, MaxNorm) and not _of(cli, EarlyStopping)
    assert len(_of(cli, RegularizationMonitor)) == 1 and len(_of(cli, ForecastPlot)) == 1
    rates = [getattr(m, r) for m in cli.model.modules() for r in getattr(m, "rate_names", ())]
    assert rates and all(rate == 0.0 for rate in rates)


def test_num_threads_sets_torch_threads_and_zero_keeps_them(tmp_path) -> None:
    torch.set_num_threads(2)
    _cli(tmp_path, *TINY_DATA, "--num_threads", "0")
    assert torch.get_num_threads() == 2
    _cli(tmp_path, *TINY_DATA)  # the default: one thread
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.recurrent_dropout", "1.5"], r"ValueError: recurrent_dropout must be in \[0, 1\], got 1.5"),
        (["--trainer.precision", "7"], r"trainer.precision"),
        (["--model.no_such_option", "1"], r"no_such_option"),
        (["--data.num_series", "3"], r"SineDataModule: splitting 3 series"),
        (["--max_norm.max_value", "-1"], r"max_value must be a finite number >= 0, got -1.0"),
        (["--num_threads", "-2"], r"--num_threads must be an int >= 0, got -2"),
    ],
)
def test_bad_options_exit_with_status_2_and_say_why(tmp_path, capsys, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli(tmp_path, *TINY_DATA, *args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and re.search(message, err), err


def test_classification_cli_links_classes_and_has_no_forecast_plot(tmp_path) -> None:
    cli = _cli(tmp_path, "--data.num_sequences", "30", "--data.num_classes", "4", data=SineClassificationDataModule)
    assert cli.model.task == "classify" and cli.model.hparams.num_classes == 4 and cli.model.head.out_features == 4
    assert not _of(cli, ForecastPlot)
    assert "forecast_plot" not in cli.config


@pytest.mark.slow
def test_classification_recipe_runs_end_to_end(tmp_path, capsys) -> None:
    cli = _cli(
        tmp_path,
        "--data.num_sequences",
        "60",
        "--data.min_length",
        "16",
        "--data.max_length",
        "24",
        "--data.batch_size",
        "16",
        "--trainer.max_epochs",
        "2",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        data=SineClassificationDataModule,
    )
    summary = cli.fit_and_test()
    assert summary.score_name == "test accuracy" and 0.0 <= summary.score <= 1.0
    assert summary.yardstick_name == "majority-class accuracy"
    assert (
        summary.figure is not None and summary.figure.endswith("confusion_matrix.png") and summary.epochs_trained == 2
    )
    assert Path(summary.figure).is_file() and summary.confusion_matrix is not None
    assert sum(map(sum, summary.confusion_matrix)) == len(cli.datamodule.splits["test"])  # every test case counted
    assert "test accuracy" in capsys.readouterr().out


def test_help_is_plain_text_and_a_forecaster_shows_no_num_classes(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli(tmp_path, "--help")
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "h_{t-1}" in text and "--model.recurrent_dropout" in text
    assert not re.search(r":(math|class|func|meth):|``", text), re.findall(r".{30}(?::math:|``).{30}", text)
    assert "--model.num_classes" not in text
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--help", data=SineClassificationDataModule)
    assert "model.num_classes" in capsys.readouterr().out


def test_a_flag_that_is_a_prefix_of_a_real_one_is_refused(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli(tmp_path, *TINY_DATA, "--trainer.max_epoch", "1")
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --trainer.max_epoch 1" in capsys.readouterr().err


def test_each_task_has_its_plot_group_and_enabled_false_turns_it_off(tmp_path, capsys) -> None:
    classify = _cli(tmp_path, "--data.num_sequences", "30", "--confusion_matrix_plot.enabled", "false",
                    data=SineClassificationDataModule)  # fmt: skip
    (matrix,) = _of(classify, ConfusionMatrixPlot)
    assert not matrix.enabled and "perplexity_plot" not in classify.config
    (forecast,) = _of(_cli(tmp_path, *TINY_DATA), ForecastPlot)
    assert forecast.enabled
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--help")
    assert "--forecast_plot.enabled" in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_without_its_plot_draws_none_and_says_nothing_of_it(tmp_path, capsys) -> None:
    cli = _cli(
        tmp_path, *TINY_DATA, "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
        "--forecast_plot.enabled", "false",
    )  # fmt: skip
    summary = cli.fit_and_test()
    assert summary.figure is None and summary.log_dir is not None and Path(summary.log_dir, "summary.json").is_file()
    assert not list(tmp_path.rglob("*.png"))
    assert "forecast plot" not in capsys.readouterr().out


class _RefusesItsSplit(SineDataModule):
    def setup(self, stage: str) -> None:
        raise ValueError("every class needs at least 2 training cases, got 1 of ['b']")


def test_data_the_split_refuses_exit_with_status_2_before_training(tmp_path, capsys) -> None:
    # the split runs before the trainer does, so its refusal reads like a wrong option's, not a traceback
    cli = _cli(tmp_path, *TINY_DATA, data=_RefusesItsSplit)
    with pytest.raises(SystemExit) as exit_info:
        cli.fit_and_test()
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("error: ValueError: every class needs at least 2 training cases, got 1 of ['b']")
    assert cli.trainer.current_epoch == 0
