"""Generated labelled sequences for the tests of the classification paths (CLI, callbacks, summary).

No recipe classifies sine waves, so this data module lives with the tests; it is also a worked
example of a :class:`common.data.ClassificationDataModule` subclass.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from common.data import ClassificationDataModule
from regdrop.functional._validation import check_positive_int
from sine_lstm import _check_range, sine_waves

__all__ = ["SineClassificationDataModule"]


class SineClassificationDataModule(ClassificationDataModule):
    """Classify noisy sine waves by their period: class ``k`` is the ``k``-th of ``num_classes`` bands.

    The bands split ``period`` evenly on a log scale. Lengths, amplitudes, noise levels and
    phases vary from wave to wave, so the model has to find the period itself.

    Args:
        num_sequences: number of waves. Default: 300.
        num_classes: number of period bands. Default: 3.
        min_length: shortest wave, in steps. Default: 40.
        max_length: longest wave, in steps. Default: 60.
        period: range of the periods, in steps. Default: (4, 32).
        amplitude: range of the amplitudes. Default: (0.5, 2).
        noise: range of the noise's standard deviation. Default: (0.05, 0.3).
        **kwargs: the split and loader options of :class:`ClassificationDataModule`.

    Raises:
        ValueError: if a count is below its minimum or a range is malformed.

    Example:
        >>> dm = SineClassificationDataModule(num_sequences=30, num_classes=3, min_length=10, max_length=12)
        >>> dm.num_classes, dm.num_features, len(dm.splits["test"])
        (3, 1, 4)
    """

    def __init__(
        self,
        num_sequences: int = 300,
        num_classes: int = 3,
        min_length: int = 40,
        max_length: int = 60,
        period: tuple[float, float] = (4.0, 32.0),
        amplitude: tuple[float, float] = (0.5, 2.0),
        noise: tuple[float, float] = (0.05, 0.3),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_sequences = check_positive_int("num_sequences", num_sequences)
        if check_positive_int("num_classes", num_classes) < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes}")
        self._num_classes = num_classes
        self.min_length = check_positive_int("min_length", min_length)
        self.max_length = check_positive_int("max_length", max_length)
        if self.max_length < self.min_length:
            raise ValueError(f"max_length must be >= min_length = {min_length}, got {max_length}")
        if num_sequences < num_classes:
            raise ValueError(f"num_sequences must be >= num_classes = {num_classes}, got {num_sequences}")
        self.period = _check_range("period", period, positive=True)
        self.amplitude = _check_range("amplitude", amplitude)
        self.noise = _check_range("noise", noise)

    def load_sequences(self) -> tuple[list[Tensor], Tensor]:
        """The noisy waves, balanced over the classes, and their period bands."""
        generator = torch.Generator().manual_seed(self.seed)
        n, k = self.num_sequences, self._num_classes
        labels = torch.arange(n) % k
        log_low, log_high = math.log(self.period[0]), math.log(self.period[1])
        band = (log_high - log_low) / k
        within_band = torch.rand(n, generator=generator, dtype=torch.float64)
        periods = torch.exp(log_low + band * (labels.double() + within_band))
        lengths = torch.randint(self.min_length, self.max_length + 1, (n,), generator=generator).tolist()
        noisy, _ = sine_waves(periods, lengths, self.amplitude, self.noise, generator)
        return noisy, labels
