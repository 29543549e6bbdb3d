"""Dropout modules whose rate is a parameter learned with concrete dropout (Gal, Hron & Kendall 2017).

Each module holds the logit of its rate(s) as a parameter ``p_logit`` and calls
:func:`regdrop.functional.concrete_dropout`; :meth:`regularization` gives the paper's term
to add to the loss (see :func:`regdrop.nn.concrete_regularization` for the whole model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from regdrop.functional._validation import (
    check_nonnegative,
    check_positive_int,
    check_rate,
    check_shared_dims,
    check_tensor,
    shape_str,
)
from regdrop.functional.concrete import (
    check_temperature,
    concrete_dropout,
    concrete_dropout_regularizer,
    concrete_mask,
)
from regdrop.functional.dropout import _packed_row_samples

__all__ = [
    "ConcreteDropout",
    "ConcreteLockedDropout",
    "concrete_modules",
    "concrete_regularization",
    "learned_rate_parameters",
]


class _Concrete(nn.Module):
    rate_names: tuple[str, ...] = ("p",)
    # Rates that are parameters: set_dropout_rates and DropoutScheduler leave them to the optimizer.
    learned_rate_names: tuple[str, ...] = ("p",)

    def __init__(
        self,
        num_features: int,
        p: float,
        per_unit: bool,
        temperature: float,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        p = check_rate("p", p)
        if not 0.0 < p < 1.0:
            raise ValueError(f"p must be in (0, 1) for a learned rate (its logit must be finite), got {p}")
        self.per_unit = bool(per_unit)
        self.temperature = check_temperature(temperature)
        shape = (self.num_features,) if self.per_unit else ()
        self.init_p = p
        self.p_logit = nn.Parameter(torch.full(shape, math.log(p) - math.log1p(-p), device=device, dtype=dtype))

    @property
    def p(self) -> float:
        """The learned drop rate, :math:`\\sigma(\\ell)`; the mean over units when ``per_unit``. Read-only."""
        return float(torch.sigmoid(self.p_logit.detach()).mean())

    @property
    def rates(self) -> Tensor:
        """The learned drop rate(s), detached: 0-D, or ``(num_features,)`` when ``per_unit``."""
        return torch.sigmoid(self.p_logit.detach())

    def _check_features(self, data: Tensor) -> None:
        if data.shape[-1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: the input's last dim must be num_features={self.num_features}, "
                f"got a {shape_str(data)}"
            )

    def regularization(
        self,
        weight: Tensor | None = None,
        *,
        weight_regularizer: float = 0.0,
        dropout_regularizer: float,
    ) -> Tensor:
        r"""The paper's regularizer for this dropout, see :func:`regdrop.functional.concrete_dropout_regularizer`.

        :math:`\lambda_w \lVert W\rVert^2/(1-p) + \lambda_p K (p\log p + (1-p)\log(1-p))` with
        :math:`K` = ``num_features``. For a training set of :math:`N` samples and a prior length
        scale :math:`l`: ``weight_regularizer = l**2 / N``, ``dropout_regularizer = 2 / N``.

        Args:
            weight: the weight of the layer this dropout feeds (``(out, num_features)``), or
                ``None`` to leave the weight term out. Default: ``None``.
            weight_regularizer: :math:`\lambda_w`. Default: 0.
            dropout_regularizer: :math:`\lambda_p`.
        """
        return concrete_dropout_regularizer(
            weight,
            torch.sigmoid(self.p_logit),
            self.num_features,
            weight_regularizer,
            dropout_regularizer,
        )

    def _repr_common(self) -> str:
        return (
            f"num_features={self.num_features}, init_p={self.init_p}, per_unit={self.per_unit}, "
            f"temperature={self.temperature}"
        )


class ConcreteDropout(_Concrete):
    r"""Dropout with a learned rate (concrete dropout), with a mask that may be shared along ``shared_dims``.

    Gal, Hron & Kendall (2017). The rate is :math:`p = \sigma(\ell)`, with :math:`\ell` the
    parameter ``p_logit``; in training (see :func:`regdrop.functional.concrete_dropout`)

    .. math::
        y = x \odot \frac{1 - z}{1 - p}, \qquad
        z = \sigma\!\Bigl(\tfrac{\ell + \log u - \log(1 - u)}{t}\Bigr), \quad u \sim U(0, 1),

    a relaxed Bernoulli(:math:`p`) mask at temperature :math:`t`, so that gradients reach
    :math:`\ell`. In ``eval()`` mode it is the identity. Add :meth:`regularization` (or
    :func:`concrete_regularization` of the model, or the callback
    :class:`regdrop.callbacks.ConcreteRegularization`) to the loss: without it the rate
    only goes down.

    Args:
        num_features: :math:`K`, the size of the input's last dim (the units the rate drops).
        p: the initial rate, in (0, 1). Default: 0.1.
        shared_dims: dims along which the mask is shared (not the last). Default: ().
        per_unit: one learned rate per feature of the last dim instead of one. Default: False.
        temperature: :math:`t > 0`. Default: 0.1.
        device, dtype: of ``p_logit``.

    Shape:
        - Input: :math:`(*, K)`.
        - Output: same shape as the input.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``p`` is not in (0, 1), ``temperature`` is not > 0, ``num_features``
            < 1, ``shared_dims`` repeats a dim or (in ``forward``) does not fit the input, or
            the input's last dim is not ``num_features``.

    Example:
        >>> import torch
        >>> from regdrop.nn import ConcreteDropout
        >>> drop = ConcreteDropout(16, p=0.2)
        >>> drop
        ConcreteDropout(num_features=16, init_p=0.2, per_unit=False, temperature=0.1, shared_dims=())
        >>> round(drop.p, 6), drop.p_logit.requires_grad
        (0.2, True)
        >>> drop(torch.ones(8, 16)).shape
        torch.Size([8, 16])
    """

    def __init__(
        self,
        num_features: int,
        p: float = 0.1,
        shared_dims: int | Sequence[int] = (),
        *,
        per_unit: bool = False,
        temperature: float = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(num_features, p, per_unit, temperature, device, dtype)
        self.shared_dims = check_shared_dims(shared_dims)

    def forward(self, input: Tensor) -> Tensor:
        check_tensor(input, type(self).__name__, hint="; use ConcreteLockedDropout for packed sequences")
        dims = check_shared_dims(self.shared_dims, input.dim(), who=type(self).__name__)
        self._check_features(input)
        if self.per_unit and input.dim() - 1 in dims:
            raise ValueError(
                f"{type(self).__name__}: per_unit rates need the last dim unshared, got shared_dims={dims}"
            )
        return concrete_dropout(input, self.p_logit, self.temperature, self.training, self.shared_dims)

    def extra_repr(self) -> str:
        return f"{self._repr_common()}, shared_dims={self.shared_dims}"


class ConcreteLockedDropout(_Concrete):
    r"""Locked (variational) dropout with a learned rate: one relaxed mask per sample and feature, fixed over time.

    :class:`regdrop.nn.LockedDropout` with the mask of :class:`ConcreteDropout`: in training,

    .. math::
        y_{t,n,c} = x_{t,n,c} \, \frac{1 - z_{n,c}}{1 - p_c}, \qquad
        z_{n,c} = \sigma\!\Bigl(\tfrac{\ell_c + \log u_{n,c} - \log(1 - u_{n,c})}{t}\Bigr),

    with :math:`\ell_c` one logit, or one per feature when ``per_unit``. In ``eval()`` mode it
    is the identity. A ``PackedSequence`` keeps one mask per sample, as with
    :func:`regdrop.functional.locked_dropout`.

    Args:
        num_features: :math:`C`, the number of features.
        p: the initial rate, in (0, 1). Default: 0.1.
        batch_first: whether a 3-D input is ``(N, L, C)`` rather than ``(L, N, C)``. Default: False.
        per_unit: one learned rate per feature. Default: False.
        temperature: :math:`t > 0`. Default: 0.1.
        device, dtype: of ``p_logit``.

    Shape:
        - Input: :math:`(L, N, C)`, :math:`(N, L, C)` if ``batch_first``, :math:`(L, C)`
          unbatched, or a ``PackedSequence``.
        - Output: same as the input.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``p`` is not in (0, 1), ``temperature`` is not > 0, or the input is not
            2-D or 3-D with ``num_features`` features.

    Example:
        >>> import torch
        >>> from regdrop.nn import ConcreteLockedDropout
        >>> drop = ConcreteLockedDropout(6, p=0.3, batch_first=True, per_unit=True)
        >>> y = drop(torch.ones(4, 10, 6))
        >>> bool((y == y[:, :1]).all()), tuple(drop.rates.shape)
        (True, (6,))
    """

    def __init__(
        self,
        num_features: int,
        p: float = 0.1,
        batch_first: bool = False,
        *,
        per_unit: bool = False,
        temperature: float = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(num_features, p, per_unit, temperature, device, dtype)
        self.batch_first = bool(batch_first)

    def forward(self, input: Tensor | PackedSequence) -> Tensor | PackedSequence:
        who = type(self).__name__
        if isinstance(input, PackedSequence):
            data = check_tensor(input.data, who)
            if data.dim() != 2:
                raise ValueError(
                    f"{who}: a PackedSequence's data must be 2-D (sum of lengths, C), got {shape_str(data)}"
                )
            self._check_features(data)
            if not self.training:
                return input
            batch = int(input.batch_sizes[0]) if input.batch_sizes.numel() else 0
            mask = concrete_mask((batch, data.shape[1]), self.p_logit.to(data.dtype), self.temperature)
            return input._replace(data=data * mask[_packed_row_samples(input)])
        check_tensor(input, who)
        if input.dim() not in (2, 3):
            layout = "(N, L, C) with batch_first=True" if self.batch_first else "(L, N, C) with batch_first=False"
            raise ValueError(f"{who}: input must be 3-D {layout} or 2-D (L, C) unbatched, got a {shape_str(input)}")
        self._check_features(input)
        time_dim = 1 if (input.dim() == 3 and self.batch_first) else 0
        return concrete_dropout(input, self.p_logit, self.temperature, self.training, time_dim)

    def extra_repr(self) -> str:
        return f"{self._repr_common()}, batch_first={self.batch_first}"


def concrete_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Return ``(name, module)`` for every module of ``model`` with a learned rate, in registration order.

    A module has learned rates when its ``learned_rate_names`` is not empty (a class
    attribute, or set per instance, as ``regdrop.nn.LSTM(..., learn_rates=True)`` does) and it
    has a ``regularization(weight=None, *, weight_regularizer, dropout_regularizer)`` method.
    Its rates' logits are :func:`learned_rate_parameters`.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 4), ConcreteDropout(4))
        >>> [name for name, _ in concrete_modules(model)]
        ['1']
    """
    return [
        (name, module)
        for name, module in model.named_modules()
        if getattr(module, "learned_rate_names", ()) and callable(getattr(module, "regularization", None))
    ]


def learned_rate_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters (logits) of ``module``'s own learned rates.

    ``module.learned_rate_parameters()`` where the module defines it (``regdrop.nn.LSTM`` /
    ``GRU``, whose other parameters are weights); otherwise its own parameters (not its
    children's), e.g. ``ConcreteDropout.p_logit``.

    Example:
        >>> [tuple(p.shape) for p in learned_rate_parameters(ConcreteDropout(4, per_unit=True))]
        [(4,)]
    """
    own: Callable[[], list[nn.Parameter]] | None = getattr(module, "learned_rate_parameters", None)
    return list(own()) if callable(own) else list(module.parameters(recurse=False))


def concrete_regularization(
    model: nn.Module,
    dataset_size: int,
    *,
    length_scale: float = 1e-2,
    precision: float = 1.0,
) -> Tensor:
    r"""The concrete-dropout regularizer of every learned rate of ``model``, scaled by the data set's size.

    Sums ``module.regularization(weight_regularizer=l**2 / (tau N), dropout_regularizer=2 / (tau N))``
    over :func:`concrete_modules` (Gal, Hron & Kendall 2017: :math:`N` training samples, prior
    length scale :math:`l`, model precision :math:`\tau`). The weight term is left out (no
    module knows which weight it feeds; use the optimizer's ``weight_decay``), so what remains
    is the entropy term, which keeps each rate from collapsing to 0. Add it to the mean
    training loss in one line::

        loss = loss + regdrop.nn.concrete_regularization(model, len(train_set))

    Args:
        model: the model.
        dataset_size: :math:`N`, the number of training samples.
        length_scale: :math:`l`. Default: 1e-2 (only the weight term uses it).
        precision: :math:`\tau > 0`. Default: 1.

    Returns:
        a 0-D tensor (0 when the model has no learned rate).

    Example:
        >>> model = nn.Sequential(ConcreteDropout(10, p=0.1), nn.Linear(10, 1))
        >>> r = concrete_regularization(model, dataset_size=1000)
        >>> round(float(r), 5)  # 2/N * K * (p log p + (1-p) log(1-p))
        -0.0065
    """
    n = check_positive_int("dataset_size", dataset_size)
    length_scale = check_nonnegative("length_scale", length_scale)
    precision = check_nonnegative("precision", precision)
    if precision == 0.0:
        raise ValueError(f"precision must be a finite number > 0, got {precision}")
    total: Tensor | None = None
    for _, module in concrete_modules(model):
        regularization: Callable[..., Tensor] = module.regularization  # type: ignore[assignment]
        term = regularization(
            weight_regularizer=length_scale**2 / (precision * n),
            dropout_regularizer=2.0 / (precision * n),
        )
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())
