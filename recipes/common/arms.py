"""The ablation arms (``--model.regularize``): which regularizers a run keeps, all else equal.

``"all"`` (or ``true``, the default): dropout (with weight dropout and AR/TAR in the language model), weight
decay, ``MaxNorm`` and early stopping; ``"dropout"``: all but early stopping; ``"early_stopping"``: early
stopping alone; ``"none"`` (or ``false``): nothing.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ARMS", "Arm", "resolve_arm", "uses_dropout", "uses_early_stopping"]

Arm = Literal["all", "none", "early_stopping", "dropout"]
ARMS: tuple[str, ...] = ("none", "early_stopping", "dropout", "all")


def resolve_arm(regularize: bool | str) -> str:
    """The arm's name for a ``regularize`` value: ``True`` is ``"all"``, ``False`` is ``"none"``.

    Raises:
        ValueError: if ``regularize`` is neither a bool nor one of :data:`ARMS`.

    Example:
        >>> resolve_arm(False), resolve_arm("dropout")
        ('none', 'dropout')
        >>> resolve_arm("some")
        Traceback (most recent call last):
        ...
        ValueError: regularize must be true, false or one of ('none', 'early_stopping', 'dropout', 'all'), got 'some'
    """
    if isinstance(regularize, bool):
        return "all" if regularize else "none"
    if regularize not in ARMS:
        raise ValueError(f"regularize must be true, false or one of {ARMS}, got {regularize!r}")
    return str(regularize)


def uses_dropout(arm: str) -> bool:
    """Whether the arm keeps the model's own regularizers (dropout, weight decay) and ``MaxNorm``."""
    return resolve_arm(arm) in ("all", "dropout")


def uses_early_stopping(arm: str) -> bool:
    """Whether the arm keeps early stopping."""
    return resolve_arm(arm) in ("all", "early_stopping")
