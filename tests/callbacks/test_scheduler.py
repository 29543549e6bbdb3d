"""Tests of regdrop.callbacks.scheduler: DropoutScheduler and scheduled_rate."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from regdrop.callbacks import DropoutScheduler, scheduled_rate
from regdrop.nn import dropout_rates
from tests.callbacks._tiny import DropoutRegressor, RateRecorder
from tests.callbacks.models import RandomRegressionData, tiny_trainer

RATES = {"rnn.dropout": 0.3, "drop.p": 0.2, "head_drop.p": 0.2}


def _data() -> RandomRegressionData:
    return RandomRegressionData(seq_len=5, n_train=32, n_val=16, batch_size=8)


def _fit(tmp_path: Path, scheduler: DropoutScheduler, model: DropoutRegressor | None = None, **trainer_kwargs):
    recorder = RateRecorder()
    model = model or DropoutRegressor()
    trainer = tiny_trainer(tmp_path, callbacks=[scheduler, recorder], **trainer_kwargs)
    trainer.fit(model, datamodule=_data())
    return trainer, model, recorder


# ---------------------------------------------------------------- scheduled_rate
def test_scheduled_rate_linear_and_cosine() -> None:
    assert [scheduled_rate("linear", t, 4, 0.0, 0.4) for t in range(7)] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4]
    )
    expected = [0.1 + 0.3 * (1 - math.cos(math.pi * min(t / 3, 1))) / 2 for t in range(5)]
    assert [scheduled_rate("cosine", t, 3, 0.1, 0.4) for t in range(5)] == pytest.approx(expected)
    assert scheduled_rate("linear", 0, 0, 0.0, 0.5) == 0.5  # no warm-up: the target at once
    assert scheduled_rate("cosine", 2, 4, 0.6, 0.2) == pytest.approx(0.4)  # decreasing works too
    with pytest.raises(ValueError, match=r"schedule must be one of \('linear', 'cosine'\), got 'exp'"):
        scheduled_rate("exp", 1, 2, 0.0, 1.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- in a Trainer
def test_epoch_schedule_follows_linear_warmup(tmp_path: Path) -> None:
    trainer, model, recorder = _fit(tmp_path, DropoutScheduler("linear", warmup=2), max_epochs=4)
    for name, target in RATES.items():
        assert recorder.per_epoch(name) == pytest.approx([0.0, target / 2, target, target])
    # constant within an epoch
    for epoch, _, rates in recorder.by_step:
        assert rates["drop.p"] == recorder.per_epoch("drop.p")[epoch]
    assert dropout_rates(model) == pytest.approx(RATES)
    assert trainer.callback_metrics["dropout/rnn.dropout"].item() == pytest.approx(0.3)


def test_step_schedule_follows_cosine_warmup(tmp_path: Path) -> None:
    _, _, recorder = _fit(tmp_path, DropoutScheduler("cosine", warmup=5, interval="step"), max_epochs=2)
    assert [step for _, step, _ in recorder.by_step] == list(range(8))
    for _, step, rates in recorder.by_step:
        assert rates["rnn.dropout"] == pytest.approx(0.3 * (1 - math.cos(math.pi * min(step / 5, 1))) / 2)


def test_step_schedule_counts_optimizer_steps(tmp_path: Path) -> None:
    _, _, recorder = _fit(
        tmp_path, DropoutScheduler("linear", warmup=4, interval="step"), max_epochs=1, accumulate_grad_batches=2
    )
    assert [step for _, step, _ in recorder.by_step] == [0, 0, 1, 1]
    assert [rates["drop.p"] for _, _, rates in recorder.by_step] == pytest.approx([0.0, 0.0, 0.05, 0.05])


def test_callable_schedule(tmp_path: Path) -> None:
    calls: list[tuple[int, float]] = []

    def decay(epoch: int, target: float) -> float:
        calls.append((epoch, target))
        return target / (epoch + 1)

    _, _, recorder = _fit(tmp_path, DropoutScheduler(decay), max_epochs=3)
    assert recorder.per_epoch("rnn.dropout") == pytest.approx([0.3, 0.15, 0.1])
    assert (2, 0.2) in calls


def test_float_target_and_start_mapping(tmp_path: Path) -> None:
    model = DropoutRegressor(p=0.0)  # drop.p and head_drop.p switched off
    scheduler = DropoutScheduler("linear", warmup=2, start={"head_drop.p": 0.4}, target=0.5)
    _, model, recorder = _fit(tmp_path, scheduler, model=model, max_epochs=3)
    assert scheduler.targets == {"rnn.dropout": 0.5, "head_drop.p": 0.5}
    assert recorder.per_epoch("rnn.dropout") == pytest.approx([0.0, 0.25, 0.5])
    assert recorder.per_epoch("head_drop.p") == pytest.approx([0.4, 0.45, 0.5])  # named in start: scheduled
    assert recorder.per_epoch("drop.p") == [0.0, 0.0, 0.0]  # off at construction, not named: stays off


def test_target_mapping(tmp_path: Path) -> None:
    scheduler = DropoutScheduler("linear", warmup=1, target={"drop.p": 0.6})
    _, model, recorder = _fit(tmp_path, scheduler, max_epochs=2)
    assert scheduler.targets == {"rnn.dropout": 0.3, "drop.p": 0.6, "head_drop.p": 0.2}
    assert recorder.per_epoch("drop.p") == pytest.approx([0.0, 0.6])
    assert model.drop.p == pytest.approx(0.6)


def test_rates_are_logged(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    trainer, _, _ = _fit(tmp_path, DropoutScheduler("linear", warmup=2), max_epochs=2, logger=CSVLogger(tmp_path))
    import csv

    with open(Path(trainer.logger.log_dir) / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("dropout/drop.p")]
    assert [float(r["dropout/drop.p"]) for r in rows] == pytest.approx([0.0, 0.1])
    assert [int(r["epoch"]) for r in rows] == [0, 1]


def test_log_rates_false_logs_nothing(tmp_path: Path) -> None:
    trainer, _, _ = _fit(tmp_path, DropoutScheduler("linear", warmup=2, log_rates=False), max_epochs=1)
    assert not [key for key in trainer.callback_metrics if key.startswith("dropout/")]


def test_resume_continues_the_schedule_exactly(tmp_path: Path) -> None:
    _, _, full = _fit(tmp_path / "full", DropoutScheduler("linear", warmup=3), max_epochs=4)

    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    first = DropoutScheduler("linear", warmup=3)
    trainer = tiny_trainer(tmp_path / "a", callbacks=[first, checkpoint], max_epochs=2, enable_checkpointing=True)
    trainer.fit(DropoutRegressor(), datamodule=_data())
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    assert state[first.state_key]["targets"] == pytest.approx(RATES)

    # A model built with other rates: the checkpoint's targets win, so the schedule goes on as before.
    resumed = DropoutScheduler("linear", warmup=3)
    recorder = RateRecorder()
    trainer = tiny_trainer(tmp_path / "b", callbacks=[resumed, recorder], max_epochs=4)
    trainer.fit(DropoutRegressor(rnn_dropout=0.9, p=0.9), datamodule=_data(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    for name in RATES:
        assert recorder.per_epoch(name) == pytest.approx(full.per_epoch(name)[2:])
    assert resumed.targets == pytest.approx(RATES)


def test_state_dict_round_trip_and_pickle() -> None:
    scheduler = DropoutScheduler("cosine", warmup=3, interval="step", start=0.1)
    assert scheduler.state_dict() == {"targets": None, "starts": None}
    scheduler.read_targets(nn.Sequential(nn.Dropout(0.4), nn.Dropout(0.0)))
    state = scheduler.state_dict()
    assert state == {"targets": {"0.p": 0.4}, "starts": {"0.p": 0.1}}
    other = DropoutScheduler("cosine", warmup=3, interval="step", start=0.1)
    other.load_state_dict(state)
    assert [other.rates_at(t) for t in range(5)] == [scheduler.rates_at(t) for t in range(5)]
    clone = pickle.loads(pickle.dumps(scheduler))
    assert clone.rates_at(1) == scheduler.rates_at(1)
    assert repr(clone) == "DropoutScheduler(schedule='cosine', warmup=3, interval='step', start=0.1, target=None)"


def test_rates_at_before_targets() -> None:
    with pytest.raises(RuntimeError, match=r"targets are read when fitting starts; call read_targets\(model\) first"):
        DropoutScheduler("linear", warmup=2).rates_at(0)


# ---------------------------------------------------------------- errors and warnings
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"schedule": "exp", "warmup": 2}, ValueError, r"must be 'linear', 'cosine' or a callable .*got 'exp'"),
        ({"schedule": 3, "warmup": 2}, TypeError, r"schedule must be 'linear', 'cosine' or a callable .*got int 3"),
        ({"schedule": "linear"}, ValueError, r"warmup is required with schedule='linear'.*\(warmup=5\)"),
        ({"warmup": -1}, ValueError, r"warmup must be an int >= 0, got -1"),
        ({"warmup": 2.5}, TypeError, r"warmup must be an int >= 0, got float 2.5"),
        ({"warmup": 2, "interval": "batch"}, ValueError, r"interval must be 'epoch' or 'step', got 'batch'"),
        ({"warmup": 2, "start": 1.5}, ValueError, r"start must be in \[0, 1\], got 1.5"),
        ({"warmup": 2, "target": {"drop.p": -0.5}}, ValueError, r"target\['drop.p'\] must be in \[0, 1\], got -0.5"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        DropoutScheduler(**kwargs)


def test_unknown_rate_name_lists_the_rates(tmp_path: Path) -> None:
    scheduler = DropoutScheduler("linear", warmup=2, target={"lstm.dropout": 0.2})
    with pytest.raises(ValueError, match=r"target names 'lstm.dropout', which the model does not have; its rates are"):
        _fit(tmp_path, scheduler, max_epochs=1)


def test_callable_returning_bad_rate_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"rnn.dropout must be in \[0, 1\], got 1.3"):
        _fit(tmp_path, DropoutScheduler(lambda t, target: target + 1.0), max_epochs=1)


def test_settings_without_effect_warn() -> None:
    with pytest.warns(UserWarning, match="warmup has no effect with a callable schedule"):
        DropoutScheduler(lambda t, target: target, warmup=3)
    with pytest.warns(UserWarning, match="start has no effect with a callable schedule"):
        DropoutScheduler(lambda t, target: target, start=0.2)


def test_model_without_rates_warns() -> None:
    with pytest.warns(UserWarning, match="has no dropout rate > 0 to schedule"):
        assert DropoutScheduler("linear", warmup=2).read_targets(nn.Linear(2, 2)) == {}


def test_schedules_the_rates_of_regdrop_lstm(tmp_path: Path) -> None:
    import regdrop

    model = DropoutRegressor(rnn_factory=regdrop.nn.LSTM, recurrent_dropout=0.4, weight_dropout=0.2)
    scheduler = DropoutScheduler("linear", warmup=2)
    _, model, recorder = _fit(tmp_path, scheduler, model=model, max_epochs=3)
    assert set(scheduler.targets or {}) == {
        "rnn.dropout",
        "rnn.recurrent_dropout",
        "rnn.weight_dropout",
        "drop.p",
        "head_drop.p",
    }
    assert recorder.per_epoch("rnn.recurrent_dropout") == pytest.approx([0.0, 0.2, 0.4])
    assert recorder.per_epoch("rnn.weight_dropout") == pytest.approx([0.0, 0.1, 0.2])
    assert recorder.per_epoch("rnn.zoneout") == [0.0, 0.0, 0.0]  # off at construction: stays off
    assert model.rnn.recurrent_dropout == pytest.approx(0.4)


def test_resume_from_a_mid_epoch_checkpoint_uses_that_epochs_rates(tmp_path: Path) -> None:
    # 4 batches per epoch; the checkpoint at global step 10 is taken in epoch 2, after its second batch
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1, filename="{step}")
    first = DropoutScheduler("linear", warmup=4)
    tiny_trainer(tmp_path / "a", callbacks=[first, checkpoint], max_epochs=3, enable_checkpointing=True).fit(
        DropoutRegressor(), datamodule=_data()
    )
    resumed = DropoutScheduler("linear", warmup=4)
    recorder = RateRecorder()
    trainer = tiny_trainer(tmp_path / "b", callbacks=[resumed, recorder], max_epochs=4)
    trainer.fit(DropoutRegressor(), datamodule=_data(), ckpt_path=tmp_path / "ckpt" / "step=10.ckpt")
    assert [(epoch, step) for epoch, step, _ in recorder.by_step][:3] == [(2, 10), (2, 11), (3, 12)]
    for epoch, _, rates in recorder.by_step:
        assert rates == pytest.approx(resumed.rates_at(epoch)), epoch
    assert recorder.by_step[0][2]["rnn.dropout"] == pytest.approx(0.15)  # half way through the warm-up
