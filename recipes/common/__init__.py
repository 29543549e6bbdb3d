"""Code shared by the recipes: data modules, one sequence model, the command line, the summary and the plots.

A recipe is a short script: it picks a data module and the model's defaults and calls
:func:`run_recipe`. Run recipes from anywhere as ``python recipes/<name>.py``; the script's
folder is then on ``sys.path``, so ``import common`` works.
"""

from .callbacks import ForecastPlot, plot_forecasts, rolling_forecast
from .cli import RecipeCLI, run_recipe
from .data import ClassificationDataModule, ForecastDataModule, SequenceDataset, make_windows, pad_collate
from .model import SequenceModel
from .summary import RunSummary, collect_summary
from .synthetic import SineClassificationDataModule, SineDataModule, sine_waves

__all__ = [
    "ClassificationDataModule",
    "ForecastDataModule",
    "ForecastPlot",
    "RecipeCLI",
    "RunSummary",
    "SequenceDataset",
    "SequenceModel",
    "SineClassificationDataModule",
    "SineDataModule",
    "collect_summary",
    "make_windows",
    "pad_collate",
    "plot_forecasts",
    "rolling_forecast",
    "run_recipe",
    "sine_waves",
]
