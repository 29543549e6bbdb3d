"""Gaussian noise modules: multiplicative (:class:`GaussianDropout`) and additive (:class:`GaussianNoise`)."""

from __future__ import annotations

from typing import TypeVar

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from regdrop.functional._validation import check_nonnegative, check_rate
from regdrop.functional.noise import gaussian_dropout, gaussian_noise

__all__ = ["GaussianDropout", "GaussianNoise"]

_T = TypeVar("_T", Tensor, PackedSequence)


class GaussianDropout(nn.Module):
    r"""Gaussian dropout: multiply every entry by noise with mean 1 and variance ``p / (1 - p)``.

    Srivastava et al. (2014), Keras ``GaussianDropout``; holds ``p`` for
    :func:`regdrop.functional.gaussian_dropout`. In training,

    .. math::
        y = x \odot \epsilon, \qquad \epsilon \sim \mathcal{N}\!\left(1, \frac{p}{1 - p}\right)
        \text{ i.i.d.},

    drawn afresh at every call. In ``eval()`` mode it is the identity. A ``PackedSequence``
    is accepted (the noise is element-wise).

    Args:
        p: the dropout rate the noise stands for, in [0, 1). A plain attribute, which may be
            changed between calls. Default: 0.5.

    Shape:
        - Input: :math:`(*)`, any shape, or a ``PackedSequence``.
        - Output: same as the input.

    Raises:
        TypeError: if ``p`` is not a real number, or the input is not a floating-point
            Tensor or ``PackedSequence``.
        ValueError: if ``p`` is outside [0, 1).

    Example:
        >>> import torch
        >>> from regdrop.nn import GaussianDropout
        >>> drop = GaussianDropout(0.2)
        >>> drop
        GaussianDropout(p=0.2)
        >>> y = drop(torch.ones(200_000))
        >>> round(y.mean().item(), 2), round(y.var().item(), 2)  # 1 and 0.2 / 0.8
        (1.0, 0.25)
    """

    rate_names: tuple[str, ...] = ("p",)

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_rate("p", p, allow_one=False)

    def forward(self, input: _T) -> _T:
        return gaussian_dropout(input, self.p, self.training, who=type(self).__name__)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianNoise(nn.Module):
    r"""Additive Gaussian noise with mean 0 and standard deviation ``sigma``.

    Keras ``GaussianNoise``; holds ``sigma`` for :func:`regdrop.functional.gaussian_noise`.
    In training,

    .. math::
        y = x + \sigma \epsilon, \qquad \epsilon \sim \mathcal{N}(0, 1) \text{ i.i.d.},

    drawn afresh at every call. In ``eval()`` mode it is the identity. ``sigma`` is not a
    rate in [0, 1], so ``rate_names`` is empty and dropout-rate tools leave it alone.

    Args:
        sigma: standard deviation of the noise, a finite number >= 0. A plain attribute,
            which may be changed between calls.
        stddev: Keras's name of ``sigma``, accepted in its place (keyword only).

    Shape:
        - Input: :math:`(*)`, any shape, or a ``PackedSequence``.
        - Output: same as the input.

    Raises:
        TypeError: if ``sigma`` is not a real number, if both or neither of ``sigma`` and
            ``stddev`` are given, or if the input is not a floating-point Tensor or ``PackedSequence``.
        ValueError: if ``sigma`` is negative, infinite or NaN.

    Example:
        >>> import torch
        >>> from regdrop.nn import GaussianNoise
        >>> noise = GaussianNoise(0.1)
        >>> noise
        GaussianNoise(sigma=0.1)
        >>> x = torch.zeros(100_000)
        >>> round(noise(x).std().item(), 2), torch.equal(noise.eval()(x), x)
        (0.1, True)
    """

    rate_names: tuple[str, ...] = ()

    def __init__(self, sigma: float | None = None, *, stddev: float | None = None) -> None:
        if sigma is not None and stddev is not None:
            raise TypeError(
                "GaussianNoise: give sigma or its Keras spelling stddev, not both;"
                f" got sigma={sigma!r}, stddev={stddev!r}"
            )
        if sigma is None:
            if stddev is None:
                raise TypeError(
                    "sigma must be a finite number >= 0 (the noise's standard deviation; Keras spells it stddev),"
                    " got None"
                )
            sigma = stddev
        super().__init__()
        self.sigma = check_nonnegative("sigma", sigma)

    def forward(self, input: _T) -> _T:
        return gaussian_noise(input, self.sigma, self.training, who=type(self).__name__)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"
