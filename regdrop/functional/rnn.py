r"""Recurrent layers with Gal-style recurrent dropout: the time loops and their gradients.

One LSTM or GRU layer in one direction runs over *packed, time-major rows*: step ``t`` owns
rows ``offset[t] : offset[t] + batch_sizes[t]`` of ``x``, and those rows are samples
``0 .. batch_sizes[t] - 1`` (PyTorch's ``PackedSequence`` layout; a padded batch of size
``N`` is the case ``batch_sizes[t] == N``). A sample not active at a step keeps its state.

The recurrent mask :math:`m` (one row per sample, fixed over time) multiplies
:math:`h_{t-1}` where it enters the hidden-to-hidden product only:

.. math::
    \text{LSTM:}\quad (i, f, g, o) = \sigma/\tanh\big(W_{ih} x_t + b_{ih} + W_{hh} (m \odot h_{t-1}) + b_{hh}\big),
    \quad c_t = f c_{t-1} + i g, \quad h_t = o \tanh(c_t)

    \text{GRU:}\quad r, z = \sigma(\cdot),\quad
    n = \tanh\big(W_{in} x_t + b_{in} + r \odot (W_{hn} (m \odot h_{t-1}) + b_{hn})\big),
    \quad h_t = (1 - z) n + z\, h_{t-1}

The carried state (:math:`c_{t-1}`, and the GRU's :math:`z\, h_{t-1}`) is never masked.

Two implementations compute the same thing:

- :func:`lstm_scan` / :func:`gru_scan` (with projection and zoneout): on CPU tensors a small
  C++ extension (``csrc/scan.cpp``, compiled on first use with the compiler torch's
  ``cpp_extension`` finds) runs one GEMM and one fused element-wise pass per step (two
  GEMMs with a projection), with a hand-written backward; elsewhere, or where the extension
  cannot be built, they fall back to the reference loops. The ops are registered with
  ``torch.library`` (with fake kernels), so ``torch.compile`` traces through them.
- :func:`lstm_layer_loop` / :func:`gru_layer_loop`: plain autograd over torch ops, any
  device. They are also the reference the tests check the extension against.

Zoneout's masks (a fresh Bernoulli(p) per unit, sample and step, 1 = keep the previous
value) are drawn before the loop, one ``(R, width)`` tensor per state (h, then c), by
``_zoneout_masks``; both implementations draw them there, so they give the same result for
the same seed.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from regdrop.functional._validation import check_rate, check_tensor
from regdrop.functional.dropout import _row_positions

__all__ = [
    "cpu_bf16_gemms_native",
    "extension_available",
    "gru_layer_loop",
    "gru_scan",
    "input_projection",
    "lstm_layer_loop",
    "lstm_scan",
    "zoneout",
]

log = logging.getLogger(__name__)

_EXT_LOCK = threading.Lock()
_EXT_STATE: dict[str, Any] = {}


def extension_available() -> bool:
    """Whether the compiled time loop can be used (building it on the first call).

    Set the environment variable ``REGDROP_EXTENSION=0`` to never build or use it; the
    reference loops then run instead (same results, slower on CPU).

    Example:
        >>> isinstance(extension_available(), bool)
        True
    """
    if os.environ.get("REGDROP_EXTENSION", "1") == "0":
        return False
    if "ok" in _EXT_STATE:  # decided: no lock, which torch.compile could not trace through
        return bool(_EXT_STATE["ok"])
    with _EXT_LOCK:
        if "ok" not in _EXT_STATE:
            try:
                _load_extension()
                _EXT_STATE["ok"] = True
            except Exception as err:
                log.warning(
                    "regdrop: could not build the compiled recurrent-dropout loop (%s); per-sample recurrent "
                    "dropout runs as a Python loop, correct but slower",
                    _one_line(err),
                )
                _EXT_STATE["ok"] = False
    return bool(_EXT_STATE["ok"])


def _one_line(err: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, cut to ``limit`` characters (a failed compiler
    call's message holds the whole command line and its output)."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_extension() -> None:
    """Build (first use) or load the compiled loop; raises if it cannot."""
    from torch.utils.cpp_extension import get_default_build_root, load

    source = Path(__file__).with_name("csrc") / "scan.cpp"
    # Vector instructions only where torch itself found them; the build is named after them,
    # so a cache shared by different machines never mixes builds.
    capability = torch.backends.cpu.get_cpu_capability()
    name = f"regdrop_scan_{capability.lower().replace(' ', '_')}"
    flags = ["-O3", "-fno-trapping-math"]  # lets the clamps in fast_exp vectorize
    ldflags = []
    if sys.platform.startswith("linux"):
        # at::parallel_for is a header template: without OpenMP it runs every step on one
        # thread. With it, the steps use torch's OpenMP pool (same libgomp, torch's thread count).
        flags.append("-fopenmp")
        ldflags.append("-fopenmp")
    elif sys.platform == "darwin":
        flags.append("-fopenmp-simd")  # the loops' `omp simd` hints, without an OpenMP runtime
    if capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    if capability == "AVX512":
        # 16-wide element-wise passes and 64-bit vector multiplies (the zoneout draw): the
        # forward's element-wise pass took ~8% less time than with AVX2 on the AMD EPYC build machine
        flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq"]
    # torch's cache: $TORCH_EXTENSIONS_DIR/<name>, else <default root>/<py*_accelerator>/<name>.
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    built = Path(root).glob(f"{name}/{name}.so") if root else Path(get_default_build_root()).glob(f"*/{name}/{name}.so")
    if next(iter(built), None) is None:
        print("regdrop: building the compiled recurrent-dropout loop (once, ~30 s)...", file=sys.stderr, flush=True)
    load(
        name=name,
        sources=[str(source)],
        extra_cflags=flags,
        extra_ldflags=ldflags,
        is_python_module=False,
        verbose=False,
    )
    _register_fakes()


def zoneout(
    previous: Tensor,
    new: Tensor,
    p: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Mix the previous and the new recurrent state unit by unit.

    .. math::
        h_t = d_t \odot h_{t-1} + (1 - d_t) \odot \tilde h_t, \qquad
        d_t \sim \mathrm{Bernoulli}(p) \text{ per unit, drawn at every step (training)}

    In evaluation the expectation is used: :math:`h_t = p\, h_{t-1} + (1 - p)\, \tilde h_t`.
    Unlike dropout nothing is rescaled: a zoned-out unit carries its old value forward.

    Args:
        previous: the state before the step, :math:`h_{t-1}` (or :math:`c_{t-1}`).
        new: the state the cell computed, :math:`\tilde h_t`; same shape as ``previous``.
        p: probability that a unit keeps its previous value, in [0, 1].
        training: draw random masks (True) or use the expectation (False).
        generator: random generator for the masks.

    Shape:
        - previous, new, output: any shape, all the same.

    Raises:
        ValueError: if ``p`` is outside [0, 1] or the shapes differ.

    Example:
        >>> prev, new = torch.zeros(2, 3), torch.ones(2, 3)
        >>> zoneout(prev, new, 0.25, training=False)
        tensor([[0.7500, 0.7500, 0.7500],
                [0.7500, 0.7500, 0.7500]])
    """
    p = check_rate("zoneout", p)
    if previous.shape != new.shape:
        raise ValueError(
            f"zoneout: previous and new must have the same shape, got {tuple(previous.shape)} and {tuple(new.shape)}"
        )
    if p == 0.0:
        return new
    if not training:
        return torch.lerp(new, previous, p)
    keep_old = torch.empty_like(new).bernoulli_(p, generator=generator)
    return torch.lerp(new, previous, keep_old)


# splitmix64's constants (Steele, Lea and Flood 2014) as int64, for the torch-ops twin of the
# compiled op regdrop_scan::zoneout_mask (csrc/scan.cpp, where the draw is documented).
_SPLITMIX_GAMMA = 0x9E3779B97F4A7C15 - (1 << 64)
_SPLITMIX_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_SPLITMIX_M2 = 0x94D049BB133111EB - (1 << 64)
_LOW32 = 0xFFFFFFFF


def _shift_right(z: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 words (torch's ``>>`` on int64 is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _keep_threshold(p: float) -> int:
    """Zoneout keeps an element when its 32-bit draw is below this: ``p 2^32``, rounded."""
    return math.floor(p * 4294967296.0 + 0.5)


def _hash_mask(seed: Tensor, rows: int, width: int, p: float) -> Tensor:
    """The bits of ``regdrop_scan::zoneout_mask`` with torch ops (int64 arithmetic wraps
    modulo 2^64 like the C++ ``uint64_t``): element ``e`` is the low (``e`` even) or high
    32-bit half of splitmix64 at counter ``e // 2``, compared with ``p 2^32``."""
    n = rows * width
    k = torch.arange(1, (n + 1) // 2 + 1, dtype=torch.int64, device=seed.device)
    z = seed + k * _SPLITMIX_GAMMA
    z = (z ^ _shift_right(z, 30)) * _SPLITMIX_M1
    z = (z ^ _shift_right(z, 27)) * _SPLITMIX_M2
    z = z ^ _shift_right(z, 31)
    halves = torch.stack((z & _LOW32, _shift_right(z, 32)), 1).flatten()[:n]
    return (halves < _keep_threshold(p)).view(rows, width)


def _zoneout_masks(
    p: float, training: bool, rows: int, widths: Sequence[int], like: Tensor, generator: torch.Generator | None
) -> list[Tensor | None]:
    """Zoneout's training masks for one layer and direction, one boolean ``(rows, width)``
    tensor per state (h, then c): row ``offset[t] + n`` is sample ``n`` at step ``t``, True =
    keep the previous value (probability ``p``, to 2^-32). None where no mask is drawn (rate 0,
    or evaluation, which uses the expectation).

    One 62-bit seed per mask comes from ``generator`` (torch's own when None, on ``like``'s
    device), so ``torch.manual_seed`` fixes the masks; the bits are a counter-based hash of it
    (splitmix64), drawn by the compiled op on CPU and by :func:`_hash_mask` elsewhere, with the
    same result. On the 2-core AMD EPYC build machine (one thread) the compiled draw took
    0.24 ms for a (6400, 64) mask, against 1.4 ms for ``torch.rand(6400, 64) < p``."""
    if p == 0.0 or not training:
        return [None] * len(widths)
    seeds = torch.randint(0, 1 << 62, (len(widths),), generator=generator, device=like.device)
    compiled = like.device.type == "cpu" and extension_available()
    return [
        torch.ops.regdrop_scan.zoneout_mask(seed, rows, width, p) if compiled else _hash_mask(seed, rows, width, p)
        for seed, width in zip(seeds, widths, strict=True)
    ]


def _zone_mix(previous: Tensor, new: Tensor, masks: Tensor | None, o: int, b: int, p: float) -> Tensor:
    """Zoneout at one step of the reference loops: the step's rows of the drawn masks, or the
    expectation with rate ``p``."""
    if masks is not None:
        return torch.where(masks[o : o + b], previous, new)
    return zoneout(previous, new, p, training=False)


def cpu_bf16_gemms_native() -> bool:
    """Whether this CPU runs bfloat16 GEMMs at speed: oneDNN's own test
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported``, AVX-512 or AMX), decided once.

    Without it, torch's bfloat16 matmul falls back to a slow generic loop: (6400, 64) @ (64, 256)
    took 113 ms in bfloat16 against 6 ms in float32 on an AVX2-only AMD EPYC. There, under CPU
    bf16 autocast, ``regdrop.nn.LSTM``/``GRU`` compute the regularized path in float32.

    Example:
        >>> isinstance(cpu_bf16_gemms_native(), bool)
        True
    """
    if "bf16" not in _EXT_STATE:
        try:
            ok = torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # an op this torch build does not have
            ok = False
        _EXT_STATE["bf16"] = ok
    return bool(_EXT_STATE["bf16"])


def _onednn_linear_available() -> bool:
    """Whether torch's oneDNN linear op runs here and agrees with ``torch.addmm`` (checked once)."""
    with _EXT_LOCK:
        if "onednn_linear" not in _EXT_STATE:
            ok = False
            if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
                try:
                    gen = torch.Generator().manual_seed(0)  # leaves the global RNG stream alone
                    x, w, b = (torch.randn(*shape, generator=gen) for shape in ((5, 3), (4, 3), (4,)))
                    y = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
                    ok = bool(torch.allclose(y, torch.addmm(b, x, w.t()), atol=1e-5))
                except (RuntimeError, TypeError):
                    ok = False
            _EXT_STATE["onednn_linear"] = ok
    return bool(_EXT_STATE["onednn_linear"])


def _onednn_mm(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """``a @ b (+ bias)`` by oneDNN's linear op, which computes ``x w^T + bias``."""
    return torch.ops.mkldnn._linear_pointwise(a.contiguous(), b.t().contiguous(), bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """``x W^T + b`` with the input-side products on oneDNN (the weight gradient on ``torch.mm``)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_mm(x, weight.t(), bias)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        dx = _onednn_mm(grad, weight) if ctx.needs_input_grad[0] else None
        dw = x.t().mm(grad).t() if ctx.needs_input_grad[1] else None
        db = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


def _use_onednn_linear(*tensors: Tensor | None) -> bool:
    live = [t for t in tensors if t is not None]
    return (
        not torch.compiler.is_compiling()
        and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in live)
        and _onednn_linear_available()
    )


def input_projection(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    gemm_dtype: torch.dtype | None = None,
    out_dtype: torch.dtype | None = None,
) -> Tensor:
    r"""The input-to-hidden product of a recurrent layer for all time steps at once.

    .. math::
        \text{out} = x W^\top + b

    One GEMM over all rows. On CPU in float32 it runs on oneDNN (torch's ``mkldnn`` linear op;
    its backward's ``dx`` too, the weight gradient on ``torch.mm``), which was measured faster
    than ``torch.addmm`` (MKL) for these tall products on the AMD EPYC build machine (README,
    "Speed and memory"); elsewhere, while ``torch.compile`` traces, or where that op is missing,
    ``torch.addmm``. With ``gemm_dtype=torch.bfloat16`` the product takes
    bfloat16 operands (as CPU autocast's ``linear`` does; its result is rounded to bfloat16),
    and the bias is added in the input's dtype: the time loop's state stays in that dtype.
    ``out_dtype=torch.bfloat16`` (with that ``gemm_dtype`` and no bias) keeps the result in
    bfloat16, for :func:`lstm_scan`, which widens it row by row and adds the bias itself.

    Args:
        input: the rows, :math:`x`.
        weight: :math:`W`, e.g. ``weight_ih_l0``.
        bias: :math:`b` or None. Default: None.
        gemm_dtype: dtype of the product's operands, or None for the input's. Default: None.
        out_dtype: dtype of the result, or None for the input's. Default: None.

    Shape:
        - input: :math:`(R, H_{in})`; weight: :math:`(G, H_{in})`; bias: :math:`(G)`
        - Output: :math:`(R, G)`, in ``out_dtype`` or the input's dtype

    Example:
        >>> x, w, b = torch.randn(6, 3), torch.randn(8, 3), torch.randn(8)
        >>> torch.allclose(input_projection(x, w, b), x @ w.t() + b, atol=1e-6)
        True
        >>> input_projection(x, w, b, torch.bfloat16).dtype
        torch.float32
    """
    if out_dtype is not None and out_dtype != input.dtype:
        if gemm_dtype != out_dtype or bias is not None:
            raise ValueError(
                f"input_projection: out_dtype {out_dtype} needs gemm_dtype {out_dtype} and no bias, "
                f"got gemm_dtype {gemm_dtype} and {'a' if bias is not None else 'no'} bias"
            )
        return _ProjectionIn.apply(input, weight, gemm_dtype)
    if gemm_dtype is None or gemm_dtype == input.dtype:
        if _use_onednn_linear(input, weight, bias):
            return _OneDNNLinear.apply(input, weight, bias)
        return torch.addmm(bias, input, weight.t()) if bias is not None else input.mm(weight.t())
    out = input.to(gemm_dtype).mm(weight.to(gemm_dtype).t()).to(input.dtype)
    # in place on the fresh cast: a second (rows, G) tensor cost as much as the cast itself
    return out.add_(bias) if bias is not None else out


class _ProjectionIn(torch.autograd.Function):
    """``x W^T`` on ``dtype`` operands with the result left in ``dtype`` (bfloat16: CPU autocast's
    ``linear`` without its bias). Its backward takes the weight gradient as ``(x^T g)^T``, which
    measured 231 against 393 us for ``g^T x`` (autograd's choice) at (6400, 256) x (6400, 8) in
    bfloat16 on the AMD EPYC build machine, one thread."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, dtype: torch.dtype) -> Tensor:
        x_low, w_low = x.to(dtype), w.to(dtype)
        ctx.save_for_backward(x_low, w_low)
        ctx.dtypes = (x.dtype, w.dtype)
        return x_low.mm(w_low.t())

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x_low, w_low = ctx.saved_tensors
        grad = grad.to(x_low.dtype)
        dx = grad.mm(w_low).to(ctx.dtypes[0]) if ctx.needs_input_grad[0] else None
        dw = _weight_grad(x_low, grad, x_low.dtype).to(ctx.dtypes[1]) if ctx.needs_input_grad[1] else None
        return dx, dw, None


def _offsets(batch_sizes: Sequence[int]) -> list[int]:
    out, total = [], 0
    for b in batch_sizes:
        out.append(total)
        total += b
    return out


def _use_extension(*tensors: Tensor | None, w_hh: Tensor | None = None) -> bool:
    live = [t for t in tensors if t is not None]
    bf16_weight = w_hh is not None and w_hh.dtype == torch.bfloat16 and live[0].dtype == torch.float32
    if w_hh is not None and not bf16_weight:
        live.append(w_hh)
    return (
        all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) for t in live)
        and (w_hh is None or w_hh.device.type == "cpu")
        and len({t.dtype for t in live}) == 1
        and extension_available()
    )


def _weight_grad(a: Tensor, b: Tensor, dtype: torch.dtype) -> Tensor:
    """``(a^T b)^T`` in ``dtype``: a weight gradient over all rows in one GEMM (bfloat16 operands
    with float32 accumulation when the weight is bfloat16). ``(h^T dG)^T`` measured ~25% faster
    than ``dG^T h`` for these tall, thin operands."""
    return a.to(dtype).t().mm(b.to(dtype)).t()


# ------------------------------------------------------------------------ argument checks
# Everything the C++ ops index by is checked here, before any of them runs; scan.cpp checks
# the same again (TORCH_CHECK) so that a direct call of the op cannot read out of bounds.


def _check_tensor_arg(
    who: str, name: str, value: object, like: Tensor | None = None, shape: tuple[int, ...] | None = None
) -> Tensor:
    """``value`` as a floating-point tensor with ``like``'s dtype and device and ``shape``."""
    value = check_tensor(value, who, name)
    if like is not None and value.dtype != like.dtype:
        raise TypeError(f"{who}: {name} must have the dtype of the input, {like.dtype}, got {value.dtype}")
    if like is not None and value.device != like.device:
        raise ValueError(f"{who}: {name} must be on the input's device, {like.device}, got {value.device}")
    if shape is not None and tuple(value.shape) != shape:
        raise ValueError(f"{who}: {name} must have shape {shape}, got {tuple(value.shape)}")
    return value


def _check_batch_sizes(
    who: str, batch_sizes: object, rows: int, *, min_size: int = 0, name: str = "batch_sizes"
) -> list[int]:
    """``batch_sizes`` as a list of ints: each >= ``min_size``, non-increasing, summing to ``rows``."""
    if isinstance(batch_sizes, Tensor):
        if (
            batch_sizes.dim() != 1
            or batch_sizes.is_floating_point()
            or batch_sizes.is_complex()
            or batch_sizes.dtype == torch.bool
        ):
            raise TypeError(
                f"{who}: {name} must be a 1-D integer tensor or a sequence of ints, got a "
                f"{batch_sizes.dim()}-D tensor of dtype {batch_sizes.dtype}"
            )
        sizes = [int(b) for b in batch_sizes.tolist()]
    elif isinstance(batch_sizes, Sequence) and not isinstance(batch_sizes, (str, bytes)):
        if any(isinstance(b, bool) or not isinstance(b, numbers.Integral) for b in batch_sizes):
            raise TypeError(f"{who}: {name} must hold ints, got {list(batch_sizes)!r}")
        sizes = [int(b) for b in batch_sizes]
    else:
        raise TypeError(f"{who}: {name} must be a sequence of ints, got {type(batch_sizes).__name__}")
    bad = [b for b in sizes if b < min_size]
    if bad:
        raise ValueError(f"{who}: every entry of {name} must be >= {min_size}, got {bad[0]} in {sizes}")
    if any(later > earlier for earlier, later in itertools.pairwise(sizes)):
        raise ValueError(f"{who}: {name} must be non-increasing (samples sorted by decreasing length), got {sizes}")
    if sum(sizes) != rows:
        raise ValueError(
            f"{who}: {name} must sum to the number of rows of the data, {rows}, got {sizes} (sum {sum(sizes)})"
        )
    return sizes


def _check_packed(who: str, packed: Any) -> list[int]:
    """A ``PackedSequence``'s batch sizes after checking they describe its data."""
    data = packed.data
    if not isinstance(data, Tensor) or data.dim() != 2:
        shape = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
        raise ValueError(f"{who}: a PackedSequence's data must be 2-D (sum of lengths, H_in), got {shape}")
    sizes = _check_batch_sizes(
        who, packed.batch_sizes, data.shape[0], min_size=1, name="the PackedSequence's batch_sizes"
    )
    if not sizes:
        raise ValueError(f"{who}: a PackedSequence must hold at least one time step, got empty batch_sizes")
    for name in ("sorted_indices", "unsorted_indices"):
        indices = getattr(packed, name)
        if indices is not None and tuple(indices.shape) != (sizes[0],):
            raise ValueError(
                f"{who}: the PackedSequence's {name} must have shape ({sizes[0]},) "
                f"(one entry per sample), got {tuple(indices.shape)}"
            )
    return sizes


def _check_scan_args(
    who: str,
    gates: int,
    xw: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w_hh: Tensor,
    b_hh: Tensor | None,
    mask: Tensor | None,
    batch_sizes: object,
    reverse: object,
    w_hr: Tensor | None = None,
    zoneout: object = 0.0,
    training: object = True,
    generator: object = None,
    bias_name: str = "b_hh",
) -> list[int]:
    _check_tensor_arg(who, "xw", xw)
    if xw.dim() != 2:
        raise ValueError(f"{who}: xw must be 2-D (rows, {gates}H), got shape {tuple(xw.shape)}")
    # A bfloat16 xw (CPU autocast's input projection) goes with a bfloat16 w_hh and float32 state:
    # h0 then sets the dtype the other tensors must have.
    bf16_x = (
        xw.dtype == torch.bfloat16
        and isinstance(w_hh, Tensor)
        and w_hh.dtype == torch.bfloat16
        and isinstance(h0, Tensor)
        and h0.dtype == torch.float32
    )
    _check_tensor_arg(who, "h0", h0, None if bf16_x else xw)
    like = h0 if bf16_x else xw
    if bf16_x and h0.device != xw.device:
        raise ValueError(f"{who}: h0 must be on the input's device, {xw.device}, got {h0.device}")
    if h0.dim() != 2:
        raise ValueError(f"{who}: h0 must be 2-D (N, H), got shape {tuple(h0.shape)}")
    n, width = h0.shape  # the width of h: proj_size with a projection, else the hidden size
    hidden = width
    if w_hr is not None:
        _check_tensor_arg(who, "w_hr", w_hr, like)
        if w_hr.dim() != 2 or w_hr.shape[0] != width:
            raise ValueError(
                f"{who}: w_hr must be 2-D (P, H) with P = the width of h0, {width}, got shape {tuple(w_hr.shape)}"
            )
        hidden = w_hr.shape[1]
    if xw.shape[1] != gates * hidden:
        raise ValueError(
            f"{who}: xw must have {gates} * H = {gates * hidden} columns for h0 of shape "
            f"{tuple(h0.shape)}{'' if w_hr is None else f' and w_hr of shape {tuple(w_hr.shape)}'}, "
            f"got shape {tuple(xw.shape)}"
        )
    if c0 is not None:
        _check_tensor_arg(who, "c0", c0, like, (n, hidden))
    if isinstance(w_hh, Tensor) and w_hh.dtype == torch.bfloat16 and like.dtype == torch.float32:
        # bfloat16 weights with float32 data: bf16 products, float32 state (autocast)
        _check_tensor_arg(who, "w_hh", w_hh, None, (gates * hidden, width))
        if w_hh.device != xw.device:
            raise ValueError(f"{who}: w_hh must be on the input's device, {xw.device}, got {w_hh.device}")
    else:
        _check_tensor_arg(who, "w_hh", w_hh, like, (gates * hidden, width))
    if b_hh is not None:
        _check_tensor_arg(who, bias_name, b_hh, like, (gates * hidden,))
    if mask is not None:
        _check_tensor_arg(who, "mask", mask, like, (n, width))
    if not isinstance(reverse, bool):
        raise TypeError(f"{who}: reverse must be a bool, got {type(reverse).__name__} {reverse!r}")
    check_rate("zoneout", zoneout)
    if not isinstance(training, bool):
        raise TypeError(f"{who}: training must be a bool, got {type(training).__name__} {training!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{who}: generator must be a torch.Generator or None, got {type(generator).__name__}")
    sizes = _check_batch_sizes(who, batch_sizes, xw.shape[0])
    if sizes and sizes[0] != n:
        raise ValueError(f"{who}: batch_sizes[0] must equal the number of rows of h0, {n}, got {sizes[0]}")
    return sizes


def _absent(like: Tensor) -> Tensor:
    """The empty tensor the C++ ops take for an absent optional tensor (no mask, no bias)."""
    return like.new_empty(0)


def _previous_states(out: Tensor, h0: Tensor, batch_sizes: Sequence[int], reverse: bool) -> Tensor:
    """The unmasked :math:`h_{t-1}` of every row, from a scan's output rows and ``h0``.

    A row's previous state is the same sample's output row at the step visited before
    (``t - 1``, or ``t + 1`` in reverse), or its ``h0`` row where the sample's sequence
    starts (``t = 0``; in reverse, the steps where the sample is active and was not at ``t + 1``).
    """
    offsets = _offsets(batch_sizes)
    rows, last = out.shape[0], len(batch_sizes) - 1
    parts = []
    for t, b in enumerate(batch_sizes):
        before = t + 1 if reverse else t - 1
        carried = min(b, batch_sizes[before]) if 0 <= before <= last else 0
        if carried:
            parts.append(torch.arange(offsets[before], offsets[before] + carried))
        if carried < b:
            parts.append(rows + torch.arange(carried, b))  # rows of h0, after out's
    index = torch.cat(parts).to(out.device) if parts else torch.zeros(0, dtype=torch.long, device=out.device)
    return torch.cat([out, h0]).index_select(0, index)


def _recurrent_mask_grad(d_pre: Tensor, w_hh: Tensor, h_prev: Tensor, batch_sizes: Sequence[int], n: int) -> Tensor:
    r"""The gradient of a scan's loss with respect to its recurrent mask :math:`m`.

    :math:`m` enters each step only through :math:`W_{hh} (m \odot h_{t-1})`, so with
    :math:`\delta_t` the gradient of that product's result (the LSTM's gate pre-activations,
    the GRU's :math:`W_{hh} (m \odot h_{t-1}) + b_{hh}`),

    .. math::
        \frac{\partial \mathcal L}{\partial m_{n,k}} = \sum_t (\delta_t W_{hh})_{n,k} \, h_{t-1,n,k},

    summed over the steps at which sample :math:`n` is active.

    Shape:
        - d_pre: :math:`(R, G H)`; w_hh: :math:`(G H, H)`; h_prev (unmasked): :math:`(R, H)`
        - Output: :math:`(N, H)`
    """
    per_row = d_pre.mm(w_hh.to(d_pre.dtype)).mul_(h_prev)
    if all(b == n for b in batch_sizes):  # a padded batch: rows are (L, N) in order
        return per_row.view(len(batch_sizes), n, -1).sum(0)
    return per_row.new_zeros(n, per_row.shape[1]).index_add_(0, _row_positions(batch_sizes, per_row.device), per_row)


def _per_sample(rows: Tensor, mask: Tensor, batch_sizes: Sequence[int]) -> Tensor:
    """``rows`` times their sample's row of ``mask`` (packed time-major rows, ``(N, H)`` mask)."""
    n = mask.shape[0]
    if all(b == n for b in batch_sizes):  # a padded batch: rows are (L, N) in order
        return (rows.view(len(batch_sizes), n, -1) * mask).view(rows.shape)
    return rows * mask.index_select(0, _row_positions(batch_sizes, rows.device))


def _given(t: Tensor | None) -> Tensor | None:
    return t.contiguous() if t is not None else None


class _LSTMScan(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_hh: Tensor,
        mask: Tensor | None,
        batch_sizes: list[int],
        reverse: bool,
        w_hr: Tensor | None = None,
        zone_h: Tensor | None = None,
        zone_c: Tensor | None = None,
        zone_p: float = 0.0,
        bias: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        m = mask.contiguous() if mask is not None else _absent(h0)
        w_hr, zone_h, zone_c, bias = _given(w_hr), _given(zone_h), _given(zone_c), _given(bias)
        out, hn, cn, acts, tanh_c, c_prev, h_prev, r = torch.ops.regdrop_scan.lstm_forward(
            xw.contiguous(),
            h0.contiguous(),
            c0.contiguous(),
            w_hh.contiguous(),
            m,
            batch_sizes,
            reverse,
            w_hr,
            zone_h,
            zone_c,
            zone_p,
            bias,
        )
        ctx.save_for_backward(acts, tanh_c, c_prev, h_prev, w_hh, m, w_hr, r, zone_h, zone_c)
        ctx.batch_sizes, ctx.reverse, ctx.zone_p, ctx.xw_dtype = batch_sizes, reverse, zone_p, xw.dtype
        ctx.bias_grad = bias is not None and ctx.needs_input_grad[11]
        # A learned (concrete) mask needs the unmasked h(t-1); h_prev holds m * h(t-1).
        ctx.mask_states = (out, h0) if ctx.needs_input_grad[4] else None
        return out, hn, cn

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dhn: Tensor, dcn: Tensor) -> tuple[Tensor | None, ...]:
        acts, tanh_c, c_prev, h_prev, w_hh, m, w_hr, r, zone_h, zone_c = ctx.saved_tensors
        dgates, dh0, dc0, dht, dbias = torch.ops.regdrop_scan.lstm_backward(
            dout.contiguous(),
            dhn.contiguous(),
            dcn.contiguous(),
            acts,
            tanh_c,
            c_prev,
            w_hh.contiguous(),
            m,
            ctx.batch_sizes,
            ctx.reverse,
            w_hr,
            zone_h,
            zone_c,
            ctx.zone_p,
            ctx.bias_grad,
        )
        # dgates is bfloat16 with a bfloat16 w_hh: the operand of both weight-gradient GEMMs as is
        dw_hh = _weight_grad(h_prev, dgates, w_hh.dtype) if ctx.needs_input_grad[3] else None
        dmask = None
        if ctx.mask_states is not None:
            out, h0 = ctx.mask_states
            unmasked = _previous_states(out, h0, ctx.batch_sizes, ctx.reverse)
            dmask = _recurrent_mask_grad(dgates.to(h0.dtype), w_hh, unmasked, ctx.batch_sizes, h0.shape[0])
        dw_hr = r.t().mm(dht).t() if w_hr is not None and ctx.needs_input_grad[7] else None
        dbias = dbias if ctx.bias_grad else None
        return dgates.to(ctx.xw_dtype), dh0, dc0, dw_hh, dmask, None, None, dw_hr, None, None, None, dbias


class _GRUScan(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        w_hh: Tensor,
        b_hh: Tensor | None,
        mask: Tensor | None,
        batch_sizes: list[int],
        reverse: bool,
        zone_h: Tensor | None = None,
        zone_p: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        m = mask.contiguous() if mask is not None else _absent(xw)
        b = b_hh.contiguous() if b_hh is not None else _absent(xw)
        zone_h = _given(zone_h)
        out, hn, acts, hwn, h_prev = torch.ops.regdrop_scan.gru_forward(
            xw.contiguous(), h0.contiguous(), w_hh.contiguous(), b, m, batch_sizes, reverse, zone_h, zone_p
        )
        ctx.save_for_backward(acts, hwn, h_prev, w_hh, m, zone_h)
        ctx.batch_sizes, ctx.reverse, ctx.has_bias, ctx.zone_p = batch_sizes, reverse, b_hh is not None, zone_p
        return out, hn

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dhn: Tensor) -> tuple[Tensor | None, ...]:
        acts, hwn, h_prev, w_hh, m, zone_h = ctx.saved_tensors
        dxw, dhw, dh0 = torch.ops.regdrop_scan.gru_backward(
            dout.contiguous(),
            dhn.contiguous(),
            acts,
            hwn,
            h_prev,
            w_hh.contiguous(),
            m,
            ctx.batch_sizes,
            ctx.reverse,
            zone_h,
            ctx.zone_p,
        )
        # dW_hh needs the masked h(t-1); it is formed here rather than saved (a row per step less to keep)
        hm_prev = _per_sample(h_prev, m, ctx.batch_sizes) if m.numel() else h_prev
        dw_hh = _weight_grad(hm_prev, dhw, w_hh.dtype) if ctx.needs_input_grad[2] else None
        db_hh = dhw.sum(0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        # h_prev is the unmasked h(t-1) here (the GRU's carry needs it).
        dmask = (
            _recurrent_mask_grad(dhw, w_hh, h_prev, ctx.batch_sizes, m.shape[0]) if ctx.needs_input_grad[4] else None
        )
        return dxw, dh0, dw_hh, db_hh, dmask, None, None, None, None


# Shapes of the ops' outputs, for torch.compile (fake tensors): it then traces through the
# compiled loop instead of breaking the graph around it. torch.library accepts them only once
# the ops exist: _load_extension registers them after loading the library.
_FAKES: dict[str, Callable[..., Any]] = {}
_FAKES_REGISTERED: set[str] = set()


def _fake_kernel(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def store(fn: Callable[..., Any]) -> Callable[..., Any]:
        _FAKES[name] = fn
        return fn

    return store


def _register_fakes() -> None:
    """Register the fake kernels of the ops the loaded library defines (each once per process)."""
    for name, fn in _FAKES.items():
        if name not in _FAKES_REGISTERED and hasattr(torch.ops.regdrop_scan, name):
            torch.library.register_fake(f"regdrop_scan::{name}", fn)
            _FAKES_REGISTERED.add(name)


@_fake_kernel("zoneout_mask")
def _zoneout_mask_fake(seed: Tensor, rows: int, width: int, p: float) -> Tensor:
    return seed.new_empty((rows, width), dtype=torch.bool)


@_fake_kernel("lstm_forward")
def _lstm_forward_fake(
    xw: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    mask: Tensor,
    bs: list[int],
    reverse: bool,
    w_hr: Tensor | None = None,
    zone_h: Tensor | None = None,
    zone_c: Tensor | None = None,
    zone_p: float = 0.0,
    bias: Tensor | None = None,
) -> list[Tensor]:
    rows, (n, width), hidden = xw.shape[0], h0.shape, c0.shape[1]
    proj = w_hr is not None and w_hr.numel() > 0
    # with a bfloat16 w_hh the gate activations and the masked h(t-1) are saved in bfloat16
    saved = w_hh.dtype if w_hh.dtype == torch.bfloat16 else h0.dtype
    out, hn, cn = h0.new_empty((rows, width)), h0.new_empty((n, width)), h0.new_empty((n, hidden))
    acts = h0.new_empty((rows, 4 * hidden), dtype=saved)
    tanh_c, c_prev = h0.new_empty((rows, hidden)), h0.new_empty((rows, hidden))
    return [
        out,
        hn,
        cn,
        acts,
        tanh_c,
        c_prev,
        h0.new_empty((rows, width), dtype=saved),
        h0.new_empty((rows if proj else 0, hidden)),
    ]


@_fake_kernel("lstm_backward")
def _lstm_backward_fake(
    dout: Tensor,
    dhn: Tensor,
    dcn: Tensor,
    acts: Tensor,
    tanh_c: Tensor,
    c_prev: Tensor,
    w_hh: Tensor,
    mask: Tensor,
    bs: list[int],
    reverse: bool,
    w_hr: Tensor | None = None,
    zone_h: Tensor | None = None,
    zone_c: Tensor | None = None,
    zone_p: float = 0.0,
    bias_grad: bool = False,
) -> list[Tensor]:
    rows, proj = acts.shape[0], w_hr is not None and w_hr.numel() > 0
    dht = dcn.new_empty(rows if proj else 0, dhn.shape[1])
    dgates = dcn.new_empty(acts.shape, dtype=w_hh.dtype if w_hh.dtype == torch.bfloat16 else dcn.dtype)
    return [dgates, dhn.new_empty(dhn.shape), dcn.new_empty(dcn.shape), dht, dcn.new_empty(acts.shape[1])]


@_fake_kernel("gru_forward")
def _gru_forward_fake(
    xw: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor,
    mask: Tensor,
    bs: list[int],
    reverse: bool,
    zone_h: Tensor | None = None,
    zone_p: float = 0.0,
) -> list[Tensor]:
    rows, (n, hidden) = xw.shape[0], h0.shape
    acts = xw.new_empty((rows, 3 * hidden), dtype=torch.bfloat16 if w_hh.dtype == torch.bfloat16 else xw.dtype)
    others = [xw.new_empty(shape) for shape in [(rows, hidden), (n, hidden), (rows, hidden), (rows, hidden)]]
    return [others[0], others[1], acts, others[2], others[3]]


@_fake_kernel("gru_backward")
def _gru_backward_fake(
    dout: Tensor,
    dhn: Tensor,
    acts: Tensor,
    hwn: Tensor,
    h_prev: Tensor,
    w_hh: Tensor,
    mask: Tensor,
    bs: list[int],
    reverse: bool,
    zone_h: Tensor | None = None,
    zone_p: float = 0.0,
) -> list[Tensor]:
    return [dhn.new_empty(acts.shape), dhn.new_empty(acts.shape), dhn.new_empty(dhn.shape)]


def lstm_scan(
    xw: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    mask: Tensor | None,
    batch_sizes: Sequence[int],
    reverse: bool = False,
    *,
    w_hr: Tensor | None = None,
    zoneout: float = 0.0,
    training: bool = True,
    generator: torch.Generator | None = None,
    bias: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Run one LSTM layer in one direction over packed rows, given the input projection.

    .. math::
        (i, f, g, o) = \sigma/\tanh\big(xw_t + W_{hh} (m \odot h_{t-1})\big),\quad
        \tilde c_t = f c_{t-1} + i g,\quad \tilde h_t = W_{hr}\big(o \tanh(\tilde c_t)\big)

        c_t = d^c_t \odot c_{t-1} + (1 - d^c_t) \odot \tilde c_t,\quad
        h_t = d^h_t \odot h_{t-1} + (1 - d^h_t) \odot \tilde h_t

    with :math:`W_{hr} = I` without projection and :math:`d_t \sim` Bernoulli(``zoneout``)
    per unit, sample and step in training (a counter-based hash of one seed per mask, h then
    c), :math:`d_t =` ``zoneout`` in evaluation (0 when off).

    Args:
        xw: :math:`W_{ih} x_t` (+ :math:`b_{ih} + b_{hh}` where ``bias`` is None) for every row.
        h0, c0: initial states, one row per sample.
        w_hh: the hidden-to-hidden weight (after any DropConnect). A bfloat16 ``w_hh`` with
            float32 ``h0`` runs the per-step products on bfloat16 operands with float32
            accumulation (CPU autocast); state and gates are computed in float32 (the gate
            activations are saved for backward in bfloat16), and ``xw`` may then be bfloat16
            (autocast's input projection; its gradient is bfloat16 too).
        mask: recurrent mask on :math:`h_{t-1}` (one row per sample, already scaled by
            :math:`1/(1-p)`), or None.
        batch_sizes: active samples at each step (non-increasing).
        reverse: run from the last step to the first. Default: False.
        w_hr: the projection weight (``proj_size``), or None. Default: None.
        zoneout: zoneout rate on :math:`h` and :math:`c`, in [0, 1]. Default: 0.
        training: draw zoneout masks (True) or use the expectation (False). Default: True.
        generator: random generator for the zoneout masks. Default: None (torch's).
        bias: :math:`b_{ih} + b_{hh}`, added to ``xw`` in the state's dtype inside the loop, or
            None. Default: None.

    Shape:
        - xw: :math:`(R, 4H)` with :math:`R = \sum_t` ``batch_sizes[t]``
        - h0, mask: :math:`(N, P)` with :math:`N` = ``batch_sizes[0]``, :math:`P` = ``proj_size``
          with a projection, else :math:`H`; c0: :math:`(N, H)`
        - w_hh: :math:`(4H, P)`; w_hr: :math:`(P, H)`; bias: :math:`(4H)`
        - Output: out :math:`(R, P)`, h_n :math:`(N, P)`, c_n :math:`(N, H)`

    Raises:
        TypeError: a tensor argument that is not a floating-point tensor or has another dtype
            than ``xw``; ``batch_sizes`` not ints; ``reverse`` or ``training`` not a bool;
            ``generator`` not a ``torch.Generator``.
        ValueError: a shape that differs from the above, a tensor on another device than
            ``xw``, ``batch_sizes`` negative, increasing, not summing to :math:`R`, or
            with ``batch_sizes[0] != N``; ``zoneout`` outside [0, 1].

    Example:
        >>> xw, h0 = torch.randn(6, 8), torch.zeros(2, 2)
        >>> out, hn, cn = lstm_scan(xw, h0, h0, torch.randn(8, 2), None, [2, 2, 2])
        >>> out.shape, torch.equal(out[-2:], hn)
        (torch.Size([6, 2]), True)
        >>> out, hn, cn = lstm_scan(xw, h0[:, :1], h0, torch.randn(8, 1), None, [2, 2, 2],
        ...                         w_hr=torch.randn(1, 2), zoneout=0.1)
        >>> out.shape, cn.shape
        (torch.Size([6, 1]), torch.Size([2, 2]))
    """
    batch_sizes = _check_scan_args(
        "lstm_scan", 4, xw, h0, c0, w_hh, bias, mask, batch_sizes, reverse, w_hr, zoneout, training, generator, "bias"
    )
    zone_h, zone_c = _zoneout_masks(zoneout, training, xw.shape[0], (h0.shape[1], c0.shape[1]), h0, generator)
    if _use_extension(None if xw.dtype == torch.bfloat16 else xw, h0, c0, mask, w_hr, bias, w_hh=w_hh):
        zone_p = 0.0 if training else float(zoneout)
        return _LSTMScan.apply(xw, h0, c0, w_hh, mask, batch_sizes, reverse, w_hr, zone_h, zone_c, zone_p, bias)
    if xw.dtype != h0.dtype or bias is not None:
        xw = xw.to(h0.dtype) if bias is None else xw.to(h0.dtype) + bias
    return _lstm_loop(
        xw,
        batch_sizes,
        h0,
        c0,
        w_hh.to(xw.dtype),
        w_hr,
        mask,
        zoneout,
        training,
        reverse,
        None,
        zone_masks=(zone_h, zone_c),
    )


def gru_scan(
    xw: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    mask: Tensor | None,
    batch_sizes: Sequence[int],
    reverse: bool = False,
    *,
    zoneout: float = 0.0,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Run one GRU layer in one direction over packed rows, given the input projection.

    .. math::
        r, z = \sigma(\cdot),\quad n = \tanh\big(xw_n + r \odot (W_{hn} (m \odot h_{t-1}) + b_{hn})\big),
        \quad \tilde h_t = (1 - z) n + z\, h_{t-1},\quad
        h_t = d_t \odot h_{t-1} + (1 - d_t) \odot \tilde h_t

    with zoneout's :math:`d_t` as for :func:`lstm_scan`.

    Args:
        xw: :math:`W_{ih} x_t + b_{ih}` for every row (gates in torch's order r, z, n).
        h0: initial state, one row per sample.
        w_hh, b_hh: the hidden-to-hidden weight (after any DropConnect; bfloat16 as for
            :func:`lstm_scan`) and bias (or None).
        mask: recurrent mask on :math:`h_{t-1}` entering :math:`W_{hh}`, or None.
        batch_sizes: active samples at each step (non-increasing).
        reverse: run from the last step to the first. Default: False.
        zoneout, training, generator: as for :func:`lstm_scan`.

    Shape:
        - xw: :math:`(R, 3H)`; h0, mask: :math:`(N, H)`; w_hh: :math:`(3H, H)`; b_hh: :math:`(3H)`
        - Output: out :math:`(R, H)`, h_n :math:`(N, H)`

    Raises:
        TypeError, ValueError: as for :func:`lstm_scan`.

    Example:
        >>> out, hn = gru_scan(torch.randn(6, 6), torch.zeros(2, 2), torch.randn(6, 2), None, None, [2, 2, 2])
        >>> out.shape
        torch.Size([6, 2])
    """
    batch_sizes = _check_scan_args(
        "gru_scan", 3, xw, h0, None, w_hh, b_hh, mask, batch_sizes, reverse, None, zoneout, training, generator
    )
    xw = xw.to(h0.dtype)  # a bfloat16 xw (with a bfloat16 w_hh): the GRU's loop reads float32 rows
    (zone_h,) = _zoneout_masks(zoneout, training, xw.shape[0], (h0.shape[1],), xw, generator)
    if _use_extension(xw, h0, b_hh, mask, w_hh=w_hh):
        zone_p = 0.0 if training else float(zoneout)
        return _GRUScan.apply(xw, h0, w_hh, b_hh, mask, batch_sizes, reverse, zone_h, zone_p)
    return _gru_loop(
        xw, batch_sizes, h0, w_hh.to(xw.dtype), b_hh, mask, zoneout, training, reverse, None, zone_masks=zone_h
    )


def _steps(batch_sizes: Sequence[int], reverse: bool) -> list[tuple[int, int, int]]:
    """(t, offset, active rows) in the order the loop visits the steps."""
    steps = list(zip(range(len(batch_sizes)), _offsets(batch_sizes), batch_sizes, strict=True))
    return steps[::-1] if reverse else steps


def _lstm_loop(
    xw: Tensor,
    batch_sizes: Sequence[int],
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    w_hr: Tensor | None,
    mask: Tensor | None,
    zone_p: float,
    training: bool,
    reverse: bool,
    generator: torch.Generator | None,
    zone_masks: tuple[Tensor | None, Tensor | None] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The reference LSTM loop; zoneout uses ``zone_masks`` (h, c) if given, else draws them."""
    if zone_masks is None:
        widths = (h0.shape[1], c0.shape[1])
        zone_masks = _zoneout_masks(zone_p, training, xw.shape[0], widths, xw, generator)  # type: ignore[assignment]
    zone_h, zone_c = zone_masks  # type: ignore[misc]
    h, c = h0, c0
    outs: list[Tensor] = [xw.new_empty(0)] * len(batch_sizes)
    for t, o, b in _steps(batch_sizes, reverse):
        hp, cp = h[:b], c[:b]
        h_in = hp * mask[:b] if mask is not None else hp
        gates = torch.addmm(xw[o : o + b], h_in, w_hh.t())
        i, f, g, og = gates.chunk(4, 1)
        cn = torch.sigmoid(f) * cp + torch.sigmoid(i) * torch.tanh(g)
        hn = torch.sigmoid(og) * torch.tanh(cn)
        if w_hr is not None:
            hn = hn.mm(w_hr.t())
        if zone_h is not None or zone_p > 0.0:
            hn = _zone_mix(hp, hn, zone_h, o, b, zone_p)
            cn = _zone_mix(cp, cn, zone_c, o, b, zone_p)
        outs[t] = hn
        h = torch.cat([hn, h[b:]]) if b < h.shape[0] else hn
        c = torch.cat([cn, c[b:]]) if b < c.shape[0] else cn
    return torch.cat(outs), h, c


def _gru_loop(
    xw: Tensor,
    batch_sizes: Sequence[int],
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    mask: Tensor | None,
    zone_p: float,
    training: bool,
    reverse: bool,
    generator: torch.Generator | None,
    zone_masks: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The reference GRU loop; zoneout uses ``zone_masks`` if given, else draws them."""
    if zone_masks is None:
        (zone_masks,) = _zoneout_masks(zone_p, training, xw.shape[0], (h0.shape[1],), xw, generator)
    h = h0
    outs: list[Tensor] = [xw.new_empty(0)] * len(batch_sizes)
    for t, o, b in _steps(batch_sizes, reverse):
        hp = h[:b]
        h_in = hp * mask[:b] if mask is not None else hp
        hw = torch.nn.functional.linear(h_in, w_hh, b_hh)
        xr, xz, xn = xw[o : o + b].chunk(3, 1)
        hr, hz, hn_pre = hw.chunk(3, 1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn_pre)
        hn = torch.lerp(n, hp, z)  # (1 - z) n + z h(t-1), with the unmasked state
        if zone_masks is not None or zone_p > 0.0:
            hn = _zone_mix(hp, hn, zone_masks, o, b, zone_p)
        outs[t] = hn
        h = torch.cat([hn, h[b:]]) if b < h.shape[0] else hn
    return torch.cat(outs), h


def lstm_layer_loop(
    x: Tensor,
    batch_sizes: Sequence[int],
    h0: Tensor,
    c0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
    w_hr: Tensor | None = None,
    mask: Tensor | None = None,
    zoneout: float = 0.0,
    training: bool = True,
    reverse: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""One LSTM layer in one direction as a plain autograd loop (any device, projection, zoneout).

    Zoneout (Krueger et al. 2016) applies to :math:`h` and :math:`c` after each step with
    rate ``zoneout``; with a projection, to the projected :math:`h`.

    Shape:
        - x: :math:`(R, H_{in})` packed time-major rows; h0: :math:`(N, H_{out})`; c0: :math:`(N, H)`
        - Output: out :math:`(R, H_{out})`, h_n :math:`(N, H_{out})`, c_n :math:`(N, H)`

    Example:
        >>> w_ih, w_hh = torch.randn(8, 3), torch.randn(8, 2)
        >>> out, hn, cn = lstm_layer_loop(torch.randn(4, 3), [2, 2], torch.zeros(2, 2), torch.zeros(2, 2), w_ih, w_hh)
        >>> out.shape
        torch.Size([4, 2])
    """
    xw = torch.nn.functional.linear(x, w_ih, b_ih)
    if b_hh is not None:
        xw = xw + b_hh
    return _lstm_loop(
        xw, [int(b) for b in batch_sizes], h0, c0, w_hh, w_hr, mask, zoneout, training, reverse, generator
    )


def gru_layer_loop(
    x: Tensor,
    batch_sizes: Sequence[int],
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
    mask: Tensor | None = None,
    zoneout: float = 0.0,
    training: bool = True,
    reverse: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""One GRU layer in one direction as a plain autograd loop (any device, zoneout).

    Shape:
        - x: :math:`(R, H_{in})` packed time-major rows; h0: :math:`(N, H)`
        - Output: out :math:`(R, H)`, h_n :math:`(N, H)`

    Example:
        >>> out, hn = gru_layer_loop(torch.randn(4, 3), [2, 2], torch.zeros(2, 2), torch.randn(6, 3), torch.randn(6, 2))
        >>> hn.shape
        torch.Size([2, 2])
    """
    xw = torch.nn.functional.linear(x, w_ih, b_ih)
    return _gru_loop(xw, [int(b) for b in batch_sizes], h0, w_hh, b_hh, mask, zoneout, training, reverse, generator)
