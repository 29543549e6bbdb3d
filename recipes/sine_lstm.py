"""Forecast noisy sine waves with a regularized LSTM.

Many waves of differing period, phase, amplitude and noise are split by wave into train,
validation and test, so the test forecasts waves the model has never seen. The model is a
``regdrop.nn.LSTM`` with variational dropout between its layers and recurrent dropout on the
hidden state, ``LockedDropout`` before the head, a ``MaxNorm`` constraint, and early stopping
that restores the best weights; ``RegularizationMonitor`` logs the generalization gap.

Run it (CPU, about 1-2 minutes)::

    python recipes/sine_lstm.py
    python recipes/sine_lstm.py --model.regularize false          # the same network, unregularized
    python recipes/sine_lstm.py --trainer.accelerator cpu --trainer.devices 2 --trainer.strategy ddp
    python recipes/sine_lstm.py --trainer.precision bf16-mixed
    python recipes/sine_lstm.py --help                            # every option
    tensorboard --logdir lightning_logs
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make `import common` work as it does for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from lightning.pytorch.cli import ArgsType
from torch import Tensor

from common import RecipeCLI, RunSummary, SequenceModel
from common.data import ForecastDataModule
from regdrop.functional._validation import check_nonnegative, check_positive_int

__all__ = ["SineDataModule", "cli", "main", "sine_waves"]

# The data: noisy sine waves, generated.


def _check_range(name: str, value: tuple[float, float], *, positive: bool = False) -> tuple[float, float]:
    if len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    low, high = (check_nonnegative(name, v) for v in value)
    if low > high or (positive and low == 0.0):
        bound = "0 < low <= high" if positive else "0 <= low <= high"
        raise ValueError(f"{name} must be a pair (low, high) with {bound}, got {tuple(value)}")
    return low, high


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator) -> Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def sine_waves(
    periods: Tensor,
    lengths: list[int],
    amplitude: tuple[float, float],
    noise: tuple[float, float],
    generator: torch.Generator,
) -> tuple[list[Tensor], list[Tensor]]:
    r"""Noisy sine waves and their noise-free versions.

    .. math::
        x_i(t) = A_i \sin(2 \pi t / P_i + \varphi_i) + \sigma_i \varepsilon_{i,t},
        \quad \varepsilon_{i,t} \sim \mathcal{N}(0, 1)

    with the period :math:`P_i` given, and the amplitude :math:`A_i`, the noise level
    :math:`\sigma_i` and the phase :math:`\varphi_i` drawn uniformly from ``amplitude``, ``noise``
    and :math:`[0, 2\pi)`.

    Args:
        periods: period of each wave, in steps, ``(S,)``.
        lengths: steps of each wave.
        amplitude: range of :math:`A`.
        noise: range of the noise's standard deviation :math:`\sigma`.
        generator: the random generator (the waves depend only on its state).

    Returns:
        The noisy waves and the clean waves, each a list of ``S`` float32 tensors ``(T_i,)``.

    Example:
        >>> generator = torch.Generator().manual_seed(0)
        >>> noisy, clean = sine_waves(torch.tensor([4.0]), [8], (1.0, 1.0), (0.0, 0.0), generator)
        >>> bool(torch.equal(noisy[0], clean[0])), round(float(clean[0].abs().max()), 3) <= 1.0
        (True, True)
    """
    n = len(lengths)
    amplitudes = _uniform(n, amplitude, generator)
    sigmas = _uniform(n, noise, generator)
    phases = _uniform(n, (0.0, 2.0 * math.pi), generator)
    noisy, clean = [], []
    for i, length in enumerate(lengths):
        t = torch.arange(length, dtype=torch.float64)
        wave = amplitudes[i] * torch.sin(2.0 * math.pi * t / periods[i] + phases[i])
        eps = torch.randn(length, generator=generator, dtype=torch.float64)
        clean.append(wave.float())
        noisy.append((wave + sigmas[i] * eps).float())
    return noisy, clean


class SineDataModule(ForecastDataModule):
    """Forecast noisy sine waves of differing period, phase, amplitude and noise level.

    ``num_series`` waves of ``length`` steps are generated from ``seed``; whole waves go to
    train, validation and test (see :class:`ForecastDataModule`), so the test forecasts waves
    the model has never seen.

    Args:
        num_series: number of waves. Default: 120.
        length: steps per wave. Default: 200.
        period: range of the periods, in steps. Default: (8, 40).
        amplitude: range of the amplitudes. Default: (0.5, 2).
        noise: range of the noise's standard deviation. Default: (0.05, 0.3).
        **kwargs: the windowing, split and loader options of :class:`ForecastDataModule`.

    Raises:
        ValueError: if a count is below 1 or a range is not ``(low, high)`` with ``0 <= low <= high``.

    Example:
        >>> dm = SineDataModule(num_series=10, length=60, input_length=20, horizon=5, stride=5)
        >>> dm.setup("fit")
        >>> x, y = dm.windows("train")[0]
        >>> x.shape, y.shape, len(dm.series_splits["test"])
        (torch.Size([20, 1]), torch.Size([5, 1]), 2)
    """

    def __init__(
        self,
        num_series: int = 120,
        length: int = 200,
        period: tuple[float, float] = (8.0, 40.0),
        amplitude: tuple[float, float] = (0.5, 2.0),
        noise: tuple[float, float] = (0.05, 0.3),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_series = check_positive_int("num_series", num_series)
        self.length = check_positive_int("length", length)
        self.period = _check_range("period", period, positive=True)
        self.amplitude = _check_range("amplitude", amplitude)
        self.noise = _check_range("noise", noise)
        self._generated: tuple[list[Tensor], list[Tensor]] | None = None

    def _waves(self) -> tuple[list[Tensor], list[Tensor]]:
        if self._generated is None:
            generator = torch.Generator().manual_seed(self.seed)
            periods = _uniform(self.num_series, self.period, generator)
            lengths = [self.length] * self.num_series
            self._generated = sine_waves(periods, lengths, self.amplitude, self.noise, generator)
        return self._generated

    def load_series(self) -> list[Tensor]:
        """The noisy waves."""
        return self._waves()[0]

    def test_truth(self) -> list[Tensor]:
        """The noise-free test waves, aligned step for step with :attr:`test_series`."""
        return self._split([c.unsqueeze(1) for c in self._waves()[1]])["test"]


# The recipe: the model's defaults and the command line.

MODEL_DEFAULTS = {
    "cell": "lstm",
    "hidden_size": 64,
    "num_layers": 2,
    "dropout": 0.2,
    "recurrent_dropout": 0.2,
    "output_dropout": 0.2,
    "lr": 0.003,
}
DATA_DEFAULTS = {"num_series": 120, "length": 200, "input_length": 48, "horizon": 12, "stride": 3, "batch_size": 64}
TRAINER_DEFAULTS = {"max_epochs": 30, "gradient_clip_val": 1.0}


def cli(args: ArgsType = None) -> RecipeCLI:
    """Parse ``args`` (default: the command line) and build the trainer, model and data, without running."""
    return RecipeCLI(
        "sine_lstm",
        SequenceModel,
        SineDataModule,
        args=args,
        model_defaults=MODEL_DEFAULTS,
        data_defaults=DATA_DEFAULTS,
        trainer_defaults=TRAINER_DEFAULTS,
        description=__doc__.split("\n\n")[0] + " Every option is listed below; see recipes/sine_lstm.py for examples.",
    )


def main(args: ArgsType = None) -> RunSummary:
    """Run the recipe with ``args`` (default: the command line) and return its summary."""
    return cli(args).fit_and_test()


if __name__ == "__main__":
    main()
