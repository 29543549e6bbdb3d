"""Zoneout's training masks: the counter-based draw (splitmix64) of the compiled op and of its
torch-ops twin, their agreement, rate, independence, reproducibility and argument checks."""

from __future__ import annotations

import pytest
import torch

from regdrop.functional import rnn as F_rnn
from regdrop.functional.rnn import extension_available

needs_extension = pytest.mark.skipif(not extension_available(), reason="no C++ compiler to build the time loop")

MASK64 = (1 << 64) - 1


def _splitmix64(seed: int, k: int) -> int:
    """splitmix64 at counter k with Python integers (an independent reference of the draw)."""
    z = (seed + (k + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _reference_mask(seed: int, rows: int, width: int, p: float) -> torch.Tensor:
    threshold = int(p * 4294967296.0 + 0.5)
    bits = []
    for e in range(rows * width):
        word = _splitmix64(seed, e // 2)
        bits.append(((word >> 32) if e % 2 else (word & 0xFFFFFFFF)) < threshold)
    return torch.tensor(bits, dtype=torch.bool).view(rows, width)


def test_splitmix64_reference_known_values():
    # splitmix64 seeded with 0: its first outputs are published with the generator
    # (Vigna's reference implementation, prng.di.unimi.it); the reference above must give them.
    assert _splitmix64(0, 0) == 0xE220A8397B1DCDAF
    assert _splitmix64(0, 1) == 0x6E789E6AA1B965F4


@pytest.mark.parametrize("seed", [0, 1, 123456789012345, (1 << 62) - 1])
@pytest.mark.parametrize(("rows", "width", "p"), [(7, 3, 0.5), (5, 5, 0.1), (1, 1, 0.9), (4, 9, 1.0), (3, 2, 0.0)])
def test_torch_twin_matches_the_python_reference(seed, rows, width, p):
    got = F_rnn._hash_mask(torch.tensor(seed), rows, width, p)
    assert torch.equal(got, _reference_mask(seed, rows, width, p))


@needs_extension
@pytest.mark.parametrize("seed", [0, 7, 123456789012345, (1 << 62) - 1])
@pytest.mark.parametrize(
    ("rows", "width", "p"), [(7, 3, 0.5), (6400, 64, 0.1), (1001, 1, 0.25), (2, 2, 1.0), (0, 5, 0.3)]
)
def test_compiled_op_matches_the_torch_twin(seed, rows, width, p):
    s = torch.tensor(seed)
    compiled = torch.ops.regdrop_scan.zoneout_mask(s, rows, width, p)
    assert compiled.dtype == torch.bool and compiled.shape == (rows, width)
    assert torch.equal(compiled, F_rnn._hash_mask(s, rows, width, p))


@needs_extension
def test_compiled_op_is_the_same_on_one_and_two_threads():
    s = torch.tensor(99)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = torch.ops.regdrop_scan.zoneout_mask(s, 4000, 70, 0.3)
        torch.set_num_threads(2)
        two = torch.ops.regdrop_scan.zoneout_mask(s, 4000, 70, 0.3)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5])
def test_masks_have_the_rate_and_are_independent(p):
    h, c = F_rnn._zoneout_masks(p, True, 20000, (32, 32), torch.empty(1), torch.Generator().manual_seed(3))
    n = h.numel()
    tolerance = 5 * (p * (1 - p) / n) ** 0.5  # five standard errors
    for m in (h, c):
        assert abs(m.float().mean().item() - p) < tolerance
    # h and c come from different seeds: they agree as often as independent draws would
    agree = (h == c).float().mean().item()
    assert abs(agree - (p * p + (1 - p) * (1 - p))) < 5 * (0.25 / n) ** 0.5
    # neighbouring elements (the two halves of one 64-bit word) are not correlated
    flat = h.flatten().float()
    both = (flat[0::2] * flat[1::2]).mean().item()
    assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / (n // 2)) ** 0.5


def test_masks_follow_the_seed_and_the_generator():
    like = torch.empty(1)
    torch.manual_seed(5)
    a = F_rnn._zoneout_masks(0.2, True, 50, (8,), like, None)[0]
    torch.manual_seed(5)
    b = F_rnn._zoneout_masks(0.2, True, 50, (8,), like, None)[0]
    c = F_rnn._zoneout_masks(0.2, True, 50, (8,), like, None)[0]
    assert torch.equal(a, b) and not torch.equal(b, c)
    g1 = F_rnn._zoneout_masks(0.2, True, 50, (8,), like, torch.Generator().manual_seed(1))[0]
    g2 = F_rnn._zoneout_masks(0.2, True, 50, (8,), like, torch.Generator().manual_seed(1))[0]
    assert torch.equal(g1, g2)
    assert F_rnn._zoneout_masks(0.2, False, 50, (8, 8), like, None) == [None, None]
    assert F_rnn._zoneout_masks(0.0, True, 50, (8,), like, None) == [None]


@needs_extension
def test_compiled_op_rejects_bad_arguments():
    op = torch.ops.regdrop_scan.zoneout_mask
    with pytest.raises(RuntimeError, match="seed must be a one-element int64 CPU tensor"):
        op(torch.tensor(1.0), 2, 2, 0.5)
    with pytest.raises(RuntimeError, match="seed must be a one-element int64 CPU tensor"):
        op(torch.tensor([1, 2]), 2, 2, 0.5)
    with pytest.raises(RuntimeError, match=r"p must be in \[0, 1\], got 1.5"):
        op(torch.tensor(1), 2, 2, 1.5)
    with pytest.raises(RuntimeError, match="rows and width must be >= 0, got -1 and 2"):
        op(torch.tensor(1), -1, 2, 0.5)
