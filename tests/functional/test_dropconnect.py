"""Tests of regdrop.functional.dropconnect: an element-wise mask on a weight tensor."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from regdrop.functional import dropconnect


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [0.2, 0.6])
def test_entries_dropped_independently_and_kept_ones_scaled(p: float) -> None:
    w = torch.rand(300, 200, generator=gen(1)) + 0.5
    out = dropconnect(w, p, generator=gen(2))
    dropped = out == 0
    n = w.numel()
    assert abs(dropped.float().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    for d in (0, 1):  # neighbours along each dim are dropped together with probability p^2
        a, b = dropped.narrow(d, 0, w.shape[d] - 1), dropped.narrow(d, 1, w.shape[d] - 1)
        assert abs((a & b).float().mean().item() - p * p) < 5 * math.sqrt(p * p / a.numel())
    torch.testing.assert_close(out[~dropped], w[~dropped] / (1 - p))


def test_linear_layer_output_is_unbiased() -> None:
    x = torch.randn(4, 16, generator=gen(3), dtype=torch.float64)
    w = torch.randn(8, 16, generator=gen(4), dtype=torch.float64)
    draws = 4000
    mean = sum(F.linear(x, dropconnect(w, 0.5, generator=gen(10 + s))) for s in range(draws)) / draws
    # Each output sums 16 terms with variance (x w)^2 * p / (1 - p), and p / (1 - p) = 1 here.
    std = (x.square() @ w.square().T).sqrt() / math.sqrt(draws)
    assert ((mean - F.linear(x, w)).abs() < 5 * std).all()


def test_gradient_is_the_mask() -> None:
    w = torch.randn(6, 5, requires_grad=True)
    upstream = torch.randn(6, 5)
    out = dropconnect(w, 0.3, generator=gen(5))
    (out * upstream).sum().backward()
    kept = out != 0
    torch.testing.assert_close(w.grad, upstream * kept / 0.7)


def test_any_shape_and_dtype() -> None:
    for dtype in (torch.float64, torch.bfloat16):
        w = torch.ones(4, 3, 2, dtype=dtype)
        out = dropconnect(w, 0.5, generator=gen(6))
        assert out.dtype == dtype and out.shape == w.shape
        assert set(out.unique().tolist()) <= {0.0, 2.0}


def test_edges_and_seeding() -> None:
    w = torch.randn(5, 4)
    assert dropconnect(w, 0.5, training=False) is w
    assert dropconnect(w, 0.0) is w
    assert torch.equal(dropconnect(w, 1.0), torch.zeros_like(w))
    assert torch.equal(dropconnect(w, 0.5, generator=gen(7)), dropconnect(w, 0.5, generator=gen(7)))
    torch.manual_seed(7)
    a = dropconnect(w, 0.5)
    torch.manual_seed(7)
    assert torch.equal(dropconnect(w, 0.5), a)


def test_errors_name_the_argument() -> None:
    with pytest.raises(TypeError, match=r"^dropconnect: weight must be a floating-point tensor, got dtype torch.int64"):
        dropconnect(torch.ones(2, 2, dtype=torch.long), 0.5)
    with pytest.raises(TypeError, match=r"^dropconnect: weight must be a Tensor, got list$"):
        dropconnect([[1.0]], 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\], got -1.0$"):
        dropconnect(torch.ones(2, 2), -1)
    with pytest.raises(TypeError, match=r"^p must be a float in \[0, 1\], got NoneType None$"):
        dropconnect(torch.ones(2, 2), None)  # type: ignore[arg-type]
