"""Finding and setting the dropout rates of a model.

A module is a *dropout module* when it has rates that regularize only in training:

- a class with a ``rate_names`` class attribute (every regdrop module, and any class of
  yours that declares one) has the rates named there, e.g. ``regdrop.nn.LSTM`` has
  ``("input_dropout", "dropout", "recurrent_dropout", "weight_dropout", "zoneout")``;
  its submodules are its own business and are not searched;
- ``torch.nn.Dropout`` and its relatives (``Dropout1d/2d/3d``, ``AlphaDropout``, ``FeatureAlphaDropout``) have ``p``;
- ``torch.nn.LSTM``/``GRU``/``RNN`` (``torch.nn.RNNBase``) and
  ``torch.nn.MultiheadAttention`` have ``dropout``.

A *learned* rate (a module's ``learned_rate_names``, e.g. :class:`regdrop.nn.ConcreteDropout`'s
``p``, or ``regdrop.nn.LSTM(..., learn_rates=True)``'s ``recurrent_dropout``) is a parameter
the optimizer changes: :func:`dropout_rates` reports it (the mean over
units for per-unit rates), :func:`set_dropout_rates` leaves it alone with a warning when told
to set every rate, and refuses to set it by name.

A rate is named ``"<module name>.<attribute>"``, with the module's name as in
``model.named_modules()``: ``"rnn.recurrent_dropout"``, ``"head.0.p"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping

from torch import nn

from regdrop._modules import DROPOUT_MODULES
from regdrop.functional._validation import check_rate

__all__ = [
    "dropout_modules",
    "dropout_rates",
    "learned_rate_keys",
    "rate_attributes",
    "set_dropout_rates",
]

RateSpec = float | Mapping[str, float] | Callable[[str, float], float]


def rate_attributes(module: nn.Module) -> tuple[str, ...]:
    """Return the names of the dropout-rate attributes of ``module`` itself (not its children).

    Args:
        module: any module.

    Returns:
        ``type(module).rate_names`` when the class declares it; ``("p",)`` for torch's
        dropout modules; ``("dropout",)`` for torch's recurrent layers and
        ``MultiheadAttention``; ``()`` for every other module.

    Example:
        >>> rate_attributes(nn.Dropout(0.1)), rate_attributes(nn.GRU(2, 3))
        (('p',), ('dropout',))
        >>> rate_attributes(nn.Linear(2, 3))
        ()
    """
    declared = getattr(type(module), "rate_names", None)
    if declared is not None:
        return tuple(declared)
    if isinstance(module, DROPOUT_MODULES):
        return ("p",)
    if isinstance(module, (nn.RNNBase, nn.MultiheadAttention)):
        return ("dropout",)
    return ()


def _walk(module: nn.Module, prefix: str, seen: set[int]) -> Iterator[tuple[str, nn.Module]]:
    if id(module) in seen:
        return
    seen.add(id(module))
    if rate_attributes(module):
        yield prefix, module
    # A class that declares its rates owns its submodules: listing them too would count
    # the same regularizer twice, or offer a knob the owner overwrites.
    if hasattr(type(module), "rate_names"):
        return
    for name, child in module.named_children():
        yield from _walk(child, f"{prefix}.{name}" if prefix else name, seen)


def dropout_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Return ``(name, module)`` for every dropout module in ``model``, in registration order.

    Modules with all rates at 0 are listed too. A module registered under two names is
    listed once, under the first.

    Args:
        model: the model to search (it may itself be a dropout module, named ``""``).

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2))
        >>> [name for name, _ in dropout_modules(model)]
        ['1']
    """
    return list(_walk(model, "", set()))


def _rate_key(module_name: str, attribute: str) -> str:
    return f"{module_name}.{attribute}" if module_name else attribute


def dropout_rates(model: nn.Module) -> dict[str, float]:
    """Return every dropout rate of ``model``, keyed ``"<module name>.<attribute>"``.

    Args:
        model: the model to search.

    Example:
        >>> model = nn.Sequential(nn.LSTM(4, 8, num_layers=2, dropout=0.25),
        ...                             nn.Dropout(0.1))
        >>> dropout_rates(model)
        {'0.dropout': 0.25, '1.p': 0.1}
    """
    return {
        _rate_key(name, attribute): float(getattr(module, attribute))
        for name, module in dropout_modules(model)
        for attribute in rate_attributes(module)
    }


def learned_rate_keys(model: nn.Module) -> list[str]:
    """Return the names (as in :func:`dropout_rates`) of the rates of ``model`` that are learned parameters.

    Example:
        >>> from regdrop.nn import ConcreteDropout
        >>> learned_rate_keys(nn.Sequential(nn.Dropout(0.1), ConcreteDropout(4)))
        ['1.p']
    """
    return [
        _rate_key(name, attribute)
        for name, module in dropout_modules(model)
        for attribute in getattr(module, "learned_rate_names", ())
    ]


def check_rate_names(
    who: str, what: str, names: Iterable[str], settable: Iterable[str], learned: Iterable[str], action: str
) -> None:
    """Raise if ``names`` holds a learned rate or a rate the model does not have.

    The one check behind :func:`set_dropout_rates` and :class:`~regdrop.callbacks.DropoutScheduler`;
    ``who`` and ``what`` (the argument) start the message, ``action`` says what a learned rate
    cannot be ("set", "scheduled").

    Raises:
        ValueError: naming the offending rates and the rates the model has.

    Example:
        >>> check_rate_names("f", "rates", ["0.p", "9.p"], ["0.p"], [], "set")
        Traceback (most recent call last):
        ...
        ValueError: f: rates names '9.p', which the model does not have; its rates are ['0.p']
    """
    names, settable, learned = set(names), sorted(settable), set(learned)
    learned_named = sorted(names & learned)
    if learned_named:
        raise ValueError(
            f"{who}: {what} names {', '.join(map(repr, learned_named))}, "
            f"{'a learned rate' if len(learned_named) == 1 else 'learned rates'} (a parameter the optimizer "
            f"updates, e.g. ConcreteDropout.p_logit or LSTM.recurrent_dropout_logit), which cannot be {action}; "
            "build the module with the initial rate you want"
        )
    unknown = sorted(names - set(settable))
    if unknown:
        raise ValueError(
            f"{who}: {what} names {', '.join(map(repr, unknown))}, which the model does not have; "
            f"its rates are {settable}"
        )


def set_dropout_rates(model: nn.Module, rates: RateSpec) -> dict[str, float]:
    """Set dropout rates of ``model`` in place and return all its rates afterwards.

    Every new value is checked before any is set, so a bad value leaves the model unchanged.

    Args:
        model: the model whose rates change.
        rates: one of
            - a float: every rate of the model takes it;
            - a mapping from rate names (as in :func:`dropout_rates`) to floats: those
              rates change, the others stay;
            - a callable ``(name, current_rate) -> new_rate``, called for every rate.

    Returns:
        ``dropout_rates(model)`` after the change.

    Raises:
        TypeError: if ``rates`` is none of the above, or a new rate is not a real number.
        ValueError: if a new rate is outside [0, 1] (the error names the rate), a
            mapping names a rate the model does not have (the error lists the rates it has),
            or a mapping names a learned rate (see :func:`learned_rate_keys`).

    Warns:
        UserWarning: when a float or a callable would set learned rates: they are skipped.

    Example:
        >>> model = nn.Sequential(nn.Dropout(0.1), nn.Dropout(0.3))
        >>> set_dropout_rates(model, {"1.p": 0.5})
        {'0.p': 0.1, '1.p': 0.5}
        >>> set_dropout_rates(model, lambda name, rate: rate / 2)
        {'0.p': 0.05, '1.p': 0.25}
        >>> set_dropout_rates(model, {"0.p": 1.5})
        Traceback (most recent call last):
        ...
        ValueError: 0.p must be in [0, 1], got 1.5
    """
    current = dropout_rates(model)
    learned = learned_rate_keys(model)
    if isinstance(rates, Mapping):
        check_rate_names("set_dropout_rates", "rates", rates, current, learned, "set")
        wanted = {name: rates[name] for name in current if name in rates}
    elif callable(rates):
        wanted = {name: rates(name, rate) for name, rate in current.items()}
    elif isinstance(rates, (int, float)) and not isinstance(rates, bool):
        wanted = dict.fromkeys(current, rates)
    else:
        raise TypeError(
            "rates must be a float, a mapping from rate names to floats, or a callable "
            f"(name, rate) -> rate, got {type(rates).__name__} {rates!r}"
        )
    if not isinstance(rates, Mapping) and learned:
        warnings.warn(
            f"set_dropout_rates: leaving the learned rates {learned} as the optimizer has them "
            "(they are parameters, not settings)",
            UserWarning,
            stacklevel=2,
        )
        wanted = {name: rate for name, rate in wanted.items() if name not in learned}
    checked = {name: check_rate(name, value) for name, value in wanted.items()}
    for module_name, module in dropout_modules(model):
        for attribute in rate_attributes(module):
            key = _rate_key(module_name, attribute)
            if key in checked:
                setattr(module, attribute, checked[key])
    return dropout_rates(model)
