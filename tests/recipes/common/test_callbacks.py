"""rolling_forecast and the ForecastPlot callback (PNG in the log dir, figure in TensorBoard)."""

from __future__ import annotations

import doctest

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import common.callbacks
from common.callbacks import ConfusionMatrixPlot, ForecastPlot, confusion_matrix, rolling_forecast
from common.model import SequenceModel
from sine_lstm import SineDataModule
from tests.recipes.sine_classes import SineClassificationDataModule


def test_doctests() -> None:
    result = doctest.testmod(common.callbacks)
    assert result.attempted > 0, "no doctest ran: the examples are gone"
    assert result.failed == 0


def test_rolling_forecast_tiles_the_series_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = SequenceModel(horizon=4, hidden_size=8, dropout=0.5, recurrent_dropout=0.5, output_dropout=0.5)
    model.train()
    series = torch.randn(30, 1)
    starts, blocks = rolling_forecast(model, series, input_length=10, horizon=4)
    assert starts == [10, 14, 18, 22, 26]
    assert blocks.shape == (5, 4, 1)
    assert model.training  # put back as it was
    with torch.no_grad():
        expected = model.eval()(torch.stack([series[s - 10 : s] for s in starts]))
    torch.testing.assert_close(blocks, expected)


def _trainer(tmp_path, callback: pl.Callback) -> pl.Trainer:
    return pl.Trainer(
        logger=TensorBoardLogger(tmp_path, name="run"),
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )


def test_forecast_plot_saves_png_and_logs_the_figure(tmp_path) -> None:
    dm = SineDataModule(num_series=10, length=40, input_length=12, horizon=4, stride=4)
    plot = ForecastPlot(num_series=2, filename="f.png")
    trainer = _trainer(tmp_path, plot)
    trainer.test(SequenceModel(horizon=4, hidden_size=8), datamodule=dm, verbose=False)
    assert plot.path == tmp_path / "run" / "version_0" / "f.png"
    assert plot.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(plot.path.parent))
    events.Reload()
    assert "test/forecasts" in events.Tags()["images"]
    image = events.Images("test/forecasts")[0]
    assert image.width > 0 and image.height > 0


def test_forecast_plot_needs_forecast_data(tmp_path) -> None:
    dm = SineClassificationDataModule(
        num_sequences=12, min_length=8, max_length=10, val_fraction=0.25, test_fraction=0.25
    )
    trainer = _trainer(tmp_path, ForecastPlot())
    with pytest.raises(TypeError, match=r"ForecastPlot needs a ForecastDataModule, got SineClassificationDataModule"):
        trainer.test(SequenceModel("classify", num_classes=3, hidden_size=4), datamodule=dm, verbose=False)


def test_forecast_plot_argument_error() -> None:
    with pytest.raises(ValueError, match=r"num_series must be an int >= 1, got 0"):
        ForecastPlot(num_series=0)


def test_disabled_plots_draw_nothing(tmp_path) -> None:
    forecast = ForecastPlot(enabled=False)
    trainer = _trainer(tmp_path, forecast)
    dm = SineDataModule(num_series=10, length=40, input_length=12, horizon=4, stride=4)
    trainer.test(SequenceModel(horizon=4, hidden_size=8), datamodule=dm, verbose=False)
    assert forecast.path is None and not list(tmp_path.rglob("*.png"))
    events = EventAccumulator(str(tmp_path / "run" / "version_0"))
    events.Reload()
    assert not events.Tags()["images"]

    matrix = ConfusionMatrixPlot(enabled=False)
    classes = SineClassificationDataModule(
        num_sequences=12, min_length=8, max_length=10, val_fraction=0.25, test_fraction=0.25
    )
    _trainer(tmp_path, matrix).test(
        SequenceModel("classify", num_classes=3, hidden_size=4), datamodule=classes, verbose=False
    )
    assert matrix.path is None and matrix.matrix is None and not list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize("plot_class", [ForecastPlot, ConfusionMatrixPlot])
def test_enabled_must_be_a_bool(plot_class: type) -> None:
    with pytest.raises(TypeError, match=r"enabled must be True or False, got str 'no'"):
        plot_class(enabled="no")


def test_confusion_matrix_of_a_one_logit_binary_model() -> None:
    class Logit(torch.nn.Module):
        def forward(self, x):
            return x[:, 0]

    data = [(torch.tensor([[1.0], [-2.0], [3.0], [-0.5]]), torch.tensor([1, 1, 0, 0]))]
    assert confusion_matrix(Logit(), data, 2).tolist() == [[1, 1], [1, 1]]
