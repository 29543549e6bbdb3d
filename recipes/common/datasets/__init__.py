"""Real public data for the recipes, read from files that installable packages ship (nothing is downloaded).

- :mod:`.series`: Airline and Lynx (sktime), CO2, sunspots and Nile (statsmodels) or a user's CSV column,
  for forecasting;
- :mod:`.ucr`: UCR/UEA classification sets in the ``.ts`` format (sktime's, or a user's);
- :mod:`.files`: finding a package's data file, with a clear message when the package is missing.

The data of the recipes that no other uses live in those recipes (Sonar in ``sonar_mlp.py``, the
Bible text in ``asv_lm.py``).

When a package is missing, the loaders raise :class:`MissingDataError` naming it and how to install it.
"""

from .files import INSTALL_HINT, MissingDataError, package_file, user_file
from .series import SHIPPED, RealSeriesDataModule, load_shipped, read_series_csv
from .ucr import TsData, UCRDataModule, load_ucr, read_ts, sktime_ts_names

__all__ = [
    "INSTALL_HINT",
    "SHIPPED",
    "MissingDataError",
    "RealSeriesDataModule",
    "TsData",
    "UCRDataModule",
    "load_shipped",
    "load_ucr",
    "package_file",
    "read_series_csv",
    "read_ts",
    "sktime_ts_names",
    "user_file",
]
