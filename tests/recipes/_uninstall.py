"""A fixture for the recipe tests: pretend a data package is not installed."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable

import pytest

__all__ = ["uninstall"]


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
