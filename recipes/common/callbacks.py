"""Callbacks of the recipes: the figures (forecasts, confusion matrix, perplexity curves) of a run."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

try:
    from typing import override  # type: ignore[attr-defined]
except ImportError:  # Python < 3.12
    from typing_extensions import override

from regdrop.functional._validation import check_positive_int

from .data import ForecastDataModule
from .plotting import forecast_title, plot_confusion_matrix, plot_forecasts, plot_perplexity_curves
from .summary import run_dir

__all__ = ["ConfusionMatrixPlot", "ForecastPlot", "PerplexityPlot", "confusion_matrix", "rolling_forecast"]


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


@torch.no_grad()
def rolling_forecast(
    model: torch.nn.Module, series: Tensor, input_length: int, horizon: int
) -> tuple[list[int], Tensor]:
    """Forecast a whole series block by block, each block from the ``input_length`` observed steps before it.

    The model runs in eval mode (no dropout) and is put back in the mode it was in.

    Args:
        model: maps ``(N, input_length, C)`` to ``(N, horizon, C)``.
        series: the series ``(T, C)``.
        input_length: steps of history per forecast.
        horizon: steps per forecast.

    Returns:
        The first step of each block and the blocks ``(B, horizon, C)``.

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
    """After the test, draw forecasts against the truth for a few test series; save a PNG and log it to TensorBoard.

    Each series is forecast block by block (see :func:`rolling_forecast`) over its whole length,
    so the figure shows whether forecasts keep the phase and the amplitude of the series. The
    PNG goes to the run's log directory (:func:`common.summary.run_dir`) and the same figure to every
    TensorBoard logger under the tag ``test/forecasts``. Only rank 0 draws.

    Args:
        num_series: how many test series to draw. Default: 4.
        filename: name of the PNG in the log directory. Default: ``"forecasts.png"``.
        enabled: False draws nothing (the recipes' ``--forecast_plot.enabled false``). Default: True.

    Raises:
        ValueError: if ``num_series`` is below 1.
        TypeError: when fitting or testing starts, if the datamodule is not a ``ForecastDataModule``.
    """

    def __init__(self, num_series: int = 4, filename: str = "forecasts.png", enabled: bool = True) -> None:
        self.num_series = check_positive_int("num_series", num_series)
        self.filename = filename
        self.enabled = _check_bool("enabled", enabled)
        self.path: Path | None = None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.enabled and not isinstance(trainer.datamodule, ForecastDataModule):
            raise TypeError(f"ForecastPlot needs a ForecastDataModule, got {type(trainer.datamodule).__name__}")

    @override
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        datamodule = trainer.datamodule
        assert isinstance(datamodule, ForecastDataModule)  # checked in setup
        series = datamodule.test_series[: self.num_series]
        truth = datamodule.test_truth()
        forecasts = [rolling_forecast(pl_module, s, datamodule.input_length, datamodule.horizon) for s in series]
        fig = plot_forecasts(
            series,
            [starts for starts, _ in forecasts],
            [blocks for _, blocks in forecasts],
            truth[: self.num_series] if truth is not None else None,
            title=forecast_title(datamodule.horizon, datamodule.input_length),
        )
        try:
            log_dir = run_dir(trainer)
            log_dir.mkdir(parents=True, exist_ok=True)
            self.path = log_dir / self.filename
            fig.savefig(self.path, dpi=100)
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    logger.experiment.add_figure("test/forecasts", fig, global_step=trainer.global_step)
                    logger.experiment.flush()
        finally:
            plt.close(fig)


def _save_figure(trainer: pl.Trainer, fig: plt.Figure, filename: str, tag: str) -> Path:
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
    """Count ``(true, predicted)`` pairs of ``model`` (in eval mode) over ``loader``'s batches.

    Batches are ``(input, lengths, target)`` (packed sequences) or ``(input, target)``. The model
    gives logits ``(N, num_classes)`` (the prediction is the largest) or, for two classes, one
    logit per case ``(N,)`` (class 1 where it is above 0).

    Returns:
        ``(num_classes, num_classes)`` int64 counts; row ``i`` is the true class, column ``j`` the prediction.

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
            if len(batch) == 3:
                input, lengths, target = batch
                logits = model(input.to(device), lengths)
            else:
                input, target = batch
                logits = model(input.to(device))
            predicted = (logits > 0).long().cpu() if logits.dim() == 1 else logits.argmax(dim=-1).cpu()
            counts += torch.bincount(target.cpu() * num_classes + predicted, minlength=num_classes**2).view(
                num_classes, num_classes
            )
    finally:
        model.train(was_training)
    return counts


class ConfusionMatrixPlot(pl.Callback):
    """After the test, draw the test set's confusion matrix (counts in the cells, class names on the axes).

    The PNG goes to the run's log directory and the figure to TensorBoard under
    ``test/confusion_matrix``; :attr:`matrix` keeps the counts. Only rank 0 draws.

    Args:
        filename: name of the PNG in the log directory. Default: ``"confusion_matrix.png"``.
        enabled: False draws nothing (the recipes' ``--confusion_matrix_plot.enabled false``). Default: True.
    """

    def __init__(self, filename: str = "confusion_matrix.png", enabled: bool = True) -> None:
        self.filename = filename
        self.enabled = _check_bool("enabled", enabled)
        self.path: Path | None = None
        self.matrix: Tensor | None = None

    @override
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        datamodule = trainer.datamodule
        num_classes = int(datamodule.num_classes)  # type: ignore[union-attr]
        names = getattr(datamodule, "class_names", None) or [str(k) for k in range(num_classes)]
        self.matrix = confusion_matrix(pl_module, datamodule.test_dataloader(), num_classes)  # type: ignore[union-attr]
        fig = plot_confusion_matrix(self.matrix, names)
        self.path = _save_figure(trainer, fig, self.filename, "test/confusion_matrix")


class PerplexityPlot(pl.Callback):
    """Keep each epoch's training and validation perplexity; when fitting ends, draw them as curves.

    The training perplexity is ``exp`` of the epoch's ``train_loss`` (measured with dropout on),
    the validation one the logged ``val_ppl`` (sanity-check batches are left out). The PNG goes
    to the run's log directory and the figure to TensorBoard under ``fit/perplexity``. Only rank 0 draws.

    Args:
        filename: name of the PNG in the log directory. Default: ``"perplexity.png"``.
        enabled: False draws nothing (the recipes' ``--perplexity_plot.enabled false``). Default: True.
    """

    def __init__(self, filename: str = "perplexity.png", enabled: bool = True) -> None:
        self.filename = filename
        self.enabled = _check_bool("enabled", enabled)
        self.path: Path | None = None
        self.train: list[float] = []
        self.val: list[float] = []

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and "val_ppl" in trainer.callback_metrics:
            self.val.append(float(trainer.callback_metrics["val_ppl"]))

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "train_loss" in trainer.callback_metrics:
            self.train.append(math.exp(float(trainer.callback_metrics["train_loss"])))

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and trainer.is_global_zero:
            fig = plot_perplexity_curves(self.train, self.val)
            self.path = _save_figure(trainer, fig, self.filename, "fit/perplexity")
