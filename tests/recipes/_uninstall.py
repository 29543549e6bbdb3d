"""A fixture for the recipe tests: pretend a data package is not installed."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable

import pytest

__all__ = ["check_advice", "check_own_file_flag", "uninstall"]


@pytest.fixture
def uninstall(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make ``importlib`` find neither the named top-level package nor its submodules."""
    real_find_spec = importlib.util.find_spec

    def hide(package: str) -> None:
        previous = importlib.util.find_spec

        def find_spec(name: str, *args: object, **kwargs: object) -> object:
            if name == package or name.startswith(package + "."):
                return None
            return previous(name, *args, **kwargs)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.setitem(sys.modules, package, None)

    assert real_find_spec is not None
    return hide


def check_advice(message: str, distribution: str, help_text: str) -> None:
    """Check that a ``MissingDataError`` message gives a fix that works.

    The ``regdrop[<extra>]`` it names must list ``distribution`` in pyproject.toml, and the
    flag it names for a file of one's own must be one the recipe's ``--help`` lists.
    """
    import re
    from pathlib import Path

    import tomllib

    extras = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    named = re.search(r"pip install 'regdrop\[(\w+)\]'", message)
    assert named is not None, message
    assert any(dep.startswith(distribution) for dep in extras[named.group(1)]), (named.group(1), distribution)
    check_own_file_flag(message, help_text)


def check_own_file_flag(message: str, help_text: str) -> None:
    """Check that the flag a ``MissingDataError`` message names for a file of one's own is in ``--help``."""
    import re

    flag = re.search(r"of your own with (--[\w.]+)", message)
    assert flag is not None, message
    assert re.search(rf"(^|\s){re.escape(flag.group(1))}[\s=]", help_text), f"{flag.group(1)} is not in --help"
