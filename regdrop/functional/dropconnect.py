"""DropConnect: dropout on the entries of a weight tensor."""

from __future__ import annotations

import torch
from torch import Tensor

from regdrop.functional._validation import check_tensor
from regdrop.functional.dropout import shared_dropout

__all__ = ["dropconnect"]


def dropconnect(
    weight: Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""DropConnect (Wan et al. 2013): zero each entry of a weight with probability ``p``.

    .. math::
        \tilde W = W \odot M, \qquad M_{ij} = \frac{B_{ij}}{1 - p},
        \quad B_{ij} \sim \mathrm{Bernoulli}(1 - p),

    so :math:`\mathbb{E}[\tilde W] = W`. The caller uses :math:`\tilde W` in place of
    :math:`W` for one forward pass; Merity et al. (2017) apply it to the hidden-to-hidden
    weights of an LSTM, with one mask per forward call shared by the whole batch and every
    time step. Gradients reach the kept entries of ``weight`` only, scaled by
    ``1 / (1 - p)``. With ``p == 1`` the result is zeros; with ``p == 0`` or
    ``training=False`` ``weight`` is returned unchanged.

    Args:
        weight: the weight tensor (any shape).
        p: probability of an entry being zeroed, in [0, 1]. Default: 0.5.
        training: apply DropConnect if True, return ``weight`` if False. Default: True.
        generator: random generator to draw the mask from. Default: the global one.

    Shape:
        - Weight: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape.

    Raises:
        TypeError: if ``weight`` is not a floating-point tensor, or ``p`` is not a real number.
        ValueError: if ``p`` is outside [0, 1].

    Example:
        >>> import torch
        >>> from regdrop.functional import dropconnect
        >>> w = torch.ones(3, 4, requires_grad=True)
        >>> w_dropped = dropconnect(w, p=0.5, generator=torch.Generator().manual_seed(0))
        >>> sorted(set(w_dropped.flatten().tolist()))  # each entry dropped or scaled by 2
        [0.0, 2.0]
        >>> w_dropped.sum().backward()
        >>> torch.equal(w.grad, w_dropped.detach())  # kept entries get gradient 1 / (1 - p)
        True
    """
    check_tensor(weight, "dropconnect", name="weight")
    return shared_dropout(weight, p, training=training, generator=generator)
