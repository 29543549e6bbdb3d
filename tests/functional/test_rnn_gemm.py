"""The compiled loop's GEMM engine: float32 products split over threads, bf16 products under
autocast, and the input projection on oneDNN, each against a plain torch computation."""

from __future__ import annotations

import pytest
import torch

import regdrop
from regdrop.functional import rnn as F_rnn
from regdrop.functional.rnn import extension_available, gru_scan, input_projection, lstm_scan

needs_extension = pytest.mark.skipif(not extension_available(), reason="no C++ compiler to build the time loop")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _operands(kind: str, batch_sizes: list[int], hidden: int, dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(0)
    g, n, rows = (4 if kind == "lstm" else 3), batch_sizes[0], sum(batch_sizes)
    xw = torch.randn(rows, g * hidden, generator=gen, dtype=dtype)
    h0 = torch.randn(n, hidden, generator=gen, dtype=dtype)
    c0 = torch.randn(n, hidden, generator=gen, dtype=dtype)
    w = torch.randn(g * hidden, hidden, generator=gen, dtype=dtype) / hidden**0.5
    b = torch.randn(g * hidden, generator=gen, dtype=dtype)
    mask = (torch.rand(n, hidden, generator=gen) > 0.25).to(dtype) / 0.75
    return xw, h0, c0, w, b, mask


def _run(kind, xw, h0, c0, w, b, mask, bs, reverse, compiled=True):
    if kind == "lstm":
        if compiled:
            return lstm_scan(xw, h0, c0, w, mask, bs, reverse)
        return F_rnn._lstm_loop(xw, bs, h0, c0, w, None, mask, 0.0, True, reverse, None)
    if compiled:
        return gru_scan(xw, h0, w, b, mask, bs, reverse)
    return F_rnn._gru_loop(xw, bs, h0, w, b, mask, 0.0, True, reverse, None)


PACKED = [37] * 3 + [30, 30, 19, 19, 4]  # odd row counts: the threads get unequal row blocks


@needs_extension
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("num_threads", [1, 2])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("hidden", [40, 216])
def test_float32_steps_split_over_threads_match_the_reference(kind, num_threads, reverse, hidden, threads):
    # hidden 216: W_hh has more than 2^17 elements, which runs BLAS instead of the micro-kernel
    # on a processor without AVX-512 (csrc/scan.cpp, step_gemm_on_blas)
    threads(num_threads)
    xw, h0, c0, w, b, mask = _operands(kind, PACKED, hidden=hidden)
    for t in (xw, h0, c0, w, b):
        t.requires_grad_()
    got = _run(kind, xw, h0, c0, w, b, mask, PACKED, reverse)
    ref = _run(kind, xw, h0, c0, w, b, mask, PACKED, reverse, compiled=False)
    assert "Scan" in type(got[0].grad_fn).__name__
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=2e-5)
    loss = lambda outs: sum(o.square().sum() * (i + 1) for i, o in enumerate(outs))  # noqa: E731
    used = (xw, h0, c0, w) if kind == "lstm" else (xw, h0, w, b)
    for g, r in zip(torch.autograd.grad(loss(got), used), torch.autograd.grad(loss(ref), used)):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


@needs_extension
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("hidden", [24, 5])  # 5: the packed bf16 weight pads K to even
def test_bf16_weights_run_bf16_products_with_float32_state(kind, hidden):
    bs = [9, 9, 7, 7, 3]
    xw, h0, c0, w, b, mask = _operands(kind, bs, hidden=hidden)
    w16 = w.bfloat16().requires_grad_()
    args = [t.requires_grad_() for t in ((xw, h0, c0) if kind == "lstm" else (xw, h0))]
    got = _run(kind, xw, h0, c0, w16, b, mask, bs, False)
    assert all(o.dtype == torch.float32 for o in got)
    # the gate activations are kept for backward in bfloat16 (computed in float32)
    saved = {(t.dtype, tuple(t.shape)) for t in got[0].grad_fn.saved_tensors if t is not None}
    assert (torch.bfloat16, tuple(xw.shape)) in saved and (torch.float32, tuple(xw.shape)) not in saved
    # The same loop in float32 with the weight rounded to bf16: only h's rounding to bf16 at
    # each step's product differs.
    rounded = _run(kind, xw, h0, c0, w16.detach().float().requires_grad_(), b, mask, bs, False)
    exact = _run(kind, xw, h0, c0, w, b, mask, bs, False)
    for g, r, e in zip(got, rounded, exact):
        torch.testing.assert_close(g, r, rtol=2e-2, atol=2e-2)
        assert not torch.equal(g, e)  # the premise: bf16 products ran, not float32 ones
    loss = lambda outs: sum(o.square().sum() for o in outs)  # noqa: E731
    grads = torch.autograd.grad(loss(got), [*args, w16])
    ref = torch.autograd.grad(loss(rounded), args)
    assert grads[-1].dtype == torch.bfloat16
    for g, r in zip(grads, ref):
        torch.testing.assert_close(g, r, rtol=3e-2, atol=3e-2)


@needs_extension
def test_bf16_weight_with_float64_data_is_refused_by_the_op():
    xw, h0, c0, w, _, _ = _operands("lstm", [2, 2], hidden=3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"w_hh must have dtype Double, got BFloat16"):
        torch.ops.regdrop_scan.lstm_forward(xw, h0, c0, w.bfloat16(), xw.new_empty(0), [2, 2], False)
    with pytest.raises(TypeError, match=r"lstm_scan: w_hh must have the dtype of the input, torch.float64"):
        lstm_scan(xw, h0, c0, w.bfloat16(), None, [2, 2])


@needs_extension
def test_step_gemm_engine_names_the_engine():
    engine = torch.ops.regdrop_scan.step_gemm_engine()
    assert "float32" in engine and "bfloat16" in engine
    assert "brgemm" in engine or "cpublas::gemm" in engine


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_layer_under_cpu_bf16_autocast_runs_bf16_gemms_and_keeps_float32(kind, monkeypatch):
    seen = []
    scan_name = "lstm_scan" if kind == "LSTM" else "gru_scan"
    scan = getattr(F_rnn, scan_name)

    def spy(xw, h0, *rest, **kwargs):
        w_hh = rest[1] if kind == "LSTM" else rest[0]
        seen.append((xw.dtype, h0.dtype, w_hh.dtype))
        return scan(xw, h0, *rest, **kwargs)

    monkeypatch.setattr(F_rnn, scan_name, spy)
    monkeypatch.setitem(F_rnn._EXT_STATE, "bf16", True)  # bf16 products even where they are slow
    torch.manual_seed(0)
    layer = getattr(regdrop.nn, kind)(6, 16, batch_first=True, recurrent_dropout=0.25)
    x = torch.randn(5, 7, 6)
    torch.manual_seed(1)
    ref, _ = layer(x)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(x)
    # the LSTM's input projection stays bfloat16 (the loop widens it and adds the bias in float32)
    xw_dtype = torch.bfloat16 if kind == "LSTM" else torch.float32
    assert seen[-1] == (xw_dtype, torch.float32, torch.bfloat16)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=3e-2, atol=3e-2)
    expected = torch.autograd.grad(ref.square().sum(), list(layer.parameters()))
    out.square().sum().backward()
    for (name, p), e in zip(layer.named_parameters(), expected, strict=True):
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        torch.testing.assert_close(p.grad, e, rtol=5e-2, atol=5e-2 * e.abs().max().item(), msg=name)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_without_native_bf16_gemms_autocast_computes_in_float32(kind, monkeypatch):
    # Where torch's bfloat16 matmul is a slow generic loop (an AVX2-only CPU), the regularized
    # path under bf16 autocast runs its products in float32: the numbers of autocast off.
    monkeypatch.setitem(F_rnn._EXT_STATE, "bf16", False)
    torch.manual_seed(0)
    layer = getattr(regdrop.nn, kind)(6, 16, num_layers=2, batch_first=True, recurrent_dropout=0.25)
    x = torch.randn(5, 7, 6)
    torch.manual_seed(1)
    ref, _ = layer(x)
    ref.square().sum().backward()
    expected = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(x)
    assert out.dtype == torch.float32
    assert torch.equal(out, ref)
    out.square().sum().backward()
    assert all(torch.equal(p.grad, e) for p, e in zip(layer.parameters(), expected, strict=True))


def test_input_projection_matches_addmm_forward_and_backward():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 7, generator=gen, requires_grad=True)
    w = torch.randn(12, 7, generator=gen, requires_grad=True)
    b = torch.randn(12, generator=gen, requires_grad=True)
    out = input_projection(x, w, b)
    ref = torch.addmm(b, x, w.t())
    torch.testing.assert_close(out, ref)
    dout = torch.randn_like(ref)
    got = torch.autograd.grad(out, (x, w, b), dout)
    want = torch.autograd.grad(ref, (x, w, b), dout)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r)
    if F_rnn._onednn_linear_available():
        assert "OneDNNLinear" in type(out.grad_fn).__name__
    no_bias = input_projection(x, w)
    torch.testing.assert_close(no_bias, x @ w.t())
    half = input_projection(x, w, b, torch.bfloat16)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, ref, rtol=3e-2, atol=5e-2)


def test_input_projection_in_float64_is_exact_and_gradchecks():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.equal(input_projection(x, w, b), torch.addmm(b, x, w.t()))
    assert torch.autograd.gradcheck(input_projection, (x, w, b))


def _assert_rounded_as_torch_does(got: torch.Tensor, source: torch.Tensor) -> None:
    """``got`` (bfloat16) has the bits of torch's rounding of ``source``; any NaN is a NaN
    (torch itself gives NaN different bits on its scalar and vector paths)."""
    nan = source.isnan()
    assert torch.equal(got.isnan(), nan)
    bits = got.contiguous().view(torch.int16)
    assert torch.equal(bits[~nan], source.bfloat16().view(torch.int16)[~nan])


@needs_extension
def test_bf16_loop_rounds_the_state_as_torch_does():
    # h_prev (the masked h(t-1), kept in bfloat16 for the step products and dW_hh) holds h0 at
    # the first step: its bits must be torch's own float32 -> bfloat16 rounding, ties to even,
    # the largest finite values, subnormals, signed zeros, infinities and NaN included.
    special = torch.tensor(
        [1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 3.3961e38, -3.3961e38, 1e-40, -1e-40, 0.0, -0.0,
         float("inf"), -float("inf"), float("nan"), 1.0 + 2**-7 + 2**-9, 0.1, -2.5e-3, 3.4e38]
    )  # fmt: skip
    n, hidden = 2, special.numel()
    h0 = torch.stack([special, torch.randn(hidden)])
    c0 = torch.zeros(n, hidden)
    w16 = torch.randn(4 * hidden, hidden).bfloat16()
    xw = torch.randn(2 * n, 4 * hidden)
    out = torch.ops.regdrop_scan.lstm_forward(xw, h0, c0, w16, xw.new_empty(0), [n, n], False)
    h_prev = out[6]
    assert h_prev.dtype == torch.bfloat16
    _assert_rounded_as_torch_does(h_prev[:n], h0)
    # the second step's rows are the first step's output, rounded the same way (the NaN spreads)
    _assert_rounded_as_torch_does(h_prev[n:], out[0][:n])


@needs_extension
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("hidden", [24, 5])
def test_bf16_xw_with_the_bias_in_the_loop_matches_it_added_before(reverse, hidden):
    # The LSTM under CPU autocast: a bfloat16 xw widened row by row, the bias added in float32
    # inside the loop and its gradient summed there, against the same numbers given as a float32
    # xw with the bias already added. Hidden size 5: the packed bf16 weight pads K to even.
    bs = [9, 9, 7, 7, 3]
    xw, h0, c0, w, b, mask = _operands("lstm", bs, hidden=hidden)
    xw16, w16 = xw.bfloat16(), w.bfloat16()
    leaves = [t.clone().requires_grad_() for t in (xw16, h0, c0, w16, b)]
    got = lstm_scan(leaves[0], *leaves[1:4], mask, bs, reverse, bias=leaves[4])
    ref_leaves = [t.clone().requires_grad_() for t in (xw16.float(), h0, c0, w16, b)]
    ref = lstm_scan(ref_leaves[0] + ref_leaves[4], *ref_leaves[1:4], mask, bs, reverse)
    for g, r in zip(got, ref, strict=True):
        assert torch.equal(g, r)
    loss = lambda outs: sum(o.square().sum() * (i + 1) for i, o in enumerate(outs))  # noqa: E731
    grads = torch.autograd.grad(loss(got), leaves)
    ref_grads = torch.autograd.grad(loss(ref), ref_leaves)
    assert grads[0].dtype == torch.bfloat16 and grads[3].dtype == torch.bfloat16
    for name, g, r in zip(("xw", "h0", "c0", "w_hh"), grads[:4], ref_grads[:4]):
        assert torch.equal(g.float(), r.float()), name
    # the bias gradient: summed in float32 before dgates is rounded to bfloat16 (the reference
    # sums the rounded rows), so close, not equal; and against float32 throughout
    torch.testing.assert_close(grads[4], ref_grads[4], rtol=1e-2, atol=1e-2)
    f32 = [t.clone().requires_grad_() for t in (xw16.float(), h0, c0, w16.float(), b)]
    full = lstm_scan(f32[0], *f32[1:4], mask, bs, reverse, bias=f32[4])
    torch.testing.assert_close(grads[4], torch.autograd.grad(loss(full), f32[4])[0], rtol=3e-2, atol=3e-2)


@needs_extension
def test_lstm_scan_bias_in_float32_and_float64_matches_the_reference_loop():
    bs = [5, 5, 4, 2]
    for dtype in (torch.float32, torch.float64):
        xw, h0, c0, w, b, mask = _operands("lstm", bs, hidden=8, dtype=dtype)
        got = lstm_scan(xw, h0, c0, w, mask, bs, bias=b)
        ref = F_rnn._lstm_loop(xw + b, bs, h0, c0, w, None, mask, 0.0, True, False, None)
        for g, r in zip(got, ref, strict=True):
            torch.testing.assert_close(g, r)
    xw, h0, c0, w, b, mask = _operands("lstm", bs, hidden=3, dtype=torch.float64)
    b.requires_grad_()
    assert torch.autograd.gradcheck(lambda bias: lstm_scan(xw, h0, c0, w, mask, bs, bias=bias)[0], (b,))


@needs_extension
def test_gru_scan_takes_a_bf16_xw_as_its_float32_values():
    # A bfloat16 xw with a bfloat16 w_hh passes lstm_scan's and gru_scan's shared checks; the GRU's
    # loop reads float32 rows, so it widens xw first: the same numbers as given float32.
    bs = [4, 4, 3]
    xw, h0, _, w, b, mask = _operands("gru", bs, hidden=6)
    xw16, w16 = xw.bfloat16(), w.bfloat16()
    got = gru_scan(xw16, h0, w16, b, mask, bs)
    ref = gru_scan(xw16.float(), h0, w16, b, mask, bs)
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == torch.float32 and torch.equal(g, r)


def test_bf16_operands_are_refused_in_the_wrong_combinations():
    xw, h0, c0, w, b, _ = _operands("lstm", [2, 2], hidden=3)
    with pytest.raises(TypeError, match=r"lstm_scan: h0 must have the dtype of the input, torch.bfloat16"):
        lstm_scan(xw.bfloat16(), h0, c0, w, None, [2, 2])  # bfloat16 xw needs a bfloat16 w_hh
    with pytest.raises(TypeError, match=r"lstm_scan: bias must have the dtype of the input, torch.float32"):
        lstm_scan(xw.bfloat16(), h0, c0, w.bfloat16(), None, [2, 2], bias=b.double())
    with pytest.raises(ValueError, match=r"lstm_scan: bias must have shape \(12,\), got \(3,\)"):
        lstm_scan(xw, h0, c0, w, None, [2, 2], bias=b[:3])
    with pytest.raises(ValueError, match=r"out_dtype torch.bfloat16 needs gemm_dtype torch.bfloat16 and no bias"):
        input_projection(xw, w.t(), b, torch.bfloat16, out_dtype=torch.bfloat16)


def test_input_projection_in_bf16_keeps_bf16_and_its_gradients_match_autograds():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 7, generator=gen, requires_grad=True)
    w = torch.randn(12, 7, generator=gen, requires_grad=True)
    out = input_projection(x, w, None, torch.bfloat16, out_dtype=torch.bfloat16)
    ref = x.bfloat16().mm(w.bfloat16().t())
    assert out.dtype == torch.bfloat16 and torch.equal(out, ref)
    dout = torch.randn(out.shape, generator=gen).bfloat16()
    got = torch.autograd.grad(out, (x, w), dout)
    want = torch.autograd.grad(ref, (x, w), dout)
    for g, r in zip(got, want, strict=True):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, r, rtol=1e-2, atol=1e-2)


@needs_extension
@pytest.mark.parametrize("num_threads", [1, 2])
def test_the_bias_gradient_summed_in_the_loop_is_right_and_the_same_every_run(num_threads, threads):
    # Partial sums per fixed block of rows (not per thread): two threads split the rows, and two
    # runs give the same bits.
    threads(num_threads)
    bs = [300] * 4
    xw, h0, c0, w, b, mask = _operands("lstm", bs, hidden=16)
    grads = []
    for _ in range(2):
        bias = b.clone().requires_grad_()
        out = lstm_scan(xw, h0, c0, w, mask, bs, bias=bias)
        grads.append(torch.autograd.grad(out[0].square().sum(), bias)[0])
    assert torch.equal(grads[0], grads[1])
    ref_xw = (xw + b).requires_grad_()  # the bias added before: its gradient is the column sums
    ref = lstm_scan(ref_xw, h0, c0, w, mask, bs)
    torch.testing.assert_close(grads[0], torch.autograd.grad(ref[0].square().sum(), ref_xw)[0].sum(0))
