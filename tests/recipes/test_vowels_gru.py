"""recipes/vowels_gru.py: defaults, packed variable-length batches, tiny runs on sktime's sets and on user files."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
import yaml

import vowels_gru
from common.callbacks import CONFUSION_CMAP


def tiny(log_root: Path, *extra: str) -> list[str]:
    return [
        "--model.hidden_size", "8", "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger.save_dir", str(log_root), *extra,
    ]  # fmt: skip


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [vowels_gru.__file__])


def test_defaults_are_the_documented_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        vowels_gru.main(["--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    model = config["model"]
    assert config["data"]["name"] == "JapaneseVowels"
    assert model["cell"] == "gru" and model["bidirectional"] is True and model["recurrent_dropout"] > 0
    # each case standardized beside the channels the data module standardized with the training statistics
    assert model["normalize"] == "both"
    # half the rates tuned on JapaneseVowels; early stopping stops, keeping the last (annealed) weights
    assert (model["input_dropout"], model["recurrent_dropout"], model["output_dropout"]) == (0.05, 0.125, 0.15)
    assert model["spatial_dropout"] == 0.05 and config["early_stopping"]["restore_best_weights"] is False


def test_padding_does_not_change_the_prediction(tmp_path: Path) -> None:
    cli = vowels_gru.cli(tiny(tmp_path))
    model, dm = cli.model.eval(), cli.datamodule
    dm.setup("test")
    x, lengths, _ = next(iter(dm.test_dataloader()))
    assert len(set(lengths.tolist())) > 1  # a ragged batch: the encoder runs on a packed sequence
    logits = model(x, lengths)
    for i in range(4):
        alone = model(x[i : i + 1, : lengths[i]], lengths[i : i + 1])
        torch.testing.assert_close(logits[i : i + 1], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_japanese_vowels_run(tmp_path: Path) -> None:
    summary = vowels_gru.main(tiny(tmp_path))
    # majority class of the (balanced) training set is speaker 1, who has 31 of the 370 test utterances
    assert summary.yardstick == pytest.approx(31 / 370, rel=1e-6)
    assert summary.score_name == "test accuracy" and 0.0 <= summary.score <= 1.0
    assert round(summary.score * 370) == pytest.approx(summary.score * 370, abs=1e-3)  # a count over the 370 cases
    # the confusion matrix of the test set: its file is named in the summary and holds the cells' marks
    figure = tmp_path / "vowels_gru" / "JapaneseVowels-gru-regularized-seed0_0" / "confusion_matrix.png"
    assert summary.figure == str(figure) and f"confusion matrix    {figure}" in summary.format()
    image = matplotlib.image.imread(figure)[..., :3]
    darkest = np.array(matplotlib.colormaps[CONFUSION_CMAP](1.0)[:3])  # the largest count's cell
    assert int((np.abs(image - darkest).max(axis=-1) < 0.05).sum()) > 200
    matrix = json.loads((figure.parent / "summary.json").read_text())["confusion_matrix"]
    assert sum(map(sum, matrix)) == 370 and len(matrix) == 9
    assert sum(matrix[k][k] for k in range(9)) == round(summary.score * 370)
    assert summary.test_cases == 370  # what the verdict's standard error counts
    # the paired margin test compares the model's and each baseline's 0/1 errors on the same 370 cases
    for name, (diff, error) in summary.margins.items():
        assert diff == pytest.approx(summary.baselines[name] - summary.score, abs=1e-6) and error > 0
    assert set(summary.margins) == set(summary.baselines)
    # the branch is on by default, so the advice (given against a baseline the model loses to) does not offer it
    summary.baselines = {"majority": 0.0, "better": 1.0}
    assert summary.in_use == ["fcn"]
    text = " ".join(summary.format().split())
    assert "Try more epochs, or --tune N" in text and "--model.fcn true" not in text
    summary.in_use = []
    assert "--model.fcn true" in " ".join(summary.format().split())


@pytest.mark.slow
def test_other_sets_by_name_and_user_files(tmp_path: Path) -> None:
    motions = vowels_gru.main(tiny(tmp_path, "--data.name", "BasicMotions", "--model.regularize", "false"))
    assert motions.yardstick == pytest.approx(0.25) and not motions.regularized  # 4 balanced classes
    generator = torch.Generator().manual_seed(0)
    for split, n in (("TRAIN", 40), ("TEST", 20)):
        lines = []
        for i in range(n):
            length = int(torch.randint(5, 12, (1,), generator=generator))
            channel = ",".join(f"{v:.3f}" for v in torch.randn(length, generator=generator).tolist())
            lines.append(f"{channel}:{'up' if i % 2 else 'down'}")
        (tmp_path / f"Mine_{split}.ts").write_text(
            "@problemName Mine\n@timestamps false\n@univariate true\n@classLabel true down up\n@data\n"
            + "\n".join(lines)
        )
    mine = vowels_gru.main(tiny(tmp_path, "--data.name", str(tmp_path / "Mine_TRAIN.ts")))
    assert mine.yardstick == pytest.approx(0.5) and math.isfinite(mine.score)


def _exit_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    """The last line a run that must exit with status 2 writes under the usage line."""
    with pytest.raises(SystemExit) as exit_info:
        vowels_gru.main(tiny(tmp_path, *extra))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("usage: ")
    return lines[-1]


def test_unknown_set_names_the_sets_sktime_ships(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _exit_error(tmp_path, capsys, "--data.name", "gunpoint")
    assert line.startswith("error: ValueError: name must be one of the classification sets sktime ships, ['ACSF1'")
    assert line.endswith(", or the path of a NAME_TRAIN.ts file, got 'gunpoint' (did you mean 'GunPoint'?)")
    assert _exit_error(tmp_path, capsys, "--data.name", "NoSuchSet").endswith("file, got 'NoSuchSet'")


def test_bad_user_files_exit_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = "@problemName Toy\n@timestamps false\n@univariate true\n@classLabel true a b c\n@data\n"
    (tmp_path / "Toy_TEST.ts").write_text(header + "1,2:a\n3,4:b\n5,6:c\n")
    # a value float32 cannot hold (sklearn's scaler raised in the middle of fit)
    (tmp_path / "Toy_TRAIN.ts").write_text(header + "1,2:a\n1,2:a\n3,1e39:b\n3,4:b\n5,6:c\n5,6:c\n")
    line = _exit_error(tmp_path, capsys, "--data.name", str(tmp_path / "Toy_TRAIN.ts"))
    assert line == f"error: ValueError: {tmp_path / 'Toy_TRAIN.ts'}, case 3: values must be finite float32 numbers " \
        "(magnitude at most 3.4e38), got inf"  # fmt: skip
    # one training case per class: it cannot both train and validate (a class silently lost its only case)
    (tmp_path / "Toy_TRAIN.ts").write_text(header + "1,2:a\n3,4:b\n5,6:c\n")
    for extra in ((), ("--tune", "2")):
        line = _exit_error(tmp_path, capsys, "--data.name", str(tmp_path / "Toy_TRAIN.ts"), *extra)
        assert line.startswith("error: ValueError: UCRDataModule: ") and "every class needs at least 2 training" in line
        assert line.endswith("got 1 of ['a', 'b', 'c']; add cases, or train on every case without validation "
                             "(--refit_epochs N)")  # fmt: skip
    refit = vowels_gru.main(tiny(tmp_path, "--data.name", str(tmp_path / "Toy_TRAIN.ts"), "--refit_epochs", "1"))
    assert refit.refit == {"epochs": 1, "cases": 3}


def test_a_dtw_baseline_over_budget_is_named_in_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vowels_gru, "_TIME_DTW_ABOVE", 0)  # time every set, however small
    vowels_gru._dtw_correct.cache_clear()
    try:
        summary = vowels_gru.main(tiny(tmp_path, "--data.name", "ItalyPowerDemand", "--data.dtw_max_minutes", "1e-9"))
    finally:
        vowels_gru._dtw_correct.cache_clear()
    assert list(summary.baselines) == ["majority-class accuracy"]
    assert len(summary.baseline_notes) == 1 and "--data.dtw_max_minutes 1e-09" in summary.baseline_notes[0]
    assert "1-NN DTW baseline skipped" in summary.format()
