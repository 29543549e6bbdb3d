r"""The CUDA time loop of per-sample recurrent dropout and zoneout: cuBLAS GEMMs plus Triton kernels.

On a CUDA tensor, one LSTM or GRU layer in one direction runs, at every step,

- forward: one GEMM :math:`(m \odot h_{t-1}) W_{hh}^\top` (``torch.mm``, cuBLAS) and one fused
  Triton kernel for the step's element-wise work (the gates, the new state, zoneout with masks
  drawn up front for all steps or its expectation in evaluation, the GEMM operand
  :math:`m \odot h_t` of the next step, and what backward needs);
- backward: one fused kernel (the gate gradients, the carried gradients of :math:`h` and
  :math:`c`, zoneout's pass-through) and one GEMM :math:`\partial g_t\, W_{hh}`.

The input projection is one GEMM over all steps before the loop (the caller's), and the
gradient of :math:`W_{hh}` one GEMM over all steps after it. With a projection
(``proj_size``) a step is two GEMMs and two kernels: the cell kernel, the GEMM
:math:`u W_{hr}^\top`, and the kernel of the projected state. Rows follow the packed prefix
layout of :mod:`regdrop.functional.rnn`: step ``t`` owns rows ``offset[t] : offset[t] +
batch_sizes[t]`` (samples ``0 .. batch_sizes[t] - 1``), and ``reverse`` visits the steps
last to first. The computation equals :func:`~regdrop.functional.rnn.lstm_layer_loop` /
:func:`~regdrop.functional.rnn.gru_layer_loop` up to rounding (the tests check it through
Triton's interpreter on CPU).

Precision: the states, the gate arithmetic and every gradient of the loop are float32. The
per-step GEMMs and the :math:`W_{hh}` gradient GEMM run in ``gemm_dtype``: the dtype of
``w_hh`` by default, or float16/bfloat16 when the layer's forward ran under autocast
(:func:`autocast_gemms`), cuBLAS accumulating in float32.

Triton is imported only here, and only when a CUDA tensor needs the loop: ``import regdrop``
works without it. Without it a CUDA input runs the reference loop, with one warning that says
what to install. Not done: capturing the loop in a CUDA graph (each step launches its GEMM and
kernel from Python).
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from types import SimpleNamespace
from typing import Any, NamedTuple, ParamSpec, TypeVar

import torch
from torch import Tensor

from regdrop.functional import rnn as _rnn
from regdrop.functional._validation import check_rate

__all__ = ["autocast_gemms", "cuda_scan_available", "gru_scan_cuda", "handles", "layer_scan_cuda", "lstm_scan_cuda"]

_STATE: dict[str, Any] = {}
_GEMM_DTYPE: ContextVar[torch.dtype | None] = ContextVar("regdrop_gemm_dtype", default=None)
_LOOP_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_P = ParamSpec("_P")
_R = TypeVar("_R")
# The kernels index with 32-bit offsets; a larger input runs the reference loop.
_MAX_ELEMENTS = 2**31 - 1
_INSTALL_HINT = (
    "install Triton (`pip install triton`, the version your torch build names: "
    "`pip show torch` lists it under Requires, or `pip install 'regdrop[cuda]'`)"
)


def cuda_scan_available() -> bool:
    """Whether Triton can be imported, so that the fused CUDA time loop can run (checked once).

    Set ``REGDROP_TRITON=0`` to never use it (the reference loop then runs on CUDA too).

    Example:
        >>> isinstance(cuda_scan_available(), bool)
        True
    """
    if os.environ.get("REGDROP_TRITON", "1") == "0":
        return False
    if "ok" not in _STATE:
        try:
            import triton  # noqa: F401

            _STATE["ok"] = True
        except ImportError as err:
            _STATE["ok"] = False
            _STATE["error"] = f"{type(err).__name__}: {err}"
    return bool(_STATE["ok"])


def handles(*tensors: Tensor | None) -> bool:
    """Whether the layer should run its regularized time loop here: CUDA tensors of float32,
    float16 or bfloat16, and Triton available. On CUDA without Triton it warns once (per
    process) that the reference loop runs instead, and what to install.

    Example:
        >>> handles(torch.zeros(2, 3))  # a CPU tensor: the compiled CPU loop's job
        False
    """
    live = [t for t in tensors if t is not None]
    if not live or not all(_on_cuda(t) and t.dtype in _LOOP_DTYPES for t in live):
        return False
    if cuda_scan_available():
        return True
    if os.environ.get("REGDROP_TRITON", "1") != "0" and not _STATE.get("warned"):
        _STATE["warned"] = True
        warnings.warn(
            f"regdrop: per-sample recurrent dropout and zoneout on CUDA run the reference loop (correct, "
            f"several times slower) because Triton cannot be imported ({_STATE.get('error', 'not installed')}); "
            f"{_INSTALL_HINT} for the fused CUDA loop",
            stacklevel=2,
        )
    return False


def _on_cuda(t: Tensor) -> bool:
    return t.device.type == "cuda"


@contextlib.contextmanager
def autocast_gemms(dtype: torch.dtype | None) -> Iterator[None]:
    """Within this block, the CUDA loop's GEMMs default to ``dtype`` (the layer enters it with
    autocast's dtype when its forward ran under autocast; states stay float32).

    Example:
        >>> with autocast_gemms(torch.bfloat16):
        ...     pass
    """
    if dtype not in (None, torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"autocast_gemms: dtype must be None, float16, bfloat16 or float32, got {dtype}")
    token = _GEMM_DTYPE.set(dtype)
    try:
        yield
    finally:
        _GEMM_DTYPE.reset(token)


@contextlib.contextmanager
def _interpreted() -> Iterator[None]:
    """Run the kernels in Triton's interpreter within this block (CPU tensors; for the tests
    and the examples on machines without a GPU)."""
    before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = before


def _kernels() -> SimpleNamespace:
    # triton.jit reads TRITON_INTERPRET when it decorates: decorate at first use, once per value.
    return _decorated(os.environ.get("TRITON_INTERPRET", ""))


@functools.lru_cache(maxsize=2)
def _decorated(interpret: str) -> SimpleNamespace:
    try:
        import triton
    except ImportError as err:
        raise RuntimeError(
            f"regdrop: the CUDA time loop needs Triton, which cannot be imported ({err}); {_INSTALL_HINT}"
        ) from err
    from regdrop.functional import _triton_kernels as k

    return SimpleNamespace(
        lstm_fwd=triton.jit(k.lstm_forward_step),
        lstm_bwd=triton.jit(k.lstm_backward_step),
        gru_fwd=triton.jit(k.gru_forward_step),
        gru_bwd=triton.jit(k.gru_backward_step),
        lstmp_cell_fwd=triton.jit(k.lstmp_cell_forward),
        lstmp_cell_bwd=triton.jit(k.lstmp_cell_backward),
        proj_fwd=triton.jit(k.projection_forward),
        proj_bwd=triton.jit(k.projection_backward),
    )


def _on_device(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with its first tensor argument's GPU as the current device: Triton launches
    on the current device, cuBLAS on the tensors' (they differ when a caller's tensors live on
    another GPU than the current one)."""

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        first = next(a for a in args if isinstance(a, Tensor))
        with torch.cuda.device(first.device) if first.is_cuda else contextlib.nullcontext():
            return fn(*args, **kwargs)

    return run


def _block(elements: int, device: torch.device) -> int:
    # On a GPU, a fixed block (one compilation for every batch size); in the interpreter, whole
    # steps per program, since each program is a numpy pass.
    if device.type == "cuda":
        return 512
    return max(16, 1 << (elements - 1).bit_length())


class _Config(NamedTuple):
    steps: list[tuple[int, int, int]]  # (t, offset, rows) in visiting order
    zone: int  # 0 none, 1 masks, 2 expectation
    zone_p: float
    gemm_dtype: torch.dtype


def _grid(rows: int, hidden: int, block: int) -> tuple[int]:
    return (max(1, -(-rows * hidden // block)),)


# ------------------------------------------------------------------------------------ LSTM
@_on_device
def _lstm_forward(
    xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, mask: Tensor | None, z: Tensor | None, cfg: _Config, save: bool
) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, ...]]:
    k = _kernels()
    rows_total, n, hidden = xw.shape[0], h0.shape[0], h0.shape[1]
    f32, gd = torch.float32, cfg.gemm_dtype
    h = h0.to(f32, copy=True).contiguous()
    c = c0.to(f32, copy=True).contiguous()
    hm = (h * mask if mask is not None else h).to(gd, copy=True).contiguous()
    w_t = w_hh.to(gd).t()
    hw = xw.new_empty(n, 4 * hidden, dtype=gd)
    out = xw.new_empty(rows_total, hidden, dtype=f32)
    if save:
        acts = xw.new_empty(rows_total, 4 * hidden, dtype=f32)
        tc = xw.new_empty(rows_total, hidden, dtype=f32)
        c_prev = xw.new_empty(rows_total, hidden, dtype=f32)
        hm_prev = xw.new_empty(rows_total, hidden, dtype=gd)
    else:
        acts = tc = c_prev = out
        hm_prev = hm
    block = _block(n * hidden, xw.device)
    for _, o, b in cfg.steps:
        torch.mm(hm[:b], w_t, out=hw[:b])
        k.lstm_fwd[_grid(b, hidden, block)](
            xw, hw, h, c, hm, mask if mask is not None else h, z if z is not None else h, out,
            acts, tc, c_prev, hm_prev, o, b, hidden, cfg.zone_p,
            HAS_MASK=mask is not None, ZONE=cfg.zone, SAVE=save, BLOCK=block,
        )  # fmt: skip
    return out, h, c, (acts, tc, c_prev, hm_prev)


class _LSTMCuda(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, mask: Tensor | None, z: Tensor | None, cfg: _Config
    ) -> tuple[Tensor, Tensor, Tensor]:
        out, h, c, saved = _lstm_forward(xw, h0, c0, w_hh, mask, z, cfg, save=True)
        ctx.save_for_backward(w_hh, mask, z, *saved)
        ctx.cfg, ctx.dtypes = cfg, (xw.dtype, h0.dtype, c0.dtype, w_hh.dtype)
        return out.to(xw.dtype), h.to(h0.dtype), c.to(c0.dtype)

    @staticmethod
    @_on_device
    def backward(ctx: Any, dout: Tensor, dhn: Tensor, dcn: Tensor) -> tuple[Tensor | None, ...]:
        w_hh, mask, z, acts, tc, c_prev, hm_prev = ctx.saved_tensors
        cfg: _Config = ctx.cfg
        k = _kernels()
        f32, gd = torch.float32, cfg.gemm_dtype
        rows_total, hidden = acts.shape[0], w_hh.shape[1]
        dh = dhn.to(f32, copy=True).contiguous()
        dc = dcn.to(f32, copy=True).contiguous()
        dout = dout.contiguous()
        dg = acts.new_empty(rows_total, 4 * hidden)
        lowp = gd != f32
        dg_lp = acts.new_empty(rows_total, 4 * hidden, dtype=gd) if lowp else dg
        dhm = acts.new_empty(dh.shape, dtype=gd)
        w = w_hh.to(gd)
        block = _block(dh.numel(), acts.device)
        prev = 0
        for _, o, b in reversed(cfg.steps):
            k.lstm_bwd[_grid(max(b, prev), hidden, block)](
                dout, dh, dc, dhm, mask if mask is not None else dh, z if z is not None else dh, acts, tc, c_prev,
                dg, dg_lp, o, b, prev, hidden, cfg.zone_p,
                HAS_MASK=mask is not None, ZONE=cfg.zone, LOWP=lowp, BLOCK=block,
            )  # fmt: skip
            torch.mm(dg_lp[o : o + b], w, out=dhm[:b])
            prev = b
        _finish(dh, dhm, mask, prev)
        dw_hh = dg_lp.t().mm(hm_prev).to(ctx.dtypes[3]) if ctx.needs_input_grad[3] else None
        return dg.to(ctx.dtypes[0]), dh.to(ctx.dtypes[1]), dc.to(ctx.dtypes[2]), dw_hh, None, None, None


def _finish(dh: Tensor, dhm: Tensor, mask: Tensor | None, rows: int) -> None:
    """The first step's recurrent gradient, which no later kernel folds in: dh0 += m * dhm."""
    if rows:
        extra = dhm[:rows].to(dh.dtype)
        dh[:rows] += extra * mask[:rows] if mask is not None else extra


# ----------------------------------------------------------------------- LSTM, projected
@_on_device
def _lstmp_forward(
    xw: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    w_hr: Tensor,
    mask: Tensor | None,
    z: Tensor | None,
    cfg: _Config,
    save: bool,
) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, ...]]:
    k = _kernels()
    rows_total, n, proj, hidden = xw.shape[0], h0.shape[0], h0.shape[1], c0.shape[1]
    f32, gd = torch.float32, cfg.gemm_dtype
    h = h0.to(f32, copy=True).contiguous()
    c = c0.to(f32, copy=True).contiguous()
    hm = (h * mask if mask is not None else h).to(gd, copy=True).contiguous()
    w_hh_t, w_hr_t = w_hh.to(gd).t(), w_hr.to(gd).t()
    hw = xw.new_empty(n, 4 * hidden, dtype=gd)
    hp = xw.new_empty(n, proj, dtype=gd)
    u = xw.new_empty(rows_total, hidden, dtype=gd)
    out = xw.new_empty(rows_total, proj, dtype=f32)
    if save:
        acts = xw.new_empty(rows_total, 4 * hidden, dtype=f32)
        tc = xw.new_empty(rows_total, hidden, dtype=f32)
        c_prev = xw.new_empty(rows_total, hidden, dtype=f32)
        hm_prev = xw.new_empty(rows_total, proj, dtype=gd)
    else:
        acts = tc = c_prev = out
        hm_prev = hm
    zw = proj + hidden
    zbuf = z if z is not None else h
    block = _block(n * max(hidden, proj), xw.device)
    for _, o, b in cfg.steps:
        torch.mm(hm[:b], w_hh_t, out=hw[:b])
        k.lstmp_cell_fwd[_grid(b, hidden, block)](
            xw, hw, c, zbuf, u, acts, tc, c_prev, o, b, hidden, proj, zw, cfg.zone_p,
            ZONE=cfg.zone, SAVE=save, BLOCK=block,
        )  # fmt: skip
        torch.mm(u[o : o + b], w_hr_t, out=hp[:b])
        k.proj_fwd[_grid(b, proj, block)](
            hp, h, hm, mask if mask is not None else h, zbuf, out, hm_prev, o, b, proj, zw, cfg.zone_p,
            HAS_MASK=mask is not None, ZONE=cfg.zone, SAVE=save, BLOCK=block,
        )  # fmt: skip
    return out, h, c, (acts, tc, c_prev, hm_prev, u)


class _LSTMPCuda(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_hh: Tensor,
        w_hr: Tensor,
        mask: Tensor | None,
        z: Tensor | None,
        cfg: _Config,
    ) -> tuple[Tensor, Tensor, Tensor]:
        out, h, c, saved = _lstmp_forward(xw, h0, c0, w_hh, w_hr, mask, z, cfg, save=True)
        ctx.save_for_backward(w_hh, w_hr, mask, z, *saved)
        ctx.cfg, ctx.dtypes = cfg, (xw.dtype, h0.dtype, c0.dtype, w_hh.dtype, w_hr.dtype)
        return out.to(xw.dtype), h.to(h0.dtype), c.to(c0.dtype)

    @staticmethod
    @_on_device
    def backward(ctx: Any, dout: Tensor, dhn: Tensor, dcn: Tensor) -> tuple[Tensor | None, ...]:
        w_hh, w_hr, mask, z, acts, tc, c_prev, hm_prev, u = ctx.saved_tensors
        cfg: _Config = ctx.cfg
        k = _kernels()
        f32, gd = torch.float32, cfg.gemm_dtype
        rows_total, proj, hidden = acts.shape[0], w_hr.shape[0], w_hr.shape[1]
        dh = dhn.to(f32, copy=True).contiguous()
        dc = dcn.to(f32, copy=True).contiguous()
        dout = dout.contiguous()
        dg = acts.new_empty(rows_total, 4 * hidden)
        lowp = gd != f32
        dg_lp = acts.new_empty(rows_total, 4 * hidden, dtype=gd) if lowp else dg
        dhp = acts.new_empty(rows_total, proj, dtype=gd)
        du = acts.new_empty(dc.shape, dtype=gd)
        dhm = acts.new_empty(dh.shape, dtype=gd)
        w, wr = w_hh.to(gd), w_hr.to(gd)
        zw, zbuf = proj + hidden, z if z is not None else dh
        block = _block(dh.shape[0] * max(hidden, proj), acts.device)
        prev = 0
        for _, o, b in reversed(cfg.steps):
            k.proj_bwd[_grid(max(b, prev), proj, block)](
                dout, dh, dhm, mask if mask is not None else dh, zbuf, dhp, o, b, prev, proj, zw, cfg.zone_p,
                HAS_MASK=mask is not None, ZONE=cfg.zone, BLOCK=block,
            )  # fmt: skip
            torch.mm(dhp[o : o + b], wr, out=du[:b])
            k.lstmp_cell_bwd[_grid(b, hidden, block)](
                du, dc, zbuf, acts, tc, c_prev, dg, dg_lp, o, b, hidden, proj, zw, cfg.zone_p,
                ZONE=cfg.zone, LOWP=lowp, BLOCK=block,
            )  # fmt: skip
            torch.mm(dg_lp[o : o + b], w, out=dhm[:b])
            prev = b
        _finish(dh, dhm, mask, prev)
        dw_hh = dg_lp.t().mm(hm_prev).to(ctx.dtypes[3]) if ctx.needs_input_grad[3] else None
        dw_hr = dhp.t().mm(u).to(ctx.dtypes[4]) if ctx.needs_input_grad[4] else None
        return dg.to(ctx.dtypes[0]), dh.to(ctx.dtypes[1]), dc.to(ctx.dtypes[2]), dw_hh, dw_hr, None, None, None


# ------------------------------------------------------------------------------------- GRU
@_on_device
def _gru_forward(
    xw: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    mask: Tensor | None,
    z: Tensor | None,
    cfg: _Config,
    save: bool,
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    k = _kernels()
    rows_total, n, hidden = xw.shape[0], h0.shape[0], h0.shape[1]
    f32, gd = torch.float32, cfg.gemm_dtype
    h = h0.to(f32, copy=True).contiguous()
    hm = (h * mask if mask is not None else h).to(gd, copy=True).contiguous()
    w_t = w_hh.to(gd).t()
    hw = xw.new_empty(n, 3 * hidden, dtype=gd)
    out = xw.new_empty(rows_total, hidden, dtype=f32)
    if save:
        acts = xw.new_empty(rows_total, 3 * hidden, dtype=f32)
        hn = xw.new_empty(rows_total, hidden, dtype=f32)
        h_prev = xw.new_empty(rows_total, hidden, dtype=f32)
        hm_prev = xw.new_empty(rows_total, hidden, dtype=gd)
    else:
        acts = hn = h_prev = out
        hm_prev = hm
    block = _block(n * hidden, xw.device)
    for _, o, b in cfg.steps:
        torch.mm(hm[:b], w_t, out=hw[:b])
        k.gru_fwd[_grid(b, hidden, block)](
            xw, hw, b_hh if b_hh is not None else h, h, hm, mask if mask is not None else h,
            z if z is not None else h, out, acts, hn, h_prev, hm_prev, o, b, hidden, cfg.zone_p,
            HAS_BIAS=b_hh is not None, HAS_MASK=mask is not None, ZONE=cfg.zone, SAVE=save, BLOCK=block,
        )  # fmt: skip
    return out, h, (acts, hn, h_prev, hm_prev)


class _GRUCuda(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        w_hh: Tensor,
        b_hh: Tensor | None,
        mask: Tensor | None,
        z: Tensor | None,
        cfg: _Config,
    ) -> tuple[Tensor, Tensor]:
        out, h, saved = _gru_forward(xw, h0, w_hh, b_hh, mask, z, cfg, save=True)
        ctx.save_for_backward(w_hh, mask, z, *saved)
        ctx.cfg, ctx.has_bias = cfg, b_hh is not None
        ctx.dtypes = (xw.dtype, h0.dtype, w_hh.dtype, None if b_hh is None else b_hh.dtype)
        return out.to(xw.dtype), h.to(h0.dtype)

    @staticmethod
    @_on_device
    def backward(ctx: Any, dout: Tensor, dhn: Tensor) -> tuple[Tensor | None, ...]:
        w_hh, mask, z, acts, hn, h_prev, hm_prev = ctx.saved_tensors
        cfg: _Config = ctx.cfg
        k = _kernels()
        f32, gd = torch.float32, cfg.gemm_dtype
        rows_total, hidden = acts.shape[0], w_hh.shape[1]
        dh = dhn.to(f32, copy=True).contiguous()
        dout = dout.contiguous()
        dxw = acts.new_empty(rows_total, 3 * hidden)
        dhw = acts.new_empty(rows_total, 3 * hidden, dtype=gd)
        dhm = acts.new_empty(dh.shape, dtype=gd)
        w = w_hh.to(gd)
        block = _block(dh.numel(), acts.device)
        prev = 0
        for _, o, b in reversed(cfg.steps):
            k.gru_bwd[_grid(max(b, prev), hidden, block)](
                dout, dh, dhm, mask if mask is not None else dh, z if z is not None else dh, acts, hn, h_prev,
                dxw, dhw, o, b, prev, hidden, cfg.zone_p,
                HAS_MASK=mask is not None, ZONE=cfg.zone, BLOCK=block,
            )  # fmt: skip
            torch.mm(dhw[o : o + b], w, out=dhm[:b])
            prev = b
        _finish(dh, dhm, mask, prev)
        dw_hh = dhw.t().mm(hm_prev).to(ctx.dtypes[2]) if ctx.needs_input_grad[2] else None
        db_hh = dhw.sum(0, dtype=f32).to(ctx.dtypes[3]) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return dxw.to(ctx.dtypes[0]), dh.to(ctx.dtypes[1]), dw_hh, db_hh, None, None, None


# ------------------------------------------------------------------------------ public ops
def _config(
    who: str,
    xw: Tensor,
    batch_sizes: list[int],
    reverse: bool,
    zoneout: float,
    training: bool,
    gemm_dtype: torch.dtype | None,
    w_hh: Tensor,
) -> _Config:
    p = check_rate("zoneout", zoneout)
    if not isinstance(training, bool):
        raise TypeError(f"{who}: training must be a bool, got {type(training).__name__} {training!r}")
    for t in (xw, w_hh):
        if t.dtype not in _LOOP_DTYPES:
            raise TypeError(f"{who}: the CUDA loop runs float32, float16 or bfloat16 tensors, got {t.dtype}")
    gd = gemm_dtype if gemm_dtype is not None else (_GEMM_DTYPE.get() or w_hh.dtype)
    if gd not in _LOOP_DTYPES:
        raise ValueError(f"{who}: gemm_dtype must be float32, float16 or bfloat16, got {gd}")
    if xw.numel() > _MAX_ELEMENTS:
        raise ValueError(
            f"{who}: the CUDA loop indexes with 32-bit offsets: xw must have at most {_MAX_ELEMENTS} "
            f"elements, got {xw.numel()}; use the reference loop (regdrop.functional.rnn.lstm_layer_loop)"
        )
    zone = 0 if p == 0.0 else (1 if training else 2)
    return _Config(_rnn._steps(batch_sizes, reverse), zone, p, gd)


def _zoneout_masks(
    xw: Tensor, widths: tuple[int, ...], cfg: _Config, generator: torch.Generator | None
) -> Tensor | None:
    """Every step's 0/1 keep-masks (1: the unit keeps its previous value), one block of columns
    per state, from the CPU loop's draw (:func:`regdrop.functional.rnn._zoneout_masks`), so both
    loops take the same masks from the same generator state."""
    if cfg.zone != 1:
        return None
    masks = _rnn._zoneout_masks(cfg.zone_p, True, xw.shape[0], widths, xw, generator)
    return torch.cat([m for m in masks if m is not None], 1).to(torch.uint8)


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


@torch.compiler.disable
def lstm_scan_cuda(
    xw: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    mask: Tensor | None,
    batch_sizes: Sequence[int],
    reverse: bool = False,
    zoneout: float = 0.0,
    training: bool = True,
    generator: torch.Generator | None = None,
    gemm_dtype: torch.dtype | None = None,
    w_hr: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Run one LSTM layer in one direction over packed rows on CUDA: a GEMM and a Triton kernel per step.

    Computes what :func:`~regdrop.functional.rnn.lstm_scan` computes, plus zoneout on
    :math:`h` and :math:`c` (Krueger et al. 2016):
    :math:`h_t = d_t \odot h_{t-1} + (1 - d_t) \odot \tilde h_t` with
    :math:`d_t \sim \mathrm{Bernoulli}(p)` per unit and step in training (all steps' masks drawn
    in one call before the loop), :math:`d_t = p` in evaluation; the same for :math:`c`.
    With a projection ``w_hr`` (``proj_size`` :math:`P`), :math:`\tilde h_t = W_{hr}(o_t \odot
    \tanh(c_t))` and zoneout acts on the projected :math:`h`; a step is then two GEMMs and two
    kernels.

    Args:
        xw: :math:`W_{ih} x_t + b_{ih} + b_{hh}` for every row.
        h0, c0: initial states, one row per sample.
        w_hh: the hidden-to-hidden weight (after any DropConnect).
        mask: recurrent mask on :math:`h_{t-1}` (per sample, scaled by :math:`1/(1-p)`), or None.
        batch_sizes: active samples at each step (non-increasing).
        reverse: run from the last step to the first. Default: False.
        zoneout: zoneout rate in [0, 1]. Default: 0.
        training: draw zoneout masks (True) or use the expectation (False). Default: True.
        generator: random generator for the zoneout masks. Default: None.
        gemm_dtype: dtype of the per-step GEMMs; None: autocast's inside :func:`autocast_gemms`,
            else ``w_hh``'s. States and gate arithmetic are float32 in every case.
        w_hr: the projection weight, or None (no projection). Default: None.

    Shape:
        - xw: :math:`(R, 4H)` with :math:`R = \sum_t` ``batch_sizes[t]``
        - h0, c0, mask: :math:`(N, H)`; w_hh: :math:`(4H, H)`
        - with ``w_hr`` :math:`(P, H)`: h0, mask :math:`(N, P)`, w_hh :math:`(4H, P)`
        - Output: out :math:`(R, H)`, h_n :math:`(N, H)`, c_n :math:`(N, H)` (:math:`P` for out
          and h_n with a projection)

    Raises:
        TypeError, ValueError: as :func:`~regdrop.functional.rnn.lstm_scan`; also a zoneout rate
            outside [0, 1], a dtype other than float32/float16/bfloat16.
        RuntimeError: if Triton cannot be imported.

    Example:
        >>> from regdrop.functional._triton_rnn import _interpreted
        >>> xw, h0 = torch.randn(6, 8), torch.zeros(2, 2)
        >>> with _interpreted():  # no GPU here: Triton's interpreter runs the kernels on CPU tensors
        ...     out, hn, cn = lstm_scan_cuda(xw, h0, h0, torch.randn(8, 2), None, [2, 2, 2], zoneout=0.1)
        >>> out.shape, torch.equal(out[-2:], hn)
        (torch.Size([6, 2]), True)
    """
    if w_hr is not None:
        return _lstmp_scan(xw, h0, c0, w_hh, w_hr, mask, batch_sizes, reverse, zoneout, training, generator, gemm_dtype)
    sizes = _rnn._check_scan_args("lstm_scan_cuda", 4, xw, h0, c0, w_hh, None, mask, batch_sizes, reverse)
    cfg = _config("lstm_scan_cuda", xw, sizes, reverse, zoneout, training, gemm_dtype, w_hh)
    z = _zoneout_masks(xw, (h0.shape[1], c0.shape[1]), cfg, generator)
    xw = xw.contiguous()
    m = mask.contiguous() if mask is not None else None
    if _needs_grad(xw, h0, c0, w_hh):
        return _LSTMCuda.apply(xw, h0, c0, w_hh, m, z, cfg)
    out, h, c, _ = _lstm_forward(xw, h0, c0, w_hh, m, z, cfg, save=False)
    return out.to(xw.dtype), h.to(h0.dtype), c.to(c0.dtype)


def _lstmp_scan(
    xw: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    w_hr: Tensor,
    mask: Tensor | None,
    batch_sizes: Sequence[int],
    reverse: bool,
    zoneout: float,
    training: bool,
    generator: torch.Generator | None,
    gemm_dtype: torch.dtype | None,
) -> tuple[Tensor, Tensor, Tensor]:
    who = "lstm_scan_cuda"
    _rnn._check_tensor_arg(who, "xw", xw)
    _rnn._check_tensor_arg(who, "c0", c0, xw)
    if xw.dim() != 2 or c0.dim() != 2 or xw.shape[1] != 4 * c0.shape[1]:
        raise ValueError(
            f"{who}: xw must be 2-D (rows, 4H) and c0 2-D (N, H), got shapes {tuple(xw.shape)} and {tuple(c0.shape)}"
        )
    n, hidden = c0.shape
    _rnn._check_tensor_arg(who, "w_hr", w_hr, xw)
    if w_hr.dim() != 2 or w_hr.shape[1] != hidden or not 0 < w_hr.shape[0] < hidden:
        raise ValueError(f"{who}: w_hr must have shape (P, {hidden}) with 0 < P < {hidden}, got {tuple(w_hr.shape)}")
    proj = w_hr.shape[0]
    _rnn._check_tensor_arg(who, "h0", h0, xw, (n, proj))
    _rnn._check_tensor_arg(who, "w_hh", w_hh, xw, (4 * hidden, proj))
    if mask is not None:
        _rnn._check_tensor_arg(who, "mask", mask, xw, (n, proj))
    if not isinstance(reverse, bool):
        raise TypeError(f"{who}: reverse must be a bool, got {type(reverse).__name__} {reverse!r}")
    sizes = _rnn._check_batch_sizes(who, batch_sizes, xw.shape[0])
    if sizes and sizes[0] != n:
        raise ValueError(f"{who}: batch_sizes[0] must equal the number of rows of h0, {n}, got {sizes[0]}")
    cfg = _config(who, xw, sizes, reverse, zoneout, training, gemm_dtype, w_hh)
    z = _zoneout_masks(xw, (proj, hidden), cfg, generator)
    xw = xw.contiguous()
    m = mask.contiguous() if mask is not None else None
    if _needs_grad(xw, h0, c0, w_hh, w_hr):
        return _LSTMPCuda.apply(xw, h0, c0, w_hh, w_hr, m, z, cfg)
    out, h, c, _ = _lstmp_forward(xw, h0, c0, w_hh, w_hr, m, z, cfg, save=False)
    return out.to(xw.dtype), h.to(h0.dtype), c.to(c0.dtype)


@torch.compiler.disable
def gru_scan_cuda(
    xw: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    mask: Tensor | None,
    batch_sizes: Sequence[int],
    reverse: bool = False,
    zoneout: float = 0.0,
    training: bool = True,
    generator: torch.Generator | None = None,
    gemm_dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Run one GRU layer in one direction over packed rows on CUDA: a GEMM and a Triton kernel per step.

    Computes what :func:`~regdrop.functional.rnn.gru_scan` computes, plus zoneout on :math:`h`
    as in :func:`lstm_scan_cuda`.

    Args:
        xw: :math:`W_{ih} x_t + b_{ih}` for every row (gates in torch's order r, z, n).
        h0: initial state, one row per sample.
        w_hh, b_hh: the hidden-to-hidden weight (after any DropConnect) and bias (or None).
        mask, batch_sizes, reverse, zoneout, training, generator, gemm_dtype: as for
            :func:`lstm_scan_cuda`.

    Shape:
        - xw: :math:`(R, 3H)`; h0, mask: :math:`(N, H)`; w_hh: :math:`(3H, H)`; b_hh: :math:`(3H)`
        - Output: out :math:`(R, H)`, h_n :math:`(N, H)`

    Raises:
        TypeError, ValueError, RuntimeError: as for :func:`lstm_scan_cuda`.

    Example:
        >>> from regdrop.functional._triton_rnn import _interpreted
        >>> with _interpreted():
        ...     out, hn = gru_scan_cuda(torch.randn(6, 6), torch.zeros(2, 2), torch.randn(6, 2), None, None, [2, 2, 2])
        >>> out.shape
        torch.Size([6, 2])
    """
    sizes = _rnn._check_scan_args("gru_scan_cuda", 3, xw, h0, None, w_hh, b_hh, mask, batch_sizes, reverse)
    cfg = _config("gru_scan_cuda", xw, sizes, reverse, zoneout, training, gemm_dtype, w_hh)
    z = _zoneout_masks(xw, (h0.shape[1],), cfg, generator)
    xw = xw.contiguous()
    m = mask.contiguous() if mask is not None else None
    b = b_hh.contiguous() if b_hh is not None else None
    if _needs_grad(xw, h0, w_hh, b_hh):
        return _GRUCuda.apply(xw, h0, w_hh, b, m, z, cfg)
    out, h, _ = _gru_forward(xw, h0, w_hh, b, m, z, cfg, save=False)
    return out.to(xw.dtype), h.to(h0.dtype)


def layer_scan_cuda(
    x: Tensor,
    batch_sizes: Sequence[int],
    h0: Tensor,
    c0: Tensor | None,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    mask: Tensor | None,
    zoneout: float,
    training: bool,
    reverse: bool,
    w_hr: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""One LSTM or GRU layer in one direction on CUDA, input projection included.

    The hook :class:`regdrop.nn.LSTM` / :class:`regdrop.nn.GRU` call for a CUDA input when
    :func:`handles` says so: an LSTM when ``c0`` is given (``w_hr`` its projection, or None), a
    GRU when ``c0`` is None. The input projection is one GEMM over all rows, in autocast's dtype
    under :func:`autocast_gemms`.

    Shape:
        - x: :math:`(R, H_{in})`; h0, c0, mask: :math:`(N, H)`; w_ih: :math:`(G H, H_{in})`;
          w_hh: :math:`(G H, H)` with :math:`G` = 4 (LSTM) or 3 (GRU)
        - Output: out :math:`(R, H)`, h_n :math:`(N, H)`, c_n :math:`(N, H)` or None

    Example:
        >>> from regdrop.functional._triton_rnn import _interpreted
        >>> w_ih, w_hh = torch.randn(6, 3), torch.randn(6, 2)
        >>> with _interpreted():
        ...     out, hn, cn = layer_scan_cuda(torch.randn(4, 3), [2, 2], torch.zeros(2, 2), None, w_ih, w_hh,
        ...                                   None, None, None, 0.0, True, False)
        >>> out.shape, cn is None
        (torch.Size([4, 2]), True)
    """
    hidden = c0.shape[1] if c0 is not None else h0.shape[1]
    if x.shape[0] * 4 * hidden > _MAX_ELEMENTS:  # past the kernels' 32-bit offsets
        if c0 is not None:
            return _rnn.lstm_layer_loop(
                x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mask, zoneout, training, reverse
            )
        out, h = _rnn.gru_layer_loop(x, batch_sizes, h0, w_ih, w_hh, b_ih, b_hh, mask, zoneout, training, reverse)
        return out, h, None
    lowp = _GEMM_DTYPE.get()
    bias = b_ih + b_hh if c0 is not None and b_ih is not None and b_hh is not None else b_ih
    if lowp in (torch.float16, torch.bfloat16) and x.dtype == torch.float32:
        xl, wl = x.to(lowp), w_ih.to(lowp)
        xw = (torch.addmm(bias.to(lowp), xl, wl.t()) if bias is not None else xl.mm(wl.t())).float()
    else:
        xw = torch.addmm(bias, x, w_ih.t()) if bias is not None else x.mm(w_ih.t())
    if c0 is not None:
        return lstm_scan_cuda(xw, h0, c0, w_hh, mask, batch_sizes, reverse, zoneout, training, w_hr=w_hr)
    out, h = gru_scan_cuda(xw, h0, w_hh, b_hh, mask, batch_sizes, reverse, zoneout, training)
    return out, h, None
