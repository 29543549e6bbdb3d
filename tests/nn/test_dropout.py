"""Tests specific to regdrop.nn.dropout (the common checks are in test_common.py)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from regdrop.nn import (
    AlphaDropout,
    LockedDropout,
    SharedDropout,
    SpatialDropout1d,
    SpatialDropout2d,
    SpatialDropout3d,
)


def positive(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(5)) + 0.5


def test_locked_dropout_mask_fixed_over_time_unlike_torch_dropout() -> None:
    torch.manual_seed(0)
    x = positive(16, 12, 32)
    ours = LockedDropout(0.5, batch_first=True)(x) == 0
    assert torch.equal(ours.amin(dim=1), ours.amax(dim=1))
    theirs = nn.Dropout(0.5)(x) == 0
    assert not torch.equal(theirs.amin(dim=1), theirs.amax(dim=1))


def test_locked_dropout_feeds_an_lstm_with_packed_sequences() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 4, batch_first=True)
    drop = LockedDropout(0.3, batch_first=True)
    lengths = torch.tensor([2, 5, 3])
    packed = pack_padded_sequence(positive(3, 5, 6), lengths, batch_first=True, enforce_sorted=False)
    dropped = drop(packed)
    assert torch.equal(dropped.sorted_indices, packed.sorted_indices)
    out, _ = lstm(dropped)
    padded, out_lengths = pad_packed_sequence(out, batch_first=True)
    assert torch.equal(out_lengths, lengths) and padded.shape == (3, 5, 4)
    padded.sum().backward()
    assert lstm.weight_ih_l0.grad is not None


@pytest.mark.parametrize(
    ("batch_first", "layout"), [(False, "(L, N, C) with batch_first=False"), (True, "(N, L, C) with batch_first=True")]
)
@pytest.mark.parametrize("shape", [(4,), (2, 3, 4, 5)])
def test_locked_dropout_wrong_ndim_names_the_class(batch_first: bool, layout: str, shape: tuple[int, ...]) -> None:
    expected = (
        f"LockedDropout: input must be 3-D {layout} or 2-D (L, C) unbatched, "
        f"got a {len(shape)}-D tensor of shape {tuple(shape)}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        LockedDropout(0.5, batch_first=batch_first)(torch.ones(shape))


SPATIAL = [
    (SpatialDropout1d, False, (8, 40, 6), (2,), "(N, C, L)"),
    (SpatialDropout1d, True, (8, 6, 40), (1,), "(N, L, C)"),
    (SpatialDropout2d, False, (8, 40, 3, 2), (2, 3), "(N, C, H, W)"),
    (SpatialDropout2d, True, (8, 3, 2, 40), (1, 2), "(N, H, W, C)"),
    (SpatialDropout3d, False, (8, 40, 2, 3, 2), (2, 3, 4), "(N, C, D, H, W)"),
    (SpatialDropout3d, True, (8, 2, 3, 2, 40), (1, 2, 3), "(N, D, H, W, C)"),
]


@pytest.mark.parametrize(("cls", "channels_last", "shape", "spatial", "layout"), SPATIAL)
def test_spatial_dropout_drops_whole_channels(cls, channels_last, shape, spatial, layout) -> None:
    torch.manual_seed(1)
    y = cls(0.5, channels_last=channels_last)(positive(*shape))
    dropped = y == 0
    assert torch.equal(dropped.amin(dim=spatial), dropped.amax(dim=spatial))
    per_channel = dropped.amax(dim=spatial)  # (N, C): 320 draws
    assert 0.4 < per_channel.float().mean().item() < 0.6


@pytest.mark.parametrize(("cls", "channels_last", "shape", "spatial", "layout"), SPATIAL)
def test_spatial_dropout_wrong_ndim_names_the_class(cls, channels_last, shape, spatial, layout) -> None:
    bad = torch.ones(shape[:-1])
    expected = (
        f"{cls.__name__}: input must be {len(shape)}-D {layout} with channels_last={channels_last}, "
        f"got a {bad.dim()}-D tensor of shape {tuple(bad.shape)}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        cls(0.5, channels_last=channels_last)(bad)


@pytest.mark.parametrize("module", [SpatialDropout1d(), SharedDropout(0.5, 1), AlphaDropout(0.5)])
def test_packed_sequence_refused_with_the_class_name(module: nn.Module) -> None:
    packed = pack_padded_sequence(torch.ones(3, 2, 4), torch.tensor([3, 2]))
    with pytest.raises(TypeError, match=rf"^{type(module).__name__}: input must be a Tensor, got a PackedSequence"):
        module(packed)


@pytest.mark.parametrize("cls", [SharedDropout, AlphaDropout])
def test_shared_dims_checked_at_construction_and_against_the_input(cls) -> None:
    with pytest.raises(TypeError, match=r"^shared_dims must be an int or a sequence of ints, got str 'time'$"):
        cls(0.5, shared_dims="time")
    with pytest.raises(TypeError, match=r"got \(1, 2.5\)$"):
        cls(0.5, shared_dims=(1, 2.5))
    with pytest.raises(ValueError, match=r"^shared_dims must hold distinct dims, got \(1, 1\)$"):
        cls(0.5, shared_dims=(1, 1))
    module = cls(0.5, shared_dims=(1, -1))
    assert module.shared_dims == (1, -1)
    with pytest.raises(
        ValueError, match=rf"^{cls.__name__}: shared_dims must hold distinct dims, got \(1, -1\) for a 2-D input$"
    ):
        module(torch.ones(3, 4))
    with pytest.raises(
        ValueError, match=rf"^{cls.__name__}: shared_dims must hold dims in \[-1, 0\] for a 1-D input, got \(1, -1\)$"
    ):
        module(torch.ones(3))


def test_reassigning_p_changes_the_drop_rate() -> None:
    torch.manual_seed(2)
    module = LockedDropout(0.1, batch_first=True)
    x = positive(100, 3, 50)
    low = (module(x) == 0).float().mean().item()
    module.p = 0.8  # what a dropout schedule does between steps
    high = (module(x) == 0).float().mean().item()
    assert abs(low - 0.1) < 0.03 and abs(high - 0.8) < 0.03
    assert "p=0.8" in repr(module)


def test_alpha_dropout_module_keeps_selu_statistics_with_a_mask_fixed_over_time() -> None:
    torch.manual_seed(3)
    x = torch.randn(200, 20, 100, requires_grad=True)
    y = AlphaDropout(0.3, shared_dims=1)(x)
    assert abs(y.mean().item()) < 0.03 and abs(y.var().item() - 1.0) < 0.03
    y.sum().backward()
    dropped = x.grad == 0  # dropped entries do not depend on the input
    assert torch.equal(dropped.amin(dim=1), dropped.amax(dim=1))
    assert abs(dropped.float().mean().item() - 0.3) < 0.03
