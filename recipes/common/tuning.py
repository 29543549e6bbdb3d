"""``--tune N``: an Optuna study of the regularization rates and the learning rate on the validation data.

The recipe then trains once with the chosen values (:func:`tune`) and tests that model: the test data is
seen once, after tuning. The protocol and its evidence: README.md, "Tuning as a command".
"""

from __future__ import annotations

import logging
import math
import statistics
import warnings
from typing import Any

import lightning.pytorch as pl
import torch
from typing_extensions import override  # typing.override from Python 3.12 on

from regdrop.callbacks import EarlyStopping, MaxNorm

from .arms import uses_dropout, uses_early_stopping
from .summary import format_values

__all__ = [
    "CV_BELOW", "CV_FOLDS", "RATE_NAMES", "TIE_BREAK", "check_score", "choose", "difference_choices", "first_trials",
    "refit_epochs", "search_space", "trial_line", "tune", "tuning_folds", "warmup_checks",
]  # fmt: skip

CV_FOLDS = 3  # folds of the cross-validation that replaces a small validation split (tuning_folds)
CV_BELOW = 30  # a validation split of fewer cases is small

RATE_NAMES = ("embedding_dropout", "input_dropout", "dropout", "recurrent_dropout", "weight_dropout", "zoneout",
              "output_dropout", "spatial_dropout", "hidden_dropout")  # fmt: skip
"""The hyperparameters a study may tune, besides ``lr``: each that is above 0 in the run's model."""

_TRAINER_KEYS = ("accelerator", "devices", "precision", "max_epochs", "min_epochs", "max_time", "gradient_clip_val",
                 "limit_train_batches", "limit_val_batches", "accumulate_grad_batches")  # fmt: skip


def search_space(hparams: dict[str, Any], arm: str) -> dict[str, tuple[float, float, bool]]:
    """The ranges a study samples, ``{name: (low, high, log)}``: ``lr`` from a tenth to three times the run's (log
    scale); where the arm has dropout, each rate above 0 (``spatial_dropout`` only with ``fcn``), from 0 to 0.6.

    Example:
        >>> search_space({"lr": 0.01, "dropout": 0.2, "zoneout": 0.0}, "all")
        {'lr': (0.001, 0.03, True), 'dropout': (0.0, 0.6, False)}
        >>> search_space({"lr": 0.01, "dropout": 0.2}, "early_stopping")
        {'lr': (0.001, 0.03, True)}
    """
    space = {"lr": (hparams["lr"] / 10.0, hparams["lr"] * 3.0, True)}
    if uses_dropout(arm):
        active = [name for name in RATE_NAMES if float(hparams.get(name, 0.0)) > 0.0]
        active = [name for name in active if name != "spatial_dropout" or hparams.get("fcn", False)]
        space.update(dict.fromkeys(active, (0.0, 0.6, False)))
    return space


def first_trials(
    hparams: dict[str, Any],
    space: dict[str, tuple[float, float, bool]],
    none_lr: float | None = None,
    differences: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """The trials a study starts with (never pruned): the run's own values (once per lag in ``differences``); where
    rates are tuned, also every rate at 0, and the unregularized network at the run's learning rate (with
    ``none_lr``: first, and :func:`tune` gives it ``none_lr``).

    Example:
        >>> space = search_space({"lr": 0.01, "dropout": 0.2}, "all")
        >>> for trial in first_trials({"lr": 0.01, "dropout": 0.2}, space):
        ...     print(trial)
        {'lr': 0.01, 'dropout': 0.2, 'regularize': 'all'}
        {'lr': 0.01, 'dropout': 0.0, 'regularize': 'all'}
        {'lr': 0.01, 'regularize': 'none'}
        >>> first_trials({"lr": 0.01, "dropout": 0.2}, space, none_lr=0.004)[0]
        {'regularize': 'none'}
        >>> first_trials({"lr": 0.01, "dropout": 0.2}, search_space({"lr": 0.01, "dropout": 0.2}, "none"))
        [{'lr': 0.01}]
        >>> first_trials({"lr": 0.01, "difference": 0}, {"lr": (0.001, 0.03, True)}, differences=(0, 12))
        [{'lr': 0.01, 'difference': 0}, {'lr': 0.01, 'difference': 12}]
    """
    # a value outside its range (a rate above 0.6 given on the command line) is left to the sampler
    own: dict[str, Any] = {n: float(hparams[n]) for n in space if space[n][0] <= float(hparams[n]) <= space[n][1]}
    lag = int(hparams.get("difference", 0))
    if differences:
        own["difference"] = lag if lag in differences else differences[0]
    others = [{**own, "difference": other} for other in differences if other != own.get("difference")]
    trials: list[dict[str, Any]] = [own, *others]
    rates = [name for name in space if name != "lr"]
    if rates:
        arm = _arm(hparams)
        trials = [{**own, "regularize": arm}, *({**other, "regularize": arm} for other in others)]
        trials.append({**own, **dict.fromkeys(rates, 0.0), "regularize": arm})
        if none_lr is not None:  # (the objective gives an unregularized trial none_lr)
            return [{"regularize": "none"}, *trials]
        bare = {name: value for name, value in own.items() if name in ("lr", "difference")}
        trials.append(bare | {"regularize": "none"})
    return trials


def difference_choices(datamodule: pl.LightningDataModule, hparams: dict[str, Any]) -> tuple[int, ...]:
    """The lags a forecaster's study chooses ``difference`` from: 0 or the data module's ``seasonal_period``,
    where its input windows hold two periods; ``()``: no choice.

    Example:
        >>> from types import SimpleNamespace as D
        >>> difference_choices(D(seasonal_period=12, input_length=24), {"task": "forecast"})
        (0, 12)
        >>> difference_choices(D(seasonal_period=12, input_length=12), {"task": "forecast"})
        ()
    """
    period, length = getattr(datamodule, "seasonal_period", None), getattr(datamodule, "input_length", 0)
    return (0, int(period)) if hparams.get("task") == "forecast" and period and length >= 2 * period else ()


def _arm(hparams: dict[str, Any]) -> str:
    arm = str(hparams.get("regularize", True))
    return {"True": "all", "False": "none"}.get(arm, arm)


def tuning_folds(datamodule: pl.LightningDataModule) -> int:
    """Folds that score a trial: :data:`CV_FOLDS` where the data ``can_fold`` and is a series (``fold_always``: its
    overlapping windows are few independent cases) or has under :data:`CV_BELOW` validation cases; else 1."""
    if not getattr(datamodule, "can_fold", False):
        return 1
    if getattr(datamodule, "fold_always", False):
        return CV_FOLDS
    datamodule.setup("fit")
    return CV_FOLDS if len(datamodule.split_dataset("val")) < CV_BELOW else 1  # type: ignore[attr-defined]


TIE_BREAK = 1e-4
"""The loss's weight in a classifier's score: below 20, it moves it less than one case in 500 would (breaks ties)."""


def check_score(metrics: dict[str, Any]) -> float:
    """A validation check's score (lower is better): the error rate where there is ``val_acc`` (the loss, which
    also rewards confidence, only breaks ties: :data:`TIE_BREAK`), else ``val_loss``.

    Example:
        >>> check_score({"val_loss": 0.7, "val_acc": 0.9})
        0.10007
        >>> check_score({"val_loss": 0.7})
        0.7
    """
    loss = float(metrics["val_loss"])
    if "val_acc" in metrics:
        return round(1.0 - float(metrics["val_acc"]) + TIE_BREAK * loss, 12)
    return loss


def warmup_checks(budget: dict[str, Any]) -> int:
    """Checks before the median rule may prune a trial (early ones are a poor guide): half the epochs, at least 3.

    Example:
        >>> warmup_checks({"max_epochs": 100}), warmup_checks({"max_epochs": 6}), warmup_checks({})
        (50, 3, 3)
    """
    epochs = budget.get("max_epochs")
    return max(3, int(epochs) // 2) if isinstance(epochs, int) and epochs > 0 else 3


def trial_line(trial: Any, trials: int, folds: int) -> str:
    """The line ``--tune`` prints as each trial ends: the values it trained with (``values`` attribute), its score.

    Example:
        >>> from types import SimpleNamespace as N
        >>> done = N(number=0, state=N(name="COMPLETE"), value=0.25, user_attrs={"fold_values": [0.2, 0.35, 0.2],
        ...          "values": {"regularize": "all", "lr": 0.003, "dropout": 0.1}})
        >>> for part in trial_line(done, 4, 3).split("; "):
        ...     print(part)
        [tune] trial 1/4 complete: regularize=all, lr=0.003, dropout=0.1
        validation score 0.25 (mean of 3 folds: 0.2, 0.35, 0.2)
        >>> trial_line(N(number=3, state=N(name="PRUNED"), value=None, user_attrs={"values": {"lr": 0.01}}), 4, 1)
        '[tune] trial 4/4 pruned: lr=0.01'
    """
    values = trial.user_attrs["values"]
    line = f"[tune] trial {trial.number + 1}/{trials} {trial.state.name.lower()}: {format_values(values)}"
    if trial.state.name == "COMPLETE":
        line += f"; validation score {trial.value:.4g}"
        if folds > 1:  # the folds' spread says how much two trials' means can differ by chance
            line += f" (mean of {folds} folds: " + ", ".join(f"{v:.4g}" for v in trial.user_attrs["fold_values"]) + ")"
    return line


def refit_epochs(fold_epochs: list[int] | tuple[int, ...]) -> int:
    """Epochs of the refit on the whole training file: the chosen trial's folds' mean scoring epoch, rounded, >= 1.

    Example:
        >>> refit_epochs([40, 100, 61])
        67
    """
    if not fold_epochs:
        raise ValueError("fold_epochs must name at least one fold's epochs, got none")
    return max(1, round(statistics.fmean(fold_epochs)))


def choose(trials: list[Any]) -> Any:
    """The trial the run trains with: the one of least value, unless it regularizes and beats the best unregularized
    trial on no more folds than it loses (by error rate for a classifier), or only ties an unregularized classifier's
    error rate (the loss, which dropout lowers, broke the tie): then the unregularized trial, the simpler model.

    Example:
        >>> from types import SimpleNamespace as T
        >>> reg = T(number=0, value=0.10002, params={"regularize": "all"}, user_attrs={"error": 0.1})
        >>> bare = T(number=1, value=0.10005, params={"regularize": "none"}, user_attrs={"error": 0.1})
        >>> better = T(number=0, value=0.05002, params={"regularize": "all"}, user_attrs={"error": 0.05})
        >>> choose([reg, bare]).number, choose([better, bare]).number
        (1, 0)
        >>> folds = [T(number=1, value=3.2, params={"regularize": "all"}, user_attrs={"fold_values": [1, 5, 3.6]}),
        ...          T(number=0, value=3.5, params={"regularize": "none"}, user_attrs={"fold_values": [3, 4, 3.5]})]
        >>> choose(folds).number, passed_over(folds)
        (0, 'trial 2 regularized with a lower mean (3.2 against 3.5) but was better on 1 of 3 folds and worse on 2')
    """
    return _choice(trials)[0]


def passed_over(trials: list[Any]) -> str | None:
    """Why :func:`choose` kept the bare network over a regularized trial of lower value (None: it did not)."""
    return _choice(trials)[1]


def _choice(trials: list[Any]) -> tuple[Any, str | None]:
    """:func:`choose`'s trial, and :func:`passed_over`'s reason."""
    best = min(trials, key=lambda t: t.value)
    if best.params.get("regularize", "none") == "none":
        return best, None
    bare = [t for t in trials if t.params.get("regularize") == "none"]
    if bare:
        rival = min(bare, key=lambda t: t.value)
        key = "fold_errors" if "fold_errors" in best.user_attrs else "fold_values"
        ours, theirs = best.user_attrs.get(key), rival.user_attrs.get(key)
        if ours and theirs and len(ours) == len(theirs) > 1:
            wins = sum(a < b - 1e-9 for a, b in zip(ours, theirs, strict=True))
            losses = sum(a > b + 1e-9 for a, b in zip(ours, theirs, strict=True))
            if wins <= losses:
                return rival, (
                    f"trial {best.number + 1} regularized with a lower mean ({best.value:.4g} against "
                    f"{rival.value:.4g}) but was better on {wins} of {len(ours)} folds and worse on {losses}"
                )
    error = best.user_attrs.get("error")
    if error is None:
        return best, None
    tied = [t for t in bare if t.user_attrs.get("error") is not None and abs(t.user_attrs["error"] - error) < 1e-9]
    if not tied:
        return best, None
    return min(tied, key=lambda t: t.value), (
        f"trial {best.number + 1} regularized with a lower score ({best.value:.4g}, the loss breaking the tie) but "
        f"classified no more validation cases right ({100 * (1 - error):.4g}%)"
    )


class _Checks(pl.Callback):
    """Keeps each check's ``val_loss`` and (score, epochs, error rate), and logs ``tune_score`` for the pruner."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.results: list[tuple[float, int, float | None]] = []

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        if not trainer.sanity_checking and "val_loss" in metrics:
            error = 1.0 - float(metrics["val_acc"]) if "val_acc" in metrics else None
            self.losses.append(float(metrics["val_loss"]))
            self.results.append((check_score(metrics), trainer.current_epoch + 1, error))
            metrics["tune_score"] = torch.tensor(self.results[-1][0])


def tune(
    model_class: type[pl.LightningModule],
    hparams: dict[str, Any],
    datamodule: pl.LightningDataModule,
    trainer_config: dict[str, Any],
    stopper: EarlyStopping | None,
    max_norm: float | None,
    trials: int,
    seed: int = 0,
    verbose: bool = False,
    none_lr: float | None = None,
    none_difference: int | None = None,
) -> tuple[dict[str, Any], Any]:
    """Run the study; return the chosen trial's values (:func:`choose`) and the study.

    The values: ``lr``, the tuned rates (none if regularization is off), any ``difference``, and ``regularize`` where
    rates are tuned. The study's user attributes: ``folds``, ``chosen``, ``passed_over`` and, after cross-validation
    with ``datamodule.refit()``, ``refit_epochs`` or, if the chosen trial stops early, ``kept_early_stopping``.

    Args:
        model_class: the recipe's LightningModule.
        hparams: the run's model arguments; each trial's values replace theirs.
        datamodule: the run's data, shared by the trials.
        trainer_config: the run's trainer options (only the budget and device ones are kept).
        stopper: the run's early stopping, copied into each trial whose arm uses it.
        max_norm: the run's ``MaxNorm`` bound, used in each trial whose arm has dropout.
        trials: the number of trials.
        seed: the sampler's seed and every trial's (fold ``k``: ``seed + k``).
        verbose: print :func:`trial_line` as each trial ends.
        none_lr: every unregularized trial's learning rate (``--tune_none_lr``); None: the run's, then sampled.
        none_difference: with ``none_lr``, every unregularized trial's ``difference``; None: sampled.

    Raises:
        ValueError: if ``trials`` is below 1, or ``none_lr`` or ``none_difference`` does not fit the study.
        ModuleNotFoundError: if optuna or optuna-integration is not installed.
        RuntimeError: if no trial completed.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an int >= 1, got {trials!r}")
    try:
        import optuna
        from optuna_integration.pytorch_lightning import PyTorchLightningPruningCallback
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"--tune needs optuna and optuna-integration ({error}); install them with "
            "pip install 'regdrop[tune]' (or pip install optuna optuna-integration)"
        ) from None
    arm = _arm(hparams)
    space = search_space(hparams, arm)
    rates = {name: bounds for name, bounds in space.items() if name != "lr"}
    if none_lr is not None:
        low, high, _ = space["lr"]
        if not rates:
            raise ValueError(
                f"none_lr ({none_lr}) sets the unregularized starting trial, which only a study of dropout rates "
                f"has; this run's arm {arm!r} tunes {sorted(space)}"
            )
        if not low <= none_lr <= high:
            raise ValueError(f"none_lr must lie in the study's learning-rate range [{low:g}, {high:g}], got {none_lr}")
    differences = difference_choices(datamodule, hparams)
    if none_difference is not None:
        if none_lr is None:
            raise ValueError(f"none_difference ({none_difference}) goes with none_lr: both set the unregularized trial")
        if none_difference not in differences:
            raise ValueError(
                f"none_difference must be one of this data's lags {list(differences)}, got {none_difference}"
            )
    budget = {key: trainer_config[key] for key in _TRAINER_KEYS if trainer_config.get(key) is not None}
    folds = tuning_folds(datamodule)
    fold_data = [datamodule.fold(folds, i) for i in range(folds)] if folds > 1 else [datamodule]  # type: ignore[attr-defined]

    def fit_once(trial: Any, values: dict[str, Any], data: Any, fold: int) -> tuple[float, int, float | None]:
        """Train on fold ``fold``: the score, epochs and error rate (or None) of the check the arm would test."""
        chosen = values.get("regularize", arm)
        # common random numbers; the folds' seeds differ, so the mean over folds is not one initialization's
        pl.seed_everything(seed + fold, verbose=False)
        model = model_class(**{**hparams, **values})
        callbacks: list[pl.Callback] = [checks := _Checks()]
        if fold == 0:  # the pruner compares the first fold's checks
            callbacks.append(PyTorchLightningPruningCallback(trial, monitor="tune_score"))
        if uses_early_stopping(chosen) and stopper is not None:
            callbacks.append(EarlyStopping(stopper.monitor, patience=stopper.patience, mode=stopper.mode,
                                           start_from_epoch=stopper.start_from_epoch))  # fmt: skip
        if uses_dropout(chosen) and max_norm is not None:
            callbacks.append(MaxNorm(max_norm))
        trainer = pl.Trainer(**budget, callbacks=callbacks, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(model, datamodule=data)
        if not checks.results:
            return math.inf, trainer.current_epoch, None
        tested = -1  # the last check, unless early stopping restores the one of least counted val_loss
        if uses_early_stopping(chosen) and stopper is not None and stopper.restore_best_weights:
            first = stopper.start_from_epoch if len(checks.losses) > stopper.start_from_epoch else 0
            tested = min(range(first, len(checks.losses)), key=checks.losses.__getitem__)
        return checks.results[tested]

    done: dict[str, tuple[float, dict[str, Any]]] = {}  # the value and attributes of each set of values tried

    def objective(trial: Any) -> float:
        values: dict[str, Any] = {}
        if rates:  # the study may switch regularization off (then no rate is sampled)
            values["regularize"] = trial.suggest_categorical("regularize", [arm, "none"])
        bare = values.get("regularize") == "none" and none_lr is not None
        low, high, log = space["lr"]  # (none_lr, the tuned bare network's, is not this study's to sample)
        values["lr"] = float(none_lr) if bare else trial.suggest_float("lr", low, high, log=log)
        if differences and bare and none_difference is not None:
            values["difference"] = int(none_difference)
        elif differences:
            values["difference"] = trial.suggest_categorical("difference", list(differences))
        if values.get("regularize", arm) != "none":
            values.update({name: trial.suggest_float(name, lo, hi, log=lg) for name, (lo, hi, lg) in rates.items()})
        trial.set_user_attr("values", values)
        key = repr(sorted(values.items()))
        if key not in done:  # (values tried before reuse their score: the same seed would train the same model)
            fits = [fit_once(trial, values, data, fold) for fold, data in enumerate(fold_data)]
            scores, epochs, errors = (list(column) for column in zip(*fits, strict=True))
            attrs: dict[str, Any] = {}
            if all(error is not None for error in errors):
                attrs["error"] = statistics.fmean(errors)
            if folds > 1:
                attrs.update(fold_values=scores, fold_epochs=epochs)
                if "error" in attrs:
                    attrs["fold_errors"] = errors
            done[key] = statistics.fmean(scores), attrs
        for name, attr in done[key][1].items():
            trial.set_user_attr(name, attr)
        return done[key][0]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lightning_logger = logging.getLogger("lightning.pytorch")
    level = lightning_logger.level
    lightning_logger.setLevel(logging.WARNING)
    try:
        starts = first_trials(hparams, space, none_lr, differences)[:trials]
        pruner = optuna.pruners.MedianPruner(n_startup_trials=len(starts), n_warmup_steps=warmup_checks(budget))
        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
        for values in starts:
            study.enqueue_trial(values)
        report = [lambda study, trial: print(trial_line(trial, trials, folds), flush=True)] if verbose else []
        study.optimize(objective, n_trials=trials, callbacks=report)
    finally:
        lightning_logger.setLevel(level)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise RuntimeError(f"no trial of {trials} completed (all pruned or failed); raise --tune")
    best = choose(completed)
    study.set_user_attr("folds", folds)
    study.set_user_attr("chosen", best.number)
    overruled = passed_over(completed)
    if overruled is not None and best.params.get("regularize") == "none":  # the summary says why
        study.set_user_attr("passed_over", overruled)
    if folds > 1 and callable(getattr(datamodule, "refit", None)):
        if uses_early_stopping(best.user_attrs["values"].get("regularize", arm)) and stopper is not None:
            study.set_user_attr("kept_early_stopping", True)  # no refit: the final fit stops early on the split
        else:
            study.set_user_attr("refit_epochs", refit_epochs(best.user_attrs["fold_epochs"]))
    return dict(best.user_attrs["values"]), study
