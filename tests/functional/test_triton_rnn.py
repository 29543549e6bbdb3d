"""The CUDA time loop (cuBLAS GEMMs + Triton kernels) against the reference loop, on CPU tensors.

Triton's interpreter runs the kernels on CPU tensors (``TRITON_INTERPRET=1`` while the loop
first runs; ``_interpreted`` sets it). The shapes are tiny: the interpreter is slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import regdrop
from regdrop.functional import _triton_rnn as cuda_loop
from regdrop.functional import rnn as F_rnn

pytest.importorskip("triton")

BATCH_SIZES = {"padded": [3, 3, 3], "packed": [3, 3, 2, 1]}
HIDDEN = 4


@pytest.fixture(autouse=True)
def interpreter():
    with cuda_loop._interpreted():
        yield


def _case(kind: str, batch_sizes: list[int], masked: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n, rows, g = batch_sizes[0], sum(batch_sizes), 4 if kind == "lstm" else 3
    xw = torch.randn(rows, g * HIDDEN, generator=gen).requires_grad_()
    h0 = torch.randn(n, HIDDEN, generator=gen).requires_grad_()
    c0 = torch.randn(n, HIDDEN, generator=gen).requires_grad_()
    w = (torch.randn(g * HIDDEN, HIDDEN, generator=gen) * 0.5).requires_grad_()
    b = torch.randn(g * HIDDEN, generator=gen).requires_grad_()
    mask = (torch.rand(n, HIDDEN, generator=gen) > 0.3).float() / 0.7 if masked else None
    return xw, h0, c0, w, b, mask


def _run(kind, impl, args, mask, bs, reverse, zone_p=0.0, training=True, gen=None):
    """Outputs and the gradients of a loss that weights every output differently."""
    if kind == "lstm":
        xw, h0, c0, w = args
        if impl == "cuda":
            outs = cuda_loop.lstm_scan_cuda(xw, h0, c0, w, mask, bs, reverse, zone_p, training, gen)
        else:
            outs = F_rnn._lstm_loop(xw, bs, h0, c0, w, None, mask, zone_p, training, reverse, gen)
    else:
        xw, h0, w, b = args
        if impl == "cuda":
            outs = cuda_loop.gru_scan_cuda(xw, h0, w, b, mask, bs, reverse, zone_p, training, gen)
        else:
            outs = F_rnn._gru_loop(xw, bs, h0, w, b, mask, zone_p, training, reverse, gen)
    loss = sum((o.sin() * (i + 1)).sum() for i, o in enumerate(outs))
    return [o.detach() for o in outs], torch.autograd.grad(loss, args)


def _args(kind, xw, h0, c0, w, b):
    return (xw, h0, c0, w) if kind == "lstm" else (xw, h0, w, b)


def _assert_all_close(got, expected):
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layout", ["padded", "packed"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_reference_forward_and_gradients(kind, layout, reverse, masked):
    bs = BATCH_SIZES[layout]
    xw, h0, c0, w, b, mask = _case(kind, bs, masked)
    args = _args(kind, xw, h0, c0, w, b)
    outs, grads = _run(kind, "cuda", args, mask, bs, reverse)
    ref_outs, ref_grads = _run(kind, "reference", args, mask, bs, reverse)
    _assert_all_close(outs, ref_outs)
    _assert_all_close(grads, ref_grads)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
def test_zoneout_expectation_in_eval_matches_reference(kind, reverse):
    bs = BATCH_SIZES["packed"]
    xw, h0, c0, w, b, mask = _case(kind, bs, True, seed=1)
    args = _args(kind, xw, h0, c0, w, b)
    outs, grads = _run(kind, "cuda", args, mask, bs, reverse, zone_p=0.3, training=False)
    ref_outs, ref_grads = _run(kind, "reference", args, mask, bs, reverse, zone_p=0.3, training=False)
    _assert_all_close(outs, ref_outs)
    _assert_all_close(grads, ref_grads)
    # The premise: zoneout changed the result.
    plain, _ = _run(kind, "cuda", args, mask, bs, reverse)
    assert not torch.allclose(plain[0], outs[0])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
def test_zoneout_training_masks_match_reference(kind, reverse, monkeypatch):
    bs = BATCH_SIZES["packed"]
    xw, h0, c0, w, b, mask = _case(kind, bs, True, seed=2)
    args = _args(kind, xw, h0, c0, w, b)
    p = 0.4
    outs, grads = _run(kind, "cuda", args, mask, bs, reverse, p, True, torch.Generator().manual_seed(5))
    # Both loops draw their masks through the one zoneout draw: the same generator state gives
    # the same masks (premise: some units kept, some not).
    widths = (HIDDEN, HIDDEN) if kind == "lstm" else (HIDDEN,)
    z = torch.cat(F_rnn._zoneout_masks(p, True, sum(bs), widths, xw, torch.Generator().manual_seed(5)), 1)
    assert 0 < z.sum() < z.numel()
    ref_outs, ref_grads = _run(kind, "reference", args, mask, bs, reverse, p, True, torch.Generator().manual_seed(5))
    _assert_all_close(outs, ref_outs)
    _assert_all_close(grads, ref_grads)


PROJ = 2


def _projected_case(bs: list[int], masked: bool, seed: int):
    gen = torch.Generator().manual_seed(seed)
    n = bs[0]
    xw = torch.randn(sum(bs), 4 * HIDDEN, generator=gen).requires_grad_()
    h0 = torch.randn(n, PROJ, generator=gen).requires_grad_()
    c0 = torch.randn(n, HIDDEN, generator=gen).requires_grad_()
    w = (torch.randn(4 * HIDDEN, PROJ, generator=gen) * 0.5).requires_grad_()
    w_hr = (torch.randn(PROJ, HIDDEN, generator=gen) * 0.5).requires_grad_()
    mask = (torch.rand(n, PROJ, generator=gen) > 0.3).float() / 0.7 if masked else None
    return (xw, h0, c0, w, w_hr), mask


def _run_projected(impl, args, mask, bs, reverse, zone_p=0.0, training=True, gen=None):
    xw, h0, c0, w, w_hr = args
    if impl == "cuda":
        outs = cuda_loop.lstm_scan_cuda(xw, h0, c0, w, mask, bs, reverse, zone_p, training, gen, w_hr=w_hr)
    else:
        outs = F_rnn._lstm_loop(xw, bs, h0, c0, w, w_hr, mask, zone_p, training, reverse, gen)
    loss = sum((o.sin() * (i + 1)).sum() for i, o in enumerate(outs))
    return [o.detach() for o in outs], torch.autograd.grad(loss, args)


@pytest.mark.parametrize("layout", ["padded", "packed"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("masked", "zone_p"), [(False, 0.0), (True, 0.0), (True, 0.3)])
def test_projected_lstm_matches_reference(layout, reverse, masked, zone_p):
    bs = BATCH_SIZES[layout]
    args, mask = _projected_case(bs, masked, seed=6)
    outs, grads = _run_projected("cuda", args, mask, bs, reverse, zone_p, training=False)
    ref_outs, ref_grads = _run_projected("reference", args, mask, bs, reverse, zone_p, training=False)
    assert outs[0].shape == (sum(bs), PROJ)
    _assert_all_close(outs, ref_outs)
    _assert_all_close(grads, ref_grads)


@pytest.mark.parametrize("reverse", [False, True])
def test_projected_lstm_zoneout_training_masks_match_reference(reverse, monkeypatch):
    bs = BATCH_SIZES["packed"]
    args, mask = _projected_case(bs, True, seed=7)
    p = 0.4
    outs, grads = _run_projected("cuda", args, mask, bs, reverse, p, True, torch.Generator().manual_seed(9))
    ref_outs, ref_grads = _run_projected(
        "reference", args, mask, bs, reverse, p, True, torch.Generator().manual_seed(9)
    )
    _assert_all_close(outs, ref_outs)
    _assert_all_close(grads, ref_grads)


def test_projected_lstm_checks_its_shapes():
    args, _ = _projected_case([2, 2], False, seed=8)
    xw, h0, c0, w, w_hr = args
    with pytest.raises(ValueError, match=r"w_hr must have shape \(P, 4\) with 0 < P < 4, got \(4, 4\)"):
        cuda_loop.lstm_scan_cuda(xw, c0, c0, w, None, [2, 2], w_hr=torch.randn(4, 4))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2\)"):
        cuda_loop.lstm_scan_cuda(xw, c0, c0, w, None, [2, 2], w_hr=w_hr)
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 2\)"):
        cuda_loop.lstm_scan_cuda(xw, h0, c0, w, torch.ones(2, 4), [2, 2], w_hr=w_hr)


def test_gru_without_bias_matches_reference():
    bs = BATCH_SIZES["packed"]
    xw, h0, _, w, _, mask = _case("gru", bs, True, seed=10)
    args = (xw, h0, w)
    got = cuda_loop.gru_scan_cuda(xw, h0, w, None, mask, bs, True)
    ref = F_rnn._gru_loop(xw, bs, h0, w, None, mask, 0.0, True, True, None)
    _assert_all_close([o.detach() for o in got], [o.detach() for o in ref])
    grads = torch.autograd.grad(sum((o.sin() * (i + 1)).sum() for i, o in enumerate(got)), args)
    ref_grads = torch.autograd.grad(sum((o.sin() * (i + 1)).sum() for i, o in enumerate(ref)), args)
    _assert_all_close(grads, ref_grads)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_without_grad_runs_forward_only_and_matches(kind):
    bs = BATCH_SIZES["packed"]
    xw, h0, c0, w, b, mask = _case(kind, bs, True, seed=3)
    args = _args(kind, xw, h0, c0, w, b)
    with torch.no_grad():
        if kind == "lstm":
            got = cuda_loop.lstm_scan_cuda(xw, h0, c0, w, mask, bs, True, 0.2, False)
            expected = F_rnn._lstm_loop(xw, bs, h0, c0, w, None, mask, 0.2, False, True, None)
        else:
            got = cuda_loop.gru_scan_cuda(xw, h0, w, b, mask, bs, True, 0.2, False)
            expected = F_rnn._gru_loop(xw, bs, h0, w, b, mask, 0.2, False, True, None)
    assert not any(o.requires_grad for o in got)
    _assert_all_close(got, expected)
    assert len(args) == 4


def test_float16_gemms_keep_float32_state_and_stay_close():
    bs = BATCH_SIZES["packed"]
    xw, h0, c0, w, _, mask = _case("lstm", bs, True, seed=4)
    args = (xw, h0, c0, w)
    out16 = cuda_loop.lstm_scan_cuda(xw, h0, c0, w, mask, bs, gemm_dtype=torch.float16)
    with cuda_loop.autocast_gemms(torch.float16):  # the layer's way of asking for it
        scoped = cuda_loop.lstm_scan_cuda(xw, h0, c0, w, mask, bs)
    ref = F_rnn._lstm_loop(xw, bs, h0, c0, w, None, mask, 0.0, True, False, None)
    assert all(o.dtype == torch.float32 for o in out16)
    for got, same, expected in zip(out16, scoped, ref):
        torch.testing.assert_close(got, same)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-2)
        assert not torch.equal(got, expected)  # the GEMMs did run in float16
    grads = torch.autograd.grad(sum(o.sum() for o in out16), args)
    ref_grads = torch.autograd.grad(sum(o.sum() for o in ref), args)
    for got, expected in zip(grads, ref_grads):
        torch.testing.assert_close(got, expected, rtol=0, atol=5e-2)


def test_bad_arguments_name_the_argument():
    xw, h0, c0, w, _, _ = _case("lstm", [2, 2], False)
    with pytest.raises(ValueError, match=r"zoneout must be in \[0, 1\], got 1.5"):
        cuda_loop.lstm_scan_cuda(xw, h0, c0, w, None, [2, 2], zoneout=1.5)
    with pytest.raises(TypeError, match="float32, float16 or bfloat16.*float64"):
        cuda_loop.lstm_scan_cuda(xw.double(), h0.double(), c0.double(), w.double(), None, [2, 2])
    with pytest.raises(ValueError, match="batch_sizes must sum"):
        cuda_loop.lstm_scan_cuda(xw, h0, c0, w, None, [2, 1])
    with pytest.raises(TypeError, match="training must be a bool"):
        cuda_loop.gru_scan_cuda(xw[:, :12], h0, w[:12], None, None, [2, 2], training=1)
    with (
        pytest.raises(ValueError, match="dtype must be None, float16, bfloat16 or float32"),
        cuda_loop.autocast_gemms(torch.int8),
    ):
        pass


# ------------------------------------------------------------------ the layers' dispatch
@pytest.fixture
def cpu_as_cuda(monkeypatch):
    """Route the layers' CPU tensors to the CUDA loop (run by the interpreter); count the calls."""
    calls = []
    real = cuda_loop.layer_scan_cuda

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cuda_loop, "_on_cuda", lambda t: True)
    monkeypatch.setattr(cuda_loop, "layer_scan_cuda", spy)
    return calls


def _layer_pair(cls, **kwargs):
    torch.manual_seed(0)
    layer = cls(3, HIDDEN, **kwargs)
    return layer


@pytest.mark.parametrize("cls", [regdrop.nn.LSTM, regdrop.nn.GRU])
@pytest.mark.parametrize("packed", [False, True])
def test_layer_uses_the_cuda_loop_and_matches_reference(cls, packed, cpu_as_cuda, monkeypatch):
    layer = _layer_pair(cls, num_layers=2, bidirectional=True, batch_first=True, recurrent_dropout=0.3, dropout=0.2)
    x = torch.randn(3, 4, 3)  # (N, L, H_in)
    lengths = torch.tensor([4, 2, 3])

    def step():
        inp = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) if packed else x
        torch.manual_seed(11)
        out, state = layer(inp)
        out = out.data if packed else out
        h = state[0] if isinstance(state, tuple) else state
        loss = out.sin().sum() + h.cos().sum()
        grads = torch.autograd.grad(loss, list(layer.parameters()))
        return out.detach(), h.detach(), grads

    out, h, grads = step()
    assert len(cpu_as_cuda) == 4  # 2 layers x 2 directions
    monkeypatch.setattr(cuda_loop, "_on_cuda", lambda t: False)
    monkeypatch.setenv("REGDROP_EXTENSION", "0")  # the reference loop
    ref_out, ref_h, ref_grads = step()
    assert len(cpu_as_cuda) == 4
    _assert_all_close((out, h, *grads), (ref_out, ref_h, *ref_grads))


@pytest.mark.parametrize("cls", [regdrop.nn.LSTM, regdrop.nn.GRU])
def test_layer_zoneout_eval_uses_the_cuda_loop(cls, cpu_as_cuda, monkeypatch):
    layer = _layer_pair(cls, zoneout=0.25).eval()
    x = torch.randn(4, 2, 3)
    out, _ = layer(x)
    assert len(cpu_as_cuda) == 1
    monkeypatch.setattr(cuda_loop, "_on_cuda", lambda t: False)
    ref, _ = layer(x)
    _assert_all_close((out,), (ref,))


def test_lstm_with_projection_uses_the_cuda_loop(cpu_as_cuda, monkeypatch):
    layer = _layer_pair(regdrop.nn.LSTM, proj_size=2, bidirectional=True, recurrent_dropout=0.3)
    x = torch.randn(4, 2, 3)

    def step():
        torch.manual_seed(3)
        out, (h, c) = layer(x)
        grads = torch.autograd.grad(out.sin().sum() + c.cos().sum(), list(layer.parameters()))
        return out.detach(), h.detach(), c.detach(), grads

    out, h, c, grads = step()
    assert out.shape == (4, 2, 4)
    assert len(cpu_as_cuda) == 2
    monkeypatch.setattr(cuda_loop, "_on_cuda", lambda t: False)
    ref_out, ref_h, ref_c, ref_grads = step()
    _assert_all_close((out, h, c, *grads), (ref_out, ref_h, ref_c, *ref_grads))


# ------------------------------------------------------------------------ without Triton
def test_without_triton_cuda_warns_once_and_falls_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` raises ImportError
    monkeypatch.setattr(cuda_loop, "_STATE", {})
    monkeypatch.setattr(cuda_loop, "_on_cuda", lambda t: True)
    monkeypatch.setenv("REGDROP_EXTENSION", "0")  # the CPU compiled loop is not the point here
    assert not cuda_loop.cuda_scan_available()
    x = torch.zeros(2, 3)
    with pytest.warns(UserWarning, match=r"reference loop.*Triton cannot be imported.*pip install triton"):
        assert not cuda_loop.handles(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cuda_loop.handles(x)  # once per process
    # The layer still runs (the reference loop) and warns nothing more.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _ = regdrop.nn.GRU(3, HIDDEN, recurrent_dropout=0.3)(torch.randn(4, 2, 3))
    assert out.shape == (4, 2, HIDDEN)


def test_without_triton_the_loop_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)
    monkeypatch.setenv("TRITON_INTERPRET", "no-triton-test")  # a fresh entry of the kernel cache
    xw, h0, c0, w, _, _ = _case("lstm", [2], False)
    with pytest.raises(RuntimeError, match="needs Triton.*pip install triton"):
        cuda_loop.lstm_scan_cuda(xw, h0, c0, w, None, [2])


@pytest.mark.slow  # a fresh interpreter imports torch
def test_import_regdrop_does_not_need_triton():
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, regdrop, regdrop.nn, regdrop.functional._triton_rnn as c\n"
        "assert not c.cuda_scan_available()\n"
        "out, _ = regdrop.nn.LSTM(3, 4, recurrent_dropout=0.3, zoneout=0.1)(torch.randn(5, 2, 3))\n"
        "print(tuple(out.shape))\n"
    )
    env = dict(os.environ, REGDROP_EXTENSION="0")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(5, 2, 4)"


@pytest.mark.slow  # a fresh interpreter imports torch
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_benchmark_device_cuda_without_a_gpu_fails_clearly():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    script = os.path.join(root, "benchmarks", "rnn_speed.py")
    done = subprocess.run(
        [sys.executable, script, "--device", "cuda"], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 2
    assert "--device cuda: torch sees no CUDA GPU here" in done.stderr
    assert "|" not in done.stdout  # no table started


def test_past_32_bit_offsets_the_layer_hook_runs_the_reference_loop(monkeypatch):
    monkeypatch.setattr(cuda_loop, "_MAX_ELEMENTS", 50)
    xw, h0, c0, w, _, _ = _case("lstm", [3, 3, 3], False)
    with pytest.raises(ValueError, match="32-bit offsets: xw must have at most 50 elements, got 144"):
        cuda_loop.lstm_scan_cuda(xw, h0, c0, w, None, [3, 3, 3])
    called = []
    monkeypatch.setattr(cuda_loop, "lstm_scan_cuda", lambda *a, **k: called.append(1))
    x, w_ih = torch.randn(9, 3), torch.randn(4 * HIDDEN, 3)
    got = cuda_loop.layer_scan_cuda(x, [3, 3, 3], h0, c0, w_ih, w, None, None, None, 0.0, True, False)
    assert called == []
    _assert_all_close(got, F_rnn.lstm_layer_loop(x, [3, 3, 3], h0, c0, w_ih, w))
