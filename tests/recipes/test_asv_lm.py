"""recipes/asv_lm.py: the AWD-style model (masks, tying, AR/TAR, carried state) and a tiny end-to-end run."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
import torch
from torch import nn

import asv_lm
import regdrop
from asv_lm import PerplexityPlot, WordLanguageModel, plot_perplexity_curves
from common.callbacks import TRAIN_COLOR, VAL_COLOR


def small(**kwargs: object) -> WordLanguageModel:
    return WordLanguageModel(input_size=40, embedding_size=6, hidden_size=10, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [asv_lm.__file__])


def test_layers_masks_and_tied_weights() -> None:
    model = small()
    assert model.decoder.weight is model.embedding.weight
    assert [(layer.input_size, layer.hidden_size) for layer in model.layers] == [(6, 10), (10, 6)]
    assert all(isinstance(layer, regdrop.nn.LSTM) and layer.weight_dropout == 0.3 for layer in model.layers)
    assert isinstance(model.input_drop, regdrop.nn.LockedDropout) and model.embedding.p == 0.1
    naive = small(masks="per_step")
    assert type(naive.input_drop) is nn.Dropout and type(naive.between_drop) is nn.Dropout
    off = small(regularize=False)
    assert off.embedding.p == 0 and off.input_drop.p == 0 and off.output_drop.p == 0
    assert all(layer.weight_dropout == 0 for layer in off.layers) and off.ar == off.tar == off.weight_decay == 0
    assert "masks='variational', regularize=True" in repr(model)


def test_variational_masks_are_fixed_over_time_and_per_step_masks_are_not() -> None:
    for masks, locked in (("variational", True), ("per_step", False)):
        model = small(masks=masks, input_dropout=0.5).train()
        torch.manual_seed(0)
        dropped = model.input_drop(torch.ones(2, 30, 6))
        zeros = dropped == 0
        same_over_time = bool((zeros == zeros[:, :1]).all())
        assert same_over_time is locked, masks


def test_state_is_carried_across_batches() -> None:
    model = small().eval()
    tokens = torch.randint(0, 40, (3, 12))
    whole, _ = model(tokens)
    model._reset_state()
    first, _, _ = model._step((tokens[:, :5], tokens[:, 1:6]))
    _, second, _ = model._step((tokens[:, 5:12], tokens[:, 5:12]))
    torch.testing.assert_close(second, whole[:, 5:12])  # the second chunk continues from the first's state
    model._reset_state()
    _, fresh, _ = model._step((tokens[:, 5:12], tokens[:, 5:12]))
    assert not torch.allclose(fresh, whole[:, 5:12])
    assert math.isfinite(float(first))


def test_ar_tar_are_added_to_the_training_loss() -> None:
    torch.manual_seed(0)
    batch = (torch.randint(0, 40, (2, 8)), torch.randint(0, 40, (2, 8)))
    logged: dict[str, float] = {}
    for ar, tar in ((0.0, 0.0), (2.0, 1.0)):
        model = small(ar=ar, tar=tar, embedding_dropout=0.0, input_dropout=0.0, dropout=0.0, weight_dropout=0.0,
                      output_dropout=0.0).train()  # fmt: skip
        model.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))  # type: ignore[method-assign]
        torch.manual_seed(1)
        loss = model.training_step(batch, 0)
        raw, dropped = model._last_output  # type: ignore[misc]
        expected = ar * dropped.pow(2).mean() + tar * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
        assert float(loss) == pytest.approx(logged["train_loss"] + float(expected), rel=1e-6)
        assert logged["train_ar_tar"] == pytest.approx(float(expected), rel=1e-6)
        assert bool(expected > 0) is (ar > 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "classify"}, "task must be 'language_model', got 'classify'"),
        ({"masks": "gal"}, "masks must be 'variational' or 'per_step', got 'gal'"),
        ({"weight_dropout": 1.5}, r"weight_dropout must be in \[0, 1\], got 1.5"),
        ({"ar": -1.0}, "ar must be a finite number >= 0, got -1.0"),
        ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
    ],
)
def test_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


@pytest.mark.slow
def test_tiny_run(tmp_path: Path) -> None:
    summary = asv_lm.main([
        "--data.text_fraction", "0.02", "--data.block", "2", "--data.vocab_size", "300", "--data.bptt", "12",
        "--model.embedding_size", "8", "--model.hidden_size", "8", "--trainer.max_epochs", "2",
        "--trainer.limit_train_batches", "4", "--trainer.enable_progress_bar", "false",
        "--trainer.logger.save_dir", str(tmp_path),
    ])  # fmt: skip
    assert summary.score_name == "test perplexity" and summary.yardstick_name == "unigram perplexity"
    # the perplexity over the whole test split is exp of the token-weighted mean cross-entropy
    assert summary.score == pytest.approx(math.exp(summary.metrics["test_loss"]), rel=1e-4)
    assert 1.0 < summary.score < 300 * 1.5 and summary.yardstick < 300
    assert (tmp_path / "asv_lm" / "ASV-variational-regularized-seed0_0" / "summary.json").is_file()
    # the perplexity curves: named in the summary, one line per split drawn in its colour
    figure = tmp_path / "asv_lm" / "ASV-variational-regularized-seed0_0" / "perplexity.png"
    assert summary.figure == str(figure) and f"perplexity plot     {figure}" in summary.format()
    image = matplotlib.image.imread(figure)[..., :3]
    for color in (TRAIN_COLOR, VAL_COLOR):  # a 2-epoch line spans the panel: far more pixels than its legend sample
        target = np.array(matplotlib.colors.to_rgb(color))
        assert int((np.abs(image - target).max(axis=-1) < 0.1).sum()) > 600, color


def test_perplexity_curves_draw_both_lines(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = plot_perplexity_curves([400.0, 250.0, 200.0], [300.0, 220.0, 210.0])
    try:
        fig.axes[0].get_legend().remove()
        fig.savefig(tmp_path / "ppl.png", dpi=60)
        assert fig.axes[0].get_yscale() == "linear"
    finally:
        plt.close(fig)
    image = matplotlib.image.imread(tmp_path / "ppl.png")[..., :3]
    for color in (TRAIN_COLOR, VAL_COLOR):
        target = np.array(matplotlib.colors.to_rgb(color))
        assert int((np.abs(image - target).max(axis=-1) < 0.1).sum()) > 300, color


def test_disabled_perplexity_plot_draws_nothing(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    curves = PerplexityPlot(enabled=False)
    curves.train, curves.val = [50.0, 40.0], [60.0, 55.0]
    curves.on_fit_end(pl.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False), small())
    assert curves.path is None and not list(tmp_path.rglob("*.png"))
    with pytest.raises(TypeError, match=r"enabled must be True or False, got str 'no'"):
        PerplexityPlot(enabled="no")


def test_a_users_text_is_used_whole_and_a_bad_one_exits_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f"w{i % 50} w{i % 7} common" for i in range(1000)]
    (tmp_path / "mine.txt").write_text("\n".join(lines) + "\n")
    small_run = ["--model.embedding_size", "4", "--model.hidden_size", "4", "--trainer.logger.save_dir", str(tmp_path)]
    cli = asv_lm.cli(["--data.path", str(tmp_path / "mine.txt"), *small_run])
    # the recipe's quick default (the first 15%) is the Bible's: a file of one's own is used whole
    assert cli.datamodule.text_fraction == 1.0
    assert sum(cli.datamodule.stream(split).numel() for split in ("train", "val", "test")) == 1000 * 4
    cli.trainer.fit_loop.max_epochs = 1
    summary = cli.fit_and_test()
    # nor is the summary's advice to read more of it
    assert "own_text" in summary.in_use and "--data.text_fraction" not in summary.format()
    (tmp_path / "punct.txt").write_text("!!! ... ???\n" * 1000)
    with pytest.raises(SystemExit) as exit_info:
        asv_lm.cli(["--data.path", str(tmp_path / "punct.txt"), *small_run])
    assert exit_info.value.code == 2
    assert "error: ValueError: LanguageModelDataModule: path '" in capsys.readouterr().err


def test_more_than_one_process_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    with pytest.raises(SystemExit) as exit_info:
        asv_lm.cli([*ddp, "--trainer.logger.save_dir", str(tmp_path)])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: --trainer.devices (and --trainer.num_nodes) must give one process for asv_lm: ")
    assert last.endswith("got 2 processes")
