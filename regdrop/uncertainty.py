"""Monte Carlo dropout: predictive uncertainty from a model trained with dropout.

Gal & Ghahramani (2016) read a network trained with dropout as an approximate Bayesian
model: keep the dropout active at prediction time, run ``T`` forward passes on the same
input, and use the spread of the outputs as the model's uncertainty.
"""

from __future__ import annotations

import numbers
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from regdrop.functional._validation import check_positive_int
from regdrop.nn.rates import dropout_modules, rate_attributes

__all__ = ["mc_dropout", "mc_predict"]

# Modules whose own `training` flag only chooses between a fused inference path, which
# skips their dropout submodules, and the ordinary path: MC dropout needs the ordinary one.
_FAST_PATH_GATED: tuple[type[nn.Module], ...] = (nn.TransformerEncoderLayer,)


class _Entry:
    """One model inside :func:`mc_dropout`: how many blocks hold it, and the flags to give back."""

    __slots__ = ("before", "depth")

    def __init__(self, before: list[tuple[nn.Module, bool]]) -> None:
        self.depth = 1
        self.before = before


# Models inside mc_dropout, by identity; a lock makes entering and leaving atomic across threads.
_ACTIVE: weakref.WeakKeyDictionary[nn.Module, _Entry] = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()


def _enter_mc_mode(model: nn.Module) -> None:
    model.eval()
    for module in model.modules():
        if isinstance(module, _FAST_PATH_GATED):
            module.training = True
    for _, module in dropout_modules(model):
        # A dropout module's submodules carry out its dropout, so they follow it.
        module.train()


@contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Context manager in which every dropout of ``model`` is active and everything else is in eval.

    On entry the model is put in ``eval()`` and then every dropout module (see
    :func:`regdrop.nn.dropout_modules`: torch's dropout layers, regdrop's modules, and the
    masks of ``regdrop.nn.LSTM``/``GRU``) is put in ``train()``, so each forward call draws
    new masks while BatchNorm uses its running statistics and other layers behave as at
    evaluation. ``regdrop.nn.GaussianNoise``, which has no rate, stays in eval too. A
    ``torch.nn.TransformerEncoderLayer`` is marked as training (not its submodules) so that it
    takes the path that applies its dropout.

    The blocks of one model nest and may overlap across threads: the first to enter records every
    module's ``training`` flag, the others only count themselves in, and the last to leave gives
    every module the flag it had before the first entered, also when a block raises. Other models,
    and the flags outside the model, are never touched.

    Args:
        model: the model; it is changed in place and yielded.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
        >>> with mc_dropout(model):
        ...     with mc_dropout(model):
        ...         inner = [m.training for m in model]
        ...     [m.training for m in model] == inner
        True
        >>> inner
        [False, False, True]
        >>> [m.training for m in model]
        [True, True, True]
    """
    with _LOCK:
        entry = _ACTIVE.get(model)
        if entry is None:
            before = [(module, module.training) for module in model.modules()]
            _ACTIVE[model] = _Entry(before)
            try:
                _enter_mc_mode(model)
            except BaseException:
                _leave(model)
                raise
        else:
            entry.depth += 1
    try:
        yield model
    finally:
        _leave(model)


def _leave(model: nn.Module) -> None:
    with _LOCK:
        entry = _ACTIVE[model]
        entry.depth -= 1
        if entry.depth == 0:
            del _ACTIVE[model]
            for module, training in entry.before:
                module.training = training


def _active_rates(model: nn.Module) -> list[str]:
    """Names of the rates that make the model's output random under :func:`mc_dropout`."""
    active = []
    for name, module in dropout_modules(model):
        for attribute in rate_attributes(module):
            if float(getattr(module, attribute)) <= 0.0:
                continue
            # An RNN's `dropout` acts between stacked layers only.
            if isinstance(module, nn.RNNBase) and attribute == "dropout" and module.num_layers < 2:
                continue
            active.append(f"{name}.{attribute}" if name else attribute)
    return active


def mc_predict(
    model: nn.Module,
    input: Tensor,
    samples: int = 50,
    batch_size: int | None = None,
    transform: Callable[[object], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Return the Monte Carlo dropout mean and standard deviation of ``model(input)``.

    With :math:`\hat y_t = f(x; \text{masks}_t)` the output of the :math:`t`-th of
    :math:`T` forward passes under :func:`mc_dropout`,

    .. math::
        \mu = \frac{1}{T}\sum_{t=1}^{T} \hat y_t, \qquad
        \sigma = \sqrt{\frac{1}{T}\sum_{t=1}^{T} (\hat y_t - \mu)^2},

    the spread of the predictive distribution the dropout defines (Gal & Ghahramani, 2016;
    add the data noise for a full predictive variance). Each pass is its own forward call,
    so masks shared across a batch (batch-shared recurrent masks, weight dropout) are still
    drawn afresh for every sample. The model's ``training`` flags are restored afterwards.

    Args:
        model: maps a batch ``input[i:j]`` to a tensor whose first dimension is the batch.
        input: the batch, with the batch as its first dimension.
        samples: number of forward passes :math:`T` (at least 2). Default: 50.
        batch_size: rows of ``input`` per forward call, to bound memory; ``None`` runs the
            whole batch at once. Peak memory holds ``samples`` outputs of one such chunk.
            Default: ``None``.
        transform: applied to each pass's output before averaging, e.g.
            ``lambda out: out.softmax(-1)`` for class probabilities or
            ``lambda out: out[0]`` for a model that returns a tuple. Default: ``None``.

    Shape:
        - input: :math:`(N, *)`, e.g. :math:`(N, L, H_{in})` for a batch-first sequence model.
        - mean, std: the shape of one (transformed) output, :math:`(N, *)`.

    Returns:
        ``(mean, std)``, computed without gradients.

    Raises:
        TypeError: if ``input`` or an output (after ``transform``) is not a tensor.
        ValueError: if ``samples`` < 2, ``batch_size`` < 1 or ``input`` has no batch dimension.

    Warns:
        UserWarning: if the model has no dropout with a rate > 0, so ``std`` is 0.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
        >>> mean, std = mc_predict(model, torch.randn(8, 4), samples=20, batch_size=3)
        >>> mean.shape, std.shape, bool((std > 0).all())
        (torch.Size([8, 1]), torch.Size([8, 1]), True)
    """
    samples = _check_samples(samples)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    if not isinstance(input, Tensor):
        raise TypeError(
            f"mc_predict: input must be a Tensor with the batch first, got {type(input).__name__}; "
            "for other inputs wrap the model in a module that takes one tensor"
        )
    if input.dim() == 0:
        raise ValueError("mc_predict: input must have a batch dimension, got a 0-D tensor")
    if not _active_rates(model):
        warnings.warn(
            f"mc_predict: {type(model).__name__} has no dropout that acts (a rate > 0; an RNN's "
            f"`dropout` needs num_layers >= 2), its rates: {_rate_summary(model)}; so every pass gives "
            "the same output and std is 0: give the model a dropout layer (e.g. regdrop.nn.LockedDropout) "
            "or raise a rate",
            UserWarning,
            stacklevel=2,
        )
    chunk = input.shape[0] if batch_size is None else batch_size
    means, stds = [], []
    with torch.no_grad(), mc_dropout(model):
        for part in input.split(max(chunk, 1)):
            outputs = torch.stack([_one_pass(model, part, transform) for _ in range(samples)])
            # One pass over the samples for both, so identical samples give a std of exactly 0.
            std, mean = torch.std_mean(outputs, dim=0, correction=0)
            means.append(mean)
            stds.append(std)
    return torch.cat(means), torch.cat(stds)


def _check_samples(samples: object) -> int:
    """Return ``samples`` after checking it is an int >= 2 (a standard deviation needs two passes).

    Example:
        >>> _check_samples(-3)
        Traceback (most recent call last):
        ...
        ValueError: samples must be an int >= 2 (a standard deviation needs two passes), got -3
    """
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral):
        raise TypeError(f"samples must be an int >= 2, got {type(samples).__name__} {samples!r}")
    if samples < 2:
        raise ValueError(f"samples must be an int >= 2 (a standard deviation needs two passes), got {samples}")
    return int(samples)


def _one_pass(model: nn.Module, input: Tensor, transform: Callable[[object], Tensor] | None) -> Tensor:
    output = model(input)
    if transform is not None:
        output = transform(output)
    if not isinstance(output, Tensor):
        raise TypeError(
            f"mc_predict: the model's output must be a Tensor, got {type(output).__name__}; "
            "pass transform= to pick one, e.g. transform=lambda out: out[0]"
        )
    return output


def _rate_summary(model: nn.Module) -> str:
    names = [
        f"{name + '.' if name else ''}{attribute}={float(getattr(module, attribute))}"
        for name, module in dropout_modules(model)
        for attribute in rate_attributes(module)
    ]
    return ", ".join(names) if names else "none"
