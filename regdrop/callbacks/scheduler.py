"""A callback that warms dropout rates up over epochs or optimizer steps."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import nn
from typing_extensions import override

from regdrop.functional._validation import check_rate
from regdrop.nn.rates import check_rate_names, dropout_rates, learned_rate_keys, set_dropout_rates

__all__ = ["DropoutScheduler", "scheduled_rate"]

ScheduleFn = Callable[[int, float], float]
_SCHEDULES = ("linear", "cosine")


def scheduled_rate(
    schedule: Literal["linear", "cosine"], progress: int, warmup: int, start: float, target: float
) -> float:
    r"""Return the rate of a warm-up from ``start`` to ``target`` after ``progress`` epochs or steps.

    With :math:`f = \min(t / W, 1)` (:math:`f = 1` when :math:`W = 0`),

    .. math::
        r_{\text{linear}}(t) = s + (T - s)\, f, \qquad
        r_{\text{cosine}}(t) = s + (T - s)\, \frac{1 - \cos(\pi f)}{2}.

    Args:
        schedule: ``"linear"`` or ``"cosine"``.
        progress: :math:`t`, the number of epochs (or steps) already done.
        warmup: :math:`W`, the number of epochs (or steps) the warm-up lasts.
        start: :math:`s`, the rate at :math:`t = 0`.
        target: :math:`T`, the rate from :math:`t = W` on.

    Raises:
        ValueError: if ``schedule`` is not one of the names above.

    Example:
        >>> [round(scheduled_rate("cosine", t, 4, 0.0, 0.5), 4) for t in range(6)]
        [0.0, 0.0732, 0.25, 0.4268, 0.5, 0.5]
    """
    fraction = 1.0 if warmup <= 0 else min(max(progress, 0) / warmup, 1.0)
    if schedule == "linear":
        shape = fraction
    elif schedule == "cosine":
        shape = (1.0 - math.cos(math.pi * fraction)) / 2.0
    else:
        raise ValueError(f"schedule must be one of {_SCHEDULES}, got {schedule!r}")
    return start + (target - start) * shape


def _check_rates_arg(name: str, value: object) -> float | dict[str, float]:
    if isinstance(value, Mapping):
        return {str(key): check_rate(f"{name}[{key!r}]", rate) for key, rate in value.items()}
    return check_rate(name, value)


class DropoutScheduler(Callback):
    r"""Warm the model's dropout rates up from ``start`` to their targets, over epochs or steps.

    Every rate that :func:`regdrop.nn.dropout_rates` finds (regdrop's modules, the rates
    of ``regdrop.nn.LSTM``/``GRU``, torch's dropout layers and RNNs) can be scheduled. At
    the start of each epoch (``interval="epoch"``, :math:`t` = epochs done) or before each
    training batch (``interval="step"``, :math:`t` = optimizer steps done) the rate is set to
    :func:`scheduled_rate` ``(schedule, t, warmup, start, target)``, or to
    ``schedule(t, target)`` when ``schedule`` is a callable, and logged as
    ``"dropout/<rate name>"``.

    Targets are read once, when fitting first starts: a rate's target is ``target`` (its
    entry when ``target`` is a mapping) or else the rate the model has then, i.e. the one it
    was built with. A rate that is 0 then stays 0 (a regularizer switched off stays off)
    unless ``target`` or ``start`` is a mapping that names it. The targets are part of
    :meth:`state_dict`, so a run resumed from a checkpoint continues the schedule exactly.
    When fitting stops before the warm-up ends the rates keep their last scheduled values;
    ``regdrop.nn.set_dropout_rates(model, scheduler.targets)`` puts the targets back.

    Args:
        schedule: ``"linear"``, ``"cosine"``, or a callable ``(t, target) -> rate``.
            Default: ``"linear"``.
        warmup: epochs (or steps) from ``start`` to target; required for a named schedule,
            unused by a callable. Default: ``None``.
        interval: ``"epoch"`` or ``"step"``. Default: ``"epoch"``.
        start: the rate at :math:`t = 0`: a float for every scheduled rate, or a mapping from
            rate names to floats (rates it does not name start at 0). Default: 0.
        target: ``None`` (the model's own rates), a float for every scheduled rate, or a
            mapping from rate names to floats. Default: ``None``.
        log_rates: log each scheduled rate with ``pl_module.log``. Default: ``True``.

    Raises:
        ValueError: if ``schedule`` or ``interval`` is an unknown name, ``warmup`` is missing
            or negative, a rate in ``start`` or ``target`` is outside [0, 1]; when fitting
            starts, if a mapping names a rate the model does not have (the error lists the
            rates it has) or a callable schedule returns a rate outside [0, 1].
        TypeError: if ``schedule`` is neither a name nor a callable.

    Example:
        >>> model = nn.Sequential(nn.LSTM(4, 8, num_layers=2, dropout=0.4), nn.Dropout(0.2))
        >>> scheduler = DropoutScheduler("linear", warmup=4)
        >>> scheduler.read_targets(model)  # done for you when trainer.fit starts
        {'0.dropout': 0.4, '1.p': 0.2}
        >>> [round(scheduler.rates_at(t)["0.dropout"], 3) for t in range(6)]
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.4]
        >>> scheduler
        DropoutScheduler(schedule='linear', warmup=4, interval='epoch', start=0.0, target=None)
    """

    def __init__(
        self,
        schedule: Literal["linear", "cosine"] | ScheduleFn = "linear",
        warmup: int | None = None,
        interval: Literal["epoch", "step"] = "epoch",
        start: float | Mapping[str, float] = 0.0,
        target: float | Mapping[str, float] | None = None,
        log_rates: bool = True,
    ) -> None:
        if isinstance(schedule, str):
            if schedule not in _SCHEDULES:
                raise ValueError(
                    f"schedule must be 'linear', 'cosine' or a callable (progress, target) -> rate, got {schedule!r}"
                )
            if warmup is None:
                raise ValueError(
                    f"warmup is required with schedule={schedule!r}: the number of {interval}s over which "
                    "the rates go from start to target, e.g. DropoutScheduler(warmup=5)"
                )
        elif callable(schedule):
            if warmup is not None:
                rank_zero_warn("DropoutScheduler: warmup has no effect with a callable schedule; leave it out")
            if not (isinstance(start, numbers.Real) and float(start) == 0.0):
                rank_zero_warn("DropoutScheduler: start has no effect with a callable schedule; leave it out")
        else:
            raise TypeError(
                "schedule must be 'linear', 'cosine' or a callable (progress, target) -> rate, "
                f"got {type(schedule).__name__} {schedule!r}"
            )
        if warmup is not None:
            if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral):
                raise TypeError(f"warmup must be an int >= 0, got {type(warmup).__name__} {warmup!r}")
            if warmup < 0:
                raise ValueError(f"warmup must be an int >= 0, got {warmup}")
            warmup = int(warmup)
        if interval not in ("epoch", "step"):
            raise ValueError(f"interval must be 'epoch' or 'step', got {interval!r}")
        self.schedule = schedule
        self.warmup = warmup
        self.interval = interval
        self.start = _check_rates_arg("start", start)
        self.target = None if target is None else _check_rates_arg("target", target)
        self.log_rates = log_rates
        self._targets: dict[str, float] | None = None
        self._starts: dict[str, float] | None = None
        self._applied_epoch: int | None = None  # the epoch whose rates the model holds

    @property
    def targets(self) -> dict[str, float] | None:
        """The target of each scheduled rate, or ``None`` before they are read."""
        return None if self._targets is None else dict(self._targets)

    def read_targets(self, model: nn.Module) -> dict[str, float]:
        """Fix which rates are scheduled, and their targets and starts, from ``model``'s rates.

        Raises:
            ValueError: if ``start`` or ``target`` is a mapping that names a rate the model
                does not have, or a learned rate.

        Learned rates (:func:`regdrop.nn.learned_rate_keys`, e.g. ``ConcreteDropout``'s ``p`` or
        the rates of ``regdrop.nn.LSTM(..., learn_rates=True)``) are parameters of the
        optimizer and are not scheduled; a warning names them. The layer's other rates
        (``weight_dropout``, ``zoneout``, rates it does not learn) are scheduled as usual.
        """
        learned = learned_rate_keys(model)
        current = {name: rate for name, rate in dropout_rates(model).items() if name not in learned}
        if learned:
            rank_zero_warn(f"DropoutScheduler: the learned rates {learned} are left to the optimizer, not scheduled")
        named: set[str] = set()
        for arg_name, arg in (("start", self.start), ("target", self.target)):
            if isinstance(arg, dict):
                check_rate_names("DropoutScheduler", arg_name, arg, current, learned, "scheduled")
                named |= set(arg)
        targets: dict[str, float] = {}
        starts: dict[str, float] = {}
        for name, rate in current.items():
            if rate <= 0.0 and name not in named:
                continue
            if isinstance(self.target, dict):
                targets[name] = self.target.get(name, rate)
            else:
                targets[name] = rate if self.target is None else self.target
            starts[name] = self.start.get(name, 0.0) if isinstance(self.start, dict) else self.start
        if not targets:
            rank_zero_warn(
                f"DropoutScheduler: {type(model).__name__} has no dropout rate > 0 to schedule "
                f"(its rates: {current or 'none'}); pass target= to schedule rates that are 0"
            )
        self._targets, self._starts = targets, starts
        return dict(targets)

    def rates_at(self, progress: int) -> dict[str, float]:
        """Return the scheduled rates after ``progress`` epochs (or steps).

        Raises:
            RuntimeError: if the targets are not read yet (before fitting starts).
        """
        if self._targets is None or self._starts is None:
            raise RuntimeError(
                "DropoutScheduler: the targets are read when fitting starts; call read_targets(model) first"
            )
        if callable(self.schedule):
            return {name: self.schedule(progress, target) for name, target in self._targets.items()}
        assert self.warmup is not None
        return {
            name: scheduled_rate(self.schedule, progress, self.warmup, self._starts[name], target)
            for name, target in self._targets.items()
        }

    def _apply(self, pl_module: pl.LightningModule, progress: int) -> None:
        rates = set_dropout_rates(pl_module, self.rates_at(progress))
        if self.log_rates:
            on_step = self.interval == "step"
            for name in self._targets or {}:
                # Every rank holds the same rates; syncing the epoch value only silences Lightning's DDP warning.
                pl_module.log(
                    f"dropout/{name}",
                    rates[name],
                    on_step=on_step,
                    on_epoch=not on_step,
                    batch_size=1,
                    sync_dist=not on_step,
                )

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._applied_epoch = None
        if self._targets is None:
            self.read_targets(pl_module)

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.interval == "epoch":
            self._apply(pl_module, trainer.current_epoch)
            self._applied_epoch = trainer.current_epoch

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.interval == "step":
            self._apply(pl_module, trainer.global_step)
        elif self._applied_epoch != trainer.current_epoch:
            # a run resumed from a mid-epoch checkpoint re-enters its epoch without on_train_epoch_start
            self._apply(pl_module, trainer.current_epoch)
            self._applied_epoch = trainer.current_epoch

    @property
    @override
    def state_key(self) -> str:
        # two schedulers in one Trainer keep their own checkpoint state
        schedule: str = (
            self.schedule if isinstance(self.schedule, str) else getattr(self.schedule, "__qualname__", "callable")
        )
        return self._generate_state_key(
            schedule=schedule, warmup=self.warmup, interval=self.interval, start=self.start, target=self.target
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"targets": self.targets, "starts": None if self._starts is None else dict(self._starts)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        targets, starts = state_dict.get("targets"), state_dict.get("starts")
        if targets is not None:
            self._targets = dict(targets)
            self._starts = dict(starts) if starts is not None else dict.fromkeys(targets, 0.0)

    def __repr__(self) -> str:
        schedule = self.schedule if isinstance(self.schedule, str) else getattr(self.schedule, "__name__", "callable")
        return (
            f"{type(self).__name__}(schedule={schedule!r}, warmup={self.warmup}, interval={self.interval!r}, "
            f"start={self.start!r}, target={self.target!r})"
        )
