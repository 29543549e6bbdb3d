r"""Weight constraints, applied in place: the projections of Keras's ``MaxNorm``, ``UnitNorm``,
``NonNeg`` and ``MinMaxNorm`` in PyTorch's weight layout.

A weight is read as a stack of *units* along ``dim`` (dimension 0 by default: the output
units of ``Linear``, ``Conv*d`` and the gate rows of ``LSTM``/``GRU`` weights), and each unit's
norm is taken over every other dimension. For a ``Linear`` weight of shape
``(out_features, in_features)`` this is the norm of each row, the same vectors that Keras
constrains with ``MaxNorm(axis=0)`` on its transposed ``(in, out)`` kernels. A 1-D weight (a
bias, a norm layer's scale) is a single unit: its norm is taken over the whole vector, as
Keras does for ``bias_constraint``.

Every function rescales a unit only when its norm is outside the allowed range; the other
units are left bit for bit unchanged (as :func:`torch.renorm` does). Keras instead multiplies
every unit by :math:`\text{desired} / (\epsilon + \lVert w \rVert)`, which also shrinks the units
inside the range by a factor :math:`1 - \epsilon / \lVert w \rVert`; here a rescaled unit is
multiplied by :math:`\text{desired} / \max(\lVert w \rVert, \epsilon)`, so it lands on the
bound up to rounding. Units whose norm is zero stay zero.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from regdrop.functional._validation import check_nonnegative, check_rate, check_tensor

__all__ = ["max_norm_", "unit_norm_", "non_neg_", "min_max_norm_"]

_EPS = 1e-7


def _check_weight(fn: str, weight: object, *, floating: bool = True) -> Tensor:
    return check_tensor(weight, fn, name="weight", floating=floating)


def _check_dim(fn: str, weight: Tensor, dim: object) -> int:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{fn}: dim must be an int, got {type(dim).__name__} {dim!r}")
    ndim, dim = max(weight.dim(), 1), int(dim)
    if not -ndim <= dim < ndim:
        raise ValueError(
            f"{fn}: dim must be in [{-ndim}, {ndim - 1}] for a weight of shape {tuple(weight.shape)}, got {dim}"
        )
    return dim % ndim


def _check_eps(eps: object) -> float:
    eps = check_nonnegative("eps", eps)
    if eps == 0.0:
        raise ValueError("eps must be a finite number > 0, got 0.0")
    return eps


def _unit_norms(weight: Tensor, dim: int) -> Tensor:
    """Norm of each unit along ``dim``, in float32 at least, shaped to broadcast against ``weight``."""
    if weight.dim() < 2:
        reduce_dims: tuple[int, ...] | None = None
    else:
        reduce_dims = tuple(d for d in range(weight.dim()) if d != dim)
    dtype = torch.promote_types(weight.dtype, torch.float32)
    norms = torch.linalg.vector_norm(weight, dim=reduce_dims, keepdim=True, dtype=dtype)
    return norms.reshape([1] * weight.dim()) if weight.dim() < 2 else norms


def _rescale_units_(weight: Tensor, dim: int, eps: float, desired_fn: Callable[[Tensor], Tensor]) -> Tensor:
    """Rescale each unit whose norm ``n`` differs from ``desired_fn(n)``; return which units changed (1-D bool)."""
    with torch.no_grad():
        norms = _unit_norms(weight, dim)
        desired = desired_fn(norms)
        changed = (desired != norms) & (norms > 0)
        scale = torch.where(changed, desired / norms.clamp_min(eps), torch.ones_like(norms))
        if norms.dtype == weight.dtype:
            weight.mul_(scale.to(weight.dtype))
        else:
            weight.copy_(_round_inside(weight.to(norms.dtype) * scale, weight.dtype, dim, desired, norms))
    return changed.reshape(-1)


def _round_inside(target: Tensor, dtype: torch.dtype, dim: int, desired: Tensor, norms: Tensor) -> Tensor:
    """Round the float32 projection ``target`` to ``dtype`` so that no unit ends on the wrong side of its bound.

    Rounding to nearest can push a unit's norm past the bound it was projected onto (bf16 keeps 8 bits:
    ``MaxNorm(0.8)`` would end at 0.802). A unit that was shrunk must not end above its desired norm and
    one that was grown not below it, so in such a unit every element that rounded outwards (inwards) is
    moved one step of ``dtype`` towards (away from) zero.
    """
    rounded = target.to(dtype)
    for attempt in range(2):  # the second pass only matters when every element of a unit was exactly representable
        new_norms = _unit_norms(rounded, dim)
        too_big = (desired < norms) & (new_norms > desired)
        too_small = (desired > norms) & (new_norms < desired)
        if not bool((too_big | too_small).any()):
            break
        magnitude, exact = rounded.abs().to(target.dtype), target.abs()
        first = attempt == 0
        inward = too_big & (magnitude > exact if first else magnitude > 0)
        outward = too_small & (magnitude < exact if first else target != 0)
        zero = torch.zeros_like(rounded)
        away = torch.where(target < 0, -torch.inf, torch.inf).to(dtype)
        rounded = torch.where(inward, torch.nextafter(rounded, zero), rounded)
        rounded = torch.where(outward, torch.nextafter(rounded, away), rounded)
    return rounded


def _max_norm_(weight: Tensor, max_value: float, dim: int, eps: float) -> Tensor:
    return _rescale_units_(weight, dim, eps, lambda n: n.clamp(max=max_value))


def _unit_norm_(weight: Tensor, dim: int, eps: float) -> Tensor:
    return _rescale_units_(weight, dim, eps, torch.ones_like)


def _min_max_norm_(weight: Tensor, min_value: float, max_value: float, rate: float, dim: int, eps: float) -> Tensor:
    def desired(n: Tensor) -> Tensor:
        clipped = n.clamp(min=min_value, max=max_value)
        # rate == 1 must give exactly the clipped norm, rate == 0 exactly the old one
        return clipped if rate == 1.0 else torch.where(clipped == n, n, rate * clipped + (1.0 - rate) * n)

    return _rescale_units_(weight, dim, eps, desired)


def _non_neg_(weight: Tensor, dim: int) -> Tensor:
    with torch.no_grad():
        negative = weight < 0
        if weight.dim() < 2:
            changed = negative.any().reshape(1)
        else:
            changed = negative.movedim(dim, 0).reshape(weight.shape[dim], -1).any(dim=1)
        weight.clamp_(min=0)
    return changed


def max_norm_(weight: Tensor, max_value: float = 2.0, *, dim: int = 0, eps: float = _EPS) -> Tensor:
    r"""Scale down, in place, every unit of ``weight`` whose norm exceeds ``max_value``.

    .. math::
        w_i \leftarrow w_i \cdot \frac{\min(\lVert w_i \rVert_2, c)}{\max(\lVert w_i \rVert_2, \epsilon)}
        \quad \text{for the units with } \lVert w_i \rVert_2 > c

    where :math:`w_i` is the slice ``weight.select(dim, i)`` and :math:`c` is ``max_value``
    (Srivastava et al. 2014, Keras ``MaxNorm``). Units within the bound are not touched.

    Args:
        weight: the tensor to constrain, changed in place (autograd is not recorded).
        max_value: the largest norm a unit may have. Default: 2.0.
        dim: the dimension that indexes the units; the norm is taken over all the others.
            Default: 0 (output units in PyTorch's layout). Ignored for 0-D and 1-D weights,
            which are one unit.
        eps: smallest divisor, guards units of (near) zero norm. Default: 1e-7.

    Returns:
        ``weight`` itself.

    Shape:
        - weight: :math:`(U, *)` with the units along ``dim``, any floating point dtype.

    Raises:
        TypeError: if ``weight`` is not a floating point tensor or ``dim`` is not an int.
        ValueError: if ``max_value`` is negative or not finite, ``dim`` is out of range,
            or ``eps`` is not > 0.

    Example:
        >>> w = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
        >>> max_norm_(w, 1.0)
        tensor([[0.6000, 0.8000],
                [0.3000, 0.4000]])
    """
    _check_weight("max_norm_", weight)
    max_value = check_nonnegative("max_value", max_value)
    _max_norm_(weight, max_value, _check_dim("max_norm_", weight, dim), _check_eps(eps))
    return weight


def unit_norm_(weight: Tensor, *, dim: int = 0, eps: float = _EPS) -> Tensor:
    r"""Rescale, in place, every unit of ``weight`` to norm 1.

    .. math::
        w_i \leftarrow \frac{w_i}{\max(\lVert w_i \rVert_2, \epsilon)}

    (Keras ``UnitNorm``). A unit of norm zero stays zero.

    Args:
        weight: the tensor to constrain, changed in place (autograd is not recorded).
        dim: the dimension that indexes the units; the norm is taken over all the others.
            Default: 0. Ignored for 0-D and 1-D weights, which are one unit.
        eps: smallest divisor. Default: 1e-7.

    Returns:
        ``weight`` itself.

    Shape:
        - weight: :math:`(U, *)` with the units along ``dim``, any floating point dtype.

    Raises:
        TypeError: if ``weight`` is not a floating point tensor or ``dim`` is not an int.
        ValueError: if ``dim`` is out of range or ``eps`` is not > 0.

    Example:
        >>> unit_norm_(torch.tensor([[3.0, 4.0], [0.0, 0.5]]))
        tensor([[0.6000, 0.8000],
                [0.0000, 1.0000]])
    """
    _check_weight("unit_norm_", weight)
    _unit_norm_(weight, _check_dim("unit_norm_", weight, dim), _check_eps(eps))
    return weight


def non_neg_(weight: Tensor, *, dim: int = 0) -> Tensor:
    r"""Set, in place, the negative entries of ``weight`` to zero.

    .. math::
        w \leftarrow \max(w, 0)

    (Keras ``NonNeg``). ``dim`` only says what a unit is when counting how many units changed
    (for the callbacks' statistics); the result does not depend on it.

    Args:
        weight: the tensor to constrain, changed in place (autograd is not recorded).
        dim: the dimension that indexes the units. Default: 0.

    Returns:
        ``weight`` itself.

    Shape:
        - weight: any shape, any real dtype.

    Raises:
        TypeError: if ``weight`` is not a real tensor or ``dim`` is not an int.
        ValueError: if ``dim`` is out of range.

    Example:
        >>> non_neg_(torch.tensor([[-1.0, 2.0], [0.5, -3.0]]))
        tensor([[0.0000, 2.0000],
                [0.5000, 0.0000]])
    """
    _check_weight("non_neg_", weight, floating=False)
    if weight.is_complex():
        raise TypeError(f"non_neg_: weight must be a real tensor, got dtype {weight.dtype}")
    _non_neg_(weight, _check_dim("non_neg_", weight, dim))
    return weight


def min_max_norm_(
    weight: Tensor,
    min_value: float = 0.0,
    max_value: float = 1.0,
    rate: float = 1.0,
    *,
    dim: int = 0,
    eps: float = _EPS,
) -> Tensor:
    r"""Move, in place, the norm of every unit of ``weight`` into ``[min_value, max_value]``.

    .. math::
        n_i = \lVert w_i \rVert_2, \qquad
        w_i \leftarrow w_i \cdot \frac{r \cdot \operatorname{clip}(n_i, a, b) + (1 - r)\, n_i}{\max(n_i, \epsilon)}
        \quad \text{for the units with } n_i \notin [a, b]

    with :math:`a` = ``min_value``, :math:`b` = ``max_value`` and :math:`r` = ``rate``
    (Keras ``MinMaxNorm``): ``rate=1`` projects onto the interval, a smaller rate moves the
    norm only that fraction of the way, for a gentler constraint. A unit of norm zero stays zero.

    Args:
        weight: the tensor to constrain, changed in place (autograd is not recorded).
        min_value: smallest allowed norm. Default: 0.0.
        max_value: largest allowed norm. Default: 1.0.
        rate: fraction of the way to move a norm towards the interval, in [0, 1]. Default: 1.0.
        dim: the dimension that indexes the units; the norm is taken over all the others.
            Default: 0. Ignored for 0-D and 1-D weights, which are one unit.
        eps: smallest divisor. Default: 1e-7.

    Returns:
        ``weight`` itself.

    Shape:
        - weight: :math:`(U, *)` with the units along ``dim``, any floating point dtype.

    Raises:
        TypeError: if ``weight`` is not a floating point tensor or ``dim`` is not an int.
        ValueError: if a bound is negative or not finite, ``min_value > max_value``,
            ``rate`` is not in [0, 1], ``dim`` is out of range or ``eps`` is not > 0.

    Example:
        >>> w = torch.tensor([[3.0, 4.0], [0.06, 0.08], [0.6, 0.8]])
        >>> min_max_norm_(w, 0.5, 2.0)
        tensor([[1.2000, 1.6000],
                [0.3000, 0.4000],
                [0.6000, 0.8000]])
    """
    _check_weight("min_max_norm_", weight)
    min_value, max_value, rate = _check_min_max(min_value, max_value, rate)
    _min_max_norm_(weight, min_value, max_value, rate, _check_dim("min_max_norm_", weight, dim), _check_eps(eps))
    return weight


def _check_min_max(min_value: object, max_value: object, rate: object) -> tuple[float, float, float]:
    """Validate the arguments of :func:`min_max_norm_` and return them as floats.

    Example:
        >>> _check_min_max(2.0, 1.0, 1.0)
        Traceback (most recent call last):
        ...
        ValueError: min_value must be <= max_value, got min_value=2.0 and max_value=1.0
    """
    min_value = check_nonnegative("min_value", min_value)
    max_value = check_nonnegative("max_value", max_value)
    if min_value > max_value:
        raise ValueError(f"min_value must be <= max_value, got min_value={min_value} and max_value={max_value}")
    return min_value, max_value, check_rate("rate", rate)
