"""A callback that logs Monte Carlo dropout uncertainty on validation data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor
from typing_extensions import override

from regdrop.functional._validation import check_nonnegative, check_positive_int
from regdrop.uncertainty import _check_samples, mc_predict

__all__ = ["MCDropoutUncertainty"]


class MCDropoutUncertainty(Callback):
    r"""Log the MC-dropout predictive uncertainty, and for regression its interval coverage, on validation data.

    At the end of a validation epoch, for the first ``max_batches`` batches of the first
    validation dataloader, :func:`regdrop.mc_predict` runs ``samples`` forward passes of
    ``pl_module(input)`` with every dropout active and gives a mean :math:`\mu` and a
    standard deviation :math:`\sigma` per output element. Logged (averaged over those
    elements, and over ranks under DDP):

    - ``"mc/mean_std"``: the mean of :math:`\sigma`;
    - ``"mc/coverage"``, when the targets are floating point (regression): the fraction of
      targets inside :math:`\mu \pm z\,\sigma`. Around 0.95 with ``interval_z=1.96`` means
      the dropout's spread matches the errors; far below, the model is overconfident.

    A batch is read by :meth:`unpack_batch`: a tensor is the input, a tuple or list is
    ``(input, target, ...)``. Override it for other batch layouts.

    Args:
        samples: forward passes per batch (at least 2). Default: 20.
        every_n_epochs: run at the end of every n-th training epoch's validation (always
            under ``trainer.validate``; never in the sanity check). Default: 1.
        interval_z: :math:`z`, half-width of the interval in standard deviations. Default: 1.96.
        max_batches: how many validation batches to use. Default: 4.
        transform: applied to each pass's output, as in :func:`regdrop.mc_predict`
            (e.g. ``lambda out: out.squeeze(-1)``). Default: ``None``.

    Raises:
        ValueError: if ``samples`` < 2, ``every_n_epochs`` or ``max_batches`` < 1, or
            ``interval_z`` < 0.
        TypeError: at validation, if a batch is neither a tensor nor a tuple/list.

    Example:
        >>> MCDropoutUncertainty(samples=10, max_batches=2)
        MCDropoutUncertainty(samples=10, every_n_epochs=1, interval_z=1.96, max_batches=2)
    """

    def __init__(
        self,
        samples: int = 20,
        every_n_epochs: int = 1,
        interval_z: float = 1.96,
        max_batches: int = 4,
        transform: Callable[[Any], Tensor] | None = None,
    ) -> None:
        self.samples = _check_samples(samples)
        self.every_n_epochs = check_positive_int("every_n_epochs", every_n_epochs)
        self.interval_z = check_nonnegative("interval_z", interval_z)
        self.max_batches = check_positive_int("max_batches", max_batches)
        self.transform = transform
        self._batches: list[tuple[Tensor, Tensor | None]] = []
        self._due = False
        self._shape_warned = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(samples={self.samples}, every_n_epochs={self.every_n_epochs}, "
            f"interval_z={self.interval_z}, max_batches={self.max_batches})"
        )

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(
            samples=self.samples,
            every_n_epochs=self.every_n_epochs,
            interval_z=self.interval_z,
            max_batches=self.max_batches,
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"shape_warned": self._shape_warned}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._shape_warned = bool(state_dict.get("shape_warned", False))

    def unpack_batch(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """Return ``(input, target)`` of a validation batch; ``target`` is ``None`` when there is none.

        Raises:
            TypeError: if the batch is neither a tensor nor a tuple/list starting with a tensor.
        """
        if isinstance(batch, Tensor):
            return batch, None
        if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
            target = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
            return batch[0], target
        raise TypeError(
            f"{type(self).__name__}: cannot find the input in a batch of type {type(batch).__name__}; "
            "batches must be a tensor or a tuple/list (input, target, ...). For other layouts subclass it "
            "and override unpack_batch(batch) -> (input, target)"
        )

    def _is_due(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking:
            return False
        if trainer.state.fn != "fit":
            return True
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    @override
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._batches = []
        self._due = self._is_due(trainer)

    @override
    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._due and dataloader_idx == 0 and len(self._batches) < self.max_batches:
            self._batches.append(self.unpack_batch(batch))

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._due or not self._batches:
            return
        std_sum, std_count, inside, covered_count = 0.0, 0, 0, 0
        for input, target in self._batches:
            mean, std = mc_predict(pl_module, input, samples=self.samples, transform=self.transform)
            std_sum += float(std.double().sum())
            std_count += std.numel()
            if target is not None and target.is_floating_point():
                if target.numel() != mean.numel():
                    self._warn_shape(target, mean)
                    continue
                target = target.reshape(mean.shape).to(mean.dtype)
                inside += int(((target - mean).abs() <= self.interval_z * std).sum())
                covered_count += target.numel()
        self._batches = []
        device = pl_module.device
        pl_module.log("mc/mean_std", torch.tensor(std_sum / max(std_count, 1), device=device), sync_dist=True)
        if covered_count:
            pl_module.log("mc/coverage", torch.tensor(inside / covered_count, device=device), sync_dist=True)

    def _warn_shape(self, target: Tensor, mean: Tensor) -> None:
        if not self._shape_warned:
            rank_zero_warn(
                f"{type(self).__name__}: targets of shape {tuple(target.shape)} do not match predictions of shape "
                f"{tuple(mean.shape)}, so no coverage is logged; pass transform= to bring the model's output "
                "to the target's shape"
            )
            self._shape_warned = True
