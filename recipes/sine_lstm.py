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

import sys
from pathlib import Path

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make `import common` work as it does for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightning.pytorch.cli import ArgsType

from common import RecipeCLI, RunSummary, SequenceModel, SineDataModule

__all__ = ["cli", "main"]

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
