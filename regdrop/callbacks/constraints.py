r"""Weight-constraint callbacks: project chosen weights after every optimizer step that updated them.

Lightning has no hook between ``optimizer.step()`` and the next batch, and the hooks around it
(``on_before_optimizer_step``, ``on_train_batch_end``) also run when mixed precision skipped
the step or, under gradient accumulation, when there was no step at all. The callbacks here
register :meth:`torch.optim.Optimizer.register_step_post_hook` on each of the trainer's
optimizers instead: it fires exactly when ``optimizer.step()`` has run. ``GradScaler`` does not
call ``step()`` when it found inf/NaN gradients, so such a step is not projected; with
accumulation the optimizer steps (and the weights are projected) once per real step; with
several optimizers each projects the selected parameters it owns after its own step. Under
DDP every rank holds the same weights after a step and applies the same projection, so the
ranks stay identical with no communication.

Before projecting, each hook checks (one device sync per step) that the step left the selected
weights finite. If not, nothing is projected or counted, a warning names the global step and the
parameters, and ``trainer.should_stop`` is set, so that ``EarlyStopping(restore_best_weights=True)``
hands back the best weights; if training goes on anyway (``min_epochs``/``min_steps`` not met), the
next step raises ``FloatingPointError``. Weights held in bfloat16 or float16 (``precision="bf16-true"``)
are projected in float32 and rounded so that the stored weight still satisfies the bound.

The math is in :mod:`regdrop.functional.constraints`.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn
from torch.nn.parameter import is_lazy
from torch.utils.hooks import RemovableHandle
from typing_extensions import override

from regdrop.callbacks._units import CONV, is_bias, named_module_parameters, set_unit_rows_, unit_layout, unit_rows
from regdrop.functional._validation import check_positive_bound
from regdrop.functional.constraints import _EPS, _check_min_max, _max_norm_, _min_max_norm_, _non_neg_, _unit_norm_

__all__ = ["WeightConstraint", "MaxNorm", "UnitNorm", "NonNeg", "MinMaxNorm", "default_constrained_modules"]

ModuleTypes = type[nn.Module] | tuple[type[nn.Module], ...]
NamePattern = str | re.Pattern[str]
NamePatterns = NamePattern | Sequence[NamePattern]


def default_constrained_modules() -> tuple[type[nn.Module], ...]:
    """The layer types whose weights the constraints select when neither ``modules`` nor ``names`` is given.

    ``Linear`` and ``Bilinear``, every convolution (``Conv1d/2d/3d``, the transposed ones and the lazy
    ones), every recurrent layer and cell of :mod:`torch.nn` (``RNN``, ``LSTM``, ``GRU``, ``*Cell``),
    and the recurrent layers of :mod:`regdrop.nn`.

    Example:
        >>> nn.LSTM in default_constrained_modules() or issubclass(nn.LSTM, default_constrained_modules())
        True
    """
    types: list[type[nn.Module]] = [
        nn.Linear,
        nn.Bilinear,
        *CONV,
        nn.RNNBase,
        nn.RNNCellBase,
    ]
    import regdrop.nn  # the callbacks sit above regdrop.nn; imported here so this file loads on its own

    for name in ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"):
        layer = getattr(regdrop.nn, name, None)
        if isinstance(layer, type) and issubclass(layer, nn.Module) and not issubclass(layer, tuple(types)):
            types.append(layer)
    return tuple(types)


@dataclass
class _Target:
    """One selected parameter and how to read its units."""

    name: str
    param: nn.Parameter
    dim: int  # the dimension that indexes the output units
    groups: int  # > 1 only for grouped transposed convolutions, whose units straddle dims 0 and 1


class WeightConstraint(Callback):
    r"""Base class of the weight constraints: chooses the parameters and applies the projection after each step.

    A subclass only says how to project one weight (:meth:`project_`). This class resolves which
    parameters are constrained when fitting starts, registers a step post-hook on every optimizer
    that updates some of them, removes the hooks when fitting ends (normally or by an exception),
    and records what each projection did.

    Parameters are chosen as follows, and biases (parameters whose own name starts with ``bias``)
    are left out unless ``include_bias=True``:

    - neither ``modules`` nor ``names``: the weights of the layers in :func:`default_constrained_modules`
      (linear, convolutional and recurrent layers);
    - ``modules`` only: the parameters that modules of those types hold directly;
    - ``names`` only: every parameter whose full name (as in ``model.named_parameters()``) matches;
    - both: the parameters of those module types whose full name matches.

    Each pattern in ``names`` must match at least one parameter, and ``modules`` at least one
    submodule, otherwise fitting stops with an error that lists the names that exist.

    Args:
        modules: a module class or tuple of classes whose parameters are constrained. Default: None.
        names: a pattern or sequence of patterns over full parameter names: a ``str`` is a glob
            (``"rnn.weight_hh_*"``, ``*`` also crosses dots), a compiled :class:`re.Pattern` must match
            the whole name. Default: None.
        include_bias: also constrain biases. Default: False.
        project_on_fit_start: project the selected weights once when fitting starts, so that the
            initial (or resumed) weights satisfy the constraint too. Default: False.

    Attributes:
        last_clip_fraction: for each constrained parameter name, the fraction of its units that the
            latest projection changed (read on demand; recording it costs no device sync).
        projection_count: how many optimizer steps were followed by a projection, summed over optimizers.

    Raises:
        TypeError: if ``modules`` is not a ``torch.nn.Module`` subclass (or tuple of them), or
            ``names`` is not a str / re.Pattern (or sequence of them).
        ValueError: if ``names`` or ``modules`` is empty; when fitting starts, if a pattern or
            module type selects nothing.
    """

    def __init__(
        self,
        *,
        modules: ModuleTypes | None = None,
        names: NamePatterns | None = None,
        include_bias: bool = False,
        project_on_fit_start: bool = False,
    ) -> None:
        super().__init__()
        self.modules = self._check_modules(modules)
        self.names = self._check_names(names)
        self.include_bias = bool(include_bias)
        self.project_on_fit_start = bool(project_on_fit_start)
        self.projection_count = 0
        self._clip_fraction: dict[str, Tensor] = {}
        self._targets: list[_Target] = []
        self._handles: list[RemovableHandle] = []
        self._trainer: pl.Trainer | None = None

    # ---------------------------------------------------------------- arguments
    def _check_modules(self, modules: object) -> tuple[type[nn.Module], ...] | None:
        if modules is None:
            return None
        types = modules if isinstance(modules, tuple) else (modules,)
        if not types:
            raise ValueError(f"{type(self).__name__}: modules must name at least one module class, got ()")
        for t in types:
            if not (isinstance(t, type) and issubclass(t, nn.Module)):
                raise TypeError(
                    f"{type(self).__name__}: modules must be a torch.nn.Module subclass or a tuple of them,"
                    f" got {t!r}; pass the class (torch.nn.Linear), not an instance"
                )
        return types

    def _check_names(self, names: object) -> tuple[NamePattern, ...] | None:
        if names is None:
            return None
        patterns = (names,) if isinstance(names, (str, re.Pattern)) else names
        if not isinstance(patterns, Sequence) or not patterns:
            raise (TypeError if not isinstance(patterns, Sequence) else ValueError)(
                f"{type(self).__name__}: names must be a glob str, a re.Pattern or a non-empty sequence of them,"
                f" got {names!r}"
            )
        for p in patterns:
            if not isinstance(p, (str, re.Pattern)):
                raise TypeError(
                    f"{type(self).__name__}: each pattern in names must be a glob str or a compiled re.Pattern,"
                    f" got {type(p).__name__} {p!r}"
                )
        return tuple(patterns)

    # ---------------------------------------------------------------- projection
    def project_(self, weight: Tensor, dim: int) -> Tensor:
        """Project ``weight`` in place; return a 1-D bool tensor saying which units changed."""
        raise NotImplementedError(f"{type(self).__name__} must implement project_(weight, dim)")

    def _project_target(self, target: _Target) -> None:
        weight = target.param
        if is_lazy(weight):  # a lazy layer before its first forward has nothing to project yet
            return
        if target.groups == 1:
            changed = self.project_(weight, target.dim)
        else:  # grouped ConvTranspose: its units straddle dims 0 and 1, so project them as rows
            with torch.no_grad():
                units = unit_rows(weight, target.dim, target.groups)
                changed = self.project_(units, 0)
                set_unit_rows_(weight, units, target.groups)
        self._clip_fraction[target.name] = changed.float().mean()

    def _project_targets(self, targets: Sequence[_Target]) -> None:
        for target in targets:
            self._project_target(target)

    def _after_step(self, targets: list[_Target], optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        non_finite = _non_finite(targets)
        if non_finite:
            self._stop_on_non_finite(non_finite)
            return
        self._project_targets(targets)
        self.projection_count += 1

    def _stop_on_non_finite(self, names: list[str]) -> None:
        # Projecting NaN gives NaN and every later step trains from it: stop now, so that
        # EarlyStopping(restore_best_weights=True) hands back the best finite weights.
        trainer = self._trainer
        step = "?" if trainer is None else trainer.global_step
        message = (
            f"{type(self).__name__}: the optimizer step at global step {step} (as training_step sees it) left"
            f" non-finite values (NaN or inf) in {_preview(names)}; nothing was projected. Look for a NaN/inf loss"
            " or gradient (Trainer(detect_anomaly=True), gradient_clip_val=..., a lower learning rate)."
        )
        if trainer is None:
            raise FloatingPointError(message)
        if trainer.should_stop:  # a stop already requested did not end training (min_epochs/min_steps)
            raise FloatingPointError(message + " Training went on after the stop request, so it is ended here.")
        rank_zero_warn(message + " Training stops now.")
        trainer.should_stop = True

    @property
    def last_clip_fraction(self) -> dict[str, float]:
        """Parameter name -> fraction of its units that the latest projection changed."""
        return {name: float(fraction) for name, fraction in self._clip_fraction.items()}

    # ---------------------------------------------------------------- selection
    def _select(self, model: nn.Module) -> list[_Target]:
        cls = type(self).__name__
        explicit_types = self.modules
        types = explicit_types
        if types is None and self.names is None:
            types = default_constrained_modules()
        candidates: list[tuple[str, nn.Module, str, nn.Parameter]] = []
        all_names: list[str] = []
        type_matched = False
        for full_name, module, local_name, param in named_module_parameters(model):
            all_names.append(full_name)
            if types is not None and not isinstance(module, types):
                continue
            type_matched = True
            candidates.append((full_name, module, local_name, param))

        if explicit_types is not None and not type_matched:
            present = sorted({type(m).__name__ for m in model.modules() if any(True for _ in m.parameters(False))})
            raise ValueError(
                f"{cls}: modules={tuple(t.__name__ for t in explicit_types)} matches no submodule with parameters"
                f" of {type(model).__name__}; the model's layers with parameters are: {', '.join(present)}"
            )

        if self.names is not None:
            kept: list[tuple[str, nn.Module, str, nn.Parameter]] = []
            for pattern in self.names:
                matched = [c for c in candidates if _matches(pattern, c[0])]
                if not matched:
                    scope = " of the chosen modules" if explicit_types is not None else ""
                    raise ValueError(
                        f"{cls}: names pattern {_show(pattern)} matches no parameter{scope}. Parameter names look like:"
                        f" {_preview([c[0] for c in candidates] if explicit_types is not None else all_names)}"
                        " (a str is a glob over the whole name, a re.Pattern must match the whole name)"
                    )
                if not self.include_bias and all(is_bias(c[2]) for c in matched):
                    raise ValueError(
                        f"{cls}: names pattern {_show(pattern)} matches only biases"
                        f" ({_preview([c[0] for c in matched])}), which are left out; pass include_bias=True"
                        " to constrain them"
                    )
                kept_names = {c[0] for c in kept}
                kept.extend(c for c in matched if c[0] not in kept_names)
            candidates = kept

        targets = []
        for full_name, module, local_name, param in candidates:
            if is_bias(local_name) and not self.include_bias:
                continue
            dim, groups = unit_layout(module, local_name, param)
            targets.append(_Target(full_name, param, dim, groups))
        if not targets:
            raise ValueError(
                f"{cls} found no parameter to constrain in {type(model).__name__}: by default it takes the weights"
                " of Linear, convolutional and recurrent layers. Choose parameters with modules=... or names=..."
            )
        return targets

    def select_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Return the parameters of ``model`` that this constraint acts on, by full name.

        Raises:
            ValueError: if a pattern in ``names`` or a type in ``modules`` selects nothing.

        Example:
            >>> model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
            >>> list(MaxNorm(3.0).select_parameters(model))
            ['0.weight', '2.weight']
            >>> list(NonNeg(names="1.*", include_bias=True).select_parameters(model))
            ['1.weight', '1.bias']
        """
        return {t.name: t.param for t in self._select(model)}

    def apply_(self, model: nn.Module) -> dict[str, float]:
        """Project the selected parameters of ``model`` now, outside any trainer.

        Returns:
            parameter name -> fraction of its units that changed.

        Example:
            >>> torch.manual_seed(0) is not None
            True
            >>> model = nn.Sequential(nn.Linear(4, 3))
            >>> with torch.no_grad():
            ...     _ = model[0].weight.mul_(10)
            >>> MaxNorm(1.0).apply_(model)
            {'0.weight': 1.0}
            >>> bool(model[0].weight.norm(dim=1).max() <= 1.0 + 1e-6)
            True
        """
        targets = self._select(model)
        self._project_targets(targets)
        return {t.name: float(self._clip_fraction[t.name]) for t in targets if t.name in self._clip_fraction}

    # ---------------------------------------------------------------- Lightning hooks
    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._remove_hooks()
        self._trainer = trainer
        self._targets = self._select(pl_module)
        if self.project_on_fit_start:
            self._project_targets(self._targets)
        optimized: set[int] = set()
        for optimizer in trainer.optimizers:
            owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
            targets = [t for t in self._targets if id(t.param) in owned]
            optimized.update(id(t.param) for t in targets)
            if targets:
                hook = functools.partial(self._after_step, targets)
                self._handles.append(optimizer.register_step_post_hook(hook))
        once = " (only once at fit start)" if self.project_on_fit_start else ""
        missed = [t.name for t in self._targets if id(t.param) not in optimized and t.param.requires_grad]
        if missed:
            rank_zero_warn(
                f"{type(self).__name__}: {_preview(missed)} require grad but no optimizer updates them, so they are"
                f" never projected after a step{once}. Add them to an optimizer or leave them out with names=/modules=."
            )
        frozen = [t.name for t in self._targets if not t.param.requires_grad and not is_lazy(t.param)]
        if frozen:
            rank_zero_warn(
                f"{type(self).__name__}: {_preview(frozen)} are frozen (requires_grad=False), so no optimizer step"
                f" changes them and they are never projected{once}; leave them out with names=/modules=, or pass"
                " project_on_fit_start=True to project them once."
            )

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._release()

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._release()

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._release()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _release(self) -> None:
        # the targets hold the model's parameters: drop them so the callback does not keep the model alive
        self._remove_hooks()
        self._targets = []
        self._trainer = None

    # ---------------------------------------------------------------- state, pickling, repr
    def _settings(self) -> dict[str, Any]:
        return {
            "modules": None if self.modules is None else tuple(t.__name__ for t in self.modules),
            "names": None if self.names is None else tuple(_pattern_key(p) for p in self.names),
            "include_bias": self.include_bias,
            "project_on_fit_start": self.project_on_fit_start,
        }

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(**self._settings())

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"projection_count": self.projection_count, "last_clip_fraction": self.last_clip_fraction}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.projection_count = int(state_dict.get("projection_count", 0))
        fractions = state_dict.get("last_clip_fraction", {})
        self._clip_fraction = {name: torch.tensor(float(value)) for name, value in fractions.items()}

    def __getstate__(self) -> dict[str, Any]:
        # hook handles and the selected parameters belong to one fit; copies and pickles start clean
        state = self.__dict__.copy()
        state["_handles"] = []
        state["_targets"] = []
        state["_trainer"] = None
        return state

    def extra_repr(self) -> str:
        settings = self._settings()
        settings["modules"] = "default" if self.modules is None and self.names is None else settings["modules"]
        if self.names is not None:
            settings["names"] = "(" + ", ".join(_show(p) for p in self.names) + ",)"
        return ", ".join(f"{key}={value}" for key, value in settings.items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def _matches(pattern: NamePattern, name: str) -> bool:
    if isinstance(pattern, str):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern.fullmatch(name) is not None


def _pattern_key(pattern: NamePattern) -> str:
    return pattern if isinstance(pattern, str) else f"re:{pattern.pattern}"


def _show(pattern: NamePattern) -> str:
    return repr(pattern) if isinstance(pattern, str) else f"re.compile({pattern.pattern!r})"


def _non_finite(targets: Sequence[_Target]) -> list[str]:
    """Names of the targets holding a NaN or inf, at the cost of one device sync."""
    live = [t for t in targets if not is_lazy(t.param)]
    if not live:
        return []
    with torch.no_grad():
        finite = torch.stack([torch.isfinite(t.param).all() for t in live])
    if bool(finite.all()):
        return []
    return [t.name for t, ok in zip(live, finite.tolist(), strict=True) if not ok]


def _preview(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "") if names else "(none)"


class MaxNorm(WeightConstraint):
    r"""Keep the norm of every output unit of the chosen weights at most ``max_value``.

    After each optimizer step, every unit (row, in PyTorch's ``(out, in, ...)`` layout) whose
    norm exceeds :math:`c` = ``max_value`` is scaled back onto the bound:

    .. math::
        w_i \leftarrow w_i \cdot \frac{c}{\lVert w_i \rVert_2} \quad \text{if } \lVert w_i \rVert_2 > c

    This is Keras's ``MaxNorm(max_value, axis=0)`` on its transposed kernels, and the max-norm
    regularization that Srivastava et al. (2014) pair with dropout. See
    :func:`regdrop.functional.max_norm_` and :class:`WeightConstraint` for how parameters are chosen.

    Args:
        max_value: the largest norm a unit may have, > 0. Default: 2.0 (as in Keras).
        modules, names, include_bias, project_on_fit_start: see :class:`WeightConstraint`.
        axis: accepted for Keras code: ``0`` (Keras's default, per output unit of its
            ``(in, out)`` kernels) is what this callback does on PyTorch's ``(out, in)`` weights.
            Default: 0.

    Raises:
        ValueError: if ``max_value`` is not a finite number > 0, or ``axis`` is not 0.

    Example:
        >>> import lightning.pytorch as pl
        >>> constraint = MaxNorm(3.0, names="rnn.weight_hh_*")
        >>> constraint  # doctest: +NORMALIZE_WHITESPACE
        MaxNorm(max_value=3.0, modules=None, names=('rnn.weight_hh_*',), include_bias=False,
                project_on_fit_start=False)
        >>> trainer = pl.Trainer(callbacks=[constraint], logger=False)
    """

    def __init__(
        self,
        max_value: float = 2.0,
        *,
        modules: ModuleTypes | None = None,
        names: NamePatterns | None = None,
        include_bias: bool = False,
        project_on_fit_start: bool = False,
        axis: int = 0,
    ) -> None:
        if isinstance(axis, bool) or axis != 0:
            raise ValueError(
                f"MaxNorm: axis must be 0 (Keras's default: one norm per output unit), got {axis!r}; regdrop "
                "keeps PyTorch's (out, in) weight layout and always bounds each output unit (each row), "
                "which is Keras's axis=0 on its (in, out) kernels. Other axes have no regdrop spelling"
            )
        self.max_value = check_positive_bound("max_value", max_value)
        super().__init__(
            modules=modules, names=names, include_bias=include_bias, project_on_fit_start=project_on_fit_start
        )

    @override
    def project_(self, weight: Tensor, dim: int) -> Tensor:
        return _max_norm_(weight, self.max_value, dim, _EPS)

    @override
    def _settings(self) -> dict[str, Any]:
        return {"max_value": self.max_value, **super()._settings()}


class UnitNorm(WeightConstraint):
    r"""Rescale every output unit of the chosen weights to norm 1 after each optimizer step.

    .. math::
        w_i \leftarrow \frac{w_i}{\lVert w_i \rVert_2}

    Keras's ``UnitNorm(axis=0)`` on its transposed kernels; see :func:`regdrop.functional.unit_norm_`.
    A unit of norm zero stays zero.

    Args:
        modules, names, include_bias, project_on_fit_start: see :class:`WeightConstraint`.

    Example:
        >>> UnitNorm(modules=torch.nn.Linear, project_on_fit_start=True)
        UnitNorm(modules=('Linear',), names=None, include_bias=False, project_on_fit_start=True)
    """

    @override
    def project_(self, weight: Tensor, dim: int) -> Tensor:
        return _unit_norm_(weight, dim, _EPS)


class NonNeg(WeightConstraint):
    r"""Set the negative entries of the chosen weights to zero after each optimizer step.

    .. math::
        w \leftarrow \max(w, 0)

    Keras's ``NonNeg``; see :func:`regdrop.functional.non_neg_`. The clip fraction it records
    is the fraction of units that had a negative entry.

    Args:
        modules, names, include_bias, project_on_fit_start: see :class:`WeightConstraint`.

    Example:
        >>> model = torch.nn.Linear(3, 2)
        >>> _ = NonNeg(include_bias=True).apply_(model)
        >>> bool((model.weight >= 0).all() and (model.bias >= 0).all())
        True
    """

    @override
    def project_(self, weight: Tensor, dim: int) -> Tensor:
        return _non_neg_(weight, dim)


class MinMaxNorm(WeightConstraint):
    r"""Keep the norm of every output unit of the chosen weights in ``[min_value, max_value]``.

    After each optimizer step, a unit whose norm :math:`n_i` is outside :math:`[a, b]` is rescaled to

    .. math::
        n_i' = r \cdot \operatorname{clip}(n_i, a, b) + (1 - r) \cdot n_i

    with :math:`r` = ``rate``: ``rate=1`` projects onto the interval, a smaller rate moves the norm
    only part of the way at each step. Keras's ``MinMaxNorm(axis=0)`` on its transposed kernels;
    see :func:`regdrop.functional.min_max_norm_`.

    Args:
        min_value: smallest allowed norm, >= 0. Default: 0.0.
        max_value: largest allowed norm, > 0 and >= ``min_value``. Default: 1.0.
        rate: fraction of the way to move a norm towards the interval, in (0, 1]. Default: 1.0.
        modules, names, include_bias, project_on_fit_start: see :class:`WeightConstraint`.

    Raises:
        ValueError: if a bound is negative or not finite, ``max_value`` is 0, ``min_value > max_value`` or
            ``rate`` is not in (0, 1].

    Example:
        >>> MinMaxNorm(0.5, 2.0, rate=0.5)  # doctest: +NORMALIZE_WHITESPACE
        MinMaxNorm(min_value=0.5, max_value=2.0, rate=0.5, modules=default, names=None, include_bias=False,
                   project_on_fit_start=False)
    """

    def __init__(
        self,
        min_value: float = 0.0,
        max_value: float = 1.0,
        rate: float = 1.0,
        *,
        modules: ModuleTypes | None = None,
        names: NamePatterns | None = None,
        include_bias: bool = False,
        project_on_fit_start: bool = False,
    ) -> None:
        self.min_value, self.max_value, self.rate = _check_min_max(min_value, max_value, rate)
        check_positive_bound("max_value", self.max_value)
        if self.rate == 0.0:
            raise ValueError("rate must be in (0, 1] (0 would never move a norm), got 0.0")
        super().__init__(
            modules=modules, names=names, include_bias=include_bias, project_on_fit_start=project_on_fit_start
        )

    @override
    def project_(self, weight: Tensor, dim: int) -> Tensor:
        return _min_max_norm_(weight, self.min_value, self.max_value, self.rate, dim, _EPS)

    @override
    def _settings(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, **super()._settings()}
