"""The recurrent time loops: the compiled loop against the autograd reference, gradients, fallback."""

from __future__ import annotations

import pytest
import torch

from regdrop.functional import rnn as F_rnn
from regdrop.functional.rnn import extension_available, gru_scan, lstm_scan, zoneout

needs_extension = pytest.mark.skipif(not extension_available(), reason="no C++ compiler to build the time loop")

BATCH_SIZES = {"padded": [3, 3, 3, 3], "packed": [3, 2, 2, 1]}


def _case(kind: str, batch_sizes: list[int], masked: bool, hidden: int = 5):
    gen = torch.Generator().manual_seed(0)
    n, rows, g = batch_sizes[0], sum(batch_sizes), 4 if kind == "lstm" else 3
    opts = dict(dtype=torch.float64, generator=gen)
    xw = torch.randn(rows, g * hidden, **opts).requires_grad_()
    h0 = torch.randn(n, hidden, **opts).requires_grad_()
    c0 = torch.randn(n, hidden, **opts).requires_grad_()
    w = (torch.randn(g * hidden, hidden, **opts) * 0.5).requires_grad_()
    b = torch.randn(g * hidden, **opts).requires_grad_()
    mask = (torch.rand(n, hidden, **opts) > 0.3).double() / 0.7 if masked else None
    return xw, h0, c0, w, b, mask


@needs_extension
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layout", ["padded", "packed"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_compiled_loop_matches_reference_and_gradcheck(kind, layout, reverse, masked):
    bs = BATCH_SIZES[layout]
    xw, h0, c0, w, b, mask = _case(kind, bs, masked)
    if kind == "lstm":
        compiled = lambda xw, h0, c0, w: F_rnn._LSTMScan.apply(xw, h0, c0, w, mask, bs, reverse)  # noqa: E731
        reference = lambda xw, h0, c0, w: F_rnn._lstm_loop(  # noqa: E731
            xw, bs, h0, c0, w, None, mask, 0.0, True, reverse, None)
        args = (xw, h0, c0, w)
    else:
        compiled = lambda xw, h0, w, b: F_rnn._GRUScan.apply(xw, h0, w, b, mask, bs, reverse)  # noqa: E731
        reference = lambda xw, h0, w, b: F_rnn._gru_loop(  # noqa: E731
            xw, bs, h0, w, b, mask, 0.0, True, reverse, None)
        args = (xw, h0, w, b)
    for got, expected in zip(compiled(*args), reference(*args)):
        torch.testing.assert_close(got, expected)
    grads_c = torch.autograd.grad(sum(o.sum() * (i + 1) for i, o in enumerate(compiled(*args))), args)
    grads_r = torch.autograd.grad(sum(o.sum() * (i + 1) for i, o in enumerate(reference(*args))), args)
    for got, expected in zip(grads_c, grads_r):
        torch.testing.assert_close(got, expected)
    assert torch.autograd.gradcheck(compiled, args)


@needs_extension
def test_float32_uses_the_compiled_loop_and_matches():
    xw, h0, c0, w, _, mask = (t.float() if t is not None else None for t in _case("lstm", [4, 4, 4], True))
    out, hn, cn = lstm_scan(xw, h0, c0, w, mask, [4, 4, 4])
    ref = F_rnn._lstm_loop(xw, [4, 4, 4], h0, c0, w, None, mask, 0.0, True, False, None)
    assert out.grad_fn is not None and "LSTMScan" in type(out.grad_fn).__name__
    torch.testing.assert_close(out, ref[0])


def test_without_the_extension_the_reference_loop_runs(monkeypatch):
    monkeypatch.setenv("REGDROP_EXTENSION", "0")
    assert not extension_available()
    xw, h0, c0, w, b, mask = _case("gru", [3, 2], True)
    out, hn = gru_scan(xw, h0, w, b, mask, [3, 2])
    assert "LSTMScan" not in type(out.grad_fn).__name__ and "GRUScan" not in type(out.grad_fn).__name__
    ref = F_rnn._gru_loop(xw, [3, 2], h0, w, b, mask, 0.0, True, False, None)
    torch.testing.assert_close(out, ref[0])


def test_zoneout_statistics_and_errors():
    prev, new = torch.zeros(20000), torch.ones(20000)
    out = zoneout(prev, new, 0.3, training=True)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert abs((out == 0).float().mean().item() - 0.3) < 0.02
    assert torch.equal(zoneout(prev, new, 0.0), new)
    with pytest.raises(ValueError, match=r"zoneout must be in \[0, 1\], got 2.0"):
        zoneout(prev, new, 2.0)
    with pytest.raises(ValueError, match="same shape"):
        zoneout(prev, new[:5], 0.1)
