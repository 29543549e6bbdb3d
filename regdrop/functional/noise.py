"""Gaussian noise regularizers: multiplicative (Gaussian dropout) and additive."""

from __future__ import annotations

import math
from typing import TypeVar

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from regdrop.functional._validation import check_nonnegative, check_rate, check_tensor

__all__ = ["gaussian_dropout", "gaussian_noise"]

_T = TypeVar("_T", Tensor, PackedSequence)


def _standard_normal(input: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(input.shape, dtype=input.dtype, device=input.device, generator=generator)


def gaussian_dropout(
    input: _T,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
    *,
    who: str = "gaussian_dropout",
) -> _T:
    r"""Gaussian dropout: multiply every entry by noise with mean 1 and variance ``p / (1 - p)``.

    Srivastava et al. (2014), Keras ``GaussianDropout``: the Bernoulli mask of dropout with
    rate :math:`p` is replaced by a Gaussian with the same mean and variance,

    .. math::
        y = x \odot \epsilon, \qquad \epsilon \sim \mathcal{N}\!\left(1, \frac{p}{1 - p}\right)
        \text{ i.i.d.}, \qquad \mathbb{E}[y] = x.

    The noise is independent per entry and drawn afresh at every call. With ``p == 0`` or
    ``training=False`` the input is returned unchanged. ``p == 1`` would be infinite
    variance and is refused. The noise is element-wise, so a ``PackedSequence`` is accepted
    (its data is noised, its indices are kept).

    Args:
        input: a tensor, or a ``PackedSequence``.
        p: the dropout rate the noise stands for, in [0, 1). Default: 0.5.
        training: apply the noise if True, return ``input`` if False. Default: True.
        generator: random generator to draw the noise from. Default: the global one.
        who: the name that prefixes the errors about ``input`` (a module passes its class
            name). Default: the function's name.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.

    Raises:
        TypeError: if ``input`` is not a floating-point Tensor or ``PackedSequence``, or ``p``
            is not a real number.
        ValueError: if ``p`` is outside [0, 1).

    Example:
        >>> import torch
        >>> from regdrop.functional import gaussian_dropout
        >>> x = torch.ones(200_000)
        >>> y = gaussian_dropout(x, p=0.2, generator=torch.Generator().manual_seed(0))
        >>> round(y.mean().item(), 2), round(y.var().item(), 2)  # 1 and 0.2 / 0.8
        (1.0, 0.25)
    """
    p = check_rate("p", p, allow_one=False)
    if isinstance(input, PackedSequence):
        if not training or p == 0.0:
            return input
        return input._replace(data=gaussian_dropout(input.data, p, training, generator, who=who))
    check_tensor(input, who)
    if not training or p == 0.0:
        return input
    std = math.sqrt(p / (1.0 - p))
    noise = _standard_normal(input, generator).mul_(std).add_(1.0)
    return input * noise


def gaussian_noise(
    input: _T,
    sigma: float,
    training: bool = True,
    generator: torch.Generator | None = None,
    *,
    who: str = "gaussian_noise",
) -> _T:
    r"""Additive Gaussian noise with mean 0 and standard deviation ``sigma``.

    Keras ``GaussianNoise``:

    .. math::
        y = x + \sigma \epsilon, \qquad \epsilon \sim \mathcal{N}(0, 1) \text{ i.i.d.}

    The noise is drawn afresh at every call. With ``sigma == 0`` or ``training=False`` the
    input is returned unchanged. A ``PackedSequence`` is accepted (its data is noised).

    Args:
        input: a tensor, or a ``PackedSequence``.
        sigma: standard deviation of the noise, a finite number >= 0.
        training: add the noise if True, return ``input`` if False. Default: True.
        generator: random generator to draw the noise from. Default: the global one.
        who: the name that prefixes the errors about ``input`` (a module passes its class
            name). Default: the function's name.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.

    Raises:
        TypeError: if ``input`` is not a floating-point Tensor or ``PackedSequence``, or
            ``sigma`` is not a real number.
        ValueError: if ``sigma`` is negative, infinite or NaN.

    Example:
        >>> import torch
        >>> from regdrop.functional import gaussian_noise
        >>> x = torch.zeros(200_000)
        >>> y = gaussian_noise(x, sigma=0.5, generator=torch.Generator().manual_seed(0))
        >>> abs(y.mean().item()) < 0.01, round(y.std().item(), 2)
        (True, 0.5)
    """
    sigma = check_nonnegative("sigma", sigma)
    if isinstance(input, PackedSequence):
        if not training or sigma == 0.0:
            return input
        return input._replace(data=gaussian_noise(input.data, sigma, training, generator, who=who))
    check_tensor(input, who)
    if not training or sigma == 0.0:
        return input
    return input + _standard_normal(input, generator).mul_(sigma)
