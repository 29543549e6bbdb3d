"""The lines a recipe prints at the end: test score against a yardstick, restored epoch, where things are."""

from __future__ import annotations

import inspect
import json
import math
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from numpy.typing import ArrayLike

from regdrop.callbacks import EarlyStopping

__all__ = ["RunSummary", "apart", "collect_summary", "margin", "run_dir"]

_SCORES = {
    "forecast": ("test_rmse", "test RMSE"),
    "classify": ("test_acc", "test accuracy"),
    "language_model": ("test_ppl", "test perplexity"),
}
_HIGHER_IS_BETTER = {"test accuracy"}
_CASES = {"test RMSE": "windows"}  # what the score row calls the test's cases, where not "cases"

# what to try when the trivial baseline wins, as (option, text): the advice leaves out an option in
# ``RunSummary.in_use``, "epochs" where early stopping ended the run (more epochs would not have run), the
# learning rate after a study (it chose one) and less regularization where the tested model had none
_TRY_TRIVIAL = [
    ("epochs", "train longer (--trainer.max_epochs)"),
    ("tune", "another learning rate (--model.lr)"),
    ("none", "less regularization (--model.regularize early_stopping, or none)"),
]
# a forecast that loses to the last value: the series may change unpredictably (a random walk), where the last
# value is the best forecast there is; forecasting the changes is the model's nearest way to it
_TRY_TRIVIAL_FORECAST = ("difference", "forecasting the changes (--model.difference 1)")
_NAIVE_IS_BEST = (
    "On a series whose changes are unpredictable (a random walk) the last value is the best forecast there is, "
    "and no model beats it. "
)
# what to try when a stronger baseline wins, by score; the advice leaves out an option in ``RunSummary.in_use``
_HINTS = {
    "test accuracy": [("fcn", "the convolutional branch (--model.fcn true)"), ("epochs", "more epochs")],
    "test RMSE": [
        ("", "a longer input window (--data.input_length)"),
        ("seasonal_difference", "forecasting the seasonal differences ({difference})"),
        ("epochs", "more epochs"),
    ],
    # a text of one's own is read whole: --data.text_fraction gives more of the shipped Bibles only
    "test perplexity": [
        ("", "a bigger model (--model.hidden_size, --model.embedding_size)"),
        ("own_text", "more text (--data.text_fraction)"),
        ("epochs", "more epochs"),
    ],
}


def format_values(values: dict[str, Any]) -> str:
    """Hyperparameter values as ``name=value`` pairs, floats to 3 significant digits (a study's trials and best).

    Example:
        >>> format_values({"regularize": "all", "lr": 0.0031416, "dropout": 0.1})
        'regularize=all, lr=0.00314, dropout=0.1'
    """
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _hint(score_name: str, in_use: set[str] | list[str], period: int | None = None) -> str:
    """What to try when the model loses to a baseline other than the trivial one, less what the run used (``in_use``);
    a study is asked bigger, and a forecast's advice names the seasonal ``period`` where the data have one.

    Example:
        >>> _hint("test accuracy", [])
        'the convolutional branch (--model.fcn true), more epochs, or --tune N'
        >>> _hint("test accuracy", ["fcn", "tune"])
        'more epochs, or more trials (a larger --tune N)'
        >>> _hint("test accuracy", ["fcn", "epochs"])  # early stopping ended the run: more epochs would not run
        '--tune N'
        >>> _hint("test RMSE", ["tune"], period=12).split(", ")[1:3]
        ['forecasting the seasonal differences (--model.difference 12', 'with --data.input_length 24 or more)']
    """
    lag = (
        f"--model.difference {period}, with --data.input_length {2 * period} or more"
        if period
        else "if the series has a season of P steps: --data.seasonal_period P --model.difference P, with "
        "--data.input_length 2P or more"
    )
    parts = [
        text.format(difference=lag)
        for option, text in _HINTS.get(score_name, [("epochs", "more epochs")])
        if option not in in_use
    ]
    return _or_tune(parts, in_use)


def _or_tune(parts: list[str], in_use: set[str] | list[str]) -> str:
    """``parts`` joined, and a study (or a bigger one, where the run tuned) as the last thing to try."""
    study = "more trials (a larger --tune N)" if "tune" in in_use else "--tune N"
    return f"{', '.join(parts)}, or {study}" if parts else study


# the rows of sentences, wrapped at 100 characters (the others hold a path or a command to copy whole)
_WRAPPED = ("verdict", "data", "baselines", "amplitude", "")

_FIGURE_NAMES = {
    "forecasts.png": "forecast plot",
    "confusion_matrix.png": "confusion matrix",
    "perplexity.png": "perplexity plot",
}


def margin(model_errors: ArrayLike, baseline_errors: ArrayLike, lags: int = 0) -> tuple[float, float] | None:
    """The model's mean loss minus a baseline's over the same test cases, and the standard error of that difference.

    For forecasts (the losses: squared errors per window) this is the Diebold-Mariano comparison, for classifiers
    (0/1 errors per case) a paired one: the mean of the per-case differences, whose standard error is the sample
    one where the cases' losses are independent (``lags=0``: classified cases, one-step forecasts, windows that do
    not overlap) and else statsmodels' Newey-West (HAC) one with ``lags`` lags, as overlapping multi-step windows
    share errors. None where there are fewer than two cases, the arrays differ in length, or statsmodels (needed for
    ``lags > 0``) is not installed.

    Example:
        >>> diff, error = margin(np.array([1.0, 2.0, 3.0, 2.0]), np.array([2.0, 2.0, 4.0, 4.0]))
        >>> round(diff, 4), round(error, 4)
        (-1.0, 0.4082)
    """
    model, baseline = np.asarray(model_errors, float), np.asarray(baseline_errors, float)
    n = len(model)
    if n < 2 or baseline.shape != model.shape:
        return None
    d = model - baseline
    if lags == 0:
        return float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    try:
        import statsmodels.api as sm
    except ModuleNotFoundError:
        return None
    fit = sm.OLS(d, np.ones(n)).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    return float(fit.params[0]), float(fit.bse[0])


def apart(diff: float, error: float) -> bool:
    """Whether a :func:`margin` tells the two apart: the difference at least one standard error from 0 (a difference
    of 0, two identical sets of losses, never is)."""
    return diff != 0.0 and abs(diff) >= error


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's log directory, as ``trainer.log_dir`` finds it but without its DDP broadcast, so that code
    running on rank 0 alone can call it (the other ranks would block on ``trainer.log_dir``)."""
    if trainer.loggers:
        logger = trainer.loggers[0]
        directory = logger.log_dir if isinstance(logger, (TensorBoardLogger, CSVLogger)) else logger.save_dir
        if directory is not None:
            return Path(directory)
    return Path(trainer.default_root_dir)


@dataclass
class RunSummary:
    """What a recipe run reached, and where its outputs are; :meth:`format` is what a recipe prints.

    Example:
        >>> s = RunSummary("demo", "test RMSE", 0.25, "naive RMSE", 0.9, True, 12, 8, "val_loss", 0.05,
        ...                baselines={"naive RMSE": 0.9, "ARIMA RMSE": 0.2})
        >>> print(s.format())  # doctest: +NORMALIZE_WHITESPACE
        demo, done
          test RMSE           0.2500   (naive RMSE: 0.9000)
          baselines           ARIMA RMSE: 0.2000
          weights             restored from epoch 8 (best val_loss 0.05), after 12 epochs
          verdict             beats naive RMSE; does not beat ARIMA RMSE. Try a longer input window
                              (--data.input_length), forecasting the seasonal differences (if the series has a
                              season of P steps: --data.seasonal_period P --model.difference P, with
                              --data.input_length 2P or more), more epochs, or --tune N
    """

    recipe: str
    score_name: str  # "test RMSE", "test accuracy", "test perplexity"
    score: float
    yardstick_name: str  # the trivial baseline
    yardstick: float
    regularized: bool
    epochs_trained: int
    restored_epoch: int | None = None  # the epoch (from 0) whose weights early stopping restored
    monitor: str | None = None  # what early stopping watched
    best_score: float | None = None  # its best value, where it restored
    log_dir: str | None = None
    logs_root: str | None = None  # the folder to point TensorBoard at
    figure: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # every test metric
    model_file: str | None = None  # the tested model's checkpoint
    confusion_matrix: list[list[int]] | None = None  # test counts: [i][j] cases of class i predicted j
    baselines: dict[str, float] = field(default_factory=dict)  # every baseline's test score; the first is trivial
    arm: str | None = None  # the ablation arm (common.arms)
    first_check_epoch: int | None = None  # early stopping's start_from_epoch
    # with --tune: best (the chosen values), trials, pruned, folds, best_score (validation: a classifier's error
    # rate, else the loss) and, where they apply, none_lr, none_difference, passed_over (why the bare network was
    # kept over a lower-scoring trial) and kept_early_stopping (the chosen trial stops early: no refit)
    tuned: dict[str, Any] | None = None
    best_epoch: int | None = None  # early stopping's best check
    stopped_early: bool = False  # early stopping ended the run before the epoch budget
    refit: dict[str, int] | None = None  # after a refit on every training case: its "epochs" and "cases"
    in_use: list[str] = field(default_factory=list)  # options the advice would name that the run used
    seasonal_period: int | None = None  # a series' period, which a forecast's advice names
    # the data module takes --data.seasonal_period (where it has no period, the summary says how to give one)
    seasonal_option: bool = False
    # the test's cases (a forecaster's: its windows), which the score row names; a classifier's also say how far
    # the test can tell two accuracies apart
    test_cases: int | None = None
    # the margin test (margin()): baseline name -> [the model's mean test loss minus the baseline's (a forecaster's
    # squared error, a classifier's 0/1 error), the standard error of that difference], over the same test cases
    margins: dict[str, list[float]] = field(default_factory=dict)
    data_notes: list[str] = field(default_factory=list)  # what the data module did to the data (gaps filled)
    baseline_notes: list[str] = field(default_factory=list)  # why a baseline is missing (too slow for its budget)
    model_class: str | None = None  # the saved model's class, as a recipe's code imports it (recipes/ on sys.path)
    precision: str | None = None  # the trainer's precision, which a reloaded model is tested in to score the same

    def _beats(self, value: float) -> bool:
        return self.score > value if self.score_name in _HIGHER_IS_BETTER else self.score < value

    def _advice_skips(self) -> set[str]:
        """What the advice leaves out: the options the run used, more epochs where early stopping ended it, less
        regularization where the tested model had none, and the seasonal differences where a study chose on them."""
        skips = set(self.in_use) | ({"epochs"} if self.stopped_early else set())
        if not self.regularized:
            skips.add("none")
        if "difference" in skips or (self.tuned is not None and "difference" in self.tuned.get("best", {})):
            skips.add("seasonal_difference")  # the run forecasts differences, or its study chose on them
        return skips

    def _early_stop_warning(self) -> str | None:
        """The warning where early stopping kept (or stopped at) its first check although later ones ran."""
        first = self.first_check_epoch if self.first_check_epoch is not None else 0
        try_next = (
            "Try a bigger validation split (--data.val_fraction), a later first check "
            "(--early_stopping.start_from_epoch), a lower learning rate (--model.lr), or --model.regularize dropout"
        )
        if self.restored_epoch is not None and self.restored_epoch <= first and self.epochs_trained > first + 1:
            return (
                f"WARNING: early stopping restored its first check (epoch {self.restored_epoch}): no later epoch "
                f"improved {self.monitor}, so the tested model has hardly trained. {try_next}"
            )
        if (
            self.restored_epoch is None
            and self.stopped_early
            and self.best_epoch is not None
            and self.best_epoch <= first
        ):
            return (
                f"WARNING: early stopping stopped after {self.epochs_trained} epochs because no check after its "
                f"first (epoch {self.best_epoch}) improved {self.monitor}: the model trained as few epochs as "
                f"early stopping allows. {try_next}"
            )
        return None

    def _trivial_warning(self, trivial: str, value: float, early_stop: str | None) -> str:
        """The warning where the model does not beat the trivial baseline, with what to try (or the early stop)."""
        lost = f"WARNING: the model does not beat the trivial baseline ({trivial} {value:.4f}): it has learned nothing "
        lost += "that baseline does not know. "
        if early_stop is not None:  # the likely cause, with what to try, is the next warning
            return lost + "Early stopping kept a model that has hardly trained (below)"
        skips = self._advice_skips()
        parts = [text for option, text in _TRY_TRIVIAL if option not in skips]
        forecast = self.score_name == "test RMSE"
        if forecast and _TRY_TRIVIAL_FORECAST[0] not in skips:
            parts.append(_TRY_TRIVIAL_FORECAST[1])
        return lost + (_NAIVE_IS_BEST if forecast else "") + "Try: " + _or_tune(parts, skips)

    def _too_close(self) -> list[str]:
        """The baselines the test cannot tell from the model: their mean losses less than one standard error apart."""
        return [name for name, (diff, error) in self.margins.items() if not apart(diff, error)]

    def _too_close_to_tell(self, trivial: str, value: float) -> str | None:
        """The warning where the model beats the trivial baseline by less than one standard error."""
        if self.score_name not in _HIGHER_IS_BETTER and trivial in self._too_close():
            diff, error = self.margins[trivial]
            windows = f" over its {self.test_cases} test windows" if self.test_cases else ""
            return (
                f"WARNING: the model beats {trivial} ({value:.4f}) by less than one standard error{windows}: its "
                f"mean squared error is {-diff:.4g} lower, with a standard error of {error:.4g} (a Diebold-Mariano "
                "comparison of the two forecasts' squared errors), so the test cannot tell it from that baseline. "
                "Judge it on more test windows (a longer series, or --data.test_fraction) before trusting it"
            )
        n = self.test_cases
        if self.score_name not in _HIGHER_IS_BETTER or not n:
            return None
        error = math.sqrt(self.score * (1.0 - self.score) / n)  # of the test accuracy, as a binomial proportion
        if self.score - value >= error:
            return None
        cases = round((self.score - value) * n)
        return (
            f"WARNING: the model beats {trivial} ({value:.4f}) by only {cases} of {n} test cases, less than one "
            f"standard error of its accuracy ({error:.4f}): the test cannot tell it from that baseline. Judge it on "
            "more test cases (cross-validation folds, seeds) before trusting it"
        )

    def verdict(self) -> list[str]:
        """The verdict's sentences: what the model beats, matches and does not beat, and a warning with what to try
        where it does not beat the trivial baseline (or, a classifier, beats it by less than one standard error),
        where no check after early stopping's first improved although later ones ran, or where the last epoch was
        still the best (the run did not converge in its budget). The advice leaves out what the run already had
        (:meth:`_advice_skips`).

        Example:
            >>> RunSummary("demo", "test accuracy", 0.5, "majority-class accuracy", 0.5, True, 3).verdict()[0][:60]
            'WARNING: the model does not beat the trivial baseline (major'
        """
        out = []
        baselines = self.baselines or {self.yardstick_name: self.yardstick}
        trivial, trivial_value = next(iter(baselines.items()))
        early_stop = self._early_stop_warning()
        if not self._beats(trivial_value):
            out.append(self._trivial_warning(trivial, trivial_value, early_stop))
        else:
            won = [name for name, value in baselines.items() if self._beats(value)]
            tied = [name for name, value in baselines.items() if value == self.score]
            lost = [name for name, value in baselines.items() if not self._beats(value) and value != self.score]
            sentence = f"beats {', '.join(won)}" if lost or tied else f"beats every baseline ({', '.join(won)})"
            if tied:
                sentence += f"; matches {', '.join(tied)} ({self.score:.4f})"
            if lost:
                sentence += f"; does not beat {', '.join(lost)}"
            perfect = self.score_name in _HIGHER_IS_BETTER and self.score >= 1.0
            if (lost or tied) and not perfect:  # a perfect score leaves nothing to try
                sentence += f". Try {_hint(self.score_name, self._advice_skips(), self.seasonal_period)}"
            out.append(sentence)
            close = self._too_close_to_tell(trivial, trivial_value)
            if close is not None:
                out.append(close)
            others = [name for name in self._too_close() if name != trivial and baselines.get(name) != self.score]
            if others:
                forecast = self.score_name not in _HIGHER_IS_BETTER
                what, how = ("mean squared errors", "a Diebold-Mariano comparison") if forecast else (
                    "accuracies", "a paired comparison, case by case")  # fmt: skip
                cases = f" over the {self.test_cases} test {_CASES.get(self.score_name, 'cases')}"
                out.append(
                    f"The test cannot tell the model from {', '.join(others)}: their {what} differ by less than one "
                    f"standard error of the difference{cases if self.test_cases else ''} ({how})"
                )
        if early_stop is not None:
            out.append(early_stop)
        elif (
            self.monitor is not None and not self.stopped_early and self.refit is None and self.epochs_trained > 1
            and self.best_epoch == self.epochs_trained - 1
        ):  # fmt: skip
            out.append(
                f"Still improving: the last epoch ({self.best_epoch}) gave the best {self.monitor} yet, so the run "
                f"ended at its epoch budget before it converged. Try more epochs (--trainer.max_epochs)"
            )
        return out

    def format(self) -> str:
        """The summary as a few aligned lines."""
        cases = "" if self.test_cases is None else f" on {self.test_cases} test {_CASES.get(self.score_name, 'cases')}"
        rows = [(self.score_name, f"{self.score:.4f}{cases}   ({self.yardstick_name}: {self.yardstick:.4f})")]
        others = [(name, value) for name, value in self.baselines.items() if name != self.yardstick_name]
        if others:
            rows.append(("baselines", "; ".join(f"{name}: {value:.4f}" for name, value in others)))
        rows += [("baselines" if not others and k == 0 else "", note) for k, note in enumerate(self.baseline_notes)]
        if self.seasonal_option and self.seasonal_period is None:
            rows.append(
                ("", "no seasonal baselines (the data name no season): --data.seasonal_period P adds the seasonal "
                     "naive and seasonal ARIMA forecasts for a season of P steps")
            )  # fmt: skip
        rows += [("data" if k == 0 else "", note) for k, note in enumerate(self.data_notes)]
        if "test_amplitude_ratio" in self.metrics:
            ratio = self.metrics["test_amplitude_ratio"]
            note = "1 = as much swing as the truth; 0 = flat, right for pure noise"
            rows.append(("amplitude", f"forecast/truth RMS ratio {ratio:.3f} ({note})"))
        epochs = self.epochs_trained
        if self.restored_epoch is not None:
            weights = f"restored from epoch {self.restored_epoch} (best {self.monitor} {self.best_score:.4g}), "
            weights += f"after {epochs} epochs"
        elif self.arm == "dropout":
            weights = f"of the last epoch, {epochs} trained (arm 'dropout': no early stopping)"
        elif self.stopped_early:
            weights = f"of the last epoch: early stopping stopped after {epochs} epochs (best {self.monitor} at "
            weights += f"epoch {self.best_epoch}; weights not restored)"
        elif self.regularized or self.arm == "early_stopping":
            weights = f"of the last epoch, {epochs} trained (nothing restored)"
        else:
            weights = (
                f"of the last epoch, {epochs} trained (regularization off: no dropout, max-norm or early stopping)"
            )
        rows.append(("weights", weights))
        if self.tuned is not None:
            tuned, best = self.tuned, self.tuned["best"]
            folds = int(tuned.get("folds", 1))
            scored = f"; each scored by {folds}-fold cross-validation" if folds > 1 else ""
            if tuned.get("none_lr") is not None:
                scored += f"; the unregularized trial at lr {tuned['none_lr']:.4g} (--tune_none_lr)"
                if tuned.get("none_difference") is not None:
                    scored += f" and difference {tuned['none_difference']} (--tune_none_difference)"
            trials = f"best of {tuned['trials']} trials, {tuned['pruned']} pruned{scored}"
            rows.append(("tuned", f"{format_values(best)} ({trials}; validation score {tuned['best_score']:.4g})"))
            if best.get("regularize") == "none":
                rows.append(
                    ("", "no regularization helped on validation: the tested model is the unregularized network")
                )
                if tuned.get("passed_over"):
                    rows.append(("", f"({tuned['passed_over']}: the simpler model is kept)"))
            if tuned.get("kept_early_stopping"):
                rows.append(("", "the chosen trial stops early: no refit, it trained on the split with early stopping"))
        if self.refit is not None:
            chosen = "the best trial's mean over its folds" if self.tuned is not None else "--refit_epochs"
            cut = (
                f"; the trainer's other limits (--trainer.max_time) stopped it after {epochs}"
                if epochs < self.refit["epochs"] else ""
            )  # fmt: skip
            refit = f"on all {self.refit['cases']} training cases for {self.refit['epochs']} epochs ({chosen}{cut}), "
            rows.append(("refit", refit + "without validation or early stopping"))
        if self.log_dir is not None:
            hint = f"   (view: tensorboard --logdir {self.logs_root})" if self.logs_root else ""
            rows.append(("logs", f"{self.log_dir}{hint}"))
        if self.model_file is not None:
            what = "restored model" if self.restored_epoch is not None else "tested model"
            load = f"{self.model_class or '<ModelClass>'}.load_from_checkpoint(path)"
            if self.precision not in (None, "32-true", "32"):  # the same weights score a little apart in float32
                load += f"; it was tested in {self.precision}"
            rows.append((what, f"{self.model_file}   (load: {load})"))
        if self.figure is not None:
            rows.append((_FIGURE_NAMES.get(Path(self.figure).name, "plot"), self.figure))
        rows += [("verdict" if k == 0 else "", text) for k, text in enumerate(self.verdict())]
        lines = [f"{self.recipe}, done"]
        for name, text in rows:
            wrapped = textwrap.wrap(text, width=100, break_on_hyphens=False) if name in _WRAPPED else [text]
            lines += [f"  {name if k == 0 else '':<18}  {part}" for k, part in enumerate(wrapped)]
        return "\n".join(lines)

    def save(self, path: str | Path) -> None:
        """Write the summary as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")


def collect_summary(
    recipe: str,
    trainer: pl.Trainer,
    datamodule: pl.LightningDataModule,
    *,
    task: str,
    regularized: bool,
    epochs_trained: int,
    figure: Path | None = None,
    model_file: Path | None = None,
    arm: str | None = None,
) -> RunSummary:
    """Build the summary after ``trainer.test`` from ``trainer.callback_metrics``, ``datamodule.yardstick()``,
    ``datamodule.baselines()`` (where it has one) and regdrop's ``EarlyStopping``.

    Raises:
        KeyError: if the test did not log the task's score (``_SCORES``).
    """
    key, score_name = _SCORES[task]
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("test_")}
    if key not in metrics:
        raise KeyError(f"the test logged no {key!r}; it logged {sorted(metrics)}")
    yardstick_name, yardstick = datamodule.yardstick()  # type: ignore[attr-defined]
    baselines_of = getattr(datamodule, "baselines", None)
    baselines = dict(baselines_of()) if callable(baselines_of) else {yardstick_name: yardstick}
    stopper = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)), None)  # type: ignore[attr-defined]
    restored = getattr(stopper, "restored_epoch", None)
    tensorboard = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
    return RunSummary(
        recipe=recipe, score_name=score_name, score=metrics[key], yardstick_name=yardstick_name, yardstick=yardstick,
        regularized=regularized, epochs_trained=epochs_trained, restored_epoch=restored,
        monitor=getattr(stopper, "monitor", None),
        best_score=float(stopper.best_score) if stopper is not None and restored is not None else None,
        log_dir=str(run_dir(trainer)), logs_root=tensorboard.save_dir if tensorboard is not None else None,
        figure=str(figure) if figure is not None else None, metrics=metrics,
        model_file=str(model_file) if model_file is not None else None, baselines=baselines, arm=arm,
        first_check_epoch=getattr(stopper, "start_from_epoch", None), best_epoch=getattr(stopper, "best_epoch", None),
        stopped_early=bool(stopper is not None and getattr(stopper, "stopped_epoch", 0) > 0),
        seasonal_period=getattr(datamodule, "seasonal_period", None),
        seasonal_option="seasonal_period" in inspect.signature(type(datamodule).__init__).parameters,
        test_cases=_test_cases(trainer) if task != "language_model" else None,  # an LM's are chunks of text
        margins=_margins(trainer, datamodule) if task != "language_model" else {},
        data_notes=list(getattr(datamodule, "data_notes", [])),
        baseline_notes=list(getattr(datamodule, "baseline_notes", [])),  # set by baselines(), called above
    )  # fmt: skip


def _test_cases(trainer: pl.Trainer) -> int | None:
    """How many cases the trainer's test loader holds, where its data set says (under DDP each process tests all)."""
    loaders = trainer.test_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) and loaders else loaders
    data = getattr(loader, "dataset", None)
    return len(data) if data is not None and hasattr(data, "__len__") else None


def _margins(trainer: pl.Trainer, datamodule: pl.LightningDataModule) -> dict[str, list[float]]:
    """:func:`margin` against each baseline whose per-case losses the data module gives (``baseline_case_losses``),
    where the tested model kept its own (``test_case_losses``); overlapping forecast windows (a horizon longer than
    the stride) get HAC lags."""
    errors = getattr(trainer.lightning_module, "test_case_losses", None)
    errors_of = getattr(datamodule, "baseline_case_losses", None)
    if errors is None or not callable(errors_of):
        return {}
    lags = max(math.ceil(getattr(datamodule, "horizon", 1) / getattr(datamodule, "stride", 1)) - 1, 0)
    out = {}
    for name, baseline in errors_of().items():
        found = margin(errors, baseline, lags)
        if found is not None:
            out[name] = list(found)
    return out
