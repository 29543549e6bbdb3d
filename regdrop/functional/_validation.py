"""Argument checks shared by the functional ops and the modules.

Every check names the argument, the allowed values and what it received, so a wrong call
says how to fix it.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_rate", "check_nonnegative", "check_positive_int"]


def check_rate(name: str, value: object, *, allow_one: bool = True) -> float:
    """Return ``value`` as a float after checking it is a probability.

    Args:
        name: the argument's name, used in the error message.
        value: what the caller passed.
        allow_one: whether 1 is allowed (dropping everything); when False the range is [0, 1).

    Raises:
        TypeError: if ``value`` is not a real number (bools are refused too).
        ValueError: if ``value`` is outside [0, 1] (or [0, 1)) or NaN.

    Example:
        >>> check_rate("p", 0.25)
        0.25
        >>> check_rate("p", 1.5)
        Traceback (most recent call last):
        ...
        ValueError: p must be in [0, 1], got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {type(value).__name__} {value!r}")
    value = float(value)
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if math.isnan(value) or value < 0.0 or not upper_ok:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def check_nonnegative(name: str, value: object) -> float:
    """Return ``value`` as a float after checking it is a finite real number >= 0.

    Example:
        >>> check_nonnegative("sigma", 0.1)
        0.1
        >>> check_nonnegative("sigma", -1)
        Traceback (most recent call last):
        ...
        ValueError: sigma must be a finite number >= 0, got -1.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` after checking it is an int >= 1.

    Example:
        >>> check_positive_int("samples", 0)
        Traceback (most recent call last):
        ...
        ValueError: samples must be an int >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}")
    return int(value)
