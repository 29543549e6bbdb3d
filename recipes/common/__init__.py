"""Code shared by the recipes: the command line, one sequence model, the generic data modules, the summary.

A recipe is a short script: it picks a data module and the model's defaults, builds a
:class:`RecipeCLI` and calls its ``fit_and_test``. Run recipes from anywhere as
``python recipes/<name>.py``; the script's folder is then on ``sys.path``, so ``import common`` works.
"""

from .cli import RecipeCLI
from .data import ClassificationDataModule, ForecastDataModule
from .model import SequenceModel
from .summary import RunSummary

__all__ = [
    "ClassificationDataModule",
    "ForecastDataModule",
    "RecipeCLI",
    "RunSummary",
    "SequenceModel",
]
