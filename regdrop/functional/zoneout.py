"""Zoneout (Krueger et al. 2016): each unit keeps its previous value with probability ``p``."""

from __future__ import annotations

import torch
from torch import Tensor

from regdrop.functional._validation import check_rate

__all__ = ["zoneout"]


def zoneout(
    previous: Tensor,
    new: Tensor,
    p: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Mix the previous and the new recurrent state unit by unit.

    .. math::
        h_t = d_t \odot h_{t-1} + (1 - d_t) \odot \tilde h_t, \qquad
        d_t \sim \mathrm{Bernoulli}(p) \text{ per unit, drawn at every step (training)}

    In evaluation the expectation is used: :math:`h_t = p\, h_{t-1} + (1 - p)\, \tilde h_t`.
    Unlike dropout nothing is rescaled: a zoned-out unit carries its old value forward.

    Args:
        previous: the state before the step, :math:`h_{t-1}` (or :math:`c_{t-1}`).
        new: the state the cell computed, :math:`\tilde h_t`; same shape as ``previous``.
        p: probability that a unit keeps its previous value, in [0, 1].
        training: draw random masks (True) or use the expectation (False).
        generator: random generator for the masks.

    Shape:
        - previous, new, output: any shape, all the same.

    Raises:
        ValueError: if ``p`` is outside [0, 1] or the shapes differ.

    Example:
        >>> prev, new = torch.zeros(2, 3), torch.ones(2, 3)
        >>> zoneout(prev, new, 0.25, training=False)
        tensor([[0.7500, 0.7500, 0.7500],
                [0.7500, 0.7500, 0.7500]])
    """
    p = check_rate("zoneout", p)
    if previous.shape != new.shape:
        raise ValueError(
            f"zoneout: previous and new must have the same shape, got {tuple(previous.shape)} and {tuple(new.shape)}"
        )
    if p == 0.0:
        return new
    if not training:
        return torch.lerp(new, previous, p)
    keep_old = torch.empty_like(new).bernoulli_(p, generator=generator)
    return torch.lerp(new, previous, keep_old)
