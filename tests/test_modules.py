"""Tests of regdrop._modules: the public tuples cover torch's classes under the private bases.

The private bases are read here only, to watch them: if a torch release adds a public
dropout or convolution class, these tests fail and the tuple gets the new class.
"""

from __future__ import annotations

import importlib

import pytest
from torch import nn

from regdrop._modules import CONV_MODULES, CONV_TRANSPOSE_MODULES, DROPOUT_MODULES


def _public_subclasses(base: type) -> set[type]:
    found: set[type] = set()
    stack = [base]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("torch.nn") and getattr(nn, sub.__name__, None) is sub:
                found.add(sub)
    return found


@pytest.mark.parametrize(
    ("module", "base", "ours"),
    [
        ("torch.nn.modules.dropout", "_DropoutNd", DROPOUT_MODULES),
        ("torch.nn.modules.conv", "_ConvNd", CONV_MODULES),
        ("torch.nn.modules.conv", "_ConvTransposeNd", CONV_TRANSPOSE_MODULES),
    ],
)
def test_tuple_covers_torch_public_classes(module: str, base: str, ours: tuple[type, ...]) -> None:
    private_base = getattr(importlib.import_module(module), base, None)
    if private_base is None:
        pytest.skip(f"{module}.{base} is gone from this torch; the tuple needs no watching")
    public = _public_subclasses(private_base)
    assert public, f"no public subclass of {base} found: the watch itself is broken"
    missing = {cls.__name__ for cls in public if not issubclass(cls, ours)}
    assert not missing, f"add {sorted(missing)} to regdrop._modules"


def test_classification() -> None:
    assert isinstance(nn.FeatureAlphaDropout(0.1), DROPOUT_MODULES)
    assert not isinstance(nn.Linear(2, 2), DROPOUT_MODULES)
    assert isinstance(nn.LazyConvTranspose2d(3, 2), CONV_TRANSPOSE_MODULES)
    assert isinstance(nn.ConvTranspose1d(2, 3, 2), CONV_MODULES)
    assert not isinstance(nn.Conv2d(2, 3, 2), CONV_TRANSPOSE_MODULES)
