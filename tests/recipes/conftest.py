"""The recipes import their shared code as ``common`` (their folder is on ``sys.path``); so do the tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"

if str(RECIPES_DIR) not in sys.path:
    sys.path.insert(0, str(RECIPES_DIR))


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    # RecipeCLI sets torch's thread count (--num_threads); keep that from leaking into other tests
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
