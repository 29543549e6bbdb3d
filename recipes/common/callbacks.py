"""The figures of a run (forecasts, confusion matrix), drawn with matplotlib.

Each callback draws on rank 0 after the test (or the fit), saves a PNG ``filename`` in the run's log
directory (:func:`common.summary.run_dir`) and logs the figure to TensorBoard (:func:`save_figure`);
``enabled=False`` draws nothing (:func:`check_bool`). A recipe with a figure of its own (``asv_lm.py``) uses both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import matplotlib

matplotlib.use("Agg")  # the recipes run on machines without a display; choose before pyplot is imported

import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics.functional.classification import multiclass_confusion_matrix
from typing_extensions import override

from regdrop.functional._validation import check_positive_int

from .data import ForecastDataModule
from .summary import run_dir

__all__ = [
    "CONFUSION_CMAP", "TRAIN_COLOR", "VAL_COLOR", "ConfusionMatrixPlot", "ForecastPlot", "check_bool",
    "confusion_matrix", "forecast_title", "plot_confusion_matrix", "plot_forecasts", "rolling_forecast", "save_figure",
]  # fmt: skip

FORECAST_COLOR = "#d62728"  # the forecasts (matplotlib's tab:red)
TRAIN_COLOR = "#1f77b4"  # the training curve (tab:blue)
VAL_COLOR = "#ff7f0e"  # the validation curve (tab:orange)
CONFUSION_CMAP = "Blues"  # the confusion matrix: white for 0, dark blue for the largest count


def forecast_title(horizon: int, input_length: int) -> str:
    """The forecast figure's title.

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
    """Draw each series (channel 0) with the model's forecasts over it, one panel per series (the caller closes it).

    Args:
        series: the observed series, each ``(T, C)``.
        starts: for each series, the first step of each forecast block.
        forecasts: for each series, the blocks ``(B, H, C)``.
        truth: the noise-free series, drawn as a line. Default: None.

    Example:
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
        ax.plot(series[i][:, 0].detach().cpu().numpy(), ".", color="0.6", markersize=3, label="observed")
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
    """Draw a confusion matrix (rows the true class, columns the predicted one), each cell's count written in it.

    Args:
        matrix: the counts ``(K, K)``; ``matrix[i, j]`` cases of class ``i`` were predicted ``j``.
        class_names: the ``K`` classes' names.

    Raises:
        ValueError: if ``matrix`` is not square or ``class_names`` does not have one name per row.

    Example:
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


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool; else ``TypeError`` naming ``name`` (a figure callback's ``enabled``)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


@torch.no_grad()
def rolling_forecast(
    model: torch.nn.Module, series: Tensor, input_length: int, horizon: int
) -> tuple[list[int], Tensor]:
    """Forecast a series block by block, each from the steps before it: the blocks' first steps and ``(B, horizon, C)``.

    Args:
        model: maps ``(N, input_length, C)`` to ``(N, horizon, C)``; run in eval mode, then put back in its mode.
        series: the series ``(T, C)``.
        input_length: steps of history per forecast.
        horizon: steps per forecast.

    Example:
        >>> class Last(torch.nn.Module):  # repeats the last observed value
        ...     def forward(self, x):
        ...         return x[:, -1:, :].expand(-1, 2, -1)
        >>> starts, blocks = rolling_forecast(Last(), torch.arange(7.0).unsqueeze(1), input_length=3, horizon=2)
        >>> starts, blocks[..., 0].tolist()
        ([3, 5], [[2.0, 2.0], [4.0, 4.0]])
    """
    starts = list(range(input_length, series.shape[0] - horizon + 1, horizon))
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), series.device)
        windows = torch.stack([series[s - input_length : s] for s in starts]).to(device)
        blocks = model(windows).float().cpu()
    finally:
        model.train(was_training)
    return starts, blocks


class ForecastPlot(pl.Callback):
    """After the test, draw forecasts against the truth for a few test series, block by block over their length.

    Args:
        num_series: how many test series to draw. Default: 4.
        filename: name of the PNG in the log directory. Default: ``"forecasts.png"``.
        enabled: False draws nothing. Default: True.

    Raises:
        ValueError: if ``num_series`` is below 1.
        TypeError: when fitting or testing starts, if the datamodule is not a ``ForecastDataModule``.
    """

    def __init__(self, num_series: int = 4, filename: str = "forecasts.png", enabled: bool = True) -> None:
        self.num_series = check_positive_int("num_series", num_series)
        self.filename = filename
        self.enabled = check_bool("enabled", enabled)
        self.path: Path | None = None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.enabled and not isinstance(trainer.datamodule, ForecastDataModule):
            raise TypeError(f"ForecastPlot needs a ForecastDataModule, got {type(trainer.datamodule).__name__}")

    @override
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        dm = trainer.datamodule
        assert isinstance(dm, ForecastDataModule)  # checked in setup
        series, truth = dm.test_series[: self.num_series], dm.test_truth()
        forecasts = [rolling_forecast(pl_module, s, dm.input_length, dm.horizon) for s in series]
        starts, blocks = [f[0] for f in forecasts], [f[1] for f in forecasts]
        truth = truth[: self.num_series] if truth is not None else None
        fig = plot_forecasts(series, starts, blocks, truth, title=forecast_title(dm.horizon, dm.input_length))
        self.path = save_figure(trainer, fig, self.filename, "test/forecasts")


def save_figure(trainer: pl.Trainer, fig: plt.Figure, filename: str, tag: str) -> Path:
    """Save ``fig`` as ``filename`` in the run's log directory, log it to TensorBoard under ``tag``, close it."""
    try:
        log_dir = run_dir(trainer)
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / filename
        fig.savefig(path, dpi=100)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(tag, fig, global_step=trainer.global_step)
                logger.experiment.flush()
        return path
    finally:
        plt.close(fig)


@torch.no_grad()
def confusion_matrix(model: torch.nn.Module, loader: torch.utils.data.DataLoader, num_classes: int) -> Tensor:
    """Count the ``(true, predicted)`` pairs of ``model`` (in eval mode) over batches ``(input, [lengths,] target)``.

    Returns ``(num_classes, num_classes)`` int64 counts, rows the true class. The model gives logits
    ``(N, num_classes)``, or for two classes one logit ``(N,)`` (class 1 above 0).

    Example:
        >>> class Sign(torch.nn.Module):
        ...     def forward(self, x):
        ...         return torch.cat([-x, x], dim=1)
        >>> data = [(torch.tensor([[1.0], [-2.0], [3.0]]), torch.tensor([1, 1, 0]))]
        >>> confusion_matrix(Sign(), data, 2).tolist()
        [[0, 1], [1, 1]]
    """
    check_positive_int("num_classes", num_classes)
    was_training = model.training
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    counts = torch.zeros(num_classes, num_classes, dtype=torch.long)
    try:
        for batch in loader:
            input, *lengths, target = batch  # lengths: [] or [lengths]
            logits = model(input.to(device), *lengths)
            predicted = (logits > 0).long().cpu() if logits.dim() == 1 else logits.argmax(dim=-1).cpu()
            counts += multiclass_confusion_matrix(predicted, target.cpu(), num_classes)
    finally:
        model.train(was_training)
    return counts


class ConfusionMatrixPlot(pl.Callback):
    """After the test, draw the test set's confusion matrix (counts in the cells, class names on the axes).

    Args:
        filename: name of the PNG in the log directory. Default: ``"confusion_matrix.png"``.
        enabled: False draws nothing. Default: True.
    """

    def __init__(self, filename: str = "confusion_matrix.png", enabled: bool = True) -> None:
        self.filename = filename
        self.enabled = check_bool("enabled", enabled)
        self.path: Path | None = None
        self.matrix: Tensor | None = None  # the counts, after the test

    @override
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        datamodule = trainer.datamodule
        num_classes = int(datamodule.num_classes)  # type: ignore[union-attr]
        names = getattr(datamodule, "class_names", None) or [str(k) for k in range(num_classes)]
        self.matrix = confusion_matrix(pl_module, datamodule.test_dataloader(), num_classes)  # type: ignore[union-attr]
        fig = plot_confusion_matrix(self.matrix, names)
        self.path = save_figure(trainer, fig, self.filename, "test/confusion_matrix")
