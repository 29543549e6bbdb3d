"""Tests of regdrop.functional.constraints against a row-by-row reference and Keras's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from regdrop.functional import max_norm_, min_max_norm_, non_neg_, unit_norm_
from regdrop.functional.constraints import _max_norm_, _min_max_norm_, _non_neg_, _unit_norm_

SHAPES = [(6, 3), (5, 3, 2, 2), (7,), (4, 1)]
EPS = 1e-7


def _weight(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # norms spread over roughly [0.1, 10] so that some units are inside every range and some outside
    w = torch.randn(shape, generator=g, dtype=dtype)
    scale = torch.logspace(-1, 1, shape[0], dtype=dtype).reshape(-1, *[1] * (len(shape) - 1))
    return w * scale if len(shape) > 1 else w


def _units(w: torch.Tensor, dim: int = 0) -> list[torch.Tensor]:
    """The units of a weight as a list of flat vectors, the reference reading of the layout rule."""
    if w.dim() < 2:
        return [w.reshape(-1)]
    return [w.select(dim, i).reshape(-1) for i in range(w.shape[dim])]


def _assert_within_eps_of_keras(w: torch.Tensor, keras: torch.Tensor, norms: torch.Tensor) -> None:
    """Keras divides by eps + norm where we divide by norm: the results differ by a factor of about eps / norm."""
    bound = w.abs() * (EPS / norms) * 1.01 + 1e-15
    assert bool(((w - keras).abs() <= bound).all())


def _reference(w: torch.Tensor, desired, dim: int = 0) -> torch.Tensor:
    """Rescale unit by unit with plain Python, in float64."""
    out = w.clone().double()
    units = [out] if w.dim() < 2 else [out.select(dim, i) for i in range(w.shape[dim])]
    for u in units:
        n = float(u.norm())
        d = desired(n)
        if n > 0 and d != n:
            u.mul_(d / max(n, EPS))
    return out.to(w.dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("max_value", [0.5, 2.0])
def test_max_norm_matches_reference_and_keras(shape, max_value):
    w = _weight(shape)
    expected = _reference(w, lambda n: min(n, max_value))
    original = w.clone()
    out = max_norm_(w, max_value)
    assert out is w
    torch.testing.assert_close(w, expected, rtol=1e-12, atol=0)
    # Keras: w * clip(n, 0, c) / (eps + n) on every unit; ours differs by at most eps relative
    norms = torch.stack([u.norm() for u in _units(original)]).reshape(-1, *[1] * (w.dim() - 1))
    keras = original * norms.clamp(0, max_value) / (EPS + norms)
    _assert_within_eps_of_keras(w, keras, norms)
    assert max(float(u.norm()) for u in _units(w)) <= max_value * (1 + 1e-9)


def test_max_norm_leaves_units_inside_the_bound_bit_for_bit():
    w = _weight((6, 3))
    before = w.clone()
    inside = torch.tensor([float(u.norm()) <= 2.0 for u in _units(w)])
    assert 0 < inside.sum() < len(inside)
    changed = _max_norm_(w, 2.0, 0, EPS)
    assert torch.equal(changed, ~inside)
    assert torch.equal(w[inside], before[inside])
    assert not torch.equal(w[~inside], before[~inside])


@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 2)])
def test_dim_picks_the_unit_dimension(shape):
    w = _weight(shape)
    moved = w.movedim(1, 0).clone()
    max_norm_(w, 1.0, dim=1)
    max_norm_(moved, 1.0, dim=0)
    torch.testing.assert_close(w, moved.movedim(0, 1), rtol=0, atol=0)
    assert max(float(u.norm()) for u in _units(w, dim=1)) <= 1.0 + 1e-9


@pytest.mark.parametrize("shape", SHAPES)
def test_unit_norm_gives_unit_rows_and_keeps_zero_rows(shape):
    w = _weight(shape)
    if w.dim() > 1:
        w[1] = 0.0
    expected = _reference(w, lambda n: 1.0)
    unit_norm_(w)
    torch.testing.assert_close(w, expected, rtol=1e-12, atol=0)
    for i, u in enumerate(_units(w)):
        assert float(u.norm()) == pytest.approx(0.0 if (i == 1 and w.dim() > 1) else 1.0, abs=1e-12)


def test_non_neg_clamps_and_reports_rows_with_a_negative_entry():
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0], [-0.1, -0.2]])
    changed = _non_neg_(w, 0)
    assert torch.equal(changed, torch.tensor([True, False, True]))
    assert torch.equal(w, torch.tensor([[1.0, 0.0], [0.5, 3.0], [0.0, 0.0]]))
    v = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    assert torch.equal(_non_neg_(v, 1), torch.tensor([False, True]))
    ints = torch.tensor([-3, 4])
    assert torch.equal(non_neg_(ints), torch.tensor([0, 4]))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rate", [1.0, 0.5, 0.0])
def test_min_max_norm_matches_keras_formula(shape, rate):
    lo, hi = 0.8, 2.0
    w = _weight(shape, seed=1)
    original = w.clone()

    def desired(n: float) -> float:
        clipped = min(max(n, lo), hi)
        return n if clipped == n else rate * clipped + (1 - rate) * n

    expected = _reference(w, desired)
    min_max_norm_(w, lo, hi, rate)
    torch.testing.assert_close(w, expected, rtol=1e-12, atol=0)
    norms = torch.stack([u.norm() for u in _units(original)]).reshape(-1, *[1] * (w.dim() - 1))
    keras = original * (rate * norms.clamp(lo, hi) + (1 - rate) * norms) / (EPS + norms)
    _assert_within_eps_of_keras(w, keras, norms)
    if rate == 1.0:
        assert all(lo - 1e-9 <= float(u.norm()) <= hi + 1e-9 for u in _units(w))
    if rate == 0.0:
        assert torch.equal(w, original)


def test_min_max_norm_reports_exactly_the_units_outside_the_interval():
    w = _weight((10, 4), seed=2)
    norms = torch.stack([u.norm() for u in _units(w)])
    changed = _min_max_norm_(w, 0.5, 3.0, 1.0, 0, EPS)
    assert torch.equal(changed, (norms < 0.5) | (norms > 3.0))
    assert 0 < int(changed.sum()) < 10


def test_projection_is_idempotent_and_in_place_on_parameters():
    p = torch.nn.Parameter(_weight((6, 3), dtype=torch.float32))
    max_norm_(p, 1.0)
    assert p.grad_fn is None and p.requires_grad
    once = p.detach().clone()
    changed = _max_norm_(p, 1.0, 0, EPS)
    torch.testing.assert_close(p.detach(), once, rtol=1e-6, atol=0)
    unit = p.detach().clone()
    _unit_norm_(unit, 0, EPS)
    torch.testing.assert_close(torch.linalg.vector_norm(unit, dim=1), torch.ones(6), rtol=1e-6, atol=0)
    assert changed.dtype == torch.bool and changed.shape == (6,)


def test_low_precision_weights_use_float32_norms():
    w = (_weight((4, 64), dtype=torch.float32) * 10).to(torch.bfloat16)
    max_norm_(w, 1.0)
    assert w.dtype == torch.bfloat16
    assert float(torch.linalg.vector_norm(w.float(), dim=1).max()) <= 1.0 * (1 + 2**-7)


def test_one_dimensional_weight_is_one_unit():
    b = torch.tensor([3.0, 4.0])
    assert torch.equal(_max_norm_(b, 1.0, 0, EPS), torch.tensor([True]))
    torch.testing.assert_close(b, torch.tensor([0.6, 0.8]))
    s = torch.tensor(-5.0)
    max_norm_(s, 2.0)
    assert float(s) == pytest.approx(-2.0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda w: max_norm_(w, -1.0), ValueError, r"max_value must be a finite number >= 0, got -1\.0"),
        (lambda w: max_norm_(w, math.nan), ValueError, r"max_value must be a finite number >= 0, got nan"),
        (lambda w: max_norm_(w, "2"), TypeError, r"max_value must be a number >= 0, got str"),
        (lambda w: max_norm_(w, 1.0, dim=2), ValueError, r"max_norm_: dim must be in \[-2, 1\].*got 2"),
        (lambda w: max_norm_(w, 1.0, dim=0.5), TypeError, r"max_norm_: dim must be an int"),
        (lambda w: max_norm_(w, 1.0, eps=0.0), ValueError, r"eps must be a finite number > 0, got 0\.0"),
        (
            lambda w: unit_norm_(w.long()),
            TypeError,
            r"unit_norm_: weight must be a floating-point tensor, got dtype torch.int64",
        ),
        (lambda w: max_norm_(w.tolist(), 1.0), TypeError, r"max_norm_: weight must be a Tensor, got list"),
        (lambda w: min_max_norm_(w, 2.0, 1.0), ValueError, r"min_value must be <= max_value, got min_value=2\.0"),
        (lambda w: min_max_norm_(w, -0.5, 1.0), ValueError, r"min_value must be a finite number >= 0"),
        (lambda w: min_max_norm_(w, 0.0, 1.0, 1.5), ValueError, r"rate must be in \[0, 1\], got 1\.5"),
        (lambda w: non_neg_(w.to(torch.complex64)), TypeError, r"non_neg_: weight must be a real tensor"),
    ],
)
def test_bad_arguments_say_what_to_change(call, error, match):
    w = torch.randn(3, 2)
    before = w.clone()
    with pytest.raises(error, match=match):
        call(w)
    assert torch.equal(w, before)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_projection_stays_inside_the_bounds(dtype):
    # rounding the float32 projection to nearest would leave about 1 unit in 3 just past the bound
    g = torch.Generator().manual_seed(0)
    big = (3 * torch.randn(64, 33, generator=g)).to(dtype)
    small = (0.01 * torch.randn(64, 33, generator=g)).to(dtype)
    inside = (0.7 * torch.nn.functional.normalize(torch.randn(64, 33, generator=g), dim=1)).to(dtype)
    untouched = inside.clone()
    max_norm_(big, 0.8)
    min_max_norm_(small, 0.5, 0.9)
    max_norm_(inside, 0.8)
    assert (torch.linalg.vector_norm(big.float(), dim=1) <= 0.8).all()
    assert (torch.linalg.vector_norm(big.float(), dim=1) >= 0.8 - 0.02).all()  # still projected onto the bound
    assert (torch.linalg.vector_norm(small.float(), dim=1) >= 0.5).all()
    assert torch.equal(inside, untouched)  # units inside the bound keep their bits
    assert big.dtype == small.dtype == dtype
