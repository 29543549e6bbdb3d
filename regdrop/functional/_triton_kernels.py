"""The fused element-wise step kernels of the CUDA time loop, written in Triton.

Each kernel does one time step's element-wise work for ``rows`` samples of ``H`` units:
one program per ``BLOCK`` elements of the ``(rows, H)`` step. Buffers are contiguous and
passed whole; ``row0`` is the step's first row in the packed, time-major layout (the step's
rows are ``row0 .. row0 + rows - 1``, the samples ``0 .. rows - 1``), and the state buffers
(``h``, ``c``, their gradients) hold one row per sample.

Constant flags (``tl.constexpr``): ``HAS_MASK`` (a per-sample recurrent mask ``m`` on
:math:`h_{t-1}` entering :math:`W_{hh}`), ``ZONE`` (0: no zoneout, 1: per-step 0/1 masks in a
``(R, Z)`` buffer, h's at column 0 and the LSTM's c's at column ``H``; 2: the expectation
with rate ``zone_p``), ``SAVE`` (store what backward needs), ``LOWP`` (also write the GEMM
operand in the low-precision buffer). Arithmetic is float32 whatever the buffers hold. Only Triton's
built-in ops are used (``tl.exp``, not ``tl.sigmoid``), which the interpreter runs whether or
not ``TRITON_INTERPRET`` was set when Triton was first imported.

The functions are plain Python here: :func:`regdrop.functional._triton_rnn` decorates them
with ``triton.jit`` on first use, so that ``TRITON_INTERPRET=1`` set before that use runs
them in Triton's interpreter on CPU tensors (the tests do so).
"""

from __future__ import annotations

import triton.language as tl

__all__ = [
    "gru_backward_step",
    "gru_forward_step",
    "lstm_backward_step",
    "lstm_forward_step",
    "lstmp_cell_backward",
    "lstmp_cell_forward",
    "projection_backward",
    "projection_forward",
]


def lstm_forward_step(  # type: ignore[no-untyped-def]
    xw_ptr,  # (R, 4H) input projection plus both biases
    hw_ptr,  # (N, 4H) this step's hm @ W_hh^T (rows 0 .. rows-1)
    h_ptr,  # (N, H) float32 state h, updated in place
    c_ptr,  # (N, H) float32 state c, updated in place
    hm_ptr,  # (N, H) GEMM operand m * h (GEMM dtype), updated in place
    m_ptr,  # (N, H) recurrent mask
    z_ptr,  # (R, 2H) zoneout keep-masks (h, then c)
    out_ptr,  # (R, H) output rows
    acts_ptr,  # (R, 4H) saved: sigmoid/tanh of the gates
    tc_ptr,  # (R, H) saved: tanh of the new cell before zoneout
    cprev_ptr,  # (R, H) saved: c(t-1)
    hmprev_ptr,  # (R, H) saved: the step's GEMM operand m * h(t-1) (GEMM dtype)
    row0,
    rows,
    H,
    zone_p,
    HAS_MASK: tl.constexpr,
    ZONE: tl.constexpr,
    SAVE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = e < rows * H
    r = e // H
    j = e % H
    g4 = (row0 + r) * (4 * H) + j
    s4 = r * (4 * H) + j
    pi = tl.load(xw_ptr + g4, mask=live, other=0.0).to(tl.float32) + tl.load(hw_ptr + s4, mask=live, other=0.0).to(
        tl.float32
    )
    pf = tl.load(xw_ptr + g4 + H, mask=live, other=0.0).to(tl.float32) + tl.load(
        hw_ptr + s4 + H, mask=live, other=0.0
    ).to(tl.float32)
    pg = tl.load(xw_ptr + g4 + 2 * H, mask=live, other=0.0).to(tl.float32) + tl.load(
        hw_ptr + s4 + 2 * H, mask=live, other=0.0
    ).to(tl.float32)
    po = tl.load(xw_ptr + g4 + 3 * H, mask=live, other=0.0).to(tl.float32) + tl.load(
        hw_ptr + s4 + 3 * H, mask=live, other=0.0
    ).to(tl.float32)
    i = 1.0 / (1.0 + tl.exp(-pi))
    f = 1.0 / (1.0 + tl.exp(-pf))
    g = 2.0 / (1.0 + tl.exp(-2.0 * pg)) - 1.0
    o = 1.0 / (1.0 + tl.exp(-po))
    h_prev = tl.load(h_ptr + e, mask=live, other=0.0)
    c_prev = tl.load(c_ptr + e, mask=live, other=0.0)
    c_new = f * c_prev + i * g
    tc = 2.0 / (1.0 + tl.exp(-2.0 * c_new)) - 1.0
    h_new = o * tc
    if ZONE == 1:
        zr = (row0 + r) * (2 * H) + j
        zh = tl.load(z_ptr + zr, mask=live, other=0.0).to(tl.float32)
        zc = tl.load(z_ptr + zr + H, mask=live, other=0.0).to(tl.float32)
        h_new = h_new + zh * (h_prev - h_new)
        c_new = c_new + zc * (c_prev - c_new)
    if ZONE == 2:
        h_new = h_new + zone_p * (h_prev - h_new)
        c_new = c_new + zone_p * (c_prev - c_new)
    if SAVE:
        a = (row0 + r) * (4 * H) + j
        tl.store(acts_ptr + a, i, mask=live)
        tl.store(acts_ptr + a + H, f, mask=live)
        tl.store(acts_ptr + a + 2 * H, g, mask=live)
        tl.store(acts_ptr + a + 3 * H, o, mask=live)
        tl.store(tc_ptr + (row0 + r) * H + j, tc, mask=live)
        tl.store(cprev_ptr + (row0 + r) * H + j, c_prev, mask=live)
        tl.store(hmprev_ptr + (row0 + r) * H + j, tl.load(hm_ptr + e, mask=live, other=0.0), mask=live)
    tl.store(out_ptr + (row0 + r) * H + j, h_new, mask=live)
    tl.store(h_ptr + e, h_new, mask=live)
    tl.store(c_ptr + e, c_new, mask=live)
    hm = h_new
    if HAS_MASK:
        hm = hm * tl.load(m_ptr + e, mask=live, other=0.0).to(tl.float32)
    tl.store(hm_ptr + e, hm.to(hm_ptr.dtype.element_ty), mask=live)


def lstm_backward_step(  # type: ignore[no-untyped-def]
    dout_ptr,  # (R, H) gradient of the output rows
    dh_ptr,  # (N, H) float32 gradient of the state h, updated in place
    dc_ptr,  # (N, H) float32 gradient of the state c, updated in place
    dhm_ptr,  # (N, H) the later step's dgates @ W_hh (rows 0 .. prev_rows-1), GEMM dtype
    m_ptr,  # (N, H) recurrent mask
    z_ptr,  # (R, 2H) zoneout keep-masks
    acts_ptr,  # (R, 4H)
    tc_ptr,  # (R, H)
    cprev_ptr,  # (R, H)
    dg_ptr,  # (R, 4H) float32 gradient of the gate pre-activations (written)
    dglp_ptr,  # (R, 4H) the same in the GEMM dtype (written when LOWP)
    row0,
    rows,
    prev_rows,
    H,
    zone_p,
    HAS_MASK: tl.constexpr,
    ZONE: tl.constexpr,
    LOWP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    span = tl.maximum(rows, prev_rows) * H
    live = e < span
    r = e // H
    j = e % H
    # First finish the later step's recurrent gradient: dh(t) += m * (dgates(t+1) @ W_hh).
    from_gemm = e < prev_rows * H
    dhm = tl.load(dhm_ptr + e, mask=from_gemm, other=0.0).to(tl.float32)
    if HAS_MASK:
        dhm = dhm * tl.load(m_ptr + e, mask=from_gemm, other=0.0).to(tl.float32)
    dh = tl.load(dh_ptr + e, mask=live, other=0.0) + dhm
    act = e < rows * H
    row = (row0 + r) * H + j
    dh_t = dh + tl.load(dout_ptr + row, mask=act, other=0.0).to(tl.float32)
    dc_t = tl.load(dc_ptr + e, mask=act, other=0.0)
    a = (row0 + r) * (4 * H) + j
    i = tl.load(acts_ptr + a, mask=act, other=0.0)
    f = tl.load(acts_ptr + a + H, mask=act, other=0.0)
    g = tl.load(acts_ptr + a + 2 * H, mask=act, other=0.0)
    o = tl.load(acts_ptr + a + 3 * H, mask=act, other=0.0)
    tc = tl.load(tc_ptr + row, mask=act, other=0.0)
    c_prev = tl.load(cprev_ptr + row, mask=act, other=0.0)
    dh_carry = 0.0
    dc_carry = 0.0
    if ZONE == 1:
        zr = (row0 + r) * (2 * H) + j
        zh = tl.load(z_ptr + zr, mask=act, other=0.0).to(tl.float32)
        zc = tl.load(z_ptr + zr + H, mask=act, other=0.0).to(tl.float32)
        dh_carry = zh * dh_t
        dc_carry = zc * dc_t
        dh_t = dh_t - dh_carry
        dc_t = dc_t - dc_carry
    if ZONE == 2:
        dh_carry = zone_p * dh_t
        dc_carry = zone_p * dc_t
        dh_t = dh_t - dh_carry
        dc_t = dc_t - dc_carry
    dc = dc_t + dh_t * o * (1.0 - tc * tc)
    di = dc * g * i * (1.0 - i)
    df = dc * c_prev * f * (1.0 - f)
    dg = dc * i * (1.0 - g * g)
    do = dh_t * tc * o * (1.0 - o)
    tl.store(dg_ptr + a, di, mask=act)
    tl.store(dg_ptr + a + H, df, mask=act)
    tl.store(dg_ptr + a + 2 * H, dg, mask=act)
    tl.store(dg_ptr + a + 3 * H, do, mask=act)
    if LOWP:
        ty = dglp_ptr.dtype.element_ty
        tl.store(dglp_ptr + a, di.to(ty), mask=act)
        tl.store(dglp_ptr + a + H, df.to(ty), mask=act)
        tl.store(dglp_ptr + a + 2 * H, dg.to(ty), mask=act)
        tl.store(dglp_ptr + a + 3 * H, do.to(ty), mask=act)
    # Rows past this step's batch (a reverse pass's initial state) keep dh as finished above.
    tl.store(dh_ptr + e, tl.where(act, dh_carry, dh), mask=live)
    tl.store(dc_ptr + e, dc_carry + dc * f, mask=act)


def gru_forward_step(  # type: ignore[no-untyped-def]
    xw_ptr,  # (R, 3H) input projection plus b_ih
    hw_ptr,  # (N, 3H) this step's hm @ W_hh^T (no bias)
    bhh_ptr,  # (3H,) b_hh
    h_ptr,  # (N, H) float32 state, updated in place
    hm_ptr,  # (N, H) GEMM operand m * h (GEMM dtype), updated in place
    m_ptr,  # (N, H) recurrent mask
    z_ptr,  # (R, H) zoneout keep-masks
    out_ptr,  # (R, H)
    acts_ptr,  # (R, 3H) saved: r, z, n
    hn_ptr,  # (R, H) saved: W_hn (m * h) + b_hn
    hprev_ptr,  # (R, H) saved: h(t-1)
    hmprev_ptr,  # (R, H) saved: m * h(t-1) (GEMM dtype)
    row0,
    rows,
    H,
    zone_p,
    HAS_BIAS: tl.constexpr,
    HAS_MASK: tl.constexpr,
    ZONE: tl.constexpr,
    SAVE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = e < rows * H
    r = e // H
    j = e % H
    g3 = (row0 + r) * (3 * H) + j
    s3 = r * (3 * H) + j
    hr = tl.load(hw_ptr + s3, mask=live, other=0.0).to(tl.float32)
    hz = tl.load(hw_ptr + s3 + H, mask=live, other=0.0).to(tl.float32)
    hn = tl.load(hw_ptr + s3 + 2 * H, mask=live, other=0.0).to(tl.float32)
    if HAS_BIAS:
        hr += tl.load(bhh_ptr + j, mask=live, other=0.0).to(tl.float32)
        hz += tl.load(bhh_ptr + j + H, mask=live, other=0.0).to(tl.float32)
        hn += tl.load(bhh_ptr + j + 2 * H, mask=live, other=0.0).to(tl.float32)
    rg = 1.0 / (1.0 + tl.exp(-(tl.load(xw_ptr + g3, mask=live, other=0.0).to(tl.float32) + hr)))
    zg = 1.0 / (1.0 + tl.exp(-(tl.load(xw_ptr + g3 + H, mask=live, other=0.0).to(tl.float32) + hz)))
    xn = tl.load(xw_ptr + g3 + 2 * H, mask=live, other=0.0).to(tl.float32)
    n = 2.0 / (1.0 + tl.exp(-2.0 * (xn + rg * hn))) - 1.0
    h_prev = tl.load(h_ptr + e, mask=live, other=0.0)
    h_new = n + zg * (h_prev - n)
    if ZONE == 1:
        zh = tl.load(z_ptr + (row0 + r) * H + j, mask=live, other=0.0).to(tl.float32)
        h_new = h_new + zh * (h_prev - h_new)
    if ZONE == 2:
        h_new = h_new + zone_p * (h_prev - h_new)
    row = (row0 + r) * H + j
    if SAVE:
        tl.store(acts_ptr + g3, rg, mask=live)
        tl.store(acts_ptr + g3 + H, zg, mask=live)
        tl.store(acts_ptr + g3 + 2 * H, n, mask=live)
        tl.store(hn_ptr + row, hn, mask=live)
        tl.store(hprev_ptr + row, h_prev, mask=live)
        tl.store(hmprev_ptr + row, tl.load(hm_ptr + e, mask=live, other=0.0), mask=live)
    tl.store(out_ptr + row, h_new, mask=live)
    tl.store(h_ptr + e, h_new, mask=live)
    hm = h_new
    if HAS_MASK:
        hm = hm * tl.load(m_ptr + e, mask=live, other=0.0).to(tl.float32)
    tl.store(hm_ptr + e, hm.to(hm_ptr.dtype.element_ty), mask=live)


def gru_backward_step(  # type: ignore[no-untyped-def]
    dout_ptr,  # (R, H)
    dh_ptr,  # (N, H) float32 gradient of the state, updated in place
    dhm_ptr,  # (N, H) the later step's dhw @ W_hh (GEMM dtype)
    m_ptr,  # (N, H)
    z_ptr,  # (R, H)
    acts_ptr,  # (R, 3H) r, z, n
    hn_ptr,  # (R, H)
    hprev_ptr,  # (R, H)
    dxw_ptr,  # (R, 3H) float32 gradient of the input projection (written)
    dhw_ptr,  # (R, 3H) gradient of hm @ W_hh^T + b_hh, GEMM dtype (written)
    row0,
    rows,
    prev_rows,
    H,
    zone_p,
    HAS_MASK: tl.constexpr,
    ZONE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = e < tl.maximum(rows, prev_rows) * H
    r = e // H
    j = e % H
    from_gemm = e < prev_rows * H
    dhm = tl.load(dhm_ptr + e, mask=from_gemm, other=0.0).to(tl.float32)
    if HAS_MASK:
        dhm = dhm * tl.load(m_ptr + e, mask=from_gemm, other=0.0).to(tl.float32)
    dh = tl.load(dh_ptr + e, mask=live, other=0.0) + dhm
    act = e < rows * H
    row = (row0 + r) * H + j
    dh_t = dh + tl.load(dout_ptr + row, mask=act, other=0.0).to(tl.float32)
    g3 = (row0 + r) * (3 * H) + j
    rg = tl.load(acts_ptr + g3, mask=act, other=0.0)
    zg = tl.load(acts_ptr + g3 + H, mask=act, other=0.0)
    n = tl.load(acts_ptr + g3 + 2 * H, mask=act, other=0.0)
    hn = tl.load(hn_ptr + row, mask=act, other=0.0)
    h_prev = tl.load(hprev_ptr + row, mask=act, other=0.0)
    carry = 0.0
    if ZONE == 1:
        carry = tl.load(z_ptr + row, mask=act, other=0.0).to(tl.float32) * dh_t
        dh_t = dh_t - carry
    if ZONE == 2:
        carry = zone_p * dh_t
        dh_t = dh_t - carry
    carry = carry + zg * dh_t
    dpn = dh_t * (1.0 - zg) * (1.0 - n * n)
    dpz = dh_t * (h_prev - n) * zg * (1.0 - zg)
    dpr = dpn * hn * rg * (1.0 - rg)
    tl.store(dxw_ptr + g3, dpr, mask=act)
    tl.store(dxw_ptr + g3 + H, dpz, mask=act)
    tl.store(dxw_ptr + g3 + 2 * H, dpn, mask=act)
    ty = dhw_ptr.dtype.element_ty
    tl.store(dhw_ptr + g3, dpr.to(ty), mask=act)
    tl.store(dhw_ptr + g3 + H, dpz.to(ty), mask=act)
    tl.store(dhw_ptr + g3 + 2 * H, (dpn * rg).to(ty), mask=act)
    tl.store(dh_ptr + e, tl.where(act, carry, dh), mask=live)


# ----------------------------------------------------------------- LSTM with a projection
# With proj_size P a step is two GEMMs and two kernels: the cell kernel (gates, c and its
# zoneout, u = o * tanh(c)), the GEMM u W_hr^T, then the projection kernel (zoneout on the
# projected h, the next GEMM operand m * h). Zoneout masks: one (R, P + H) buffer, h's first.


def lstmp_cell_forward(  # type: ignore[no-untyped-def]
    xw_ptr,  # (R, 4H)
    hw_ptr,  # (N, 4H) this step's hm @ W_hh^T
    c_ptr,  # (N, H) float32 state c, updated in place
    z_ptr,  # (R, ZW) zoneout keep-masks; c's from column P
    u_ptr,  # (R, H) o * tanh(c~), the projection GEMM's operand (GEMM dtype)
    acts_ptr,  # (R, 4H) saved
    tc_ptr,  # (R, H) saved
    cprev_ptr,  # (R, H) saved
    row0,
    rows,
    H,
    P,
    ZW,
    zone_p,
    ZONE: tl.constexpr,
    SAVE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = e < rows * H
    r = e // H
    j = e % H
    g4 = (row0 + r) * (4 * H) + j
    s4 = r * (4 * H) + j
    pi = tl.load(xw_ptr + g4, mask=live, other=0.0).to(tl.float32)
    pf = tl.load(xw_ptr + g4 + H, mask=live, other=0.0).to(tl.float32)
    pg = tl.load(xw_ptr + g4 + 2 * H, mask=live, other=0.0).to(tl.float32)
    po = tl.load(xw_ptr + g4 + 3 * H, mask=live, other=0.0).to(tl.float32)
    pi += tl.load(hw_ptr + s4, mask=live, other=0.0).to(tl.float32)
    pf += tl.load(hw_ptr + s4 + H, mask=live, other=0.0).to(tl.float32)
    pg += tl.load(hw_ptr + s4 + 2 * H, mask=live, other=0.0).to(tl.float32)
    po += tl.load(hw_ptr + s4 + 3 * H, mask=live, other=0.0).to(tl.float32)
    i = 1.0 / (1.0 + tl.exp(-pi))
    f = 1.0 / (1.0 + tl.exp(-pf))
    g = 2.0 / (1.0 + tl.exp(-2.0 * pg)) - 1.0
    o = 1.0 / (1.0 + tl.exp(-po))
    c_prev = tl.load(c_ptr + e, mask=live, other=0.0)
    c_new = f * c_prev + i * g
    tc = 2.0 / (1.0 + tl.exp(-2.0 * c_new)) - 1.0
    row = (row0 + r) * H + j
    tl.store(u_ptr + row, (o * tc).to(u_ptr.dtype.element_ty), mask=live)
    if ZONE == 1:
        zc = tl.load(z_ptr + (row0 + r) * ZW + P + j, mask=live, other=0.0).to(tl.float32)
        c_new = c_new + zc * (c_prev - c_new)
    if ZONE == 2:
        c_new = c_new + zone_p * (c_prev - c_new)
    if SAVE:
        tl.store(acts_ptr + g4, i, mask=live)
        tl.store(acts_ptr + g4 + H, f, mask=live)
        tl.store(acts_ptr + g4 + 2 * H, g, mask=live)
        tl.store(acts_ptr + g4 + 3 * H, o, mask=live)
        tl.store(tc_ptr + row, tc, mask=live)
        tl.store(cprev_ptr + row, c_prev, mask=live)
    tl.store(c_ptr + e, c_new, mask=live)


def projection_forward(  # type: ignore[no-untyped-def]
    hp_ptr,  # (N, P) this step's u @ W_hr^T (GEMM dtype)
    h_ptr,  # (N, P) float32 state h, updated in place
    hm_ptr,  # (N, P) GEMM operand m * h, updated in place
    m_ptr,  # (N, P) recurrent mask
    z_ptr,  # (R, ZW) zoneout keep-masks; h's in the first P columns
    out_ptr,  # (R, P) output rows
    hmprev_ptr,  # (R, P) saved: this step's GEMM operand m * h(t-1)
    row0,
    rows,
    P,
    ZW,
    zone_p,
    HAS_MASK: tl.constexpr,
    ZONE: tl.constexpr,
    SAVE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = e < rows * P
    r = e // P
    j = e % P
    h_new = tl.load(hp_ptr + e, mask=live, other=0.0).to(tl.float32)
    h_prev = tl.load(h_ptr + e, mask=live, other=0.0)
    if ZONE == 1:
        zh = tl.load(z_ptr + (row0 + r) * ZW + j, mask=live, other=0.0).to(tl.float32)
        h_new = h_new + zh * (h_prev - h_new)
    if ZONE == 2:
        h_new = h_new + zone_p * (h_prev - h_new)
    if SAVE:
        tl.store(hmprev_ptr + (row0 + r) * P + j, tl.load(hm_ptr + e, mask=live, other=0.0), mask=live)
    tl.store(out_ptr + (row0 + r) * P + j, h_new, mask=live)
    tl.store(h_ptr + e, h_new, mask=live)
    hm = h_new
    if HAS_MASK:
        hm = hm * tl.load(m_ptr + e, mask=live, other=0.0).to(tl.float32)
    tl.store(hm_ptr + e, hm.to(hm_ptr.dtype.element_ty), mask=live)


def projection_backward(  # type: ignore[no-untyped-def]
    dout_ptr,  # (R, P)
    dh_ptr,  # (N, P) float32 gradient of the state h, updated in place
    dhm_ptr,  # (N, P) the later step's dgates @ W_hh (rows 0 .. prev_rows-1), GEMM dtype
    m_ptr,  # (N, P)
    z_ptr,  # (R, ZW)
    dhp_ptr,  # (R, P) gradient of u @ W_hr^T (GEMM dtype, written)
    row0,
    rows,
    prev_rows,
    P,
    ZW,
    zone_p,
    HAS_MASK: tl.constexpr,
    ZONE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = e < tl.maximum(rows, prev_rows) * P
    r = e // P
    j = e % P
    from_gemm = e < prev_rows * P
    dhm = tl.load(dhm_ptr + e, mask=from_gemm, other=0.0).to(tl.float32)
    if HAS_MASK:
        dhm = dhm * tl.load(m_ptr + e, mask=from_gemm, other=0.0).to(tl.float32)
    dh = tl.load(dh_ptr + e, mask=live, other=0.0) + dhm
    act = e < rows * P
    dh_t = dh + tl.load(dout_ptr + (row0 + r) * P + j, mask=act, other=0.0).to(tl.float32)
    carry = 0.0
    if ZONE == 1:
        carry = tl.load(z_ptr + (row0 + r) * ZW + j, mask=act, other=0.0).to(tl.float32) * dh_t
        dh_t = dh_t - carry
    if ZONE == 2:
        carry = zone_p * dh_t
        dh_t = dh_t - carry
    tl.store(dhp_ptr + (row0 + r) * P + j, dh_t.to(dhp_ptr.dtype.element_ty), mask=act)
    tl.store(dh_ptr + e, tl.where(act, carry, dh), mask=live)


def lstmp_cell_backward(  # type: ignore[no-untyped-def]
    du_ptr,  # (N, H) gradient of u = o * tanh(c~): dhp @ W_hr (GEMM dtype)
    dc_ptr,  # (N, H) float32 gradient of the state c, updated in place
    z_ptr,  # (R, ZW)
    acts_ptr,  # (R, 4H)
    tc_ptr,  # (R, H)
    cprev_ptr,  # (R, H)
    dg_ptr,  # (R, 4H) float32 (written)
    dglp_ptr,  # (R, 4H) GEMM dtype (written when LOWP)
    row0,
    rows,
    H,
    P,
    ZW,
    zone_p,
    ZONE: tl.constexpr,
    LOWP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    act = e < rows * H
    r = e // H
    j = e % H
    row = (row0 + r) * H + j
    a = (row0 + r) * (4 * H) + j
    du = tl.load(du_ptr + e, mask=act, other=0.0).to(tl.float32)
    dc_t = tl.load(dc_ptr + e, mask=act, other=0.0)
    i = tl.load(acts_ptr + a, mask=act, other=0.0)
    f = tl.load(acts_ptr + a + H, mask=act, other=0.0)
    g = tl.load(acts_ptr + a + 2 * H, mask=act, other=0.0)
    o = tl.load(acts_ptr + a + 3 * H, mask=act, other=0.0)
    tc = tl.load(tc_ptr + row, mask=act, other=0.0)
    c_prev = tl.load(cprev_ptr + row, mask=act, other=0.0)
    dc_carry = 0.0
    if ZONE == 1:
        dc_carry = tl.load(z_ptr + (row0 + r) * ZW + P + j, mask=act, other=0.0).to(tl.float32) * dc_t
        dc_t = dc_t - dc_carry
    if ZONE == 2:
        dc_carry = zone_p * dc_t
        dc_t = dc_t - dc_carry
    dc = dc_t + du * o * (1.0 - tc * tc)
    di = dc * g * i * (1.0 - i)
    df = dc * c_prev * f * (1.0 - f)
    dg = dc * i * (1.0 - g * g)
    do = du * tc * o * (1.0 - o)
    tl.store(dg_ptr + a, di, mask=act)
    tl.store(dg_ptr + a + H, df, mask=act)
    tl.store(dg_ptr + a + 2 * H, dg, mask=act)
    tl.store(dg_ptr + a + 3 * H, do, mask=act)
    if LOWP:
        ty = dglp_ptr.dtype.element_ty
        tl.store(dglp_ptr + a, di.to(ty), mask=act)
        tl.store(dglp_ptr + a + H, df.to(ty), mask=act)
        tl.store(dglp_ptr + a + 2 * H, dg.to(ty), mask=act)
        tl.store(dglp_ptr + a + 3 * H, do.to(ty), mask=act)
    tl.store(dc_ptr + e, dc_carry + dc * f, mask=act)
