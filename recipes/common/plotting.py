"""Figures of the recipes (matplotlib, drawn off screen)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # the recipes run on machines without a display; choose before pyplot is imported

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

__all__ = [
    "CONFUSION_CMAP",
    "FORECAST_COLOR",
    "TRAIN_COLOR",
    "VAL_COLOR",
    "forecast_title",
    "plot_confusion_matrix",
    "plot_forecasts",
    "plot_perplexity_curves",
]

FORECAST_COLOR = "#d62728"
"""The forecasts' colour (matplotlib's tab:red)."""

TRAIN_COLOR = "#1f77b4"
"""The training curve's colour (matplotlib's tab:blue)."""

VAL_COLOR = "#ff7f0e"
"""The validation curve's colour (matplotlib's tab:orange)."""

CONFUSION_CMAP = "Blues"
"""The confusion matrix's colour map (white for 0, dark blue for the largest count)."""


def forecast_title(horizon: int, input_length: int) -> str:
    """The forecast figure's title, with the counts' plurals right.

    Example:
        >>> forecast_title(1, 12)
        'Test series: one-step-ahead forecasts from 12 observed steps'
        >>> forecast_title(4, 1)
        'Test series: forecasts of 4 steps from 1 observed step'
    """
    observed = f"{input_length} observed step" + ("" if input_length == 1 else "s")
    if horizon == 1:
        return f"Test series: one-step-ahead forecasts from {observed}"
    return f"Test series: forecasts of {horizon} steps from {observed}"


def plot_forecasts(
    series: Sequence[Tensor],
    starts: Sequence[Sequence[int]],
    forecasts: Sequence[Tensor],
    truth: Sequence[Tensor] | None = None,
    *,
    title: str = "Forecasts on test series",
) -> Figure:
    """Draw each series with the model's forecasts over it, one panel per series.

    Args:
        series: the observed series, each ``(T, C)``; channel 0 is drawn.
        starts: for each series, the first step of each forecast block.
        forecasts: for each series, the blocks ``(B, H, C)``; block ``b`` covers steps
            ``starts[b] .. starts[b] + H - 1``.
        truth: the noise-free series, when known, drawn as a line. Default: None.
        title: the figure's title.

    Returns:
        The figure (close it with ``matplotlib.pyplot.close`` when done).

    Example:
        >>> import torch
        >>> fig = plot_forecasts([torch.zeros(10, 1)], [[4]], [torch.ones(1, 3, 1)])
        >>> len(fig.axes)
        1
        >>> plt.close(fig)
    """
    if not (len(series) == len(starts) == len(forecasts)):
        raise ValueError(
            f"plot_forecasts: got {len(series)} series, {len(starts)} lists of starts and {len(forecasts)} forecasts"
        )
    rows = len(series)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.2 * rows + 0.6), squeeze=False, sharex=False)
    for i, ax in enumerate(axes[:, 0]):
        observed = series[i][:, 0].detach().cpu()
        ax.plot(observed.numpy(), ".", color="0.6", markersize=3, label="observed")
        if truth is not None:
            ax.plot(truth[i][:, 0].detach().cpu().numpy(), "-", color="0.2", linewidth=1.0, label="truth (no noise)")
        blocks = forecasts[i][:, :, 0].detach().cpu()
        if blocks.shape[1] == 1:
            # one-step forecasts: one mark per forecast step (a one-point line would draw nothing)
            ax.plot(list(starts[i]), blocks[:, 0].numpy(), "o", color=FORECAST_COLOR, markersize=3.5,
                    label="forecast", gid="forecast")  # fmt: skip
        else:
            for b, start in enumerate(starts[i]):
                block = blocks[b].numpy()
                steps = range(start, start + len(block))
                label = "forecast" if b == 0 else None
                ax.plot(steps, block, "-", color=FORECAST_COLOR, linewidth=1.6, label=label, gid="forecast")
                # where each multi-step block starts (one mark, not a line across the panel)
                ax.plot([start], [block[0]], "|", color=FORECAST_COLOR, markersize=8)
        ax.set_ylabel(f"series {i}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize="small", ncol=3)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    matrix: Tensor, class_names: Sequence[str], *, title: str = "Test confusion matrix"
) -> Figure:
    """Draw a confusion matrix, rows the true class and columns the predicted one, each cell's count written in it.

    Args:
        matrix: the counts ``(K, K)``; ``matrix[i, j]`` cases of class ``i`` were predicted ``j``.
        class_names: the ``K`` classes' names, for the axes.
        title: the figure's title.

    Raises:
        ValueError: if ``matrix`` is not square or ``class_names`` does not have one name per row.

    Example:
        >>> import torch
        >>> fig = plot_confusion_matrix(torch.tensor([[3, 1], [0, 4]]), ["a", "b"])
        >>> [t.get_text() for t in fig.axes[0].texts]
        ['3', '1', '0', '4']
        >>> plt.close(fig)
    """
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"plot_confusion_matrix: matrix must be square (K, K), got shape {tuple(matrix.shape)}")
    k = matrix.shape[0]
    if len(class_names) != k:
        raise ValueError(f"plot_confusion_matrix: class_names must have {k} names, got {len(class_names)}")
    counts = matrix.detach().cpu().long()
    size = min(4.0 + 0.45 * k, 14.0)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts.numpy(), cmap=CONFUSION_CMAP, vmin=0)  # no colour bar: every cell says its count
    half = float(counts.max()) / 2
    for i in range(k):
        for j in range(k):
            value = int(counts[i, j])
            ax.text(j, i, str(value), ha="center", va="center", fontsize="small",
                    color="white" if value > half else "black")  # fmt: skip
    names = [str(name) for name in class_names]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total, correct = int(counts.sum()), int(counts.diag().sum())
    ax.set_title(f"{title}: {correct} of {total} right")
    fig.tight_layout()
    return fig


def plot_perplexity_curves(
    train: Sequence[float], val: Sequence[float], *, title: str = "Perplexity per epoch"
) -> Figure:
    """Draw training and validation perplexity against the epoch, one line and a marker per epoch.

    The y axis is logarithmic when the values span more than a factor of 10.

    Args:
        train: the training perplexity of each epoch (measured with dropout on).
        val: the validation perplexity of each epoch.
        title: the figure's title.

    Example:
        >>> fig = plot_perplexity_curves([300.0, 200.0], [250.0, 190.0])
        >>> [line.get_label() for line in fig.axes[0].lines]
        ['train (dropout on)', 'validation']
        >>> plt.close(fig)
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(range(len(train)), list(train), "o-", color=TRAIN_COLOR, linewidth=2, label="train (dropout on)")
    if val:
        ax.plot(range(len(val)), list(val), "s-", color=VAL_COLOR, linewidth=2, label="validation")
    values = [*train, *val]
    if values and min(values) > 0 and max(values) / min(values) > 10:
        ax.set_yscale("log")  # early epochs of a language model can be orders of magnitude above the rest
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig
