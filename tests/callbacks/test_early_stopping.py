"""Tests of regdrop.callbacks.EarlyStopping: Lightning's behaviour kept, Keras's arguments added."""

from __future__ import annotations

import copy
import inspect
import logging
import math
import pickle
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from regdrop.callbacks import EarlyStopping
from tests.callbacks.models import RandomRegressionData, TinyRegressor, tiny_trainer

REPO_ROOT = Path(__file__).resolve().parents[2]


class Scripted(TinyRegressor):
    """Trains for real but also logs ``score = scores[epoch]``, so each test decides which epoch is best."""

    def __init__(self, scores: list[float], fail_at_epoch: int | None = None, interrupt: bool = False) -> None:
        super().__init__()
        self.scores = scores
        self.fail_at_epoch = fail_at_epoch
        self.interrupt = interrupt

    def training_step(self, batch, batch_idx):
        if self.current_epoch == self.fail_at_epoch and batch_idx == 1:
            raise KeyboardInterrupt if self.interrupt else RuntimeError("failure in training_step")
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        self.log("score", torch.tensor(self.scores[self.current_epoch]), on_epoch=True)
        # the same value under a second name, so a Lightning EarlyStopping can watch it in the same trainer
        self.log("score_copy", torch.tensor(self.scores[self.current_epoch]), on_epoch=True)


def _fit(tmp_path, scores, callbacks, *, max_epochs=None, ckpt_path=None, model=None, checkpoints=True, **kwargs):
    """Fit a Scripted model; ``checkpoints`` adds a ModelCheckpoint that keeps every epoch as ``epoch=N.ckpt``."""
    model = model or Scripted(scores)
    if checkpoints:
        callbacks = [*callbacks, ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1)]
    trainer = tiny_trainer(
        tmp_path,
        max_epochs=max_epochs or len(scores),
        limit_train_batches=2,
        limit_val_batches=1,
        enable_checkpointing=checkpoints,
        callbacks=callbacks,
        **kwargs,
    )
    trainer.fit(model, RandomRegressionData(), ckpt_path=ckpt_path)
    return trainer, model


def _epoch_weights(tmp_path: Path, epoch: int) -> dict[str, torch.Tensor]:
    return torch.load(tmp_path / f"epoch={epoch}.ckpt", weights_only=True)["state_dict"]


def _assert_holds_epoch(model, tmp_path: Path, epoch: int, last_epoch: int) -> None:
    state = model.state_dict()
    best = _epoch_weights(tmp_path, epoch)
    assert state.keys() == best.keys()
    for name, value in state.items():
        assert torch.equal(value, best[name]), name
    if last_epoch != epoch:  # the restore really changed something
        last = _epoch_weights(tmp_path, last_epoch)
        assert any(not torch.equal(state[n], last[n]) for n in state)


def test_restores_the_best_epoch_after_patience(tmp_path, caplog):
    torch.manual_seed(0)
    es = EarlyStopping("score", patience=2, restore_best_weights=True)
    with caplog.at_level(logging.INFO):
        trainer, model = _fit(tmp_path, [5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8], [es])
    assert es.stopped_epoch == 4 and trainer.current_epoch == 5
    assert es.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED
    assert es.best_epoch == es.restored_epoch == 2
    assert es.best_step == 6  # 3 epochs x 2 batches
    _assert_holds_epoch(model, tmp_path, 2, last_epoch=4)
    assert "EarlyStopping restored the weights of epoch=2 step=6 (score=3)" in caplog.text


def test_restores_when_max_epochs_ends_training(tmp_path):
    torch.manual_seed(0)
    es = EarlyStopping("score", patience=10, restore_best_weights=True)
    _, model = _fit(tmp_path, [5.0, 1.0, 2.0, 3.0], [es])
    assert es.stopped_epoch == 0  # not stopped by the callback
    assert es.restored_epoch == 1
    _assert_holds_epoch(model, tmp_path, 1, last_epoch=3)


def test_restores_when_a_threshold_stops_training(tmp_path):
    torch.manual_seed(0)
    es = EarlyStopping("score", divergence_threshold=10.0, restore_best_weights=True)
    _, model = _fit(tmp_path, [5.0, 2.0, 4.0, 20.0, 1.0], [es])
    assert es.stopping_reason == EarlyStoppingReason.DIVERGENCE_THRESHOLD and es.stopped_epoch == 3
    _assert_holds_epoch(model, tmp_path, 1, last_epoch=3)


def test_restores_after_an_exception(tmp_path):
    torch.manual_seed(0)
    es = EarlyStopping("score", patience=10, restore_best_weights=True)
    model = Scripted([3.0, 1.0, 2.0, 2.5, 0.1], fail_at_epoch=3)
    with pytest.raises(RuntimeError, match="failure in training_step"):
        _fit(tmp_path, model.scores, [es], model=model)
    assert es.restored_epoch == 1
    _assert_holds_epoch(model, tmp_path, 1, last_epoch=2)


def test_restores_after_a_keyboard_interrupt(tmp_path):
    torch.manual_seed(0)
    es = EarlyStopping("score", patience=10, restore_best_weights=True)
    model = Scripted([3.0, 1.0, 2.0, 2.5, 0.1], fail_at_epoch=3, interrupt=True)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning turns Ctrl+C into a graceful shutdown and exit(1)
            _fit(tmp_path, model.scores, [es], model=model)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert es.restored_epoch == 1
    _assert_holds_epoch(model, tmp_path, 1, last_epoch=2)


def test_best_epoch_before_a_resume_is_restored(tmp_path):
    torch.manual_seed(0)
    scores = [4.0, 1.0, 2.0, 3.0, 3.5, 4.0]
    first = EarlyStopping("score", patience=10, restore_best_weights=True)
    _fit(tmp_path, scores, [first], max_epochs=3)
    assert first.best_epoch == 1

    second = EarlyStopping("score", patience=10, restore_best_weights=True)
    trainer, model = _fit(tmp_path, scores, [second], ckpt_path=tmp_path / "epoch=2.ckpt")
    assert trainer.current_epoch == 6  # epochs 3..5 ran after the resume
    assert second.best_epoch == second.restored_epoch == 1
    _assert_holds_epoch(model, tmp_path, 1, last_epoch=5)


def test_start_from_epoch_ignores_earlier_epochs(tmp_path):
    torch.manual_seed(0)
    scores = [0.1, 0.2, 5.0, 4.0, 4.5, 4.6, 4.7, 4.8]
    plain = EarlyStopping("score", patience=2)
    _fit(tmp_path / "plain", scores, [plain])
    assert plain.stopped_epoch == 2  # epoch 0 was best, two checks without improvement

    es = EarlyStopping("score", patience=2, start_from_epoch=2, restore_best_weights=True)
    _, model = _fit(tmp_path, scores, [es])
    assert es.stopped_epoch == 5
    assert es.best_epoch == es.restored_epoch == 3
    assert float(es.best_score) == 4.0
    _assert_holds_epoch(model, tmp_path, 3, last_epoch=5)


def test_start_from_epoch_also_skips_thresholds_and_non_finite_values(tmp_path):
    es = EarlyStopping("score", patience=5, start_from_epoch=2, divergence_threshold=10.0)
    _fit(tmp_path, [math.nan, 50.0, 3.0, 2.0], [es])
    assert es.stopped_epoch == 0 and float(es.best_score) == 2.0


@pytest.mark.parametrize(
    ("mode", "patience", "scores", "baseline", "stopped_epoch", "best_epoch"),
    [
        # Keras: a check that improves never stops, even one that misses the baseline
        ("min", 3, [5.0, 4.5, 4.2, 4.1, 4.0, 3.9], 3.0, None, 5),
        # improvements that miss the baseline count towards patience: the first check without
        # improvement stops (plain patience=2 would wait one more check)
        ("min", 2, [5.0, 4.0, 4.5, 2.0, 1.0], 3.0, 2, 1),
        # once the baseline is beaten it behaves like plain patience
        ("min", 2, [2.0, 2.5, 2.6, 2.7, 2.8, 2.9], 3.0, 2, 0),
        ("max", 3, [0.5, 0.6, 0.55, 0.58, 0.95], 0.9, 2, 1),
        ("max", 2, [0.5, 0.95, 0.9, 0.97, 0.9, 0.9, 0.9], 0.9, 5, 3),
    ],
)
def test_baseline_follows_keras(tmp_path, mode, patience, scores, baseline, stopped_epoch, best_epoch):
    torch.manual_seed(0)
    es = EarlyStopping("score", mode=mode, patience=patience, baseline=baseline, restore_best_weights=True)
    trainer, model = _fit(tmp_path, scores, [es])
    assert _keras_stop(mode, patience, scores, baseline) == (stopped_epoch, best_epoch)
    if stopped_epoch is None:
        assert es.stopping_reason == EarlyStoppingReason.NOT_STOPPED and trainer.current_epoch == len(scores)
    else:
        assert es.stopped_epoch == stopped_epoch
        assert es.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED
    assert es.best_epoch == es.restored_epoch == best_epoch
    last_epoch = len(scores) - 1 if stopped_epoch is None else stopped_epoch
    _assert_holds_epoch(model, tmp_path, best_epoch, last_epoch=last_epoch)


def _keras_stop(mode, patience, scores, baseline, min_delta=0.0):
    """Keras 3's EarlyStopping.on_epoch_end rule (keras/src/callbacks/early_stopping.py), written out."""
    better = (lambda a, b: a - min_delta > b) if mode == "max" else (lambda a, b: a + min_delta < b)
    best, best_epoch, wait = (-math.inf if mode == "max" else math.inf), None, 0
    for epoch, value in enumerate(scores):
        wait += 1
        if better(value, best):
            best, best_epoch = value, epoch
            if baseline is None or better(value, baseline):
                wait = 0
            continue
        if wait >= patience and epoch > 0:
            return epoch, best_epoch
    return None, best_epoch


def test_restoring_the_first_check_warns_and_says_what_to_change(tmp_path):
    es = EarlyStopping("score", patience=2, restore_best_weights=True)
    with pytest.warns(
        UserWarning,
        match=r"restored the weights of the first validation check \(epoch=0, step=2\).*"
        r"bigger or less noisy validation set, set start_from_epoch.*raise patience.*lower the",
    ):
        _fit(tmp_path, [1.0, 2.0, 3.0], [es])
    assert es.restored_epoch == 0
    later = EarlyStopping("score", patience=2, restore_best_weights=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*first validation check")
        _fit(tmp_path / "later", [2.0, 1.0, 3.0], [later])
    assert later.restored_epoch == 1


def test_the_private_lightning_methods_it_extends_are_still_there():
    # regdrop's EarlyStopping overrides these two; a Lightning release that renames them breaks it
    watched = (("_evaluate_stopping_criteria", ["self", "current"]), ("_run_early_stopping_check", ["self", "trainer"]))
    for name, params in watched:
        method = getattr(LightningEarlyStopping, name)
        assert list(inspect.signature(method).parameters) == params, name
    es = LightningEarlyStopping("x", patience=1)
    assert es._evaluate_stopping_criteria(torch.tensor(1.0)) == (False, "Metric x improved. New best score: 1.000")
    assert float(es.best_score) == 1.0


LIGHTNING_CASES = [
    ({"patience": 2}, [5.0, 4.0, 4.5, 3.0, 3.1, 3.2, 3.3]),
    ({"patience": 1, "min_delta": 0.5}, [5.0, 4.7, 4.0, 3.8, 3.0]),
    ({"patience": 2, "mode": "max"}, [0.1, 0.5, 0.4, 0.6, 0.55, 0.58, 0.3]),
    ({"stopping_threshold": 1.0}, [5.0, 3.0, 0.9, 0.5]),
    ({"divergence_threshold": 4.0}, [3.0, 3.5, 4.5, 1.0]),
    ({"check_finite": True}, [3.0, math.inf, 1.0]),
    ({"patience": 1, "check_on_train_epoch_end": False}, [3.0, 2.0, 2.5, 1.0]),
    ({"patience": 2, "min_epochs": 5}, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
]


@pytest.mark.parametrize(("kwargs", "scores"), LIGHTNING_CASES)
def test_lightning_arguments_behave_as_in_lightning(tmp_path, kwargs, scores):
    trainer_kwargs = {"min_epochs": kwargs.pop("min_epochs")} if "min_epochs" in kwargs else {}
    ours = EarlyStopping("score", **kwargs, restore_best_weights=True)
    theirs = LightningEarlyStopping("score_copy", **kwargs)
    # both in one trainer: either one stopping at another epoch than the other shows in stopped_epoch
    trainer, _ = _fit(tmp_path, scores, [theirs, ours], checkpoints=False, **trainer_kwargs)
    assert ours.stopped_epoch == theirs.stopped_epoch
    assert ours.stopping_reason == theirs.stopping_reason
    assert ours.wait_count == theirs.wait_count
    assert torch.equal(torch.as_tensor(ours.best_score), torch.as_tensor(theirs.best_score))
    assert trainer.current_epoch < len(scores) or ours.stopped_epoch == 0


def test_state_dict_round_trip_and_lightning_checkpoints(tmp_path):
    es = EarlyStopping("score", patience=5, restore_best_weights=True)
    _fit(tmp_path, [3.0, 1.0, 2.0], [es])
    state = es.state_dict()
    assert state["best_epoch"] == 1 and state["best_weights"].keys() == Scripted([]).state_dict().keys()

    again = EarlyStopping("score", patience=5, restore_best_weights=True)
    again.load_state_dict(state)
    assert again.best_epoch == 1 and float(again.best_score) == 1.0
    assert all(torch.equal(v, state["best_weights"][k]) for k, v in again._best_weights.items())

    theirs = LightningEarlyStopping("score", patience=5)
    assert theirs.state_key == es.state_key  # checkpoints move between the two classes
    theirs.load_state_dict(state)  # extra keys are ignored by Lightning's callback
    assert float(theirs.best_score) == 1.0
    from_lightning = EarlyStopping("score", patience=5)
    from_lightning.load_state_dict(theirs.state_dict())  # keys added by regdrop default to "unknown"
    assert from_lightning.best_epoch is None and float(from_lightning.best_score) == 1.0

    with pytest.warns(UserWarning, match=r"no copy of the best weights \(epoch=1\).*restore_best_weights=False"):
        EarlyStopping("score", restore_best_weights=True).load_state_dict({**state, "best_weights": None})

    clone = pickle.loads(pickle.dumps(es))
    assert clone.best_epoch == 1 and copy.deepcopy(es)._best_weights.keys() == es._best_weights.keys()
    assert "best_weights" not in EarlyStopping("score").state_dict()


def test_nothing_to_restore_is_reported(tmp_path):
    es = EarlyStopping("score", start_from_epoch=5, restore_best_weights=True)
    with pytest.warns(UserWarning, match=r"restored nothing: .*no check ran at or after start_from_epoch=5 \(fitting"):
        _, model = _fit(tmp_path, [1.0, 2.0], [es])
    assert es.restored_epoch is None and es.best_epoch is None
    _assert_holds_epoch(model, tmp_path, 1, last_epoch=1)

    nan = EarlyStopping("score", restore_best_weights=True)
    with pytest.warns(UserWarning, match=r"restored nothing: .*every monitored value was non-finite"):
        _fit(tmp_path / "nan", [math.nan, 1.0], [nan])
    assert nan.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC and nan.restored_epoch is None


def test_a_monitor_that_is_never_logged(tmp_path):
    with pytest.raises(RuntimeError, match=r"conditioned on metric `scor` which is not available.*`score`"):
        _fit(tmp_path, [1.0, 2.0], [EarlyStopping("scor", restore_best_weights=True)])
    lenient = EarlyStopping("scor", strict=False, restore_best_weights=True)
    match = r"never found `scor` in the logged metrics \(.*`score`.*restored no weights"
    with pytest.warns(UserWarning, match=match) as record:
        _fit(tmp_path / "lenient", [1.0, 2.0], [lenient])
    assert not any("restored nothing" in str(w.message) for w in record)  # one warning says it all
    assert lenient.restored_epoch is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"start_from_epoch": -1}, ValueError, r"start_from_epoch must be an int >= 0, got -1"),
        ({"start_from_epoch": 1.5}, TypeError, r"start_from_epoch must be an int >= 0, got float 1\.5"),
        ({"baseline": math.nan}, ValueError, r"baseline must be a finite number or None, got nan"),
        ({"baseline": "0.5"}, TypeError, r"baseline must be a finite number or None, got str"),
        ({"mode": "avg"}, MisconfigurationException, r"`mode` can be min, max, got avg"),
        ({"restore_best_weights": "no"}, TypeError, r"restore_best_weights must be True or False, got str 'no'"),
        ({"restore_best_weights": 1}, TypeError, r"restore_best_weights must be True or False, got int 1"),
        ({"patience": -1}, ValueError, r"patience must be an int >= 0, got -1"),
        ({"patience": 2.5}, TypeError, r"patience must be an int >= 0, got float 2\.5"),
        ({"min_delta": math.nan}, ValueError, r"min_delta must be a finite number, got nan"),
        ({"min_delta": "0"}, TypeError, r"min_delta must be a finite number, got str"),
        ({"stopping_threshold": math.nan}, ValueError, r"stopping_threshold must be a finite number or None, got nan"),
        ({"divergence_threshold": math.inf}, ValueError, r"divergence_threshold must be a finite number or None"),
    ],
)
def test_bad_arguments_say_what_to_change(kwargs, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping("val_loss", **kwargs)


def test_repr_shows_the_settings():
    es = EarlyStopping("val_acc", min_delta=0.01, mode="max", baseline=0.8, start_from_epoch=3)
    assert repr(es) == (
        "EarlyStopping(monitor='val_acc', mode='max', patience=3, min_delta=0.01, restore_best_weights=False,"
        " start_from_epoch=3, baseline=0.8)"
    )


DDP_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import torch
import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from regdrop.callbacks import EarlyStopping
from tests.callbacks.models import RandomRegressionData, TinyRegressor


class Scripted(TinyRegressor):
    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        # ranks log different, unsynced values: rank 0 sees its best at epoch 1, rank 1 at epoch 2
        scores = [[3.0, 1.0, 2.0, 2.5, 2.6], [3.0, 2.0, 1.0, 2.5, 2.6]][self.global_rank]
        self.log("score", torch.tensor(scores[self.current_epoch]), on_epoch=True)


if __name__ == "__main__":
    pl.seed_everything(0)
    es = EarlyStopping("score", patience=2, restore_best_weights=True)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=5, limit_train_batches=2, limit_val_batches=1,
        enable_progress_bar=False, enable_model_summary=False, logger=False, num_sanity_val_steps=0,
        default_root_dir={out!r},
        callbacks=[es, ModelCheckpoint(dirpath={out!r}, filename="{{epoch}}", save_top_k=-1)],
    )
    model = Scripted(lr=0.2)
    trainer.fit(model, RandomRegressionData(batch_size=8))
    torch.save(
        {{"state": model.state_dict(), "restored": es.restored_epoch, "stopped": es.stopped_epoch}},
        {out!r} + f"/rank{{trainer.global_rank}}.pt",
    )
    torch.distributed.destroy_process_group()  # gloo's threads abort the process at exit without it (pytorch#190489)
"""


@pytest.mark.slow
def test_ddp_ranks_restore_the_same_best_epoch(tmp_path):
    script = tmp_path / "ddp_early_stopping.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(root=str(REPO_ROOT), out=str(tmp_path))))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EarlyStopping restored the weights of epoch=1" in result.stderr + result.stdout
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["restored"] == rank1["restored"] == 1  # rank 0's decision
    assert rank0["stopped"] == rank1["stopped"] == 3
    best = _epoch_weights(tmp_path, 1)
    for name, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][name]), name
        assert torch.equal(value, best[name]), name


def test_keras_defaults_monitor_val_loss_and_mode_auto() -> None:
    from regdrop.callbacks import EarlyStopping as Stopper

    assert Stopper().monitor == "val_loss" and Stopper().mode == "min"
    assert Stopper("val_loss", mode="auto").mode == "min"
    assert Stopper("val_acc", mode="auto").mode == "max"
    assert Stopper("val_accuracy", mode="auto").mode == "max"
