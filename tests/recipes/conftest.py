"""The recipes import their shared code as ``common`` (the scripts' folder is on ``sys.path``); the tests do the same."""

from __future__ import annotations

import sys
from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"

if str(RECIPES_DIR) not in sys.path:
    sys.path.insert(0, str(RECIPES_DIR))
