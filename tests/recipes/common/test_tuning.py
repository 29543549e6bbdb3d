"""--tune N: the search space, a study with pruning, and the retrained model the test sees."""

from __future__ import annotations

import doctest
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import lightning.pytorch as pl
import pytest

import common.tuning
from common.cli import RecipeCLI
from common.model import SequenceModel
from common.tuning import CV_FOLDS, TIE_BREAK, choose, refit_epochs, search_space, tune, tuning_folds, warmup_checks
from sine_lstm import SineDataModule

TINY = ["--data.num_series", "12", "--data.length", "40", "--data.input_length", "12", "--data.horizon", "4",
        "--model.hidden_size", "8", "--trainer.max_epochs", "4", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false"]  # fmt: skip


def _trial(value: float) -> SimpleNamespace:
    """A finished trial of a stand-in study."""
    return SimpleNamespace(value=value, state=SimpleNamespace(name="COMPLETE"))


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["recipe.py"])


def test_doctests() -> None:
    result = doctest.testmod(common.tuning)
    assert result.attempted > 0 and result.failed == 0


def test_search_space_tunes_the_rates_the_model_uses() -> None:
    hparams = dict(SequenceModel(hidden_size=8).hparams)
    space = search_space(hparams, "all")
    # the defaults: dropout, recurrent and output dropout are on; the convolutional branch is off
    assert set(space) == {"lr", "dropout", "recurrent_dropout", "output_dropout"}
    assert set(search_space({**hparams, "fcn": True}, "dropout")) == set(space) | {"spatial_dropout"}
    assert set(search_space(hparams, "none")) == {"lr"}
    # the Sonar MLP's rate after each hidden layer is tuned too
    assert set(search_space({"lr": 0.1, "input_dropout": 0.0, "hidden_dropout": 0.2}, "all")) == {
        "lr",
        "hidden_dropout",
    }


def test_tune_rejects_zero_trials() -> None:
    with pytest.raises(ValueError, match="trials must be an int >= 1, got 0"):
        tune(SequenceModel, {}, SineDataModule(), {}, None, None, 0)


@pytest.mark.slow
def test_tune_runs_a_study_and_the_test_sees_the_best_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = RecipeCLI("demo", SequenceModel, SineDataModule,
                    args=["--trainer.logger.save_dir", str(tmp_path), *TINY, "--tune", "3"])  # fmt: skip
    summary = cli.fit_and_test()
    # a line as each trial ends: a study of minutes shows its progress
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[tune] trial")]
    assert [line.split(":")[0] for line in printed] == [f"[tune] trial {i}/3 complete" for i in (1, 2, 3)]
    assert "regularize=none" in printed[2] and "validation score" in printed[2]
    assert summary.tuned is not None and summary.tuned["trials"] == 3
    best = summary.tuned["best"]
    rates = {"dropout", "recurrent_dropout", "output_dropout"}
    assert set(best) in ({"lr", "regularize", *rates}, {"lr", "regularize"})
    assert (best["regularize"] == "none") == (set(best) == {"lr", "regularize"})
    # the tested model was built with the best trial's values
    assert all(cli.model.hparams[name] == pytest.approx(value) for name, value in best.items())
    saved = json.loads((Path(summary.log_dir) / "summary.json").read_text())
    assert saved["tuned"]["best"] == best
    assert "tuned" in summary.format() and "best of 3 trials" in summary.format()


def test_negative_tune_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        RecipeCLI("demo", SequenceModel, SineDataModule, args=["--trainer.logger.save_dir", str(tmp_path), *TINY,
                                                               "--tune", "-1"])  # fmt: skip
    assert exit_info.value.code == 2 and "--tune must be an int >= 0, got -1" in capsys.readouterr().err


def test_tune_none_lr_reaches_the_study_and_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    study = SimpleNamespace(trials=[_trial(0.5)], user_attrs={"folds": 1, "chosen": 0})

    def fake_tune(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
        seen.update(kwargs)
        return {"regularize": "none", "lr": 0.004}, study

    monkeypatch.setattr(common.tuning, "tune", fake_tune)
    cli = RecipeCLI("demo", SequenceModel, SineDataModule, args=["--trainer.logger.save_dir", str(tmp_path), *TINY,
                                                                 "--tune", "3", "--tune_none_lr", "0.004"])  # fmt: skip
    summary = cli.fit_and_test()
    assert seen["none_lr"] == 0.004 and summary.tuned is not None and summary.tuned["none_lr"] == 0.004
    assert "the unregularized trial at lr 0.004 (--tune_none_lr)" in " ".join(summary.format().split())


def test_a_regularized_study_repeats_the_unregularized_studys_trial_at_its_learning_rate() -> None:
    # every trial starts from the same seed, so the regularized study's unregularized trial, at the learning
    # rate of a trial of the unregularized arm's study, scores exactly what that trial scored
    hparams = dict(SequenceModel(hidden_size=8, dropout=0.2, recurrent_dropout=0.2, lr=0.01).hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    budget = {"max_epochs": 2, "enable_progress_bar": False}
    _, bare = tune(SequenceModel, {**hparams, "regularize": "none"}, data, budget, None, None, 2)
    for trial in bare.trials:  # the run's learning rate (trial 0) and a sampled one (trial 1)
        _, study = tune(SequenceModel, hparams, data, budget, None, None, 3, none_lr=trial.params["lr"])
        repeated = study.trials[0]  # with none_lr the unregularized trial comes first
        assert repeated.user_attrs["values"] == {"regularize": "none", "lr": trial.params["lr"]}
        assert repeated.value == trial.value
        # so the study ends no worse on validation than the unregularized arm's trial
        assert study.trials[study.user_attrs["chosen"]].value <= trial.value


def test_a_trial_that_repeats_earlier_values_reuses_their_score(monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[str] = []
    fit = pl.Trainer.fit

    def spy(trainer: pl.Trainer, model: pl.LightningModule, **kwargs: Any) -> None:
        fits.append(model.arm)
        fit(trainer, model, **kwargs)

    monkeypatch.setattr(pl.Trainer, "fit", spy)
    # two unregularized trials: with none_lr both train the bare network at that learning rate
    monkeypatch.setattr(common.tuning, "first_trials", lambda *args: [{"regularize": "none"}] * 2)
    hparams = dict(SequenceModel(hidden_size=8, dropout=0.2, lr=0.01).hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    best, study = tune(SequenceModel, hparams, data, {"max_epochs": 1, "enable_progress_bar": False}, None, None, 2,
                       none_lr=0.02)  # fmt: skip
    assert fits == ["none"]  # the second trial did not train
    assert study.trials[0].value == study.trials[1].value and "lr" not in study.trials[1].params
    assert best == {"regularize": "none", "lr": 0.02}


def test_a_forecasters_study_tries_each_difference_and_the_regularized_study_repeats_the_bare_choice() -> None:
    hparams = dict(SequenceModel(hidden_size=8, dropout=0.2, lr=0.01).hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    data.seasonal_period = 4  # type: ignore[attr-defined]  # (as RealSeriesDataModule has one)
    budget = {"max_epochs": 2, "enable_progress_bar": False}
    _, bare = tune(SequenceModel, {**hparams, "regularize": "none"}, data, budget, None, None, 2)
    # the study starts with each lag at the run's learning rate; the lag changes the model
    assert [t.params for t in bare.trials] == [{"lr": 0.01, "difference": 0}, {"lr": 0.01, "difference": 4}]
    assert bare.trials[0].value != bare.trials[1].value
    best, study = tune(SequenceModel, hparams, data, budget, None, None, 2, none_lr=0.01, none_difference=4)
    # the regularized study's unregularized trial takes the bare study's lag too, so it repeats that trial
    assert study.trials[0].user_attrs["values"] == {"regularize": "none", "lr": 0.01, "difference": 4}
    assert study.trials[0].value == bare.trials[1].value
    assert study.trials[1].params == {
        "regularize": "all",
        "lr": 0.01,
        "difference": 0,
        "dropout": 0.2,
        "recurrent_dropout": 0.2,
        "output_dropout": 0.2,
    }
    assert "difference" in best
    # a window shorter than two periods: nothing to choose
    data.seasonal_period = 7  # type: ignore[attr-defined]
    _, plain = tune(SequenceModel, {**hparams, "regularize": "none"}, data, {**budget, "max_epochs": 1}, None, None, 1)
    assert plain.trials[0].params == {"lr": 0.01}


def test_none_difference_errors() -> None:
    hparams = dict(SequenceModel(hidden_size=8, dropout=0.2, lr=0.01).hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    with pytest.raises(ValueError, match=r"none_difference \(4\) goes with none_lr"):
        tune(SequenceModel, hparams, data, {"max_epochs": 1}, None, None, 1, none_difference=4)
    data.seasonal_period = 4  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"none_difference must be one of this data's lags \[0, 4\], got 3"):
        tune(SequenceModel, hparams, data, {"max_epochs": 1}, None, None, 1, none_lr=0.01, none_difference=3)


def test_none_lr_must_lie_in_the_learning_rate_range_of_a_study_of_rates() -> None:
    hparams = dict(SequenceModel(hidden_size=8, dropout=0.2, lr=0.01).hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    out_of_range = r"none_lr must lie in the study's learning-rate range \[0.001, 0.03\], got 0.5"
    with pytest.raises(ValueError, match=out_of_range):
        tune(SequenceModel, hparams, data, {"max_epochs": 1}, None, None, 1, none_lr=0.5)
    with pytest.raises(ValueError, match=r"none_lr \(0.01\) sets the unregularized starting trial, which only a study"):
        tune(SequenceModel, {**hparams, "regularize": "none"}, data, {"max_epochs": 1}, None, None, 1, none_lr=0.01)


def test_a_regularized_trial_that_only_ties_the_bare_networks_error_rate_gives_way() -> None:
    def trial(number: int, value: float, arm: str, error: float | None) -> SimpleNamespace:
        attrs = {} if error is None else {"error": error}
        return SimpleNamespace(number=number, value=value, params={"regularize": arm, "lr": 0.01}, user_attrs=attrs)

    # the regularized trial's lower loss breaks the tie of error rates in its favour; choose() does not
    tied = [trial(0, 0.20002, "all", 0.2), trial(1, 0.20005, "none", 0.2), trial(2, 0.20001, "none", 0.2),
            trial(3, 0.3, "none", 0.3)]  # fmt: skip
    assert choose(tied).number == 2
    # fewer validation errors: regularization stays
    assert choose([trial(0, 0.10002, "all", 0.1), *tied[1:]]).number == 0
    # no error rate (a forecast): the least value
    assert choose([trial(0, 0.5, "all", None), trial(1, 0.6, "none", None)]).number == 0


def test_under_cross_validation_regularization_must_win_most_folds() -> None:
    def trial(number: int, arm: str, folds: list[float], errors: list[float] | None = None) -> SimpleNamespace:
        attrs: dict[str, Any] = {"fold_values": folds}
        if errors is not None:
            attrs.update(fold_errors=errors, error=sum(errors) / len(errors))
        return SimpleNamespace(number=number, value=sum(folds) / len(folds), params={"regularize": arm},
                               user_attrs=attrs)  # fmt: skip

    bare = trial(1, "none", [3.0, 4.0, 3.5])
    # a lower mean, won on one fold and lost on two: the bare network
    assert choose([trial(0, "all", [1.0, 5.0, 3.6]), bare]).number == 1
    # won on two folds of three: regularization stays
    assert choose([trial(0, "all", [1.0, 5.5, 3.0]), bare]).number == 0
    # a classifier compares error rates: ACSF1's early-stopping trial (one fold better, one equal, one worse)
    acsf1_bare = trial(1, "none", [0.3531, 0.5759, 0.4547], errors=[0.353, 0.576, 0.455])
    acsf1_stop = trial(0, "all", [0.2648, 0.5758, 0.4850], errors=[0.265, 0.576, 0.485])
    assert choose([acsf1_stop, acsf1_bare]).number == 1
    # the bare trial the regularized one must beat is the best of them, not any of them
    worse_bare = trial(2, "none", [9.0, 9.0, 9.0])
    assert choose([trial(0, "all", [1.0, 5.0, 3.6]), worse_bare, bare]).number == 1


def test_passed_over_says_why_the_bare_network_was_kept() -> None:
    from common.tuning import passed_over

    def trial(number: int, value: float, arm: str, error: float) -> SimpleNamespace:
        return SimpleNamespace(number=number, value=value, params={"regularize": arm}, user_attrs={"error": error})

    # one validation split: the regularized trial's lower score is only the loss breaking a tie of error rates
    assert passed_over([trial(0, 0.20002, "all", 0.2), trial(1, 0.20005, "none", 0.2)]) == (
        "trial 1 regularized with a lower score (0.2, the loss breaking the tie) but classified no more "
        "validation cases right (80%)"
    )
    # regularization kept, or the bare network best anyway: nothing to explain
    assert passed_over([trial(0, 0.10002, "all", 0.1), trial(1, 0.20005, "none", 0.2)]) is None
    assert passed_over([trial(0, 0.3, "all", 0.3), trial(1, 0.20005, "none", 0.2)]) is None


def test_a_classifiers_folds_keep_their_error_rates() -> None:
    from vowels_gru import UCRDataModule

    hparams = dict(SequenceModel(task="classify", input_size=1, num_classes=3, hidden_size=4, lr=0.01).hparams)
    _, study = tune(SequenceModel, hparams, UCRDataModule("ArrowHead", resample_to=32),
                    {"max_epochs": 1, "enable_progress_bar": False}, None, None, 1)  # fmt: skip
    errors = study.trials[0].user_attrs["fold_errors"]
    assert len(errors) == CV_FOLDS and study.trials[0].user_attrs["error"] == pytest.approx(sum(errors) / CV_FOLDS)
    # each fold's score is its error rate plus the tie-breaking loss term
    for error, value in zip(errors, study.trials[0].user_attrs["fold_values"], strict=True):
        assert 0 <= value - error <= 10 * TIE_BREAK


def test_the_study_returns_the_trial_choose_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    hparams = dict(SequenceModel(hidden_size=8, dropout=0.2, lr=0.01).hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    monkeypatch.setattr(common.tuning, "choose", lambda trials: trials[-1])
    best, study = tune(SequenceModel, hparams, data, {"max_epochs": 1, "enable_progress_bar": False}, None, None, 3)
    assert best == study.trials[2].user_attrs["values"] == {"regularize": "none", "lr": 0.01}
    assert study.user_attrs["chosen"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--refit_epochs", "-1"], "--refit_epochs must be an int >= 0, got -1"),
     (["--refit_epochs", "3", "--tune", "2"], "--refit_epochs 3 and --tune 2 go apart"),
     (["--refit_epochs", "3"], "--refit_epochs needs a data module that can train on its validation cases too"),
     (["--tune_none_lr", "0.01"], "--tune_none_lr 0.01 needs --tune N (N >= 1)"),
     (["--tune", "2", "--tune_none_lr", "0"], "--tune_none_lr must be a learning rate > 0, got 0.0"),
     (["--tune", "2", "--tune_none_lr", "0.01", "--model.regularize", "early_stopping"],
      "--tune_none_lr needs a study that may switch dropout off (--model.regularize all or dropout), "
      "got --model.regularize early_stopping"),
     (["--tune", "2", "--tune_none_difference", "4"], "--tune_none_difference 4 needs --tune_none_lr"),
     (["--model.difference", "12"], "--model.difference 12 needs input windows longer than the lag: "
      "--data.input_length must be > 12, got 12")],
)  # fmt: skip
def test_bad_refit_epochs_or_tune_none_lr_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        RecipeCLI("demo", SequenceModel, SineDataModule, args=["--trainer.logger.save_dir", str(tmp_path), *TINY,
                                                               *extra])  # fmt: skip
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error
    if "data module" in message:
        assert "SineDataModule has none" in error


def test_a_study_starts_from_the_runs_values_then_turns_dropout_then_regularization_off() -> None:
    model = SequenceModel(hidden_size=8, dropout=0.2, recurrent_dropout=0.3, output_dropout=0.1, lr=0.01)
    hparams = dict(model.hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    budget = {"max_epochs": 2, "enable_progress_bar": False}
    _, study = tune(SequenceModel, hparams, data, budget, None, None, 5)
    first, second, third, *sampled = (t.params for t in study.trials)
    rates = {"dropout": 0.2, "recurrent_dropout": 0.3, "output_dropout": 0.1}
    assert first == {"lr": 0.01, **rates, "regularize": "all"}
    assert second == {"lr": 0.01, **dict.fromkeys(rates, 0.0), "regularize": "all"}
    # the bare network: no rate is sampled when regularization is off
    assert third == {"lr": 0.01, "regularize": "none"}
    assert all(trial not in (first, second, third) for trial in sampled)
    assert study.user_attrs["folds"] == 1  # the sine module cannot fold
    # the unregularized arm tunes the learning rate only, starting from the run's
    _, study = tune(SequenceModel, {**hparams, "regularize": "none"}, data, budget, None, None, 1)
    assert [t.params for t in study.trials] == [{"lr": 0.01}]


@pytest.mark.parametrize("restore", [True, False])
def test_a_trials_value_is_the_loss_of_the_model_the_arm_would_test(restore: bool) -> None:
    from regdrop.callbacks import EarlyStopping

    # a learning rate this high makes the validation loss jump, so its best check is not its last
    model = SequenceModel(hidden_size=8, lr=1.0, lr_schedule="none")
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    budget = {"max_epochs": 6, "enable_progress_bar": False}
    stopper = EarlyStopping("val_loss", patience=10, start_from_epoch=1, restore_best_weights=restore)
    _, study = tune(SequenceModel, {**dict(model.hparams), "regularize": "early_stopping"}, data, budget, stopper,
                    None, 1)  # fmt: skip
    trial = study.trials[0]
    losses = [trial.intermediate_values[epoch] for epoch in sorted(trial.intermediate_values)]
    assert len(losses) == 6 and min(losses[1:]) < losses[-1]
    # restoring: the best counted check's weights are tested; otherwise the last epoch's
    assert trial.value == pytest.approx(min(losses[1:]) if restore else losses[-1])


def test_the_unregularized_trial_trains_without_max_norm_or_early_stopping(monkeypatch: pytest.MonkeyPatch) -> None:
    from regdrop.callbacks import EarlyStopping, MaxNorm

    seen: list[tuple[str, list[str]]] = []
    fit = pl.Trainer.fit

    def spy(trainer: pl.Trainer, model: pl.LightningModule, **kwargs: Any) -> None:
        seen.append((model.arm, sorted(type(cb).__name__ for cb in trainer.callbacks
                                       if isinstance(cb, (EarlyStopping, MaxNorm)))))  # fmt: skip
        fit(trainer, model, **kwargs)

    monkeypatch.setattr(pl.Trainer, "fit", spy)
    hparams = dict(SequenceModel(hidden_size=8, dropout=0.2, lr=0.01).hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    stopper = EarlyStopping("val_loss", patience=5)
    tune(SequenceModel, hparams, data, {"max_epochs": 1, "enable_progress_bar": False}, stopper, 3.0, 3)
    assert seen == [("all", ["EarlyStopping", "MaxNorm"]), ("all", ["EarlyStopping", "MaxNorm"]), ("none", [])]


def test_a_study_that_switches_regularization_off_tests_the_bare_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regdrop.callbacks import EarlyStopping, MaxNorm

    why = "trial 2 regularized with a lower mean (0.4 against 0.5) but was better on 1 of 3 folds and worse on 2"
    study = SimpleNamespace(trials=[_trial(0.5)], user_attrs={"folds": 1, "chosen": 0, "passed_over": why})

    monkeypatch.setattr(common.tuning, "tune", lambda *args, **kwargs: ({"regularize": "none", "lr": 0.004}, study))
    cli = RecipeCLI("demo", SequenceModel, SineDataModule,
                    args=["--trainer.logger.save_dir", str(tmp_path), *TINY, "--tune", "3"])  # fmt: skip
    assert any(isinstance(cb, (EarlyStopping, MaxNorm)) for cb in cli.trainer.callbacks)
    summary = cli.fit_and_test()
    assert cli.model.arm == "none" and cli.model.hparams["lr"] == 0.004
    assert not any(isinstance(cb, (EarlyStopping, MaxNorm)) for cb in cli.trainer.callbacks)
    text = " ".join(summary.format().split())
    assert "regularize=none" in text and "cross-validation" not in text and "refit" not in text
    assert "the tested model is the unregularized network" in text
    assert f"({why}: the simpler model is kept)" in text  # why a lower-scoring regularized trial lost


@pytest.mark.slow
def test_after_cross_validation_the_final_model_is_refit_on_every_training_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vowels_gru
    from regdrop.callbacks import EarlyStopping, RegularizationMonitor

    study = SimpleNamespace(trials=[_trial(0.25)], user_attrs={"folds": 3, "refit_epochs": 3, "chosen": 0})
    monkeypatch.setattr(common.tuning, "tune", lambda *args, **kwargs: ({"regularize": "all", "lr": 0.004}, study))
    validated: list[int] = []
    monkeypatch.setattr(SequenceModel, "on_validation_epoch_end", lambda self: validated.append(1), raising=False)
    cli = vowels_gru.cli(["--trainer.logger.save_dir", str(tmp_path), "--data.name", "ArrowHead",
                          "--data.resample_to", "16", "--model.hidden_size", "4", "--model.fcn_channels", "4",
                          "--trainer.max_epochs", "20", "--trainer.enable_progress_bar", "false",
                          "--tune", "2"])  # fmt: skip
    assert len(cli.datamodule.split_dataset("train")) == 24
    summary = cli.fit_and_test()
    # all 36 training cases, the study's epochs, no validation (its cases are trained on), so no early stopping
    assert len(cli.datamodule.split_dataset("train")) == 36 and summary.epochs_trained == 3
    assert validated == [] and "val_loss" not in cli.trainer.callback_metrics
    assert not any(isinstance(cb, EarlyStopping) for cb in cli.trainer.callbacks)
    # nor a generalization gap to log (the monitor would warn that validation never ran)
    assert [cb.gap for cb in cli.trainer.callbacks if isinstance(cb, RegularizationMonitor)] == [False]
    assert cli.model.schedule_monitor == "train_loss" and cli.model.arm == "all"
    text = " ".join(summary.format().split())
    assert "each scored by 3-fold cross-validation" in text
    assert "refit on all 36 training cases for 3 epochs" in text
    saved = json.loads((Path(summary.log_dir) / "summary.json").read_text())
    assert saved["refit"] == {"epochs": 3, "cases": 36}
    # validation is back on after the fit: the trained model can still be scored on a loader
    scored = cli.trainer.validate(cli.model, dataloaders=cli.datamodule.val_dataloader(), verbose=False)
    assert scored[0]["val_loss"] >= 0

    assert cli._val_limit is None  # a second fit_and_test would not report a refit it did not make
    assert cli.effective_hparams()["regularization_monitor/gap"] == "false"  # as the HParams row shows it

    # the same refit without a study, as the evidence table's other seeds run it
    again = vowels_gru.main(["--trainer.logger.save_dir", str(tmp_path), "--data.name", "ArrowHead",
                             "--data.resample_to", "16", "--model.hidden_size", "4", "--model.fcn_channels", "4",
                             "--trainer.enable_progress_bar", "false", "--refit_epochs", "2"])  # fmt: skip
    assert again.refit == {"epochs": 2, "cases": 36} and again.epochs_trained == 2 and again.tuned is None
    assert "for 2 epochs (--refit_epochs)," in " ".join(again.format().split())
    # a time cap that ends the refit early is named
    again.epochs_trained = 1
    assert "stopped it after 1" in " ".join(again.format().split())


@pytest.mark.slow
def test_small_validation_splits_score_trials_by_cross_validation() -> None:
    from vowels_gru import UCRDataModule

    data = UCRDataModule("ArrowHead", resample_to=32)
    assert tuning_folds(data) == CV_FOLDS and tuning_folds(UCRDataModule("JapaneseVowels")) == 1

    hparams = dict(SequenceModel(task="classify", input_size=1, num_classes=3, hidden_size=4, dropout=0.1,
                                 lr=0.01).hparams)  # fmt: skip
    _, study = tune(SequenceModel, hparams, data, {"max_epochs": 1, "enable_progress_bar": False}, None, None, 2)
    assert study.user_attrs["folds"] == CV_FOLDS
    for trial in study.trials:
        folds = trial.user_attrs["fold_values"]
        assert len(folds) == CV_FOLDS and len(set(folds)) == CV_FOLDS  # three different models
        # a classifier's trials are scored by their validation error rate (the loss only breaks ties)
        assert all(0.0 <= value <= 1.0 + 10 * TIE_BREAK for value in folds)
        assert trial.value == pytest.approx(sum(folds) / CV_FOLDS)
        # each fold was scored at the last epoch (no early stopping): the refit trains as long
        assert trial.user_attrs["fold_epochs"] == [1] * CV_FOLDS
    chosen = study.trials[study.user_attrs["chosen"]]
    assert study.user_attrs["refit_epochs"] == refit_epochs(chosen.user_attrs["fold_epochs"]) == 1
    # a classifier's trials keep their error rate (the mean over the folds), for choose()
    assert all(0.0 <= trial.user_attrs["error"] <= 1.0 for trial in study.trials)


class _SeedRecorder(SequenceModel):
    """Records the seed each model of a study is built under."""

    seeds: ClassVar[list[int]] = []

    def __init__(self, **kwargs: Any) -> None:
        import torch

        _SeedRecorder.seeds.append(torch.initial_seed())
        super().__init__(**kwargs)


def test_each_fold_starts_from_its_own_seed_and_every_trial_shares_them() -> None:
    from vowels_gru import UCRDataModule

    hparams = dict(SequenceModel(task="classify", input_size=1, num_classes=3, hidden_size=4, lr=0.01).hparams)
    _SeedRecorder.seeds = []
    _, study = tune(_SeedRecorder, hparams, UCRDataModule("ArrowHead", resample_to=32),
                    {"max_epochs": 1, "enable_progress_bar": False}, None, None, 2, seed=5)  # fmt: skip
    assert study.user_attrs["folds"] == CV_FOLDS == 3
    # two trials (a study of the learning rate alone: no rate to switch off), each over folds 0, 1, 2
    assert _SeedRecorder.seeds == [5, 6, 7, 5, 6, 7]


@pytest.mark.parametrize(("pick", "refit"), [(0, False), (2, True)])
def test_a_chosen_trial_that_stops_early_is_not_refit(monkeypatch: pytest.MonkeyPatch, pick: int, refit: bool) -> None:
    # a fixed count of epochs would replace early stopping's per-seed stop (ACSF1: 76, 62, 43% at the folds' mean)
    from regdrop.callbacks import EarlyStopping
    from vowels_gru import UCRDataModule

    hparams = dict(SequenceModel(task="classify", input_size=1, num_classes=3, hidden_size=4, dropout=0.1,
                                 lr=0.01).hparams)  # fmt: skip
    monkeypatch.setattr(common.tuning, "choose", lambda trials: trials[pick])
    stopper = EarlyStopping("val_loss", patience=5)
    best, study = tune(SequenceModel, hparams, UCRDataModule("ArrowHead", resample_to=32),
                       {"max_epochs": 1, "enable_progress_bar": False}, stopper, 3.0, 3)  # fmt: skip
    assert study.user_attrs["folds"] == CV_FOLDS
    # trial 0: the run's values (arm "all": early stopping); trial 2: the bare network
    assert best["regularize"] == ("none" if refit else "all")
    assert ("refit_epochs" in study.user_attrs) is refit
    assert study.user_attrs.get("kept_early_stopping", False) is not refit  # the summary says so


@pytest.mark.slow
def test_short_series_are_scored_on_rolling_origins_and_not_refit() -> None:
    from airline_lstm import RealSeriesDataModule

    nile = RealSeriesDataModule("nile")  # 10 validation windows
    assert tuning_folds(nile) == CV_FOLDS
    # a series cut in time is always scored on rolling origins: its windows overlap and follow each other
    assert tuning_folds(RealSeriesDataModule("co2")) == CV_FOLDS  # 229 validation windows
    assert tuning_folds(RealSeriesDataModule("nile", split="series", val_fraction=0.4, test_fraction=0.4)) == 1
    hparams = dict(SequenceModel(task="forecast", input_size=1, horizon=1, hidden_size=4, dropout=0.1, lr=0.01).hparams)
    _, study = tune(SequenceModel, hparams, nile, {"max_epochs": 2, "enable_progress_bar": False}, None, None, 2)
    assert study.user_attrs["folds"] == CV_FOLDS
    assert "refit_epochs" not in study.user_attrs  # the final fit trains on the series' own split
    for trial in study.trials:
        folds = trial.user_attrs["fold_values"]
        assert len(set(folds)) == CV_FOLDS and trial.value == pytest.approx(sum(folds) / CV_FOLDS)


def test_refit_epochs_is_the_rounded_mean_and_at_least_one() -> None:
    assert refit_epochs([10, 11]) == 10 and refit_epochs([10, 11, 12]) == 11 and refit_epochs([0, 1]) == 1
    with pytest.raises(ValueError, match="fold_epochs must name at least one"):
        refit_epochs([])


def test_the_trials_a_study_starts_with_are_not_pruned_and_pruning_waits_half_the_budget() -> None:
    hparams = dict(SequenceModel(hidden_size=8, dropout=0.2, lr=0.01).hparams)
    data = SineDataModule(num_series=12, length=40, input_length=12, horizon=1)
    _, study = tune(SequenceModel, hparams, data, {"max_epochs": 8, "enable_progress_bar": False}, None, None, 4)
    # the median rule counts a trial only when the trials before it finished: the three starting ones always do
    assert study.pruner._n_startup_trials == 3 and study.pruner._n_warmup_steps == 4
    assert [t.state.name for t in study.trials[:3]] == ["COMPLETE"] * 3
    assert warmup_checks({"max_epochs": 100}) == 50 and warmup_checks({"max_epochs": None}) == 3
