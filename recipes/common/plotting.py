"""Figures of the recipes (matplotlib, drawn off screen)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # the recipes run on machines without a display; choose before pyplot is imported

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

__all__ = ["FORECAST_COLOR", "forecast_title", "plot_forecasts"]

FORECAST_COLOR = "#d62728"
"""The forecasts' colour (matplotlib's tab:red)."""


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
