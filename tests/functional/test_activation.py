"""Tests of regdrop.functional.activation: AR and TAR against a direct computation."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from regdrop.functional import activation_regularization, temporal_activation_regularization


def _direct_ar(h: torch.Tensor, lengths: list[int], alpha: float) -> torch.Tensor:
    """alpha * mean of h^2 over the valid steps, from a Python loop over (N, L, C)."""
    total, count = torch.zeros((), dtype=h.dtype), 0
    for n, length in enumerate(lengths):
        for t in range(length):
            total = total + h[n, t].pow(2).sum()
            count += h.shape[2]
    return alpha * total / count


def _direct_tar(h: torch.Tensor, lengths: list[int], beta: float) -> torch.Tensor:
    total, count = torch.zeros((), dtype=h.dtype), 0
    for n, length in enumerate(lengths):
        for t in range(1, length):
            total = total + (h[n, t] - h[n, t - 1]).pow(2).sum()
            count += h.shape[2]
    return beta * total / count if count else total


@pytest.fixture
def h() -> torch.Tensor:
    return torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_full_sequences_match_direct_computation_in_both_layouts(h: torch.Tensor) -> None:
    full = [5, 5, 5]
    torch.testing.assert_close(activation_regularization(h, 2.0, batch_first=True), _direct_ar(h, full, 2.0))
    torch.testing.assert_close(temporal_activation_regularization(h, 1.5, batch_first=True), _direct_tar(h, full, 1.5))
    time_first = h.transpose(0, 1)
    torch.testing.assert_close(activation_regularization(time_first, 2.0), _direct_ar(h, full, 2.0))
    torch.testing.assert_close(temporal_activation_regularization(time_first, 1.5), _direct_tar(h, full, 1.5))


def test_padded_with_lengths_and_packed_leave_out_the_padding(h: torch.Tensor) -> None:
    lengths = [5, 2, 1]
    h = h.clone()
    for n, length in enumerate(lengths):
        h[n, length:] = 100.0  # padding that must not count
    expected_ar, expected_tar = _direct_ar(h, lengths, 2.0), _direct_tar(h, lengths, 1.0)
    given = torch.tensor(lengths)
    torch.testing.assert_close(activation_regularization(h, 2.0, batch_first=True, lengths=given), expected_ar)
    torch.testing.assert_close(
        temporal_activation_regularization(h, 1.0, batch_first=True, lengths=given), expected_tar
    )
    packed = pack_padded_sequence(h, given, batch_first=True, enforce_sorted=False)
    torch.testing.assert_close(activation_regularization(packed, 2.0), expected_ar)
    torch.testing.assert_close(temporal_activation_regularization(packed, 1.0), expected_tar)


def test_gradient_flows_and_edges() -> None:
    h = torch.randn(2, 4, 3, requires_grad=True)
    activation_regularization(h, 2.0, batch_first=True).backward()
    torch.testing.assert_close(h.grad, 2.0 * 2 * h.detach() / h.numel())
    one_step = torch.randn(1, 2, 3)  # (L=1, N, C): no difference to penalize
    assert temporal_activation_regularization(one_step, 1.0).item() == 0.0
    assert activation_regularization(torch.randn(4, 3), 0.0).item() == 0.0  # unbatched (L, C)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda h: activation_regularization(h, -1.0), ValueError, r"^alpha must be a finite number >= 0, got -1\.0$"),
        (lambda h: temporal_activation_regularization(h, "1"), TypeError, r"^beta must be a number >= 0, got str"),
        (
            lambda h: activation_regularization(h.long(), 1.0),
            TypeError,
            r"^activation_regularization: output must be a floating-point tensor, got dtype torch.int64$",
        ),
        (
            lambda h: temporal_activation_regularization(h[0, 0], 1.0),
            ValueError,
            r"^temporal_activation_regularization: output must be 3-D \(L, N, C\) with batch_first=False",
        ),
        (
            lambda h: activation_regularization(h, 1.0, batch_first=True, lengths=torch.tensor([5, 6, 1])),
            ValueError,
            r"lengths must have shape \(3,\) and values in \[0, 5\].*got \[5, 6, 1\]",
        ),
        (
            lambda h: activation_regularization(h, 1.0, batch_first=True, lengths=torch.ones(3)),
            TypeError,
            r"lengths must be an integer Tensor of shape \(N,\)",
        ),
    ],
)
def test_bad_arguments_say_what_to_change(h: torch.Tensor, call, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(h)
