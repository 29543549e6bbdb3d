"""A callback that logs how strongly a model is being regularized."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn
from torch.nn.parameter import is_lazy
from typing_extensions import override

from regdrop.callbacks._units import is_bias, named_module_parameters, unit_layout, unit_rows
from regdrop.callbacks.constraints import default_constrained_modules
from regdrop.callbacks.scheduler import DropoutScheduler
from regdrop.nn.rates import dropout_modules, dropout_rates, learned_rate_keys

__all__ = ["RegularizationMonitor", "max_unit_norms"]


def max_unit_norms(model: nn.Module) -> dict[str, Tensor]:
    r"""Return the largest L2 norm over the output units of each weight the constraints select by default.

    For a weight :math:`W` with one row :math:`w_i` per output unit (PyTorch's
    ``(out_features, in_features, ...)`` layout, all other dims flattened), the value is
    :math:`\max_i \lVert w_i \rVert_2`, the quantity that ``MaxNorm(c)`` keeps :math:`\le c`.
    The weights are those of :func:`regdrop.callbacks.default_constrained_modules`
    (linear, convolutional and recurrent layers); biases are left out.

    Args:
        model: the model.

    Returns:
        full parameter name -> 0-D tensor on the parameter's device.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.tensor([[3.0, 4.0], [1.0, 0.0]]))
        >>> {name: float(norm) for name, norm in max_unit_norms(model).items()}
        {'0.weight': 5.0}
    """
    types = default_constrained_modules()
    norms: dict[str, Tensor] = {}
    for name, module, local_name, param in named_module_parameters(model):
        if not isinstance(module, types) or is_bias(local_name) or is_lazy(param) or param.dim() < 2:
            continue
        dim, groups = unit_layout(module, local_name, param)
        norms[name] = unit_rows(param.detach(), dim, groups).norm(dim=1).max()
    return norms


def _per_layer_rates(model: nn.Module) -> dict[str, float]:
    """``"dropout/<layer>.<rate>_l<k>"`` for the learned rates of stacked recurrent layers (one
    per layer; the rate itself is logged as their mean)."""
    metrics: dict[str, float] = {}
    for name, module in dropout_modules(model):
        per_layer: Callable[[], dict[str, float]] | None = getattr(module, "learned_rates_per_layer", None)
        if callable(per_layer) and getattr(module, "num_layers", 1) > 1:
            prefix = f"{name}." if name else ""
            metrics.update({f"dropout/{prefix}{key}": rate for key, rate in per_layer().items()})
    return metrics


class RegularizationMonitor(Callback):
    r"""Log the generalization gap, weight norms, clipped fractions and dropout rates.

    What is logged, through ``pl_module.log`` (so it reaches every logger of the trainer,
    e.g. TensorBoard, and ``trainer.callback_metrics``):

    - ``"generalization_gap"``: :math:`\text{val\_key} - \text{train\_key}`, at the end of
      each training epoch in which validation ran. Log the training loss with
      ``on_epoch=True`` so that this is the epoch mean, not the last batch (a key logged
      step-only, Lightning's default in ``training_step``, is warned about once per fit).
      The training loss is measured with dropout on, so this gap is often negative.
    - ``"generalization_gap_eval"`` (with ``true_gap_batches=k > 0``): :math:`\text{val\_key}
      - \bar L_{\text{eval}}`, where :math:`\bar L_{\text{eval}}` is the mean over the first
      ``k`` batches of ``trainer.train_dataloader`` of ``pl_module.compute_loss(batch)``
      (a method the LightningModule must define: the training loss of a batch as a 0-D
      tensor, without logging), computed at the end of each validation epoch of fitting in
      eval mode (dropout off) under ``torch.no_grad()``; every module's train/eval flag is
      restored afterwards.
    - ``"max_unit_norm/<parameter>"``: :func:`max_unit_norms`, the largest norm of an output
      unit of each weight of the linear, convolutional and recurrent layers.
    - ``"clipped_fraction/<parameter>"``: the fraction of units the latest projection of a
      weight constraint changed, for each callback of the trainer with a
      ``last_clip_fraction`` mapping (``MaxNorm``, ``UnitNorm``, ...).
    - ``"dropout/<rate>"``: :func:`regdrop.nn.dropout_rates`; left to the
      :class:`DropoutScheduler` when the trainer has one that logs them, except learned
      rates (``ConcreteDropout``, the mean over units for per-unit rates; ``regdrop.nn.LSTM``
      / ``GRU`` with ``learn_rates``, the mean over layers), logged here always. A stacked
      recurrent layer's learned rates are also logged per layer, ``"dropout/<rate>_l<k>"``
      (``"dropout/rnn.recurrent_dropout_l1"``; ``dropout_l<k>`` is the mask on layer
      :math:`k`'s input).

    With ``logging_interval="epoch"`` all of these are logged at the end of each training
    epoch. With ``"step"``, norms, clipped fractions and rates are written to the trainer's
    loggers after every ``Trainer(log_every_n_steps=...)``-th optimizer step, at the same
    steps as Lightning's own step metrics (only on global rank 0); the gap stays per epoch.

    Args:
        logging_interval: ``"epoch"`` or ``"step"``. Default: ``"epoch"``.
        norms: log the maximum row norms. Default: ``True``.
        rates: log the dropout rates. Default: ``True``.
        gap: log the generalization gap. Default: ``True``.
        clipped: log the fractions clipped by weight constraints. Default: ``True``.
        train_key: the metric holding the training loss. Default: ``"train_loss"``.
        val_key: the metric holding the validation loss. Default: ``"val_loss"``.
        true_gap_batches: number of training batches for ``"generalization_gap_eval"``;
            ``0`` turns it off. Default: ``0``.

    Raises:
        ValueError: if ``logging_interval`` is not ``"epoch"`` or ``"step"``.
        TypeError: if ``train_key`` or ``val_key`` is not a str, if ``true_gap_batches`` is not
            an int, or (at fit start) if it is positive and the module has no ``compute_loss``.
        ValueError: if ``true_gap_batches`` is negative.

    Warns:
        UserWarning: once, when ``train_key`` or ``val_key`` has not been logged by the end
            of the first epoch with validation (the warning lists the metrics that were); when
            fitting ends without any validation while ``gap=True``; once per fit, when
            ``train_key`` is logged step-only (no ``on_epoch=True``); with
            ``logging_interval="step"`` and a trainer without loggers.

    Example:
        >>> monitor = RegularizationMonitor(val_key="val_mse")  # then Trainer(callbacks=[monitor, ...])
        >>> monitor.train_key, monitor.val_key, monitor.logging_interval
        ('train_loss', 'val_mse', 'epoch')
    """

    def __init__(
        self,
        logging_interval: Literal["epoch", "step"] = "epoch",
        norms: bool = True,
        rates: bool = True,
        gap: bool = True,
        clipped: bool = True,
        train_key: str = "train_loss",
        val_key: str = "val_loss",
        true_gap_batches: int = 0,
    ) -> None:
        if logging_interval not in ("epoch", "step"):
            raise ValueError(f"logging_interval must be 'epoch' or 'step', got {logging_interval!r}")
        for arg_name, key in (("train_key", train_key), ("val_key", val_key)):
            if not isinstance(key, str):
                raise TypeError(f"{arg_name} must be the str name of a logged metric, got {type(key).__name__} {key!r}")
        if isinstance(true_gap_batches, bool) or not isinstance(true_gap_batches, int):
            kind = type(true_gap_batches).__name__
            raise TypeError(f"true_gap_batches must be an int, got {kind} {true_gap_batches!r}")
        if true_gap_batches < 0:
            raise ValueError(f"true_gap_batches must be >= 0 (0 turns it off), got {true_gap_batches}")
        if not (norms or rates or gap or clipped):
            rank_zero_warn("RegularizationMonitor: norms, rates, gap and clipped are all False, so it logs nothing")
        self.logging_interval = logging_interval
        self.norms = bool(norms)
        self.rates = bool(rates)
        self.gap = bool(gap)
        self.clipped = bool(clipped)
        self.train_key = train_key
        self.val_key = val_key
        self.true_gap_batches = true_gap_batches
        self._eval_train_loss: Tensor | None = None
        self._step_only_checked = False
        self._epoch_start_value: object = None
        self._validated_this_epoch = False
        self._ever_validated = False
        self._keys_checked = False
        self._last_step = -1

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(logging_interval={self.logging_interval!r}, norms={self.norms}, "
            f"rates={self.rates}, gap={self.gap}, clipped={self.clipped}, train_key={self.train_key!r}, "
            f"val_key={self.val_key!r}, true_gap_batches={self.true_gap_batches})"
        )

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(
            logging_interval=self.logging_interval,
            norms=self.norms,
            rates=self.rates,
            gap=self.gap,
            clipped=self.clipped,
            train_key=self.train_key,
            val_key=self.val_key,
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        # a resumed run does not warn again about missing keys it already warned about
        return {"keys_checked": self._keys_checked}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._keys_checked = bool(state_dict.get("keys_checked", False))

    # ---------------------------------------------------------------- what to log
    def _rates_left_to_scheduler(self, trainer: pl.Trainer) -> bool:
        return any(isinstance(cb, DropoutScheduler) and cb.log_rates for cb in trainer.callbacks)  # type: ignore[attr-defined]

    def _collect(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float | Tensor]:
        metrics: dict[str, float | Tensor] = {}
        if self.norms:
            metrics.update({f"max_unit_norm/{name}": norm for name, norm in max_unit_norms(pl_module).items()})
        if self.clipped:
            metrics.update(self._clip_fractions(trainer))
        if self.rates:
            # A scheduler logs only the rates it schedules; learned rates are never among them.
            keep = learned_rate_keys(pl_module) if self._rates_left_to_scheduler(trainer) else None
            rates = dropout_rates(pl_module).items()
            metrics.update({f"dropout/{name}": rate for name, rate in rates if keep is None or name in keep})
            metrics.update(_per_layer_rates(pl_module))
        return metrics

    @staticmethod
    def _clip_fractions(trainer: pl.Trainer) -> dict[str, float]:
        fractions: dict[str, float] = {}
        # Lightning sets Trainer.callbacks and log_every_n_steps in its connectors, so mypy can't see them
        sources = [cb for cb in trainer.callbacks if isinstance(getattr(cb, "last_clip_fraction", None), Mapping)]  # type: ignore[attr-defined]
        for index, cb in enumerate(sources):
            for name, fraction in cb.last_clip_fraction.items():
                key = f"clipped_fraction/{name}"
                if key in fractions:  # two constraints on one weight: keep both, told apart
                    key = f"clipped_fraction/{type(cb).__name__}{index}/{name}"
                fractions[key] = float(fraction)
        return fractions

    def _log_gap(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        missing = [key for key in (self.train_key, self.val_key) if key not in metrics]
        if missing:
            if not self._keys_checked:
                rank_zero_warn(
                    f"RegularizationMonitor: {' and '.join(map(repr, missing))} "
                    f"{'was' if len(missing) == 1 else 'were'} not logged by the end of the first epoch with "
                    f"validation, so no generalization gap is logged; the logged metrics are {sorted(metrics)}. "
                    "Pass train_key=/val_key= naming the losses your LightningModule logs with self.log, "
                    "or gap=False"
                )
        else:
            gap = torch.as_tensor(metrics[self.val_key]).float() - torch.as_tensor(metrics[self.train_key]).float()
            pl_module.log("generalization_gap", gap, on_step=False, on_epoch=True, batch_size=1, sync_dist=True)
        if self._eval_train_loss is not None and self.val_key in metrics:
            val = torch.as_tensor(metrics[self.val_key]).float().to(self._eval_train_loss.device)
            gap_eval = val - self._eval_train_loss
            log_kwargs: dict[str, Any] = {"on_step": False, "on_epoch": True, "batch_size": 1, "sync_dist": True}
            pl_module.log("generalization_gap_eval", gap_eval, **log_kwargs)
        self._eval_train_loss = None
        self._keys_checked = True

    def _check_step_only(self, trainer: pl.Trainer) -> None:
        # Lightning's public behaviour: a key logged with on_epoch=False enters callback_metrics
        # after the first batch, with no "<key>_step" twin; an epoch-only key enters it only at
        # the epoch's end (so it keeps the value it had when the epoch started).
        self._step_only_checked = True
        metrics = trainer.callback_metrics
        value = metrics.get(self.train_key)
        if value is None or value is self._epoch_start_value or f"{self.train_key}_step" in metrics:
            return
        rank_zero_warn(
            f"RegularizationMonitor: {self.train_key!r} is logged per step only (Lightning's default for "
            "self.log in training_step), so generalization_gap uses the last batch's loss, not the epoch mean; "
            f"log it with self.log({self.train_key!r}, loss, on_epoch=True)"
        )

    def _eval_mode_train_loss(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Tensor | None:
        loader = trainer.train_dataloader
        if loader is None:
            return None
        compute_loss: Callable[[Any], Any] = getattr(pl_module, "compute_loss")  # noqa: B009 (a user method)
        flags = [(module, module.training) for module in pl_module.modules()]
        losses: list[Tensor] = []
        try:
            pl_module.eval()
            with torch.no_grad():
                for index, batch in enumerate(loader):
                    if index >= self.true_gap_batches:
                        break
                    batch = trainer.strategy.batch_to_device(batch, pl_module.device)
                    losses.append(torch.as_tensor(compute_loss(batch)).detach().float().reshape(()))
        finally:
            for module, training in flags:
                module.training = training
        return torch.stack(losses).mean() if losses else None

    # ---------------------------------------------------------------- Lightning hooks
    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validated_this_epoch = False
        self._ever_validated = False
        self._last_step = trainer.global_step
        self._step_only_checked = not self.gap
        self._eval_train_loss = None
        if self.true_gap_batches > 0 and not callable(getattr(pl_module, "compute_loss", None)):
            raise TypeError(
                f"RegularizationMonitor(true_gap_batches={self.true_gap_batches}) needs a method "
                f"compute_loss(batch) -> Tensor on the LightningModule, which {type(pl_module).__name__} lacks; "
                "define it (the training loss of a batch, without self.log) or pass true_gap_batches=0"
            )
        if self.logging_interval == "step" and not trainer.loggers:
            rank_zero_warn(
                "RegularizationMonitor(logging_interval='step') writes to the trainer's loggers and the "
                "Trainer has none; give it a logger or use logging_interval='epoch'"
            )

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._validated_this_epoch = True
            self._ever_validated = True
            if self.gap and self.true_gap_batches > 0:
                self._eval_train_loss = self._eval_mode_train_loss(trainer, pl_module)

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start_value = trainer.callback_metrics.get(self.train_key)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._step_only_checked:
            self._check_step_only(trainer)
        if self.logging_interval != "step" or trainer.global_step == self._last_step:
            return  # no optimizer step in this batch (gradient accumulation), or epoch logging
        self._last_step = trainer.global_step
        every = trainer.log_every_n_steps  # type: ignore[attr-defined]
        if not trainer.is_global_zero or every <= 0 or trainer.global_step % every != 0:
            return
        metrics = {key: float(value) for key, value in self._collect(trainer, pl_module).items()}
        if metrics:
            # Lightning writes this batch's own step metrics at step global_step - 1.
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step - 1)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.logging_interval == "epoch":
            for key, value in self._collect(trainer, pl_module).items():
                pl_module.log(key, value, on_step=False, on_epoch=True, batch_size=1, sync_dist=True)
        if self.gap and self._validated_this_epoch:
            self._log_gap(trainer, pl_module)
        self._validated_this_epoch = False

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.gap and not self._ever_validated and trainer.current_epoch > 0:
            rank_zero_warn(
                "RegularizationMonitor: validation never ran during fitting, so no generalization gap was "
                "logged; give the Trainer validation data (val_dataloaders=...) or pass gap=False"
            )
