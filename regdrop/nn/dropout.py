"""Dropout modules with a shared mask: locked (variational), spatial, alpha and general shared dropout.

Each module holds its settings and calls :mod:`regdrop.functional.dropout` with ``self.training``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from regdrop.functional._validation import check_rate, check_shared_dims, shape_str
from regdrop.functional.dropout import alpha_dropout, locked_dropout, shared_dropout, spatial_dropout

__all__ = [
    "SharedDropout",
    "LockedDropout",
    "SpatialDropout1d",
    "SpatialDropout2d",
    "SpatialDropout3d",
    "AlphaDropout",
]


class SharedDropout(nn.Module):
    r"""Dropout whose mask is shared along ``shared_dims``.

    Holds ``p`` and ``shared_dims`` for :func:`regdrop.functional.shared_dropout`: in
    training,

    .. math::
        y = x \odot m, \qquad m_{j} = \frac{b_{j}}{1 - p}, \quad b_{j} \sim \mathrm{Bernoulli}(1 - p),

    with one draw per index :math:`j` of the dims not in ``shared_dims``, broadcast along
    the others. In ``eval()`` mode it is the identity. A fresh mask is drawn at every call.

    Args:
        p: probability of an entry (or a slice along ``shared_dims``) being zeroed, in [0, 1].
            A plain attribute, which may be changed between calls (e.g. by a dropout schedule).
            Default: 0.5.
        shared_dims: an int or a sequence of distinct ints, the dims of the input along which
            the mask is shared; negative dims count from the end. Default: () (plain dropout).

    Shape:
        - Input: :math:`(*)`, with more dims than the largest of ``shared_dims``.
        - Output: :math:`(*)`, same shape as the input.

    Raises:
        TypeError: if ``p`` is not a real number or ``shared_dims`` is not an int or a
            sequence of ints.
        ValueError: if ``p`` is outside [0, 1], ``shared_dims`` repeats a dim, or (in
            ``forward``) names a dim the input does not have.

    Example:
        >>> import torch
        >>> from regdrop.nn import SharedDropout
        >>> drop = SharedDropout(0.3, shared_dims=(1, 2))
        >>> drop
        SharedDropout(p=0.3, shared_dims=(1, 2))
        >>> y = drop(torch.ones(16, 4, 4, 8))
        >>> bool((y == y[:, :1, :1]).all())
        True
    """

    rate_names: tuple[str, ...] = ("p",)
    _op: Callable[..., Tensor] = staticmethod(shared_dropout)  # AlphaDropout swaps in its own op

    def __init__(self, p: float = 0.5, shared_dims: int | Sequence[int] = ()) -> None:
        super().__init__()
        self.p = check_rate("p", p)
        self.shared_dims = check_shared_dims(shared_dims)

    def forward(self, input: Tensor) -> Tensor:
        return self._op(input, self.p, self.shared_dims, self.training, who=type(self).__name__)

    def extra_repr(self) -> str:
        return f"p={self.p}, shared_dims={self.shared_dims}"


class LockedDropout(nn.Module):
    r"""Locked (variational) dropout of a sequence: one mask per sample and feature, fixed over time.

    Gal & Ghahramani (2016). Holds the settings of :func:`regdrop.functional.locked_dropout`:
    in training,

    .. math::
        y_{t,n,c} = x_{t,n,c} \, m_{n,c}, \qquad m_{n,c} = \frac{b_{n,c}}{1 - p},
        \quad b_{n,c} \sim \mathrm{Bernoulli}(1 - p),

    the same features of a sample are dropped at every time step, whereas
    :class:`torch.nn.Dropout` on a sequence draws a new mask at every step. A fresh mask is
    drawn at every call. In ``eval()`` mode it is the identity. Put it on the input of a
    recurrent layer or between layers; ``batch_first`` follows the layer's convention.

    Args:
        p: probability of a feature of a sample being zeroed, in [0, 1]. A plain attribute,
            which may be changed between calls. Default: 0.5.
        batch_first: whether a 3-D input is ``(N, L, C)`` rather than ``(L, N, C)``. Ignored
            for unbatched input and ``PackedSequence``. Default: False.

    Shape:
        - Input: :math:`(L, N, C)` if ``batch_first=False``, :math:`(N, L, C)` if
          ``batch_first=True``, :math:`(L, C)` unbatched, or a ``PackedSequence``;
          :math:`N` batch, :math:`L` time, :math:`C` features.
        - Output: same as the input.

    Raises:
        TypeError: if ``p`` is not a real number, or the input is neither a floating-point
            Tensor nor a ``PackedSequence``.
        ValueError: if ``p`` is outside [0, 1], or a tensor input is not 2-D or 3-D.

    Example:
        >>> import torch
        >>> from regdrop.nn import LockedDropout
        >>> drop = LockedDropout(0.3, batch_first=True)
        >>> drop
        LockedDropout(p=0.3, batch_first=True)
        >>> y = drop(torch.ones(8, 20, 16))  # (N, L, C)
        >>> bool((y == y[:, :1]).all())  # one mask per sample and feature for all 20 steps
        True
        >>> torch.equal(drop.eval()(y), y)
        True
    """

    rate_names: tuple[str, ...] = ("p",)

    def __init__(self, p: float = 0.5, batch_first: bool = False) -> None:
        super().__init__()
        self.p = check_rate("p", p)
        self.batch_first = bool(batch_first)

    def forward(self, input: Tensor | PackedSequence) -> Tensor | PackedSequence:
        return locked_dropout(input, self.p, self.batch_first, self.training, who=type(self).__name__)

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_first={self.batch_first}"


class _SpatialDropoutNd(nn.Module):
    rate_names: tuple[str, ...] = ("p",)
    _spatial_ndim: int
    _layouts: tuple[str, str]  # channels first, channels last

    def __init__(self, p: float = 0.5, channels_last: bool = False) -> None:
        super().__init__()
        self.p = check_rate("p", p)
        self.channels_last = bool(channels_last)

    def forward(self, input: Tensor) -> Tensor:
        # The op takes any number of spatial dims and checks the type; the module is for exactly _spatial_ndim.
        if isinstance(input, Tensor) and input.dim() != self._spatial_ndim + 2:
            layout = self._layouts[self.channels_last]
            raise ValueError(
                f"{type(self).__name__}: input must be {self._spatial_ndim + 2}-D {layout} with "
                f"channels_last={self.channels_last}, got a {shape_str(input)}"
            )
        return spatial_dropout(input, self.p, self.training, self.channels_last, who=type(self).__name__)

    def extra_repr(self) -> str:
        return f"p={self.p}, channels_last={self.channels_last}"


class SpatialDropout1d(_SpatialDropoutNd):
    r"""Spatial dropout of sequences or 1-D signals: zero whole channels of a sample, at every step.

    Tompson et al. (2015). In training, with :math:`b_{n,c} \sim \mathrm{Bernoulli}(1 - p)`,

    .. math::
        y_{n,c,l} = x_{n,c,l} \, \frac{b_{n,c}}{1 - p},

    see :func:`regdrop.functional.spatial_dropout`. With ``channels_last=True`` the input is
    ``(N, L, C)`` and this is Keras ``SpatialDropout1D`` (and :class:`LockedDropout` with
    ``batch_first=True``); the default ``(N, C, L)`` is the layout of ``torch.nn.Conv1d``
    and ``torch.nn.Dropout1d``. A fresh mask is drawn at every call. In ``eval()`` mode it
    is the identity.

    Args:
        p: probability of a channel being zeroed, in [0, 1]. A plain attribute, which may be
            changed between calls. Default: 0.5.
        channels_last: whether the input is ``(N, L, C)`` rather than ``(N, C, L)``. Default: False.

    Shape:
        - Input: :math:`(N, C, L)`, or :math:`(N, L, C)` if ``channels_last``.
        - Output: same shape as the input.

    Raises:
        TypeError: if ``p`` is not a real number or the input is not a floating-point Tensor.
        ValueError: if ``p`` is outside [0, 1], or the input is not 3-D.

    Example:
        >>> import torch
        >>> from regdrop.nn import SpatialDropout1d
        >>> drop = SpatialDropout1d(0.2, channels_last=True)  # Keras SpatialDropout1D
        >>> drop
        SpatialDropout1d(p=0.2, channels_last=True)
        >>> y = drop(torch.ones(4, 30, 8))  # (N, L, C)
        >>> bool((y == y[:, :1, :]).all())
        True
    """

    _spatial_ndim = 1
    _layouts = ("(N, C, L)", "(N, L, C)")


class SpatialDropout2d(_SpatialDropoutNd):
    r"""Spatial dropout of images: zero whole feature maps of a sample.

    Tompson et al. (2015). In training, with :math:`b_{n,c} \sim \mathrm{Bernoulli}(1 - p)`,

    .. math::
        y_{n,c,h,w} = x_{n,c,h,w} \, \frac{b_{n,c}}{1 - p},

    see :func:`regdrop.functional.spatial_dropout`. Channels-first ``(N, C, H, W)`` by
    default, ``(N, H, W, C)`` with ``channels_last=True``. A fresh mask is drawn at every
    call. In ``eval()`` mode it is the identity.

    Args:
        p: probability of a channel being zeroed, in [0, 1]. A plain attribute. Default: 0.5.
        channels_last: whether the input is ``(N, H, W, C)``. Default: False.

    Shape:
        - Input: :math:`(N, C, H, W)`, or :math:`(N, H, W, C)` if ``channels_last``.
        - Output: same shape as the input.

    Raises:
        TypeError: if ``p`` is not a real number or the input is not a floating-point Tensor.
        ValueError: if ``p`` is outside [0, 1], or the input is not 4-D.

    Example:
        >>> import torch
        >>> from regdrop.nn import SpatialDropout2d
        >>> y = SpatialDropout2d(0.5)(torch.ones(2, 16, 7, 7))
        >>> bool((y == y[:, :, :1, :1]).all())  # each 7x7 map is kept or zeroed whole
        True
    """

    _spatial_ndim = 2
    _layouts = ("(N, C, H, W)", "(N, H, W, C)")


class SpatialDropout3d(_SpatialDropoutNd):
    r"""Spatial dropout of volumes: zero whole 3-D feature maps of a sample.

    Tompson et al. (2015). In training, with :math:`b_{n,c} \sim \mathrm{Bernoulli}(1 - p)`,

    .. math::
        y_{n,c,d,h,w} = x_{n,c,d,h,w} \, \frac{b_{n,c}}{1 - p},

    see :func:`regdrop.functional.spatial_dropout`. Channels-first ``(N, C, D, H, W)`` by
    default, ``(N, D, H, W, C)`` with ``channels_last=True``. A fresh mask is drawn at every
    call. In ``eval()`` mode it is the identity.

    Args:
        p: probability of a channel being zeroed, in [0, 1]. A plain attribute. Default: 0.5.
        channels_last: whether the input is ``(N, D, H, W, C)``. Default: False.

    Shape:
        - Input: :math:`(N, C, D, H, W)`, or :math:`(N, D, H, W, C)` if ``channels_last``.
        - Output: same shape as the input.

    Raises:
        TypeError: if ``p`` is not a real number or the input is not a floating-point Tensor.
        ValueError: if ``p`` is outside [0, 1], or the input is not 5-D.

    Example:
        >>> import torch
        >>> from regdrop.nn import SpatialDropout3d
        >>> y = SpatialDropout3d(0.5, channels_last=True)(torch.ones(2, 3, 4, 4, 6))
        >>> bool((y == y[:, :1, :1, :1, :]).all())
        True
    """

    _spatial_ndim = 3
    _layouts = ("(N, C, D, H, W)", "(N, D, H, W, C)")


class AlphaDropout(SharedDropout):
    r"""Alpha dropout for SELU networks, with a mask that may be shared along ``shared_dims``.

    Klambauer et al. (2017); holds the settings of :func:`regdrop.functional.alpha_dropout`.
    In training, with keep probability :math:`q = 1 - p` and
    :math:`\alpha' = -\lambda\alpha \approx -1.7581` (SELU's negative saturation value),

    .. math::
        y = a\,\bigl(x\,b + \alpha'(1 - b)\bigr) + c, \qquad b \sim \mathrm{Bernoulli}(q),

        a = \bigl(q + \alpha'^2 q (1 - q)\bigr)^{-1/2}, \qquad c = -a (1 - q) \alpha',

    which keeps mean 0 and variance 1 of SELU activations. Unlike
    :class:`torch.nn.AlphaDropout`, the mask :math:`b` can be shared along ``shared_dims``
    (e.g. ``shared_dims=1`` on ``(N, L, C)`` for a mask fixed over time). A fresh mask is
    drawn at every call. In ``eval()`` mode it is the identity.

    Args:
        p: probability of an entry (or a slice along ``shared_dims``) being dropped, in [0, 1].
            A plain attribute, which may be changed between calls. Default: 0.5.
        shared_dims: an int or a sequence of distinct ints, the dims along which the mask is
            shared. Default: ().

    Shape:
        - Input: :math:`(*)`, with more dims than the largest of ``shared_dims``.
        - Output: :math:`(*)`, same shape as the input.

    Raises:
        TypeError: if ``p`` is not a real number or ``shared_dims`` is not an int or a
            sequence of ints.
        ValueError: if ``p`` is outside [0, 1], ``shared_dims`` repeats a dim, or (in
            ``forward``) names a dim the input does not have.

    Example:
        >>> import torch
        >>> from regdrop.nn import AlphaDropout
        >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.SELU(), AlphaDropout(0.1, shared_dims=1))
        >>> net[2]
        AlphaDropout(p=0.1, shared_dims=(1,))
        >>> net(torch.randn(8, 20, 64)).shape
        torch.Size([8, 20, 64])
    """

    _op = staticmethod(alpha_dropout)
