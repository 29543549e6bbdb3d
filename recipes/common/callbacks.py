"""Callbacks of the recipes: the forecast figure at the end of the test."""

from __future__ import annotations

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
from .plotting import forecast_title, plot_forecasts
from .summary import run_dir

__all__ = ["ForecastPlot", "rolling_forecast"]


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

    Raises:
        ValueError: if ``num_series`` is below 1.
        TypeError: when fitting or testing starts, if the datamodule is not a ``ForecastDataModule``.
    """

    def __init__(self, num_series: int = 4, filename: str = "forecasts.png") -> None:
        self.num_series = check_positive_int("num_series", num_series)
        self.filename = filename
        self.path: Path | None = None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not isinstance(trainer.datamodule, ForecastDataModule):
            raise TypeError(f"ForecastPlot needs a ForecastDataModule, got {type(trainer.datamodule).__name__}")

    @override
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
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
