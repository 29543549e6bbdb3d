"""Code shared by the recipes: ``python recipes/<name>.py`` puts recipes/ on ``sys.path``, for ``import common``."""

from .cli import RecipeCLI
from .data import ClassificationDataModule, ForecastDataModule
from .model import SequenceModel
from .summary import RunSummary

__all__ = ["ClassificationDataModule", "ForecastDataModule", "RecipeCLI", "RunSummary", "SequenceModel"]
