"""The recipes' command line: LightningCLI with regdrop's callbacks and TensorBoard; fit, test, summary."""

from __future__ import annotations

import argparse
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from jsonargparse import DefaultHelpFormatter
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams as hparams_summaries

try:
    from typing import override  # type: ignore[attr-defined]
except ImportError:  # Python < 3.12
    from typing_extensions import override

from regdrop.callbacks import EarlyStopping, MaxNorm, RegularizationMonitor
from regdrop.nn.rates import dropout_rates

from .arms import resolve_arm, uses_dropout, uses_early_stopping
from .callbacks import ConfusionMatrixPlot, ForecastPlot
from .data import ClassificationDataModule, ForecastDataModule
from .files import MissingDataError
from .summary import _SCORES, RunSummary, collect_summary, run_dir

__all__ = ["RecipeCLI", "run_name"]

# the recipe's callbacks, by flag group; the figure is the data module's plot_group, else chosen by its task
_CALLBACK_GROUPS: dict[str, type[pl.Callback]] = {
    "max_norm": MaxNorm,
    "early_stopping": EarlyStopping,
    "regularization_monitor": RegularizationMonitor,
}
_PLOT_GROUPS: dict[str, tuple[str, type[pl.Callback]]] = {
    "forecast": ("forecast_plot", ForecastPlot),
    "classify": ("confusion_matrix_plot", ConfusionMatrixPlot),
}
# the Trainer's settings that change what a run computes, logged with the hyperparameters
_TRAINER_HPARAMS = ("max_epochs", "precision", "gradient_clip_val", "accumulate_grad_batches", "num_devices")


_ROLE = re.compile(r":[a-z]+:`~?([^`]*)`")
_LITERAL = re.compile(r"``([^`]*)``")


def plain_help(text: str) -> str:
    """``text`` without reST markup: ``:math:`h_{t-1}``` -> ``h_{t-1}``, double backticks dropped.

    Example:
        >>> plain_help("dropout on :math:`h_{t-1}`, a :class:`~re.Pattern`, ``None`` by default")
        'dropout on h_{t-1}, a re.Pattern, None by default'
    """
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))


class _PlainHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help formatter, with the docstrings' reST markup removed from the option help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        return plain_help(text) if text else text

    def start_section(self, heading: str | None) -> None:
        super().start_section(plain_help(heading) if heading else heading)

    def add_text(self, text: str | None) -> None:
        super().add_text(plain_help(text) if text and text is not argparse.SUPPRESS else text)


def _plot_group(datamodule_class: object) -> tuple[str, type[pl.Callback]] | None:
    return getattr(datamodule_class, "plot_group", None) or _PLOT_GROUPS.get(getattr(datamodule_class, "task", ""))


def _plain(value: Any) -> Any:
    """A value the HParams view can show: numbers and strings as they are, a bool as ``"true"``/``"false"``
    (the writer would log 1 or 0), the rest as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return value
    return "None" if value is None else str(value)


def _flat(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}/{key}": _plain(value) for key, value in values.items() if not str(key).startswith("_")}


# options that are not the model's choices: the task, the arm (named on its own), the schedule
_NOT_IN_NAME = ("task", "regularize", "lr_schedule", "normalize")


def run_name(data: Mapping[str, Any], data_class: type, model: Mapping[str, Any], seed: object) -> str:
    """The start of a run's folder name: ``<data>-<choices>-<arm>-seed<S>``.

    The data set is the data module's ``dataset``, ``name`` or ``path`` option (a path by its stem), else
    its class's ``data_name``, else its class name less ``DataModule``; the choices are the model's string
    options but ``_NOT_IN_NAME``; the arm is ``regularized`` (``all``), ``unregularized`` (``none``),
    ``dropout`` or ``early_stopping``.

    Example:
        >>> class SineDataModule: ...
        >>> run_name({"num_series": 120}, SineDataModule, {"task": "forecast", "cell": "lstm", "regularize": False}, 0)
        'Sine-lstm-unregularized-seed0'
        >>> run_name({"name": "data/My_TRAIN.ts"}, SineDataModule, {"cell": "gru"}, 3)
        'My_TRAIN-gru-regularized-seed3'
        >>> run_name({}, SineDataModule, {"cell": "gru", "regularize": "dropout", "lr_schedule": "plateau"}, 1)
        'Sine-gru-dropout-seed1'
    """
    label = next((str(data[key]) for key in ("dataset", "name", "path") if data.get(key)), None)
    if label is None:
        label = getattr(data_class, "data_name", None) or data_class.__name__.removesuffix("DataModule")
    elif "/" in label or "\\" in label or Path(label).suffix:
        label = Path(label).stem
    choices = [value for key, value in model.items() if key not in _NOT_IN_NAME and isinstance(value, str)]
    arm = model.get("regularize", True)
    arm = {True: "regularized", "all": "regularized", "true": "regularized"}.get(arm, arm)
    arm = {False: "unregularized", "none": "unregularized", "false": "unregularized"}.get(arm, arm)
    parts = [label, *choices, str(arm), f"seed{seed}"]
    return re.sub(r"[^A-Za-z0-9.+_-]+", "-", "-".join(parts))


def _next_free(root: Path, prefix: str) -> int:
    """The smallest ``n`` above every ``<prefix>_<n>`` folder under ``root`` (0 when there is none)."""
    taken = [
        int(match.group(1))
        for entry in (root.iterdir() if root.is_dir() else [])
        if (match := re.fullmatch(rf"{re.escape(prefix)}_(\d+)", entry.name)) is not None
    ]
    return max(taken, default=-1) + 1


class RecipeCLI(LightningCLI):
    """LightningCLI for a recipe, with regdrop's callbacks, ``--num_threads``, ``--tune`` and ``--refit_epochs``.

    Options, run folders and the HParams row are described in recipes/README.md. The data module's sizes
    are linked into the model; the trainer defaults to one CPU device and a TensorBoard logger in
    ``lightning_logs/<recipe>/<run_name>_<N>``. A wrong option, found by the parser or by a constructor,
    exits with status 2 and the reason under the usage line.

    Args:
        recipe: the recipe's name (the log folder's name).
        model_class: the LightningModule, e.g. :class:`common.model.SequenceModel`.
        datamodule_class: a :class:`ForecastDataModule` or :class:`ClassificationDataModule` subclass.
        model_defaults, data_defaults: defaults of ``--model.*`` and ``--data.*``.
        trainer_defaults: defaults of ``--trainer.*`` on top of the CPU and TensorBoard ones.
        callback_defaults: defaults of the callbacks' options, as ``{"early_stopping.patience": 8}``.
        description: the text ``--help`` shows first. Default: ``"regdrop recipe <recipe>"``.
        args: the arguments (default: ``sys.argv[1:]``).
        **kwargs: passed to :class:`LightningCLI`.
    """

    def __init__(
        self,
        recipe: str,
        model_class: type[pl.LightningModule],
        datamodule_class: type[pl.LightningDataModule],
        *,
        model_defaults: dict[str, Any] | None = None,
        data_defaults: dict[str, Any] | None = None,
        trainer_defaults: dict[str, Any] | None = None,
        callback_defaults: dict[str, Any] | None = None,
        description: str | None = None,
        args: ArgsType = None,
        **kwargs: Any,
    ) -> None:
        self.recipe = recipe
        self.model_defaults = dict(model_defaults or {})
        self.data_defaults = dict(data_defaults or {})
        self.callback_defaults = dict(callback_defaults or {})
        self._named_logger: Any = None  # the logger options whose folder name this CLI chose
        self._val_limit: Any = None  # a refit's trainer.limit_val_batches before it turned validation off
        logger = {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": "lightning_logs", "name": recipe},
        }
        defaults: dict[str, Any] = {"accelerator": "cpu", "devices": 1, "logger": logger, **(trainer_defaults or {})}
        kwargs.setdefault("seed_everything_default", 0)
        # the generated usage lists ~100 options, which buries the one line an error adds below it
        groups = ["trainer", "model", "data", *_CALLBACK_GROUPS]
        plot = _plot_group(datamodule_class)
        if plot is not None:
            groups.append(plot[0])
        usage = "%(prog)s [-h] [-c CONFIG] [--print_config] [--seed_everything N] [--num_threads N] " + " ".join(
            f"[--{group}.* ...]" for group in groups
        )
        # allow_abbrev: a misspelt flag that is a prefix of a real one (--trainer.max_epoch) is an error
        kwargs.setdefault("parser_kwargs", {
            "description": description or f"regdrop recipe {recipe}", "usage": usage,
            "formatter_class": _PlainHelpFormatter, "allow_abbrev": False,
        })  # fmt: skip
        super().__init__(
            model_class, datamodule_class, trainer_defaults=defaults, args=args, run=False,
            auto_configure_optimizers=False, **kwargs,
        )  # fmt: skip

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--num_threads",
            type=int,
            default=1,
            help="CPU threads torch uses in each process (torch.set_num_threads); 0 keeps torch's default. One is the "
            "fastest for these small recurrent models on a few shared cores.",
        )
        parser.add_argument(
            "--tune",
            type=int,
            default=0,
            help="Run an Optuna study of N trials over the learning rate and the model's dropout rates on the "
            "validation data (pruning with optuna-integration's Lightning callback), then train with the best trial "
            "and test once. 0: no study. Needs pip install 'regdrop[tune]'.",
        )
        parser.add_argument(
            "--tune_none_lr",
            type=float | None,
            default=None,
            help="With --tune and a regularized arm: the learning rate of the unregularized network in the study, such "
            "as the best of a --model.regularize none study; that network is the first trial, and the others tune "
            "regularization against it.",
        )
        parser.add_argument(
            "--tune_none_difference",
            type=int | None,
            default=None,
            help="With --tune_none_lr, on a series whose study chooses --model.difference: the unregularized network's "
            "difference (0 or the seasonal period), the choice of the same --model.regularize none study.",
        )
        parser.add_argument(
            "--refit_epochs",
            type=int,
            default=0,
            help="Train on every case of the training file (the validation cases too) for N epochs, without validation "
            "or early stopping, then test: what --tune does after a cross-validated study, with the epochs it printed. "
            "It sets the trainer's max_epochs (min_epochs none) and drops early stopping; --trainer.max_time still "
            "applies. Needs a data module that can refit (the UCR/UEA one). 0: the usual split.",
        )
        for group, callback_class in _CALLBACK_GROUPS.items():
            parser.add_lightning_class_args(callback_class, group)
        data_class = self.datamodule_class
        plot = _plot_group(data_class)
        if plot is not None:
            parser.add_lightning_class_args(plot[1], plot[0])
        parser.set_defaults({
            "max_norm.max_value": 3.0, "early_stopping.monitor": "val_loss", "early_stopping.patience": 5,
            "early_stopping.restore_best_weights": True, **self.callback_defaults,
            **{f"model.{key}": value for key, value in self.model_defaults.items()},
            **{f"data.{key}": value for key, value in self.data_defaults.items()},
        })  # fmt: skip
        parser.link_arguments("data.task", "model.task", apply_on="instantiate")
        parser.link_arguments("data.num_features", "model.input_size", apply_on="instantiate")
        if isinstance(data_class, type) and issubclass(data_class, ForecastDataModule):
            parser.link_arguments("data.horizon", "model.horizon")
            # a forecasting model has no classes: keep the option out of --help
            for action in parser._actions:
                if action.dest == "model.num_classes":
                    action.help = argparse.SUPPRESS
        elif isinstance(data_class, type) and issubclass(data_class, ClassificationDataModule):
            parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")

    @override
    def before_instantiate_classes(self) -> None:
        threads = self.config["num_threads"]
        if threads < 0:
            self.parser.error(f"--num_threads must be an int >= 0, got {threads}")
        if self.config["tune"] < 0:
            self.parser.error(f"--tune must be an int >= 0, got {self.config['tune']}")
        none_lr = self.config["tune_none_lr"]
        if none_lr is not None:
            if self.config["tune"] == 0:
                self.parser.error(f"--tune_none_lr {none_lr} needs --tune N (N >= 1): it sets one trial of the study")
            if not none_lr > 0:
                self.parser.error(f"--tune_none_lr must be a learning rate > 0, got {none_lr}")
            arm = resolve_arm(self.config["model"].get("regularize", True))
            if not uses_dropout(arm):
                self.parser.error(
                    f"--tune_none_lr needs a study that may switch dropout off (--model.regularize all or dropout), "
                    f"got --model.regularize {arm}"
                )
        none_difference = self.config["tune_none_difference"]
        if none_difference is not None and none_lr is None:
            self.parser.error(
                f"--tune_none_difference {none_difference} needs --tune_none_lr: both set the unregularized trial"
            )
        data = self.config["data"]
        lag = self.config["model"].get("difference", 0)
        if lag and isinstance(data.get("input_length"), int) and data["input_length"] <= lag:
            self.parser.error(
                f"--model.difference {lag} needs input windows longer than the lag: --data.input_length must be > "
                f"{lag}, got {data['input_length']}"
            )
        refit = self.config["refit_epochs"]
        if refit < 0:
            self.parser.error(f"--refit_epochs must be an int >= 0, got {refit}")
        if refit > 0 and self.config["tune"] > 0:
            self.parser.error(
                f"--refit_epochs {refit} and --tune {self.config['tune']} go apart: a cross-validated study "
                "chooses the refit's epochs itself"
            )
        if refit > 0 and not callable(getattr(self.datamodule_class, "refit", None)):
            self.parser.error(
                f"--refit_epochs needs a data module that can train on its validation cases too (a refit() "
                f"method, as UCRDataModule has); {getattr(self.datamodule_class, '__name__', self.datamodule_class)} "
                "has none"
            )
        if threads > 0:
            torch.set_num_threads(threads)
        logger = self.config["trainer"].get("logger")
        if getattr(logger, "class_path", "").endswith("TensorBoardLogger"):
            options = logger.init_args
            # the HParams view gets the real test metrics after the test (log_hparams), not a -1 placeholder
            options.default_hp_metric = False
            self._named_logger = options if options.version is None else None
            if options.version is None:
                name = run_name(
                    self.config["data"], self.datamodule_class, self.config["model"], self.config["seed_everything"]
                )
                options.version = f"{name}_{_next_free(Path(options.save_dir) / (options.name or ''), name)}"

    @override
    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, FileNotFoundError, MissingDataError, MisconfigurationException) as error:
            self.parser.error(f"{type(error).__name__}: {error}")

    @override
    def after_instantiate_classes(self) -> None:
        single = getattr(self.datamodule_class, "single_process", None)
        if single is not None and self.trainer.world_size > 1:
            self.parser.error(
                f"--trainer.devices (and --trainer.num_nodes) must give one process for {self.recipe}: {single}; "
                f"got {self.trainer.world_size} processes"
            )
        if self._named_logger is not None:
            # config.yaml keeps version null, so that rerunning it with --config names a new folder
            self._named_logger.version = None
        self._drop_callbacks_of_arm()

    def _drop_callbacks_of_arm(self) -> None:
        """Take ``MaxNorm`` off where the model's arm has no dropout, early stopping where it has none."""
        arm = getattr(self.model, "arm", "all" if getattr(self.model, "regularize", True) else "none")
        dropped = []
        if not uses_dropout(arm):
            dropped.append(self.config_init["max_norm"])
        if not uses_early_stopping(arm):
            dropped.append(self.config_init["early_stopping"])
        self.trainer.callbacks = [cb for cb in self.trainer.callbacks if not any(cb is d for d in dropped)]

    def effective_hparams(self) -> dict[str, Any]:
        """The hyperparameters the run actually used, flat, as the HParams view shows them (keys: recipes/README.md).

        ``model/*`` is the model's ``effective_hparams`` (the rates in use) where it defines them, else its
        init arguments; a callback's ``<group>/*`` options appear only where it was in the run.
        """
        model = self.model
        given = getattr(model, "effective_hparams", None)
        model_hparams = dict(given if given is not None else model.hparams)
        hparams: dict[str, Any] = {
            "recipe": self.recipe,
            "seed": _plain(self.config["seed_everything"]),
            "num_threads": self.config["num_threads"],
            **_flat("model", model_hparams),
            **_flat("rates", dropout_rates(model)),
            **_flat("data", dict(self.config["data"])),
            **_flat("trainer", {key: getattr(self.trainer, key) for key in _TRAINER_HPARAMS}),
        }
        plot = _plot_group(self.datamodule_class)
        groups = [*_CALLBACK_GROUPS, *([plot[0]] if plot is not None else [])]
        for group in groups:
            callback = self.config_init.get(group)
            present = any(cb is callback for cb in self.trainer.callbacks) and getattr(callback, "enabled", True)
            hparams[group] = _plain(bool(present))
            if present:
                hparams.update(_flat(group, dict(self.config[group])))
        return hparams

    def log_hparams(self, summary: RunSummary) -> dict[str, float]:
        """Log :meth:`effective_hparams` to TensorBoard (rank 0) against the metrics, which it returns: the test
        metrics, the yardstick's score as ``<score>_baseline`` and ``epochs_trained``."""
        baseline = _SCORES[getattr(self.datamodule, "task", "forecast")][0] + "_baseline"
        metrics = {**summary.metrics, baseline: summary.yardstick, "epochs_trained": float(summary.epochs_trained)}
        hparams = self.effective_hparams()
        step = self.trainer.global_step
        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger) and self.trainer.is_global_zero:
                logger.log_metrics(metrics, step)
                # the session's start and end only: TensorBoard takes the HParams columns from the first
                # experiment summary it finds, hiding other runs' options; without one it uses every session's
                _, start, end = hparams_summaries(hparams, metrics)
                logger.experiment.file_writer.add_summary(start, step)
                logger.experiment.file_writer.add_summary(end, step)
                logger.experiment.flush()
        return metrics

    def save_tested_model(self) -> Path:
        """Save the model after ``fit`` (the weights the test sees) to the run's folder: ``restored.ckpt`` where
        early stopping restored the best weights, else ``final.ckpt``. Call it on every rank (the save is collective).
        """
        stopper = next((cb for cb in self.trainer.callbacks if isinstance(cb, EarlyStopping)), None)
        restored = stopper is not None and stopper.restored_epoch is not None
        path = run_dir(self.trainer) / ("restored.ckpt" if restored else "final.ckpt")
        # a whole checkpoint (the callbacks' states too); saying so keeps Lightning's note about the default quiet
        self.trainer.save_checkpoint(path, weights_only=False)
        return path

    def tune_model(self, trials: int) -> tuple[pl.LightningModule, dict[str, Any]]:
        """Run ``--tune``'s study (:func:`common.tuning.tune`) and build the model with the best trial's values.

        The new model replaces ``self.model``, built from the run's seed as an untuned run's would be. Where the
        study gives ``refit_epochs``, the final fit is a refit (:meth:`_refit`).

        Returns:
            The model, and the study's report for :attr:`RunSummary.tuned`.
        """
        from .tuning import tune

        stopper = next((cb for cb in self.trainer.callbacks if isinstance(cb, EarlyStopping)), None)
        constraint = next((cb for cb in self.trainer.callbacks if isinstance(cb, MaxNorm)), None)
        # the model's own arguments (LightningCLI adds entries of its own, such as `_instantiator`)
        hparams = {key: value for key, value in self.model.hparams.items() if not key.startswith("_")}
        seed = int(self.config["seed_everything"] or 0)
        best, study = tune(
            type(self.model), hparams, self.datamodule, self.config["trainer"].as_dict(), stopper,
            getattr(constraint, "max_value", None), trials, seed=seed, verbose=self.trainer.is_global_zero,
            none_lr=self.config["tune_none_lr"], none_difference=self.config["tune_none_difference"],
        )  # fmt: skip
        pl.seed_everything(seed, verbose=False)
        self.model = type(self.model)(**{**hparams, **best})
        # a study that switched regularization off tests the bare network: no max-norm, no early stopping
        self._drop_callbacks_of_arm()
        attrs = study.user_attrs
        report = {
            "best": best, "trials": len(study.trials), "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
            "best_score": study.trials[attrs["chosen"]].value, "folds": attrs.get("folds", 1),
        }  # fmt: skip
        optional = {
            "passed_over": attrs.get("passed_over"), "none_lr": self.config["tune_none_lr"],
            "none_difference": self.config["tune_none_difference"],
            "kept_early_stopping": attrs.get("kept_early_stopping"),
        }  # fmt: skip
        report.update({key: value for key, value in optional.items() if value is not None})
        if "refit_epochs" in attrs:  # cross-validated on a data module that refits (UCR/UEA)
            self._refit(attrs["refit_epochs"])  # the summary's `refit` reports it
        return self.model, report

    def _refit(self, epochs: int) -> None:
        """Make the final fit a refit: all training cases, ``epochs`` epochs, no validation or early stopping.

        ``limit_val_batches`` is put back after the fit; a model's ``schedule_monitor`` becomes ``train_loss``
        (a model without one whose schedule watches ``val_loss`` fails with Lightning's missing-metric error).
        """
        self._val_limit = self.trainer.limit_val_batches  # put back after the fit (trainer.validate uses it)
        self.datamodule = self.datamodule.refit()  # type: ignore[attr-defined]
        self.datamodule.setup("fit")
        self.trainer.fit_loop.max_epochs = epochs
        self.trainer.fit_loop.min_epochs = None
        self.trainer.limit_val_batches = 0  # the validation cases are in the training split now
        self.trainer.callbacks = [cb for cb in self.trainer.callbacks if not isinstance(cb, EarlyStopping)]
        for callback in self.trainer.callbacks:
            if isinstance(callback, RegularizationMonitor):
                callback.gap = False  # no validation: no generalization gap to log
                self.config["regularization_monitor"].gap = False  # as the HParams row reports it
        if hasattr(self.model, "schedule_monitor"):
            self.model.schedule_monitor = "train_loss"

    def fit_and_test(self) -> RunSummary:
        """Fit (after ``--tune``'s study or for ``--refit_epochs``), save and test the model, print the summary.

        Rank 0 prints the summary and writes ``summary.json`` to the run's folder. A distributed run's process
        group is destroyed at the end, so the trainer cannot fit again. The data are split before anything
        trains (a refit splits its own copy), so that data the split refuses (a class of one training case, a
        series too short for its parts) and a data package that is not installed end the run with exit status 2 and
        the reason under the usage line, as a wrong option does, instead of a traceback from the trainer's ``setup``.
        """
        if not self.config["refit_epochs"]:
            try:
                self.datamodule.setup("fit")
            except (ValueError, MissingDataError) as error:
                self.parser.error(f"{type(error).__name__}: {error}")
        trainer, model = self.trainer, self.model
        task = getattr(self.datamodule, "task", "forecast")
        tuned = None
        if self.config["tune"] > 0:
            model, tuned = self.tune_model(self.config["tune"])
        elif self.config["refit_epochs"] > 0:
            self._refit(self.config["refit_epochs"])
        datamodule = self.datamodule  # a refit replaces it
        refit = None
        if self._val_limit is not None:
            refit = {"epochs": int(trainer.max_epochs), "cases": len(datamodule.split_dataset("train"))}
        with warnings.catch_warnings():
            # the data sit in memory, so loader worker processes would only add start-up time
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            # torch 2.13 deprecates a class that Lightning (up to 2.6) uses inside its loops: nothing to act on here
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    category=FutureWarning)  # fmt: skip
            trainer.fit(model, datamodule=datamodule)
            epochs_trained = trainer.current_epoch
            if self._val_limit is not None:
                trainer.limit_val_batches, self._val_limit = self._val_limit, None
            model_file = self.save_tested_model()
            trainer.test(model, datamodule=datamodule)
        group = _plot_group(self.datamodule_class)
        plot = next((cb for cb in trainer.callbacks if group is not None and isinstance(cb, group[1])), None)
        summary = collect_summary(
            self.recipe, trainer, datamodule, task=task, regularized=bool(getattr(model, "regularize", True)),
            arm=getattr(model, "arm", None), epochs_trained=epochs_trained,
            figure=plot.path if plot is not None else None, model_file=model_file,
        )  # fmt: skip
        summary.tuned = tuned
        summary.refit = refit
        module = type(model).__module__  # a recipe run as a script defines its model in __main__
        summary.model_class = f"{self.recipe if module == '__main__' else module}.{type(model).__name__}"
        summary.precision = str(trainer.precision)
        # the verdict's advice leaves out what this run already used
        summary.in_use = [name for name, used in (("fcn", bool(model.hparams.get("fcn"))), ("tune", tuned is not None),
                                                  ("difference", bool(model.hparams.get("difference"))),
                                                  ("own_text", getattr(datamodule, "path", None) is not None))
                          if used]  # fmt: skip
        if isinstance(plot, ConfusionMatrixPlot) and plot.matrix is not None:
            summary.confusion_matrix = plot.matrix.tolist()
        self.log_hparams(summary)
        if trainer.is_global_zero:
            print("\n" + summary.format(), flush=True)
            directory = run_dir(trainer)
            if directory.is_dir():
                summary.save(directory / "summary.json")
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Lightning destroys only NCCL groups; a gloo group left to shutdown can abort (pytorch#190489)
            torch.distributed.destroy_process_group()
        return summary
