"""A callback that adds the concrete-dropout regularizer of every learned rate to the training objective."""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch.optim import Optimizer
from typing_extensions import override

from regdrop.functional._validation import check_nonnegative, check_positive_int
from regdrop.nn.concrete import concrete_modules, concrete_regularization, learned_rate_parameters

__all__ = ["ConcreteRegularization"]


def _dataset_size(trainer: pl.Trainer) -> int | None:
    loader: Any = trainer.train_dataloader
    loaders = loader if isinstance(loader, (list, tuple)) else [loader]
    if isinstance(loader, dict):
        loaders = list(loader.values())
    sizes = [len(dl.dataset) for dl in loaders if isinstance(getattr(dl, "dataset", None), Sized)]
    return sum(sizes) if sizes and len(sizes) == len(loaders) else None


class ConcreteRegularization(Callback):
    r"""Add :func:`regdrop.nn.concrete_regularization` of the model to the training objective.

    Concrete dropout (Gal, Hron & Kendall 2017) needs its regularizer in the loss, scaled by
    the training set's size :math:`N`, or the learned rates only go down. A callback cannot
    change the loss ``training_step`` returns, so this one adds the regularizer's *gradient*:
    in ``on_before_optimizer_step`` it computes :math:`R` and adds :math:`\partial R /
    \partial \ell` to the ``.grad`` of every learned-rate logit that the stepping optimizer
    holds. That hook runs once per real optimizer step, after the backward passes of all
    accumulated batches, after mixed precision has unscaled the gradients and before
    gradient clipping, so the result is the gradient of ``mean loss + R`` under
    accumulation, AMP and DDP alike (every rank holds the same logits, hence the same
    :math:`\partial R/\partial \ell`). :math:`R` only depends on the rates (the weight term is
    left to ``weight_decay``), so nothing else changes. The value of :math:`R` is logged as
    ``"concrete_regularization"``.

    Without Lightning, add it to the loss in one line:
    ``loss = loss + regdrop.nn.concrete_regularization(model, len(train_set))``.

    Args:
        dataset_size: :math:`N`; ``None`` reads ``len(dataset)`` of the training dataloader(s)
            when training starts. Default: ``None``.
        length_scale: :math:`l`, see :func:`regdrop.nn.concrete_regularization`. Default: 1e-2.
        precision: :math:`\tau`. Default: 1.
        log: log :math:`R` each step with ``pl_module.log``. Default: ``True``.

    Raises:
        ValueError: if ``dataset_size`` is not >= 1; when training starts, if it is ``None``
            and the training dataset has no length.

    Warns:
        UserWarning: when the model has no learned rate, or a learned rate is in no optimizer.

    Example:
        >>> ConcreteRegularization(dataset_size=5000)
        ConcreteRegularization(dataset_size=5000, length_scale=0.01, precision=1.0)
    """

    def __init__(
        self,
        dataset_size: int | None = None,
        length_scale: float = 1e-2,
        precision: float = 1.0,
        log: bool = True,
    ) -> None:
        self.dataset_size = None if dataset_size is None else check_positive_int("dataset_size", dataset_size)
        self.length_scale = check_nonnegative("length_scale", length_scale)
        self.precision = check_nonnegative("precision", precision)
        if self.precision == 0.0:
            raise ValueError(f"precision must be a finite number > 0, got {self.precision}")
        self.log = bool(log)
        self._n: int | None = self.dataset_size

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dataset_size={self.dataset_size}, length_scale={self.length_scale}, "
            f"precision={self.precision})"
        )

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.dataset_size is None:
            self._n = _dataset_size(trainer)
            if self._n is None:
                raise ValueError(
                    "ConcreteRegularization: the training dataset has no len(), so its size is unknown; "
                    "pass ConcreteRegularization(dataset_size=N)"
                )
        modules = concrete_modules(pl_module)
        if not modules:
            rank_zero_warn("ConcreteRegularization: the model has no learned dropout rate, so it adds nothing")
        held = {id(p) for opt in trainer.optimizers for group in opt.param_groups for p in group["params"]}
        names = {id(p): name for name, p in pl_module.named_parameters()}
        orphans = [
            names.get(id(p), "?") for _, module in modules for p in learned_rate_parameters(module) if id(p) not in held
        ]
        if orphans:
            rank_zero_warn(
                f"ConcreteRegularization: the learned rates {orphans} are in no optimizer, so they stay fixed"
            )

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        if self._n is None:
            return
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        logits = [
            p
            for _, module in concrete_modules(pl_module)
            for p in learned_rate_parameters(module)
            if p.requires_grad and id(p) in held
        ]
        if not logits:
            return
        with torch.enable_grad():
            reg = concrete_regularization(
                pl_module,
                self._n,
                length_scale=self.length_scale,
                precision=self.precision,
            )
            grads = torch.autograd.grad(reg, logits, allow_unused=True)
        for p, g in zip(logits, grads, strict=True):
            if g is None:
                continue
            p.grad = g.to(p.dtype) if p.grad is None else p.grad + g.to(p.grad.dtype)
        if self.log:
            pl_module.log(
                "concrete_regularization",
                reg.detach(),
                on_step=True,
                on_epoch=False,
                batch_size=1,
            )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"dataset_size": self._n}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.dataset_size is None:
            self._n = state_dict.get("dataset_size", self._n)
