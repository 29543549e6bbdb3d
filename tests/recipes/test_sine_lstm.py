"""recipes/sine_lstm.py end to end in a tiny configuration: in process, as a script, under 2-process DDP and bf16."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import sine_lstm

SCRIPT = Path(sine_lstm.__file__).resolve()


def tiny(log_root: Path) -> list[str]:
    return [
        "--data.num_series", "10", "--data.length", "48", "--data.input_length", "12", "--data.horizon", "4",
        "--data.stride", "4", "--data.batch_size", "8", "--model.hidden_size", "8",
        "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3", "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger.save_dir", str(log_root),
    ]  # fmt: skip


def run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def check_run_dir(run_dir: Path) -> dict:
    """The run wrote the curves, the figure (in TensorBoard and as a PNG) and the summary; return the summary."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train_loss", "val_loss", "val_rmse", "test_rmse", "generalization_gap"} <= scalars, scalars
    assert len(events.Scalars("val_loss")) == 2  # one per epoch
    assert "test/forecasts" in events.Tags()["images"]
    assert (run_dir / "forecasts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "config.yaml").is_file()
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT)])


def test_default_configuration_is_the_documented_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sine_lstm.main(["--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    trainer, model = config["trainer"], config["model"]
    assert trainer["accelerator"] == "cpu" and trainer["devices"] == 1 and trainer["enable_progress_bar"] is not False
    assert trainer["logger"]["class_path"] == "lightning.pytorch.loggers.TensorBoardLogger"
    assert trainer["logger"]["init_args"]["save_dir"] == "lightning_logs"
    assert trainer["logger"]["init_args"]["name"] == "sine_lstm"
    assert model["cell"] == "lstm" and model["regularize"] is True
    assert model["dropout"] > 0 and model["recurrent_dropout"] > 0 and model["output_dropout"] > 0
    assert config["early_stopping"]["restore_best_weights"] is True
    assert config["early_stopping"]["monitor"] == "val_loss"
    assert config["max_norm"]["max_value"] > 0


@pytest.mark.slow
def test_in_process_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = sine_lstm.main(tiny(tmp_path))
    out = capsys.readouterr().out
    run_dir = tmp_path / "sine_lstm" / "Sine-lstm-regularized-seed0_0"
    saved = check_run_dir(run_dir)
    assert saved["score"] == pytest.approx(summary.score) and saved["restored_epoch"] == summary.restored_epoch
    assert summary.score_name == "test RMSE" and summary.yardstick_name == "naive last-value forecast RMSE"
    assert summary.restored_epoch in (0, 1) and summary.epochs_trained == 2
    assert "sine_lstm, done" in out and f"restored from epoch {summary.restored_epoch}" in out
    assert f"{summary.score:.4f}" in out and f"{summary.yardstick:.4f}" in out
    assert str(run_dir / "forecasts.png") in out and f"tensorboard --logdir {tmp_path}" in out


@pytest.mark.slow
def test_a_run_destroys_its_process_group_at_the_end(tmp_path: Path) -> None:
    # a gloo group left to the interpreter's shutdown can abort the process (it did, once, in CI)
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        sine_lstm.main(tiny(tmp_path))
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.slow
def test_script_runs_under_two_process_ddp(tmp_path: Path) -> None:
    result = run_script(
        *tiny(tmp_path), "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("sine_lstm, done") == 1  # printed by rank 0 only
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr
    saved = check_run_dir(tmp_path / "sine_lstm" / "Sine-lstm-regularized-seed0_0")
    assert not (tmp_path / "sine_lstm" / "Sine-lstm-regularized-seed0_1").exists()
    assert saved["score"] > 0


@pytest.mark.slow
def test_script_runs_in_bf16_mixed_precision(tmp_path: Path) -> None:
    result = run_script(*tiny(tmp_path), "--trainer.precision", "bf16-mixed")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sine_lstm, done" in result.stdout
    saved = check_run_dir(tmp_path / "sine_lstm" / "Sine-lstm-regularized-seed0_0")
    config = yaml.safe_load((tmp_path / "sine_lstm" / "Sine-lstm-regularized-seed0_0" / "config.yaml").read_text())
    assert config["trainer"]["precision"] == "bf16-mixed" and saved["score"] > 0


@pytest.mark.slow
def test_script_refuses_a_bad_option(tmp_path: Path) -> None:
    result = run_script(*tiny(tmp_path), "--model.recurrent_dropout", "1.5", timeout=120)
    assert result.returncode == 2
    assert "error: ValueError: recurrent_dropout must be in [0, 1], got 1.5" in result.stderr
    assert not (tmp_path / "sine_lstm").exists()  # nothing ran


@pytest.mark.slow
def test_the_restored_model_is_saved_and_tests_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from common import RecipeCLI, SequenceModel
    from sine_lstm import SineDataModule

    summary = sine_lstm.main(tiny(tmp_path / "a"))
    out = capsys.readouterr().out
    assert summary.restored_epoch is not None and summary.model_file is not None
    path = Path(summary.model_file)
    assert path == tmp_path / "a" / "sine_lstm" / "Sine-lstm-regularized-seed0_0" / "restored.ckpt" and path.is_file()
    assert f"restored model      {path}" in out
    loaded = SequenceModel.load_from_checkpoint(path)
    # a second, identical set-up (same seed, same data) tests the loaded weights to the same score
    again = RecipeCLI(
        "sine_lstm", SequenceModel, SineDataModule, args=tiny(tmp_path / "b"), model_defaults=sine_lstm.MODEL_DEFAULTS,
        data_defaults=sine_lstm.DATA_DEFAULTS, trainer_defaults=sine_lstm.TRAINER_DEFAULTS,
    )  # fmt: skip
    (metrics,) = again.trainer.test(loaded, datamodule=again.datamodule, verbose=False)
    assert metrics["test_rmse"] == pytest.approx(summary.score, rel=1e-5)
