"""Explicit tuples of torch's public module classes, for ``isinstance`` checks.

torch groups these under private bases (``torch.nn.modules.dropout._DropoutNd``,
``torch.nn.modules.conv._ConvNd``, ``_ConvTransposeNd``) that may change in any release;
the public classes below are what regdrop means. The lazy convolutions subclass the
eager ones, so they are covered.
"""

from __future__ import annotations

from torch import nn

__all__ = ["CONV_MODULES", "CONV_TRANSPOSE_MODULES", "DROPOUT_MODULES"]

#: torch's dropout modules: each has a dropout rate ``p`` that acts only in training.
DROPOUT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)

#: torch's transposed convolutions: their weight is ``(in_channels, out_channels // groups, *kernel)``.
# Left to inference (a tuple of three exact types), so that isinstance narrows to them.
CONV_TRANSPOSE_MODULES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)

#: torch's convolutions, plain and transposed.
CONV_MODULES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, *CONV_TRANSPOSE_MODULES)
