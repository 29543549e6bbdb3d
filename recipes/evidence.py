"""The evidence table: every real-data recipe unregularized and regularized, over several seeds, from actual runs.

For each experiment and configuration the script trains and tests the recipe once per seed
(the data split stays fixed; the seed changes the initialization, the dropout masks and the
batch order), then scores the trained model on its own training data in eval mode. It
writes a markdown table (mean ± standard deviation over the seeds of the held-out metric,
of the training metric and of the generalization gap, and the wall time per run) with the
published numbers beside it, and a JSON file with every run, from which the table is made.
Results are saved after every run; ``--resume`` skips runs the JSON already holds (with every
run done, it only draws the table again from the JSON). ``--jobs N`` trains up to N runs at once,
each in its own worker process with ``--num-threads`` torch threads (keep N x threads within the
cores); this process alone writes the JSON, as each run ends, and the table is the same whatever
order the runs end in. Before it starts, the script prints the worst case of its wall time: the
time caps (``--trainer.max_time``) of the capped runs, summed and divided by N; the runs without
a cap are counted, their time is unknown.

Run it on the CPU. The full table's time has not been measured: its 96 capped classification runs
alone may take up to 288 min of training (144 min with ``--jobs 2``); the reduced scale took
145 min summed over its processes on a shared 2-core machine::

    python recipes/evidence.py                                  # writes recipes/EVIDENCE.md and .json
    python recipes/evidence.py --jobs 2                         # two runs at once, one thread each
    python recipes/evidence.py --only gunpoint airline --seeds 5
    python recipes/evidence.py --scale tiny --output /tmp/t.md   # seconds; checks the machinery only
    python recipes/evidence.py --merge recipes/EVIDENCE.json     # runs nothing: redraws EVIDENCE.md from its runs
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import multiprocessing
import os
import platform
import re
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # with scikit-learn (extra data)

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make the recipes importable as they are for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import airline_lstm
import asv_lm
import sonar_mlp
import vowels_gru
from common.summary import apart, margin

__all__ = ["EXPERIMENTS", "PUBLISHED", "Config", "Experiment", "Published", "Run", "main", "render", "run_experiments"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Config:
    """One row of an experiment's table: recipe options and the published number it sits beside.

    Its verdict compares it with the experiment's first row and, when ``versus`` names another
    row, with that one too.
    """

    label: str
    args: tuple[str, ...] = ()
    published: str = ""
    regularized: bool = True
    versus: str = ""


@dataclass(frozen=True)
class Experiment:
    """One table: a recipe on one data set, its metric, and its configurations (the first is the reference).

    ``data`` are the recipe's options that pick the data set; ``tiny`` and ``full`` are extra
    options for every configuration at that scale (``reduced`` adds the recipe's small epoch
    budget to ``full``); ``recipe`` names the runner.
    """

    name: str
    title: str
    metric: str
    higher_is_better: bool
    configs: tuple[Config, ...]
    full: tuple[str, ...] = ()
    tiny: tuple[str, ...] = ()
    note: str = ""
    recipe: str = "airline_lstm"
    data: tuple[str, ...] = ()


@dataclass
class Run:
    """What one seed of one configuration reached."""

    experiment: str
    config: str
    seed: int
    test: float
    train: float
    seconds: float
    epochs: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """How much worse the held-out metric is than the training one (positive: overfitting)."""
        if _EXPERIMENTS_BY_NAME[self.experiment].higher_is_better:
            return self.train - self.test
        return self.test - self.train


_NO_REG = Config("unregularized", ("--model.regularize", "false"), regularized=False)
_PER_STEP = "per-step (naive) dropout 0.4/0.25/0.4"
_VARIATIONAL = "variational dropout 0.4/0.25/0.4 (same rates, time-locked masks)"
# the per-step and variational rows differ in the masks only: no word, weight or activation regularization
_DROPOUT_ONLY = ("--model.embedding_dropout", "0", "--model.weight_dropout", "0", "--model.ar", "0", "--model.tar", "0")

# The ablation arms (recipes/common/arms.py), the same four in every table; the first is the reference.
ARM_LABELS = {
    "none": "none",
    "early_stopping": "early stopping only",
    "dropout": "dropout only (+ max-norm)",
    "all": "all: dropout + max-norm + early stopping",
}


def _arms(published: dict[str, str] | None = None) -> tuple[Config, ...]:
    published = published or {}
    return tuple(
        Config(label, ("--model.regularize", arm), published.get(arm, ""), regularized=arm != "none")
        for arm, label in ARM_LABELS.items()
    )


# every classification set that sktime ships, with the official split
UCR_SETS = ("ACSF1", "ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "JapaneseVowels", "OSULeaf", "PLAID")


@dataclass(frozen=True)
class Published:
    """One published test accuracy (%) on a data set's official split: who reported it, for which model."""

    source: str
    model: str
    accuracy: float
    digits: int = 2  # the decimals the source gives (in percent)


def _fraction(value: float) -> float:
    """A published accuracy given as a fraction, in percent."""
    return round(100 * value, 2)


def _error(value: float) -> float:
    """A published error rate (a fraction), as accuracy in percent."""
    return round(100 * (1 - value), 2)


# Sources, as they are cited in the table (each number is copied from the file named, none is re-derived):
_KARIM = "Karim et al. 2017, Table 1"  # LSTM-FCN paper (IEEE Access 2018); the table as an image in
#   github.com/titu1994/LSTM-FCN images/LSTM-FCN-scores.png, README "Results Based on Test Validation Checkpoint"
_KARIM_LOSS = "Karim et al., min. training loss"  # the same authors' rerun, checkpoint of minimum training
#   loss: titu1994/LSTM-FCN Results/train_loss_old_datasets.csv (column LSTM-FCN)
_KARIM_MV = "Karim et al. 2019"  # MLSTM-FCN (Neural Networks 2019): titu1994/MLSTM-FCN images/MLSTM-FCN-scores2.png
_FAWAZ = "Fawaz et al. 2019"  # mean of 10 runs: hfawaz/dl-4-tsc results/results-uea-avg-std.csv
#   (univariate) and results/results-mts-avg-std.csv (JapaneseVowels, Baydogan's copy with the same split)
_UCR = "UCR archive 2018"  # Dau et al. 2019, the archive's DataSummary.csv, 1-NN DTW error rates with no window
#   ("w=100") and with the window learned on the training set; read from the copies in
#   github.com/Chang-George-Dong/TrojanTime and github.com/sensorlab/KAN_TS (DataSummary.csv, identical)

# Published numbers per data set (the names of UCR_SETS). Where a set has none here (BasicMotions: no
# readable source was found), its cell stays "-". GRU-FCN (Elsayed et al. 2018) is not listed: no table of
# it could be read. The protocols differ from this recipe's (see PUBLISHED_NOTE).
PUBLISHED: dict[str, tuple[Published, ...]] = {
    "ACSF1": (
        Published(_UCR, "1-NN DTW (no window)", _error(0.36)),
        Published(_UCR, "1-NN DTW (learned window)", _error(0.38)),
    ),
    "ArrowHead": (
        Published(_KARIM, "LSTM-FCN", _fraction(0.9086)),
        Published(_KARIM_LOSS, "LSTM-FCN", _fraction(0.89714)),
        Published(_FAWAZ, "FCN", 84.3, 1),
        Published(_FAWAZ, "ResNet", 84.5, 1),
        Published(_UCR, "1-NN DTW (no window)", _error(0.2971)),
        Published(_UCR, "1-NN DTW (learned window)", _error(0.2000)),
    ),
    "GunPoint": (
        Published(_KARIM, "LSTM-FCN", _fraction(1.0)),
        Published(_KARIM_LOSS, "LSTM-FCN", _fraction(1.0)),
        Published(_FAWAZ, "FCN", 100.0, 1),
        Published(_FAWAZ, "ResNet", 99.1, 1),
        Published(_UCR, "1-NN DTW (no window)", _error(0.0933)),
        Published(_UCR, "1-NN DTW (learned window)", _error(0.0867)),
    ),
    "ItalyPowerDemand": (
        Published(_KARIM, "LSTM-FCN", _fraction(0.9631)),
        Published(_KARIM_LOSS, "LSTM-FCN", _fraction(0.9621)),
        Published(_FAWAZ, "FCN", 96.1, 1),
        Published(_FAWAZ, "ResNet", 96.3, 1),
        Published(_UCR, "1-NN DTW (no window)", _error(0.0496)),
        Published(_UCR, "1-NN DTW (learned window)", _error(0.0447)),
    ),
    "JapaneseVowels": (
        Published(_KARIM_MV, "MLSTM-FCN", _fraction(1.00), 0),
        Published(_KARIM_MV, "LSTM-FCN", _fraction(0.99), 0),
        Published(_FAWAZ, "MLP", 97.6, 1),
        Published(_FAWAZ, "FCN", 99.3, 1),
        Published(_FAWAZ, "ResNet", 99.2, 1),
        Published(_FAWAZ, "TWIESN", 96.5, 1),
    ),
    "OSULeaf": (
        Published(_KARIM, "LSTM-FCN", _fraction(0.9959)),
        Published(_KARIM_LOSS, "LSTM-FCN", _fraction(0.98347)),
        Published(_FAWAZ, "FCN", 97.7, 1),
        Published(_FAWAZ, "ResNet", 97.9, 1),
        Published(_UCR, "1-NN DTW (no window)", _error(0.4091)),
        Published(_UCR, "1-NN DTW (learned window)", _error(0.3884)),
    ),
    "PLAID": (
        Published(_UCR, "1-NN DTW (no window)", _error(0.1639)),
        Published(_UCR, "1-NN DTW (learned window)", _error(0.1657)),
    ),
}

# How each source's protocol differs from the recipe's, said once per table under the data set's title
_PROTOCOLS = {
    _KARIM: "LSTM-FCN trains 2000 epochs (batch 128) on the whole training set, and Table 1 keeps the checkpoint "
    "chosen on the test set",
    _KARIM_LOSS: "the authors' rerun keeps the checkpoint of least training loss",
    _KARIM_MV: "MLSTM-FCN trains on the whole training set (1000 epochs in the repository's script)",
    _FAWAZ: "Fawaz et al. give the mean of 10 runs (FCN 2000 epochs, ResNet 1500) on the whole training set",
    _UCR: "the UCR archive's 1-NN DTW warps with no window or with the window learned on the training set",
}
# how the 1-NN DTW baseline here differs from the archive's (vowels_gru.one_nn_dtw_accuracy)
_OUR_DTW = {
    "ACSF1": "ours uses a 10% band, as the series have 1460 steps",
    "PLAID": "ours resamples the unequal lengths to 256 steps",
}


def _published_note(name: str) -> str:
    """What the ``published`` column of data set ``name`` quotes, and how far it is comparable ("" if nothing)."""
    sources = dict.fromkeys(entry.source for entry in PUBLISHED.get(name, ()))
    if not sources:
        return ""
    ours = f" ({_OUR_DTW.get(name, 'ours warps with no window too')})"
    protocols = [_PROTOCOLS[source] + (ours if source == _UCR else "") for source in sources]
    return (
        "The *published* column (on the fully regularized row) quotes other protocols, to place the recipe, not "
        f"to score it: {'; '.join(protocols)}. The runs here train for far fewer epochs (at most 100, and 1 minute)."
    )


def _published_cell(name: str) -> str:
    """The ``published`` cell of data set ``name``: its numbers grouped by source, or "" when it has none.

    Raises:
        ValueError: if ``name`` is not one of ``UCR_SETS``.
    """
    if name not in UCR_SETS:
        raise ValueError(f"name must be one of {list(UCR_SETS)}, got {name!r}")
    by_source: dict[str, list[str]] = {}
    for entry in PUBLISHED.get(name, ()):
        by_source.setdefault(entry.source, []).append(f"{entry.model} {entry.accuracy:.{entry.digits}f}")
    return "; ".join(f"{source}: {', '.join(models)}" for source, models in by_source.items())


# series: (input_length, extra data options)
SERIES = {
    # Airline's window holds two years, so that its study may try the seasonal difference
    "airline": ("24", ()),
    "co2": ("52", ("--data.batch_size", "64")),
    "sunspots": ("22", ()),
    "lynx": ("20", ()),
    "nile": ("10", ()),
}
TUNE_TRIALS = 8  # trials of the tuned arms' studies (forecasting)
TUNE_TRIALS_LONG = 4  # trials where one training takes up to a minute (classification, language model)
# the time cap of one classification run: the long sets (ACSF1, OSULeaf, PLAID) meet it, so that the whole
# table fits in about 80 minutes on 2 cores with --jobs 2 (README)
_UCR_TIME = "00:00:01:00"
# the sets whose runs met that cap (OSULeaf trained 56-68 epochs in it, PLAID 36-48, following the machine's load):
# an epoch budget that fits about a minute instead, so a run trains as long whatever the load and two runs with the
# same values train the same model; a 2-minute cap stays as a guard
_UCR_EPOCHS = {"OSULeaf": 60, "PLAID": 40}


def _ucr_budget(name: str) -> tuple[str, ...]:
    """The full scale's budget of a UCR/UEA set's runs.

    Example:
        >>> _ucr_budget("GunPoint"), _ucr_budget("PLAID")
        (('--trainer.max_time', '00:00:01:00'), ('--trainer.max_time', '00:00:02:00', '--trainer.max_epochs', '40'))
    """
    if name in _UCR_EPOCHS:
        return ("--trainer.max_time", "00:00:02:00", "--trainer.max_epochs", str(_UCR_EPOCHS[name]))
    return ("--trainer.max_time", _UCR_TIME)


# the sets whose series are over 1,000 steps: every case is resampled to 256 steps (--data.resample_to), as the
# 1-NN DTW baseline resamples sets of unequal length; at full length a 1-minute run trains 15 (PLAID) to 35 epochs
_LONG_SETS = ("ACSF1", "PLAID")


def _resampled(name: str) -> tuple[str, ...]:
    return ("--data.resample_to", "256") if name in _LONG_SETS else ()


def _tuned_configs(trials: int) -> tuple[Config, ...]:
    """The tuned arms: the unregularized network and the fully regularized one, each with a study of ``trials``."""
    return tuple(
        Config(
            f"tuned {ARM_LABELS[arm]}", ("--model.regularize", arm, "--tune", str(trials)), regularized=arm != "none"
        )
        for arm in ("none", "all")
    )


def _tuned_note(trials: int) -> str:
    return (
        f"Each arm is tuned once: a study of {trials} trials (the learning rate; where the arm regularizes, the "
        "dropout rates from 0 and whether to regularize at all; for a series with a seasonal period whose input "
        "window holds two periods, whether to forecast its seasonal differences, --model.difference) on the "
        "validation data of the first seed (a "
        "classifier scored by its error rate; 3-fold cross-validation: for a series cut in time always, on "
        "rolling origins, whose validation part moves back by its own length; for a classifier where the "
        "validation split has fewer than 30 cases, over the training file; fold k of every trial trains from "
        "the first seed + k), pruned by the median rule; every "
        "seed then trains with the best "
        "trial's values (after a classifier's cross-validation, unless that trial stops early: on every training "
        "case, for the epochs its folds ran on average, without validation or early stopping; otherwise on the "
        "recipe's own split) and is "
        "tested once. Both arms get the same "
        "budget. The regularized arm's study runs after the unregularized arm's, and its unregularized trial "
        "takes the learning rate (and difference) that study chose (--tune_none_lr, --tune_none_difference); "
        "every trial starts from the same seeds, so "
        "that trial repeats the unregularized arm's best exactly, and the regularized arm keeps regularization "
        "only where it beats the tuned bare network on validation (a classifier: where it classifies more "
        "validation cases right; under cross-validation, also on more folds than it loses)."
    )


_UCR_TINY = ("--trainer.max_epochs", "2", "--model.hidden_size", "8", "--model.fcn_channels", "4",
             "--trainer.limit_train_batches", "2")  # fmt: skip
_SERIES_TINY = ("--trainer.max_epochs", "2", "--model.hidden_size", "8")
# 3% of the text, a 2,000-word vocabulary, embedding 64, hidden 128: the size that lets every LM table, tuned arms
# included, fit in the table's time; 50 epochs let each arm converge (seed 0 of ASV's `all` arm: validation
# perplexity 189 after the 6 epochs this budget once had, 82.3 after 50, 82.1 after 60)
_LM_FULL = ("--data.text_fraction", "0.03", "--data.block", "5", "--data.vocab_size", "2000",
            "--model.embedding_size", "64", "--model.hidden_size", "128", "--trainer.max_epochs", "50",
            "--early_stopping.patience", "3")  # fmt: skip
_LM_TINY = ("--data.text_fraction", "0.02", "--data.block", "2", "--data.vocab_size", "200",
            "--model.embedding_size", "8", "--model.hidden_size", "8", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2",
            "--trainer.limit_test_batches", "2", "--data.bptt", "10")  # fmt: skip
# (the language models' full size, _LM_FULL, is already the small one)
# "reduced": every data set, arm and seed, with a small epoch budget (about an hour on 2 shared cores)
_REDUCED = {
    "vowels_gru": ("--trainer.max_epochs", "40", "--early_stopping.patience", "10", "--model.fcn_channels", "32",
                   "--data.batch_size", "16",
                   "--model.hidden_size", "32", "--trainer.max_time", "00:00:01:00"),
    "airline_lstm": ("--trainer.max_epochs", "60", "--early_stopping.patience", "15"),
}  # fmt: skip

# fmt: off
EXPERIMENTS: tuple[Experiment, ...] = (
    *(
        Experiment(
            name.lower(), f"{name}, UCR/UEA classification (recipes/vowels_gru.py --data.name {name})",
            "test accuracy (%)", True, _arms({"all": _published_cell(name)}),
            full=_ucr_budget(name), tiny=_UCR_TINY, recipe="vowels_gru",
            data=("--data.name", name, *_resampled(name)),
            note="Official split (the test file tests; a stratified part of the training file validates)."
            + (f" {_published_note(name)}" if name in PUBLISHED else ""),
        )
        for name in UCR_SETS
    ),
    *(
        Experiment(
            f"{name.lower()}_tuned", f"{name}, UCR/UEA classification, tuned arms (--tune {TUNE_TRIALS_LONG})",
            "test accuracy (%)", True, _tuned_configs(TUNE_TRIALS_LONG),
            full=_ucr_budget(name), tiny=(*_UCR_TINY, "--tune", "2"), recipe="vowels_gru",
            data=("--data.name", name, *_resampled(name)), note=_tuned_note(TUNE_TRIALS_LONG),
        )
        for name in UCR_SETS
    ),
    *(
        Experiment(
            name, f"{name}, one-step forecast (recipes/airline_lstm.py --data.dataset {name})",
            "test RMSE", False,
            _arms({"all": "Keras LSTM(4), look_back=1, same test months: 47.53"} if name == "airline" else None),
            tiny=_SERIES_TINY, recipe="airline_lstm",
            data=("--data.dataset", name, "--data.input_length", length, "--data.horizon", "1", *extra),
            note=f"The first 57% of the series trains, the next 10% validates, the last 33% tests; "
            f"{length} steps of input.",
        )
        for name, (length, extra) in SERIES.items()
    ),
    *(
        Experiment(
            f"{name}_tuned", f"{name}, one-step forecast, tuned arms (--tune {TUNE_TRIALS})", "test RMSE", False,
            _tuned_configs(TUNE_TRIALS),
            tiny=(*_SERIES_TINY, "--tune", "2"), recipe="airline_lstm",
            data=("--data.dataset", name, "--data.input_length", length, "--data.horizon", "1", *extra),
            note=_tuned_note(TUNE_TRIALS),
        )
        for name, (length, extra) in SERIES.items()
    ),
    *(
        Experiment(
            f"{corpus}_lm", f"Word-level language model on the {corpus.upper()} Bible (recipes/asv_lm.py)",
            "test perplexity", False, _arms(), full=_LM_FULL, tiny=_LM_TINY, recipe="asv_lm",
            data=("--data.corpus", corpus),
            note="A CPU-sized mirror of the PTB experiments: a few percent of the text, a small vocabulary "
            "and model; compare the ordering of the rows, not the perplexities with PTB's.",
        )
        for corpus in ("asv", "kjv")
    ),
    *(
        Experiment(
            f"{corpus}_lm_tuned", f"Word-level language model on the {corpus.upper()} Bible, tuned arms "
            f"(--tune {TUNE_TRIALS_LONG})", "test perplexity", False, _tuned_configs(TUNE_TRIALS_LONG),
            full=_LM_FULL, tiny=(*_LM_TINY, "--tune", "2"), recipe="asv_lm", data=("--data.corpus", corpus),
            note=_tuned_note(TUNE_TRIALS_LONG),
        )
        for corpus in ("asv", "kjv")
    ),
    Experiment(
        "asv_masks", "Per-step against time-locked masks, ASV language model (recipes/asv_lm.py)", "test perplexity",
        False,
        (
            Config("unregularized", ("--model.regularize", "false"), "Zaremba et al. 2014, PTB, no dropout: 114.5",
                   regularized=False),
            Config(_PER_STEP, ("--model.masks", "per_step", *_DROPOUT_ONLY),
                   "Zaremba et al. 2014, PTB, medium, dropout: 82.7"),
            Config(_VARIATIONAL, ("--model.masks", "variational", *_DROPOUT_ONLY),
                   "Gal & Ghahramani 2016, PTB, variational: 79.7", versus=_PER_STEP),
            Config("AWD: variational + embedding dropout 0.1 + weight dropout 0.3 + AR/TAR",
                   published="Merity et al. 2017, PTB, AWD-LSTM: 57.3", versus=_VARIATIONAL),
        ),
        full=_LM_FULL, tiny=_LM_TINY, recipe="asv_lm",
        note="A CPU-sized mirror: 3% of the text, 2,000-word vocabulary, embedding 64, "
        "hidden 128, up to 50 epochs; PTB models are ~20-60x larger and train for hundreds of epochs, so compare the "
        "ordering of the rows, not the perplexities.",
    ),
    Experiment(
        "sonar", "Sonar, stratified 10-fold cross-validation (recipes/sonar_mlp.py)", "accuracy (%)", True,
        (
            Config("baseline: no dropout, lr 0.01, momentum 0.8", ("baseline",), "tutorial: 86.04 (4.00)",
                   regularized=False),
            Config("dropout 0.2 on the inputs, MaxNorm 3, lr 0.1, momentum 0.9", ("input",), "tutorial: 83.52 (7.68)"),
            Config("dropout 0.2 on the hidden layers, MaxNorm 3, lr 0.1, momentum 0.9", ("hidden",),
                   "tutorial: 83.59 (7.31)"),
        ),
        full=("epochs=300", "folds=10"),
        tiny=("epochs=2", "folds=2"),
        recipe="sonar",
        note="Each run is a whole 10-fold cross-validation (300 epochs per fold, batch 16); the metric is its mean "
        "accuracy, so the ± is over seeds, not folds (the tutorial's ± is over folds).",
    ),
)
# fmt: on
_EXPERIMENTS_BY_NAME = {e.name: e for e in EXPERIMENTS}

_CLI_RECIPES: dict[str, tuple[Any, str, str, bool]] = {
    # recipe: (module, test metric, the same metric when validating on the training data, in percent)
    "airline_lstm": (airline_lstm, "test_rmse", "val_rmse", False),
    "vowels_gru": (vowels_gru, "test_acc", "val_acc", True),
    "asv_lm": (asv_lm, "test_ppl", "val_ppl", False),
}


def log_name(experiment: Experiment, config: Config) -> str:
    """The run's TensorBoard folder under the log root: one per experiment and arm.

    Two arms of one experiment can run at once and share a run name (a regularized study that keeps the
    bare network names its run ``unregularized``, as the bare arm's is); in one folder they would pick the
    same ``_N`` and the second would find the first's ``config.yaml``.

    Example:
        >>> log_name(_EXPERIMENTS_BY_NAME["nile_tuned"], _EXPERIMENTS_BY_NAME["nile_tuned"].configs[1])
        'nile_tuned/tuned-all-dropout-max-norm-early-stopping'
    """
    return f"{experiment.name}/{re.sub(r'[^a-z0-9]+', '-', config.label.lower()).strip('-')}"


def _recipe_args(experiment: Experiment, config: Config, scale: str) -> list[str]:
    """The recipe options of one configuration at ``scale`` (a later option overrides an earlier one)."""
    extra = {"tiny": experiment.tiny, "full": experiment.full}.get(scale, experiment.full)
    if scale == "reduced":
        extra = (*experiment.full, *_REDUCED.get(experiment.recipe, ()))
    return [*experiment.data, *config.args, *extra]


def _without_study(args: Sequence[str], best: dict[str, float]) -> list[str]:
    """``args`` with ``--tune N`` taken out and the study's ``best`` values given as model options.

    Example:
        >>> _without_study(["--model.regularize", "all", "--tune", "8"], {"lr": 0.002, "dropout": 0.25})
        ['--model.regularize', 'all', '--model.lr', '0.002', '--model.dropout', '0.25']

    An int (a forecaster's ``difference``) stays an int::

        >>> _without_study(["--tune", "8"], {"lr": 0.002, "difference": 12})
        ['--model.lr', '0.002', '--model.difference', '12']

    A study that switched regularization off gives ``regularize`` (the later option wins)::

        >>> _without_study(["--model.regularize", "all", "--tune", "8"], {"regularize": "none", "lr": 0.002})
        ['--model.regularize', 'all', '--model.regularize', 'none', '--model.lr', '0.002']

    After a cross-validated study, its ``refit_epochs`` make the run a refit on every training case::

        >>> _without_study(["--tune", "8"], {"lr": 0.002, "refit_epochs": 61})
        ['--model.lr', '0.002', '--refit_epochs', '61']
    """
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--tune":
            skip = True
        elif not arg.startswith("--tune="):
            kept.append(arg)
    for name, value in best.items():
        if name == "refit_epochs":
            kept += ["--refit_epochs", str(int(value))]
        else:
            text = value if isinstance(value, str) else str(value) if isinstance(value, int) else repr(float(value))
            kept += [f"--model.{name}", text]
    return kept


def _run_cli_recipe(
    experiment: Experiment,
    config: Config,
    seed: int,
    scale: str,
    log_root: Path,
    best: dict[str, float] | None = None,
    none: dict[str, Any] | None = None,
) -> Run:
    """One recipe run; with ``best`` (a tuned configuration's values, from its first seed's study) no study runs;
    ``none`` is the tuned unregularized arm's choice that the study's unregularized trial takes: its ``lr``
    (``--tune_none_lr``) and, where its study chose one, its ``difference`` (``--tune_none_difference``)."""
    module, test_key, train_key, percent = _CLI_RECIPES[experiment.recipe]
    recipe_args = _recipe_args(experiment, config, scale)
    if best is not None:
        recipe_args = _without_study(recipe_args, best)
    elif none is not None:
        recipe_args = [*recipe_args, "--tune_none_lr", repr(float(none["lr"]))]
        if "difference" in none:
            recipe_args += ["--tune_none_difference", str(int(none["difference"]))]
    args = [
        *recipe_args, "--seed_everything", str(seed),
        # the recipe sets torch's threads itself (its default is 1): give it this process's (--num-threads)
        "--num_threads", str(torch.get_num_threads()),
        "--trainer.logger.save_dir", str(log_root), "--trainer.logger.name", log_name(experiment, config),
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ]  # fmt: skip
    start = time.perf_counter()
    cli = module.cli(args)
    summary = cli.fit_and_test()
    # the trained (restored) model on its own training data, in eval mode: the other end of the gap
    train_metrics = cli.trainer.validate(cli.model, dataloaders=cli.datamodule.train_dataloader(), verbose=False)[0]
    seconds = time.perf_counter() - start
    factor = 100.0 if percent else 1.0
    return Run(
        experiment.name, config.label, seed,
        test=summary.metrics[test_key] * factor, train=float(train_metrics[train_key]) * factor,
        seconds=seconds, epochs=summary.epochs_trained,
        extra={"restored_epoch": summary.restored_epoch, "first_check_epoch": summary.first_check_epoch,
               "best_epoch": summary.best_epoch, "stopped_early": summary.stopped_early,
               "log_dir": summary.log_dir, "yardstick": summary.yardstick * factor,
               "yardstick_name": summary.yardstick_name,
               "baselines": {name: value * factor for name, value in summary.baselines.items()},
               "tuned": summary.tuned if best is None else {
                   "best": {name: value for name, value in best.items() if name != "refit_epochs"}, "shared": True},
               "refit": summary.refit, "margins": summary.margins,
               "test_losses": encode_losses(getattr(cli.model, "test_case_losses", None))},
    )  # fmt: skip


def encode_losses(losses: Sequence[float] | None) -> str | None:
    """A run's per-case test losses (a classifier's 0/1 errors, a forecaster's squared errors per window) as one
    string of numbers to 7 significant digits: one JSON line per run, from which the tables pair runs case by case.

    Example:
        >>> encode_losses([0.0, 1.0, 2.0 / 3.0]), decode_losses("0 1 0.6666667")
        ('0 1 0.6666667', [0.0, 1.0, 0.6666667])
    """
    return None if losses is None else " ".join(f"{float(x):.7g}" for x in losses)


def decode_losses(text: str) -> list[float]:
    """The losses :func:`encode_losses` wrote."""
    return [float(x) for x in text.split()]


def _paired_seeds(runs: Sequence[Run], label: str, reference: str) -> tuple[int, int] | None:
    """In how many seeds ``label``'s runs differ from ``reference``'s by at least one standard error, paired on the
    same test cases (common.summary.margin of their per-case losses; every forecast here is one step ahead, so no
    lags), and out of how many seeds both recorded their losses; None where none did."""
    losses = {(r.config, r.seed): r.extra.get("test_losses") for r in runs}
    pairs = [(losses[label, seed], losses.get((reference, seed))) for config, seed in losses if config == label]
    found = [m for a, b in pairs if a and b and (m := margin(decode_losses(a), decode_losses(b))) is not None]
    return (sum(apart(*m) for m in found), len(found)) if found else None


def _baseline_seeds(runs: Sequence[Run], label: str, baseline: str) -> tuple[int, int] | None:
    """As :func:`_paired_seeds`, against a baseline, from the margins each run's summary recorded."""
    found = [r.extra["margins"][baseline] for r in runs if r.config == label and baseline in r.extra.get("margins", {})]
    return (sum(apart(*m) for m in found), len(found)) if found else None


def _run_sonar(experiment: Experiment, config: Config, seed: int, scale: str, log_root: Path, *study: object) -> Run:
    """A sonar run (ten-fold cross-validation); it has no study, so ``study`` (best values, none) goes unused."""
    options = dict(item.split("=") for item in (experiment.tiny if scale == "tiny" else experiment.full))
    start = time.perf_counter()
    result = sonar_mlp.cross_validate(
        config.args[0],  # type: ignore[arg-type]
        folds=int(options.get("folds", 10)), epochs=int(options.get("epochs", 300)), seed=seed,
    )  # fmt: skip
    return Run(
        experiment.name, config.label, seed, test=result.mean, train=result.train_mean,
        seconds=time.perf_counter() - start, extra={"fold_std": result.std, "folds": result.test_accuracies},
    )  # fmt: skip


_RUNNERS: dict[str, Callable[..., Run]] = {
    "airline_lstm": _run_cli_recipe, "vowels_gru": _run_cli_recipe, "asv_lm": _run_cli_recipe, "sonar": _run_sonar,
}  # fmt: skip


def _option(args: Sequence[str], name: str) -> str | None:
    """The value the last ``name`` in ``args`` gives (as the recipe's parser reads them), or None."""
    values = [value for option, value in itertools.pairwise(args) if option == name]
    values += [arg.split("=", 1)[1] for arg in args if arg.startswith(name + "=")]
    return values[-1] if values else None


def time_cap(experiment: Experiment, config: Config, scale: str, study: bool = True) -> float | None:
    """The most seconds one run of ``config`` spends training at ``scale``, or None when nothing caps it.

    The cap is the recipe's ``--trainer.max_time`` (``DD:HH:MM:SS``); with ``--tune N`` each of the N
    trials and the final training has it, so the run's cap is :math:`(N + 1)` times it. Loading the
    data, the baselines and the tests come on top of it. Runs whose options are not a recipe's
    (sonar) or that give ``max_time`` in another form have no cap here. ``study=False``: a tuned
    configuration's run that reuses another seed's study (one training).

    Example:
        >>> plaid = _EXPERIMENTS_BY_NAME["plaid"]
        >>> time_cap(plaid, plaid.configs[0], "full"), time_cap(plaid, plaid.configs[0], "tiny")
        (120.0, None)
    """
    if experiment.recipe not in _CLI_RECIPES:
        return None
    args = _recipe_args(experiment, config, scale)
    cap = _option(args, "--trainer.max_time")
    parts = (cap or "").split(":")
    if len(parts) != 4 or not all(part.isdigit() for part in parts):
        return None
    days, hours, minutes, seconds = (int(part) for part in parts)
    trials = _option(args, "--tune")
    trainings = 1 + (int(trials) if study and trials and trials.isdigit() else 0)
    return float(trainings * (((days * 24 + hours) * 60 + minutes) * 60 + seconds))


def time_estimate(
    plan: Sequence[tuple[int, Experiment, Config]], scale: str, jobs: int, shared: Sequence[int] = ()
) -> str:
    """One line on the worst-case wall time of the runs in ``plan`` (seed, experiment, configuration), ``jobs`` at once.

    For the time-capped runs (see :func:`time_cap`) it is the sum of their caps divided by ``jobs``:
    an upper bound on their training, not counting loading, baselines and testing, nor that the
    last ``jobs`` runs may end unevenly (at most one cap more). The runs without a cap are counted;
    their time is unknown and left out, not guessed. The runs at the places ``shared`` reuse a study
    (one training each).

    Example:
        >>> plaid = _EXPERIMENTS_BY_NAME["plaid"]
        >>> sonar = _EXPERIMENTS_BY_NAME["sonar"]
        >>> plan = [(s, plaid, c) for s in (0, 1, 2) for c in plaid.configs] + [(0, sonar, sonar.configs[0])]
        >>> print(time_estimate(plan, "full", 2))  # doctest: +NORMALIZE_WHITESPACE
        13 runs, 2 at a time. Worst case: the 12 time-capped runs (--trainer.max_time) train for at most
        24.0 min in all, 12.0 min of wall time over 2 jobs (an upper bound on their training; loading,
        baselines and testing add to it); 1 run has no time cap: its time is unknown and not included.
    """
    caps = [time_cap(experiment, config, scale, i not in shared) for i, (_, experiment, config) in enumerate(plan)]
    capped = [cap for cap in caps if cap is not None]
    uncapped = len(caps) - len(capped)
    words = f"{len(plan)} run{'s' if len(plan) != 1 else ''}, {jobs} at a time. Worst case: "
    if not capped:
        which = "the run is not" if len(plan) == 1 else "none of them is"
        return words + f"unknown: {which} time-capped (--trainer.max_time)."
    words += (
        f"the {len(capped)} time-capped run{'s' if len(capped) != 1 else ''} (--trainer.max_time) train for at "
        f"most {sum(capped) / 60:.1f} min in all, {sum(capped) / 60 / jobs:.1f} min of wall time over {jobs} "
        f"job{'s' if jobs != 1 else ''} (an upper bound on their training; loading, baselines and testing add to it)"
    )
    if not uncapped:
        return words + "."
    return words + (
        f"; {uncapped} run{' has' if uncapped == 1 else 's have'} no time cap: "
        f"{'its' if uncapped == 1 else 'their'} time is unknown and not included."
    )


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _fmt(values: Sequence[float], digits: int) -> str:
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def render(runs: Sequence[Run], meta: dict[str, Any]) -> str:
    """The markdown: one table per experiment that has runs, then the verdict of each against its reference row."""
    lines = [
        "# Evidence: regularization on real data",
        "",
        f"Produced by `{meta['command']}` on {meta['date']} ({meta['machine']}); total wall time "
        f"{meta['total_seconds'] / 60:.1f} min. Every number below comes from the runs recorded in "
        f"`{meta['json']}`; nothing is typed by hand. Mean ± standard deviation over seeds "
        f"{meta['seeds']}. The gap is the held-out metric's distance from the same metric on the training data "
        "(model in eval mode; after a refit, every training case), signed so that positive means worse on "
        "held-out data.",
        "",
    ]
    if meta["scale"] == "tiny":
        lines += ["**Scale: tiny** (each run cut to seconds to check the machinery; the numbers mean nothing).", ""]
    if meta["scale"] == "reduced":
        lines += [
            "**Scale: reduced** (every data set, arm and seed, with the small epoch budget of `_REDUCED` in "
            "recipes/evidence.py: it checks the protocol across data, it does not tune it; longer runs may rank "
            "the arms differently).",
            "",
        ]
    lines += _targets(runs)
    lines += _overview(runs)
    for experiment in EXPERIMENTS:
        mine = [r for r in runs if r.experiment == experiment.name]
        if not mine:
            continue
        better = "higher" if experiment.higher_is_better else "lower"
        lines += [
            f"## {experiment.title}",
            "",
            f"{experiment.note} Metric: {experiment.metric}, {better} is better.",
            "",
        ]
        lines += [
            f"| configuration | {experiment.metric} | on training data | gap | epochs | s / run | seeds | published |",
            "|---|---|---|---|---|---|---|---|",
        ]
        means: dict[str, float] = {}
        for config in experiment.configs:
            rows = [r for r in mine if r.config == config.label]
            if not rows:
                continue
            epochs = [r.epochs for r in rows if r.epochs is not None]
            means[config.label] = _mean_std([r.test for r in rows])[0]
            cells = [
                config.label,
                _fmt([r.test for r in rows], 2),
                _fmt([r.train for r in rows], 2),
                _fmt([r.gap for r in rows], 2),
                f"{statistics.fmean(epochs):.0f}" if epochs else "-",
                f"{statistics.fmean(r.seconds for r in rows):.0f}",
                str(len(rows)),
                config.published or "-",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        verdicts = []
        for config in experiment.configs[1:]:
            for reference in (experiment.configs[0].label, config.versus):
                if config.label not in means or reference not in means:
                    continue
                delta = means[config.label] - means[reference]
                improved = delta > 0 if experiment.higher_is_better else delta < 0
                ref_scores = [r.test for r in mine if r.config == reference]
                scores = [r.test for r in mine if r.config == config.label]
                spread = max(_mean_std(ref_scores)[1], _mean_std(scores)[1])
                verdict = "helped" if improved else "did **not** help"
                size = " (within one standard deviation of the seeds)" if abs(delta) <= spread else ""
                paired = _paired_seeds(mine, config.label, reference)
                test = "" if paired is None else (
                    f" Paired on the test cases, at least one standard error apart in {paired[0]} of {paired[1]} "
                    "seeds.")  # fmt: skip
                verdicts.append(f"- *{config.label}* {verdict}: {delta:+.2f} against *{reference}*{size}.{test}")
        lines += ["", *verdicts] if verdicts else []
        lines += _study_lines(experiment, mine)
        lines += _baseline_lines(experiment, mine, means)
        lines.append("")
    return "\n".join(lines)


def _study_lines(experiment: Experiment, runs: Sequence[Run]) -> list[str]:
    """What each tuned configuration's study chose (the run that studied; the other seeds reuse it)."""
    lines = []
    for config in experiment.configs:
        study = next((r for r in runs if r.config == config.label and (r.extra.get("tuned") or {}).get("trials")), None)
        if study is None:
            continue
        tuned = study.extra["tuned"]
        best = tuned["best"]
        values = ", ".join(f"{name} {value:.3g}" for name, value in best.items() if not isinstance(value, str))
        off = " **no regularization** (the unregularized network)," if best.get("regularize") == "none" else ""
        folds = int(tuned.get("folds", 1))
        scored = f", each trial scored by {folds}-fold cross-validation" if folds > 1 else ""
        if tuned.get("none_lr") is not None:
            scored += f", its unregularized trial at the tuned none arm's lr {tuned['none_lr']:.3g}"
            if tuned.get("none_difference") is not None:
                scored += f" and difference {tuned['none_difference']}"
        refit = study.extra.get("refit")
        refit_text = (
            f"; every seed then refit on all {refit['cases']} training cases for {refit['epochs']} epochs"
            if refit else ""
        )  # fmt: skip
        if tuned.get("kept_early_stopping"):
            refit_text = "; it stops early, so every seed then trained on the recipe's split with early stopping"
        lines.append(
            f"- *{config.label}*: the study (seed {study.seed}, {tuned['trials']} trials, {tuned['pruned']} pruned"
            f"{scored}) chose{off} {values}{refit_text}."
        )
    return ["", *lines] if lines else []


def _tuned_means(runs: Sequence[Run], experiment: Experiment) -> dict[str, float]:
    return {
        c.label: statistics.fmean(r.test for r in runs if r.experiment == experiment.name and r.config == c.label)
        for c in experiment.configs
        if any(r.experiment == experiment.name and r.config == c.label for r in runs)
    }


def _kept_first_check(run: Run) -> bool:
    """Whether no check after early stopping's first counted one improved, although later ones ran.

    Then the run either restored that first check (a model that has hardly trained) or, keeping
    its last weights, stopped as soon as patience allowed; the recipe's summary warns either way.
    """
    first = run.extra.get("first_check_epoch") or 0
    if (run.epochs or 0) <= first + 1:
        return False
    restored = run.extra.get("restored_epoch")
    if restored is not None:
        return bool(restored <= first)
    best = run.extra.get("best_epoch")
    return bool(run.extra.get("stopped_early") and best is not None and best <= first)


def _targets(runs: Sequence[Run]) -> list[str]:
    """Issue 11's targets, each counted from the tuned arms (chosen without the test data) and the baselines."""
    tuned = [e for e in EXPERIMENTS if e.name.endswith("_tuned") and any(r.experiment == e.name for r in runs)]
    if not tuned:
        return []
    regularized_ok, trivial_ok, dtw, arima = [], [], [], []
    arm_tests: list[str] = []  # where tuned regularized lost: seeds in which the arms are a standard error apart
    baseline_tests: list[str] = []  # the same against 1-NN DTW or ARIMA
    switched_off: list[str] = []
    for experiment in tuned:
        means = _tuned_means(runs, experiment)
        none, everything = experiment.configs[0].label, experiment.configs[-1].label
        baselines = _baselines_of([r for r in runs if r.experiment == experiment.name])
        if none not in means or everything not in means or not baselines:
            continue
        sign = 1.0 if experiment.higher_is_better else -1.0
        data = experiment.name.removesuffix("_tuned")
        regularized_ok.append((data, sign * (means[everything] - means[none]) >= 0))
        study = next((r.extra["tuned"] for r in runs if r.experiment == experiment.name and r.config == everything
                      and (r.extra.get("tuned") or {}).get("trials")), None)  # fmt: skip
        if study is not None and study["best"].get("regularize") == "none":
            switched_off.append(data)
        trivial_ok.append((data, sign * (means[everything] - next(iter(baselines.values()))) > 0))
        mine = [r for r in runs if r.experiment == experiment.name]
        if sign * (means[everything] - means[none]) < 0:
            arm_seeds = _paired_seeds(mine, everything, none)
            if arm_seeds is not None:
                arm_tests.append(f"{data} {arm_seeds[0]} of {arm_seeds[1]}")
        for name, value in baselines.items():
            if "DTW" in name:
                dtw.append((data, sign * (means[everything] - value) > 0))
            if "ARIMA" in name:
                arima.append((data, sign * (means[everything] - value) >= 0))
            seeds = _baseline_seeds(mine, everything, name) if "DTW" in name or "ARIMA" in name else None
            if seeds is not None:
                won = "won" if sign * (means[everything] - value) > 0 else "lost"
                baseline_tests.append(f"{data} {seeds[0]} of {seeds[1]} ({won})")

    def count(results: list[tuple[str, bool]], noun: str) -> str:
        won = [name for name, ok in results if ok]
        lost = [name for name, ok in results if not ok]
        return f"{len(won)} of {len(results)} {noun}" + (f" (not: {', '.join(lost)})" if lost else "")

    first = [r for r in runs if _kept_first_check(r)]
    still = [r for r in runs if _still_improving(r)]
    return [
        "## Targets (issue 11), from the tuned arms",
        "",
        "Counted on the *tuned all* arm (dropout + max-norm + early stopping, rates and learning rate chosen on "
        "validation data; its study may also switch regularization off), mean of the seeds, against the *tuned "
        "none* arm and the baselines on the same test data. No number here is picked on test data.",
        "",
        f"- The regularized study switched regularization off on {len(switched_off)} of {len(regularized_ok)} "
        "data sets"
        + (f" ({', '.join(switched_off)}): there the arm tests the unregularized network" if switched_off else "")
        + ".",
        f"- Tuned regularized at least as good as tuned unregularized: {count(regularized_ok, 'data sets')} "
        "(target: all).",
        f"- Tuned regularized better than the trivial baseline: {count(trivial_ok, 'data sets')} (target: all).",
        f"- Classification: tuned regularized beats 1-NN DTW on {count(dtw, 'sets')} (target: 6 of 8).",
        f"- Forecasting: tuned regularized at least as good as ARIMA on {count(arima, 'series')} (target: 3 of 5).",
        *(
            [
                "- Paired on the same test cases (each seed's per-case losses: a Diebold-Mariano comparison for the "
                "forecasts, the paired 0/1 errors for the classifiers), the seeds in which tuned regularized is at "
                f"least one standard error from tuned unregularized where it lost to it: {', '.join(arm_tests)}."
            ]
            if arm_tests
            else []
        ),
        *(
            [f"- The same against 1-NN DTW or ARIMA (won or lost on the means, as above): {', '.join(baseline_tests)}."]
            if baseline_tests
            else []
        ),
        f"- Runs in which no check after early stopping's first improved (the first check restored, or the run "
        f"stopped as soon as patience allowed): {len(first)}; each is named under its table, and the recipe's "
        "summary warns when it happens.",
        f"- Runs that early stopping watched but did not stop, whose last epoch still gave the best check (their "
        f"budget ended them before they converged by its measure): {len(still)}; each is named under its table.",
        "",
    ]


def _still_improving(run: Run) -> bool:
    """Whether early stopping watched the run, did not stop it, and its last epoch gave the best check: the budget
    (epochs or time) ended a run that had not converged by early stopping's measure; the summary says so too.
    Runs without early stopping have no watched check and are not counted."""
    best = run.extra.get("best_epoch")
    return bool(
        best is not None and not run.extra.get("stopped_early") and not run.extra.get("refit")
        and (run.epochs or 0) > 1 and best == (run.epochs or 0) - 1
    )  # fmt: skip


def _baselines_of(runs: Sequence[Run]) -> dict[str, float]:
    """The baselines recorded with the runs (the same for every seed and arm of one data set)."""
    for run in runs:
        if run.extra.get("baselines"):
            return dict(run.extra["baselines"])
    return {}


def _strongest(baselines: dict[str, float], sign: float) -> str:
    """The name of the best baseline (``sign``: 1 where higher is better, -1 where lower is)."""
    return max(baselines, key=lambda name: sign * baselines[name])


def _short(name: str) -> str:
    return name.split(" (")[0].replace(" accuracy", "").replace(" RMSE", "").replace(" perplexity", "")


def _baseline_lines(experiment: Experiment, runs: Sequence[Run], means: dict[str, float]) -> list[str]:
    baselines = _baselines_of(runs)
    if not baselines:
        return []
    sign = 1.0 if experiment.higher_is_better else -1.0
    lines = ["", "Baselines on the same test data: " + "; ".join(f"{n} {v:.2f}" for n, v in baselines.items()) + "."]
    strongest = _strongest(baselines, sign)
    for label, mean in means.items():
        lost = [_short(n) for n, v in baselines.items() if sign * (mean - v) <= 0]
        seeds = _baseline_seeds(runs, label, strongest)
        test = "" if seeds is None else (
            f" Against {_short(strongest)}, paired on the test cases: at least one standard error apart in {seeds[0]} "
            f"of {seeds[1]} seeds.")  # fmt: skip
        lines.append(
            f"- *{label}* ({mean:.2f}) "
            + (f"does **not** beat {', '.join(lost)}." if lost else "beats every baseline.")
            + test
        )
    for flagged, sentence in (
        (_kept_first_check, "- No check after early stopping's **first check** improved in {n} run(s) ({which}): "
                            "restored, or stopped as soon as patience allowed."),
        (_still_improving, "- The last epoch was still the best check in {n} run(s) ({which}): the budget ended "
                           "them, not early stopping."),
    ):  # fmt: skip
        named = [r for r in runs if flagged(r)]
        if named:
            lines.append(sentence.format(n=len(named), which=", ".join(f"{r.config} seed {r.seed}" for r in named)))
    return lines


def _overview(runs: Sequence[Run]) -> list[str]:
    """One line per data set: the reference arm, the best arm, the baselines, and who wins."""
    rows = []
    for experiment in EXPERIMENTS:
        mine = [r for r in runs if r.experiment == experiment.name]
        baselines = _baselines_of(mine)
        if not mine or not baselines:
            continue
        sign = 1.0 if experiment.higher_is_better else -1.0
        means = {
            c.label: statistics.fmean(r.test for r in mine if r.config == c.label)
            for c in experiment.configs
            if any(r.config == c.label for r in mine)
        }
        reference = experiment.configs[0].label
        best = max(means, key=lambda label: sign * means[label])
        strongest = _strongest(baselines, sign)
        trivial = next(iter(baselines.values()))
        everything = experiment.configs[-1].label
        cells = [
            experiment.name,
            f"{means.get(reference, math.nan):.2f}",
            f"{means.get(everything, math.nan):.2f}",
            f"{best} ({means[best]:.2f})",
            f"{_short(strongest)} {baselines[strongest]:.2f}",
            "yes" if everything in means and sign * (means[everything] - means.get(reference, math.nan)) >= 0 else "no",
            "yes" if sign * (means[best] - trivial) > 0 else "**no**",
            "yes" if sign * (means[best] - baselines[strongest]) > 0 else "**no**",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        "## Overview: wins and losses",
        "",
        "Means over the seeds. *all ≥ none*: the fully regularized arm is at least as good as the unregularized "
        "one. *beats trivial*: the best arm beats the first baseline (majority class, naive forecast, unigram). "
        "*beats strongest*: the best arm beats the strongest baseline (1-NN DTW, ARIMA or seasonal naive, "
        "Kneser-Ney bigram).",
        "",
        "| data set | none | all | best arm | strongest baseline | all ≥ none | beats trivial | beats strongest |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _end_with(parent: int) -> None:
    """Run in each worker as it starts: end the worker when ``parent`` (the process that writes the JSON) is gone.

    A killed parent cannot record what its workers finish; without this they would train on, unseen,
    beside the runs of a ``--resume``, then wait forever for work. The worker is interrupted as by
    Ctrl-C, so that cleanup runs (torch's lock on the compiled loop's build folder, left by a killed
    process, blocks every later process), and ended outright 10 s later.
    """
    # a process started in the background of a script inherits SIGINT ignored: take Python's handler back
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10.0)
        os._exit(1)

    threading.Thread(target=watch, name="evidence-parent-watch", daemon=True).start()


def _run_in_worker(
    runner: Callable[..., Run],
    experiment: Experiment,
    config: Config,
    seed: int,
    scale: str,
    log_root: Path,
    threads: int,
    best: dict[str, float] | None = None,
    none: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run in a worker process (``--jobs`` > 1), with the parent's thread count; the run as a dict."""
    torch.set_num_threads(threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    with threadpool_limits(limits=threads, user_api="blas"):
        run = runner(experiment, config, seed, scale, log_root, best, none)
    # a dict, not a Run: the class of a script run as __main__ need not unpickle in the parent
    return asdict(run)


def _write(path: Path, text: str) -> None:
    """Write ``text`` whole or not at all: a process killed while writing leaves the previous file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


# what a JSON of runs must record in its meta to be resumed (its scale too, to be merged: the table names it)
_META_KEYS = ("command", "date", "machine", "seeds", "total_seconds")


def load_runs(path: Path, meta_keys: Sequence[str] = _META_KEYS) -> tuple[dict[str, Any], list[Run]]:
    """The meta and the runs of a JSON file of runs, as this script writes them (``--json``).

    Raises:
        ValueError: saying what is wrong (the message starts with ``path``), if it is no such file.
    """
    try:
        saved = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror or error})") from None
    except ValueError as error:  # not JSON, or not text
        raise ValueError(f"{path} is not JSON ({error})") from None
    if not (isinstance(saved, dict) and isinstance(saved.get("meta"), dict) and isinstance(saved.get("runs"), list)):
        got = f"a JSON {type(saved).__name__}"
        if isinstance(saved, dict):
            got = f"the keys {sorted(saved)[:4]}{' ...' * (len(saved) > 4)}"
        raise ValueError(f"{path} is not a JSON of runs: it needs an object with 'meta' (an object) and 'runs' "
                         f"(a list), got {got}")  # fmt: skip
    missing = [key for key in meta_keys if key not in saved["meta"]]
    if missing:
        raise ValueError(f"{path} is not a JSON of runs: its meta lacks {missing}")
    names = {f.name for f in fields(Run)}
    needed = {f.name for f in fields(Run) if f.default is MISSING and f.default_factory is MISSING}
    runs = []
    for number, run in enumerate(saved["runs"]):
        if not isinstance(run, dict) or not needed <= set(run) <= names:
            got = sorted(run) if isinstance(run, dict) else f"a JSON {type(run).__name__}"
            raise ValueError(f"{path}: run {number} must have the keys {sorted(needed)} and may have "
                             f"{sorted(names - needed)}, got {got}")  # fmt: skip
        numbers = [run[key] for key in ("seed", "test", "train", "seconds")]
        kinds = [int, float, float, float]  # an int is a number too
        if any(isinstance(v, bool) or not isinstance(v, kind | int) for v, kind in zip(numbers, kinds, strict=True)):
            raise ValueError(f"{path}: run {number} must have an int seed and numbers for test, train and seconds, "
                             f"got {numbers}")  # fmt: skip
        experiment = _EXPERIMENTS_BY_NAME.get(run["experiment"])
        if experiment is None or run["config"] not in [c.label for c in experiment.configs]:
            raise ValueError(f"{path}: run {number} is of no known experiment and configuration, got "
                             f"{run['experiment']!r} | {run['config']!r}")  # fmt: skip
        runs.append(Run(**run))
    return saved["meta"], runs


def _resumable(json_path: Path, scale: str) -> tuple[dict[str, Any], list[Run]]:
    """The meta and the runs of ``json_path`` to resume at ``scale`` (none if there is no such file).

    Raises:
        ValueError: if ``json_path`` is not a JSON of runs, or records runs of another scale.
    """
    if not json_path.is_file():
        print(f"[evidence] --resume: there is no {json_path} yet, every run starts afresh", file=sys.stderr, flush=True)
        return {}, []
    meta, runs = load_runs(json_path)
    if meta.get("scale", scale) != scale:
        raise ValueError(f"the runs in {json_path} are of scale {meta['scale']!r}: --scale must be "
                         f"{meta['scale']!r} to resume them, got {scale!r}")  # fmt: skip
    return meta, runs


def run_experiments(
    names: Sequence[str],
    seeds: Sequence[int],
    scale: str,
    output: Path,
    json_path: Path,
    log_root: Path,
    resume: bool = False,
    command: str = "python recipes/evidence.py",
    jobs: int = 1,
) -> list[Run]:
    """Run the experiments ``names`` for every seed, saving the JSON and the markdown after each run.

    Each run has this process's number of torch threads and as many BLAS threads. With ``jobs`` > 1,
    up to ``jobs`` runs train at once, each in a worker process (``spawn``); this process alone
    writes the files, as each run ends, and keeps the runs in the order a sequential run gives
    them, whatever order they end in. When a run fails, no new run starts, the runs under way
    finish and are saved, and the first failure is raised (with the worker's traceback).

    Raises:
        ValueError: if a name is unknown, ``scale`` is not ``"full"``, ``"reduced"`` or ``"tiny"``,
            ``jobs`` is not an int >= 1, or, with ``resume``, ``json_path`` is not a JSON of runs or
            records runs of another scale.
    """
    unknown = sorted(set(names) - set(_EXPERIMENTS_BY_NAME))
    if unknown:
        raise ValueError(f"experiments must be among {sorted(_EXPERIMENTS_BY_NAME)}, got {unknown}")
    if scale not in ("full", "reduced", "tiny"):
        raise ValueError(f"scale must be 'full', 'reduced' or 'tiny', got {scale!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    previous: list[Run] = []
    previous_seconds = 0.0
    saved_meta: dict[str, Any] = {}
    if resume:
        saved_meta, previous = _resumable(json_path, scale)
        previous_seconds = float(saved_meta.get("total_seconds", 0.0))
    # seeds outermost: a run cut short still covers every data set and arm with the seeds it finished
    plan = [
        (seed, _EXPERIMENTS_BY_NAME[name], config)
        for seed in seeds
        for name in names
        for config in _EXPERIMENTS_BY_NAME[name].configs
        if not any(r.experiment == name and r.config == config.label and r.seed == seed for r in previous)
    ]
    at_once = max(1, min(jobs, len(plan)))  # never more runs at once than runs to do
    start = time.perf_counter()
    threads = torch.get_num_threads()
    meta: dict[str, Any] = {
        "command": command,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{threads} thread(s) per process" + (f", {at_once} runs at once" if at_once > 1 else ""),
        "seeds": list(seeds),
        "scale": scale,
        "json": json_path.name,
        "total_seconds": previous_seconds,
    }
    if saved_meta:  # the table keeps saying which command made its runs
        meta.update(command=saved_meta["command"], date=saved_meta["date"], machine=saved_meta["machine"],
                    seeds=sorted(set(saved_meta["seeds"]) | set(seeds)))  # fmt: skip
    finished: dict[int, Run] = {}  # by place in the plan
    # A tuned configuration studies once, with the first seed; its other seeds train with that study's
    # best values (the test data stays unseen by the study, and each arm's seeds share one tuning).
    # The regularized arm's study waits for the unregularized arm's: its unregularized trial takes that
    # study's learning rate (--tune_none_lr), so it weighs regularization against the tuned bare network.
    first_seed = seeds[0] if seeds else 0

    def study_of(key: tuple[str, str, int]) -> tuple[bool, Run | None]:
        """Whether the run ``key`` (experiment, configuration, seed) is done or will not come, and the run."""
        done = previous + list(finished.values())
        run = next((r for r in done if (r.experiment, r.config, r.seed) == key), None)
        return run is not None or not any((e.name, c.label, s) == key for s, e, c in plan), run

    def shared_study(index: int) -> tuple[bool, dict[str, float] | None, dict[str, Any] | None]:
        """Whether run ``index`` can start, the best values it reuses (None: it studies itself) and the
        values of its study's unregularized trial (``lr`` and any ``difference``; None: the run's)."""
        seed, experiment, config = plan[index]
        if "--tune" not in config.args:
            return True, None, None
        if seed == first_seed:
            bare = next((c for c in experiment.configs if "--tune" in c.args and not c.regularized), None)
            if not config.regularized or bare is None:
                return True, None, None
            ready, run = study_of((experiment.name, bare.label, first_seed))
            chosen = ((run.extra.get("tuned") or {}).get("best") or {}) if run is not None else {}
            none = {name: chosen[name] for name in ("lr", "difference") if name in chosen}
            return ready, None, none if "lr" in none else None
        ready, study = study_of((experiment.name, config.label, first_seed))
        if study is not None and (study.extra.get("tuned") or {}).get("best") is not None:
            # after a cross-validated study, every seed is refit for the study's epochs
            refit = study.extra.get("refit")
            best = dict(study.extra["tuned"]["best"]) | ({"refit_epochs": refit["epochs"]} if refit else {})
            return True, best, None
        return ready, None, None  # wait for a study under way or still to come

    def record(index: int, run: Run) -> None:
        seed, experiment, config = plan[index]
        print(f"[evidence]   {experiment.name} | {config.label} | seed {seed}: {experiment.metric} {run.test:.3f} "
              f"(train {run.train:.3f}) in {run.seconds:.0f} s", flush=True)  # fmt: skip
        finished[index] = run
        meta["total_seconds"] = previous_seconds + time.perf_counter() - start
        runs = previous + [finished[i] for i in sorted(finished)]
        _write(json_path, json.dumps({"meta": meta, "runs": [asdict(r) for r in runs]}, indent=1) + "\n")
        _write(output, render(runs, meta))

    if plan:
        if saved_meta:
            meta["command"] = f"{saved_meta['command']} (resumed: {command})"
        if jobs > at_once:
            print(f"[evidence] --jobs {jobs}: only {len(plan)} run{'s' if len(plan) != 1 else ''} to do, so "
                  f"{at_once} at once", file=sys.stderr, flush=True)  # fmt: skip
        cores = os.cpu_count() or 1
        crowded = f" ({at_once} x {threads} threads on {cores} cores: they compete)" * (at_once * threads > cores)
        shared = [i for i, (seed, _, config) in enumerate(plan) if seed != first_seed and "--tune" in config.args]
        print(f"[evidence] {time_estimate(plan, scale, at_once, shared)}{crowded}", flush=True)
    if jobs == 1:
        # numpy's BLAS (statsmodels' ARIMA baselines) gets the threads torch has: on a few busy cores, its
        # default of one thread per core made those baselines several times slower, with the same numbers
        with threadpool_limits(limits=threads, user_api="blas"):
            for index, (seed, experiment, config) in enumerate(plan):
                print(f"[evidence] {experiment.name} | {config.label} | seed {seed}", flush=True)
                # the study's seed runs first (seeds are outermost), the unregularized arm before the regularized
                _, best, none = shared_study(index)
                record(index, _RUNNERS[experiment.recipe](experiment, config, seed, scale, log_root, best, none))
    elif plan:
        _run_parallel(plan, at_once, threads, scale, log_root, record, shared_study)
    runs = previous + [finished[i] for i in sorted(finished)]
    _write(output, render(runs, meta))  # also when every run was already done: the table is drawn anew
    return runs


def _run_parallel(
    plan: Sequence[tuple[int, Experiment, Config]],
    jobs: int,
    threads: int,
    scale: str,
    log_root: Path,
    record: Callable[[int, Run], None],
    shared_study: Callable[[int], tuple[bool, dict[str, float] | None, float | None]],
) -> None:
    """Run ``plan`` in ``jobs`` worker processes, calling ``record`` here as each run ends; raise the first failure.

    A run that reuses a study still under way (``shared_study``) waits; the next run in the plan
    that can start takes its place.
    """
    failures: list[BaseException] = []
    waiting = list(range(len(plan)))
    under_way: dict[Future[dict[str, Any]], int] = {}
    # spawn: a fresh interpreter per worker, no fork of this process's torch and thread pools
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=spawn, initializer=_end_with, initargs=(os.getpid(),))
    try:
        while True:
            while len(under_way) < jobs and not failures:
                start = next(((i, best, bare) for i in waiting for ready, best, bare in [shared_study(i)] if ready),
                             None)  # fmt: skip
                if start is None:
                    break
                index, best, none = start
                waiting.remove(index)
                seed, experiment, config = plan[index]
                print(f"[evidence] {experiment.name} | {config.label} | seed {seed}", flush=True)
                runner = _RUNNERS[experiment.recipe]
                future = pool.submit(
                    _run_in_worker, runner, experiment, config, seed, scale, log_root, threads, best, none
                )
                under_way[future] = index
            if not under_way:
                break
            done, _ = wait(under_way, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=under_way.__getitem__):
                index = under_way.pop(future)
                try:
                    run = Run(**future.result())
                except BaseException as error:  # raised below, once the runs under way have ended
                    seed, experiment, config = plan[index]
                    print(f"[evidence] FAILED: {experiment.name} | {config.label} | seed {seed}: "
                          f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)  # fmt: skip
                    failures.append(error)
                    continue
                record(index, run)
    finally:
        # on an interrupt, runs not yet started are dropped; the workers' runs under way end with them
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        raise failures[0]


def joined(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[Run]]:
    """The metas and the runs of the JSON files of runs ``paths``, checked to make one table.

    Raises:
        ValueError: saying what is wrong, if a file is not a JSON of runs that records its scale, if the
            files record different scales, if two runs are of the same experiment, configuration and
            seed, or if the files hold no run.
    """
    metas: list[dict[str, Any]] = []
    runs: list[Run] = []
    where: dict[tuple[str, str, int], Path] = {}  # the file of each run
    for path in paths:
        meta, some = load_runs(Path(path), (*_META_KEYS, "scale"))
        if metas and meta["scale"] != metas[0]["scale"]:
            raise ValueError(f"{path} records runs of scale {meta['scale']!r}, {paths[0]} of scale "
                             f"{metas[0]['scale']!r}: one table is of one scale")  # fmt: skip
        for run in some:
            key = (run.experiment, run.config, run.seed)
            if key in where:
                raise ValueError(f"the run {run.experiment} | {run.config} | seed {run.seed} is recorded twice, "
                                 f"in {where[key]} and in {path}: each run must be recorded once")  # fmt: skip
            where[key] = Path(path)
        metas.append(meta)
        runs += some
    if not runs:
        raise ValueError(f"the files {[str(p) for p in paths]} hold no run: there is no table to draw")
    return metas, runs


def merge(paths: Sequence[Path], output: Path, json_path: Path) -> list[Run]:
    """Join the runs of several JSON files (of runs made in parallel processes), write one JSON and one table.

    The machine is the first file's; the commands and the dates (each once) are listed; the total
    wall time is the sum of the files' (the processes' times, not the elapsed time).

    Raises:
        ValueError: as :func:`joined` does.
    """
    metas, runs = joined(paths)
    meta = dict(metas[0])
    meta.update(
        command=" and ".join(f"`{m['command']}`" for m in metas).strip("`"),
        date=" and ".join(dict.fromkeys(d for m in metas for d in str(m["date"]).split(" and "))),
        total_seconds=sum(float(m["total_seconds"]) for m in metas),
        seeds=sorted({s for m in metas for s in m["seeds"]}),
        json=json_path.name,
    )
    json_path.write_text(json.dumps({"meta": meta, "runs": [asdict(r) for r in runs]}, indent=1) + "\n")
    output.write_text(render(runs, meta))
    return runs


def _at_least_one(value: str) -> int:
    """An option's int value >= 1 (argparse puts the option's name before the message)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {value!r}")
    return number


# the options of a run, which --merge (it runs nothing) refuses: their dest and their default
_RUN_OPTIONS: dict[str, tuple[str, Any]] = {
    "--only": ("only", [e.name for e in EXPERIMENTS]),
    "--seeds": ("seeds", 3),
    "--scale": ("scale", "full"),
    "--log-root": ("log_root", Path("lightning_logs") / "evidence"),
    "--resume": ("resume", False),
    "--num-threads": ("num_threads", 1),
    "--jobs": ("jobs", 1),
}


def _unwritable(path: Path, folder: bool = False) -> str:
    """Why ``path`` cannot be written as a file (or, with ``folder``, made a folder): "" where it can, as far as can
    be told before writing. The evidence scripts check their output paths with it before anything runs."""
    if path.exists() and path.is_dir() != folder:
        return f"{path} is a folder" if path.is_dir() else f"{path} is a file"
    # a file needs its folder; Lightning makes a log folder's missing parents
    place = next(p for p in (path, *path.parents) if p.exists()) if folder else path.parent
    if not place.is_dir():
        return f"{place} is not a folder" if place.exists() else f"its folder {place} does not exist"
    if not os.access(place, os.W_OK):
        return f"its folder {place} is not writable"
    return ""


def main(args: Sequence[str] | None = None) -> list[Run]:
    """Parse ``args`` (default: the command line) and run.

    Bad options (and, with ``--merge`` or ``--resume``, bad JSON files) stop with argparse's usage
    error (exit status 2) before anything runs or is written.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # the options of a run have no default here (SUPPRESS): --merge sees which were given
    parser.add_argument(
        "--only",
        nargs="+",
        default=argparse.SUPPRESS,
        choices=[e.name for e in EXPERIMENTS],
        help="experiments to run (default: all)",
    )
    parser.add_argument(
        "--seeds", type=int, default=argparse.SUPPRESS, help="seeds 0 .. N-1 per configuration (default: 3)"
    )
    parser.add_argument(
        "--scale",
        choices=["full", "reduced", "tiny"],
        default=argparse.SUPPRESS,
        help="'reduced' gives every run a small epoch budget; 'tiny' shrinks every run to seconds, to check the "
        "machinery (default: full)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "EVIDENCE.md", help="the markdown table")
    parser.add_argument("--json", type=Path, default=None, help="every run (default: the output with .json)")
    parser.add_argument(
        "--log-root", type=Path, default=argparse.SUPPRESS, help="TensorBoard logs (default: lightning_logs/evidence)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=argparse.SUPPRESS,
        help="keep the runs the JSON already holds (they must be of the same --scale)",
    )
    parser.add_argument(
        "--num-threads", type=_at_least_one, default=argparse.SUPPRESS, help="torch threads of each run (default: 1)"
    )
    parser.add_argument(
        "--jobs",
        type=_at_least_one,
        default=argparse.SUPPRESS,
        help="runs at once, each in its own process with --num-threads threads; keep jobs x threads within the "
        "CPU cores (default: 1, in this process)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        help="run nothing: draw the table from the runs of these JSON files (from runs made in parallel); it takes "
        "none of the options of a run (" + ", ".join(_RUN_OPTIONS) + ")",
    )
    options = parser.parse_args(args)
    given = [name for name, (dest, _) in _RUN_OPTIONS.items() if dest in options]
    for dest, default in _RUN_OPTIONS.values():
        options.__dict__.setdefault(dest, default)
    json_path = options.json or options.output.with_suffix(".json")
    for name, path in (("--output", options.output), ("--json", json_path)):
        if _unwritable(path):
            default = " (default: the output with .json)" if name == "--json" and options.json is None else ""
            parser.error(f"{name}{default} must be a file in an existing folder, got {path}: {_unwritable(path)}")
    if options.output.resolve() == json_path.resolve():
        parser.error(f"--output must differ from the JSON of the runs (--json, default: the output with .json), got "
                     f"{options.output} for both: the table would overwrite the runs")  # fmt: skip
    if options.merge:
        if given:
            parser.error(f"--merge redraws the recorded runs and runs nothing: it takes none of "
                         f"{', '.join(_RUN_OPTIONS)}, got {', '.join(given)}")  # fmt: skip
        try:  # merge checks every file (joined) before it writes anything
            return merge(options.merge, options.output, json_path)
        except ValueError as error:
            parser.error(f"--merge takes JSON files of runs as this script writes them (--json): {error}")
    if options.seeds < 1:
        parser.error(f"--seeds must be an int >= 1, got {options.seeds}")
    existing = next(p for p in (options.log_root, *options.log_root.parents) if p.exists())  # "/" or "." at last
    if not existing.is_dir():
        parser.error(f"--log-root must be a folder or a path to make one, got {options.log_root}: {existing} is "
                     "not a folder")  # fmt: skip
    if options.resume and json_path.is_file():
        try:
            _resumable(json_path, options.scale)
        except ValueError as error:
            parser.error(f"--resume keeps the runs of the JSON (--json, default: the output with .json): {error}")
    torch.set_num_threads(options.num_threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    command = "python recipes/evidence.py" + ("" if args is None else " " + " ".join(args))
    if args is None:
        command = "python recipes/evidence.py " + " ".join(sys.argv[1:])
    return run_experiments(options.only, list(range(options.seeds)), options.scale, options.output, json_path,
                           options.log_root, options.resume, command.strip(), jobs=options.jobs)  # fmt: skip


if __name__ == "__main__":
    main()
