"""AR and TAR as one module whose call is the penalty to add to the loss."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from regdrop.functional._validation import check_nonnegative
from regdrop.functional.activation import activation_regularization, temporal_activation_regularization

__all__ = ["ActivationRegularization"]


class ActivationRegularization(nn.Module):
    r"""Activation and temporal activation regularization (AR/TAR), Merity et al. (2017).

    Holds :math:`\alpha`, :math:`\beta` and the layout; calling it returns the penalty

    .. math::
        \alpha \,\overline{\tilde h^2} + \beta \,\overline{(h_t - h_{t-1})^2},

    with :math:`\tilde h` the dropped output of the last recurrent layer and :math:`h` the same
    output before dropout (see :func:`regdrop.functional.activation_regularization` and
    :func:`regdrop.functional.temporal_activation_regularization`). A LightningModule adds it
    in ``training_step``: ``loss = loss + self.ar_tar(raw, dropped)``. It has no parameters
    and no dropout rate.

    Args:
        alpha: the AR weight, a finite number >= 0. Default: 2 (Merity et al.).
        beta: the TAR weight, a finite number >= 0. Default: 1 (Merity et al.).
        batch_first: whether 3-D outputs are ``(N, L, C)``. Default: False.

    Shape:
        - raw, dropped: ``(L, N, C)`` (``(N, L, C)`` if ``batch_first``), ``(L, C)``, or a
          ``PackedSequence``; ``lengths``: ``(N,)`` for padded outputs.
        - Output: a 0-D tensor.

    Raises:
        TypeError: if ``alpha`` or ``beta`` is not a real number.
        ValueError: if ``alpha`` or ``beta`` is negative or not finite; in ``forward``, as the
            functions above.

    Example:
        >>> import torch
        >>> from regdrop.nn import ActivationRegularization
        >>> ar_tar = ActivationRegularization(alpha=2.0, beta=1.0, batch_first=True)
        >>> ar_tar
        ActivationRegularization(alpha=2.0, beta=1.0, batch_first=True)
        >>> raw = torch.arange(3.0).reshape(1, 3, 1)  # steps of 1: TAR = 1
        >>> dropped = torch.full((1, 3, 1), 0.5)  # AR = 2 * 0.25
        >>> ar_tar(raw, dropped)
        tensor(1.5000)
    """

    rate_names: tuple[str, ...] = ()

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, batch_first: bool = False) -> None:
        super().__init__()
        self.alpha = check_nonnegative("alpha", alpha)
        self.beta = check_nonnegative("beta", beta)
        self.batch_first = bool(batch_first)

    def forward(
        self, raw: Tensor | PackedSequence, dropped: Tensor | PackedSequence, lengths: Tensor | None = None
    ) -> Tensor:
        who = type(self).__name__
        ar = activation_regularization(dropped, self.alpha, self.batch_first, lengths, who=who)
        tar = temporal_activation_regularization(raw, self.beta, self.batch_first, lengths, who=who)
        return ar + tar

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, batch_first={self.batch_first}"
