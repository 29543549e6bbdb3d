"""The recipes' data modules, windows over series to forecast and sequences to classify: a recipe subclasses one."""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Callable
from typing import ClassVar, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

from regdrop.functional._validation import check_nonnegative_int, check_positive_int, check_rate

__all__ = [
    "SplitDataModule", "ClassificationDataModule", "ForecastDataModule", "SequenceDataset", "majority_accuracy",
    "make_windows", "pad_collate",
]  # fmt: skip


def majority_accuracy(train_labels: Tensor, test_labels: Tensor) -> float:
    """Test accuracy of always answering the most frequent training class.

    Example:
        >>> majority_accuracy(torch.tensor([0, 1, 1]), torch.tensor([1, 0, 1, 1]))
        0.75
    """
    return float((test_labels == torch.bincount(train_labels).argmax()).float().mean())


def _check_fractions(val_fraction: float, test_fraction: float) -> tuple[float, float]:
    val_fraction = check_rate("val_fraction", val_fraction, allow_one=False)
    test_fraction = check_rate("test_fraction", test_fraction, allow_one=False)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 to leave data for training, got {val_fraction} + {test_fraction}"
        )
    return val_fraction, test_fraction


def make_windows(series: Tensor, input_length: int, horizon: int, stride: int = 1) -> tuple[Tensor, Tensor]:
    """Cut a series into input windows ``(K, input_length, C)`` and the ``(K, horizon, C)`` values after each.

    Args:
        series: the series, ``(T, C)``; shorter than ``input_length + horizon``, it has no window (``K = 0``).
        input_length: steps the model sees.
        horizon: steps it forecasts.
        stride: steps between the starts of consecutive windows. Default: 1.

    Example:
        >>> x, y = make_windows(torch.arange(6.0).unsqueeze(1), input_length=3, horizon=2)
        >>> x.squeeze(-1).tolist(), y.squeeze(-1).tolist()
        ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], [[3.0, 4.0], [4.0, 5.0]])
    """
    span = input_length + horizon
    if series.shape[0] < span:
        return series.new_empty(0, input_length, series.shape[1]), series.new_empty(0, horizon, series.shape[1])
    windows = series.unfold(0, span, stride).transpose(1, 2)  # (K, span, C)
    return windows[:, :input_length].contiguous(), windows[:, input_length:].contiguous()


def _distributed() -> bool:
    """Whether this process is one of several in a process group (DDP)."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


class SplitDataModule(pl.LightningDataModule, abc.ABC):
    """A data module whose loaders differ only by their split's dataset (the training one shuffles)."""

    batch_size: int
    num_workers: int
    collate_fn: ClassVar[Callable | None] = None
    # why the data must be read by one process (a model carrying its state from batch to batch), or None
    single_process: ClassVar[str | None] = None

    @abc.abstractmethod
    def split_dataset(self, split: str) -> Dataset:
        """The dataset of ``"train"``, ``"val"`` or ``"test"``."""

    @abc.abstractmethod
    def yardstick(self) -> tuple[str, float]:
        """The trivial baseline's name and its score on the test data."""

    def baselines(self) -> dict[str, float]:
        """The baselines a summary prints beside the model's score, by name; the first is the trivial one."""
        return dict([self.yardstick()])

    @property
    def can_fold(self) -> bool:
        """Whether ``fold(k, i)`` gives cross-validation folds (for ``--tune``, :func:`common.tuning.tuning_folds`)."""
        return False

    @property
    def fold_always(self) -> bool:
        """Whether ``--tune`` scores on folds however large the validation split (its cases are not independent)."""
        return False

    def loader(self, split: str) -> DataLoader:
        """The split's loader. Under DDP every process validates and tests every case: Lightning's own sampler
        would pad the split with repeated cases so that the processes get equal shares, and the metrics, summed
        over the processes, would count those cases twice; with every case on every process each is counted
        once per process, so accuracies, RMSEs and mean losses come out exact."""
        dataset, workers = self.split_dataset(split), self.num_workers
        options = dict(num_workers=workers, persistent_workers=workers > 0, collate_fn=type(self).collate_fn)
        if split != "train" and _distributed():
            # a DistributedSampler that Lightning keeps as it is: one replica, so every case, in order
            options["sampler"] = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=False)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=split == "train", **options)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.loader("test")


class ForecastDataModule(SplitDataModule):
    """Windows over a list of series: ``input_length`` steps in, the next ``horizon`` out; batches ``(x, y)``.

    Args:
        input_length: steps of history the model sees. Default: 48.
        horizon: steps it forecasts. Default: 12.
        stride: steps between consecutive windows (of every split). Default: 1.
        split: ``"series"``: whole series to each split; ``"time"``: each series cut in time. Default: ``"series"``.
        val_fraction: fraction of the series (or of each series' length) for validation. Default: 0.15.
        test_fraction: fraction for the test. Default: 0.15.
        batch_size: windows per batch. Default: 64.
        num_workers: DataLoader worker processes. Default: 0.
        seed: seed of the split (and of generated data in subclasses). Default: 0.

    With ``split="time"`` the validation and test parts start ``input_length`` steps early: their first inputs
    are the last steps of the part before, so every target lies in its own part.

    Raises:
        ValueError: if an argument is out of range, or a split ends up without data.
    """

    task: ClassVar[str] = "forecast"
    # the period of the seasonal baselines and of the seasonal difference --tune may try; None: no season
    seasonal_period: int | None = None

    def __init__(
        self,
        input_length: int = 48,
        horizon: int = 12,
        stride: int = 1,
        split: Literal["series", "time"] = "series",
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.input_length = check_positive_int("input_length", input_length)
        self.horizon = check_positive_int("horizon", horizon)
        self.stride = check_positive_int("stride", stride)
        if split not in ("series", "time"):
            raise ValueError(f"split must be 'series' or 'time', got {split!r}")
        self.split = split
        self.val_fraction, self.test_fraction = _check_fractions(val_fraction, test_fraction)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_workers = check_nonnegative_int("num_workers", num_workers)
        self.seed = seed
        self._splits: dict[str, list[Tensor]] | None = None
        self._windows: dict[str, TensorDataset] = {}
        self._fold: tuple[int, int] | None = None  # (folds, index) of a copy made by fold()

    @abc.abstractmethod
    def load_series(self) -> list[Tensor]:
        """Return the series, each ``(T,)`` or ``(T, C)``; the same on every call and every process."""

    @property
    def num_features(self) -> int:
        """Channels ``C`` of the series (the model's ``input_size``)."""
        return self.series_splits["train"][0].shape[1]

    @property
    def series_splits(self) -> dict[str, list[Tensor]]:
        """The ``"train"``, ``"val"`` and ``"test"`` series, each ``(T, C)``; loaded and split once."""
        if self._splits is None:
            self._splits = self._split(self._load())
        return self._splits

    @property
    def test_series(self) -> list[Tensor]:
        """The test series, each ``(T, C)``, with the ``input_length`` steps of context in front."""
        return self.series_splits["test"]

    def test_truth(self) -> list[Tensor] | None:
        """The noise-free test series, aligned with :attr:`test_series`, where the data knows them; else None."""
        return None

    def _load(self) -> list[Tensor]:
        loaded, name = self.load_series(), type(self).__name__
        if len(loaded) == 0:
            raise ValueError(f"{name}.load_series() returned no series")
        series = []
        for i, s in enumerate(loaded):
            s = torch.as_tensor(s, dtype=torch.float32)
            s = s.unsqueeze(1) if s.dim() == 1 else s
            if s.dim() != 2:
                raise ValueError(f"{name}: series {i} must be (T,) or (T, C), got shape {tuple(s.shape)}")
            series.append(s)
        return series

    @property
    def can_fold(self) -> bool:  # rolling origins need a series cut in time
        return self.split == "time"

    @property
    def fold_always(self) -> bool:
        """Yes for a series cut in time: its validation windows overlap and follow each other (not independent)."""
        return self.can_fold

    def fold(self, folds: int, index: int) -> ForecastDataModule:
        """A copy (``split="time"``) whose validation part is rolling origin ``index`` of ``folds``.

        The validation part keeps its length and moves back ``folds - 1 - index`` lengths, the training part is
        all before it (so the last fold is this module's own split), the test part stays.

        Raises:
            ValueError: if the split is not ``"time"``, ``folds`` is not an int >= 2 or ``index`` not in
                ``0 .. folds - 1``; when splitting, if a fold's part is shorter than ``input_length + horizon``.

        Example:
            >>> class Years(ForecastDataModule):  # 100 steps, as the Nile's years
            ...     def load_series(self):
            ...         return [torch.arange(100.0)]
            >>> dm = Years(input_length=10, horizon=1, split="time", val_fraction=0.1, test_fraction=0.33)
            >>> [(len(f.series_splits["train"][0]), len(f.windows("val"))) for f in (dm.fold(3, i) for i in range(3))]
            [(37, 10), (47, 10), (57, 10)]
        """
        name = type(self).__name__
        if self.split != "time":
            raise ValueError(f"{name}.fold: rolling origins need split='time', got split={self.split!r}")
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise ValueError(f"{name}.fold: folds must be an int >= 2, got {folds!r}")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < folds:
            raise ValueError(f"{name}.fold: index must be an int from 0 to {folds - 1}, got {index!r}")
        other = copy.copy(self)
        other._fold, other._splits, other._windows = (folds, index), None, {}
        return other

    def _split(self, series: list[Tensor]) -> dict[str, list[Tensor]]:
        span, name = self.input_length + self.horizon, type(self).__name__
        if self.split == "time":
            out: dict[str, list[Tensor]] = {"train": [], "val": [], "test": []}
            for s in series:
                t = s.shape[0]
                val_start = math.floor(t * (1.0 - self.val_fraction - self.test_fraction))
                test_start = math.floor(t * (1.0 - self.test_fraction))
                val_end = test_start
                if self._fold is not None:  # rolling origin: the validation part moves back by whole lengths
                    folds, index = self._fold
                    shift = (folds - 1 - index) * (test_start - val_start)
                    val_start, val_end = val_start - shift, val_end - shift
                # validation and test start input_length steps early, so that every target lies in its own part
                parts = {
                    "train": s[: max(val_start, 0)],
                    "val": s[max(val_start - self.input_length, 0) : val_end],
                    "test": s[max(test_start - self.input_length, 0) :],
                }
                for key, part in parts.items():
                    if part.shape[0] < span:
                        where = "" if self._fold is None else f" (fold {self._fold[1]} of {self._fold[0]})"
                        raise ValueError(
                            f"{name}: the {key} part{where} of a series of length {t} has {part.shape[0]} steps, "
                            f"fewer than input_length + horizon = {span}; use a shorter input_length, a longer "
                            "series or other fractions"
                        )
                    out[key].append(part)
            return out

        n = len(series)
        n_test, n_val = round(n * self.test_fraction), round(n * self.val_fraction)
        if n_val < 1 or n_test < 1 or n - n_val - n_test < 1:
            raise ValueError(
                f"{name}: splitting {n} series with val_fraction={self.val_fraction} and "
                f"test_fraction={self.test_fraction} gives {n - n_val - n_test} train, {n_val} validation and "
                f"{n_test} test series; each needs at least 1 (use more series or split='time')"
            )
        for i, s in enumerate(series):
            if s.shape[0] < span:
                raise ValueError(
                    f"{name}: series {i} has {s.shape[0]} steps, fewer than input_length + horizon = {span}"
                )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        parts = {"train": order[n_test + n_val :], "val": order[n_test : n_test + n_val], "test": order[:n_test]}
        return {key: [series[i] for i in members] for key, members in parts.items()}

    def windows(self, split: str) -> TensorDataset:
        """All windows of one split as a dataset of ``(x, y)`` pairs."""
        if split not in self._windows:
            pairs = [make_windows(s, self.input_length, self.horizon, self.stride) for s in self.series_splits[split]]
            self._windows[split] = TensorDataset(torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))
        return self._windows[split]

    def yardstick(self) -> tuple[str, float]:  # every future step = the last input
        x, y = self.windows("test").tensors
        rmse = (y - x[:, -1:, :]).pow(2).mean().sqrt()
        return "naive last-value forecast RMSE", float(rmse)

    def baseline_case_losses(self) -> dict[str, np.ndarray]:
        """Each baseline's squared error per test window (mean over its steps and channels), keyed as
        :meth:`baselines`, in the test windows' order: what the summary's margin test compares the model's with."""
        x, y = self.windows("test").tensors
        return {self.yardstick()[0]: (y - x[:, -1:, :]).double().pow(2).flatten(1).mean(1).numpy()}

    def setup(self, stage: str) -> None:
        """Load and split the series (once), and cut the windows the stage needs."""
        for split in {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}[stage]:
            self.windows(split)

    def split_dataset(self, split: str) -> TensorDataset:
        return self.windows(split)


class SequenceDataset(Dataset[tuple[Tensor, Tensor]]):
    """Sequences of possibly different lengths, each ``(L_i, C)``, with one integer label each."""

    def __init__(self, sequences: list[Tensor], labels: Tensor) -> None:
        if len(sequences) != len(labels):
            raise ValueError(f"SequenceDataset: {len(sequences)} sequences but {len(labels)} labels")
        self.sequences, self.labels = sequences, labels

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.sequences[index], self.labels[index]


def pad_collate(items: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """Batch sequences of different lengths: zero-padded ``(N, L_max, C)``, ``lengths (N,)``, ``labels (N,)``.

    Example:
        >>> x, lengths, y = pad_collate([(torch.ones(2, 1), torch.tensor(0)), (torch.ones(3, 1), torch.tensor(1))])
        >>> x.shape, lengths.tolist(), y.tolist()
        (torch.Size([2, 3, 1]), [2, 3], [0, 1])
    """
    sequences = [s for s, _ in items]
    lengths = torch.tensor([s.shape[0] for s in sequences])
    return torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True), lengths, torch.stack([y for _, y in items])


class ClassificationDataModule(SplitDataModule):
    """Labelled sequences, split by class (scikit-learn's ``train_test_split``) and batched by :func:`pad_collate`.

    Args:
        val_fraction: fraction of the sequences for validation. Default: 0.15.
        test_fraction: fraction of the sequences for the test. Default: 0.15.
        batch_size: sequences per batch. Default: 32.
        num_workers: DataLoader worker processes. Default: 0.
        seed: seed of the split (and of generated data in subclasses). Default: 0.

    Raises:
        ValueError: if an argument is out of range, or a split ends up empty.
    """

    task: ClassVar[str] = "classify"
    collate_fn = staticmethod(pad_collate)

    def __init__(
        self,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.val_fraction, self.test_fraction = _check_fractions(val_fraction, test_fraction)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_workers = check_nonnegative_int("num_workers", num_workers)
        self.seed = seed
        self._data: tuple[list[Tensor], Tensor] | None = None
        self._splits: dict[str, SequenceDataset] | None = None

    @abc.abstractmethod
    def load_sequences(self) -> tuple[list[Tensor], Tensor]:
        """Return the sequences (each ``(L_i, C)``) and their labels ``(N,)`` in ``0 .. num_classes - 1``."""

    def _loaded(self) -> tuple[list[Tensor], Tensor]:
        if self._data is None:
            sequences, labels = self.load_sequences()
            sequences = [torch.as_tensor(s, dtype=torch.float32) for s in sequences]
            sequences = [s.unsqueeze(1) if s.dim() == 1 else s for s in sequences]
            self._data = sequences, torch.as_tensor(labels, dtype=torch.long)
        return self._data

    @property
    def num_features(self) -> int:
        """Channels ``C`` of the sequences (the model's ``input_size``)."""
        return self._loaded()[0][0].shape[1]

    @property
    def num_classes(self) -> int:
        """Number of classes: the largest label + 1."""
        return int(self._loaded()[1].max()) + 1

    @property
    def splits(self) -> dict[str, SequenceDataset]:
        """The ``"train"``, ``"val"`` and ``"test"`` datasets; split once, the same on every process."""
        if self._splits is None:
            sequences, labels = self._loaded()
            n = len(labels)
            n_test, n_val = round(n * self.test_fraction), round(n * self.val_fraction)
            sizes = {"train": n - n_test - n_val, "val": n_val, "test": n_test}
            empty = next((key for key, size in sizes.items() if size < 1), None)
            if empty is not None:
                raise ValueError(
                    f"{type(self).__name__}: the {empty} split is empty with val_fraction={self.val_fraction} "
                    f"and test_fraction={self.test_fraction} of {n} sequences"
                )
            y = labels.numpy()
            try:  # scikit-learn's stratified splits, test first, then validation out of the rest
                rest, test = train_test_split(np.arange(n), test_size=n_test, stratify=y, random_state=self.seed)
                train, val = train_test_split(rest, test_size=n_val, stratify=y[rest], random_state=self.seed)
            except ValueError as error:
                raise ValueError(
                    f"{type(self).__name__}: val_fraction={self.val_fraction} and test_fraction={self.test_fraction} "
                    f"cannot split {n} sequences by class: {error}"
                ) from None
            parts = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
            self._splits = {
                key: SequenceDataset([sequences[i] for i in members], labels[torch.from_numpy(members)])
                for key, members in parts.items()
            }
        return self._splits

    def yardstick(self) -> tuple[str, float]:
        return "majority-class accuracy", majority_accuracy(self.splits["train"].labels, self.splits["test"].labels)

    def setup(self, stage: str) -> None:
        self.splits  # noqa: B018 -- split here, so a bad split fails before training starts

    def split_dataset(self, split: str) -> SequenceDataset:
        return self.splits[split]
