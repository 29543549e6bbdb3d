"""One LightningModule for the recipes: a regularized recurrent encoder with a forecasting or a classification head."""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchmetrics import Accuracy, MeanAbsoluteError, MeanSquaredError, SumMetric
from typing_extensions import override

from regdrop.functional._validation import check_nonnegative, check_positive_int, check_rate
from regdrop.nn import GRU, LSTM, LockedDropout, SpatialDropout1d

from .arms import Arm, resolve_arm, uses_dropout

__all__ = ["SequenceModel", "optimizer_with_schedule"]

Batch = tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]

_ENCODER_RATES = ("input_dropout", "dropout", "recurrent_dropout", "weight_dropout", "zoneout")
_RATES = (*_ENCODER_RATES, "output_dropout", "spatial_dropout")


def optimizer_with_schedule(
    module: pl.LightningModule, lr: float, weight_decay: float, schedule: str, patience: int, monitor: str = "val_loss"
) -> Any:
    """``configure_optimizers``' AdamW and, with ``schedule="plateau"``, ``ReduceLROnPlateau`` halving on a stall.

    Raises:
        ValueError: if ``schedule`` is not ``"plateau"`` or ``"none"``.
    """
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    if schedule == "none":
        return optimizer
    if schedule != "plateau":
        raise ValueError(f"lr_schedule must be 'plateau' or 'none', got {schedule!r}")
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=patience, min_lr=lr / 64)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": monitor}}


class SequenceModel(pl.LightningModule):
    """A recurrent encoder (``regdrop.nn.LSTM`` or ``GRU``) with a forecasting or a classification head.

    The encoder's last output (bidirectional: and the backward direction's first) goes through ``LockedDropout``
    to a linear head; ``fcn=True`` adds LSTM-FCN's convolutional branch (Karim et al. 2017) beside the encoder.
    Loss MSE or cross-entropy. Logged (torchmetrics, so reduced over DDP): ``train_loss``, ``val_loss``, ``test_loss``
    and ``val_rmse``, ``test_rmse``, ``test_mae``, ``test_amplitude_ratio`` (the forecasts' RMS over the truth's,
    both about the input window's mean) or ``val_acc``, ``test_acc``.

    Args:
        task: ``"forecast"`` or ``"classify"``. Default: ``"forecast"``.
        input_size: channels of the input. Default: 1.
        horizon: steps to forecast (forecast only). Default: 1.
        num_classes: number of classes (classify only). Default: 2.
        cell: ``"lstm"`` or ``"gru"``. Default: ``"lstm"``.
        hidden_size: features of the hidden state. Default: 64.
        num_layers: stacked recurrent layers. Default: 2.
        bidirectional: run a backward encoder too. Default: False.
        input_dropout: variational dropout on the input (one mask per sequence and feature). Default: 0.
        dropout: variational dropout between stacked layers. Default: 0.2.
        recurrent_dropout: dropout on :math:`h_{t-1}` in the hidden-to-hidden product, one mask per sequence kept
            over time. Default: 0.2.
        weight_dropout: DropConnect on the hidden-to-hidden weights. Default: 0.
        zoneout: zoneout on the hidden (and cell) state. Default: 0.
        recurrent_dropout_shared: one recurrent mask for the whole batch (fused-kernel speed). Default: False.
        output_dropout: ``LockedDropout`` on the encoder's output, before the head. Default: 0.2.
        fcn: add the LSTM-FCN convolutional branch beside the encoder. Default: False.
        fcn_channels: filters of the branch's first and last convolution. Default: 128.
        spatial_dropout: ``SpatialDropout1d`` in the convolutional branch. Default: 0.1.
        regularize: the ablation arm (:mod:`common.arms`): ``"all"`` (or True: dropout, weight decay, MaxNorm, early
            stopping), ``"dropout"`` (no early stopping), ``"early_stopping"`` (it alone) or ``"none"`` (or False:
            none of them). Default: True.
        normalize: standardize each sequence per channel (a forecast is mapped back to data units); ``"both"``
            (classify): the standardized channels beside the input as the data module gives it. Default: True.
        lr: AdamW learning rate. Default: 3e-3.
        weight_decay: AdamW decoupled weight decay. Default: 0.
        lr_schedule: ``"plateau"`` halves the rate when val_loss stalls (not below lr / 64). Default: ``"plateau"``.
        lr_patience: epochs without improvement before the rate is halved. Default: 5.
        difference: forecast the series' lag-``difference`` differences, added back (forecast only); 0: off. Default: 0.

    Raises:
        ValueError: if a size is below 1, a rate outside [0, 1], ``lr <= 0``, ``weight_decay < 0`` or a choice unknown.

    Example:
        >>> model = SequenceModel(horizon=3, hidden_size=8).eval()
        >>> model(torch.randn(4, 10, 1)).shape
        torch.Size([4, 3, 1])
        >>> SequenceModel(recurrent_dropout=1.5)
        Traceback (most recent call last):
        ...
        ValueError: recurrent_dropout must be in [0, 1], got 1.5
    """

    def __init__(
        self,
        task: Literal["forecast", "classify"] = "forecast",
        input_size: int = 1,
        horizon: int = 1,
        num_classes: int = 2,
        cell: Literal["lstm", "gru"] = "lstm",
        hidden_size: int = 64,
        num_layers: int = 2,
        bidirectional: bool = False,
        input_dropout: float = 0.0,
        dropout: float = 0.2,
        recurrent_dropout: float = 0.2,
        weight_dropout: float = 0.0,
        zoneout: float = 0.0,
        recurrent_dropout_shared: bool = False,
        output_dropout: float = 0.2,
        fcn: bool = False,
        fcn_channels: int = 128,
        spatial_dropout: float = 0.1,
        regularize: bool | Arm = True,
        normalize: bool | Literal["both"] = True,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["plateau", "none"] = "plateau",
        lr_patience: int = 5,
        difference: int = 0,
    ) -> None:
        super().__init__()
        if task not in ("forecast", "classify"):
            raise ValueError(f"task must be 'forecast' or 'classify', got {task!r}")
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        sizes = dict(input_size=input_size, horizon=horizon, hidden_size=hidden_size, num_layers=num_layers,
                     fcn_channels=fcn_channels, lr_patience=lr_patience)  # fmt: skip
        for name, value in sizes.items():
            check_positive_int(name, value)
        if isinstance(difference, bool) or not isinstance(difference, int) or difference < 0:
            raise ValueError(f"difference must be an int >= 0 (0: off), got {difference!r}")
        if difference and task != "forecast":
            raise ValueError(f"difference needs task='forecast' (it differences the series), got task={task!r}")
        if check_positive_int("num_classes", num_classes) < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes}")
        given = dict(input_dropout=input_dropout, dropout=dropout, recurrent_dropout=recurrent_dropout,
                     weight_dropout=weight_dropout, zoneout=zoneout, output_dropout=output_dropout,
                     spatial_dropout=spatial_dropout)  # fmt: skip
        rates = {name: check_rate(name, value) for name, value in given.items()}
        if not check_nonnegative("lr", lr) > 0.0:
            raise ValueError(f"lr must be a finite number > 0, got {lr}")
        check_nonnegative("weight_decay", weight_decay)
        if lr_schedule not in ("plateau", "none"):
            raise ValueError(f"lr_schedule must be 'plateau' or 'none', got {lr_schedule!r}")
        if normalize not in (True, False, "both") or (normalize == "both" and task != "classify"):
            raise ValueError(
                f"normalize must be true, false or 'both' (classification only), got {normalize!r} for task={task!r}"
            )
        self.arm = resolve_arm(regularize)
        self.save_hyperparameters()
        self.schedule_monitor = "val_loss"  # what the plateau schedule watches (train_loss in --tune's refit)
        self.task = task
        self.regularize = uses_dropout(self.arm)  # the model's own regularizers are on (arms "all", "dropout")
        if not self.regularize:
            rates = dict.fromkeys(rates, 0.0)
        self.weight_decay = float(weight_decay) if self.regularize else 0.0
        channels = 2 * input_size if normalize == "both" else input_size
        self.rnn = (LSTM if cell == "lstm" else GRU)(
            channels,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            recurrent_dropout_shared=recurrent_dropout_shared,
            **{name: rates[name] for name in _ENCODER_RATES},
        )
        self.output_dropout = LockedDropout(rates["output_dropout"], batch_first=True)
        self.conv: torch.nn.ModuleList | None = None
        if fcn:
            widths = (channels, fcn_channels, 2 * fcn_channels, fcn_channels)
            self.conv = torch.nn.ModuleList()
            for k, kernel in enumerate((8, 5, 3)):
                conv = torch.nn.Conv1d(widths[k], widths[k + 1], kernel, padding="same")
                layers: list[torch.nn.Module] = [conv, torch.nn.BatchNorm1d(widths[k + 1]), torch.nn.ReLU()]
                if k < 2:
                    layers.append(SpatialDropout1d(rates["spatial_dropout"]))
                self.conv.append(torch.nn.Sequential(*layers))
        features = (2 if bidirectional else 1) * hidden_size + (fcn_channels if fcn else 0)
        self.head = torch.nn.Linear(features, horizon * input_size if task == "forecast" else num_classes)
        if task == "forecast":
            self.val_rmse, self.test_rmse = MeanSquaredError(squared=False), MeanSquaredError(squared=False)
            self.test_mae = MeanAbsoluteError()
            self.test_forecast_power, self.test_truth_power = SumMetric(), SumMetric()
        else:
            self.val_acc = Accuracy(task="multiclass", num_classes=num_classes)
            self.test_acc = Accuracy(task="multiclass", num_classes=num_classes)

    @property
    def effective_hparams(self) -> dict[str, object]:
        """The init arguments as they act: with ``regularize=False`` every rate and ``weight_decay`` are 0."""
        hparams = {key: value for key, value in self.hparams.items() if not key.startswith("_")}
        if not self.regularize:
            hparams.update(dict.fromkeys(_RATES, 0.0), weight_decay=0.0)
        return hparams

    @staticmethod
    def _time_mask(input: Tensor, lengths: Tensor | None) -> Tensor:
        steps = torch.arange(input.shape[1], device=input.device)
        if lengths is None:
            return torch.ones(1, input.shape[1], 1, dtype=input.dtype, device=input.device)
        return (steps.unsqueeze(0) < lengths.to(input.device).unsqueeze(1)).unsqueeze(2).to(input.dtype)

    def _standardize(self, input: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        mask = self._time_mask(input, lengths)
        count = mask.sum(dim=1, keepdim=True)
        loc = (input * mask).sum(dim=1, keepdim=True) / count
        var = ((input - loc).pow(2) * mask).sum(dim=1, keepdim=True) / count
        # the floor keeps a flat window (scale 0) finite; it is far below any real signal
        scale = var.sqrt().clamp_min(1e-5)
        return (input - loc) / scale * mask, loc, scale

    def _convolve(self, input: Tensor, lengths: Tensor | None) -> Tensor:
        assert self.conv is not None
        weights = self._time_mask(input, lengths).transpose(1, 2)  # (N or 1, 1, L)
        features = input.transpose(1, 2) * weights  # (N, C, L)
        for block in self.conv:
            # zero the padded steps after every block, so that no padding reaches the next convolution
            features = block(features) * weights
        return features.sum(dim=2) / weights.sum(dim=2)

    def _encode(self, input: Tensor, lengths: Tensor | None) -> Tensor:
        if self.conv is None:
            return self._recurrent(input, lengths)
        return torch.cat([self._recurrent(input, lengths), self._convolve(input, lengths)], dim=1)

    def _recurrent(self, input: Tensor, lengths: Tensor | None) -> Tensor:
        ragged = lengths is not None and bool((lengths != input.shape[1]).any())
        if ragged:
            assert lengths is not None
            packed = pack_padded_sequence(input, lengths.cpu(), batch_first=True, enforce_sorted=False)
            output, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=input.shape[1])
        else:
            output, _ = self.rnn(input)
        output = self.output_dropout(output)
        batch = torch.arange(input.shape[0], device=output.device)
        last = (lengths.to(output.device) - 1) if ragged and lengths is not None else input.shape[1] - 1
        hidden = self.hparams.hidden_size
        forward_last = output[batch, last, :hidden]
        if not self.hparams.bidirectional:
            return forward_last
        return torch.cat([forward_last, output[:, 0, hidden:]], dim=1)

    @override
    def forward(self, input: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Forecasts ``(N, horizon, C)`` or logits ``(N, num_classes)`` for ``input (N, L, C)``, ``lengths (N,)``."""
        if input.dim() != 3:
            raise ValueError(f"SequenceModel: input must be (N, L, C), got shape {tuple(input.shape)}")
        lag = self.hparams.difference
        if self.task == "forecast" and lag:
            if input.shape[1] <= lag:
                raise ValueError(
                    f"SequenceModel: difference={lag} needs input windows longer than {lag} steps, got "
                    f"{input.shape[1]} (raise input_length, or lower difference)"
                )
            changes = self._predict(input[:, lag:] - input[:, :-lag], lengths)
            # integrate: each forecast adds its change to the value `lag` steps before it (a forecast, past the window)
            past, steps = input.to(changes.dtype), input.shape[1]
            forecasts: list[Tensor] = []
            for h in range(changes.shape[1]):
                forecasts.append(changes[:, h] + (past[:, steps + h - lag] if h < lag else forecasts[h - lag]))
            return torch.stack(forecasts, dim=1)
        return self._predict(input, lengths)

    def _predict(self, input: Tensor, lengths: Tensor | None) -> Tensor:
        if self.hparams.normalize == "both":
            input = torch.cat([input, self._standardize(input, lengths)[0]], dim=2)
        elif self.hparams.normalize:
            input, loc, scale = self._standardize(input, lengths)
        out = self.head(self._encode(input, lengths)).float()
        if self.task == "classify":
            return out
        out = out.view(input.shape[0], self.hparams.horizon, self.hparams.input_size)
        return out * scale + loc if self.hparams.normalize else out

    def _step(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        input, *lengths, target = batch  # lengths: [] or [lengths (N,)]
        prediction = self(input, *lengths)
        if self.task == "forecast":
            loss = F.mse_loss(prediction, target.float())
        else:
            loss = F.cross_entropy(prediction, target)
        return loss, prediction, target, input

    @override
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss, *_ = self._step(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    @override
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, prediction, target, _ = self._step(batch)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        if self.task == "forecast":
            self.val_rmse(prediction, target)
            self.log("val_rmse", self.val_rmse, on_epoch=True)
        else:
            self.val_acc(prediction, target)
            self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True)

    @override
    def test_step(self, batch: Batch, batch_idx: int) -> None:
        loss, prediction, target, input = self._step(batch)
        self.log("test_loss", loss, on_epoch=True, sync_dist=True)
        if self.task == "forecast":
            self.test_rmse(prediction, target)
            self.test_mae(prediction, target)
            self.log("test_rmse", self.test_rmse, on_epoch=True)
            self.log("test_mae", self.test_mae, on_epoch=True)
            self._case_losses.append((prediction.float() - target.float()).pow(2).flatten(1).mean(1).cpu())
            level = input.float().mean(dim=1, keepdim=True)
            self.test_forecast_power.update((prediction - level).pow(2).sum())
            self.test_truth_power.update((target.float() - level).pow(2).sum())
        else:
            self.test_acc(prediction, target)
            self.log("test_acc", self.test_acc, on_epoch=True)
            self._case_losses.append((prediction.argmax(dim=-1) != target).float().cpu())

    @override
    def on_test_epoch_start(self) -> None:
        self._case_losses: list[Tensor] = []

    @override
    def on_test_epoch_end(self) -> None:
        # the last test's loss per case, in the loader's order: a forecast window's squared error (the mean over its
        # steps and channels), a classified case's 0/1 error. This process's own, not reduced over processes (under
        # DDP every process tests every case, so rank 0 holds them all): the summary's margin test against the
        # baselines, case by case (common.summary.margin)
        self.test_case_losses = torch.cat(self._case_losses).double().numpy() if self._case_losses else None
        if self.task == "forecast":
            truth = float(self.test_truth_power.compute())
            if truth > 0.0:  # a test part equal to its input windows' level has no amplitude to keep
                ratio = math.sqrt(float(self.test_forecast_power.compute()) / truth)
                # the sums are already reduced over processes, so every rank logs the same value
                self.log("test_amplitude_ratio", ratio, sync_dist=True)
            self.test_forecast_power.reset()
            self.test_truth_power.reset()

    @override
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return optimizer_with_schedule(
            self, hp.lr, self.weight_decay, hp.lr_schedule, hp.lr_patience, self.schedule_monitor
        )

    @override
    def extra_repr(self) -> str:
        rates = ", ".join(f"{name}={getattr(self.hparams, name)}" for name in _RATES)
        return f"task={self.task!r}, regularize={self.regularize}, arm={self.arm!r}, {rates}"
