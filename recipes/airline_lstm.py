"""Forecast a real series (Airline passengers by default; CO2 or a CSV column of yours) with a regularized LSTM.

The split is the one of the well-known Keras LSTM example on Airline: the first 67% of the
months train (here the last 10% of the series out of them validate, for early stopping), the
last 33% test, so the test RMSE (thousands of passengers) compares with that example's 47.53.
Each month is forecast one step ahead from the 24 observed months before it (the Keras
example used 1); the model standardizes each input window and maps its forecast back.
``--model.difference 12`` makes the network forecast the change from the same month a year
before (the seasonal difference), and ``--tune N`` tries both on validation data. The
network is a 2-layer ``regdrop.nn.LSTM`` with variational dropout between layers and
recurrent dropout, ``LockedDropout`` before the head, ``MaxNorm`` and early stopping.

Run it (CPU, well under a minute)::

    python recipes/airline_lstm.py
    python recipes/airline_lstm.py --model.regularize false        # the same network, unregularized
    python recipes/airline_lstm.py --model.difference 12            # forecast the change from a year before
    python recipes/airline_lstm.py --tune 8                          # a study on validation data, then a test
    python recipes/airline_lstm.py --data.dataset co2 --data.input_length 52 --data.horizon 4
    python recipes/airline_lstm.py --data.dataset my_series.csv --data.column sales
    python recipes/airline_lstm.py --help                          # every option
    tensorboard --logdir lightning_logs
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make `import common` work as it does for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightning.pytorch.cli import ArgsType

from common import RecipeCLI, RunSummary, SequenceModel
from common.datasets import RealSeriesDataModule

__all__ = ["cli", "main"]

MODEL_DEFAULTS = {
    "cell": "lstm",
    "hidden_size": 32,
    "num_layers": 2,
    "dropout": 0.2,
    "recurrent_dropout": 0.2,
    "output_dropout": 0.2,
    "lr": 0.003,
}
# two years of months: a window that holds two periods lets --tune try the seasonal difference (--model.difference)
DATA_DEFAULTS = {"dataset": "airline", "input_length": 24, "horizon": 1, "batch_size": 16}
TRAINER_DEFAULTS = {"max_epochs": 150, "gradient_clip_val": 1.0, "log_every_n_steps": 5}
# early stopping stops the run but keeps the last weights (Keras's and Lightning's default): the learning rate
# halves on every plateau, so the last weights are the annealed ones, and the validation window (10% of a short
# series, just before the test) is a poor judge of the best epoch: restoring it cost 1.0 RMSE on sunspots and
# 6-115 on lynx (recipes/STOPPING.md); --early_stopping.restore_best_weights true restores it
CALLBACK_DEFAULTS = {
    "early_stopping.patience": 25,
    "early_stopping.start_from_epoch": 10,
    "early_stopping.restore_best_weights": False,
}


def cli(args: ArgsType = None) -> RecipeCLI:
    """Parse ``args`` (default: the command line) and build the trainer, model and data, without running."""
    return RecipeCLI(
        "airline_lstm",
        SequenceModel,
        RealSeriesDataModule,
        args=args,
        model_defaults=MODEL_DEFAULTS,
        data_defaults=DATA_DEFAULTS,
        trainer_defaults=TRAINER_DEFAULTS,
        callback_defaults=CALLBACK_DEFAULTS,
        description=__doc__.split("\n\n")[0] + " See recipes/airline_lstm.py for examples.",
    )


def main(args: ArgsType = None) -> RunSummary:
    """Run the recipe with ``args`` (default: the command line) and return its summary."""
    return cli(args).fit_and_test()


if __name__ == "__main__":
    main()
