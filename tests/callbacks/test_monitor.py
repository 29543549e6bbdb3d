"""Tests of regdrop.callbacks.monitor: RegularizationMonitor and max_unit_norms."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch import callbacks as pl_callbacks
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

import regdrop
from regdrop.callbacks import DropoutScheduler, MaxNorm, RegularizationMonitor, max_unit_norms
from regdrop.nn import dropout_rates
from tests.callbacks._tiny import DropoutRegressor
from tests.callbacks.models import RandomRegressionData, tiny_trainer


def _data() -> RandomRegressionData:
    return RandomRegressionData(seq_len=5, n_train=32, n_val=16, batch_size=8)


def _scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _fit(tmp_path: Path, callbacks: list, model: DropoutRegressor | None = None, **kwargs):
    model = model or DropoutRegressor()
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = tiny_trainer(tmp_path, callbacks=callbacks, logger=logger, **kwargs)
    trainer.fit(model, datamodule=_data())
    return trainer, model, _scalars(logger.log_dir)


# ---------------------------------------------------------------- max_unit_norms
def test_max_unit_norms_selection_and_values() -> None:
    torch.manual_seed(0)
    shared = nn.Linear(3, 3)
    model = nn.Sequential(
        nn.Conv1d(2, 4, 3),
        nn.ConvTranspose2d(4, 6, 2, groups=2),
        nn.LSTM(3, 4, proj_size=2),
        nn.LayerNorm(4),
        nn.Embedding(5, 3),
        shared,
        shared,
    )
    norms = max_unit_norms(model)
    assert list(norms) == [
        "0.weight",
        "1.weight",
        "2.weight_ih_l0",
        "2.weight_hh_l0",
        "2.weight_hr_l0",
        "5.weight",
    ]
    conv = model[0].weight
    assert torch.equal(norms["0.weight"], torch.stack([conv[i].norm() for i in range(4)]).max())
    # ConvTranspose2d(4, 6, groups=2): weight (4, 3, 2, 2); output unit (g, j) is weight[2g:2g+2, j]
    w = model[1].weight
    units = [w[2 * g : 2 * g + 2, j].norm() for g in range(2) for j in range(3)]
    assert torch.allclose(norms["1.weight"], torch.stack(units).max())
    hh = model[2].weight_hh_l0
    assert torch.equal(norms["2.weight_hh_l0"], hh.norm(dim=1).max())


@pytest.mark.parametrize("rnn_factory", [nn.LSTM, regdrop.nn.LSTM, regdrop.nn.GRU], ids=["torch", "LSTM", "GRU"])
def test_max_unit_norms_matches_the_constraints_default_selection(rnn_factory: type[nn.Module]) -> None:
    model = DropoutRegressor(rnn_factory=rnn_factory)
    norms = max_unit_norms(model)
    assert set(norms) == set(MaxNorm(1.0).select_parameters(model))
    assert {"rnn.weight_ih_l0", "rnn.weight_hh_l1", "head.weight"} <= set(norms)


def test_max_unit_norms_skips_lazy() -> None:
    assert max_unit_norms(nn.Sequential(nn.LazyLinear(3), nn.Linear(3, 2))).keys() == {"1.weight"}


# ---------------------------------------------------------------- in a Trainer
def test_epoch_scalars_in_tensorboard(tmp_path: Path) -> None:
    torch.manual_seed(0)
    constraint = MaxNorm(0.5)
    trainer, model, scalars = _fit(tmp_path, [constraint, RegularizationMonitor()], max_epochs=3)
    expected_norms = {f"max_unit_norm/{name}" for name in max_unit_norms(model)}
    assert expected_norms == {tag for tag in scalars if tag.startswith("max_unit_norm/")}
    assert "max_unit_norm/rnn.weight_hh_l1" in expected_norms and "max_unit_norm/head.weight" in expected_norms
    for tag in [*expected_norms, "generalization_gap", "dropout/rnn.dropout", "clipped_fraction/head.weight"]:
        assert len(scalars[tag]) == 3, tag

    # the gap is exactly val_loss - train_loss of the same epoch
    gaps = [value for _, value in scalars["generalization_gap"]]
    val = [value for _, value in scalars["val_loss"]]
    train = [value for _, value in scalars["train_loss"]]
    assert len(val) == len(train) == 3
    assert gaps == pytest.approx([v - t for v, t in zip(val, train, strict=True)], abs=1e-6)
    assert [step for step, _ in scalars["generalization_gap"]] == [step for step, _ in scalars["train_loss"]]

    # the last norms are the model's, and within the constraint
    for name, norm in max_unit_norms(model).items():
        assert scalars[f"max_unit_norm/{name}"][-1][1] == pytest.approx(norm.item(), rel=1e-6)
        assert norm.item() <= 0.5 + 1e-5
    # clipped fractions are the constraint's own record
    for name, fraction in constraint.last_clip_fraction.items():
        assert scalars[f"clipped_fraction/{name}"][-1][1] == pytest.approx(fraction)
        rows = dict(model.named_parameters())[name].shape[0]
        for _, value in scalars[f"clipped_fraction/{name}"]:
            assert 0.0 <= value <= 1.0 and (value * rows) == pytest.approx(round(value * rows))  # whole rows
    assert scalars["clipped_fraction/rnn.weight_hh_l0"][0][1] > 0  # 0.5 is tight: some rows were clipped
    for name, rate in dropout_rates(model).items():
        assert [value for _, value in scalars[f"dropout/{name}"]] == pytest.approx([rate] * 3)
    assert trainer.callback_metrics["generalization_gap"].item() == pytest.approx(gaps[-1], abs=1e-6)


def test_flags_turn_parts_off(tmp_path: Path) -> None:
    monitor = RegularizationMonitor(norms=False, rates=False, clipped=False)
    _, _, scalars = _fit(tmp_path, [MaxNorm(0.5), monitor], max_epochs=1)
    assert not [t for t in scalars if t.split("/")[0] in ("max_unit_norm", "dropout", "clipped_fraction")]
    assert "generalization_gap" in scalars
    _, _, scalars = _fit(tmp_path / "b", [RegularizationMonitor(gap=False)], max_epochs=1)
    assert "generalization_gap" not in scalars and "max_unit_norm/head.weight" in scalars


def test_rates_left_to_the_scheduler(tmp_path: Path) -> None:
    callbacks = [DropoutScheduler("linear", warmup=2), RegularizationMonitor()]
    _, _, scalars = _fit(tmp_path, callbacks, max_epochs=3)
    # one writer: the scheduler's values at each epoch's start, not the monitor's at its end
    assert [value for _, value in scalars["dropout/drop.p"]] == pytest.approx([0.0, 0.1, 0.2])


def test_gap_only_in_epochs_with_validation(tmp_path: Path) -> None:
    _, _, scalars = _fit(tmp_path, [RegularizationMonitor()], max_epochs=4, check_val_every_n_epoch=2)
    assert len(scalars["generalization_gap"]) == 2
    assert len(scalars["max_unit_norm/head.weight"]) == 4
    val_steps = [step for step, _ in scalars["val_loss"]]
    assert [step for step, _ in scalars["generalization_gap"]] == val_steps


def test_step_interval_matches_lightning_steps(tmp_path: Path) -> None:
    monitor = RegularizationMonitor(logging_interval="step")
    model = DropoutRegressor(log_train_step=True)
    _, model, scalars = _fit(tmp_path, [monitor], model=model, max_epochs=2, log_every_n_steps=3)
    steps = [step for step, _ in scalars["max_unit_norm/head.weight"]]
    assert steps == [step for step, _ in scalars["train_loss_step"]] == [2, 5]
    assert [step for step, _ in scalars["dropout/drop.p"]] == steps
    assert len(scalars["generalization_gap"]) == 2  # the gap stays per epoch


def test_step_interval_last_step_has_final_norms(tmp_path: Path) -> None:
    _, model, scalars = _fit(
        tmp_path, [RegularizationMonitor(logging_interval="step")], max_epochs=2, log_every_n_steps=4
    )
    assert [step for step, _ in scalars["max_unit_norm/head.weight"]] == [3, 7]
    assert scalars["max_unit_norm/head.weight"][-1][1] == pytest.approx(max_unit_norms(model)["head.weight"].item())


# ---------------------------------------------------------------- warnings and errors
def test_missing_key_warns_once_and_lists_logged_metrics(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer, _, scalars = _fit(tmp_path, [RegularizationMonitor(val_key="val_mse")], max_epochs=2)
    messages = [str(w.message) for w in caught if "RegularizationMonitor" in str(w.message)]
    assert len(messages) == 1
    assert "'val_mse' was not logged by the end of the first epoch with validation" in messages[0]
    assert "'val_loss'" in messages[0] and "'train_loss'" in messages[0]
    assert "Pass train_key=/val_key=" in messages[0]
    assert "generalization_gap" not in scalars and "generalization_gap" not in trainer.callback_metrics


def test_no_validation_warns(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="validation never ran during fitting, so no generalization gap was logged"):
        _fit(tmp_path, [RegularizationMonitor()], max_epochs=1, limit_val_batches=0)


def test_step_interval_without_logger_warns(tmp_path: Path) -> None:
    trainer = tiny_trainer(tmp_path, callbacks=[RegularizationMonitor(logging_interval="step")], max_epochs=1)
    with pytest.warns(UserWarning, match="writes to the trainer's loggers and the Trainer has none"):
        trainer.fit(DropoutRegressor(), datamodule=_data())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="logging_interval must be 'epoch' or 'step', got 'batch'"):
        RegularizationMonitor(logging_interval="batch")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="val_key must be the str name of a logged metric, got int 3"):
        RegularizationMonitor(val_key=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="true_gap_batches must be >= 0 \\(0 turns it off\\), got -1"):
        RegularizationMonitor(true_gap_batches=-1)
    with pytest.raises(TypeError, match="true_gap_batches must be an int, got float 2.0"):
        RegularizationMonitor(true_gap_batches=2.0)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="are all False, so it logs nothing"):
        RegularizationMonitor(norms=False, rates=False, gap=False, clipped=False)


def test_repr_and_pickle() -> None:
    monitor = RegularizationMonitor(logging_interval="step", train_key="loss")
    clone = pickle.loads(pickle.dumps(monitor))
    assert (
        repr(clone)
        == repr(monitor)
        == (
            "RegularizationMonitor(logging_interval='step', norms=True, rates=True, gap=True, clipped=True, "
            "train_key='loss', val_key='val_loss', true_gap_batches=0)"
        )
    )


def test_max_unit_norms_reads_the_units_the_constraints_project() -> None:
    # one layout for both: after MaxNorm(1) on inflated weights every unit has norm 1, grouped ConvTranspose too
    torch.manual_seed(0)
    from regdrop.callbacks import MaxNorm

    model = nn.Sequential(nn.ConvTranspose1d(4, 6, 3, groups=2), nn.ConvTranspose2d(3, 5, 2), nn.Conv1d(2, 3, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(50.0)
    MaxNorm(1.0).apply_(model)
    norms = max_unit_norms(model)
    assert set(norms) == {"0.weight", "1.weight", "2.weight"}
    assert all(float(n) == pytest.approx(1.0, rel=1e-5) for n in norms.values())


# ---------------------------------------------------------------- step-only key and the eval-mode gap
class _StepOnlyRegressor(DropoutRegressor):
    """Logs train_loss with Lightning's default for training_step: on_step=True, on_epoch=False."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss


class _LossRegressor(DropoutRegressor):
    def compute_loss(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)


def _monitor_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "RegularizationMonitor" in str(w.message)]


@pytest.mark.parametrize("log_train_step", [False, True], ids=["epoch", "step_and_epoch"])
def test_epoch_logged_key_does_not_warn(tmp_path: Path, log_train_step: bool) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [RegularizationMonitor()], model=DropoutRegressor(log_train_step=log_train_step), max_epochs=2)
    assert _monitor_warnings(caught) == []


def test_step_only_key_warns_once_per_fit(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [RegularizationMonitor()], model=_StepOnlyRegressor(), max_epochs=3)
    messages = _monitor_warnings(caught)
    assert len(messages) == 1
    assert "'train_loss' is logged per step only" in messages[0]
    assert "self.log('train_loss', loss, on_epoch=True)" in messages[0]


def test_true_gap_equals_direct_eval_mode_loss(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = _data()
    model = _LossRegressor()
    monitor = RegularizationMonitor(true_gap_batches=2)
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = tiny_trainer(tmp_path, callbacks=[monitor], logger=logger, max_epochs=2)
    trainer.fit(model, datamodule=data)
    scalars = _scalars(logger.log_dir)
    assert len(scalars["generalization_gap_eval"]) == 2
    assert model.training  # the train/eval flags are restored after the eval-mode pass
    # validation ran after the last optimizer step, so the weights are those it used
    model.eval()
    with torch.no_grad():
        batches = list(data.train_dataloader())[:2]
        direct = torch.stack([model.compute_loss(b) for b in batches]).mean()
    expected = trainer.callback_metrics["val_loss"] - direct
    assert trainer.callback_metrics["generalization_gap_eval"].item() == pytest.approx(expected.item(), abs=1e-6)
    assert scalars["generalization_gap_eval"][-1][1] == pytest.approx(expected.item(), abs=1e-5)


def test_true_gap_restores_train_eval_flags(tmp_path: Path) -> None:
    # a callback listed after the monitor sees, at the same hook, the flags validation started with
    flags: list[tuple[list[bool], list[bool]]] = []

    class Recorder(pl_callbacks.Callback):
        def on_validation_epoch_start(self, trainer, pl_module):
            self.before = [m.training for m in pl_module.modules()]

        def on_validation_epoch_end(self, trainer, pl_module):
            flags.append((self.before, [m.training for m in pl_module.modules()]))

    callbacks = [RegularizationMonitor(true_gap_batches=1), Recorder()]
    tiny_trainer(tmp_path, callbacks=callbacks, max_epochs=2).fit(_LossRegressor(), datamodule=_data())
    assert len(flags) == 2 and all(before == after for before, after in flags)


def test_true_gap_needs_compute_loss(tmp_path: Path) -> None:
    trainer = tiny_trainer(tmp_path, callbacks=[RegularizationMonitor(true_gap_batches=1)], max_epochs=1)
    with pytest.raises(TypeError, match="needs a method compute_loss\\(batch\\) -> Tensor"):
        trainer.fit(DropoutRegressor(), datamodule=_data())
