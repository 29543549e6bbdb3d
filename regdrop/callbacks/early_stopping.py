r"""Lightning's ``EarlyStopping`` with Keras's ``restore_best_weights``, ``start_from_epoch`` and ``baseline``.

It extends two private methods of Lightning's class, ``_run_early_stopping_check(trainer)`` and
``_evaluate_stopping_criteria(current)``: the Lightning range in pyproject is the one this was tested
on, ``tests/callbacks/test_early_stopping.py`` watches both methods' signatures, and a differential
test runs this class beside Lightning's own on the arguments they share.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping as _LightningEarlyStopping
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from torch import Tensor
from typing_extensions import override

from regdrop.functional._validation import check_finite_number, check_nonnegative_int

__all__ = ["EarlyStopping"]

log = logging.getLogger(__name__)


class EarlyStopping(_LightningEarlyStopping):
    r"""Stop training when a monitored metric stops improving, and optionally restore the best weights.

    Every argument and behaviour of :class:`lightning.pytorch.callbacks.EarlyStopping` is kept
    (``patience`` counts validation checks, ``stopping_threshold``, ``divergence_threshold``,
    ``check_finite``, ``strict``, the DDP-wide stop decision, the checkpointed state). Three
    keyword-only arguments add the meaning they have in Keras:

    - ``restore_best_weights``: at each check that improves the monitored value, a CPU copy of
      ``pl_module.state_dict()`` (parameters and buffers) is kept; when fitting ends, *whatever*
      ended it (patience, ``max_epochs``/``max_steps``, a threshold, a non-finite value, another
      callback, an exception or Ctrl+C), that copy is loaded back into the model and the epoch
      it came from is logged. The copy is saved in the callback's checkpoint state, so a run
      resumed with ``trainer.fit(ckpt_path=...)`` still restores an epoch from before the
      resume. Checkpoints written during training keep the weights they were saved with.
    - ``start_from_epoch``: checks during epochs ``0 .. start_from_epoch - 1`` are ignored entirely
      (no best value, no patience count, no threshold or finiteness test), a warm-up in which no
      improvement is expected.
    - ``baseline`` (as in Keras): a check that improves on the best value never stops training, but
      it resets the patience count only if it also beats ``baseline`` (by more than ``min_delta``);
      otherwise it counts towards patience, so once the metric stops improving without ever having
      beaten ``baseline`` training stops at the first check without improvement after ``patience``
      checks. The best weights follow the best value, even one worse than ``baseline``.

    When the weights restored come from the first check (epoch ``start_from_epoch``) although later
    checks ran, a warning says so and what to change: on a small or noisy validation set this hands
    back a barely trained network.

    With ``restore_best_weights``, let :math:`t^* = \arg\min_t m_t` (``mode="min"``) over the
    monitored checks :math:`t` with ``epoch >= start_from_epoch``; after fitting, the model's
    state equals its state at check :math:`t^*`. Under DDP the decision that a check improved is
    broadcast from rank 0, so every rank keeps and restores the same epoch's weights.

    Args:
        monitor, min_delta, patience, verbose, mode, strict, check_finite, stopping_threshold,
            divergence_threshold, check_on_train_epoch_end, log_rank_zero_only: as in Lightning,
            except that ``monitor`` defaults to ``"val_loss"`` and ``mode`` may also be
            ``"auto"`` (as in Keras: ``"max"`` when ``monitor`` contains ``"acc"`` or starts
            with ``"fmeasure"``, else ``"min"``).
        restore_best_weights: load the weights of the best check back into the model when fitting
            ends. Default: False.
        start_from_epoch: first epoch (0-based, as in Lightning's checkpoint names) whose checks count.
            Default: 0.
        baseline: a value the monitored metric must beat for a check to reset patience. Default: None.

    Attributes:
        best_epoch: epoch of the best check so far (``None`` before any).
        best_step: ``trainer.global_step`` at the best check so far (``None`` before any).
        restored_epoch: epoch whose weights were restored by the last fit, ``None`` if none were.

    Raises:
        TypeError: if ``patience`` or ``start_from_epoch`` is not an int, ``min_delta``, ``baseline``,
            ``stopping_threshold`` or ``divergence_threshold`` is not a number, or ``restore_best_weights``
            is not a bool.
        ValueError: if ``patience`` or ``start_from_epoch`` is negative, or one of those numbers is not finite.
        MisconfigurationException: if ``mode`` is not ``"min"``, ``"max"`` or ``"auto"`` (from Lightning).
        RuntimeError: during fit, if ``strict`` and ``monitor`` is not among the logged metrics
            (from Lightning).

    Example:
        >>> import lightning.pytorch as pl
        >>> early_stopping = EarlyStopping("val_loss", patience=5, restore_best_weights=True, start_from_epoch=2)
        >>> early_stopping  # doctest: +NORMALIZE_WHITESPACE
        EarlyStopping(monitor='val_loss', mode='min', patience=5, min_delta=0.0, restore_best_weights=True,
                      start_from_epoch=2, baseline=None)
        >>> trainer = pl.Trainer(callbacks=[early_stopping], logger=False)
        >>> # after trainer.fit(...): early_stopping.restored_epoch says which epoch the model holds
    """

    restore_best_weights: bool
    start_from_epoch: int
    baseline: float | None
    best_epoch: int | None
    best_step: int | None
    restored_epoch: int | None
    _best_weights: dict[str, Tensor] | None
    _checks: int
    _checks_with_metric: int

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
        *,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        baseline: float | None = None,
    ) -> None:
        check_nonnegative_int("patience", patience)
        check_finite_number("min_delta", min_delta)
        check_finite_number("stopping_threshold", stopping_threshold, optional=True)
        check_finite_number("divergence_threshold", divergence_threshold, optional=True)
        if not isinstance(restore_best_weights, bool):
            raise TypeError(
                f"restore_best_weights must be True or False, got {type(restore_best_weights).__name__}"
                f" {restore_best_weights!r}"
            )
        if mode == "auto":  # Keras: accuracy-like quantities are maximized, the others minimized
            mode = "max" if "acc" in monitor or monitor.startswith("fmeasure") else "min"
        super().__init__(
            monitor=monitor,
            min_delta=min_delta,
            patience=patience,
            verbose=verbose,
            mode=mode,
            strict=strict,
            check_finite=check_finite,
            stopping_threshold=stopping_threshold,
            divergence_threshold=divergence_threshold,
            check_on_train_epoch_end=check_on_train_epoch_end,
            log_rank_zero_only=log_rank_zero_only,
        )
        check_nonnegative_int("start_from_epoch", start_from_epoch)
        baseline = check_finite_number("baseline", baseline, optional=True)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.baseline = baseline
        self.best_epoch = None
        self.best_step = None
        self.restored_epoch = None
        self._best_weights = None
        self._checks = 0  # checks past start_from_epoch in this fit
        self._checks_with_metric = 0
        self._improved = False  # set by _evaluate_stopping_criteria for the check in progress
        self._first_check_step: int | None = None  # global step of the first counted check, across resumes
        self._last_check_step: int | None = None

    # ---------------------------------------------------------------- the check
    def _beats_baseline(self, current: Tensor) -> bool:
        baseline = torch.tensor(self.baseline, dtype=current.dtype, device=current.device)
        return bool(self.monitor_op(current - self.min_delta, baseline))

    @override
    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        wait_before = self.wait_count
        best_before = torch.as_tensor(self.best_score).detach().clone()
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        # an improvement is a new best value, compared as values (not by the identity of Lightning's tensor)
        self._improved = bool(torch.as_tensor(self.best_score).to(best_before.device) != best_before)
        if self._improved and self.baseline is not None and not self._beats_baseline(current):
            # Keras: a check that improves on the best value never stops training; it resets patience
            # only when it also beats the baseline, otherwise it counts towards patience.
            self.wait_count = wait_before + 1
            reason = f"{reason}, which does not beat baseline={self.baseline}"
        return should_stop, reason

    @override
    def _run_early_stopping_check(self, trainer: pl.Trainer) -> None:
        if trainer.current_epoch < self.start_from_epoch:
            return
        self._checks += 1
        self._checks_with_metric += int(self.monitor in trainer.callback_metrics)
        self._improved = False
        super()._run_early_stopping_check(trainer)
        if self._checks_with_metric:
            if self._first_check_step is None:
                self._first_check_step = trainer.global_step
            self._last_check_step = trainer.global_step
        # ranks that log unsynced metrics may disagree; all follow rank 0 so that they keep the same weights
        improved = bool(trainer.strategy.broadcast(self._improved, src=0))
        if improved:
            self.best_epoch = trainer.current_epoch
            self.best_step = trainer.global_step
            if self.restore_best_weights:
                state = trainer.lightning_module.state_dict()
                self._best_weights = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

    # ---------------------------------------------------------------- restoring
    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restored_epoch = None
        self._checks = 0
        self._checks_with_metric = 0

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        never_found = self._checks > 0 and self._checks_with_metric == 0
        if never_found:
            logged = ", ".join(f"`{k}`" for k in trainer.callback_metrics) or "none"
            rank_zero_warn(
                f"EarlyStopping never found `{self.monitor}` in the logged metrics ({logged}), so it never"
                " stopped training or tracked a best value"
                + (" and restored no weights" if self.restore_best_weights else "")
                + ". Log it with `self.log` or pass one of those as monitor."
            )
        self._restore(pl_module, warn=not never_found, last_epoch=trainer.current_epoch)

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore(pl_module, warn=False, why=f" after {type(exception).__name__}")

    def _restore(self, pl_module: pl.LightningModule, *, warn: bool, why: str = "", last_epoch: int = 0) -> None:
        if not self.restore_best_weights:
            return
        if self._best_weights is None:
            if warn:
                cause = (
                    f"no check ran at or after start_from_epoch={self.start_from_epoch} (fitting ended in epoch"
                    f" {last_epoch}); lower start_from_epoch or train longer"
                    if self._checks == 0
                    else "every monitored value was non-finite"
                )
                rank_zero_warn(
                    f"EarlyStopping(restore_best_weights=True) restored nothing: no check recorded a best"
                    f" `{self.monitor}`: {cause}. The model keeps its final weights."
                )
            return
        pl_module.load_state_dict(self._best_weights)
        self.restored_epoch = self.best_epoch
        rank_zero_info(
            f"EarlyStopping restored the weights of epoch={self.best_epoch} step={self.best_step}"
            f" ({self.monitor}={float(self.best_score):.6g}), the best monitored check{why}."
        )
        first, last = self._first_check_step, self._last_check_step
        if first is not None and last is not None and self.best_step == first and last > first:
            rank_zero_warn(
                f"EarlyStopping restored the weights of the first validation check (epoch={self.best_epoch},"
                f" step={self.best_step}): no later check improved `{self.monitor}`, so the model may be barely"
                " trained (e.g. a majority-class classifier). If that is not expected: use a bigger or less noisy"
                " validation set, set start_from_epoch to skip the first epochs, raise patience, or lower the"
                " learning rate."
            )

    # ---------------------------------------------------------------- state
    @override
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["best_epoch"] = self.best_epoch
        state["best_step"] = self.best_step
        state["first_check_step"] = self._first_check_step
        state["last_check_step"] = self._last_check_step
        if self.restore_best_weights:
            state["best_weights"] = self._best_weights
        return state

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_epoch = state_dict.get("best_epoch")
        self.best_step = state_dict.get("best_step")
        self._first_check_step = state_dict.get("first_check_step")
        self._last_check_step = state_dict.get("last_check_step")
        self._best_weights = state_dict.get("best_weights")
        if self.restore_best_weights and self._best_weights is None and self.best_epoch is not None:
            rank_zero_warn(
                f"EarlyStopping: the checkpoint has no copy of the best weights (epoch={self.best_epoch}); it was"
                " saved with restore_best_weights=False. Only an improvement after the resume can be restored."
            )

    def extra_repr(self) -> str:
        return (
            f"monitor={self.monitor!r}, mode={self.mode!r}, patience={self.patience}, min_delta={abs(self.min_delta)},"
            f" restore_best_weights={self.restore_best_weights}, start_from_epoch={self.start_from_epoch},"
            f" baseline={self.baseline}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
