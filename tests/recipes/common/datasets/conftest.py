"""The loader tests share the recipe tests' ``uninstall`` fixture."""

from tests.recipes._uninstall import uninstall  # noqa: F401
