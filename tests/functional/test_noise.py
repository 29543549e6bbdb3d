"""Tests of regdrop.functional.noise: Gaussian dropout and additive Gaussian noise."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from regdrop.functional import gaussian_dropout, gaussian_noise


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_gaussian_dropout_has_mean_one_and_variance_p_over_one_minus_p(p: float) -> None:
    n = 400_000
    x = torch.full((n,), 3.0, dtype=torch.float64)
    noise = gaussian_dropout(x, p, generator=gen(1)) / 3.0
    var = p / (1 - p)
    assert abs(noise.mean().item() - 1.0) < 5 * math.sqrt(var / n)
    assert abs(noise.var().item() / var - 1.0) < 5 * math.sqrt(2 / n)
    # Independent entries: neighbours are uncorrelated.
    centred = noise - 1.0
    assert abs((centred[1:] * centred[:-1]).mean().item() / var) < 5 / math.sqrt(n)


def test_gaussian_dropout_gradient_is_the_noise() -> None:
    x = (torch.rand(50, 40, generator=gen(2)) + 0.5).requires_grad_()
    y = gaussian_dropout(x, 0.3, generator=gen(3))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach() / x.detach())
    noise = torch.randn(50, 40, generator=gen(3)) * math.sqrt(0.3 / 0.7) + 1.0
    torch.testing.assert_close(x.grad, noise)


def test_gaussian_dropout_edges() -> None:
    x = torch.randn(4, 5)
    assert gaussian_dropout(x, 0.5, training=False) is x
    assert gaussian_dropout(x, 0.0) is x
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\), got 1.0$"):
        gaussian_dropout(x, 1.0)
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\), got -0.2$"):
        gaussian_dropout(x, -0.2, training=False)
    with pytest.raises(TypeError, match=r"^p must be a float in \[0, 1\], got str '0.1'$"):
        gaussian_dropout(x, "0.1")  # type: ignore[arg-type]


@pytest.mark.parametrize("sigma", [0.01, 0.5, 2.0])
def test_gaussian_noise_has_mean_zero_and_std_sigma(sigma: float) -> None:
    n = 400_000
    x = torch.linspace(-1, 1, n, dtype=torch.float64)
    noise = gaussian_noise(x, sigma, generator=gen(4)) - x
    assert abs(noise.mean().item()) < 5 * sigma / math.sqrt(n)
    assert abs(noise.var().item() / sigma**2 - 1.0) < 5 * math.sqrt(2 / n)


def test_gaussian_noise_gradient_is_identity() -> None:
    x = torch.randn(30, 20, requires_grad=True)
    upstream = torch.randn(30, 20)
    (gaussian_noise(x, 0.7, generator=gen(5)) * upstream).sum().backward()
    assert torch.equal(x.grad, upstream)


def test_gaussian_noise_edges() -> None:
    x = torch.randn(4, 5)
    assert gaussian_noise(x, 0.5, training=False) is x
    assert gaussian_noise(x, 0.0) is x
    for bad, match in ((-1, r"got -1.0$"), (math.inf, r"got inf$"), (math.nan, r"got nan$")):
        with pytest.raises(ValueError, match=rf"^sigma must be a finite number >= 0, {match}"):
            gaussian_noise(x, bad)
    with pytest.raises(TypeError, match=r"^sigma must be a number >= 0, got str '0.1'$"):
        gaussian_noise(x, "0.1")  # type: ignore[arg-type]


@pytest.mark.parametrize(("op", "arg"), [(gaussian_dropout, 0.4), (gaussian_noise, 0.4)])
def test_seeded_repeat_and_fresh_draws(op, arg: float) -> None:
    x = torch.randn(16, 8)
    assert torch.equal(op(x, arg, generator=gen(6)), op(x, arg, generator=gen(6)))
    torch.manual_seed(6)
    a = op(x, arg)
    torch.manual_seed(6)
    assert torch.equal(op(x, arg), a)
    assert not torch.equal(op(x, arg), a)


@pytest.mark.parametrize(("op", "arg"), [(gaussian_dropout, 0.4), (gaussian_noise, 0.4)])
def test_packed_sequence_keeps_its_indices(op, arg: float) -> None:
    packed = pack_padded_sequence(torch.randn(3, 6, 4), torch.tensor([2, 6, 4]), batch_first=True, enforce_sorted=False)
    out = op(packed, arg, generator=gen(7))
    assert type(out) is type(packed)
    assert torch.equal(out.batch_sizes, packed.batch_sizes)
    assert torch.equal(out.sorted_indices, packed.sorted_indices)
    assert torch.equal(out.unsorted_indices, packed.unsorted_indices)
    assert torch.equal(out.data, op(packed.data, arg, generator=gen(7)))
    assert op(packed, arg, training=False) is packed


@pytest.mark.parametrize(("op", "arg"), [(gaussian_dropout, 0.4), (gaussian_noise, 0.4)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtypes_and_autocast(op, arg: float, dtype: torch.dtype) -> None:
    assert op(torch.randn(5, 5, dtype=dtype), arg).dtype == dtype
    lin = torch.nn.Linear(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = op(lin(torch.randn(4, 8)), arg)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert torch.isfinite(lin.weight.grad).all()


@pytest.mark.parametrize(("op", "arg"), [(gaussian_dropout, 0.4), (gaussian_noise, 0.4)])
def test_non_float_input_is_refused(op, arg: float) -> None:
    expected = rf"^{op.__name__}: input must be a floating-point tensor, got dtype torch.int64$"
    with pytest.raises(TypeError, match=expected):
        op(torch.ones(3, dtype=torch.long), arg)
