"""The CUDA time loop on a GPU (compiled Triton kernels, cuBLAS): skipped without CUDA.

The same checks as ``test_triton_rnn.py`` runs through Triton's interpreter on CPU, here on
CUDA tensors at a larger size, plus the layers under autocast. ``benchmarks/gpu_check.sh``
runs this file on a GPU machine.
"""

from __future__ import annotations

import pytest
import torch

import regdrop
from regdrop.functional import _triton_rnn as cuda_loop
from regdrop.functional import rnn as F_rnn

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and cuda_loop.cuda_scan_available()), reason="needs a CUDA GPU and Triton"
)

HIDDEN = 48


def _case(kind: str, batch_sizes: list[int], masked: bool):
    gen = torch.Generator(device="cuda").manual_seed(0)
    n, rows, g = batch_sizes[0], sum(batch_sizes), 4 if kind == "lstm" else 3
    opts = dict(device="cuda", generator=gen)
    xw = torch.randn(rows, g * HIDDEN, **opts).requires_grad_()
    h0 = torch.randn(n, HIDDEN, **opts).requires_grad_()
    c0 = torch.randn(n, HIDDEN, **opts).requires_grad_()
    w = (torch.randn(g * HIDDEN, HIDDEN, **opts) * 0.2).requires_grad_()
    b = torch.randn(g * HIDDEN, **opts).requires_grad_()
    mask = (torch.rand(n, HIDDEN, **opts) > 0.3).float() / 0.7 if masked else None
    return xw, h0, c0, w, b, mask


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("batch_sizes", [[16] * 12, [16, 16, 12, 9, 9, 4, 1]])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("zone_p", [0.0, 0.3])
def test_matches_reference_on_cuda(kind, batch_sizes, reverse, zone_p):
    xw, h0, c0, w, b, mask = _case(kind, batch_sizes, True)
    # eval-mode zoneout (its expectation) is deterministic, so the two loops can be compared.
    if kind == "lstm":
        args = (xw, h0, c0, w)
        got = cuda_loop.lstm_scan_cuda(xw, h0, c0, w, mask, batch_sizes, reverse, zone_p, False)
        ref = F_rnn._lstm_loop(xw, batch_sizes, h0, c0, w, None, mask, zone_p, False, reverse, None)
    else:
        args = (xw, h0, w, b)
        got = cuda_loop.gru_scan_cuda(xw, h0, w, b, mask, batch_sizes, reverse, zone_p, False)
        ref = F_rnn._gru_loop(xw, batch_sizes, h0, w, b, mask, zone_p, False, reverse, None)
    for g, r in zip(got, ref, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)
    grads = torch.autograd.grad(sum((o.sin() * (i + 1)).sum() for i, o in enumerate(got)), args)
    ref_grads = torch.autograd.grad(sum((o.sin() * (i + 1)).sum() for i, o in enumerate(ref)), args)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", [regdrop.nn.LSTM, regdrop.nn.GRU])
def test_layer_runs_the_cuda_loop(cls, monkeypatch):
    calls = []
    real = cuda_loop.layer_scan_cuda
    monkeypatch.setattr(cuda_loop, "layer_scan_cuda", lambda *a: calls.append(1) or real(*a))
    layer = cls(8, HIDDEN, num_layers=2, bidirectional=True, batch_first=True, recurrent_dropout=0.25, zoneout=0.1)
    layer = layer.cuda()
    out, _ = layer(torch.randn(4, 20, 8, device="cuda"))
    out.square().mean().backward()
    assert len(calls) == 4
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cls", [regdrop.nn.LSTM, regdrop.nn.GRU])
def test_layer_under_autocast_is_finite_and_close_to_float32(cls, dtype):
    torch.manual_seed(0)
    layer = cls(8, HIDDEN, batch_first=True, zoneout=0.2).cuda().eval()
    x = torch.randn(4, 30, 8, device="cuda")
    ref, _ = layer(x)
    with torch.autocast("cuda", dtype=dtype):
        out, _ = layer(x)
    assert out.dtype == torch.float32  # float32 state and output
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=0, atol=3e-2)


@pytest.mark.parametrize("reverse", [False, True])
def test_projected_lstm_matches_reference_on_cuda(reverse):
    batch_sizes, proj = [16, 16, 12, 9, 9, 4, 1], 20
    gen = torch.Generator(device="cuda").manual_seed(1)
    opts = dict(device="cuda", generator=gen)
    n = batch_sizes[0]
    args = (
        torch.randn(sum(batch_sizes), 4 * HIDDEN, **opts).requires_grad_(),
        torch.randn(n, proj, **opts).requires_grad_(),
        torch.randn(n, HIDDEN, **opts).requires_grad_(),
        (torch.randn(4 * HIDDEN, proj, **opts) * 0.2).requires_grad_(),
        (torch.randn(proj, HIDDEN, **opts) * 0.2).requires_grad_(),
    )
    xw, h0, c0, w, w_hr = args
    mask = (torch.rand(n, proj, **opts) > 0.3).float() / 0.7
    got = cuda_loop.lstm_scan_cuda(xw, h0, c0, w, mask, batch_sizes, reverse, 0.2, False, w_hr=w_hr)
    ref = F_rnn._lstm_loop(xw, batch_sizes, h0, c0, w, w_hr, mask, 0.2, False, reverse, None)
    for g, r in zip(got, ref, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)
    grads = torch.autograd.grad(sum((o.sin() * (i + 1)).sum() for i, o in enumerate(got)), args)
    ref_grads = torch.autograd.grad(sum((o.sin() * (i + 1)).sum() for i, o in enumerate(ref)), args)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)
