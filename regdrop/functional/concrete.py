"""Concrete dropout: dropout with a relaxed Bernoulli mask, so that the rate can be learned.

Gal, Hron & Kendall (2017), "Concrete Dropout". The Bernoulli draw of :func:`shared_dropout`
is replaced by its Concrete (Gumbel-softmax) relaxation at temperature :math:`t`, which is a
differentiable function of the rate, and the rate is a parameter in logit space. The
regularizer of the paper, scaled by the data set's size, keeps the rate from collapsing to 0.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from regdrop.functional._validation import (
    check_nonnegative,
    check_positive_int,
    check_shared_dims,
    check_tensor,
    shape_str,
)

__all__ = [
    "check_temperature",
    "concrete_dropout",
    "concrete_dropout_regularizer",
    "concrete_mask",
]

# Keeps log(u) and log(1 - u) finite: torch.rand may return exactly 0.
_EPS = 1e-7


def check_temperature(value: object) -> float:
    """Return ``value`` as a float after checking it is a finite temperature > 0.

    Example:
        >>> check_temperature(0.1)
        0.1
        >>> check_temperature(0)
        Traceback (most recent call last):
        ...
        ValueError: temperature must be a finite number > 0, got 0.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"temperature must be a number > 0, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"temperature must be a finite number > 0, got {value}")
    return value


def _check_logit(p_logit: object, who: str) -> Tensor:
    if not isinstance(p_logit, Tensor):
        raise TypeError(f"{who}: p_logit must be a Tensor (the logit of the drop rate), got {type(p_logit).__name__}")
    if not p_logit.is_floating_point():
        raise TypeError(f"{who}: p_logit must be a floating-point tensor, got dtype {p_logit.dtype}")
    return p_logit


def concrete_mask(
    shape: Sequence[int],
    p_logit: Tensor,
    temperature: float = 0.1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Draw a relaxed inverted-dropout mask, differentiable in the rate's logit.

    With :math:`p = \sigma(\ell)` the drop rate, :math:`u \sim U(0, 1)` i.i.d. and
    temperature :math:`t`,

    .. math::
        z = \sigma\!\Bigl(\tfrac{1}{t}\bigl(\log p - \log(1 - p) + \log u - \log(1 - u)\bigr)\Bigr),
        \qquad m = \frac{1 - z}{1 - p},

    where :math:`\log p - \log(1 - p) = \ell`, so the logit is used as it is (no rounding
    through :math:`p`). As :math:`t \to 0`, :math:`z` tends to a Bernoulli(:math:`p`) draw
    (1 = dropped) and :math:`m` to the mask of :func:`bernoulli_mask`.

    Args:
        shape: the mask's shape.
        p_logit: :math:`\ell`, a tensor that broadcasts to ``shape`` (a 0-D tensor for one
            rate, or one entry per unit along the last dims).
        temperature: :math:`t > 0`. Default: 0.1, the paper's value.
        generator: random generator for :math:`u`. Default: the global one.

    Shape:
        - Output: ``shape``, with ``p_logit``'s dtype and device.

    Raises:
        TypeError: if ``p_logit`` is not a floating-point Tensor or ``temperature`` not a number.
        ValueError: if ``temperature`` is not > 0.

    Example:
        >>> import torch
        >>> from regdrop.functional import concrete_mask
        >>> logit = torch.tensor(0.0, requires_grad=True)  # p = 0.5
        >>> m = concrete_mask((1000,), logit, generator=torch.Generator().manual_seed(0))
        >>> round(float(m.mean()), 1), m.requires_grad
        (1.0, True)
    """
    p_logit = _check_logit(p_logit, "concrete_mask")
    temperature = check_temperature(temperature)
    u = torch.rand(tuple(shape), dtype=p_logit.dtype, device=p_logit.device, generator=generator)
    u = u.clamp(_EPS, 1.0 - _EPS)
    drop = torch.sigmoid((p_logit + torch.log(u) - torch.log1p(-u)) / temperature)
    # 1 / (1 - sigmoid(l)) = 1 + exp(l)
    return (1.0 - drop) * (1.0 + torch.exp(p_logit))


def concrete_dropout(
    input: Tensor,
    p_logit: Tensor,
    temperature: float = 0.1,
    training: bool = True,
    shared_dims: int | Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Concrete dropout: :func:`shared_dropout` with a relaxed mask and a learned rate.

    In training, with :math:`m` drawn by :func:`concrete_mask` with size 1 along each dim of
    ``shared_dims`` and broadcast along them,

    .. math::
        y = x \odot m, \qquad m = \frac{1 - z}{1 - p}, \quad
        z = \sigma\!\Bigl(\tfrac{\ell + \log u - \log(1 - u)}{t}\Bigr), \quad p = \sigma(\ell),

    so gradients reach the logit :math:`\ell` of the drop rate. ``shared_dims=1`` on
    ``(N, L, C)`` gives concrete locked dropout (one relaxed mask per sample and feature,
    fixed over time). With ``training=False`` the input is returned unchanged. A fresh mask
    is drawn at every call. Add :func:`concrete_dropout_regularizer` to the loss, or the rate
    only goes down.

    Args:
        input: the tensor to drop entries of.
        p_logit: the logit of the drop rate, a tensor that broadcasts to the mask's shape:
            0-D for one rate, ``(C,)`` for one rate per feature of the last dim.
        temperature: :math:`t > 0`. Default: 0.1.
        training: apply dropout if True, return ``input`` if False. Default: True.
        shared_dims: dims along which the mask is shared (negative dims allowed). Default: ().
        generator: random generator to draw the mask from. Default: the global one.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.

    Raises:
        TypeError: if ``input`` or ``p_logit`` is not a floating-point Tensor, or
            ``shared_dims`` has the wrong type.
        ValueError: if ``temperature`` is not > 0, ``shared_dims`` has out-of-range or
            repeated dims, or ``p_logit`` does not broadcast to the mask.

    Example:
        >>> import torch
        >>> from regdrop.functional import concrete_dropout
        >>> logit = torch.tensor(-1.0, requires_grad=True)
        >>> x = torch.ones(4, 10, 6)  # (N, L, C)
        >>> y = concrete_dropout(x, logit, shared_dims=1, generator=torch.Generator().manual_seed(0))
        >>> bool((y == y[:, :1]).all())  # one mask per sample and feature for all steps
        True
        >>> y.sum().backward(); logit.grad is not None
        True
        >>> concrete_dropout(x, logit, training=False) is x
        True
    """
    check_tensor(input, "concrete_dropout")
    p_logit = _check_logit(p_logit, "concrete_dropout")
    temperature = check_temperature(temperature)
    dims = check_shared_dims(shared_dims, input.dim())
    shape = [1 if d in dims else n for d, n in enumerate(input.shape)]
    try:
        torch.broadcast_shapes(tuple(p_logit.shape), tuple(shape))
    except RuntimeError:
        raise ValueError(
            f"concrete_dropout: p_logit of shape {tuple(p_logit.shape)} does not broadcast to the mask of "
            f"shape {tuple(shape)} (the {shape_str(input)} with shared_dims={dims} set to 1)"
        ) from None
    if not training:
        return input
    mask = concrete_mask(shape, p_logit.to(input.dtype), temperature, generator)
    return input * mask


def concrete_dropout_regularizer(
    weight: Tensor | None,
    p: Tensor,
    input_dim: int,
    weight_regularizer: float,
    dropout_regularizer: float,
) -> Tensor:
    r"""The regularizer of concrete dropout (Gal, Hron & Kendall 2017, eq. 3 with their scaling).

    For a dropout with rate :math:`p` on the :math:`K` inputs of a layer with weight :math:`W`,

    .. math::
        R = \lambda_w \frac{\lVert W \rVert^2}{1 - p}
            + \lambda_p K \bigl(p \log p + (1 - p) \log (1 - p)\bigr),

    the second term being :math:`-\lambda_p K \, \mathcal{H}(p)`: minimizing :math:`R` raises the
    entropy of the mask and so pushes :math:`p` towards 0.5, against the data term, which
    pushes it down. With one rate per input unit (``p`` of shape ``(K,)``), the terms are
    taken per unit: :math:`\sum_k \lambda_w \lVert W_{:,k} \rVert^2 / (1 - p_k) - \lambda_p
    \mathcal{H}(p_k)`, with :math:`W` in PyTorch's ``(out_features, in_features)`` layout.

    Scaling (the paper's): for a training set of :math:`N` samples and a prior length scale
    :math:`l`, :math:`\lambda_w = l^2 / N` and :math:`\lambda_p = 2 / N` (times the model
    precision :math:`\tau` for regression; 1 is common). The loss it is added to is the mean
    over the batch, as usual. With ``weight=None`` the weight term is left out (leave the
    weights to ``weight_decay``).

    Args:
        weight: :math:`W`, the weight of the layer the dropout feeds, or ``None``.
        p: the drop rate, a 0-D tensor or one entry per input unit, in (0, 1).
        input_dim: :math:`K`, the number of units one rate drops (for a 0-D ``p``); must be
            ``p.numel()`` when ``p`` has one entry per unit.
        weight_regularizer: :math:`\lambda_w \ge 0`.
        dropout_regularizer: :math:`\lambda_p \ge 0`.

    Returns:
        :math:`R`, a 0-D tensor, differentiable in ``p`` (and ``weight``).

    Raises:
        TypeError: if ``p`` is not a floating-point Tensor.
        ValueError: if ``input_dim`` is not >= 1 or does not match a per-unit ``p``, a
            regularizer is negative, or ``weight``'s shape does not fit a per-unit ``p``.

    Example:
        >>> import torch
        >>> from regdrop.functional import concrete_dropout_regularizer
        >>> p = torch.tensor([0.1, 0.5])
        >>> r = concrete_dropout_regularizer(None, p, 2, 0.0, 1.0)
        >>> torch.allclose(r, (p * p.log() + (1 - p) * (1 - p).log()).sum())
        True
    """
    if not isinstance(p, Tensor) or not p.is_floating_point():
        raise TypeError(f"p must be a floating-point Tensor, got {type(p).__name__}")
    input_dim = check_positive_int("input_dim", input_dim)
    weight_regularizer = check_nonnegative("weight_regularizer", weight_regularizer)
    dropout_regularizer = check_nonnegative("dropout_regularizer", dropout_regularizer)
    per_unit = p.dim() > 0 and p.numel() > 1
    if per_unit and p.numel() != input_dim:
        raise ValueError(f"input_dim must equal the number of per-unit rates {p.numel()}, got {input_dim}")
    p = p.clamp(_EPS, 1.0 - _EPS)
    neg_entropy = p * torch.log(p) + (1.0 - p) * torch.log1p(-p)
    total = dropout_regularizer * (neg_entropy.sum() if per_unit else input_dim * neg_entropy.sum())
    if weight is not None and weight_regularizer > 0.0:
        if per_unit:
            if weight.dim() < 2 or weight.shape[1] != input_dim:
                raise ValueError(
                    f"weight must be (out_features, {input_dim}, ...) for {input_dim} per-unit rates, "
                    f"got shape {tuple(weight.shape)}"
                )
            sq = weight.pow(2).transpose(0, 1).reshape(input_dim, -1).sum(1)
            total = total + weight_regularizer * (sq / (1.0 - p.reshape(-1))).sum()
        else:
            total = total + weight_regularizer * weight.pow(2).sum() / (1.0 - p.reshape(()))
    return total
