"""Tests of regdrop.nn.ActivationRegularization: the module equals the two functions."""

from __future__ import annotations

import pickle

import pytest
import torch

from regdrop.functional import activation_regularization, temporal_activation_regularization
from regdrop.nn import ActivationRegularization


def test_module_is_ar_of_dropped_plus_tar_of_raw() -> None:
    gen = torch.Generator().manual_seed(1)
    raw, dropped = torch.randn(4, 6, 3, generator=gen), torch.randn(4, 6, 3, generator=gen)
    lengths = torch.tensor([6, 3, 2, 1])
    module = ActivationRegularization(alpha=2.0, beta=0.5, batch_first=True)
    expected = activation_regularization(dropped, 2.0, True, lengths) + temporal_activation_regularization(
        raw, 0.5, True, lengths
    )
    torch.testing.assert_close(module(raw, dropped, lengths), expected)
    # AR reads the dropped output only, TAR the raw one only.
    assert ActivationRegularization(2.0, 0.0, True)(torch.zeros_like(raw), dropped).item() > 0
    assert ActivationRegularization(0.0, 1.0, True)(raw, torch.zeros_like(dropped)).item() > 0


def test_repr_pickle_and_errors() -> None:
    module = ActivationRegularization(1.0, 2.0)
    assert repr(module) == "ActivationRegularization(alpha=1.0, beta=2.0, batch_first=False)"
    assert repr(pickle.loads(pickle.dumps(module))) == repr(module)
    with pytest.raises(ValueError, match=r"^beta must be a finite number >= 0, got -2\.0$"):
        ActivationRegularization(1.0, -2.0)
    with pytest.raises(TypeError, match=r"^ActivationRegularization: output must be a Tensor, got list$"):
        module([1.0], torch.ones(2, 1, 1))
