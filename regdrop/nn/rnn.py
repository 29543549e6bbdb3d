r"""``LSTM`` and ``GRU``: drop-in ``torch.nn`` layers with variational, recurrent and weight dropout and zoneout.

They subclass :class:`torch.nn.LSTM` / :class:`torch.nn.GRU`: same arguments, same parameter
names and shapes (``weight_ih_l0``, ``weight_hh_l0_reverse``, ...), so state_dicts move both
ways, and ``isinstance(layer, torch.nn.LSTM)`` holds. In ``eval()`` mode (without zoneout),
``forward`` *is* ``torch.nn.LSTM.forward``: the same fused kernel, the same numbers. So is
training with every rate at 0, except where torch's CPU kernel is slower than the compiled
loop: a ``GRU``, or an ``LSTM`` on a ``PackedSequence``, training in float32 on the CPU runs
the compiled loop (the same math, equal to float rounding; torch's kernels there run one
autograd op per step: 1.4-6x slower in ``benchmarks/rnn_speed.py``'s "no dropout" rows, 75x
for a packed bidirectional GRU over 1,344 steps). Set
``layer.compiled_training = False`` to keep torch's kernel and its exact numbers. Where torch's
kernel cannot run at all (its padded LSTM under CPU bf16 autocast on a processor without
AVX-512), the layer's own path runs the call, in eval too (``_torch_kernel_fails_here``).

Otherwise ``_RegularizedRNN._regularized_forward`` runs five named steps:
``_unpack`` (the input as packed time-major rows), ``_initial_state`` (checked as torch
checks it), ``_draw_masks``, ``_layer_loop`` and ``_repack``.

Where the masks are drawn and applied:

- **drawn**: all in ``_draw_masks``, once per call, before the first layer. The variational
  input and between-layer masks come from :func:`regdrop.functional.locked_dropout` (one per
  sample in the caller's order, also for a ``PackedSequence``, and feature); the recurrent
  mask and DropConnect on ``W_hh`` from ``_direction``. Zoneout's masks are the exception:
  they change every step, so the time loop's entry (``functional.rnn.lstm_scan`` /
  ``gru_scan``) draws them, one row per step and sample, before its loop.
- **applied**: the variational mask in ``_layer_loop``, on the rows entering each layer; a
  batch-shared recurrent mask and DropConnect by multiplying ``W_hh`` (torch's fused kernel
  then runs); the per-sample recurrent mask :math:`m` inside the time loop, on
  :math:`h_{t-1}` where it enters :math:`W_{hh}` (``regdrop.functional.rnn``: the reference
  loops compute ``h * mask`` before the product; the compiled loop in ``csrc/scan.cpp``
  stores :math:`m \odot h_t` when it stores :math:`h_t`, as the next step's GEMM operand;
  on CUDA, ``_scan_direction`` hands the direction to the Triton loop of
  ``regdrop.functional._triton_rnn``, which does the same).
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from regdrop.functional import _triton_rnn as cuda_loop
from regdrop.functional import rnn as rnn_ops
from regdrop.functional._validation import check_rate
from regdrop.functional.concrete import check_temperature, concrete_dropout_regularizer, concrete_mask
from regdrop.functional.dropconnect import dropconnect
from regdrop.functional.dropout import _packed_row_samples, bernoulli_mask, locked_dropout

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell"]

_RATE_NAMES = ("input_dropout", "dropout", "recurrent_dropout", "weight_dropout", "zoneout")
_LEARNABLE = ("input_dropout", "dropout", "recurrent_dropout")
# The rate a learned rate starts from when it was given as 0 (ConcreteDropout's default p).
_DEFAULT_LEARNED_START = 0.1
_Self = TypeVar("_Self", bound="_RegularizedRNN")


class _RateAttribute:
    r"""A rate attribute (``layer.recurrent_dropout``) that reads the learned rate when it is learned.

    A fixed rate is a plain float in the instance's ``__dict__`` under the same name (so
    pickles and ``torch.nn``'s own ``dropout`` keep working); a learned one reads the mean over
    layers of :math:`\sigma(\ell)` and refuses assignment (the optimizer owns it).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        if self.name in obj.__dict__.get("learned_rate_names", ()):
            return float(torch.sigmoid(obj._parameters[f"{self.name}_logit"].detach()).mean())
        return obj.__dict__[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        if self.name in obj.__dict__.get("learned_rate_names", ()):
            raise AttributeError(
                f"{type(obj).__name__}.{self.name} is learned (learn_rates={obj.learned_rate_names}): it is the "
                f"parameter {self.name}_logit, which the optimizer updates; it cannot be assigned"
            )
        obj.__dict__[self.name] = value


class _Rows(NamedTuple):
    """An input as the time loops see it: packed, time-major rows."""

    data: Tensor  # (R, C): step t owns rows offset[t] : offset[t] + batch_sizes[t]
    batch_sizes: list[int]
    batch_sizes_t: Tensor | None  # a PackedSequence's batch_sizes, else None
    n: int  # batch size
    packed: PackedSequence | None  # the input, if it was packed
    batched: bool
    checked_input: Tensor  # what torch's check_forward_args checks
    gemm_dtype: torch.dtype | None = None  # bfloat16: the compiled loop's products in bf16 (CPU autocast)


class _Direction(NamedTuple):
    weights: list[Tensor]  # w_ih, w_hh (after DropConnect / a batch-shared mask), biases, w_hr
    recurrent_mask: Tensor | None  # per sample, on h(t-1), or None


class _LayerMasks(NamedTuple):
    input: Tensor | None  # the variational mask on the layer's input rows, or None
    directions: list[_Direction]


def _apply_locked_mask(x: Tensor, mask: Tensor, seq: _Rows) -> Tensor:
    """Rows times a mask from ``_locked_mask``: (R, C) rows, or (1, N, C) broadcast over time."""
    if seq.packed is not None:
        return x * mask
    return (x.view(len(seq.batch_sizes), seq.n, x.shape[1]) * mask).view(x.shape)


class _RegularizedRNN:
    """What LSTM and GRU share: the rates, the regularized forward, the torch converters."""

    rate_names: tuple[str, ...] = _RATE_NAMES
    # The instance's learned rates (set by learn_rates=); () when every rate is fixed.
    learned_rate_names: tuple[str, ...] = ()
    input_dropout = _RateAttribute()
    dropout = _RateAttribute()
    recurrent_dropout = _RateAttribute()
    _torch_class: type[torch.nn.RNNBase]
    # Training without dropout on the CPU: the compiled loop where torch's kernel is slower (see
    # the module's docstring); False keeps torch's kernel and its exact numbers.
    compiled_training: bool = True

    # Set by torch.nn.RNNBase.__init__; declared for type checkers.
    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    bidirectional: bool
    proj_size: int
    training: bool

    def _set_rates(
        self,
        input_dropout: float,
        recurrent_dropout: float,
        recurrent_dropout_shared: bool,
        weight_dropout: float,
        zoneout: float,
        learn_rates: object = False,
    ) -> None:
        self.input_dropout = check_rate("input_dropout", input_dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.weight_dropout = check_rate("weight_dropout", weight_dropout)
        self.zoneout = check_rate("zoneout", zoneout)
        if not isinstance(recurrent_dropout_shared, bool):
            raise TypeError(
                f"recurrent_dropout_shared must be a bool, got {type(recurrent_dropout_shared).__name__} "
                f"{recurrent_dropout_shared!r}"
            )
        self.recurrent_dropout_shared = recurrent_dropout_shared
        learns_recurrent = learn_rates is True or (
            isinstance(learn_rates, (list, tuple, set, frozenset)) and "recurrent_dropout" in learn_rates
        )
        if recurrent_dropout_shared and self.recurrent_dropout == 0.0 and not learns_recurrent:
            warnings.warn(
                "recurrent_dropout_shared=True has no effect while recurrent_dropout=0; "
                "set recurrent_dropout > 0 to drop h(t-1) with one mask for the whole batch",
                stacklevel=3,
            )

    def _set_learned(self, learn_rates: object, temperature: float | None, device: Any, dtype: Any) -> None:
        """Turn the rates named by ``learn_rates`` into parameters ``<rate>_logit``, one entry per layer."""
        name = type(self).__name__
        if isinstance(learn_rates, bool):
            wanted = [r for r in _LEARNABLE if r != "dropout" or self.num_layers > 1] if learn_rates else []
        elif isinstance(learn_rates, (list, tuple, set, frozenset)) and all(isinstance(r, str) for r in learn_rates):
            unknown = sorted(set(learn_rates) - set(_LEARNABLE))
            if unknown:
                raise ValueError(
                    f"{name}: learn_rates must be a bool or a sequence of names from {list(_LEARNABLE)}, "
                    f"got {unknown[0]!r}"
                )
            wanted = [r for r in _LEARNABLE if r in learn_rates]
            if "dropout" in wanted and self.num_layers == 1:
                warnings.warn(
                    f"{name}: learn_rates names 'dropout' (between stacked layers), which has no effect with "
                    "num_layers=1; it is not learned",
                    stacklevel=3,
                )
                wanted.remove("dropout")
        else:
            raise TypeError(
                f"{name}: learn_rates must be a bool or a sequence of names from {list(_LEARNABLE)}, "
                f"got {type(learn_rates).__name__} {learn_rates!r}"
            )
        if temperature is not None and not wanted:
            warnings.warn(
                f"{name}: temperature has no effect without learned rates; pass learn_rates=True", stacklevel=3
            )
        self.temperature = check_temperature(0.1 if temperature is None else temperature)
        for rate in wanted:
            start = getattr(self, rate) or _DEFAULT_LEARNED_START
            if not 0.0 < start < 1.0:
                raise ValueError(f"{name}: a learned {rate} must start in (0, 1) (its logit is finite), got {start}")
            entries = {"input_dropout": (), "dropout": (self.num_layers - 1,), "recurrent_dropout": (self.num_layers,)}
            logit = torch.full(entries[rate], math.log(start) - math.log1p(-start), device=device, dtype=dtype)
            self.register_parameter(f"{rate}_logit", torch.nn.Parameter(logit))  # type: ignore[attr-defined]
        self.learned_rate_names = tuple(wanted)
        if wanted:
            # A state_dict without the logits (a torch.nn checkpoint) loads: the rates keep their start.
            self.register_load_state_dict_post_hook(_ignore_missing_logits)  # type: ignore[attr-defined]

    @property
    def learned_rates(self) -> dict[str, Tensor]:
        """The learned rates, detached, one entry per layer: ``input_dropout`` 0-D, ``dropout``
        ``(num_layers - 1,)``, ``recurrent_dropout`` ``(num_layers,)``; ``{}`` when none is learned."""
        return {r: torch.sigmoid(getattr(self, f"{r}_logit").detach()) for r in self.learned_rate_names}

    def learned_rates_per_layer(self) -> dict[str, float]:
        """The learned rates by the layer they act in: ``"input_dropout_l0"``, ``"dropout_l1"``
        (the mask on layer 1's input), ``"recurrent_dropout_l0"``, ...; ``{}`` when none is learned."""
        first = {"input_dropout": 0, "dropout": 1, "recurrent_dropout": 0}
        return {
            f"{rate}_l{first[rate] + k}": float(value)
            for rate, values in self.learned_rates.items()
            for k, value in enumerate(values.reshape(-1))
        }

    def learned_rate_parameters(self) -> list[torch.nn.Parameter]:
        """The logits of the learned rates (what :class:`~regdrop.callbacks.ConcreteRegularization` acts on)."""
        return [getattr(self, f"{r}_logit") for r in self.learned_rate_names]

    def regularization(
        self,
        weight: Tensor | None = None,
        *,
        weight_regularizer: float = 0.0,
        dropout_regularizer: float,
    ) -> Tensor:
        r"""The concrete-dropout regularizer of the learned rates, summed over layers.

        For each learned rate :math:`p` of a layer,
        :math:`\lambda_p K (p \log p + (1 - p) \log(1 - p))` with :math:`K` the number of
        units its masks drop: ``input_size`` for ``input_dropout``, :math:`D \cdot H_{out}`
        for ``dropout`` and ``recurrent_dropout`` (:math:`D` directions). The weight term
        of the paper is left out, as in :func:`regdrop.nn.concrete_regularization` (leave the
        weights to ``weight_decay``).

        Args:
            weight: must be ``None`` (the layer knows its weights). Default: ``None``.
            weight_regularizer: unused (the weight term is left out). Default: 0.
            dropout_regularizer: :math:`\lambda_p \ge 0`, e.g. ``2 / N`` for :math:`N` training samples.

        Raises:
            ValueError: if ``weight`` is given.
        """
        if weight is not None:
            raise ValueError(f"{type(self).__name__}.regularization: weight must be None, got a Tensor")
        num_dir = 2 if self.bidirectional else 1
        h_out = self.proj_size if self.proj_size > 0 else self.hidden_size
        width = {"input_dropout": self.input_size, "dropout": num_dir * h_out, "recurrent_dropout": num_dir * h_out}
        total = self.learned_rate_parameters()[0].new_zeros(()) if self.learned_rate_names else torch.zeros(())
        for rate in self.learned_rate_names:
            p = torch.sigmoid(getattr(self, f"{rate}_logit")).reshape(-1)
            for p_layer in p:
                total = total + concrete_dropout_regularizer(None, p_layer, width[rate], 0.0, dropout_regularizer)
        return total

    def _learned_logit(self, rate: str, layer: int) -> Tensor:
        logit: Tensor = getattr(self, f"{rate}_logit")
        if rate == "input_dropout":
            return logit
        return logit[layer - 1] if rate == "dropout" else logit[layer]

    def _rates(self) -> dict[str, float]:
        # Rates are plain attributes a schedule may reassign; check them where they are used.
        return {name: check_rate(name, getattr(self, name)) for name in self.rate_names}

    def _needs_regularized_path(self, rates: dict[str, float], input: Tensor | PackedSequence) -> bool:
        if rates["zoneout"] > 0.0 or self._torch_kernel_fails_here(input):
            return True
        if not self.training:
            return False
        between = rates["dropout"] if self.num_layers > 1 else 0.0
        if any(r > 0.0 for r in (rates["input_dropout"], between, rates["recurrent_dropout"], rates["weight_dropout"])):
            return True
        if isinstance(input, PackedSequence):
            return self._loop_is_faster(input.data, True)
        return self._loop_is_faster(input, False)

    def _torch_kernel_fails_here(self, input: Tensor | PackedSequence) -> bool:
        """Whether torch's kernel would raise on this call: its padded CPU LSTM under bf16
        autocast goes to oneDNN, which has no bf16 LSTM primitive on some processors (AVX2
        without AVX-512: ``torch.nn.LSTM`` raises "could not create a primitive descriptor for
        the LSTM forward propagation primitive", in training and eval). There the regularized
        path runs the call, every rate 0 included (float32 output, as on that path)."""
        if self.mode != "LSTM" or self.proj_size > 0 or not isinstance(input, Tensor):
            return False  # torch's packed and projected LSTMs do not use oneDNN
        if input.device.type != "cpu" or input.dtype != torch.float32 or not torch.is_autocast_enabled("cpu"):
            return False
        return torch.get_autocast_dtype("cpu") == torch.bfloat16 and not _torch_lstm_runs_under_cpu_bf16_autocast()

    def _loop_is_faster(self, data: Tensor, packed: bool) -> bool:
        """Whether training without dropout runs faster on the compiled loop than on torch's kernel.

        torch's CPU GRU, and its CPU LSTM on packed input, run as one autograd op per step (the
        padded LSTM runs oneDNN's fused kernel, which the loop only matches): measured 1.4-4x (GRU,
        padded; the least at hidden size 512) and 3-75x (packed) slower than the loop, one thread,
        on the 2-core AMD EPYC build machine.
        Autocast, other dtypes and devices keep torch's kernel.
        """
        if not self.compiled_training or data.device.type != "cpu" or data.dtype != torch.float32:
            return False
        if torch.is_autocast_enabled("cpu") or not rnn_ops.extension_available():
            return False
        return packed or self._torch_class is torch.nn.GRU

    def forward(self, input: Tensor | PackedSequence, hx: Any = None) -> tuple[Any, Any]:
        rates = self._rates()
        self._check_inputs(input, hx)
        if not self._needs_regularized_path(rates, input):
            return super().forward(input, hx)  # type: ignore[misc]
        device_type = input.data.device.type if isinstance(input, PackedSequence) else input.device.type
        if torch.is_autocast_enabled(device_type):
            # State, masks and element-wise math stay float32 (autocast would mix precisions step
            # by step). Eval (torch's kernel) is untouched. The CUDA loop runs its GEMMs in
            # autocast's dtype; under CPU bf16 autocast the compiled loop runs its products on
            # bfloat16 operands with float32 accumulation.
            gemm_dtype = _autocast_dtype(device_type) if device_type == "cuda" else None
            bf16 = device_type == "cpu" and torch.get_autocast_dtype(device_type) == torch.bfloat16
            bf16 = bf16 and rnn_ops.cpu_bf16_gemms_native()  # else float32, which is faster there
            with torch.autocast(device_type, enabled=False), cuda_loop.autocast_gemms(gemm_dtype):
                return self._regularized_forward(
                    _to_float32(input), _to_float32(hx), rates, torch.bfloat16 if bf16 else None
                )
        return self._regularized_forward(input, hx, rates)

    def _check_inputs(self, input: Any, hx: Any) -> None:
        """What torch's kernels would misread or report from deep inside, refused up front
        (in every mode): a malformed ``PackedSequence``, an empty sequence, initial states of
        another dtype or device than the input. Shapes are left to torch's own clear checks."""
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            rnn_ops._check_packed(name, input)
            data = input.data
        elif isinstance(input, Tensor):
            data = input
            if input.dim() in (2, 3):
                time_dim = 1 if self.batch_first and input.dim() == 3 else 0
                if input.shape[time_dim] == 0:
                    raise ValueError(
                        f"{name}: input must have at least one time step (L >= 1; torch.nn.{self.mode} "
                        f"refuses L = 0 too), got shape {tuple(input.shape)}"
                    )
        else:
            raise TypeError(f"{name}: input must be a Tensor or a PackedSequence, got {type(input).__name__}")
        if hx is None:
            return
        is_lstm = self.mode == "LSTM"
        if is_lstm and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{name}: hx must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}")
        states = zip(("h_0", "c_0"), hx, strict=True) if is_lstm else [("hx", hx)]
        autocast = torch.is_autocast_enabled(data.device.type)
        for state_name, state in states:
            # Under autocast the regularized path casts both to float32; torch's kernel casts too.
            rnn_ops._check_tensor_arg(name, state_name, state, None if autocast else data)
            if state.device != data.device:
                raise ValueError(
                    f"{name}: {state_name} must be on the input's device, {data.device}, got {state.device}"
                )

    # ------------------------------------------------------------------ regularized path
    def _regularized_forward(
        self, input: Tensor | PackedSequence, hx: Any, rates: dict[str, float], gemm_dtype: torch.dtype | None = None
    ) -> tuple[Any, Any]:
        seq = self._unpack(input)._replace(gemm_dtype=gemm_dtype)
        h0, c0 = self._initial_state(hx, seq)
        masks = self._draw_masks(seq, rates)
        out, h_n, c_n = self._layer_loop(seq, h0, c0, masks, rates["zoneout"])
        return self._repack(seq, out, h_n, c_n)

    def _unpack(self, input: Tensor | PackedSequence) -> _Rows:
        """Step 1: the input as packed, time-major rows (the layout of every time loop)."""
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            data, batch_sizes_t = input.data, input.batch_sizes
            batch_sizes = [int(b) for b in batch_sizes_t.tolist()]
            return _Rows(data, batch_sizes, batch_sizes_t, batch_sizes[0] if batch_sizes else 0, input, True, data)
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: expected input to be 2-D (unbatched) or 3-D, got {input.dim()}-D instead")
        is_batched = input.dim() == 3
        if not is_batched:
            input = input.unsqueeze(0 if self.batch_first else 1)
        x = input.transpose(0, 1) if self.batch_first else input
        steps, n = x.shape[0], x.shape[1]
        return _Rows(x.reshape(steps * n, x.shape[2]), [n] * steps, None, n, None, is_batched, input)

    def _initial_state(self, hx: Any, seq: _Rows) -> tuple[Tensor, Tensor | None]:
        """Step 2: the initial states (zeros if not given) checked as torch checks them, in the
        rows' sample order; ``(h_0, c_0)`` for an LSTM, ``(h_0, None)`` for a GRU."""
        is_lstm = self.mode == "LSTM"
        name = type(self).__name__
        if hx is None:
            num_dir = 2 if self.bidirectional else 1
            h_out = self.proj_size if self.proj_size > 0 else self.hidden_size
            h0 = seq.data.new_zeros(self.num_layers * num_dir, seq.n, h_out)
            hx = (h0, seq.data.new_zeros(self.num_layers * num_dir, seq.n, self.hidden_size)) if is_lstm else h0
            self.check_forward_args(seq.checked_input, hx, seq.batch_sizes_t)  # type: ignore[attr-defined]
        else:
            if not seq.batched:
                hx = _unsqueeze_hidden(hx, name, is_lstm)
            elif seq.packed is None:
                _check_batched_hidden(hx, name, is_lstm)
            # The shapes do not depend on the sample order: check them before permuting by it.
            self.check_forward_args(seq.checked_input, hx, seq.batch_sizes_t)  # type: ignore[attr-defined]
            if seq.packed is not None:
                hx = self.permute_hidden(hx, seq.packed.sorted_indices)  # type: ignore[attr-defined]
        return (hx[0], hx[1]) if is_lstm else (hx, None)

    def _draw_masks(self, seq: _Rows, rates: dict[str, float]) -> list[_LayerMasks]:
        """Step 3: every random draw of this call, per layer, in one place.

        - the variational mask on the layer's input (``input_dropout`` on layer 0, ``dropout``
          between layers), drawn by :func:`~regdrop.functional.locked_dropout`: one per sample
          (in the caller's order, also for a ``PackedSequence``) and feature, fixed over time;
        - per direction, ``W_hh`` after DropConnect (and a batch-shared recurrent mask folded
          into its columns), and the per-sample recurrent mask on :math:`h_{t-1}`.
        """
        num_dir = 2 if self.bidirectional else 1
        h_out = self.proj_size if self.proj_size > 0 else self.hidden_size
        masks = []
        for layer in range(self.num_layers):
            rate = "input_dropout" if layer == 0 else "dropout"
            width = self.input_size if layer == 0 else num_dir * h_out
            input_mask = None
            if self.training and rate in self.learned_rate_names:
                input_mask = self._concrete_locked_mask(seq, width, self._learned_logit(rate, layer))
            elif self.training and rates[rate] > 0.0:
                input_mask = self._locked_mask(seq, width, rates[rate])
            directions = [self._direction(layer, d, rates, seq) for d in range(num_dir)]
            masks.append(_LayerMasks(input_mask, directions))
        return masks

    def _locked_mask(self, seq: _Rows, width: int, p: float) -> Tensor:
        """The mask :func:`locked_dropout` would multiply rows of this width by: (R, width) rows
        for a ``PackedSequence``, (1, N, width) for a padded batch (broadcast over time)."""
        ones = seq.data.new_ones(())
        if seq.packed is not None:
            packed_ones = seq.packed._replace(data=ones.expand(seq.data.shape[0], width))
            return locked_dropout(packed_ones, p).data
        return locked_dropout(ones.expand(1, seq.n, width), p)  # type: ignore[return-value]

    def _concrete_locked_mask(self, seq: _Rows, width: int, logit: Tensor) -> Tensor:
        """A relaxed (concrete) mask per sample and feature, fixed over time, laid out as
        :meth:`_locked_mask`'s: (R, width) rows for a ``PackedSequence``, else (1, N, width)."""
        if seq.packed is not None:
            per_sample = concrete_mask((seq.n, width), logit.to(seq.data.dtype), self.temperature)
            return per_sample[_packed_row_samples(seq.packed)]
        return concrete_mask((1, seq.n, width), logit.to(seq.data.dtype), self.temperature)

    def _direction(self, layer: int, d: int, rates: dict[str, float], seq: _Rows) -> _Direction:
        """This direction's weights, with DropConnect and a batch-shared recurrent mask folded
        into ``W_hh``, and the per-sample recurrent mask (or None)."""
        suffix = "_reverse" if d == 1 else ""
        names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
        if self.bias:
            names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
        if self.proj_size > 0:
            names.append(f"weight_hr_l{layer}{suffix}")
        weights = [getattr(self, w) for w in names]
        mask = None
        if self.training:
            w_hh = weights[1]
            if rates["weight_dropout"] > 0.0:
                w_hh = dropconnect(w_hh, rates["weight_dropout"], True)
            p = rates["recurrent_dropout"]
            learned = "recurrent_dropout" in self.learned_rate_names
            if p > 0.0:
                width = w_hh.shape[1]
                logit = self._learned_logit("recurrent_dropout", layer) if learned else None
                if self.recurrent_dropout_shared:
                    # One mask for the whole batch: scaling the columns of W_hh is the same
                    # product, and keeps torch's fused kernel.
                    if logit is not None:
                        w_hh = w_hh * concrete_mask((width,), logit.to(w_hh.dtype), self.temperature)
                    else:
                        w_hh = w_hh * bernoulli_mask((width,), p, dtype=w_hh.dtype, device=w_hh.device)
                else:
                    # One row per sample in the caller's order, then in the rows' (sorted) order.
                    if logit is not None:
                        mask = concrete_mask((seq.n, width), logit.to(seq.data.dtype), self.temperature)
                    else:
                        mask = bernoulli_mask((seq.n, width), p, dtype=seq.data.dtype, device=seq.data.device)
                    if seq.packed is not None and seq.packed.sorted_indices is not None:
                        mask = mask.index_select(0, seq.packed.sorted_indices)
            weights[1] = w_hh
        return _Direction(weights, mask)

    def _layer_loop(
        self, seq: _Rows, h0: Tensor, c0: Tensor | None, masks: list[_LayerMasks], zoneout: float
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Step 4: the layers in turn, each on the previous one's output rows."""
        num_dir = 2 if self.bidirectional else 1
        x = seq.data
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        for layer, layer_masks in enumerate(masks):
            if layer_masks.input is not None:  # the variational mask, applied where it enters the layer
                x = _apply_locked_mask(x, layer_masks.input, seq)
            first = layer * num_dir
            h0_l = h0[first : first + num_dir]
            c0_l = None if c0 is None else c0[first : first + num_dir]
            unmasked = all(d.recurrent_mask is None for d in layer_masks.directions) and zoneout == 0.0
            if unmasked and not (self.training and self._loop_is_faster(x, seq.packed is not None)):
                x, hs, cs = self._fused_layer(
                    x, seq, h0_l, c0_l, [w for d in layer_masks.directions for w in d.weights]
                )
            else:
                outs, hs, cs = [], [], []
                for d, direction in enumerate(layer_masks.directions):
                    out_d, h_d, c_d = self._scan_direction(
                        x,
                        seq.batch_sizes,
                        h0_l[d],
                        None if c0_l is None else c0_l[d],
                        direction,
                        zoneout,
                        reverse=d == 1,
                        gemm_dtype=seq.gemm_dtype,
                    )
                    outs.append(out_d)
                    hs.append(h_d)
                    if c_d is not None:
                        cs.append(c_d)
                x = torch.cat(outs, 1) if num_dir == 2 else outs[0]
            h_n.extend(hs)
            c_n.extend(cs)
        return x, h_n, c_n

    def _repack(self, seq: _Rows, out: Tensor, h_n: list[Tensor], c_n: list[Tensor]) -> tuple[Any, Any]:
        """Step 5: the output rows and final states in the caller's layout and sample order."""
        is_lstm = self.mode == "LSTM"
        hidden: Any = (torch.stack(h_n), torch.stack(c_n)) if is_lstm else torch.stack(h_n)
        if seq.packed is not None:
            packed = seq.packed._replace(data=out)
            return packed, self.permute_hidden(hidden, seq.packed.unsorted_indices)  # type: ignore[attr-defined]
        output = out.view(len(seq.batch_sizes), seq.n, out.shape[1])
        if self.batch_first:
            output = output.transpose(0, 1)
        if not seq.batched:
            output = output.squeeze(0 if self.batch_first else 1)
            hidden = (hidden[0].squeeze(1), hidden[1].squeeze(1)) if is_lstm else hidden.squeeze(1)
        return output, hidden

    def _fused_layer(
        self, x: Tensor, seq: _Rows, h0: Tensor, c0: Tensor | None, weights: list[Tensor]
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """One layer (both directions) through torch's fused kernel, with the given weights."""
        hx: Any = (h0, c0) if c0 is not None else h0
        fn = torch.lstm if c0 is not None else torch.gru
        if seq.batch_sizes_t is not None:
            result = fn(x, seq.batch_sizes_t, hx, weights, self.bias, 1, 0.0, self.training, self.bidirectional)
            out = result[0]
        else:
            result = fn(
                x.view(len(seq.batch_sizes), seq.n, x.shape[1]),
                hx,
                weights,
                self.bias,
                1,
                0.0,
                self.training,
                self.bidirectional,
                False,
            )
            out = result[0].reshape(x.shape[0], result[0].shape[2])
        return out, list(result[1].unbind(0)), list(result[2].unbind(0)) if c0 is not None else []  # type: ignore[misc]

    def _scan_direction(
        self,
        x: Tensor,
        batch_sizes: list[int],
        h0: Tensor,
        c0: Tensor | None,
        direction: _Direction,
        zoneout: float,
        reverse: bool,
        gemm_dtype: torch.dtype | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One direction of one layer through the time loop (compiled on CPU, else the reference
        loop), with its per-sample recurrent mask (applied to :math:`h_{t-1}` where it enters
        :math:`W_{hh}`), the projection and zoneout (whose masks the loop's caller draws).
        With ``gemm_dtype`` (bfloat16 under CPU autocast) the compiled loop's products run in it."""
        weights, mask = direction
        w_ih, w_hh = weights[0], weights[1]
        b_ih, b_hh = (weights[2], weights[3]) if self.bias else (None, None)
        if cuda_loop.handles(x, h0):  # CUDA: GEMMs + Triton kernels
            w_proj = weights[-1] if c0 is not None and self.proj_size > 0 else None
            return cuda_loop.layer_scan_cuda(
                x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, zoneout, self.training, reverse, w_proj
            )
        if c0 is not None:  # LSTM
            w_hr = weights[-1] if self.proj_size > 0 else None
            bias = b_ih + b_hh if b_ih is not None and b_hh is not None else None
            if gemm_dtype is None:
                xw = rnn_ops.input_projection(x, w_ih, bias)
                bias = None
            else:  # bfloat16 (CPU autocast): xw stays bfloat16, the loop adds the bias in float32
                xw = rnn_ops.input_projection(x, w_ih, None, gemm_dtype, out_dtype=gemm_dtype)
                w_hh = w_hh.to(gemm_dtype)
            return rnn_ops.lstm_scan(
                xw,
                h0,
                c0,
                w_hh,
                mask,
                batch_sizes,
                reverse,
                w_hr=w_hr,
                zoneout=zoneout,
                training=self.training,
                bias=bias,
            )
        xw = rnn_ops.input_projection(x, w_ih, b_ih, gemm_dtype)
        w_hh = w_hh if gemm_dtype is None else w_hh.to(gemm_dtype)
        out, h = rnn_ops.gru_scan(
            xw, h0, w_hh, b_hh, mask, batch_sizes, reverse, zoneout=zoneout, training=self.training
        )
        return out, h, None

    # ------------------------------------------------------------------------- helpers
    def extra_repr(self) -> str:
        s = super().extra_repr()  # type: ignore[misc]
        learned = self.learned_rate_names
        if "dropout" in learned:  # torch prints its own dropout from __dict__: the start, not the rate
            s = re.sub(r", dropout=[^,]*", "", s)
        for name in ("input_dropout", "recurrent_dropout", "weight_dropout", "zoneout"):
            value = getattr(self, name)
            if value and name not in learned:
                s += f", {name}={value}"
        if self.recurrent_dropout and self.recurrent_dropout_shared:
            s += ", recurrent_dropout_shared=True"
        for name, rates in self.learned_rates.items():
            s += f", {name}=learned{[round(r, 4) for r in rates.reshape(-1).tolist()]}"
        if learned:
            s += f", temperature={self.temperature}"
        return s

    def _torch_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bias=self.bias,
            batch_first=self.batch_first,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
        )
        if self.mode == "LSTM":
            kwargs["proj_size"] = self.proj_size
        return kwargs

    @classmethod
    def from_torch(cls: type[_Self], module: torch.nn.RNNBase, **rates: Any) -> _Self:
        """Build this layer from a ``torch.nn`` layer of the same kind, copying its weights.

        Args:
            module: a ``torch.nn.LSTM`` (for ``LSTM``) or ``torch.nn.GRU`` (for ``GRU``).
            **rates: keyword-only regularizers of the new layer (``recurrent_dropout=0.25``, ...).
        """
        if not isinstance(module, cls._torch_class):
            raise TypeError(
                f"{cls.__name__}.from_torch: module must be a torch.nn.{cls._torch_class.__name__}, "
                f"got {type(module).__name__}"
            )
        kwargs = {
            k: getattr(module, k)
            for k in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional")
        }
        if cls._torch_class is torch.nn.LSTM:
            kwargs["proj_size"] = module.proj_size
        ref = next(iter(module.parameters()))
        layer = cls(**kwargs, device=ref.device, dtype=ref.dtype, **rates)  # type: ignore[call-arg]
        layer.load_state_dict(module.state_dict())  # type: ignore[attr-defined]
        layer.train(module.training)  # type: ignore[attr-defined]
        return layer

    def to_torch(self) -> torch.nn.RNNBase:
        """A plain ``torch.nn`` layer with this layer's settings and weights (for serving, ONNX)."""
        ref = next(iter(self.parameters()))  # type: ignore[attr-defined]
        module = self._torch_class(**self._torch_kwargs(), device=ref.device, dtype=ref.dtype)
        # The learned rates' logits are not torch's; in eval() they do nothing.
        logits = {f"{r}_logit" for r in self.learned_rate_names}
        module.load_state_dict({k: v for k, v in self.state_dict().items() if k not in logits})  # type: ignore[attr-defined]
        module.train(self.training)
        return module


def _ignore_missing_logits(module: Any, incompatible: Any) -> None:
    for rate in module.learned_rate_names:
        key = f"{rate}_logit"
        for missing in [k for k in incompatible.missing_keys if k == key or k.endswith(f".{key}")]:
            incompatible.missing_keys.remove(missing)


def _to_float32(value: Any) -> Any:
    if isinstance(value, PackedSequence):
        return value._replace(data=_to_float32(value.data))
    if isinstance(value, Tensor):
        return value.float() if value.is_floating_point() and value.dtype != torch.float64 else value
    if isinstance(value, tuple):
        return tuple(_to_float32(v) for v in value)
    return value


@functools.cache
def _torch_lstm_runs_under_cpu_bf16_autocast() -> bool:
    """Whether torch's fused CPU LSTM runs under bf16 autocast on this processor (tried once on
    a 1-step input; see ``_RegularizedRNN._torch_kernel_fails_here``). Leaves the global random
    stream where it was: the probe's initialization must not change the caller's masks."""
    try:
        with torch.random.fork_rng(devices=[]), torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
            torch.nn.LSTM(2, 2)(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True


def _autocast_dtype(device_type: str) -> torch.dtype:
    """Autocast's low-precision dtype for ``device_type`` (torch >= 2.4 names it per device)."""
    if hasattr(torch, "get_autocast_dtype"):
        return torch.get_autocast_dtype(device_type)
    return torch.get_autocast_gpu_dtype()  # pragma: no cover (torch < 2.4)


def _unsqueeze_hidden(hx: Any, name: str, is_lstm: bool) -> Any:
    if is_lstm:
        if hx[0].dim() != 2 or hx[1].dim() != 2:
            raise RuntimeError(
                f"{name}: for unbatched 2-D input, hx and cx should also be 2-D but got "
                f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
            )
        return (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
    if hx.dim() != 2:
        raise RuntimeError(f"{name}: for unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
    return hx.unsqueeze(1)


def _check_batched_hidden(hx: Any, name: str, is_lstm: bool) -> None:
    if is_lstm:
        if hx[0].dim() != 3 or hx[1].dim() != 3:
            raise RuntimeError(
                f"{name}: for batched 3-D input, hx and cx should also be 3-D but got "
                f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
            )
    elif hx.dim() != 3:
        raise RuntimeError(f"{name}: for batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")


_REGULARIZER_DOC = r"""
    Regularizers (keyword-only, each 0 = off):

    - ``input_dropout``: dropout on the sequence entering the first layer.
    - ``dropout``: dropout between stacked layers (on the output of every layer but the last).
      Both are *variational* (Gal & Ghahramani 2016): one mask per sample and feature, the
      same at every time step. This differs from ``torch.nn.{name}(dropout=)``, whose mask
      changes at every step; the argument keeps its name and position so code and
      checkpoints carry over.
    - ``recurrent_dropout``: a mask :math:`m` on :math:`h_{{t-1}}` where it enters the
      hidden-to-hidden product (:math:`W_{{hh}} (m \odot h_{{t-1}})`), one per sample, fixed over
      time. The state carried forward is not masked{carry}. With
      ``recurrent_dropout_shared=True`` one mask serves the whole batch; it is then folded
      into the columns of :math:`W_{{hh}}` and the layer runs on torch's fused kernel.
      Per-sample masks run on a compiled time loop (CPU) or an autograd loop, as do zoneout
      and, with any of these, ``proj_size``.
    - ``weight_dropout``: DropConnect on :math:`W_{{hh}}` (Merity et al. 2017), one mask per
      forward call, shared by the batch and every step; fused kernel.
    - ``zoneout`` (Krueger et al. 2016): each unit of :math:`h` {zone_c}keeps its previous value
      with probability ``zoneout`` at each step; in ``eval()`` the expectation
      :math:`p\,h_{{t-1}} + (1-p)\,\tilde h_t` is used (so eval differs from ``torch.nn`` then).

    - ``learn_rates`` (concrete dropout, Gal, Hron & Kendall 2017): ``True``, or a sequence
      naming some of ``"input_dropout"``, ``"dropout"``, ``"recurrent_dropout"``, makes those
      rates parameters learned per layer, starting from the value given (0.1 where it is 0):
      ``input_dropout_logit`` (0-D), ``dropout_logit`` (``num_layers - 1``: the mask on layer
      :math:`k`'s input is entry :math:`k - 1`) and ``recurrent_dropout_logit`` (``num_layers``,
      both directions of a layer share it). Their masks are the relaxed masks of
      :func:`~regdrop.functional.concrete_mask` at ``temperature`` (default 0.1), locked over
      time per sample and unit as above, so the gradient reaches the rate (through the
      compiled loop too). Add the regularizer (:class:`~regdrop.callbacks.ConcreteRegularization`,
      or :func:`~regdrop.nn.concrete_regularization` in the loss), or the rates only go down.
      The rate attributes then read the mean over layers (:attr:`learned_rates` has them per
      layer) and refuse assignment. The logits are ordinary parameters under names torch
      does not use: ``state_dict()`` loads into ``torch.nn.{name}`` with ``strict=False``
      (``to_torch()`` drops them), and a ``torch.nn.{name}`` state_dict loads strictly (the
      rates keep their start). ``weight_dropout`` and ``zoneout`` are not learned.

    All dropout masks are inverted (kept units scaled by :math:`1/(1-p)`), drawn anew at every
    forward call in training, never in ``eval()``. In ``eval()`` without zoneout, and in
    training with every rate 0, the layer runs exactly ``torch.nn.{name}.forward``. Under
    ``torch.autocast`` the regularized training path keeps state and element-wise math in
    float32 (its output is float32); under CPU bf16 autocast the compiled loop's GEMMs take
    bfloat16 operands with float32 accumulation where the CPU has native bf16 GEMMs
    (:func:`regdrop.functional.rnn.cpu_bf16_gemms_native`), float32 elsewhere. Where torch's
    padded LSTM cannot run under CPU bf16 autocast (no oneDNN bf16 LSTM primitive on an
    AVX2-only CPU), this layer runs those calls, eval included, on the regularized path. A dropout schedule
    may reassign the rate attributes between calls.
"""


class LSTM(_RegularizedRNN, torch.nn.LSTM):
    __doc__ = (
        r"""Multi-layer LSTM, drop-in for :class:`torch.nn.LSTM`, with recurrent regularization.

    For each element of the input sequence each layer computes (gates in torch's order)

    .. math::
        \begin{array}{ll}
        i_t = \sigma(W_{ii} \tilde x_t + b_{ii} + W_{hi} (m \odot h_{t-1}) + b_{hi}) \\
        f_t = \sigma(W_{if} \tilde x_t + b_{if} + W_{hf} (m \odot h_{t-1}) + b_{hf}) \\
        g_t = \tanh(W_{ig} \tilde x_t + b_{ig} + W_{hg} (m \odot h_{t-1}) + b_{hg}) \\
        o_t = \sigma(W_{io} \tilde x_t + b_{io} + W_{ho} (m \odot h_{t-1}) + b_{ho}) \\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t = o_t \odot \tanh(c_t)
        \end{array}

    where :math:`\tilde x_t = d \odot x_t` is the layer input under its variational mask
    :math:`d` and :math:`m` the recurrent mask (both 1 when off), and :math:`W_{h\cdot}` may
    carry a DropConnect mask. With ``proj_size > 0``, :math:`h_t = W_{hr}(o_t \odot \tanh(c_t))`
    as in torch.
"""
        + _REGULARIZER_DOC.format(name="LSTM", carry=" (the cell state :math:`c` never is)", zone_c="and of :math:`c` ")
        + r"""
    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            proj_size, device, dtype: as in :class:`torch.nn.LSTM` (``dropout`` is variational,
            see above).
        input_dropout: rate on the first layer's input. Default: 0.
        recurrent_dropout: rate on :math:`h_{t-1}` entering :math:`W_{hh}`. Default: 0.
        recurrent_dropout_shared: one recurrent mask for the whole batch. Default: False.
        weight_dropout: DropConnect rate on :math:`W_{hh}`. Default: 0.
        zoneout: zoneout rate on :math:`h` and :math:`c`. Default: 0.
        learn_rates: ``True`` or names among ``"input_dropout"``, ``"dropout"``,
            ``"recurrent_dropout"``: learn those rates (see above). Default: False.
        temperature: of the relaxed masks of learned rates, > 0. Default: 0.1.

    Shape (as :class:`torch.nn.LSTM`; N batch, L length, D = 2 if bidirectional else 1):
        - input: :math:`(L, N, H_{in})`, :math:`(N, L, H_{in})` with ``batch_first``,
          :math:`(L, H_{in})` unbatched, or a ``PackedSequence``
        - hx: optional ``(h_0, c_0)`` of shapes :math:`(D \cdot \text{num\_layers}, N, H_{out})`
          and :math:`(D \cdot \text{num\_layers}, N, H_{cell})`
        - output: :math:`(L, N, D \cdot H_{out})` (or batch first / packed), and
          ``(h_n, c_n)`` shaped like ``hx``; :math:`H_{out}` is ``proj_size`` if set, else ``hidden_size``.

    Raises:
        ValueError: a rate outside [0, 1] (naming the rate), a learned rate starting at 1, a
            name in ``learn_rates`` that cannot be learned; an input that is not 2-D/3-D or
            has no time step; a ``PackedSequence`` whose ``batch_sizes`` are not positive,
            non-increasing and summing to its rows; initial states on another device.
        TypeError: a rate that is not a number, ``recurrent_dropout_shared`` not a bool,
            ``learn_rates`` neither a bool nor a sequence of names,
            initial states of another dtype than the input.
        RuntimeError: initial states of the wrong size (torch's own check and message).

    Example:
        >>> lstm = LSTM(8, 16, num_layers=2, batch_first=True, dropout=0.2, recurrent_dropout=0.25)
        >>> out, (h, c) = lstm(torch.randn(4, 10, 8))
        >>> out.shape, h.shape
        (torch.Size([4, 10, 16]), torch.Size([2, 4, 16]))
        >>> ref = lstm.to_torch().eval()
        >>> x = torch.randn(4, 10, 8)
        >>> torch.equal(lstm.eval()(x)[0], ref(x)[0])
        True
        >>> learned = LSTM(8, 16, num_layers=2, recurrent_dropout=0.25, learn_rates=True)
        >>> {name: tuple(rate.shape) for name, rate in learned.learned_rates.items()}
        {'input_dropout': (), 'dropout': (1,), 'recurrent_dropout': (2,)}
        >>> round(learned.recurrent_dropout, 4), learned.recurrent_dropout_logit.requires_grad
        (0.25, True)
    """
    )

    _torch_class = torch.nn.LSTM

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        recurrent_dropout_shared: bool = False,
        weight_dropout: float = 0.0,
        zoneout: float = 0.0,
        learn_rates: bool | Sequence[str] = False,
        temperature: float | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            device=device,
            dtype=dtype,
        )
        self._set_rates(
            input_dropout, recurrent_dropout, recurrent_dropout_shared, weight_dropout, zoneout, learn_rates
        )
        self._set_learned(learn_rates, temperature, device, dtype)


class GRU(_RegularizedRNN, torch.nn.GRU):
    __doc__ = (
        r"""Multi-layer GRU, drop-in for :class:`torch.nn.GRU`, with recurrent regularization.

    For each element of the input sequence each layer computes (gates in torch's order)

    .. math::
        \begin{array}{ll}
        r_t = \sigma(W_{ir} \tilde x_t + b_{ir} + W_{hr} (m \odot h_{t-1}) + b_{hr}) \\
        z_t = \sigma(W_{iz} \tilde x_t + b_{iz} + W_{hz} (m \odot h_{t-1}) + b_{hz}) \\
        n_t = \tanh(W_{in} \tilde x_t + b_{in} + r_t \odot (W_{hn} (m \odot h_{t-1}) + b_{hn})) \\
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{array}

    with :math:`\tilde x_t`, :math:`m` as for :class:`LSTM`. The carry :math:`z_t \odot h_{t-1}`
    uses the unmasked state.
"""
        + _REGULARIZER_DOC.format(
            name="GRU", carry=" (the :math:`z_t \\odot h_{{t-1}}` term uses the unmasked state)", zone_c=""
        )
        + r"""
    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            device, dtype: as in :class:`torch.nn.GRU` (``dropout`` is variational).
        input_dropout, recurrent_dropout, recurrent_dropout_shared, weight_dropout, zoneout,
            learn_rates, temperature: as for :class:`LSTM`. Default: 0 / False / 0.1.

    Shape (as :class:`torch.nn.GRU`):
        - input: :math:`(L, N, H_{in})`, :math:`(N, L, H_{in})` with ``batch_first``,
          :math:`(L, H_{in})` unbatched, or a ``PackedSequence``
        - hx: optional :math:`(D \cdot \text{num\_layers}, N, H)`
        - output: :math:`(L, N, D \cdot H)` and :math:`h_n` shaped like ``hx``.

    Raises:
        ValueError, TypeError, RuntimeError: as for :class:`LSTM`.

    Example:
        >>> gru = GRU(8, 16, recurrent_dropout=0.25, weight_dropout=0.1)
        >>> out, h = gru(torch.randn(10, 4, 8))
        >>> out.shape, h.shape
        (torch.Size([10, 4, 16]), torch.Size([1, 4, 16]))
    """
    )

    _torch_class = torch.nn.GRU

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        recurrent_dropout_shared: bool = False,
        weight_dropout: float = 0.0,
        zoneout: float = 0.0,
        learn_rates: bool | Sequence[str] = False,
        temperature: float | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )
        self._set_rates(
            input_dropout, recurrent_dropout, recurrent_dropout_shared, weight_dropout, zoneout, learn_rates
        )
        self._set_learned(learn_rates, temperature, device, dtype)


class _RegularizedCell:
    """What LSTMCell and GRUCell share: a recurrent mask the caller draws once per sequence."""

    rate_names: tuple[str, ...] = ("recurrent_dropout", "zoneout")
    hidden_size: int
    training: bool

    def _set_rates(self, recurrent_dropout: float, zoneout: float) -> None:
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.zoneout = check_rate("zoneout", zoneout)

    def recurrent_mask(self, batch_size: int, *, like: Tensor | None = None) -> Tensor | None:
        """Draw the recurrent mask for one sequence of ``batch_size`` samples (None when off).

        Pass it to every step of that sequence as ``recurrent_mask=``: the mask must stay the
        same over time, and a cell cannot know where a sequence starts.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(
                f"{type(self).__name__}.recurrent_mask: batch_size must be an int >= 0, "
                f"got {type(batch_size).__name__} {batch_size!r}"
            )
        if batch_size < 0:
            raise ValueError(f"{type(self).__name__}.recurrent_mask: batch_size must be an int >= 0, got {batch_size}")
        if like is not None:
            rnn_ops._check_tensor_arg(f"{type(self).__name__}.recurrent_mask", "like", like)
        p = check_rate("recurrent_dropout", self.recurrent_dropout)
        if not self.training or p == 0.0:
            return None
        ref = like if like is not None else next(iter(self.parameters()))
        return bernoulli_mask((batch_size, self.hidden_size), p, dtype=ref.dtype, device=ref.device)

    def _check_step(self, input: Any, states: tuple[Any, ...], recurrent_mask: Any) -> None:
        """The step's states and mask have the input's dtype and device, the mask the state's shape."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.is_floating_point():
            for state_name, state in zip(("h", "c"), states, strict=False):  # GRU cells hold h only
                rnn_ops._check_tensor_arg(name, state_name, state, input)
        if recurrent_mask is not None:
            shape = tuple(states[0].shape) if states else (*input.shape[:-1], self.hidden_size)
            rnn_ops._check_tensor_arg(
                name, "recurrent_mask", recurrent_mask, input if input.is_floating_point() else None, shape
            )

    def extra_repr(self) -> str:
        s = super().extra_repr()  # type: ignore[misc]
        for name in self.rate_names:
            if getattr(self, name):
                s += f", {name}={getattr(self, name)}"
        return s


class LSTMCell(_RegularizedCell, torch.nn.LSTMCell):
    r"""An LSTM cell, drop-in for :class:`torch.nn.LSTMCell`, with recurrent dropout and zoneout.

    One step of :class:`LSTM`. The recurrent mask is drawn by the caller once per sequence
    with :meth:`recurrent_mask` and passed to every step; zoneout draws its masks each step
    (its expectation in ``eval()``). Without a mask and zoneout it is ``torch.nn.LSTMCell``.

    Args:
        input_size, hidden_size, bias, device, dtype: as in :class:`torch.nn.LSTMCell`.
        recurrent_dropout: rate of the mask :meth:`recurrent_mask` draws. Default: 0.
        zoneout: zoneout rate on :math:`h` and :math:`c`. Default: 0.

    Shape:
        - input :math:`(N, H_{in})` or :math:`(H_{in})`; hx ``(h, c)`` each :math:`(N, H)` or :math:`(H)`;
          recurrent_mask :math:`(N, H)`; output ``(h', c')``.

    Example:
        >>> cell = LSTMCell(3, 5, recurrent_dropout=0.5)
        >>> x, state = torch.randn(7, 2, 3), None
        >>> mask = cell.recurrent_mask(2)
        >>> for x_t in x:
        ...     state = cell(x_t, state, recurrent_mask=mask)
        >>> state[0].shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, bias=bias, device=device, dtype=dtype)
        self._set_rates(recurrent_dropout, zoneout)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None, *, recurrent_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        p_zone = check_rate("zoneout", self.zoneout)
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c) of two tensors, got {type(hx).__name__}")
        self._check_step(input, tuple(hx) if hx is not None else (), recurrent_mask)
        if hx is None:
            zeros = input.new_zeros(*input.shape[:-1], self.hidden_size)
            hx = (zeros, zeros)
        h_in = hx[0] * recurrent_mask if recurrent_mask is not None else hx[0]
        h, c = super().forward(input, (h_in, hx[1]))
        if p_zone > 0.0:
            h = rnn_ops.zoneout(hx[0], h, p_zone, self.training)
            c = rnn_ops.zoneout(hx[1], c, p_zone, self.training)
        return h, c


class GRUCell(_RegularizedCell, torch.nn.GRUCell):
    r"""A GRU cell, drop-in for :class:`torch.nn.GRUCell`, with recurrent dropout and zoneout.

    The recurrent mask applies to :math:`h_{t-1}` where it enters :math:`W_{hh}`; the carry
    :math:`z \odot h_{t-1}` uses the unmasked state. Draw the mask once per sequence with
    :meth:`recurrent_mask` and pass it to every step.

    Args:
        input_size, hidden_size, bias, device, dtype: as in :class:`torch.nn.GRUCell`.
        recurrent_dropout: rate of the mask :meth:`recurrent_mask` draws. Default: 0.
        zoneout: zoneout rate on :math:`h`. Default: 0.

    Shape:
        - input :math:`(N, H_{in})` or :math:`(H_{in})`; hx :math:`(N, H)` or :math:`(H)`;
          recurrent_mask :math:`(N, H)`; output :math:`(N, H)`.

    Example:
        >>> cell = GRUCell(3, 5, recurrent_dropout=0.5)
        >>> h = cell(torch.randn(2, 3), recurrent_mask=cell.recurrent_mask(2))
        >>> h.shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, bias=bias, device=device, dtype=dtype)
        self._set_rates(recurrent_dropout, zoneout)

    def forward(self, input: Tensor, hx: Tensor | None = None, *, recurrent_mask: Tensor | None = None) -> Tensor:
        p_zone = check_rate("zoneout", self.zoneout)
        self._check_step(input, (hx,) if hx is not None else (), recurrent_mask)
        if recurrent_mask is None:
            h = super().forward(input, hx)
        else:
            if hx is None:
                hx = input.new_zeros(*input.shape[:-1], self.hidden_size)
            xw = torch.nn.functional.linear(input, self.weight_ih, self.bias_ih)
            hw = torch.nn.functional.linear(hx * recurrent_mask, self.weight_hh, self.bias_hh)
            xr, xz, xn = xw.chunk(3, -1)
            hr, hz, hn = hw.chunk(3, -1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            h = torch.lerp(torch.tanh(xn + r * hn), hx, z)
        if p_zone > 0.0:
            previous = hx if hx is not None else torch.zeros_like(h)
            h = rnn_ops.zoneout(previous, h, p_zone, self.training)
        return h
