"""Classify variable-length sequences (UCR/UEA JapaneseVowels by default) with a bidirectional regularized GRU.

JapaneseVowels: 9 speakers, 12 LPC cepstrum channels, 7 to 29 steps; the official split
(270 training utterances, 370 test) is kept, so test accuracy compares with published results
(Fawaz et al. 2019: MLP 97.6%, FCN 99.3%, ResNet 99.2%, echo-state network 96.5%); 15% of the
training set validates for early stopping. Sequences run packed (no padding enters the GRU).
The network is a bidirectional ``regdrop.nn.GRU`` with variational input dropout and recurrent
dropout, ``LockedDropout`` before the head, ``MaxNorm`` and early stopping. Any UCR/UEA set
that sktime ships can be chosen by name, or a ``NAME_TRAIN.ts`` file of your own.

Run it (CPU, about a minute)::

    python recipes/vowels_gru.py
    python recipes/vowels_gru.py --model.regularize false          # the same network, unregularized
    python recipes/vowels_gru.py --data.name BasicMotions
    python recipes/vowels_gru.py --data.name path/to/MyData_TRAIN.ts
    python recipes/vowels_gru.py --model.cell lstm --help          # every option
    tensorboard --logdir lightning_logs
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make `import common` work as it does for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from lightning.pytorch.cli import ArgsType
from lightning.pytorch.utilities import rank_zero_info
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from common import RecipeCLI, RunSummary, SequenceModel
from common.data import ClassificationDataModule, SequenceDataset, majority_accuracy
from common.files import package_file, user_file

__all__ = [
    "TsData", "UCRDataModule", "cli", "load_ucr", "main", "one_nn_dtw_accuracy", "one_nn_dtw_correct", "read_ts",
    "sktime_ts_names",
]  # fmt: skip


# The data: UCR/UEA classification sets in the .ts format (the ones sktime ships, or a user's), read by sktime.


@dataclass
class TsData:
    """The cases of a ``.ts`` file.

    Attributes:
        sequences: one float32 tensor ``(L_i, C)`` per case (time first, then channels).
        labels: the class label of each case, as written in the file.
        class_names: the labels declared by ``@classLabel true ...``, in that order.
    """

    sequences: list[Tensor]
    labels: list[str]
    class_names: list[str]

    def targets(self, class_names: list[str]) -> Tensor:
        """The index of each case's label in ``class_names`` (the training file's, for a test file)."""
        return torch.tensor([class_names.index(label) for label in self.labels])


def _header(path: Path) -> dict[str, str]:
    """The header of a ``.ts`` file: ``{"classlabel": "true a b", ...}``, keys lower-cased, up to ``@data``."""
    header: dict[str, str] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = raw.strip()
            if line.startswith("@"):
                key, _, value = line[1:].partition(" ")
                if key.lower() == "data":
                    break
                header[key.lower()] = value.strip()
    return header


def _check_header(path: Path, header: dict[str, str], case: int, values: np.ndarray, first_length: int) -> None:
    """Raise ValueError, naming the file, the case and the header line, where case ``case`` (``(L, C)``)
    contradicts ``@univariate true``, ``@dimensions``, ``@equalLength true`` (the first case's length,
    ``first_length``) or ``@seriesLength``, which sktime does not check: a file that declares one shape
    and holds another was probably written wrong."""
    steps, channels = values.shape
    equal = header.get("equallength", "").lower()
    declared = []  # (the header's words, what they ask for, what the case has)
    if header.get("univariate", "").lower() == "true":
        declared.append(("@univariate true (1 channel)", 1, channels, "channel(s)"))
    for key, line, actual, unit in (("dimensions", "@dimensions", channels, "channel(s)"),
                                    ("serieslength", "@seriesLength", steps, "steps")):  # fmt: skip
        if key in header and (key == "dimensions" or equal != "false"):
            if not header[key].isdigit():
                raise ValueError(f"{path}: {line} must be a whole number, got {line} {header[key]}")
            declared.append((f"{line} {header[key]}", int(header[key]), actual, unit))
    if equal == "true":
        declared.append(("@equalLength true (the length of case 1)", first_length, steps, "steps"))
    for text, expected, actual, unit in declared:
        if actual != expected:
            raise ValueError(f"{path}, case {case}: the header says {text}, the case has {actual} {unit}")


def read_ts(path: str | Path) -> TsData:
    """Read a classification ``.ts`` file (the UCR/UEA archive's format) with sktime's ``load_from_tsfile``.

    The file needs the header sktime reads (``@problemName``, ``@timestamps false``,
    ``@univariate``, ``@classLabel true <labels>``, ``@data``); after ``@data`` each line is one
    case: the channels separated by ``:``, the values of a channel by ``,``, the class label last.
    Cases may differ in length (sktime's nested frame keeps each as it is); the channels of one
    case may not.

    Args:
        path: the ``.ts`` file.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, if it declares no class labels (``@classLabel false``, or a
            regression problem), declares one label twice (sktime lower-cases labels, so ``Walk``
            and ``walk`` are one), starts with a byte-order mark (UTF-8 "with BOM"), uses
            timestamps, or sktime cannot read it (its reason is given); or naming the case, if a
            case holds a missing value (``?``), a value that is not a finite float32 (``inf``,
            ``1e39``), no step, channels of different lengths, a label the header does not
            declare, or a shape the header contradicts (``@univariate true``, ``@dimensions``,
            ``@equalLength true``, ``@seriesLength``).

    Example:
        >>> import tempfile, os
        >>> header = "@problemName toy\\n@timestamps false\\n@univariate false\\n@classLabel true a b\\n@data\\n"
        >>> with tempfile.NamedTemporaryFile("w", suffix=".ts", delete=False) as f:
        ...     _ = f.write(header + "1,2,3:4,5,6:b\\n7,8:9,10:a\\n")
        >>> data = read_ts(f.name)
        >>> [tuple(s.shape) for s in data.sequences], data.labels, data.class_names
        ([(3, 2), (2, 2)], ['b', 'a'], ['a', 'b'])
        >>> os.remove(f.name)
    """
    from sktime.datasets import load_from_tsfile

    path = user_file(path, "the .ts file")
    with path.open("rb") as handle:
        if handle.read(3) == b"\xef\xbb\xbf":  # sktime would not see the first header line
            raise ValueError(f"{path}: a .ts file must be plain UTF-8, got one that starts with a byte-order mark")
    header = _header(path)
    if header.get("timestamps", "").lower() == "true":
        raise ValueError(f"{path}: .ts files with timestamps are not supported (@timestamps true)")
    flag, *class_names = header.get("classlabel", "").split() or [""]
    if flag.lower() != "true":
        raise ValueError(
            f"{path}: a classification .ts file declares its classes with @classLabel true <labels>, "
            f"got {'@classLabel ' + header['classlabel'] if 'classlabel' in header else 'no @classLabel line'}"
        )
    folded: dict[str, str] = {}
    for name in class_names:  # sktime lower-cases the file: labels that differ in case only would merge
        if name.lower() in folded:
            raise ValueError(
                f"{path}: @classLabel must declare each label once, ignoring case (sktime lower-cases the "
                f"file), got {folded[name.lower()]!r} and {name!r} in @classLabel {header['classlabel']}"
            )
        folded[name.lower()] = name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' notes on sktime's nested frames
            frame, labels = load_from_tsfile(str(path), return_data_type="nested_univ")
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: sktime cannot read it as a classification .ts file: {error}") from None
    sequences = []
    for case, row in enumerate(frame.itertuples(index=False), start=1):
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, which is refused below
            channels = [np.asarray(cell, dtype=np.float32) for cell in row]
        lengths = sorted({len(channel) for channel in channels})
        if len(lengths) != 1:
            raise ValueError(f"{path}, case {case}: the channels of a case must have one length, got {lengths}")
        values = np.stack(channels, axis=1)
        if values.shape[0] == 0:
            raise ValueError(f"{path}, case {case}: a case must have at least one time step, got none")
        if np.isnan(values).any():
            raise ValueError(f"{path}, case {case}: missing values (? or NaN) are not supported")
        if not np.isfinite(values).all():
            raise ValueError(
                f"{path}, case {case}: values must be finite float32 numbers (magnitude at most 3.4e38), "
                f"got {values[~np.isfinite(values)][0]}"
            )
        _check_header(path, header, case, values, sequences[0].shape[0] if sequences else values.shape[0])
        sequences.append(torch.from_numpy(values))
    # sktime lower-cases the labels it reads; give them the header's spelling back
    labels = [folded.get(str(label).lower(), str(label)) for label in labels]
    unknown = [label for label in labels if label not in class_names]
    if unknown:
        case = labels.index(unknown[0]) + 1
        raise ValueError(f"{path}, case {case}: class label must be one of {class_names}, got {unknown[0]!r}")
    return TsData(sequences, labels, class_names)


def sktime_ts_names() -> list[str]:
    """The classification sets (``@classLabel true``) whose ``_TRAIN.ts`` and ``_TEST.ts`` files sktime ships.

    Raises:
        MissingDataError: if sktime is not installed.
    """
    anchor = package_file(
        "sktime", "datasets/data/JapaneseVowels/JapaneseVowels_TRAIN.ts", dataset="UCR/UEA",
        distribution="sktime", own_file="--data.name path/to/NAME_TRAIN.ts",
    )  # fmt: skip
    data_dir = anchor.parents[1]
    names = []
    for folder in sorted(data_dir.iterdir()):
        train, test = folder / f"{folder.name}_TRAIN.ts", folder / f"{folder.name}_TEST.ts"
        if train.is_file() and test.is_file() and _header(train).get("classlabel", "").lower().startswith("true"):
            names.append(folder.name)
    return names


def _split_files(name: str) -> tuple[Path, Path]:
    """The training and test files ``name`` stands for (see :func:`load_ucr`, which documents the errors)."""
    if name.endswith(".ts"):
        train = user_file(name, "the training .ts file")
        if "_TRAIN" not in train.name:
            raise ValueError(f"name must be a data set's name or the path of a NAME_TRAIN.ts file, got {name!r}")
        # the last _TRAIN names the split: A_TRAIN_B_TRAIN.ts goes with A_TRAIN_B_TEST.ts
        head, _, tail = train.name.rpartition("_TRAIN")
        return train, user_file(train.with_name(f"{head}_TEST{tail}"), "the test .ts file beside it")
    own = "--data.name path/to/NAME_TRAIN.ts"
    if importlib.util.find_spec("sktime") is not None:  # (else package_file says how to install it)
        names = sktime_ts_names()
        if name not in names:
            close = [known for known in names if known.lower() == name.lower()]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"name must be one of the classification sets sktime ships, {names}, or the path of a "
                f"NAME_TRAIN.ts file, got {name!r}{hint}"
            )
    train = package_file(
        "sktime", f"datasets/data/{name}/{name}_TRAIN.ts", dataset=name, distribution="sktime", own_file=own
    )
    test = package_file(
        "sktime", f"datasets/data/{name}/{name}_TEST.ts", dataset=name, distribution="sktime", own_file=own
    )
    return train, test


def load_ucr(name: str) -> tuple[TsData, TsData]:
    """The official train and test sets of a UCR/UEA classification problem.

    Args:
        name: a set that sktime ships (``"JapaneseVowels"``, ``"BasicMotions"``, ...; see
            :func:`sktime_ts_names`), or the path of a ``NAME_TRAIN.ts`` file with its
            ``NAME_TEST.ts`` beside it (the last ``_TRAIN`` of the name becomes ``_TEST``).

    Raises:
        MissingDataError: if sktime is not installed (or lacks a file of a set it lists).
        ValueError: naming ``name``, the sets sktime ships and the value received, if ``name`` is
            neither one of them (the spelling counts: ``GunPoint``, not ``gunpoint``) nor a path
            ending in ``.ts`` with ``_TRAIN`` in the file's name; for malformed files, as :func:`read_ts` says.
        FileNotFoundError: for a user's training file, or the test file beside it, that is missing or a folder.
    """
    train_path, test_path = _split_files(name)
    return read_ts(train_path), read_ts(test_path)


def one_nn_dtw_correct(
    train: Sequence[Tensor],
    train_labels: Tensor,
    test: Sequence[Tensor],
    test_labels: Tensor,
    *,
    max_length: int = 256,
    window: float = 0.1,
    full_window_up_to: int = 512,
) -> Tensor:
    r"""Which test cases 1-nearest-neighbour classification under dynamic time warping (sktime) gets right.

    Sequences of one length are compared as they are; sets whose sequences differ in length
    are resampled (sktime's ``TSInterpolator``; a case of one step keeps its value) to one length,
    the longest training length but at most ``max_length``. Up to ``full_window_up_to`` steps the
    warping is unconstrained; longer sequences use a Sakoe-Chiba band of ``window`` times the
    length, which keeps the cost :math:`O(N_{train} N_{test} L^2 \cdot window)` within minutes on
    a CPU.

    Args:
        train: training sequences, each ``(L_i, C)``.
        train_labels: their class indices ``(N_train,)``.
        test: test sequences, each ``(L_j, C)``.
        test_labels: their class indices ``(N_test,)``.
        max_length: the length unequal sequences are resampled to, at most. Default: 256.
        window: the band's width, as a fraction of the length, for long sequences. Default: 0.1.
        full_window_up_to: the longest length warped without a band. Default: 512.

    Returns:
        ``(N_test,)`` booleans, in the order of ``test``.

    Raises:
        ModuleNotFoundError: if sktime (or numba, which its DTW needs) is not installed.

    Example:
        >>> up, down = torch.linspace(0, 1, 8).unsqueeze(1), torch.linspace(1, 0, 8).unsqueeze(1)
        >>> one_nn_dtw_correct([up, down], torch.tensor([0, 1]), [up * 0.9, up], torch.tensor([0, 1])).tolist()
        [True, False]
    """
    import pandas as pd
    from sktime.classification.distance_based import KNeighborsTimeSeriesClassifier
    from sktime.transformations.panel.interpolate import TSInterpolator

    length = _dtw_length(train, test, max_length)
    params = None if length <= full_window_up_to else {"window": window}
    classifier = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw", distance_params=params)

    def panel(sequences: Sequence[Tensor]) -> np.ndarray:
        frames = [pd.DataFrame(s.double().numpy()) for s in sequences]  # sktime's "df-list": cases of any length
        if any(len(frame) != length for frame in frames):
            # sktime cannot interpolate a single step: such a case holds its value over the length
            frames = [pd.concat([frame, frame], ignore_index=True) if len(frame) == 1 else frame for frame in frames]
            frames = TSInterpolator(length).fit_transform(frames)
        return np.stack([frame.to_numpy().T for frame in frames])  # (N, C, L)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sktime's notes on numba and on the pandas version
        classifier.fit(panel(train), train_labels.numpy())
        predicted = classifier.predict(panel(test))
    return torch.as_tensor(np.asarray(predicted, dtype=np.int64)) == test_labels


def one_nn_dtw_accuracy(
    train: Sequence[Tensor], train_labels: Tensor, test: Sequence[Tensor], test_labels: Tensor, **options: Any
) -> float:
    """Test accuracy of 1-nearest-neighbour classification under DTW: :func:`one_nn_dtw_correct`'s mean.

    Example:
        >>> up, down = torch.linspace(0, 1, 8).unsqueeze(1), torch.linspace(1, 0, 8).unsqueeze(1)
        >>> one_nn_dtw_accuracy([up, down], torch.tensor([0, 1]), [up * 0.9, down], torch.tensor([0, 1]))
        1.0
    """
    return float(one_nn_dtw_correct(train, train_labels, test, test_labels, **options).float().mean())


def _dtw_length(train: Sequence[Tensor], test: Sequence[Tensor], max_length: int = 256) -> int:
    """The length 1-NN DTW compares: the cases' own where all have one, else the longest training case's, capped."""
    lengths = {s.shape[0] for s in [*train, *test]}
    return min(max(s.shape[0] for s in train), max_length) if len(lengths) > 1 else lengths.pop()


# above this many warping cells (training x test cases x length^2 x channels; about a minute here), the 1-NN DTW
# baseline is timed on a sample of pairs first, and skipped where the whole would take longer than its budget
_TIME_DTW_ABOVE = 1e10
_DTW_SAMPLE = 16  # cases of each file in the timed sample


@functools.lru_cache(maxsize=16)
def _dtw_correct(train_path: str, test_path: str, max_minutes: float) -> tuple[Tensor | None, str | None]:
    # a minute on the largest shipped set, and the same for every run on it: computed once per process.
    # Returns which test cases it classifies right, or None and why it was skipped (the whole would take longer
    # than max_minutes)
    train, test = read_ts(train_path), read_ts(test_path)
    names = train.class_names
    x, y = train.sequences, train.targets(names)
    x_test, y_test = test.sequences, test.targets(names)
    length = _dtw_length(x, x_test)
    size = f"{len(x):,} training x {len(x_test):,} test cases of {length:,} steps"
    # the cost grows with both counts and the square of the length (a tenth of it in the band above 512 steps)
    cells = len(x) * len(x_test) * length**2 * (1.0 if length <= 512 else 0.2) * x[0].shape[1]
    if cells > _TIME_DTW_ABOVE:
        k, m = min(len(x), _DTW_SAMPLE), min(len(x_test), _DTW_SAMPLE)
        one_nn_dtw_accuracy(x[:2], y[:2], x_test[:2], y_test[:2])  # numba compiles on the first call: untimed
        start = time.perf_counter()
        one_nn_dtw_accuracy(x[:k], y[:k], x_test[:m], y_test[:m])
        minutes = (time.perf_counter() - start) * len(x) * len(x_test) / (k * m) / 60.0
        if minutes > max_minutes:
            hours = f"{minutes / 60:.1f} hours" if minutes >= 90 else f"{minutes:.1f} minutes"
            return None, (
                f"1-NN DTW baseline skipped: {size} would take about {hours} here (timed on {k} x {m} of them), "
                f"more than --data.dtw_max_minutes {max_minutes:g}; raise it to compute the baseline"
            )
    rank_zero_info(f"1-NN DTW baseline (sktime): {size}...")
    return one_nn_dtw_correct(x, y, x_test, y_test), None


def resample(sequence: Tensor, steps: int) -> Tensor:
    """``sequence`` (``(L, C)``) at ``steps`` evenly spaced points of its span, by linear interpolation.

    Example:
        >>> resample(torch.tensor([[0.0], [1.0], [2.0]]), 5).squeeze(1).tolist()
        [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    if sequence.shape[0] == steps:
        return sequence
    if sequence.shape[0] == 1:
        return sequence.expand(steps, -1).clone()
    values = torch.nn.functional.interpolate(
        sequence.t().unsqueeze(0).double(), size=steps, mode="linear", align_corners=True
    )
    return values.squeeze(0).t().to(sequence.dtype).contiguous()


class UCRDataModule(ClassificationDataModule):
    """A UCR/UEA classification problem with its official test set; validation comes out of the training set.

    The official ``_TEST`` file is the test set, so accuracies compare with published ones. A
    stratified ``val_fraction`` of the ``_TRAIN`` file validates (for early stopping; scikit-learn's
    ``train_test_split``), but at least two cases per class and 12 in all where a third of the
    training file allows it, so that small sets still rank epochs; the rest trains (every class
    needs two training cases, and keeps one to train on). Class indices follow the order the header
    declares. With ``standardize=True`` every channel is standardized by scikit-learn's
    ``StandardScaler`` fitted on the time steps of the training split's cases (unpadded; the same
    numbers for validation and test), which keeps the differences in level between classes that
    per-sequence standardization would remove. With ``resample_to=N`` every case is resampled to
    ``N`` steps by linear interpolation over its span (as sktime's ``TSInterpolator`` does for the
    1-NN DTW baseline of sets with unequal lengths): long series
    train several times faster, and cases of unequal length come to one.

    Args:
        name: a set that sktime ships, or the path of a ``NAME_TRAIN.ts`` file. Default: ``"JapaneseVowels"``.
        val_fraction: fraction of each class of the training file for validation. Default: 0.15.
        standardize: standardize channels with the training statistics. Default: True.
        batch_size: sequences per batch. Default: 32.
        num_workers: DataLoader worker processes. Default: 0.
        seed: seed of the validation split. Default: 0.
        resample_to: steps every case is resampled to, or None to keep the files' lengths. Default: None.
        dtw_max_minutes: the 1-NN DTW baseline's time budget: on a large set it is first timed on a sample of
            pairs, and skipped, with a note in the summary, where the whole would take longer. Default: 10.

    Raises:
        ValueError: if an argument is out of range; when loading, for a ``name`` that is neither a set
            sktime ships nor a ``NAME_TRAIN.ts`` path, for malformed files, for a training file with
            cases of one class only, for test labels the training file has no case of, and for
            training and test files with different channel counts; when splitting, as
            :attr:`splits` says.
        MissingDataError: when loading, if sktime is not installed.

    Example:
        >>> dm = UCRDataModule("JapaneseVowels")
        >>> [len(dm.splits[k]) for k in ("train", "val", "test")], dm.num_classes, dm.num_features
        ([230, 40, 370], 9, 12)
    """

    def __init__(
        self,
        name: str = "JapaneseVowels",
        val_fraction: float = 0.15,
        standardize: bool = True,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        resample_to: int | None = None,
        dtw_max_minutes: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(val_fraction=val_fraction, test_fraction=0.0, batch_size=batch_size,
                         num_workers=num_workers, seed=seed, **kwargs)  # fmt: skip
        if resample_to is not None and (isinstance(resample_to, bool) or not isinstance(resample_to, int)
                                        or resample_to < 2):  # fmt: skip
            raise ValueError(f"UCRDataModule: resample_to must be None or an int >= 2, got {resample_to!r}")
        if (
            isinstance(dtw_max_minutes, bool)
            or not isinstance(dtw_max_minutes, (int, float))
            or not dtw_max_minutes > 0
        ):
            raise ValueError(f"UCRDataModule: dtw_max_minutes must be a number > 0, got {dtw_max_minutes!r}")
        self.resample_to = resample_to
        self.dtw_max_minutes = float(dtw_max_minutes)
        self.baseline_notes: list[str] = []  # why a baseline is missing, for the summary
        self.dataset = name
        self.standardize = bool(standardize)
        self._official: tuple[TsData, TsData] | None = None
        self._fold: tuple[int, int] | None = None
        self._refit = False

    @property
    def can_fold(self) -> bool:
        """Folds of the training file (stratified k-fold)."""
        return True

    def fold(self, folds: int, index: int) -> UCRDataModule:
        """A copy of this data module whose validation split is fold ``index`` of ``folds`` of the training file.

        scikit-learn's ``StratifiedKFold`` (shuffled with ``seed``) splits the official training cases;
        where a class has fewer than ``folds`` cases, each class's cases (shuffled with ``seed``) are
        dealt to the folds in turn instead, so that a class of two cases or more has one to train on
        in every fold. Fold ``index`` validates, the others train, and the channels are standardized
        with that training part. The test split is the test file, as always. The files are read once
        and shared with the copy. ``--tune`` scores its trials this way when the validation split is
        small (:func:`common.tuning.tune`).

        Raises:
            ValueError: if ``folds`` is not an int >= 2 or above the number of training cases, or
                ``index`` is not in ``0 .. folds - 1``; when splitting, as :attr:`splits` says.

        Example:
            >>> dm = UCRDataModule("ArrowHead")
            >>> [len(dm.fold(3, i).splits["val"]) for i in range(3)], len(dm.fold(3, 0).splits["train"])
            ([12, 12, 12], 24)
        """
        n_train = len(self._files()[0].sequences)
        if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= n_train:
            raise ValueError(f"UCRDataModule.fold: folds must be an int from 2 to {n_train} (the training cases), "
                             f"got {folds!r}")  # fmt: skip
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < folds:
            raise ValueError(f"UCRDataModule.fold: index must be an int from 0 to {folds - 1}, got {index!r}")
        self._loaded()  # read the files once, for every copy
        other = copy.copy(self)
        other._fold, other._splits = (folds, index), None
        return other

    def refit(self) -> UCRDataModule:
        """A copy of this data module that trains on every case of the training file.

        The channels are standardized with all of them. The validation split is the one this module
        holds out, so its cases are trained on too: a fit on the copy runs without validation
        (``--tune``'s refit after cross-validation, :meth:`common.cli.RecipeCLI.tune_model`). The
        test split is the test file, as always; the files are shared with the copy.

        Example:
            >>> dm = UCRDataModule("ArrowHead")
            >>> len(dm.refit().splits["train"]), len(dm.splits["train"])
            (36, 24)
        """
        self._loaded()  # read the files once, for every copy
        other = copy.copy(self)
        other._fold, other._refit, other._splits = None, True, None
        return other

    def _files(self) -> tuple[TsData, TsData]:
        if self._official is None:
            train, test = load_ucr(self.dataset)
            if train.sequences[0].shape[1] != test.sequences[0].shape[1]:
                raise ValueError(
                    f"UCRDataModule: {self.dataset}: the training file has {train.sequences[0].shape[1]} channel(s), "
                    f"the test file {test.sequences[0].shape[1]}"
                )
            trained = sorted(set(train.labels), key=train.class_names.index)
            if len(trained) < 2:
                raise ValueError(
                    f"UCRDataModule: {self.dataset}: a classifier needs cases of at least 2 classes in the training "
                    f"file, got cases of {trained} only"
                )
            unknown = sorted(set(test.labels) - set(trained))
            if unknown:
                raise ValueError(
                    f"UCRDataModule: {self.dataset}: test labels must be classes the training file has cases of, "
                    f"{trained}, got {unknown}"
                )
            self._official = train, test
        return self._official

    @property
    def class_names(self) -> list[str]:
        """The class labels of the files; class index ``k`` is ``class_names[k]``."""
        return self._files()[0].class_names

    def load_sequences(self) -> tuple[list[Tensor], Tensor]:
        """The official training cases followed by the test cases, and their class indices."""
        train, test = self._files()
        labels = torch.cat([train.targets(train.class_names), test.targets(train.class_names)])
        sequences = train.sequences + test.sequences
        if self.resample_to is not None:
            sequences = [resample(s, self.resample_to) for s in sequences]
        return sequences, labels

    @property
    def splits(self) -> dict[str, SequenceDataset]:
        """``"train"`` and ``"val"`` from the training file (stratified, seeded), ``"test"`` the test file.

        Where the validation split holds fewer cases than there are classes, it takes one case each of
        that many classes, drawn with ``seed``.

        Raises:
            ValueError: naming the classes, if a class has a single training case (it cannot both train
                and validate; a refit, which does not validate, takes it), or ``val_fraction`` leaves a
                class no training case; if ``val_fraction`` leaves no validation case.
        """
        if self._splits is None:
            sequences, labels = self._loaded()
            n_train = len(self._files()[0].sequences)
            train_labels = labels[:n_train]
            num_classes = int(train_labels.max()) + 1
            # big enough to rank epochs: at least two cases per class (and 12 in all) where the training set allows
            n_val = max(round(n_train * self.val_fraction), min(max(2 * num_classes, 12), n_train // 3))
            if n_val < 1 or self.val_fraction == 0.0:
                raise ValueError(
                    f"UCRDataModule: val_fraction={self.val_fraction} of {n_train} training cases "
                    "leaves no validation case"
                )
            counts = torch.bincount(train_labels)
            smallest, present, y = int(counts[counts > 0].min()), int((counts > 0).sum()), train_labels.numpy()
            names = self.class_names
            if smallest < 2 and not self._refit:
                alone = [names[k] for k in range(len(counts)) if counts[k] == 1]
                raise ValueError(
                    f"UCRDataModule: {self.dataset}: every class needs at least 2 training cases (one to train on, "
                    f"one to validate), got 1 of {alone}; add cases, or train on every case without validation "
                    "(--refit_epochs N)"
                )
            if self._fold is not None:  # cross-validation: fold `index` of `folds` validates
                folds, index = self._fold
                if smallest >= folds:
                    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
                    train_index, val_index = list(splitter.split(np.arange(n_train), y))[index]
                else:  # each class's cases dealt to the folds in turn, so a class of two trains in every fold
                    order = np.random.default_rng(self.seed).permutation(n_train)
                    order = order[np.argsort(y[order], kind="stable")]
                    fold_of = np.empty(n_train, dtype=np.int64)
                    fold_of[order] = np.arange(n_train) % folds
                    train_index, val_index = np.flatnonzero(fold_of != index), np.flatnonzero(fold_of == index)
                train_index, val_index = train_index.tolist(), val_index.tolist()
            elif smallest >= 2 and n_val >= present:
                train_index, val_index = train_test_split(
                    list(range(n_train)), test_size=n_val, stratify=y, random_state=self.seed
                )
            elif smallest >= 2:  # fewer validation cases than classes: one case each of n_val classes drawn at random
                rng = np.random.default_rng(self.seed)
                drawn = rng.choice(np.flatnonzero(counts.numpy() > 0), size=n_val, replace=False)
                val_index = sorted(int(rng.choice(np.flatnonzero(y == k))) for k in drawn)
                train_index = sorted(set(range(n_train)) - set(val_index))
            else:  # a refit's, with a class of one case: it trains on every case and does not validate
                train_index, val_index = train_test_split(list(range(n_train)), test_size=n_val, random_state=self.seed)
            kept = set(y[train_index].tolist())
            untrained = [names[k] for k in range(len(counts)) if counts[k] > 0 and k not in kept]
            if untrained and not self._refit:
                raise ValueError(
                    f"UCRDataModule: val_fraction={self.val_fraction} must leave every class a training case, got "
                    f"none of {untrained} (of {n_train} training cases, {len(val_index)} validate)"
                )
            if self._refit:  # every training case trains (the validation cases too)
                train_index = list(range(n_train))
            parts: dict[str, list[int]] = {"train": sorted(train_index), "val": sorted(val_index)}
            parts["test"] = list(range(n_train, len(sequences)))
            if self.standardize:
                # the cases are unpadded here, so the scaler sees only real steps of the training split
                steps = torch.cat([sequences[i] for i in parts["train"]]).double().numpy()
                scaler = StandardScaler().fit(steps)
                sequences = [torch.from_numpy(scaler.transform(s.double().numpy())).float() for s in sequences]
            self._splits = {
                key: SequenceDataset([sequences[i] for i in members], labels[members]) for key, members in parts.items()
            }
        return self._splits

    def yardstick(self) -> tuple[str, float]:
        """Test accuracy of always answering the most frequent class of the training file (validation included)."""
        labels, n_train = self._loaded()[1], len(self._files()[0].labels)
        return "majority-class accuracy", majority_accuracy(labels[:n_train], labels[n_train:])

    def baselines(self) -> dict[str, float]:
        """Test accuracy of the majority class of the training file, and of 1-NN DTW on the official split.

        1-NN DTW (see :func:`one_nn_dtw_accuracy`) uses every case of the
        training file and the files' own values (no standardization), as the UCR archive reports it. Where it
        would take longer than ``dtw_max_minutes`` it is left out, and ``baseline_notes`` says why.
        """
        out = {"majority-class accuracy": self.yardstick()[1]}
        dtw, skipped = _dtw_correct(*(str(p) for p in _split_files(self.dataset)), self.dtw_max_minutes)
        if dtw is not None:
            out["1-NN DTW accuracy"] = float(dtw.float().mean())
        self.baseline_notes = [] if skipped is None else [skipped]
        return out

    def baseline_case_losses(self) -> dict[str, np.ndarray]:
        """Each baseline's 0/1 error per test case, keyed as :meth:`baselines`, in the test file's order (the test
        loader's): what the summary's margin test compares the model's with."""
        labels, n_train = self._loaded()[1], len(self._files()[0].labels)
        majority = labels[n_train:] != torch.bincount(labels[:n_train]).argmax()  # as majority_accuracy answers
        out = {"majority-class accuracy": majority.double().numpy()}
        dtw, _ = _dtw_correct(*(str(p) for p in _split_files(self.dataset)), self.dtw_max_minutes)
        if dtw is not None:
            out["1-NN DTW accuracy"] = (~dtw).double().numpy()
        return out


# The recipe: the model's defaults and the command line.

MODEL_DEFAULTS = {
    "cell": "gru",
    "bidirectional": True,
    "hidden_size": 64,
    "num_layers": 1,
    # half the rates tuned on JapaneseVowels (input 0.1, recurrent 0.25, output 0.3, spatial 0.1): with those,
    # the dropout-only arm lost 7.7-17.3 points to the bare network on ACSF1, ArrowHead and GunPoint; halved,
    # it gained up to 11 points (GunPoint) and lost at most 0.3 (ACSF1) over the eight sets, 3 seeds each
    # (recipes/EVIDENCE.md against the table of commit de8288e; README, "Training protocol")
    "input_dropout": 0.05,
    "dropout": 0.0,
    "recurrent_dropout": 0.125,
    "output_dropout": 0.15,
    "spatial_dropout": 0.05,
    # GRU-FCN (Karim et al. 2017): a convolutional branch beside the GRU; without it, 40 epochs
    # left the GRU at the majority class on GunPoint
    "fcn": True,
    "fcn_channels": 64,
    # each case standardized per channel beside the channels as the data module standardized them
    # (with the training statistics): PLAID's cases differ in scale by 10^4 (37% test accuracy
    # without the first), JapaneseVowels' classes differ in level (79% with the first alone)
    "normalize": "both",
    "lr": 0.003,
}
DATA_DEFAULTS = {"name": "JapaneseVowels", "batch_size": 32}
TRAINER_DEFAULTS = {"max_epochs": 100, "gradient_clip_val": 1.0, "log_every_n_steps": 5}
# checks before epoch 5 do not count. Early stopping stops the run but keeps the last weights (Keras's and
# Lightning's default): the learning rate halves on every plateau, so the last weights are the annealed ones,
# and on a validation split of a dozen cases the best check is mostly luck (restoring it lost 1-6 points of
# test accuracy on ItalyPowerDemand and ACSF1, and gained 1-6 on ArrowHead: recipes/STOPPING.md);
# --early_stopping.restore_best_weights true restores it
CALLBACK_DEFAULTS = {
    "early_stopping.patience": 15,
    "early_stopping.start_from_epoch": 5,
    "early_stopping.restore_best_weights": False,
}


def cli(args: ArgsType = None) -> RecipeCLI:
    """Parse ``args`` (default: the command line) and build the trainer, model and data, without running."""
    return RecipeCLI(
        "vowels_gru",
        SequenceModel,
        UCRDataModule,
        args=args,
        model_defaults=MODEL_DEFAULTS,
        data_defaults=DATA_DEFAULTS,
        trainer_defaults=TRAINER_DEFAULTS,
        callback_defaults=CALLBACK_DEFAULTS,
        description=__doc__.split("\n\n")[0] + " See recipes/vowels_gru.py for examples.",
    )


def main(args: ArgsType = None) -> RunSummary:
    """Run the recipe with ``args`` (default: the command line) and return its summary."""
    return cli(args).fit_and_test()


if __name__ == "__main__":
    main()
