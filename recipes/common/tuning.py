"""``--tune N``: an Optuna study of the regularization rates and the learning rate on the validation data.

Each trial trains a fresh copy of the recipe's model with sampled rates and learning rate, on the
same data, trainer budget and arm (:mod:`common.arms`) as the run; optuna-integration's
``PyTorchLightningPruningCallback`` stops trials whose score falls behind the others'
(Optuna's median rule), from half the epoch budget on; the trials the study starts with (below) are
never pruned. The trial's value is the validation score (:func:`check_score`: the error
rate for a classifier, the loss otherwise) of the model the arm would test: the check of least
``val_loss`` when early stopping restores the best weights, the last one otherwise.
The recipe then trains once more with the best trial's values and tests that model, so the test
data is seen once, after tuning.

Where the arm regularizes, the study may also switch regularization off altogether
(``regularize`` is one of the tuned values: the run's arm, or ``"none"``: no dropout, weight decay,
max-norm or early stopping). The first trial is the run's own values (the recipe's defaults, or
what the command line gave); the second turns every tuned rate off (the learning rate kept, early
stopping and max-norm on); the third is the unregularized network at the run's learning rate. The
others are sampled. So a study never ends worse on validation than the defaults or the bare
network, and it can find that regularization does not help on a data set: the summary then says
``regularize=none``. ``--tune_none_lr`` fixes the unregularized network's learning rate, such as the best
of a study of the unregularized network (``--model.regularize none --tune N``), and makes it the first
trial: the study then weighs regularization against that tuned network, and spends its other trials on
regularization (a trial that draws ``regularize=none`` repeats the first). Where a classifier's best trial
regularizes but classifies no more validation cases right than the best unregularized one, or where
under cross-validation the best trial regularizes but does not beat the best unregularized one on
most folds, the unregularized one is chosen (:func:`choose`).

Every trial starts from the run's seed (common random numbers): trials differ by their values alone,
and a trial repeats exactly a trial of another study with the same values. Under cross-validation fold
``k`` of every trial starts from seed + ``k``, so that a trial's score averages over as many
initializations and batch orders as folds, and the study does not pick the values that suit one
initialization best. A trial with the values of an earlier trial of the study reuses its score
instead of training again.

When the data module can fold its training data (``datamodule.can_fold``, then ``fold(k, i)``) and
either it is a series cut in time (whose validation windows overlap and follow each other, so that
however many there are they are few independent cases) or a UCR/UEA set whose validation split is
small (fewer than :data:`CV_BELOW` cases), each trial is scored by :data:`CV_FOLDS`-fold
cross-validation: it trains once per fold, and its value is the mean of the folds' values, so that a
dozen validation cases, or one block of a series, do not decide the study alone. Pruning watches
the first fold. A classifier then refits on the whole training file
(``datamodule.refit()``) for :func:`refit_epochs` epochs, the mean over the best trial's folds of the
epoch its score was taken at, without validation and so without early stopping: a dozen cases decide
neither the study nor when the final model stops, and it learns from every training case. Where the
chosen trial stops early (its arm has early stopping), there is no refit: the final fit keeps early
stopping, on the recipe's own split, as an untuned run with those values does (as scikit-learn's
``GridSearchCV`` refits an estimator with its own early stopping). A fixed count of epochs would drop
what early stopping does, stop each seed when that seed has learned (on ACSF1 a refit for its folds'
mean stopping epoch undertrained two seeds of three: README, "What the fifth session's changes did"). A series
has no refit: its folds are rolling origins (each validation part moved back by its own length, the
last fold being the series' own split), and the final fit trains on the series' own split, with its
validation part for early stopping and the learning-rate schedule, as an untuned run does. (A refit
on every window before the test part, tried first, trained with the plateau schedule watching the
training loss, which never annealed the learning rate: it made the bare network much worse on lynx
and the Nile, and no fairer.)
"""

from __future__ import annotations

import logging
import math
import statistics
import warnings
from typing import Any

import lightning.pytorch as pl
import torch

try:
    from typing import override  # type: ignore[attr-defined]
except ImportError:  # Python < 3.12
    from typing_extensions import override

from regdrop.callbacks import EarlyStopping, MaxNorm

from .arms import uses_dropout, uses_early_stopping
from .summary import format_values

__all__ = [
    "CV_BELOW", "CV_FOLDS", "RATE_NAMES", "TIE_BREAK", "check_score", "choose", "difference_choices", "first_trials",
    "refit_epochs",
    "search_space", "trial_line", "tune", "tuning_folds", "warmup_checks",
]  # fmt: skip

CV_FOLDS = 3
"""Folds of the cross-validation that scores trials when the validation split is small."""
CV_BELOW = 30
"""Validation splits with fewer cases than this are replaced by :data:`CV_FOLDS`-fold cross-validation."""

RATE_NAMES = (
    "embedding_dropout", "input_dropout", "dropout", "recurrent_dropout", "weight_dropout", "zoneout",
    "output_dropout", "spatial_dropout",
)  # fmt: skip
"""The hyperparameters a study may tune, besides ``lr``: each that is above 0 in the run's model."""

_TRAINER_KEYS = (
    "accelerator", "devices", "precision", "max_epochs", "min_epochs", "max_time", "gradient_clip_val",
    "limit_train_batches", "limit_val_batches", "accumulate_grad_batches",
)  # fmt: skip


def search_space(hparams: dict[str, Any], arm: str) -> dict[str, tuple[float, float, bool]]:
    """The ranges a study samples: ``{name: (low, high, log)}``.

    ``lr`` from a tenth to three times the run's, on a log scale; each dropout rate of the model
    that is above 0, from 0 to 0.6 (none when the arm has no dropout: there is nothing to tune;
    ``spatial_dropout`` only with the convolutional branch, ``fcn=True``).

    Example:
        >>> search_space({"lr": 0.01, "dropout": 0.2, "zoneout": 0.0}, "all")
        {'lr': (0.001, 0.03, True), 'dropout': (0.0, 0.6, False)}
        >>> search_space({"lr": 0.01, "dropout": 0.2}, "early_stopping")
        {'lr': (0.001, 0.03, True)}
    """
    space = {"lr": (hparams["lr"] / 10.0, hparams["lr"] * 3.0, True)}
    if uses_dropout(arm):
        active = [name for name in RATE_NAMES if float(hparams.get(name, 0.0)) > 0.0]
        # the convolutional branch's rate acts only when the branch is there
        active = [name for name in active if name != "spatial_dropout" or hparams.get("fcn", False)]
        space.update(dict.fromkeys(active, (0.0, 0.6, False)))
    return space


def first_trials(
    hparams: dict[str, Any],
    space: dict[str, tuple[float, float, bool]],
    none_lr: float | None = None,
    differences: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """The trials a study starts with: the run's own values, then (when rates are tuned) every rate at 0,
    then the unregularized network (``regularize="none"``) at the run's learning rate. With ``none_lr``
    (the best learning rate of a study of the unregularized network: ``--tune_none_lr``) the unregularized
    network comes first (the study gives it that learning rate): the study starts from the tuned bare
    network, however few its trials. With ``differences`` (the lags a forecaster may difference at:
    :func:`difference_choices`) the run's own values come once with each lag, so every lag is tried.

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
    own: dict[str, Any] = {name: float(hparams[name]) for name in space}
    # a value outside its range (a rate above 0.6 given on the command line) is left to the sampler
    own = {name: value for name, value in own.items() if space[name][0] <= value <= space[name][1]}
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
    """The lags a forecaster's study may difference at (``difference``): none (0) or the data's seasonal
    period, where the data module has one (``seasonal_period``) and its input windows hold two periods
    (the network then reads a period of differences); ``()``: nothing to choose.

    Example:
        >>> from types import SimpleNamespace as D
        >>> difference_choices(D(seasonal_period=12, input_length=24), {"task": "forecast"})
        (0, 12)
        >>> difference_choices(D(seasonal_period=12, input_length=12), {"task": "forecast"})
        ()
    """
    period = getattr(datamodule, "seasonal_period", None)
    length = getattr(datamodule, "input_length", 0)
    if hparams.get("task") != "forecast" or not period or length < 2 * period:
        return ()
    return (0, int(period))


def _arm(hparams: dict[str, Any]) -> str:
    arm = str(hparams.get("regularize", True))
    return {"True": "all", "False": "none"}.get(arm, arm)


def tuning_folds(datamodule: pl.LightningDataModule) -> int:
    """How many folds score a trial: :data:`CV_FOLDS` where the data module ``can_fold`` and either says
    ``fold_always`` (a series cut in time: rolling origins, whatever the length of its validation part)
    or its validation split has fewer than :data:`CV_BELOW` cases (a small UCR/UEA set); else 1 (the
    validation split itself).

    A series' validation windows overlap and follow each other: 31 of them (sunspots) are three
    solar cycles, not 31 independent cases, and a single block of them picked dropout rates that
    lost on the test years; rolling origins test each trial on three blocks.
    """
    if not getattr(datamodule, "can_fold", False):
        return 1
    if getattr(datamodule, "fold_always", False):
        return CV_FOLDS
    datamodule.setup("fit")
    return CV_FOLDS if len(datamodule.split_dataset("val")) < CV_BELOW else 1  # type: ignore[attr-defined]


TIE_BREAK = 1e-4
"""Weight of the validation loss in a classification trial's score: a loss below 20 moves the score by
less than one case in 500 would, so the loss only breaks ties between equal error rates."""


def check_score(metrics: dict[str, Any]) -> float:
    """A validation check's score for the study (lower is better): the error rate where the check
    measured accuracy (``val_acc``; ties broken by :data:`TIE_BREAK` times the loss), else ``val_loss``.

    A classifier is judged by its accuracy, and the loss (cross-entropy) also rewards confidence:
    an unregularized network that classifies more cases right but is surer of its mistakes loses
    on loss, so scoring trials on the loss alone would favour the regularized ones.

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
    """Checks a trial runs before the median rule may prune it: half the epoch budget, at least 3.

    A check early in training is a poor guide to the end (12 validation cases move a classifier's
    error rate by 8 points a case), and one check behind the median is enough to prune.

    Example:
        >>> warmup_checks({"max_epochs": 100}), warmup_checks({"max_epochs": 6}), warmup_checks({})
        (50, 3, 3)
    """
    epochs = budget.get("max_epochs")
    return max(3, int(epochs) // 2) if isinstance(epochs, int) and epochs > 0 else 3


def trial_line(trial: Any, trials: int, folds: int) -> str:
    """The line ``--tune`` prints as each trial ends, so a study of several minutes shows its progress.

    The values are the ones the trial trained with (its ``values`` attribute, as the objective sets it).

    Example:
        >>> from types import SimpleNamespace
        >>> done = SimpleNamespace(number=0, state=SimpleNamespace(name="COMPLETE"), value=0.25,
        ...                        user_attrs={"values": {"regularize": "all", "lr": 0.003, "dropout": 0.1},
        ...                                    "fold_values": [0.2, 0.35, 0.2]})
        >>> for part in trial_line(done, 4, 3).split("; "):
        ...     print(part)
        [tune] trial 1/4 complete: regularize=all, lr=0.003, dropout=0.1
        validation score 0.25 (mean of 3 folds: 0.2, 0.35, 0.2)
        >>> trial_line(SimpleNamespace(number=3, state=SimpleNamespace(name="PRUNED"), value=None,
        ...                            user_attrs={"values": {"lr": 0.01}}), 4, 1)
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
    """Epochs of the refit on the whole training file: the mean of the epochs at which the best trial's
    folds were scored, rounded, at least 1.

    Example:
        >>> refit_epochs([40, 100, 61])
        67
    """
    if not fold_epochs:
        raise ValueError("fold_epochs must name at least one fold's epochs, got none")
    return max(1, round(statistics.fmean(fold_epochs)))


def choose(trials: list[Any]) -> Any:
    """The trial the run trains with: the one of least value, except that a regularized trial gives way to
    the best unregularized trial where it does not beat it on most folds, or only ties its error rate.

    Under cross-validation a regularized trial is kept only where it beats the best unregularized
    trial on more folds than it loses (a classifier compares the folds' error rates): a mean that
    one fold decides while the others go the other way is no reason to prefer the more complex
    model (ACSF1's study had chosen early stopping by a lower mean, better on one fold, equal on one and
    worse on one, and lost on test: README, "What the fifth session's changes did").
    A classifier's score breaks ties of error rate by the loss (:data:`TIE_BREAK`), and dropout lowers
    the loss of a network that classifies the same cases right; regularization is kept only where
    it classifies more validation cases right (the simpler model wins a tie). Trials without an
    error rate (forecasts, language models) are otherwise chosen by their value alone.

    Example:
        >>> from types import SimpleNamespace as T
        >>> reg = T(number=0, value=0.10002, params={"regularize": "all"}, user_attrs={"error": 0.1})
        >>> bare = T(number=1, value=0.10005, params={"regularize": "none"}, user_attrs={"error": 0.1})
        >>> choose([reg, bare]).number
        1
        >>> choose([T(number=0, value=0.05002, params={"regularize": "all"}, user_attrs={"error": 0.05}), bare]).number
        0
        >>> one_fold = T(number=0, value=3.2, params={"regularize": "all"}, user_attrs={"fold_values": [1, 5, 3.6]})
        >>> choose([one_fold, T(number=1, value=3.5, params={"regularize": "none"},
        ...                     user_attrs={"fold_values": [3, 4, 3.5]})]).number
        1
    """
    return _choice(trials)[0]


def passed_over(trials: list[Any]) -> str | None:
    """Why :func:`choose` kept the bare network over a regularized trial of lower value (None: it did not).

    The summary prints it, so that a study whose best-scoring trial regularized but that tests the
    unregularized network says why.

    Example:
        >>> from types import SimpleNamespace as T
        >>> reg = T(number=1, value=3.2, params={"regularize": "all"}, user_attrs={"fold_values": [1, 5, 3.6]})
        >>> bare = T(number=0, value=3.5, params={"regularize": "none"}, user_attrs={"fold_values": [3, 4, 3.5]})
        >>> passed_over([reg, bare])
        'trial 2 regularized with a lower mean (3.2 against 3.5) but was better on 1 of 3 folds and worse on 2'
    """
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
    """Keeps every check's ``val_loss``, score, error rate and epoch (the epochs trained by then; sanity checks
    left out), and logs the score as ``tune_score`` for the pruning callback (which comes after it)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.scores: list[float] = []
        self.errors: list[float | None] = []  # the error rate of a classifier's check, else None
        self.epochs: list[int] = []

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and "val_loss" in trainer.callback_metrics:
            metrics = trainer.callback_metrics
            self.losses.append(float(metrics["val_loss"]))
            self.scores.append(check_score(metrics))
            self.errors.append(1.0 - float(metrics["val_acc"]) if "val_acc" in metrics else None)
            self.epochs.append(trainer.current_epoch + 1)
            trainer.callback_metrics["tune_score"] = torch.tensor(self.scores[-1])


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
    """Run the study and return the chosen trial's values (:func:`choose`) and the study.

    The values are the learning rate, the rates (unless the best trial switched regularization
    off), a forecaster's ``difference`` where the data offers a choice (:func:`difference_choices`)
    and, where the arm regularizes, ``regularize``: the arm or ``"none"``. The study's user
    attribute ``folds`` is the number of folds that scored each trial (:func:`tuning_folds`); with
    more than one, on a data module that refits, ``refit_epochs`` is the epochs the refit on the whole
    training file trains (:func:`refit_epochs` of the chosen trial's ``fold_epochs``), or, where the chosen
    trial stops early, ``kept_early_stopping`` is True (no refit); ``chosen`` is the chosen trial's
    number; ``passed_over`` says why a regularized trial of lower value gave way (:func:`passed_over`).

    Args:
        model_class: the recipe's LightningModule.
        hparams: the run's model arguments; the sampled ones replace theirs in each trial.
        datamodule: the run's data (set up once, shared by the trials).
        trainer_config: the run's trainer options (only the budget and device ones are kept).
        stopper: the run's early stopping, copied into each trial when the arm uses it.
        max_norm: the run's ``MaxNorm`` bound, used in each trial when the arm has dropout.
        trials: the number of trials.
        seed: the sampler's seed, and every trial's (common random numbers; under cross-validation, fold
            ``k`` of every trial starts from ``seed + k``).
        verbose: print a line as each trial ends (:func:`trial_line`).
        none_lr: the learning rate of every unregularized trial (the first, :func:`first_trials`, and
            any that draws ``regularize="none"``); None: the run's for the starting trial, sampled
            for the others.
        none_difference: with ``none_lr``, the ``difference`` of every unregularized trial (the
            unregularized study's choice, so that trial repeats that study's best); None: sampled.

    Raises:
        ValueError: if ``trials`` is below 1.
        ModuleNotFoundError: if optuna or optuna-integration is not installed.
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

    def fit_once(
        trial: Any, values: dict[str, Any], data: pl.LightningDataModule, fold: int
    ) -> tuple[float, int, float | None]:
        """Train one model with ``values`` on ``data`` (fold ``fold``); the validation score of the model the
        trial's arm would test, the epochs trained when it was taken, and its error rate (None: not a classifier)."""
        chosen = values.get("regularize", arm)
        # every trial starts fold k from the same seed (common random numbers): two trials differ by their
        # values, not by their initial weights and batch order, and a trial repeats another study's with the
        # same values; the folds' seeds differ, so the mean over folds is not one initialization's
        pl.seed_everything(seed + fold, verbose=False)
        model = model_class(**{**hparams, **values})
        checks = _Checks()
        callbacks: list[pl.Callback] = [checks]
        if fold == 0:  # the pruner compares the first fold's checks
            callbacks.append(PyTorchLightningPruningCallback(trial, monitor="tune_score"))
        if uses_early_stopping(chosen) and stopper is not None:
            callbacks.append(
                EarlyStopping(stopper.monitor, patience=stopper.patience, mode=stopper.mode,
                              start_from_epoch=stopper.start_from_epoch)
            )  # fmt: skip
        if uses_dropout(chosen) and max_norm is not None:
            callbacks.append(MaxNorm(max_norm))
        trainer = pl.Trainer(
            **budget, callbacks=callbacks, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(model, datamodule=data)
        if not checks.scores:
            return math.inf, trainer.current_epoch, None
        tested = -1  # the last check, unless early stopping restores the best
        if uses_early_stopping(chosen) and stopper is not None and stopper.restore_best_weights:
            # the restored check: the best counted val_loss (early stopping's monitor)
            first = stopper.start_from_epoch if len(checks.losses) > stopper.start_from_epoch else 0
            tested = min(range(first, len(checks.losses)), key=checks.losses.__getitem__)
        return checks.scores[tested], checks.epochs[tested], checks.errors[tested]

    done: dict[str, tuple[float, dict[str, Any]]] = {}  # the value and attributes of each set of values tried

    def objective(trial: Any) -> float:
        values: dict[str, Any] = {}
        if rates:  # the study may switch regularization off (then no rate is sampled)
            values["regularize"] = trial.suggest_categorical("regularize", [arm, "none"])
        bare = values.get("regularize") == "none" and none_lr is not None
        if bare:
            values["lr"] = float(none_lr)  # the tuned bare network: its learning rate is not this study's to sample
        else:
            low, high, log = space["lr"]
            values["lr"] = trial.suggest_float("lr", low, high, log=log)
        if differences:
            if bare and none_difference is not None:
                values["difference"] = int(none_difference)
            else:
                values["difference"] = trial.suggest_categorical("difference", list(differences))
        if values.get("regularize", arm) != "none":
            values.update({name: trial.suggest_float(name, lo, hi, log=lg) for name, (lo, hi, lg) in rates.items()})
        trial.set_user_attr("values", values)
        key = repr(sorted(values.items()))
        if key in done:  # the same values from the same seed train the same model: reuse its score
            value, attrs = done[key]
            for name, attr in attrs.items():
                trial.set_user_attr(name, attr)
            return value
        fits = [fit_once(trial, values, data, fold) for fold, data in enumerate(fold_data)]
        scores, epochs = [score for score, _, _ in fits], [epoch for _, epoch, _ in fits]
        errors = [error for _, _, error in fits]
        attrs: dict[str, Any] = {}
        if all(error is not None for error in errors):
            attrs["error"] = statistics.fmean(errors)  # type: ignore[arg-type]
        if folds > 1:
            attrs.update(fold_values=scores, fold_epochs=epochs)
            if "error" in attrs:
                attrs["fold_errors"] = errors
        for name, attr in attrs.items():
            trial.set_user_attr(name, attr)
        done[key] = statistics.fmean(scores), attrs
        return done[key][0]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lightning_logger = logging.getLogger("lightning.pytorch")
    level = lightning_logger.level
    lightning_logger.setLevel(logging.WARNING)
    try:
        starts = first_trials(hparams, space, none_lr, differences)[:trials]
        study = optuna.create_study(
            direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=len(starts), n_warmup_steps=warmup_checks(budget)),
        )
        for values in starts:
            study.enqueue_trial(values)

        def report(study: Any, trial: Any) -> None:
            if verbose:
                print(trial_line(trial, trials, folds), flush=True)

        study.optimize(objective, n_trials=trials, callbacks=[report])
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
