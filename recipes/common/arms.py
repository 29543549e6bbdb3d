"""The ablation arms of a recipe: which regularizers one run uses (``--model.regularize``).

- ``"all"`` (or ``true``, the default): the model's dropout (and, in the language model, weight
  dropout and AR/TAR), its weight decay, ``MaxNorm`` and early stopping that restores the best weights;
- ``"dropout"``: the model's dropout, weight decay and ``MaxNorm``, no early stopping (the last
  epoch's weights are tested);
- ``"early_stopping"``: early stopping alone; every rate, weight decay and ``MaxNorm`` off;
- ``"none"`` (or ``false``): nothing; the last epoch's weights of the bare network are tested.

Every arm trains the same network with the same optimizer, learning-rate schedule and epoch budget,
so the difference between two arms is what the regularizers they differ by add.
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
    """Whether the arm keeps early stopping (with the best weights restored)."""
    return resolve_arm(arm) in ("all", "early_stopping")
