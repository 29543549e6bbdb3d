"""Tests of regdrop.functional.dropout: the shared-mask primitive and locked, spatial and alpha dropout."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from regdrop.functional import (
    alpha_dropout,
    bernoulli_mask,
    dropout_mask,
    locked_dropout,
    shared_dropout,
    spatial_dropout,
)

SELU_NEG = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def positive(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Entries in [0.5, 1.5): never 0, so a zero output marks a dropped entry."""
    return (torch.rand(shape, generator=gen(99)) + 0.5).to(dtype)


def assert_mask_pattern(dropped: Tensor, shared_dims: tuple[int, ...], p: float) -> None:
    """``dropped`` (bool) is constant along ``shared_dims`` and Bernoulli(p), independent, along the others."""
    if shared_dims:
        lo, hi = dropped.amin(dim=shared_dims), dropped.amax(dim=shared_dims)
        assert torch.equal(lo, hi), "the mask must be the same along the shared dims"
        per_draw = hi
    else:
        per_draw = dropped
    n = per_draw.numel()
    rate = per_draw.float().mean().item()
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n), f"drop rate {rate} vs p={p} over {n} draws"
    # Neighbours along every independent dim are dropped together with probability p^2.
    for d in range(per_draw.dim()):
        if per_draw.shape[d] < 2:
            continue
        a = per_draw.narrow(d, 0, per_draw.shape[d] - 1)
        b = per_draw.narrow(d, 1, per_draw.shape[d] - 1)
        both = (a & b).float().mean().item()
        m = a.numel()
        assert abs(both - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / m), f"dim {d}: P(both dropped)={both}"


# ---------------------------------------------------------------- bernoulli_mask, dropout_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_bernoulli_mask_values_rate_and_mean(p: float) -> None:
    m = bernoulli_mask((200, 100), p, generator=gen())
    scale = torch.tensor(1 / (1 - p))
    assert torch.logical_or(m == 0, m == scale).all()
    assert_mask_pattern(m == 0, (), p)
    n = m.numel()
    assert abs(m.mean().item() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)


def test_bernoulli_mask_edges_dtype_device_and_seed() -> None:
    assert torch.equal(bernoulli_mask((3, 4), 1.0), torch.zeros(3, 4))
    assert torch.equal(bernoulli_mask((3, 4), 0.0), torch.ones(3, 4))
    m = bernoulli_mask((5,), 0.25, dtype=torch.float64, device="cpu")
    assert m.dtype == torch.float64 and m.device.type == "cpu"
    assert torch.equal(bernoulli_mask((64, 8), 0.5, generator=gen(3)), bernoulli_mask((64, 8), 0.5, generator=gen(3)))
    other_seed = bernoulli_mask((64, 8), 0.5, generator=gen(4))
    assert not torch.equal(bernoulli_mask((64, 8), 0.5, generator=gen(3)), other_seed)


@pytest.mark.parametrize(
    ("p", "error", "match"),
    [
        (-0.5, ValueError, r"^p must be in \[0, 1\], got -0.5$"),
        (1.01, ValueError, r"got 1.01"),
        ("a", TypeError, r"^p must be a float in \[0, 1\], got str 'a'$"),
    ],
)
def test_bernoulli_mask_rejects_bad_p(p: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        bernoulli_mask((2,), p)  # type: ignore[arg-type]


def test_dropout_mask_shape_follows_shared_dims() -> None:
    x = torch.zeros(4, 5, 6, 7, dtype=torch.float64)
    m = dropout_mask(x, 0.5, shared_dims=(1, -1))
    assert m.shape == (4, 1, 6, 1) and m.dtype == torch.float64
    assert dropout_mask(x, 0.5).shape == x.shape


# ---------------------------------------------------------------- shared_dropout


def test_eval_and_zero_rate_return_the_input() -> None:
    x = positive(3, 4)
    assert shared_dropout(x, 0.5, training=False) is x
    assert shared_dropout(x, 0.0, shared_dims=1) is x


def test_rate_one_gives_zeros_not_nan() -> None:
    x = positive(3, 4).mul(1e30).requires_grad_()
    y = shared_dropout(x, 1.0, shared_dims=0)
    assert torch.equal(y, torch.zeros(3, 4))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(3, 4))


@pytest.mark.parametrize("shared_dims", [(), (1,), (0, 2), (1, 2)])
def test_mask_shared_along_shared_dims_independent_along_others(shared_dims: tuple[int, ...]) -> None:
    x = positive(64, 20, 48)
    y = shared_dropout(x, 0.4, shared_dims=shared_dims, generator=gen(1))
    dropped = y == 0
    assert_mask_pattern(dropped, shared_dims, 0.4)
    torch.testing.assert_close(y[~dropped], x[~dropped] / 0.6)


def test_negative_shared_dims_mean_the_same_dims() -> None:
    x = positive(4, 5, 6)
    assert torch.equal(
        shared_dropout(x, 0.5, shared_dims=-2, generator=gen(2)),
        shared_dropout(x, 0.5, shared_dims=(1,), generator=gen(2)),
    )


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_training_preserves_the_expectation(p: float) -> None:
    draws = 4000
    x = positive(5, 3, 4)
    # One independent draw per row of the leading dim; the time dim (2) is shared.
    y = shared_dropout(x.expand(draws, 5, 3, 4), p, shared_dims=2, generator=gen(5))
    mean = y.mean(dim=0)
    std_of_mean = x * math.sqrt(p / (1 - p) / draws)
    assert ((mean - x).abs() < 5 * std_of_mean).all()


def test_gradient_is_the_mask() -> None:
    x = positive(8, 6, 5).requires_grad_()
    y = shared_dropout(x, 0.3, shared_dims=1, generator=gen(6))
    upstream = torch.randn(8, 6, 5, generator=gen(7))
    (y * upstream).sum().backward()
    mask = dropout_mask(x.detach(), 0.3, shared_dims=1, generator=gen(6))
    assert torch.equal(x.grad, upstream * mask)
    assert torch.equal(y.detach(), x.detach() * mask)


def test_inplace_writes_the_input() -> None:
    x = positive(6, 5)
    expected = shared_dropout(x, 0.5, generator=gen(8))
    out = shared_dropout(x, 0.5, inplace=True, generator=gen(8))
    assert out is x and torch.equal(x, expected)


def test_seeded_calls_repeat_and_unseeded_calls_redraw() -> None:
    x = positive(16, 16)
    assert torch.equal(shared_dropout(x, generator=gen(9)), shared_dropout(x, generator=gen(9)))
    torch.manual_seed(9)
    a = shared_dropout(x)
    torch.manual_seed(9)
    assert torch.equal(shared_dropout(x), a)
    assert not torch.equal(shared_dropout(x), a)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_dtypes(dtype: torch.dtype) -> None:
    x = positive(32, 10, 16, dtype=dtype)
    y = shared_dropout(x, 0.5, shared_dims=1, generator=gen(10))
    assert y.dtype == dtype
    assert_mask_pattern(y == 0, (1,), 0.5)
    assert torch.equal(y[y != 0], x[y != 0] * 2)


def test_under_autocast_bfloat16() -> None:
    lin = torch.nn.Linear(16, 16)
    x = torch.randn(8, 12, 16, generator=gen(11))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = lin(x)
        y = shared_dropout(h, 0.5, shared_dims=1, generator=gen(12))
    assert y.dtype == torch.bfloat16
    dropped = y == 0
    assert torch.equal(dropped.amin(dim=1), dropped.amax(dim=1))
    assert 0 < dropped.float().mean().item() < 1
    y.float().sum().backward()
    assert torch.isfinite(lin.weight.grad).all() and lin.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("shared_dims", "error", "match"),
    [
        ((0, 3), ValueError, r"^\w+: shared_dims must hold dims in \[-3, 2\] for a 3-D input, got \(0, 3\)$"),
        (-4, ValueError, r"shared_dims must hold dims in \[-3, 2\] for a 3-D input, got -4"),
        ((1, -2), ValueError, r"^\w+: shared_dims must hold distinct dims, got \(1, -2\) for a 3-D input$"),
        ((1, 1), ValueError, r"distinct dims, got \(1, 1\)"),
        (1.0, TypeError, r"^shared_dims must be an int or a sequence of ints, got float 1.0$"),
        ("1", TypeError, r"shared_dims must be an int or a sequence of ints, got str '1'"),
        ((1, 2.0), TypeError, r"shared_dims must be an int or a sequence of ints, got \(1, 2.0\)"),
        ((True,), TypeError, r"got \(True,\)"),
    ],
)
def test_bad_shared_dims(shared_dims: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        shared_dropout(torch.ones(2, 3, 4), 0.5, shared_dims=shared_dims)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        dropout_mask(torch.ones(2, 3, 4), 0.5, shared_dims=shared_dims)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("p", "error", "match"),
    [
        (-0.1, ValueError, r"^p must be in \[0, 1\], got -0.1$"),
        (1.5, ValueError, r"^p must be in \[0, 1\], got 1.5$"),
        (math.nan, ValueError, r"^p must be in \[0, 1\], got nan$"),
        ("0.5", TypeError, r"^p must be a float in \[0, 1\], got str '0.5'$"),
        (None, TypeError, r"got NoneType None"),
        (torch.tensor(0.5), TypeError, r"got Tensor"),
    ],
)
@pytest.mark.parametrize("op", [shared_dropout, locked_dropout, spatial_dropout, alpha_dropout])
def test_bad_p_is_rejected_even_in_eval(op, p: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        op(torch.ones(2, 3, 4), p, training=False)


@pytest.mark.parametrize("op", [shared_dropout, spatial_dropout, alpha_dropout])
def test_packed_sequence_is_refused_where_the_dims_are_ambiguous(op) -> None:
    packed = pack_padded_sequence(torch.ones(3, 2, 4), torch.tensor([3, 2]))
    with pytest.raises(TypeError, match=rf"^{op.__name__}: input must be a Tensor, got a PackedSequence"):
        op(packed, 0.5)


@pytest.mark.parametrize("op", [shared_dropout, locked_dropout, spatial_dropout, alpha_dropout])
def test_non_float_input_is_refused(op) -> None:
    expected = rf"^{op.__name__}: input must be a floating-point tensor, got dtype torch.int64$"
    with pytest.raises(TypeError, match=expected):
        op(torch.ones(2, 3, 4, dtype=torch.long), 0.5)
    with pytest.raises(TypeError, match=rf"^{op.__name__}: input must be a Tensor, got list$"):
        op([[[1.0]]], 0.5)


# ---------------------------------------------------------------- locked_dropout


@pytest.mark.parametrize(("batch_first", "time_dim"), [(False, 0), (True, 1)])
def test_locked_mask_fixed_over_time(batch_first: bool, time_dim: int) -> None:
    x = positive(40, 30, 48)
    y = locked_dropout(x, 0.3, batch_first=batch_first, generator=gen(13))
    assert_mask_pattern(y == 0, (time_dim,), 0.3)
    assert torch.equal(y, shared_dropout(x, 0.3, shared_dims=time_dim, generator=gen(13)))


def test_locked_unbatched_is_one_mask_per_feature() -> None:
    x = positive(50, 400)
    y = locked_dropout(x, 0.5, batch_first=True, generator=gen(14))  # batch_first is ignored
    assert_mask_pattern(y == 0, (0,), 0.5)


def test_locked_equals_keras_spatial_dropout_1d() -> None:
    x = positive(6, 9, 5)
    assert torch.equal(
        locked_dropout(x, 0.4, batch_first=True, generator=gen(15)),
        spatial_dropout(x, 0.4, channels_last=True, generator=gen(15)),
    )


@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_locked_packed_matches_padded_and_keeps_indices(enforce_sorted: bool) -> None:
    lengths = torch.tensor([7, 5, 5, 2]) if enforce_sorted else torch.tensor([2, 7, 5, 5])
    padded = positive(4, 7, 30)
    packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    out = locked_dropout(packed, 0.5, generator=gen(16))
    assert torch.equal(out.batch_sizes, packed.batch_sizes)
    for got, want in ((out.sorted_indices, packed.sorted_indices), (out.unsorted_indices, packed.unsorted_indices)):
        assert (got is None and want is None) or torch.equal(got, want)
    unpacked, out_lengths = pad_packed_sequence(out, batch_first=True)
    assert torch.equal(out_lengths, lengths)
    reference = locked_dropout(padded, 0.5, batch_first=True, generator=gen(16))
    for n, length in enumerate(lengths.tolist()):
        assert torch.equal(unpacked[n, :length], reference[n, :length])
        dropped = unpacked[n, :length] == 0
        assert torch.equal(dropped, dropped[:1].expand_as(dropped))


def test_locked_packed_gradient_eval_and_rate_one() -> None:
    packed = pack_padded_sequence(positive(3, 5, 8), torch.tensor([5, 1, 3]), batch_first=True, enforce_sorted=False)
    assert locked_dropout(packed, 0.5, training=False) is packed
    assert torch.equal(locked_dropout(packed, 1.0).data, torch.zeros_like(packed.data))
    data = packed.data.clone().requires_grad_()
    out = locked_dropout(packed._replace(data=data), 0.5, generator=gen(17))
    out.data.sum().backward()
    torch.testing.assert_close(data.grad, out.data.detach() / data.detach(), rtol=0, atol=1e-6)
    assert set(data.grad.unique().tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_locked_wrong_ndim(shape: tuple[int, ...], batch_first: bool) -> None:
    layout = r"\(N, L, C\) with batch_first=True" if batch_first else r"\(L, N, C\) with batch_first=False"
    with pytest.raises(
        ValueError,
        match=rf"^locked_dropout: input must be 3-D {layout} or 2-D \(L, C\) unbatched, "
        rf"got a {len(shape)}-D tensor of shape {re_shape(shape)}$",
    ):
        locked_dropout(torch.ones(shape), 0.5, batch_first=batch_first)


def re_shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


# ---------------------------------------------------------------- spatial_dropout


@pytest.mark.parametrize(
    ("shape", "channels_last", "shared"),
    [
        ((32, 40, 10), False, (2,)),
        ((32, 10, 40), True, (1,)),
        ((16, 60, 3, 4), False, (2, 3)),
        ((16, 3, 4, 60), True, (1, 2)),
        ((8, 60, 2, 3, 2), False, (2, 3, 4)),
        ((8, 2, 3, 2, 60), True, (1, 2, 3)),
    ],
)
def test_spatial_drops_whole_channels(shape: tuple[int, ...], channels_last: bool, shared: tuple[int, ...]) -> None:
    x = positive(*shape)
    y = spatial_dropout(x, 0.3, channels_last=channels_last, generator=gen(18))
    assert_mask_pattern(y == 0, shared, 0.3)
    assert torch.equal(y, shared_dropout(x, 0.3, shared_dims=shared, generator=gen(18)))


def test_spatial_eval_identity_and_rate_one() -> None:
    x = positive(2, 3, 4)
    assert spatial_dropout(x, 0.5, training=False) is x
    assert torch.equal(spatial_dropout(x, 1.0), torch.zeros_like(x))


@pytest.mark.parametrize("channels_last", [False, True])
def test_spatial_needs_a_spatial_dim(channels_last: bool) -> None:
    layout = r"\(N, \*spatial, C\)" if channels_last else r"\(N, C, \*spatial\)"
    with pytest.raises(
        ValueError,
        match=rf"^spatial_dropout: input must have at least 3 dims {layout} with channels_last={channels_last}, "
        r"got a 2-D tensor of shape \(4, 5\)$",
    ):
        spatial_dropout(torch.ones(4, 5), 0.5, channels_last=channels_last)


# ---------------------------------------------------------------- alpha_dropout


def _alpha_constants(p: float) -> tuple[float, float]:
    q = 1 - p
    a = (q + SELU_NEG**2 * q * p) ** -0.5
    return a, -a * p * SELU_NEG


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("shared_dims", [(), (1,)])
def test_alpha_keeps_selu_self_normalization(p: float, shared_dims: tuple[int, ...]) -> None:
    # Activations at SELU's fixed point: mean 0, variance 1 (40,000 mask draws even when shared).
    x = torch.randn(400, 50, 100, generator=gen(19))
    y = alpha_dropout(x, p, shared_dims=shared_dims, generator=gen(20))
    assert abs(y.mean().item()) < 0.02
    assert abs(y.var().item() - 1.0) < 0.02
    # Plain (inverted) dropout would not: its variance is 1 / (1 - p).
    assert abs(shared_dropout(x, p, shared_dims=shared_dims, generator=gen(20)).var().item() - 1.0) > 0.04
    # Through a SELU layer with LeCun-normal weights the statistics stay at the fixed point.
    w = torch.randn(100, 100, generator=gen(21)) / 10.0
    z = torch.selu(y @ w.T)
    assert abs(z.mean().item()) < 0.1 and abs(z.var().item() - 1.0) < 0.1


def test_alpha_matches_pytorch_constants() -> None:
    # On a zero input, kept entries become c and dropped ones a * alpha' + c, in PyTorch too.
    p = 0.3
    ours = alpha_dropout(torch.zeros(20_000, dtype=torch.float64), p, generator=gen(22)).unique()
    torch.manual_seed(0)
    theirs = F.alpha_dropout(torch.zeros(20_000, dtype=torch.float64), p, training=True).unique()
    assert ours.numel() == 2
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    a, c = _alpha_constants(p)
    torch.testing.assert_close(ours, torch.tensor(sorted([c, a * SELU_NEG + c]), dtype=torch.float64))


def test_alpha_shared_mask_and_gradient() -> None:
    p = 0.4
    a, c = _alpha_constants(p)
    x = torch.randn(60, 10, 50, generator=gen(23), requires_grad=True)
    y = alpha_dropout(x, p, shared_dims=1, generator=gen(24))
    y.sum().backward()
    kept = x.grad != 0
    # The gradient is a on kept entries (a q times shared_dropout's 1 / q, to float rounding)
    # and exactly 0 on dropped ones, with one draw per (sample, feature).
    torch.testing.assert_close(x.grad[kept], torch.full_like(x.grad[kept], a), rtol=1e-6, atol=0.0)
    assert_mask_pattern(~kept, (1,), p)
    torch.testing.assert_close(y[~kept], torch.full_like(y[~kept], a * SELU_NEG + c))
    torch.testing.assert_close(y[kept], a * x[kept] + c)


def test_alpha_draws_the_mask_of_shared_dropout() -> None:
    # One primitive: under one seed alpha dropout drops exactly what shared_dropout drops.
    x = torch.randn(30, 8, 20, generator=gen(25))
    y = alpha_dropout(x, 0.3, shared_dims=1, generator=gen(26))
    reference = shared_dropout(torch.ones_like(x), 0.3, shared_dims=1, generator=gen(26))
    a, c = _alpha_constants(0.3)
    assert torch.equal(y.sub(a * SELU_NEG + c).abs() < 1e-5, reference == 0)


def test_alpha_edges() -> None:
    x = torch.randn(4, 5)
    assert alpha_dropout(x, 0.5, training=False) is x
    assert alpha_dropout(x, 0.0) is x
    assert torch.equal(alpha_dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"shared_dims must hold dims in \[-2, 1\] for a 2-D input, got 2"):
        alpha_dropout(x, 0.5, shared_dims=2)
