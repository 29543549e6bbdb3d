"""The shared list of module cases that :mod:`tests.nn.test_common` runs every common check on.

A case says how to build a module, how to build an input for it in a given dtype, what the
module must equal in training (its functional form with the same settings, under the same
seed) and in evaluation, and its expected ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import regdrop.functional as RF
from regdrop.nn import (
    AlphaDropout,
    ConcreteDropout,
    ConcreteLockedDropout,
    EmbeddingDropout,
    GaussianDropout,
    GaussianNoise,
    LockedDropout,
    SharedDropout,
    SpatialDropout1d,
    SpatialDropout2d,
    SpatialDropout3d,
)

Input = Tensor | PackedSequence


def _randn(*shape: int) -> Callable[[torch.dtype], Tensor]:
    def make(dtype: torch.dtype) -> Tensor:
        g = torch.Generator().manual_seed(1234)
        # Shifted away from 0 so that "dropped" and "zero input" never coincide.
        return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.5).to(dtype)

    return make


def _packed(dtype: torch.dtype) -> PackedSequence:
    g = torch.Generator().manual_seed(1234)
    padded = (torch.rand(5, 7, 12, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    return pack_padded_sequence(padded, torch.tensor([3, 7, 1, 5, 7]), batch_first=True, enforce_sorted=False)


def _tokens(dtype: torch.dtype) -> Tensor:
    del dtype  # indices are integers whatever the module's dtype
    g = torch.Generator().manual_seed(1234)
    return torch.randint(0, 30, (4, 9), generator=g)


def _identity(module: nn.Module, x: Input) -> Input:
    return x


@dataclass(frozen=True)
class Case:
    """One module configuration for the common checks."""

    id: str
    cls: type[nn.Module]
    kwargs: Callable[[], dict[str, Any]]  # fresh each call: EmbeddingDropout needs its own Embedding
    input: Callable[[torch.dtype], Input]
    functional: Callable[[nn.Module, Input], Input]  # the training-mode functional form
    repr: str
    eval_output: Callable[[nn.Module, Input], Input] = field(default=_identity)

    def module(self, **overrides: Any) -> nn.Module:
        return self.cls(**{**self.kwargs(), **overrides})


def _embedding_eval(module: nn.Module, x: Input) -> Input:
    assert isinstance(module, EmbeddingDropout)
    return module.embedding(x)


CASES: list[Case] = [
    Case(
        "shared",
        SharedDropout,
        lambda: {"p": 0.3, "shared_dims": (1, -1)},
        _randn(6, 4, 5, 3),
        lambda m, x: RF.shared_dropout(x, 0.3, shared_dims=(1, 3), training=True),
        "SharedDropout(p=0.3, shared_dims=(1, -1))",
    ),
    Case(
        "locked",
        LockedDropout,
        lambda: {"p": 0.3},
        _randn(7, 5, 6),
        lambda m, x: RF.locked_dropout(x, 0.3, batch_first=False, training=True),
        "LockedDropout(p=0.3, batch_first=False)",
    ),
    Case(
        "locked-batch-first",
        LockedDropout,
        lambda: {"p": 0.3, "batch_first": True},
        _randn(5, 7, 6),
        lambda m, x: RF.locked_dropout(x, 0.3, batch_first=True, training=True),
        "LockedDropout(p=0.3, batch_first=True)",
    ),
    Case(
        "locked-unbatched",
        LockedDropout,
        lambda: {"p": 0.3},
        _randn(7, 24),
        lambda m, x: RF.shared_dropout(x, 0.3, shared_dims=0, training=True),
        "LockedDropout(p=0.3, batch_first=False)",
    ),
    Case(
        "locked-packed",
        LockedDropout,
        lambda: {"p": 0.3, "batch_first": True},
        _packed,
        lambda m, x: RF.locked_dropout(x, 0.3, training=True),
        "LockedDropout(p=0.3, batch_first=True)",
    ),
    Case(
        "spatial1d",
        SpatialDropout1d,
        lambda: {"p": 0.3},
        _randn(4, 6, 5),
        lambda m, x: RF.spatial_dropout(x, 0.3, training=True),
        "SpatialDropout1d(p=0.3, channels_last=False)",
    ),
    Case(
        "spatial1d-channels-last",
        SpatialDropout1d,
        lambda: {"p": 0.3, "channels_last": True},
        _randn(4, 5, 6),
        lambda m, x: RF.spatial_dropout(x, 0.3, training=True, channels_last=True),
        "SpatialDropout1d(p=0.3, channels_last=True)",
    ),
    Case(
        "spatial2d",
        SpatialDropout2d,
        lambda: {"p": 0.3},
        _randn(3, 8, 3, 4),
        lambda m, x: RF.spatial_dropout(x, 0.3, training=True),
        "SpatialDropout2d(p=0.3, channels_last=False)",
    ),
    Case(
        "spatial2d-channels-last",
        SpatialDropout2d,
        lambda: {"p": 0.3, "channels_last": True},
        _randn(3, 3, 4, 8),
        lambda m, x: RF.spatial_dropout(x, 0.3, training=True, channels_last=True),
        "SpatialDropout2d(p=0.3, channels_last=True)",
    ),
    Case(
        "spatial3d",
        SpatialDropout3d,
        lambda: {"p": 0.3},
        _randn(3, 8, 2, 3, 2),
        lambda m, x: RF.spatial_dropout(x, 0.3, training=True),
        "SpatialDropout3d(p=0.3, channels_last=False)",
    ),
    Case(
        "alpha",
        AlphaDropout,
        lambda: {"p": 0.2},
        _randn(6, 8),
        lambda m, x: RF.alpha_dropout(x, 0.2, training=True),
        "AlphaDropout(p=0.2, shared_dims=())",
    ),
    Case(
        "alpha-shared",
        AlphaDropout,
        lambda: {"p": 0.2, "shared_dims": 1},
        _randn(6, 5, 4),
        lambda m, x: RF.alpha_dropout(x, 0.2, shared_dims=1, training=True),
        "AlphaDropout(p=0.2, shared_dims=(1,))",
    ),
    Case(
        "gaussian-dropout",
        GaussianDropout,
        lambda: {"p": 0.3},
        _randn(6, 8),
        lambda m, x: RF.gaussian_dropout(x, 0.3, training=True),
        "GaussianDropout(p=0.3)",
    ),
    Case(
        "gaussian-dropout-packed",
        GaussianDropout,
        lambda: {"p": 0.3},
        _packed,
        lambda m, x: RF.gaussian_dropout(x, 0.3, training=True),
        "GaussianDropout(p=0.3)",
    ),
    Case(
        "gaussian-noise",
        GaussianNoise,
        lambda: {"sigma": 0.2},
        _randn(6, 8),
        lambda m, x: RF.gaussian_noise(x, 0.2, training=True),
        "GaussianNoise(sigma=0.2)",
    ),
    Case(
        "embedding",
        EmbeddingDropout,
        lambda: {"embedding": nn.Embedding(30, 5), "p": 0.3},
        _tokens,
        lambda m, x: RF.dropped_embedding(x, m.embedding.weight, 0.3, training=True),
        "EmbeddingDropout(\n  p=0.3\n  (embedding): Embedding(30, 5)\n)",
        _embedding_eval,
    ),
    Case(
        "concrete",
        ConcreteDropout,
        lambda: {"num_features": 8, "p": 0.3},
        _randn(6, 8),
        lambda m, x: RF.concrete_dropout(x, m.p_logit, 0.1, training=True),
        "ConcreteDropout(num_features=8, init_p=0.3, per_unit=False, temperature=0.1, shared_dims=())",
    ),
    Case(
        "concrete-shared-per-unit",
        ConcreteDropout,
        lambda: {"num_features": 3, "p": 0.3, "shared_dims": 1, "per_unit": True, "temperature": 0.5},
        _randn(6, 4, 3),
        lambda m, x: RF.concrete_dropout(x, m.p_logit, 0.5, training=True, shared_dims=1),
        "ConcreteDropout(num_features=3, init_p=0.3, per_unit=True, temperature=0.5, shared_dims=(1,))",
    ),
    Case(
        "concrete-locked",
        ConcreteLockedDropout,
        lambda: {"num_features": 6, "p": 0.3},
        _randn(7, 5, 6),
        lambda m, x: RF.concrete_dropout(x, m.p_logit, 0.1, training=True, shared_dims=0),
        "ConcreteLockedDropout(num_features=6, init_p=0.3, per_unit=False, temperature=0.1, batch_first=False)",
    ),
    Case(
        "concrete-locked-batch-first-per-unit",
        ConcreteLockedDropout,
        lambda: {"num_features": 6, "p": 0.3, "batch_first": True, "per_unit": True},
        _randn(5, 7, 6),
        lambda m, x: RF.concrete_dropout(x, m.p_logit, 0.1, training=True, shared_dims=1),
        "ConcreteLockedDropout(num_features=6, init_p=0.3, per_unit=True, temperature=0.1, batch_first=True)",
    ),
]
