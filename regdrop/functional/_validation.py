"""Argument checks shared by the functional ops, the modules and the callbacks (private).

Every check names the argument, the allowed values and what it received, so a wrong call
says how to fix it. ``who`` (a function or class name) prefixes the errors about tensors,
so a module that passes its class name to a functional op gets its own name in the message
without checking the input a second time.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

__all__ = [
    "check_nonnegative",
    "check_finite_number",
    "check_nonnegative_int",
    "check_positive_bound",
    "check_positive_int",
    "check_rate",
    "check_shared_dims",
    "check_tensor",
    "shape_str",
]


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
        >>> from regdrop.functional._validation import check_rate
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
        >>> from regdrop.functional._validation import check_nonnegative
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


def check_positive_bound(name: str, value: object) -> float:
    """Return ``value`` as a float after checking it is a finite real number > 0 (a norm bound).

    Example:
        >>> from regdrop.functional._validation import check_positive_bound
        >>> check_positive_bound("max_value", 0.0)
        Traceback (most recent call last):
        ...
        ValueError: max_value must be a finite number > 0 (0 would zero every constrained weight), got 0.0
    """
    value = check_nonnegative(name, value)
    if value == 0.0:
        raise ValueError(f"{name} must be a finite number > 0 (0 would zero every constrained weight), got 0.0")
    return value


def check_finite_number(name: str, value: object, *, optional: bool = False) -> float | None:
    """Return ``value`` as a float after checking it is a finite real number (or None if ``optional``).

    Example:
        >>> from regdrop.functional._validation import check_finite_number
        >>> check_finite_number("min_delta", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: min_delta must be a finite number, got nan
    """
    what = "a finite number" + (" or None" if optional else "")
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {value}")
    return float(value)


def check_nonnegative_int(name: str, value: object) -> int:
    """Return ``value`` after checking it is an int >= 0.

    Example:
        >>> from regdrop.functional._validation import check_nonnegative_int
        >>> check_nonnegative_int("patience", 2.5)
        Traceback (most recent call last):
        ...
        TypeError: patience must be an int >= 0, got float 2.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 0, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value}")
    return int(value)


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` after checking it is an int >= 1.

    Example:
        >>> from regdrop.functional._validation import check_positive_int
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


def shape_str(t: Tensor) -> str:
    """``"3-D tensor of shape (2, 5, 4)"``, for error messages."""
    return f"{t.dim()}-D tensor of shape {tuple(t.shape)}"


def check_tensor(value: object, who: str, name: str = "input", *, floating: bool = True, hint: str = "") -> Tensor:
    """Return ``value`` after checking it is a tensor (floating-point unless ``floating=False``).

    Args:
        value: what the caller passed.
        who: the function or class name that prefixes the errors.
        name: the argument's name. Default: ``"input"``.
        floating: whether a floating-point dtype is required. Default: True.
        hint: appended to the error about a ``PackedSequence``, e.g. which op accepts one.

    Raises:
        TypeError: if ``value`` is not a Tensor (a ``PackedSequence`` gets its own message),
            or ``floating`` and its dtype is not floating-point.

    Example:
        >>> import torch
        >>> from regdrop.functional._validation import check_tensor
        >>> check_tensor(torch.ones(2), "LockedDropout").shape
        torch.Size([2])
        >>> check_tensor([1.0], "max_norm_", name="weight")
        Traceback (most recent call last):
        ...
        TypeError: max_norm_: weight must be a Tensor, got list
    """
    if isinstance(value, PackedSequence):
        raise TypeError(f"{who}: {name} must be a Tensor, got a PackedSequence{hint}")
    if not isinstance(value, Tensor):
        raise TypeError(f"{who}: {name} must be a Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{who}: {name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_shared_dims(shared_dims: object, ndim: int | None = None, who: str = "") -> tuple[int, ...]:
    """Return ``shared_dims`` as a tuple of distinct ints; with ``ndim``, as sorted dims in [0, ndim).

    Without ``ndim`` (a module being built, before any input is seen) only the type and the
    distinctness are checked and the dims are returned as given. With ``ndim`` negative dims
    are resolved, and ``who`` prefixes the errors about the dims not fitting the input.

    Raises:
        TypeError: if ``shared_dims`` is not an int or a sequence of ints.
        ValueError: if it repeats a dim, or (with ``ndim``) names a dim outside ``[-ndim, ndim)``.

    Example:
        >>> from regdrop.functional._validation import check_shared_dims
        >>> check_shared_dims(-1), check_shared_dims((2, -3), ndim=3)
        ((-1,), (0, 2))
        >>> check_shared_dims(3, ndim=3, who="SharedDropout")
        Traceback (most recent call last):
        ...
        ValueError: SharedDropout: shared_dims must hold dims in [-3, 2] for a 3-D input, got 3
    """
    dims = (shared_dims,) if isinstance(shared_dims, numbers.Integral) else shared_dims
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence):
        raise TypeError(
            f"shared_dims must be an int or a sequence of ints, got {type(shared_dims).__name__} {shared_dims!r}"
        )
    if any(isinstance(d, bool) or not isinstance(d, numbers.Integral) for d in dims):
        raise TypeError(f"shared_dims must be an int or a sequence of ints, got {shared_dims!r}")
    given = tuple(int(d) for d in dims)
    if ndim is None:
        if len(set(given)) != len(given):
            raise ValueError(f"shared_dims must hold distinct dims, got {shared_dims!r}")
        return given
    prefix = f"{who}: " if who else ""
    if any(d < -ndim or d >= ndim for d in given):
        raise ValueError(
            f"{prefix}shared_dims must hold dims in [{-ndim}, {ndim - 1}] for a {ndim}-D input, got {shared_dims!r}"
        )
    normalized = [d % ndim for d in given]
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{prefix}shared_dims must hold distinct dims, got {shared_dims!r} for a {ndim}-D input")
    return tuple(sorted(normalized))
