"""Dropout with a mask broadcast over chosen dimensions, and the ops built on it.

Locked (variational) dropout, spatial (channel) dropout and alpha dropout are one operation
with different *shared dims*: the mask has size 1 along those dims, so one Bernoulli draw
decides a whole time series, a whole feature map, or a whole row.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from regdrop.functional._validation import check_rate, check_shared_dims, check_tensor, shape_str

__all__ = [
    "bernoulli_mask",
    "dropout_mask",
    "shared_dropout",
    "locked_dropout",
    "spatial_dropout",
    "alpha_dropout",
]

# SELU's constants (Klambauer et al. 2017); a dropped SELU unit is set to its negative
# saturation value -scale * alpha instead of 0, so that the affine correction can restore
# mean 0 and variance 1.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ALPHA_PRIME = -_SELU_SCALE * _SELU_ALPHA

_PACKED_HINT = "; use locked_dropout (LockedDropout) for packed sequences"


def _check_shape(who: str, shape: object) -> tuple[int, ...]:
    """``shape`` as a tuple of ints >= 0 (a ``torch.Size`` or a sequence of ints)."""
    if (
        isinstance(shape, (str, bytes))
        or not isinstance(shape, Sequence)
        or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) for n in shape)
    ):
        raise TypeError(f"{who}: shape must be a sequence of ints >= 0, got {type(shape).__name__} {shape!r}")
    if any(n < 0 for n in shape):
        raise ValueError(f"{who}: shape must hold sizes >= 0, got {tuple(int(n) for n in shape)}")
    return tuple(int(n) for n in shape)


def _keep_mask(
    shape: Sequence[int],
    keep: float,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
    generator: torch.Generator | None,
) -> Tensor:
    """A {0, 1} tensor whose entries are 1 with probability ``keep``, independently.

    Drawn as ``rand < keep`` on float32 draws (``keep`` to 2^-24): on the 2-core AMD EPYC build
    machine that, with the cast, took 40% of a float ``bernoulli_`` for a (2048, 512) mask
    (the W_hh of an LSTM with 512 units, redrawn by weight dropout every step) and 80% at
    (256, 64)."""
    draws = torch.rand(tuple(shape), device=device, generator=generator)
    return (draws < keep).to(dtype if dtype is not None else torch.get_default_dtype())


def bernoulli_mask(
    shape: Sequence[int],
    p: float,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Draw an inverted-dropout mask: each entry is 0 with probability ``p``, else ``1 / (1 - p)``.

    .. math::
        m_i = \frac{b_i}{1 - p}, \qquad b_i \sim \mathrm{Bernoulli}(1 - p) \text{ i.i.d.},
        \qquad \mathbb{E}[m_i] = 1.

    With ``p == 1`` every entry is 0 (no division by zero).

    Args:
        shape: the mask's shape.
        p: probability of an entry being zero, in [0, 1].
        dtype: the mask's dtype (default: ``torch.get_default_dtype()``); use the dtype of
            the tensor the mask multiplies.
        device: the mask's device.
        generator: random generator to draw from (default: the global one of ``device``).

    Shape:
        - Output: ``shape``.

    Raises:
        TypeError: if ``p`` is not a real number, ``shape`` is not a sequence of ints, or
            ``dtype`` is not a floating-point dtype.
        ValueError: if ``p`` is outside [0, 1] or a size in ``shape`` is negative.

    Example:
        >>> import torch
        >>> from regdrop.functional import bernoulli_mask
        >>> m = bernoulli_mask((4, 8), p=0.5, generator=torch.Generator().manual_seed(0))
        >>> sorted(set(m.flatten().tolist()))
        [0.0, 2.0]
        >>> bernoulli_mask((2, 2), p=1.0)
        tensor([[0., 0.],
                [0., 0.]])
    """
    p = check_rate("p", p)
    shape = _check_shape("bernoulli_mask", shape)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(
            f"bernoulli_mask: dtype must be a floating-point torch.dtype (the dtype of the tensor the "
            f"mask multiplies), got {dtype!r}"
        )
    if p == 1.0:
        return torch.zeros(shape, dtype=dtype, device=device)
    mask = _keep_mask(shape, 1.0 - p, dtype, device, generator)
    if p > 0.0:
        mask.div_(1.0 - p)
    return mask


def dropout_mask(
    input: Tensor,
    p: float = 0.5,
    shared_dims: int | Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Draw the mask :func:`shared_dropout` multiplies ``input`` by.

    The mask has ``input``'s number of dims, size 1 along each dim of ``shared_dims`` and
    ``input``'s size along the others, and ``input``'s dtype and device; its entries are 0
    with probability ``p`` and ``1 / (1 - p)`` otherwise (see :func:`bernoulli_mask`).

    Args:
        input: the tensor the mask is meant for (only its shape, dtype and device are used).
        p: probability of an entry being zero, in [0, 1]. Default: 0.5.
        shared_dims: dims along which one draw is shared (negative dims allowed). Default: ().
        generator: random generator to draw from. Default: the global one.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: same number of dims, size 1 along ``shared_dims``.

    Raises:
        TypeError: if ``input`` is not a floating-point tensor or ``p`` is not a real number.
        ValueError: if ``p`` is outside [0, 1], or ``shared_dims`` has out-of-range or repeated dims.

    Example:
        >>> import torch
        >>> from regdrop.functional import dropout_mask
        >>> dropout_mask(torch.zeros(8, 50, 16), p=0.3, shared_dims=1).shape
        torch.Size([8, 1, 16])
    """
    check_tensor(input, "dropout_mask")
    p = check_rate("p", p)
    dims = check_shared_dims(shared_dims, input.dim(), "dropout_mask")
    shape = [1 if d in dims else n for d, n in enumerate(input.shape)]
    return bernoulli_mask(shape, p, dtype=input.dtype, device=input.device, generator=generator)


def shared_dropout(
    input: Tensor,
    p: float = 0.5,
    shared_dims: int | Sequence[int] = (),
    training: bool = True,
    inplace: bool = False,
    generator: torch.Generator | None = None,
    *,
    who: str = "shared_dropout",
) -> Tensor:
    r"""Dropout whose mask is shared along ``shared_dims``: the primitive of the dropout family.

    One Bernoulli mask is drawn with size 1 along each dim of ``shared_dims`` and broadcast:

    .. math::
        y = x \odot m, \qquad m_{j} = \frac{b_{j}}{1 - p}, \quad b_{j} \sim \mathrm{Bernoulli}(1 - p),

    where :math:`j` runs over the indices of the dims *not* in ``shared_dims``. Every entry
    keeps its expectation, :math:`\mathbb{E}[y] = x`. With ``p == 1`` the output is zeros
    (not NaN); with ``p == 0`` or ``training=False`` the input is returned unchanged.
    A fresh mask is drawn at every call.

    ``shared_dims=()`` is ordinary dropout; for an ``(N, L, C)`` sequence, ``shared_dims=1``
    is locked dropout (:func:`locked_dropout`); for ``(N, C, H, W)``, ``shared_dims=(2, 3)``
    is spatial dropout (:func:`spatial_dropout`).

    Args:
        input: the tensor to drop entries of.
        p: probability of an entry (or of a whole slice along ``shared_dims``) being zeroed,
            in [0, 1]. Default: 0.5.
        shared_dims: an int or a sequence of ints, the dims along which the mask is shared;
            negative dims count from the end. Default: () (an independent draw per entry).
        training: apply dropout if True, return ``input`` if False. Default: True.
        inplace: multiply ``input`` in place. Default: False.
        generator: random generator to draw the mask from. Default: the global one.
        who: the name that prefixes the errors about ``input`` (a module passes its class
            name). Default: the function's name.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.

    Raises:
        TypeError: if ``input`` is not a floating-point Tensor (a ``PackedSequence`` is
            refused: use :func:`locked_dropout`), or ``p`` or ``shared_dims`` has the wrong type.
        ValueError: if ``p`` is outside [0, 1], or ``shared_dims`` has out-of-range or repeated dims.

    Example:
        >>> import torch
        >>> from regdrop.functional import shared_dropout
        >>> x = torch.ones(2, 5, 3)  # (N, L, C)
        >>> y = shared_dropout(x, p=0.5, shared_dims=1, generator=torch.Generator().manual_seed(0))
        >>> bool((y == y[:, :1]).all())  # the same mask at every time step
        True
        >>> sorted(set(y.flatten().tolist()))
        [0.0, 2.0]
    """
    check_tensor(input, who, hint=_PACKED_HINT)
    p = check_rate("p", p)
    dims = check_shared_dims(shared_dims, input.dim(), who)
    if not training or p == 0.0:
        return input
    shape = [1 if d in dims else n for d, n in enumerate(input.shape)]
    mask = bernoulli_mask(shape, p, dtype=input.dtype, device=input.device, generator=generator)
    return input.mul_(mask) if inplace else input * mask


def _packed_locked_dropout(
    input: PackedSequence, p: float, generator: torch.Generator | None, who: str
) -> PackedSequence:
    data, batch_sizes = input.data, input.batch_sizes
    check_tensor(data, who, name="a PackedSequence's data")
    if data.dim() < 2:
        raise ValueError(
            f"{who}: a PackedSequence's data must be at least 2-D (sum of lengths, C), got {shape_str(data)}"
        )
    batch = int(batch_sizes[0]) if batch_sizes.numel() else 0
    # One mask row per sample, in the caller's (unsorted) order: shared_dropout of ones draws
    # exactly what the padded tensor's (N, 1, C) mask draws, so packed and padded inputs get
    # the same masks under one seed.
    mask = shared_dropout(data.new_ones((batch, *data.shape[1:])), p, generator=generator, who=who)
    return input._replace(data=data * mask[_packed_row_samples(input)])


def _packed_row_samples(input: PackedSequence) -> Tensor:
    """For each row of a ``PackedSequence``'s data, the sample it belongs to, in the caller's order.

    Indexing a per-sample tensor (one row per sample, in the order of the sequences before
    packing) with it gives one row per packed row: how a mask drawn per sample and feature
    is applied to packed data without padding.

    Example:
        >>> from torch.nn.utils.rnn import pack_sequence
        >>> packed = pack_sequence([torch.ones(1, 2), torch.ones(3, 2)], enforce_sorted=False)
        >>> _packed_row_samples(packed).tolist()  # steps 0, 0, 1, 2: sample 1 is the longer
        [1, 0, 1, 1]
    """
    position = _row_positions(input.batch_sizes, input.data.device)
    if input.sorted_indices is not None:
        position = input.sorted_indices[position]
    return position


def _row_positions(batch_sizes: Tensor | Sequence[int], device: torch.device) -> Tensor:
    """For each packed time-major row, its position in its step's (sorted) batch: row
    ``start(t) + n`` is sample ``n``. The compiled loop's rows are laid out this way too."""
    sizes = torch.as_tensor(batch_sizes, dtype=torch.long)
    starts = torch.cumsum(sizes, 0) - sizes
    position = torch.arange(int(sizes.sum())) - torch.repeat_interleave(starts, sizes)
    return position.to(device)


def locked_dropout(
    input: Tensor | PackedSequence,
    p: float = 0.5,
    batch_first: bool = False,
    training: bool = True,
    generator: torch.Generator | None = None,
    *,
    who: str = "locked_dropout",
) -> Tensor | PackedSequence:
    r"""Locked (variational) dropout of a sequence: one mask per sample and feature, fixed over time.

    Gal & Ghahramani (2016): the same features of a sample are dropped at every time step,

    .. math::
        y_{t,n,c} = x_{t,n,c} \, m_{n,c}, \qquad m_{n,c} = \frac{b_{n,c}}{1 - p},
        \quad b_{n,c} \sim \mathrm{Bernoulli}(1 - p),

    unlike :func:`torch.nn.functional.dropout`, whose mask changes at every step. It is
    :func:`shared_dropout` with the time dim shared. With ``p == 1`` the output is zeros;
    with ``p == 0`` or ``training=False`` the input is returned unchanged.

    A ``PackedSequence`` is handled without padding: each sample keeps one mask for all of
    its time steps, and under the same seed it gets the mask it would get as row ``n`` of
    the padded tensor. The result has the input's ``batch_sizes``, ``sorted_indices`` and
    ``unsorted_indices``.

    Args:
        input: a tensor ``(L, N, C)`` (``(N, L, C)`` if ``batch_first``), an unbatched
            sequence ``(L, C)``, or a ``PackedSequence``.
        p: probability of a feature of a sample being zeroed, in [0, 1]. Default: 0.5.
        batch_first: whether a 3-D tensor is ``(N, L, C)``, like ``torch.nn.LSTM``; ignored
            for unbatched tensors and ``PackedSequence``. Default: False.
        training: apply dropout if True, return ``input`` if False. Default: True.
        generator: random generator to draw the mask from. Default: the global one.
        who: the name that prefixes the errors about ``input`` (a module passes its class
            name). Default: the function's name.

    Shape:
        - Input: :math:`(L, N, C)` if ``batch_first=False``, :math:`(N, L, C)` if
          ``batch_first=True``, :math:`(L, C)` unbatched, or a ``PackedSequence`` whose data
          is :math:`(\sum L_n, C)`; :math:`N` batch, :math:`L` time, :math:`C` features.
        - Output: same as the input.

    Raises:
        TypeError: if ``input`` is neither a floating-point Tensor nor a ``PackedSequence``,
            or ``p`` is not a real number.
        ValueError: if ``p`` is outside [0, 1], or a tensor ``input`` is not 2-D or 3-D.

    Example:
        >>> import torch
        >>> from regdrop.functional import locked_dropout
        >>> x = torch.ones(4, 10, 6)  # (N, L, C)
        >>> y = locked_dropout(x, p=0.5, batch_first=True, generator=torch.Generator().manual_seed(0))
        >>> bool((y == y[:, :1]).all())  # each sample keeps its mask over all 10 steps
        True
        >>> locked_dropout(x, p=0.5, training=False) is x
        True
    """
    p = check_rate("p", p)
    if isinstance(input, PackedSequence):
        if not training or p == 0.0:
            return input
        return _packed_locked_dropout(input, p, generator, who)
    check_tensor(input, who)
    if input.dim() == 3:
        time_dim = 1 if batch_first else 0
    elif input.dim() == 2:
        time_dim = 0
    else:
        layout = "(N, L, C) with batch_first=True" if batch_first else "(L, N, C) with batch_first=False"
        raise ValueError(f"{who}: input must be 3-D {layout} or 2-D (L, C) unbatched, got a {shape_str(input)}")
    return shared_dropout(input, p, shared_dims=time_dim, training=training, generator=generator, who=who)


def spatial_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    channels_last: bool = False,
    generator: torch.Generator | None = None,
    *,
    who: str = "spatial_dropout",
) -> Tensor:
    r"""Spatial (channel) dropout: zero whole channels of each sample, over all positions.

    Tompson et al. (2015); Keras ``SpatialDropout1D/2D/3D``. For channels-first input
    :math:`(N, C, *S)`, with :math:`S` the spatial (or time) dims,

    .. math::
        y_{n,c,s} = x_{n,c,s} \, m_{n,c}, \qquad m_{n,c} = \frac{b_{n,c}}{1 - p},
        \quad b_{n,c} \sim \mathrm{Bernoulli}(1 - p),

    i.e. :func:`shared_dropout` with every spatial dim shared. With ``channels_last=True``
    the channels are the last dim, :math:`(N, *S, C)`; on a sequence ``(N, L, C)`` this is
    Keras ``SpatialDropout1D`` and equals :func:`locked_dropout` with ``batch_first=True``.
    With ``p == 1`` the output is zeros; with ``p == 0`` or ``training=False`` the input is
    returned unchanged.

    Args:
        input: a batch with at least one spatial dim.
        p: probability of a channel of a sample being zeroed, in [0, 1]. Default: 0.5.
        training: apply dropout if True, return ``input`` if False. Default: True.
        channels_last: whether the channels are the last dim instead of dim 1. Default: False.
        generator: random generator to draw the mask from. Default: the global one.
        who: the name that prefixes the errors about ``input`` (a module passes its class
            name). Default: the function's name.

    Shape:
        - Input: :math:`(N, C, *S)`, or :math:`(N, *S, C)` if ``channels_last``; at least 3-D.
        - Output: same shape as the input.

    Raises:
        TypeError: if ``input`` is not a floating-point Tensor, or ``p`` is not a real number.
        ValueError: if ``p`` is outside [0, 1], or ``input`` has fewer than 3 dims.

    Example:
        >>> import torch
        >>> from regdrop.functional import spatial_dropout
        >>> x = torch.ones(2, 8, 5, 5)  # (N, C, H, W)
        >>> y = spatial_dropout(x, p=0.5, generator=torch.Generator().manual_seed(0))
        >>> y.amax(dim=(2, 3)).eq(y.amin(dim=(2, 3))).all().item()  # each map all kept or all zero
        True
    """
    check_tensor(input, who, hint=_PACKED_HINT)
    p = check_rate("p", p)
    if input.dim() < 3:
        layout = "(N, *spatial, C)" if channels_last else "(N, C, *spatial)"
        raise ValueError(
            f"{who}: input must have at least 3 dims {layout} with channels_last={channels_last}, "
            f"got a {shape_str(input)}"
        )
    spatial = range(1, input.dim() - 1) if channels_last else range(2, input.dim())
    return shared_dropout(input, p, shared_dims=tuple(spatial), training=training, generator=generator, who=who)


def alpha_dropout(
    input: Tensor,
    p: float = 0.5,
    shared_dims: int | Sequence[int] = (),
    training: bool = True,
    generator: torch.Generator | None = None,
    *,
    who: str = "alpha_dropout",
) -> Tensor:
    r"""Alpha dropout (Klambauer et al. 2017), with a mask that may be shared along ``shared_dims``.

    Meant for SELU networks: a dropped unit is set to SELU's negative saturation value
    :math:`\alpha' = -\lambda\alpha \approx -1.7581` rather than 0, and an affine map restores
    the mean and variance. With keep probability :math:`q = 1 - p`,

    .. math::
        y = a\,\bigl(x\,b + \alpha'(1 - b)\bigr) + c, \qquad b \sim \mathrm{Bernoulli}(q),

        a = \bigl(q + \alpha'^2 q (1 - q)\bigr)^{-1/2}, \qquad c = -a (1 - q) \alpha',

    so an input with mean 0 and variance 1 gives an output with mean 0 and variance 1. The
    mask :math:`b` is :func:`shared_dropout`'s (computed as
    :math:`y = a q \,\mathrm{shared\_dropout}(x - \alpha') + a\alpha' + c`), drawn with size 1
    along each dim of ``shared_dims``: e.g. ``shared_dims=1`` on ``(N, L, C)`` keeps it fixed
    over time, ``shared_dims=(2, 3)`` on ``(N, C, H, W)`` drops whole channels (PyTorch's
    ``feature_alpha_dropout``). With ``p == 1`` the output is zeros (the limit of the mean,
    as in PyTorch); with ``p == 0`` or ``training=False`` the input is returned unchanged.

    Args:
        input: the tensor to drop entries of.
        p: probability of an entry (or of a slice along ``shared_dims``) being dropped, in [0, 1].
            Default: 0.5.
        shared_dims: an int or a sequence of ints, the dims along which the mask is shared.
            Default: ().
        training: apply dropout if True, return ``input`` if False. Default: True.
        generator: random generator to draw the mask from. Default: the global one.
        who: the name that prefixes the errors about ``input`` (a module passes its class
            name). Default: the function's name.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.

    Raises:
        TypeError: if ``input`` is not a floating-point Tensor, or ``p`` or ``shared_dims`` has
            the wrong type.
        ValueError: if ``p`` is outside [0, 1], or ``shared_dims`` has out-of-range or repeated dims.

    Example:
        >>> import torch
        >>> from regdrop.functional import alpha_dropout
        >>> x = torch.randn(1000, 100, generator=torch.Generator().manual_seed(0))
        >>> y = alpha_dropout(x, p=0.2, generator=torch.Generator().manual_seed(1))
        >>> abs(y.mean().item()) < 0.02, round(y.var().item(), 1)  # still mean 0, variance 1
        (True, 1.0)
    """
    check_tensor(input, who, hint="; with shared_dims=() apply it to the PackedSequence's .data")
    p = check_rate("p", p)
    dims = check_shared_dims(shared_dims, input.dim(), who)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * torch.zeros((), dtype=input.dtype, device=input.device)
    q = 1.0 - p
    a = 1.0 / math.sqrt(q + _ALPHA_PRIME**2 * q * p)
    c = -a * p * _ALPHA_PRIME
    # x b + alpha' (1 - b) = (x - alpha') b + alpha', and (x - alpha') b = q shared_dropout(x - alpha'),
    # so the mask is shared_dropout's, with its sharing and its generator.
    dropped = shared_dropout(input - _ALPHA_PRIME, p, dims, training=True, generator=generator, who=who)
    return dropped.mul_(a * q).add_(a * _ALPHA_PRIME + c)
