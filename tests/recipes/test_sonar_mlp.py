"""recipes/sonar_mlp.py: the tutorial's network and variants, MaxNorm on the hidden layers, the recipe's
command line (Lightning's flags, logs, summary and saved model), cross-validation."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

import sonar_mlp
from common.callbacks import ConfusionMatrixPlot
from regdrop.callbacks import EarlyStopping, MaxNorm, RegularizationMonitor
from regdrop.nn.rates import dropout_rates
from sonar_mlp import VARIANTS, SonarMLP, cross_validate, fold_trainer, load_sonar


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    # LightningCLI warns when it gets both args= and a command line; pytest's own argv is not ours
    monkeypatch.setattr(sys, "argv", ["sonar_mlp.py"])


def test_network_is_the_tutorials() -> None:
    model = SonarMLP(input_dropout=0.2, hidden_dropout=0.1)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(60, 60), (60, 30), (30, 1)]
    assert all(float(m.bias.abs().max()) == 0.0 for m in linears)  # Keras starts biases at zero
    for m in linears:  # Glorot-uniform bound
        assert float(m.weight.abs().max()) <= math.sqrt(6.0 / (m.in_features + m.out_features))
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.2, 0.1, 0.1]
    assert "input_dropout=0.2, hidden_dropout=0.1" in repr(model)
    assert VARIANTS["baseline"]["lr"] == 0.01 and VARIANTS["input"]["lr"] == VARIANTS["hidden"]["lr"] == 0.1


def test_max_norm_binds_the_hidden_layers_only() -> None:
    x, y = load_sonar()
    x = (x - x.mean(0)) / x.std(0)
    torch.manual_seed(0)
    model = SonarMLP(hidden_dropout=0.2, lr=0.1, momentum=0.9)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(10.0)  # every row starts far above norm 3
    trainer = fold_trainer("hidden", epochs=1)
    assert [type(cb) for cb in trainer.callbacks if isinstance(cb, MaxNorm)] == [MaxNorm]
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16))
    for layer in (model.hidden[1], model.hidden[4]):
        assert float(layer.weight.norm(dim=1).max()) <= 3.0 + 1e-4
    assert float(model.output.weight.norm(dim=1).max()) > 3.0
    assert not any(isinstance(cb, MaxNorm) for cb in fold_trainer("baseline", epochs=1).callbacks)


@pytest.mark.slow
def test_cross_validation_is_seeded_and_scores_every_fold() -> None:
    x, y = load_sonar()
    first = cross_validate("input", folds=3, epochs=2, seed=5, data=(x, y))
    again = cross_validate("input", folds=3, epochs=2, seed=5, data=(x, y))
    other = cross_validate("input", folds=3, epochs=2, seed=6, data=(x, y))
    assert first.test_accuracies == again.test_accuracies and first.train_accuracies == again.train_accuracies
    assert first.test_accuracies != other.test_accuracies
    assert len(first.test_accuracies) == 3
    for accuracy in first.test_accuracies:  # a count of correct answers over a fold of 69 or 70
        assert any(abs(accuracy * n / 100 - round(accuracy * n / 100)) < 1e-4 for n in (69, 70))
    assert first.mean == pytest.approx(sum(first.test_accuracies) / 3)
    assert "tutorial 83.52%" in first.format()


def test_regularize_false_turns_both_rates_off() -> None:
    model = SonarMLP(input_dropout=0.2, hidden_dropout=0.3, regularize=False)
    assert set(dropout_rates(model).values()) == {0.0}
    assert model.effective_hparams["input_dropout"] == model.effective_hparams["hidden_dropout"] == 0.0
    assert model.hparams.hidden_dropout == 0.3  # what was asked stays in the checkpoint's hyperparameters
    assert "regularize=False, input_dropout=0.0, hidden_dropout=0.0" in repr(model)


def test_command_line_takes_the_recipes_flag_groups(tmp_path: Path) -> None:
    cli = sonar_mlp.cli(
        ["--trainer.logger.save_dir", str(tmp_path), "--trainer.max_epochs", "3", "--data.fold", "2",
         "--model.hidden_dropout", "0.3", "--max_norm.max_value", "2.5", "--early_stopping.patience", "4"]
    )  # fmt: skip
    assert cli.trainer.max_epochs == 3 and cli.datamodule.fold == 2
    assert cli.model.hparams.hidden_dropout == 0.3 and cli.model.hparams.input_size == 60
    (max_norm,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, MaxNorm)]
    assert max_norm.max_value == 2.5 and max_norm.names == ("hidden.*",)
    assert [cb.patience for cb in cli.trainer.callbacks if isinstance(cb, EarlyStopping)] == [4]
    assert any(isinstance(cb, RegularizationMonitor) for cb in cli.trainer.callbacks)
    assert any(isinstance(cb, ConfusionMatrixPlot) for cb in cli.trainer.callbacks)
    assert cli.trainer.progress_bar_callback is not None
    assert isinstance(cli.trainer.logger, TensorBoardLogger)
    assert Path(cli.trainer.logger.log_dir).parent == tmp_path / "sonar_mlp"
    off = sonar_mlp.cli(["--trainer.logger.save_dir", str(tmp_path), "--model.regularize", "false"])
    assert not [cb for cb in off.trainer.callbacks if isinstance(cb, (MaxNorm, EarlyStopping))]
    assert set(dropout_rates(off.model).values()) == {0.0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data.fold", "10"], r"fold must be in 0 \.\. folds - 1 = 9, got 10"),
        (["--data.path", "missing.dat"], r"missing\.dat"),
        (["--variant", "hidden"], r"unrecognized arguments: --variant"),
        (["--data.seed", "-1"], r"error: ValueError: seed must be an int in 0 \.\. 2\*\*32 - 1, got -1\n"),
        (["--model.regularize", "some"], r"regularize"),
    ],
)
def test_bad_options_exit_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sonar_mlp.cli(["--trainer.logger.save_dir", str(tmp_path), *args])
    assert exit_info.value.code == 2
    assert __import__("re").search(message, capsys.readouterr().err)


def _user_file(path: Path) -> Path:
    x, y = load_sonar()
    rows = [
        ", ".join(f"{v:.3f}" for v in row.tolist()) + (", M" if label else ", R")
        for row, label in zip(x, y, strict=True)
    ]
    path.write_text("\n".join(rows[:60] + rows[-60:]) + "\n")
    return path


@pytest.mark.slow
def test_a_run_on_a_user_file_logs_summarizes_and_saves_the_restored_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = sonar_mlp.main(
        ["--trainer.logger.save_dir", str(tmp_path), "--data.path", str(_user_file(tmp_path / "s.dat")),
         "--data.folds", "4", "--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("sonar_mlp, done") == 1 and "test accuracy" in out
    assert summary.score_name == "test accuracy" and 0.0 <= summary.score <= 1.0
    assert summary.yardstick_name == "majority-class accuracy" and summary.epochs_trained == 3
    log_dir = Path(summary.log_dir)
    assert log_dir.parent == tmp_path / "sonar_mlp" and log_dir.name == "s-regularized-seed0_0"
    assert list(log_dir.glob("events.out.tfevents.*"))
    assert json.loads((log_dir / "summary.json").read_text())["score"] == summary.score
    assert summary.figure == str(log_dir / "confusion_matrix.png") and Path(summary.figure).is_file()
    assert sum(map(sum, summary.confusion_matrix)) == 30  # the test fold: a quarter of the 120 rows
    assert summary.model_file is not None and Path(summary.model_file).is_file()
    # the summary names the class to load it with, as the recipe's module is imported
    assert summary.model_class == "sonar_mlp.SonarMLP" and summary.precision == "32-true"
    assert "(load: sonar_mlp.SonarMLP.load_from_checkpoint(path))" in out
    served = SonarMLP.load_from_checkpoint(summary.model_file).eval()
    assert served(torch.zeros(2, 60)).shape == (2,)


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"variant must be one of \['baseline', 'hidden', 'input'\], got 'both'"):
        cross_validate("both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"hidden_dropout must be in \[0, 1\], got 1.5"):
        SonarMLP(hidden_dropout=1.5)


def test_doctests() -> None:
    import doctest

    result = doctest.testmod(sonar_mlp)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(("arm", "rates", "max_norm", "early_stopping"), [
    ("none", 0.0, False, False), ("early_stopping", 0.0, False, True), ("dropout", 0.3, True, False),
    ("all", 0.3, True, True),
])  # fmt: skip
def test_every_ablation_arm_is_taken(
    tmp_path: Path, arm: str, rates: float, max_norm: bool, early_stopping: bool
) -> None:
    # --model.regularize took only true/false here, though the README's arms (none, ...) apply to every recipe
    cli = sonar_mlp.cli(["--trainer.logger.save_dir", str(tmp_path), "--model.regularize", arm,
                         "--model.hidden_dropout", "0.3"])  # fmt: skip
    assert cli.model.arm == arm and dropout_rates(cli.model)["hidden.3.p"] == rates
    assert any(isinstance(cb, MaxNorm) for cb in cli.trainer.callbacks) is max_norm
    assert any(isinstance(cb, EarlyStopping) for cb in cli.trainer.callbacks) is early_stopping


def test_the_studys_bare_trial_has_no_dropout() -> None:
    # --tune's unregularized trial builds the model with regularize="none", which bool() used to read as True
    model = SonarMLP(input_dropout=0.2, hidden_dropout=0.2, regularize="none")
    assert not model.regularize and set(dropout_rates(model).values()) == {0.0}


def test_a_bad_user_file_exits_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _user_file(tmp_path / "s.dat")
    path.write_text(path.read_text().replace(", R\n", ", M\n"))  # mines only
    with pytest.raises(SystemExit) as exit_info:
        sonar_mlp.cli(["--trainer.logger.save_dir", str(tmp_path), "--data.path", str(path)])
    assert exit_info.value.code == 2
    assert "error: ValueError: " + str(path) + ": the rows must hold both classes" in capsys.readouterr().err


@pytest.mark.slow
def test_a_two_process_ddp_run_scores_each_test_case_once(tmp_path: Path) -> None:
    import subprocess

    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    args = [*ddp, "--trainer.max_epochs", "2", "--trainer.logger.save_dir", str(tmp_path)]
    script = Path(sonar_mlp.__file__)
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (saved,) = tmp_path.glob("sonar_mlp/*/summary.json")
    summary = json.loads(saved.read_text())
    matrix = summary["confusion_matrix"]  # drawn by rank 0 over the test loader alone
    # 21 test cases: Lightning's sampler padded them to 22 and the score counted one twice
    assert summary["test_cases"] == sum(map(sum, matrix)) == 21
    assert summary["score"] == pytest.approx(sum(matrix[k][k] for k in range(2)) / 21, abs=1e-6)
