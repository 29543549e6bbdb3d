"""Tests of the weight-constraint callbacks (regdrop.callbacks.constraints) in a tiny Trainer."""

from __future__ import annotations

import copy
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins import MixedPrecision
from torch import nn

import regdrop
from regdrop.callbacks import MaxNorm, MinMaxNorm, NonNeg, UnitNorm, WeightConstraint
from tests.callbacks.models import RandomRegressionData, TinyRegressor, tiny_trainer

REPO_ROOT = Path(__file__).resolve().parents[2]


def _unit_norms(weight: torch.Tensor, dim: int = 0) -> torch.Tensor:
    if weight.dim() < 2:  # a bias is one unit
        return weight.detach().norm().reshape(1)
    return torch.linalg.vector_norm(weight.detach().movedim(dim, 0).flatten(1), dim=1)


class _OnlySomeTrained(TinyRegressor):
    """SGD with lr=0 on every parameter not in ``trained``, so the optimizer leaves those bit for bit alone."""

    def __init__(self, trained: set[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.trained = trained

    def configure_optimizers(self) -> torch.optim.Optimizer:
        named = dict(self.named_parameters())
        on = [p for n, p in named.items() if n in self.trained]
        off = [p for n, p in named.items() if n not in self.trained]
        return torch.optim.SGD([{"params": on}, {"params": off, "lr": 0.0}], lr=self.lr)


def _inflate(model: nn.Module, factor: float = 5.0) -> None:
    """Push every parameter far outside the constraints: large norms and negative entries everywhere."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor).sub_(1.0)


RECURRENT_WEIGHTS = {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"}


@pytest.mark.parametrize(
    ("constraint", "holds"),
    [
        (MaxNorm(0.5, project_on_fit_start=True), lambda w: bool(_unit_norms(w).max() <= 0.5 + 1e-6)),
        (UnitNorm(project_on_fit_start=True), lambda w: bool(((_unit_norms(w) - 1).abs() <= 1e-6).all())),
        (NonNeg(project_on_fit_start=True), lambda w: bool((w >= 0).all())),
        (
            MinMaxNorm(0.3, 0.6, project_on_fit_start=True),
            lambda w: bool(((_unit_norms(w) >= 0.3 - 1e-6) & (_unit_norms(w) <= 0.6 + 1e-6)).all()),
        ),
    ],
    ids=["MaxNorm", "UnitNorm", "NonNeg", "MinMaxNorm"],
)
def test_selected_units_satisfy_the_constraint_and_others_are_untouched(tmp_path, constraint, holds):
    torch.manual_seed(0)
    model = _OnlySomeTrained(RECURRENT_WEIGHTS, recurrent=True, lr=0.5)
    _inflate(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tiny_trainer(tmp_path, callbacks=[constraint]).fit(model, RandomRegressionData(seq_len=5))

    assert set(constraint.select_parameters(model)) == RECURRENT_WEIGHTS
    for name, p in model.named_parameters():
        if name in RECURRENT_WEIGHTS:
            assert holds(p), name
            assert not torch.equal(p, before[name])
        else:  # biases: neither the optimizer (lr=0) nor the constraint may have changed them
            assert torch.equal(p, before[name]), name
            assert not holds(p), name
    assert constraint.projection_count == 8  # 2 epochs x 4 batches
    assert set(constraint.last_clip_fraction) == RECURRENT_WEIGHTS
    assert all(0.0 <= f <= 1.0 for f in constraint.last_clip_fraction.values())


def test_names_and_modules_choose_the_parameters(tmp_path):
    torch.manual_seed(0)
    model = _OnlySomeTrained({"rnn.weight_hh_l0", "rnn.weight_ih_l0"}, recurrent=True)
    _inflate(model)
    hh_only = MaxNorm(1.0, names="rnn.weight_hh_*")
    by_regex = MaxNorm(1.0, names=re.compile(r"rnn\.weight_(ih|hh)_l0"), modules=nn.LSTM)
    head_only = MaxNorm(0.25, modules=nn.Linear, project_on_fit_start=True)
    ih_before = model.rnn.weight_ih_l0.detach().clone()
    tiny_trainer(tmp_path, max_epochs=1, callbacks=[hh_only, head_only]).fit(model, RandomRegressionData(seq_len=5))

    assert list(hh_only.select_parameters(model)) == ["rnn.weight_hh_l0"]
    assert list(by_regex.select_parameters(model)) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    assert list(head_only.select_parameters(model)) == ["head.weight"]
    assert _unit_norms(model.rnn.weight_hh_l0).max() <= 1.0 + 1e-6
    assert _unit_norms(model.head.weight).max() <= 0.25 + 1e-6  # projected at fit start only: lr=0 on the head
    # weight_ih_l0 is trained but not selected: it moved by SGD only and still breaks the bound
    assert not torch.equal(model.rnn.weight_ih_l0, ih_before)
    assert _unit_norms(model.rnn.weight_ih_l0).max() > 1.0
    assert MaxNorm(1.0, names="rnn.*", include_bias=True).select_parameters(model).keys() == {
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.bias_ih_l0",
        "rnn.bias_hh_l0",
    }


class _BlowUpThenNonFinite(TinyRegressor):
    """Batch 2 of the first epoch: weights pushed past the bound, then a loss of inf so GradScaler skips the step."""

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self.current_epoch == 0 and batch_idx == 2:
            with torch.no_grad():
                self.head.weight.mul_(10.0)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss * float("inf") if (self.current_epoch == 0 and batch_idx == 2) else loss


class _Record(pl.Callback):
    def __init__(self, constraint: WeightConstraint) -> None:
        self.constraint = constraint
        self.rows: list[tuple[int, int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        head_norm = float(_unit_norms(pl_module.head.weight).max())
        self.rows.append((batch_idx, self.constraint.projection_count, head_norm))


def test_step_skipped_by_grad_scaler_is_not_projected(tmp_path):
    torch.manual_seed(0)
    constraint = MaxNorm(0.5)
    record = _Record(constraint)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    trainer = tiny_trainer(
        tmp_path,
        max_epochs=1,
        callbacks=[constraint, record],
        plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)],
    )
    trainer.fit(_BlowUpThenNonFinite(), RandomRegressionData())

    counts = [count for _, count, _ in record.rows]
    assert counts == [1, 2, 2, 3]  # no projection after the skipped step of batch 2
    assert record.rows[2][2] > 2.0  # batch 2: the inflated weights were left as they were
    assert record.rows[3][2] <= 0.5 + 1e-6  # the next real step projected them
    assert scaler.get_scale() == 2.0**7  # the scaler did find the inf and skip


def test_gradient_accumulation_projects_once_per_real_step(tmp_path):
    torch.manual_seed(0)
    constraint = UnitNorm()
    trainer = tiny_trainer(tmp_path, accumulate_grad_batches=2, callbacks=[constraint])
    model = TinyRegressor()
    trainer.fit(model, RandomRegressionData())
    assert trainer.global_step == 4  # 2 epochs x 4 batches / 2
    assert constraint.projection_count == 4
    for w in constraint.select_parameters(model).values():
        torch.testing.assert_close(_unit_norms(w), torch.ones(w.shape[0]), rtol=0, atol=1e-6)


class _TwoOptimizers(TinyRegressor):
    """Manual optimization: the body's optimizer steps every batch, the head's every other batch."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.head_norm_after_body_step: list[float] = []

    def training_step(self, batch, batch_idx: int) -> None:
        opt_body, opt_head = self.optimizers()
        loss = self._loss(batch)
        self.manual_backward(loss)
        with torch.no_grad():
            self.head.weight.mul_(10.0)  # break the bound; only the head's own step may fix it
        opt_body.step()
        self.head_norm_after_body_step.append(float(_unit_norms(self.head.weight).max()))
        if batch_idx % 2 == 1:
            opt_head.step()
        opt_body.zero_grad()
        opt_head.zero_grad()

    def configure_optimizers(self):
        return torch.optim.SGD(self.body.parameters(), lr=0.1), torch.optim.SGD(self.head.parameters(), lr=0.1)


def test_each_optimizer_projects_the_parameters_it_owns(tmp_path):
    torch.manual_seed(0)
    constraint = MaxNorm(0.5)
    model = _TwoOptimizers()
    trainer = tiny_trainer(tmp_path, max_epochs=1, callbacks=[constraint])
    trainer.fit(model, RandomRegressionData())
    assert constraint.projection_count == 4 + 2
    assert all(n > 0.5 for n in model.head_norm_after_body_step)
    assert _unit_norms(model.body[0].weight).max() <= 0.5 + 1e-6
    assert _unit_norms(model.head.weight).max() <= 0.5 + 1e-6  # the last batch (index 3) stepped the head
    assert all(not opt._optimizer_step_post_hooks for opt in trainer.optimizers)


def test_hooks_are_removed_after_fit_and_after_an_exception(tmp_path):
    torch.manual_seed(0)
    constraint = MaxNorm(1.0)
    trainer = tiny_trainer(tmp_path, max_epochs=1, callbacks=[constraint])
    trainer.fit(TinyRegressor(), RandomRegressionData())
    assert not trainer.optimizers[0]._optimizer_step_post_hooks
    assert constraint._targets == []

    class Boom(TinyRegressor):
        def training_step(self, batch, batch_idx):
            if batch_idx == 2:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    trainer = tiny_trainer(tmp_path, max_epochs=1, callbacks=[constraint])
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(Boom(), RandomRegressionData())
    assert constraint.projection_count == 4 + 2
    assert not trainer.optimizers[0]._optimizer_step_post_hooks


def test_pickle_deepcopy_and_state_dict_mid_fit(tmp_path):
    torch.manual_seed(0)
    constraint = MinMaxNorm(0.1, 0.4, rate=0.5)
    copies: list[WeightConstraint] = []

    class Snapshot(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 1:
                copies.append(pickle.loads(pickle.dumps(constraint)))
                copies.append(copy.deepcopy(constraint))

    model = TinyRegressor()
    tiny_trainer(tmp_path, max_epochs=1, callbacks=[constraint, Snapshot()]).fit(model, RandomRegressionData())
    for c in copies:
        assert c._handles == [] and c._targets == []
        assert c.projection_count == 2
        assert repr(c) == repr(constraint)
    restored = MinMaxNorm(0.1, 0.4, rate=0.5)
    restored.load_state_dict(constraint.state_dict())
    assert restored.projection_count == 4
    assert restored.last_clip_fraction == constraint.last_clip_fraction
    assert MaxNorm(1.0).state_key != MaxNorm(2.0).state_key != MaxNorm(2.0, names="head.*").state_key


def test_state_survives_a_resume(tmp_path):
    torch.manual_seed(0)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, filename="{epoch}")
    first = MaxNorm(0.5)
    tiny_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[first, ckpt]).fit(
        TinyRegressor(), RandomRegressionData()
    )
    second = MaxNorm(0.5)
    model = TinyRegressor()
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, filename="{epoch}")
    trainer = tiny_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[second, ckpt])
    trainer.fit(model, RandomRegressionData(), ckpt_path=tmp_path / "epoch=0.ckpt")
    assert second.projection_count == 8 == trainer.global_step
    assert all(_unit_norms(w).max() <= 0.5 + 1e-6 for w in second.select_parameters(model).values())


def test_clip_fraction_counts_the_units_that_changed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight[:3].mul_(100.0)
        model[0].weight[3:].mul_(0.001)
        model[2].weight.mul_(0.001)
    assert MaxNorm(1.0).apply_(model) == {"0.weight": 0.5, "2.weight": 0.0}
    assert MaxNorm(1e-5).apply_(model) == {"0.weight": 1.0, "2.weight": 1.0}


def test_layouts_of_the_default_layers():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    deconv = nn.ConvTranspose2d(3, 4, 3)
    grouped = nn.ConvTranspose1d(4, 6, 3, groups=2)  # weight (4, 3, 3): output unit (g, j) = w[2g:2g+2, j]
    bilinear = nn.Bilinear(2, 3, 5)
    cell = nn.GRUCell(3, 4)
    proj = nn.LSTM(3, 6, proj_size=2, num_layers=2, bidirectional=True)
    model = nn.ModuleList([conv, deconv, grouped, bilinear, cell, proj, nn.LayerNorm(3), nn.Embedding(5, 3)])
    _inflate(model, 10.0)
    constraint = MaxNorm(1.0)
    selected = constraint.select_parameters(model)
    assert not any(n.startswith(("6.", "7.")) or ".bias" in n for n in selected)
    assert {"5.weight_hr_l1_reverse", "4.weight_hh", "3.weight"} <= set(selected)
    constraint.apply_(model)
    assert _unit_norms(conv.weight).max() <= 1 + 1e-6
    deconv_units = _unit_norms(deconv.weight, dim=1)
    assert deconv_units.shape == (4,) and deconv_units.max() <= 1 + 1e-6
    units = [grouped.weight.detach()[2 * g : 2 * g + 2, j] for g in range(2) for j in range(3)]
    assert all(float(u.norm()) == pytest.approx(1.0, rel=1e-5) for u in units)
    for name, p in proj.named_parameters():
        if name.startswith("weight"):
            assert _unit_norms(p).max() <= 1 + 1e-6, name


def test_regdrop_recurrent_layers_are_selected_by_default():
    layer = getattr(regdrop.nn, "LSTM", None)
    if layer is None:
        pytest.skip("regdrop.nn.LSTM is not in this checkout")
    model = nn.Sequential(layer(3, 4, num_layers=2))
    names = set(MaxNorm(1.0).select_parameters(model))
    assert {"0.weight_ih_l0", "0.weight_hh_l0", "0.weight_ih_l1", "0.weight_hh_l1"} <= names
    assert not any("bias" in n for n in names)


def test_lazy_layers_are_projected_once_materialized():
    model = nn.Sequential(nn.LazyLinear(4))
    constraint = MaxNorm(0.1)
    assert constraint.apply_(model) == {}
    model(torch.randn(2, 3))
    assert constraint.apply_(model) == {"0.weight": 1.0}


def test_a_trained_weight_no_optimizer_owns_is_reported(tmp_path):
    class HeadOnly(TinyRegressor):
        def configure_optimizers(self):
            return torch.optim.SGD(self.head.parameters(), lr=0.1)

    with pytest.warns(UserWarning, match=r"MaxNorm: body\.0\.weight require grad but no optimizer updates them"):
        tiny_trainer(tmp_path, max_epochs=1, callbacks=[MaxNorm(1.0)]).fit(HeadOnly(), RandomRegressionData())


def test_a_frozen_constrained_weight_is_reported_at_fit_start(tmp_path):
    model = TinyRegressor()
    model.head.weight.requires_grad_(False)
    match = r"MaxNorm: head\.weight are frozen \(requires_grad=False\), so no optimizer step"
    with pytest.warns(UserWarning, match=match):
        tiny_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[MaxNorm(1.0)]).fit(
            model, RandomRegressionData()
        )


class _NaNAtStep(TinyRegressor):
    """The loss turns NaN at one global step, so that step's SGD update writes NaN into every weight."""

    def __init__(self, nan_step: int) -> None:
        super().__init__()
        self.nan_step = nan_step
        self.steps_seen: list[int] = []

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        self.steps_seen.append(self.global_step)
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step == self.nan_step else loss


def test_non_finite_weights_stop_training_and_early_stopping_restores_the_best(tmp_path):
    from regdrop.callbacks import EarlyStopping

    torch.manual_seed(0)
    constraint = MaxNorm(10.0)
    early = EarlyStopping("val_loss", patience=5, restore_best_weights=True)
    model = _NaNAtStep(nan_step=10)  # epoch 2, batch 2
    trainer = tiny_trainer(tmp_path, max_epochs=6, callbacks=[constraint, early])
    match = (
        r"MaxNorm: the optimizer step at global step 10 \(as training_step sees it\) left non-finite"
        r" values \(NaN or inf\) in body\.0\.weight, head\.weight; nothing was projected"
    )
    with pytest.warns(UserWarning, match=match):
        trainer.fit(model, RandomRegressionData())
    assert model.steps_seen[-1] == 10 and trainer.global_step == 11  # no step after the NaN one
    assert constraint.projection_count == 10  # the NaN step is not counted
    assert trainer.should_stop
    assert early.restored_epoch == early.best_epoch == 1
    for name, value in model.state_dict().items():
        assert torch.isfinite(value).all(), name
        assert torch.equal(value, early._best_weights[name]), name


def test_non_finite_weights_raise_when_min_epochs_keeps_training(tmp_path):
    torch.manual_seed(0)
    trainer = tiny_trainer(tmp_path, max_epochs=6, min_epochs=5, callbacks=[MaxNorm(10.0)])
    with (
        pytest.warns(UserWarning, match="Training stops now"),
        pytest.raises(
            FloatingPointError,
            match=r"global step 2 \(as training_step sees it\) left non-finite.*Training went on after",
        ),
    ):
        trainer.fit(_NaNAtStep(nan_step=1), RandomRegressionData())


@pytest.mark.parametrize("precision", ["bf16-true", "16-true"])
@pytest.mark.parametrize(
    ("constraint", "holds"),
    [
        (lambda: MaxNorm(0.8, project_on_fit_start=True), lambda n: bool((n <= 0.8).all())),
        (lambda: MinMaxNorm(0.5, 0.6, project_on_fit_start=True), lambda n: bool(((n >= 0.5) & (n <= 0.6)).all())),
        (lambda: UnitNorm(project_on_fit_start=True), lambda n: bool(((n - 1).abs() <= 2**-7).all())),
    ],
    ids=["MaxNorm", "MinMaxNorm", "UnitNorm"],
)
def test_low_precision_weights_satisfy_the_bound(tmp_path, precision, constraint, holds):
    torch.manual_seed(0)
    constraint = constraint()
    model = TinyRegressor(hidden=32, lr=0.5)
    _inflate(model)
    tiny_trainer(tmp_path, max_epochs=1, precision=precision, callbacks=[constraint]).fit(model, RandomRegressionData())
    dtype = torch.bfloat16 if precision == "bf16-true" else torch.float16
    assert constraint.projection_count == 4
    for name, w in constraint.select_parameters(model).items():
        assert w.dtype == dtype
        assert holds(_unit_norms(w.float())), (name, _unit_norms(w.float()))


@pytest.mark.parametrize(
    ("constraint", "match"),
    [
        (MaxNorm(1.0, names="encoder.*"), r"names pattern 'encoder\.\*' matches no parameter\. Parameter names"),
        (MaxNorm(1.0, names=re.compile("weight")), r"re\.compile\('weight'\) matches no parameter"),
        (MaxNorm(1.0, modules=nn.Conv1d), r"modules=\('Conv1d',\) matches no submodule.*Linear"),
        (MaxNorm(1.0, names="*.bias"), r"matches only biases .*pass include_bias=True"),
        (MaxNorm(1.0, modules=nn.Tanh), r"modules=\('Tanh',\) matches no submodule"),
        (MaxNorm(1.0, modules=nn.Linear, names="rnn.*"), r"matches no parameter of the chosen modules"),
    ],
)
def test_a_selection_that_matches_nothing_stops_fit(tmp_path, constraint, match):
    with pytest.raises(ValueError, match=match):
        tiny_trainer(tmp_path, callbacks=[constraint]).fit(TinyRegressor(), RandomRegressionData())


def test_a_model_without_default_layers_is_an_error():
    with pytest.raises(ValueError, match=r"found no parameter to constrain.*modules=\.\.\. or names=\.\.\."):
        MaxNorm(1.0).select_parameters(nn.Sequential(nn.LayerNorm(3)))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: MaxNorm(-1.0), ValueError, r"max_value must be a finite number >= 0, got -1\.0"),
        (lambda: MaxNorm(0.0), ValueError, r"max_value must be a finite number > 0 \(0 would zero every"),
        (lambda: MaxNorm(float("nan")), ValueError, r"max_value must be a finite number >= 0, got nan"),
        (lambda: MaxNorm(True), TypeError, r"max_value must be a number >= 0, got bool"),
        (lambda: MinMaxNorm(0.0, 0.0), ValueError, r"max_value must be a finite number > 0"),
        (lambda: MinMaxNorm(0.1, 1.0, rate=0.0), ValueError, r"rate must be in \(0, 1\] \(0 would never move"),
        (lambda: MinMaxNorm(2.0, 1.0), ValueError, r"min_value must be <= max_value"),
        (lambda: MinMaxNorm(0.0, 1.0, rate=2.0), ValueError, r"rate must be in \[0, 1\], got 2\.0"),
        (lambda: MinMaxNorm(-1.0, 1.0), ValueError, r"min_value must be a finite number >= 0"),
        (lambda: MaxNorm(modules=nn.Linear(2, 2)), TypeError, r"pass the class \(torch\.nn\.Linear\), not an instance"),
        (lambda: MaxNorm(modules=()), ValueError, r"modules must name at least one module class"),
        (lambda: UnitNorm(names=3), TypeError, r"names must be a glob str, a re\.Pattern"),
        (lambda: NonNeg(names=[]), ValueError, r"names must be a glob str, a re\.Pattern or a non-empty sequence"),
        (lambda: NonNeg(names=["a", 1]), TypeError, r"each pattern in names must be a glob str"),
    ],
)
def test_bad_arguments_say_what_to_change(make, error, match):
    with pytest.raises(error, match=match):
        make()


DDP_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import torch
import lightning.pytorch as pl
from regdrop.callbacks import MaxNorm
from tests.callbacks.models import RandomRegressionData, TinyRegressor

if __name__ == "__main__":
    pl.seed_everything(0)
    constraint = MaxNorm(0.5, project_on_fit_start=True)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, limit_train_batches=3, limit_val_batches=1,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, logger=False,
        num_sanity_val_steps=0, default_root_dir={out!r}, callbacks=[constraint],
    )
    model = TinyRegressor(recurrent=True, lr=0.5)
    trainer.fit(model, RandomRegressionData(seq_len=5, batch_size=8))
    torch.save(
        {{"state": model.state_dict(), "count": constraint.projection_count}},
        {out!r} + f"/rank{{trainer.global_rank}}.pt",
    )
    torch.distributed.destroy_process_group()  # gloo's threads abort the process at exit without it (pytorch#190489)
"""


@pytest.mark.slow
def test_ddp_ranks_end_with_identical_constrained_weights(tmp_path):
    script = tmp_path / "ddp_constraints.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(root=str(REPO_ROOT), out=str(tmp_path))))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0["count"] == rank1["count"] == 6
    for name, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][name]), name
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"):
        assert _unit_norms(rank0["state"][name]).max() <= 0.5 + 1e-6


def test_max_norm_accepts_keras_axis_0_and_explains_other_axes() -> None:
    from regdrop.callbacks import MaxNorm

    assert MaxNorm(max_value=2, axis=0).max_value == 2
    with pytest.raises(ValueError, match=r"axis must be 0 .*got 1; regdrop keeps PyTorch's \(out, in\)"):
        MaxNorm(2.0, axis=1)
