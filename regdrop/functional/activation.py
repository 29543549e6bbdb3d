"""Activation regularization (AR) and temporal activation regularization (TAR) of a sequence.

Merity et al. (2017), "Regularizing and Optimizing LSTM Language Models": two penalties on
a recurrent layer's output, added to the loss in training.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from regdrop.functional._validation import check_nonnegative, check_tensor, shape_str

__all__ = ["activation_regularization", "temporal_activation_regularization"]


def _batch_first(
    output: Tensor | PackedSequence, batch_first: bool, lengths: Tensor | None, who: str
) -> tuple[Tensor, Tensor | None]:
    """``output`` as ``(N, L, C)`` and the lengths (None when every sequence is full)."""
    if isinstance(output, PackedSequence):
        if lengths is not None:
            raise ValueError(f"{who}: lengths must be None for a PackedSequence (it carries its own), got {lengths!r}")
        check_tensor(output.data, who, name="a PackedSequence's data")
        padded, lengths = pad_packed_sequence(output, batch_first=True)
        return padded, lengths.to(padded.device)
    check_tensor(output, who, name="output")
    if output.dim() == 2:
        output = output.unsqueeze(0)
    elif output.dim() == 3:
        output = output if batch_first else output.transpose(0, 1)
    else:
        layout = "(N, L, C) with batch_first=True" if batch_first else "(L, N, C) with batch_first=False"
        raise ValueError(f"{who}: output must be 3-D {layout} or 2-D (L, C) unbatched, got a {shape_str(output)}")
    if lengths is None:
        return output, None
    if not isinstance(lengths, Tensor) or lengths.is_floating_point() or lengths.is_complex():
        raise TypeError(f"{who}: lengths must be an integer Tensor of shape (N,), got {lengths!r}")
    n, steps = output.shape[:2]
    if lengths.shape != (n,) or bool((lengths < 0).any()) or bool((lengths > steps).any()):
        raise ValueError(
            f"{who}: lengths must have shape ({n},) and values in [0, {steps}] for output of {n} sequences "
            f"of {steps} steps, got {lengths.tolist()}"
        )
    return output, lengths.to(output.device)


def _masked_mean(values: Tensor, lengths: Tensor | None, offset: int) -> Tensor:
    """Mean of ``values`` ``(N, T, C)`` over the steps ``t < lengths - offset`` of each sequence."""
    if lengths is None:
        return values.mean() if values.numel() else values.sum()
    valid = torch.arange(values.shape[1], device=values.device) < (lengths - offset).unsqueeze(1)
    count = valid.sum() * values.shape[2]
    total = values.mul(valid.unsqueeze(2).to(values.dtype)).sum()
    return total / count.clamp(min=1)


def activation_regularization(
    output: Tensor | PackedSequence,
    alpha: float,
    batch_first: bool = False,
    lengths: Tensor | None = None,
    *,
    who: str = "activation_regularization",
) -> Tensor:
    r"""Activation regularization (AR): ``alpha`` times the mean square of a layer's output.

    Merity et al. (2017) apply it to the *dropped* output of the last recurrent layer,

    .. math::
        \mathrm{AR} = \alpha \, \frac{1}{|S|} \sum_{(n, t, c) \in S} h_{n,t,c}^2,

    with :math:`S` every (sample, step, feature) of the output, or only the steps
    :math:`t < \text{lengths}_n` of padded or packed sequences. Add it to the loss in training.

    Args:
        output: ``(L, N, C)`` (``(N, L, C)`` if ``batch_first``), unbatched ``(L, C)``, or a
            ``PackedSequence``.
        alpha: the weight :math:`\alpha`, a finite number >= 0 (2 in Merity et al.).
        batch_first: whether a 3-D ``output`` is ``(N, L, C)``. Default: False.
        lengths: the length of each sequence of a padded ``output``, an integer tensor ``(N,)``;
            the steps past it are left out. None (default) counts every step.
        who: the name that prefixes the errors about ``output``. Default: the function's name.

    Returns:
        A 0-D tensor (0 for an empty output), differentiable with respect to ``output``.

    Raises:
        TypeError: if ``output`` is not a floating-point Tensor or ``PackedSequence``, ``alpha``
            is not a real number, or ``lengths`` is not an integer tensor.
        ValueError: if ``alpha`` is negative or not finite, ``output`` is not 2-D or 3-D, or
            ``lengths`` has the wrong shape or values outside [0, L].

    Example:
        >>> import torch
        >>> from regdrop.functional import activation_regularization
        >>> h = torch.full((2, 3, 4), 0.5)  # (N, L, C)
        >>> activation_regularization(h, alpha=2.0, batch_first=True)
        tensor(0.5000)
    """
    alpha = check_nonnegative("alpha", alpha)
    h, lengths = _batch_first(output, batch_first, lengths, who)
    return alpha * _masked_mean(h.pow(2), lengths, offset=0)


def temporal_activation_regularization(
    output: Tensor | PackedSequence,
    beta: float,
    batch_first: bool = False,
    lengths: Tensor | None = None,
    *,
    who: str = "temporal_activation_regularization",
) -> Tensor:
    r"""Temporal activation regularization (TAR): ``beta`` times the mean square of the output's steps.

    Merity et al. (2017) apply it to the output of the last recurrent layer *before* dropout,

    .. math::
        \mathrm{TAR} = \beta \, \frac{1}{|S|} \sum_{(n, t, c) \in S} (h_{n,t,c} - h_{n,t-1,c})^2,

    with :math:`S` every (sample, step :math:`t \geq 1`, feature), or only the steps
    :math:`1 \leq t < \text{lengths}_n` of padded or packed sequences. A sequence of one step
    has no difference and gives 0. Add it to the loss in training.

    Args:
        output: ``(L, N, C)`` (``(N, L, C)`` if ``batch_first``), unbatched ``(L, C)``, or a
            ``PackedSequence``.
        beta: the weight :math:`\beta`, a finite number >= 0 (1 in Merity et al.).
        batch_first: whether a 3-D ``output`` is ``(N, L, C)``. Default: False.
        lengths: the length of each sequence of a padded ``output``, an integer tensor ``(N,)``;
            the steps past it are left out. None (default) counts every step.
        who: the name that prefixes the errors about ``output``. Default: the function's name.

    Returns:
        A 0-D tensor (0 when no sequence has two steps), differentiable with respect to ``output``.

    Raises:
        TypeError: if ``output`` is not a floating-point Tensor or ``PackedSequence``, ``beta``
            is not a real number, or ``lengths`` is not an integer tensor.
        ValueError: if ``beta`` is negative or not finite, ``output`` is not 2-D or 3-D, or
            ``lengths`` has the wrong shape or values outside [0, L].

    Example:
        >>> import torch
        >>> from regdrop.functional import temporal_activation_regularization
        >>> h = torch.arange(3.0).reshape(3, 1, 1)  # (L, N, C): 0, 1, 2, steps of 1
        >>> temporal_activation_regularization(h, beta=1.0)
        tensor(1.)
    """
    beta = check_nonnegative("beta", beta)
    h, lengths = _batch_first(output, batch_first, lengths, who)
    return beta * _masked_mean((h[:, 1:] - h[:, :-1]).pow(2), lengths, offset=1)
