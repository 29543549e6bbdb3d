"""RunSummary's text and JSON, and collect_summary after a real fit and test."""

from __future__ import annotations

import doctest
import json

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

import common.summary
from common.model import SequenceModel
from common.summary import RunSummary, collect_summary
from regdrop.callbacks import EarlyStopping
from sine_lstm import SineDataModule


def test_doctests() -> None:
    result = doctest.testmod(common.summary)
    assert result.attempted > 0, "no doctest ran: the examples are gone"
    assert result.failed == 0


def _summary(**changes: object) -> RunSummary:
    base = dict(
        recipe="sine_lstm",
        score_name="test RMSE",
        score=0.1234,
        yardstick_name="naive RMSE",
        yardstick=0.9,
        regularized=True,
        epochs_trained=20,
        restored_epoch=14,
        monitor="val_loss",
        best_score=0.0312,
        log_dir="lightning_logs/sine_lstm/version_3",
        logs_root="lightning_logs",
        figure="lightning_logs/sine_lstm/version_3/forecasts.png",
        metrics={"test_amplitude_ratio": 0.987},
    )
    base.update(changes)
    return RunSummary(**base)  # type: ignore[arg-type]


def test_format_says_score_yardstick_epoch_and_where_things_are() -> None:
    lines = _summary().format().splitlines()
    assert lines[0] == "sine_lstm, done"
    assert lines[1].split() == ["test", "RMSE", "0.1234", "(naive", "RMSE:", "0.9000)"]
    assert "forecast/truth RMS ratio 0.987" in lines[2]
    assert "restored from epoch 14 (best val_loss 0.0312), after 20 epochs" in lines[3]
    assert lines[4].split()[1:] == [
        "lightning_logs/sine_lstm/version_3",
        "(view:",
        "tensorboard",
        "--logdir",
        "lightning_logs)",
    ]
    assert lines[5].split() == ["forecast", "plot", "lightning_logs/sine_lstm/version_3/forecasts.png"]


def test_format_without_restoring() -> None:
    text = _summary(regularized=False, restored_epoch=None, monitor=None, best_score=None, figure=None).format()
    assert "of the last epoch, 20 trained (regularization off: no dropout, max-norm or early stopping)" in text
    assert "forecast plot" not in text
    text = _summary(restored_epoch=None).format()
    assert "of the last epoch, 20 trained (nothing restored)" in text


def test_save_writes_json(tmp_path) -> None:
    summary = _summary()
    summary.save(tmp_path / "s.json")
    assert RunSummary(**json.loads((tmp_path / "s.json").read_text())) == summary


def test_collect_after_fit_and_test(tmp_path) -> None:
    torch.manual_seed(0)
    dm = SineDataModule(num_series=10, length=40, input_length=12, horizon=4, stride=4)
    stopper = EarlyStopping("val_loss", patience=5, restore_best_weights=True)
    trainer = pl.Trainer(
        logger=TensorBoardLogger(tmp_path, name="r"),
        callbacks=[stopper],
        max_epochs=3,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    model = SequenceModel(horizon=4, hidden_size=8)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    summary = collect_summary("r", trainer, dm, task="forecast", regularized=True, epochs_trained=3)
    assert summary.score == pytest.approx(float(trainer.callback_metrics["test_rmse"]))
    assert summary.yardstick == pytest.approx(dm.yardstick()[1])
    assert summary.restored_epoch == stopper.restored_epoch and summary.restored_epoch in (0, 1, 2)
    assert summary.best_score == pytest.approx(float(stopper.best_score))
    assert summary.log_dir == str(tmp_path / "r" / "version_0") and summary.logs_root == str(tmp_path)
    assert set(summary.metrics) == {"test_loss", "test_rmse", "test_mae", "test_amplitude_ratio"}
    assert summary.test_cases == len(dm.split_dataset("test"))  # the windows the score is over
    assert f"on {summary.test_cases} test windows" in summary.format().splitlines()[1]
    # the sine waves' module takes no --data.seasonal_period: the summary does not offer it
    assert not summary.seasonal_option and "no seasonal baselines" not in summary.format()
    # the margin test compares the tested model's own squared errors, window by window, with the naive forecast's:
    # the model's test MSE minus the difference is the naive forecast's MSE
    diff, error = summary.margins[summary.yardstick_name]
    assert summary.score**2 - diff == pytest.approx(summary.yardstick**2, rel=1e-4) and error > 0
    assert len(model.test_case_losses) == summary.test_cases


def test_margin_is_the_diebold_mariano_difference_and_its_standard_error() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = torch.Generator().manual_seed(0)
    model = torch.rand(50, generator=rng).double().numpy()
    baseline = (torch.rand(50, generator=rng) + 0.1).double().numpy()
    diff, error = common.summary.margin(model, baseline)
    assert diff == pytest.approx(model.mean() - baseline.mean())
    # one-step forecasts: the paired t statistic of the squared errors is the Diebold-Mariano one
    assert diff / error == pytest.approx(stats.ttest_rel(model, baseline).statistic)
    # overlapping windows share errors: a slowly drifting difference has a larger standard error with HAC lags
    drift = torch.sin(torch.arange(50.0) / 4).double().numpy()
    assert (
        common.summary.margin(baseline + drift, baseline, lags=3)[1]
        > common.summary.margin(baseline + drift, baseline)[1]
    )
    assert common.summary.margin(model[:1], baseline[:1]) is None  # one window: no standard error
    assert common.summary.margin(model, baseline[:-1]) is None  # other windows: nothing to compare


def test_overlapping_windows_get_newey_west_lags() -> None:
    from types import SimpleNamespace

    losses = torch.sin(torch.arange(60.0) / 5).double().numpy() + 2.0
    naive = losses * 0 + 2.1  # the differences drift slowly: their lags matter

    class Windows:  # a horizon of 4 steps, a window every step: each error shares 3 steps with the next
        horizon, stride = 4, 1

        def baseline_case_losses(self) -> dict:
            return {"naive": naive}

    trainer = SimpleNamespace(lightning_module=SimpleNamespace(test_case_losses=losses))
    margins = common.summary._margins(trainer, Windows())  # type: ignore[arg-type]
    assert margins["naive"] == pytest.approx(list(common.summary.margin(losses, naive, lags=3)))
    Windows.stride = 4  # windows that do not overlap: no lags
    margins = common.summary._margins(trainer, Windows())  # type: ignore[arg-type]
    assert margins["naive"] == pytest.approx(list(common.summary.margin(losses, naive)))
    trainer.lightning_module = SimpleNamespace()  # a model that kept no losses (a recipe's own): no margins
    assert common.summary._margins(trainer, Windows()) == {}  # type: ignore[arg-type]


def test_a_forecast_the_test_cannot_tell_from_a_baseline_is_said_so() -> None:
    naive, arima = "naive last-value forecast RMSE", "ARIMA RMSE (ARIMA(1,1,1))"

    def verdict(margins: dict[str, list[float]]) -> str:
        summary = _summary(score=135.67, yardstick_name=naive, yardstick=146.83, test_cases=33,
                           baselines={naive: 146.83, arima: 121.59}, margins=margins)  # fmt: skip
        return " ".join(" ".join(summary.verdict()).split())

    # Nile's default run: 3152 lower MSE than the naive forecast, standard error 4189; 3623 above ARIMA's, 2836
    nile = verdict({naive: [-3152.0, 4189.0], arima: [3623.0, 2836.0]})
    assert (
        "WARNING: the model beats naive last-value forecast RMSE (146.8300) by less than one standard error "
        "over its 33 test windows: its mean squared error is 3152 lower, with a standard error of 4189" in nile
    )
    assert "The test cannot tell" not in nile  # ARIMA wins by more than one standard error
    clear = verdict({naive: [-3152.0, 1000.0], arima: [3623.0, 4000.0]})
    assert "WARNING" not in clear
    assert (
        f"The test cannot tell the model from {arima}: their mean squared errors differ by less than one "
        "standard error of the difference over the 33 test windows" in clear
    )
    assert "WARNING" not in verdict({})  # no per-window errors (a summary from before, a data module without them)


def test_a_classifier_the_test_cannot_tell_from_1nn_dtw_is_said_so() -> None:
    majority, dtw = "majority-class accuracy", "1-NN DTW accuracy"

    def verdict(margins: dict[str, list[float]]) -> str:
        summary = _summary(score_name="test accuracy", score=0.9543, yardstick_name=majority, yardstick=0.4985,
                           test_cases=1029, baselines={majority: 0.4985, dtw: 0.9504}, margins=margins)  # fmt: skip
        return " ".join(" ".join(summary.verdict()).split())

    # ItalyPowerDemand: 4 of 1029 cases more than 1-NN DTW, the paired difference's standard error 6 cases
    close = verdict({majority: [-0.4558, 0.0165], dtw: [-0.0039, 0.0058]})
    assert close.startswith("beats every baseline (majority-class accuracy, 1-NN DTW accuracy) ")
    assert (
        f"The test cannot tell the model from {dtw}: their accuracies differ by less than one standard error of "
        "the difference over the 1029 test cases (a paired comparison, case by case)" in close
    )
    assert "WARNING" not in close  # the majority class is beaten by 28 standard errors
    assert "cannot tell" not in verdict({majority: [-0.4558, 0.0165], dtw: [-0.0039, 0.0020]})


def test_collect_needs_the_score() -> None:
    trainer = pl.Trainer(logger=False, enable_progress_bar=False)
    with pytest.raises(KeyError, match=r"the test logged no 'test_acc'; it logged \[\]"):
        collect_summary("r", trainer, SineDataModule(), task="classify", regularized=True, epochs_trained=0)


def test_verdict_warns_when_the_trivial_baseline_is_not_beaten() -> None:
    beaten = _summary(score=1.2, baselines={"naive RMSE": 0.9, "ARIMA RMSE": 0.5})
    text = " ".join(beaten.format().split())
    assert "WARNING: the model does not beat the trivial baseline (naive RMSE 0.9000)" in text
    assert "--model.regularize early_stopping" in text  # what to try
    # a forecast: the last value may be the best forecast there is, and forecasting the changes is named
    assert "(a random walk) the last value is the best forecast there is" in text
    assert "forecasting the changes (--model.difference 1)" in text and "train longer" in text
    good = _summary(score=0.4, baselines={"naive RMSE": 0.9, "ARIMA RMSE": 0.5}).format()
    assert "WARNING" not in good and "beats every baseline (naive RMSE, ARIMA RMSE)" in good
    middle = _summary(score=0.7, baselines={"naive RMSE": 0.9, "ARIMA RMSE": 0.5}).format()
    assert "beats naive RMSE; does not beat ARIMA RMSE" in middle and "WARNING" not in middle
    # accuracy: higher is better, and a tie with the majority class is not a win
    tie = _summary(score_name="test accuracy", score=0.5, yardstick_name="majority", yardstick=0.5)
    assert tie.verdict()[0].startswith("WARNING: the model does not beat the trivial baseline (majority 0.5000)")


def test_a_forecast_that_loses_to_arima_is_told_the_seasonal_difference_of_its_data() -> None:
    lost = {"naive RMSE": 0.9, "ARIMA RMSE": 0.5}
    seasonal = " ".join(_summary(score=0.7, baselines=lost, seasonal_period=12).format().split())
    assert "forecasting the seasonal differences (--model.difference 12, with --data.input_length 24 or more)" in (
        seasonal
    )
    # no period known: the advice says how to give one
    unknown = " ".join(_summary(score=0.7, baselines=lost).format().split())
    assert "if the series has a season of P steps: --data.seasonal_period P --model.difference P" in unknown
    # a run that already differences is not told to
    done = _summary(score=0.7, baselines=lost, seasonal_period=12, in_use=["difference"]).format()
    assert "--model.difference" not in done


def test_verdict_warns_when_the_first_check_was_restored() -> None:
    first = _summary(restored_epoch=0, epochs_trained=30, first_check_epoch=0).format()
    assert "WARNING: early stopping restored its first check (epoch 0)" in first
    assert "--early_stopping.start_from_epoch" in first
    late_start = _summary(restored_epoch=5, epochs_trained=30, first_check_epoch=5).format()
    assert "restored its first check (epoch 5)" in late_start
    assert "first check" not in _summary(restored_epoch=6, epochs_trained=30, first_check_epoch=5).format()
    # with a single check there was nothing later to prefer
    assert "first check" not in _summary(restored_epoch=0, epochs_trained=1, first_check_epoch=0).format()


def test_a_run_stopped_without_restoring_says_so_and_warns_when_it_stopped_at_once() -> None:
    stopped = _summary(restored_epoch=None, stopped_early=True, best_epoch=12, epochs_trained=38, first_check_epoch=5)
    text = stopped.format()
    assert "early stopping stopped after 38 epochs (best val_loss at epoch 12; weights not restored)" in text
    assert "WARNING" not in text
    # no check after the first improved: the run stopped as soon as patience allowed
    at_once = _summary(restored_epoch=None, stopped_early=True, best_epoch=5, epochs_trained=21, first_check_epoch=5)
    assert "WARNING: early stopping stopped after 21 epochs because no check after its first (epoch 5)" in (
        at_once.format()
    )
    # a run that reached its epoch budget was not stopped: nothing to warn about
    ran_out = _summary(restored_epoch=None, stopped_early=False, best_epoch=5, epochs_trained=100, first_check_epoch=5)
    assert "WARNING" not in ran_out.format() and "(nothing restored)" in ran_out.format()


def test_collect_reads_a_stop_without_restoring(tmp_path) -> None:
    torch.manual_seed(0)
    dm = SineDataModule(num_series=10, length=40, input_length=12, horizon=4, stride=4)
    # no check can improve by min_delta after the first counted one (epoch 1): the run stops at epoch 2
    stopper = EarlyStopping("val_loss", patience=0, min_delta=1e9, start_from_epoch=1)
    trainer = pl.Trainer(
        logger=False,
        callbacks=[stopper],
        max_epochs=6,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(SequenceModel(horizon=4, hidden_size=8), datamodule=dm)
    trainer.test(trainer.lightning_module, datamodule=dm, verbose=False)
    summary = collect_summary("r", trainer, dm, task="forecast", regularized=True, epochs_trained=3)
    assert summary.restored_epoch is None and summary.stopped_early and summary.best_epoch == 1
    assert "WARNING: early stopping stopped after 3 epochs" in summary.format()


def test_a_tuned_run_says_when_its_chosen_trial_kept_early_stopping_instead_of_a_refit() -> None:
    tuned = {"best": {"regularize": "all", "lr": 0.003}, "trials": 4, "pruned": 0, "best_score": 0.44, "folds": 3}
    kept = " ".join(_summary(tuned={**tuned, "kept_early_stopping": True}).format().split())
    assert "the chosen trial stops early: no refit, it trained on the split with early stopping" in kept
    assert "no refit" not in " ".join(_summary(tuned=tuned).format().split())


def test_verdict_says_when_the_last_epoch_was_still_the_best() -> None:
    # the budget ran out while the watched loss still fell: the run says so and names the option
    still = " ".join(_summary(restored_epoch=59, best_epoch=59, epochs_trained=60, monitor="val_loss").format().split())
    assert "Still improving: the last epoch (59) gave the best val_loss yet" in still
    assert "--trainer.max_epochs" in still
    # the best check earlier, a stop by early stopping, a refit (no validation) or no early stopping: nothing said
    for quiet in (
        _summary(restored_epoch=40, best_epoch=40, epochs_trained=60, monitor="val_loss"),
        _summary(restored_epoch=None, stopped_early=True, best_epoch=59, epochs_trained=60, monitor="val_loss"),
        _summary(best_epoch=59, epochs_trained=60, monitor="val_loss", refit={"epochs": 60, "cases": 10}),
        _summary(epochs_trained=60, monitor=None),
    ):
        assert "Still improving" not in quiet.format()


def test_advice_leaves_out_more_epochs_where_early_stopping_ended_the_run() -> None:
    lost = {"naive RMSE": 0.9, "ARIMA RMSE": 0.5}
    ran_out = " ".join(_summary(score=1.2, baselines=lost, restored_epoch=None).format().split())
    stopped = " ".join(_summary(score=1.2, baselines=lost, stopped_early=True, best_epoch=14).format().split())
    assert "train longer (--trainer.max_epochs)" in ran_out and "train longer" not in stopped
    assert "another learning rate (--model.lr)" in stopped  # the rest of the advice stays
    beaten_by_arima = _summary(score=0.7, baselines=lost, stopped_early=True, best_epoch=14, in_use=["difference"])
    assert "more epochs" not in " ".join(beaten_by_arima.format().split())
    assert "more epochs" in " ".join(_summary(score=0.7, baselines=lost, in_use=["difference"]).format().split())
    # a run that already forecasts changes is not told to
    assert "--model.difference 1" not in _summary(score=1.2, baselines=lost, in_use=["difference"]).format()


def test_a_first_check_kept_is_the_cause_named_when_the_trivial_baseline_wins() -> None:
    text = " ".join(_summary(score=1.2, restored_epoch=0, epochs_trained=30, first_check_epoch=0).format().split())
    assert "Early stopping kept a model that has hardly trained (below)" in text
    # one list of things to try, the first-check warning's, not a second one that names other arms
    assert "--model.regularize early_stopping" not in text and "--model.regularize dropout" in text


def test_a_tie_with_a_baseline_is_a_match_and_a_perfect_score_has_nothing_to_try() -> None:
    dtw = {"majority-class accuracy": 0.5, "1-NN DTW accuracy": 1.0}
    perfect = _summary(score_name="test accuracy", score=1.0, yardstick_name="majority-class accuracy",
                       yardstick=0.5, baselines=dtw).verdict()[0]  # fmt: skip
    assert perfect == "beats majority-class accuracy; matches 1-NN DTW accuracy (1.0000)"
    tie = {"majority-class accuracy": 0.5, "1-NN DTW accuracy": 0.9}
    matched = _summary(score_name="test accuracy", score=0.9, yardstick_name="majority-class accuracy",
                       yardstick=0.5, baselines=tie).verdict()[0]  # fmt: skip
    assert matched.startswith("beats majority-class accuracy; matches 1-NN DTW accuracy (0.9000). Try ")


def test_a_classifier_that_beats_the_majority_class_by_less_than_a_standard_error_is_warned() -> None:
    def verdict(score: float, cases: int | None) -> str:
        majority = {"majority-class accuracy": 12 / 21}
        summary = _summary(score_name="test accuracy", score=score, yardstick_name="majority-class accuracy",
                           yardstick=12 / 21, baselines=majority, test_cases=cases)  # fmt: skip
        return " ".join(" ".join(summary.verdict()).split())

    # 13 of 21 against 12 of 21: one case, while the accuracy's standard error is sqrt(.619 * .381 / 21) = 0.106
    close = verdict(13 / 21, 21)
    assert "beats every baseline (majority-class accuracy)" in close
    assert "WARNING: the model beats majority-class accuracy (0.5714) by only 1 of 21 test cases" in close
    assert "standard error of its accuracy (0.1060)" in close
    assert "WARNING" not in verdict(18 / 21, 21)  # six cases, about three standard errors: a clear win
    assert "WARNING" not in verdict(13 / 21, None)  # the test's size unknown: nothing to say


def test_data_notes_are_printed_under_the_score() -> None:
    note = "3 of 100 values (3.0%) were gaps, filled by linear interpolation (the longest: 2 steps)"
    lines = _summary(data_notes=[note]).format().splitlines()
    assert lines[2].split() == ["data", *note.split()]


def test_a_forecast_without_a_season_says_how_to_get_the_seasonal_baselines() -> None:
    note = "no seasonal baselines (the data name no season): --data.seasonal_period P adds"
    assert note in " ".join(_summary(seasonal_option=True).format().split())
    assert "no seasonal baselines" not in _summary(seasonal_option=True, seasonal_period=12).format()
    assert "no seasonal baselines" not in _summary().format()  # a data module without the option


def test_a_language_model_on_a_text_of_ones_own_is_not_told_to_read_more_of_it() -> None:
    lm = dict(score_name="test perplexity", score=90.0, yardstick_name="unigram perplexity", yardstick=400.0,
              baselines={"unigram perplexity": 400.0, "Kneser-Ney bigram perplexity": 80.0})  # fmt: skip
    assert "--data.text_fraction" in " ".join(_summary(**lm).format().split())
    own = " ".join(_summary(**lm, in_use=["own_text"]).format().split())
    assert "--data.text_fraction" not in own and "a bigger model (--model.hidden_size" in own


def test_advice_after_a_study_or_without_regularization_leaves_out_what_the_run_already_had() -> None:
    lost = {"naive RMSE": 0.9, "ARIMA RMSE": 0.5}
    plain = " ".join(_summary(score=1.2, baselines=lost).format().split())
    assert "another learning rate (--model.lr)" in plain and "less regularization" in plain
    # a study chose the learning rate, and the unregularized network: neither is offered again
    tuned = {"best": {"regularize": "none", "lr": 0.0004}, "trials": 8, "pruned": 0, "best_score": 1.2, "folds": 3}
    bare = _summary(score=1.2, baselines=lost, regularized=False, restored_epoch=None, tuned=tuned, in_use=["tune"])
    text = " ".join(bare.format().split())
    assert "--model.lr" not in text.split("verdict")[1] and "less regularization" not in text
    assert "more trials (a larger --tune N)" in text
    # a study that chose whether to forecast the seasonal differences is not told to try them
    lost_to_arima = dict(score=0.7, baselines=lost, seasonal_period=7, in_use=["tune"])
    assert "--model.difference 7" in " ".join(_summary(**lost_to_arima, tuned=tuned).format().split())
    chose = {**tuned, "best": {"regularize": "all", "lr": 0.003, "difference": 0}}
    assert "--model.difference" not in _summary(**lost_to_arima, tuned=chose).format()


def test_a_skipped_baseline_is_named_with_its_reason() -> None:
    skipped = "1-NN DTW baseline skipped: 9,000 training x 8,000 test cases of 96 steps would take about 3.0 hours"
    text = " ".join(_summary(baseline_notes=[skipped]).format().split())
    assert f"baselines {skipped}" in text


def test_the_load_hint_names_the_class_and_a_precision_other_than_float32() -> None:
    ckpt = "lightning_logs/r/restored.ckpt"
    plain = _summary(model_file=ckpt, model_class="common.model.SequenceModel", precision="32-true").format()
    assert f"{ckpt}   (load: common.model.SequenceModel.load_from_checkpoint(path))" in plain
    bf16 = _summary(model_file=ckpt, model_class="sonar_mlp.SonarMLP", precision="bf16-mixed").format()
    assert "(load: sonar_mlp.SonarMLP.load_from_checkpoint(path); it was tested in bf16-mixed)" in bf16


def test_the_score_row_says_how_many_test_cases_it_is_over() -> None:
    assert _summary(test_cases=14).format().splitlines()[1].split()[2:6] == ["0.1234", "on", "14", "test"]
    assert "on 14 test windows   (naive RMSE: 0.9000)" in _summary(test_cases=14).format()
    accuracy = _summary(score_name="test accuracy", score=0.619, test_cases=21).format().splitlines()[1]
    assert "0.6190 on 21 test cases" in accuracy
