"""recipes/common/callbacks.py, the figures: one panel per forecast series, confusion matrices."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import common.callbacks
from common.callbacks import plot_forecasts


def test_blocks_are_drawn_at_their_steps(tmp_path) -> None:
    series = [torch.arange(20.0).unsqueeze(1), -torch.arange(20.0).unsqueeze(1)]
    blocks = [torch.full((2, 3, 1), 7.0), torch.stack([torch.full((3, 1), -1.0), torch.full((3, 1), -2.0)])]
    truth = [s * 0.5 for s in series]
    fig = plot_forecasts(series, [[5, 8], [10, 13]], blocks, truth, title="demo")
    try:
        assert len(fig.axes) == 2 and fig._suptitle.get_text() == "demo"
        red = [line for line in fig.axes[1].lines if line.get_gid() == "forecast"]
        assert [list(line.get_xdata()) for line in red] == [[10, 11, 12], [13, 14, 15]]
        assert [list(line.get_ydata()) for line in red] == [[-1.0] * 3, [-2.0] * 3]
        truth_line = next(line for line in fig.axes[0].lines if line.get_label() == "truth (no noise)")
        np.testing.assert_allclose(truth_line.get_ydata(), np.arange(20.0) * 0.5)
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert labels == ["observed", "truth (no noise)", "forecast"]
        fig.savefig(tmp_path / "f.png")
        assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        plt.close(fig)


def test_mismatched_lists_are_refused() -> None:
    with pytest.raises(ValueError, match=r"plot_forecasts: got 2 series, 1 lists of starts and 2 forecasts"):
        plot_forecasts([torch.zeros(5, 1)] * 2, [[1]], [torch.zeros(1, 1, 1)] * 2)


def _forecast_pixels(fig, path) -> int:
    """Pixels of the forecast colour in the saved PNG (legend removed, so only marks in the panels count)."""
    import matplotlib.colors
    import matplotlib.image

    for ax in fig.axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.savefig(path, dpi=80)
    image = matplotlib.image.imread(path)[..., :3]
    target = np.array(matplotlib.colors.to_rgb(common.callbacks.FORECAST_COLOR))
    return int((np.abs(image - target).max(axis=-1) < 0.15).sum())


def test_one_step_forecasts_are_visible_marks_without_a_line_per_step(tmp_path) -> None:
    t = torch.arange(60.0)
    series = [torch.sin(t / 5).unsqueeze(1)]
    starts = [list(range(12, 60))]
    blocks = [torch.sin(torch.tensor(starts[0], dtype=torch.float32) / 5).reshape(-1, 1, 1)]
    fig = plot_forecasts(series, starts, blocks, title=common.callbacks.forecast_title(1, 12))
    try:
        assert fig._suptitle.get_text() == "Test series: one-step-ahead forecasts from 12 observed steps"
        ax = fig.axes[0]
        # no vertical line per step: every line drawn spans less than the panel's height
        assert not [line for line in ax.lines if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]
        assert _forecast_pixels(fig, tmp_path / "one.png") > 200
    finally:
        plt.close(fig)


def test_multi_step_blocks_are_drawn_in_the_forecast_colour(tmp_path) -> None:
    series = [torch.zeros(30, 1)]
    fig = plot_forecasts(series, [[10, 20]], [torch.ones(2, 5, 1)])
    try:
        assert _forecast_pixels(fig, tmp_path / "multi.png") > 10
    finally:
        plt.close(fig)


def _pixels_of(path, rgb, tolerance: float = 0.05) -> int:
    import matplotlib.image

    image = matplotlib.image.imread(path)[..., :3]
    return int((np.abs(image - np.array(rgb)).max(axis=-1) < tolerance).sum())


def test_confusion_matrix_cells_are_drawn_and_annotated(tmp_path) -> None:
    import matplotlib

    fig = common.callbacks.plot_confusion_matrix(torch.tensor([[5, 0, 1], [2, 9, 0], [0, 0, 4]]), ["ka", "ki", "ku"])
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.texts] == ["5", "0", "1", "2", "9", "0", "0", "0", "4"]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["ka", "ki", "ku"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["ka", "ki", "ku"]
        assert ax.get_title() == "Test confusion matrix: 18 of 21 right"
        fig.savefig(tmp_path / "cm.png", dpi=60)
    finally:
        plt.close(fig)
    darkest = matplotlib.colormaps[common.callbacks.CONFUSION_CMAP](1.0)[:3]  # the cell of 9
    assert _pixels_of(tmp_path / "cm.png", darkest) > 500
    with pytest.raises(ValueError, match=r"class_names must have 3 names, got 2"):
        common.callbacks.plot_confusion_matrix(torch.eye(3), ["a", "b"])
    with pytest.raises(ValueError, match=r"matrix must be square \(K, K\), got shape \(2, 3\)"):
        common.callbacks.plot_confusion_matrix(torch.zeros(2, 3), ["a", "b"])
