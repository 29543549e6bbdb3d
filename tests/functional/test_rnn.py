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
            xw, bs, h0, c0, w, None, mask, 0.0, True, reverse, None
        )
        args = (xw, h0, c0, w)
    else:
        compiled = lambda xw, h0, w, b: F_rnn._GRUScan.apply(xw, h0, w, b, mask, bs, reverse)  # noqa: E731
        reference = lambda xw, h0, w, b: F_rnn._gru_loop(  # noqa: E731
            xw, bs, h0, w, b, mask, 0.0, True, reverse, None
        )
        args = (xw, h0, w, b)
    for got, expected in zip(compiled(*args), reference(*args)):
        torch.testing.assert_close(got, expected)
    grads_c = torch.autograd.grad(sum(o.sum() * (i + 1) for i, o in enumerate(compiled(*args))), args)
    grads_r = torch.autograd.grad(sum(o.sum() * (i + 1) for i, o in enumerate(reference(*args))), args)
    for got, expected in zip(grads_c, grads_r):
        torch.testing.assert_close(got, expected)
    assert torch.autograd.gradcheck(compiled, args)


@needs_extension
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layout", ["padded", "packed", "ragged"])
@pytest.mark.parametrize("reverse", [False, True])
def test_a_mask_that_requires_grad_gets_the_reference_gradient(kind, layout, reverse):
    # A learned (concrete) recurrent mask: its gradient is computed outside the compiled loop,
    # from the unmasked previous states (the LSTM rebuilds them from its output rows and h0).
    bs = {**BATCH_SIZES, "ragged": [4, 4, 2, 1, 1]}[layout]
    xw, h0, c0, w, b, _ = _case(kind, bs, False)
    mask = torch.empty(bs[0], 5, dtype=torch.float64).uniform_(0.0, 2.0, generator=torch.Generator().manual_seed(1))
    mask.requires_grad_()
    if kind == "lstm":
        compiled = lambda xw, h0, c0, w, m: F_rnn._LSTMScan.apply(xw, h0, c0, w, m, bs, reverse)  # noqa: E731
        reference = lambda xw, h0, c0, w, m: F_rnn._lstm_loop(  # noqa: E731
            xw, bs, h0, c0, w, None, m, 0.0, True, reverse, None
        )
        args = (xw, h0, c0, w, mask)
    else:
        compiled = lambda xw, h0, w, b, m: F_rnn._GRUScan.apply(xw, h0, w, b, m, bs, reverse)  # noqa: E731
        reference = lambda xw, h0, w, b, m: F_rnn._gru_loop(xw, bs, h0, w, b, m, 0.0, True, reverse, None)  # noqa: E731
        args = (xw, h0, w, b, mask)
    weights = [
        torch.randn(o.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(i))
        for i, o in enumerate(reference(*args))
    ]
    grads_c = torch.autograd.grad(sum((o * v).sum() for o, v in zip(compiled(*args), weights)), args)
    grads_r = torch.autograd.grad(sum((o * v).sum() for o, v in zip(reference(*args), weights)), args)
    for got, expected in zip(grads_c, grads_r):
        torch.testing.assert_close(got, expected)
    assert grads_c[-1].abs().sum() > 0
    assert torch.autograd.gradcheck(compiled, args)
    # Only the mask requires grad: the other inputs' gradients are skipped, the mask's is not.
    frozen = [a.detach() for a in args[:-1]]
    (only,) = torch.autograd.grad(compiled(*frozen, mask)[0].sum(), [mask])
    (expected,) = torch.autograd.grad(reference(*frozen, mask)[0].sum(), [mask])
    torch.testing.assert_close(only, expected)


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


def _fresh_extension_state(monkeypatch):
    monkeypatch.delenv("REGDROP_EXTENSION", raising=False)
    monkeypatch.setattr(F_rnn, "_EXT_STATE", {})


def test_a_failed_build_warns_in_one_short_line(monkeypatch, caplog):
    _fresh_extension_state(monkeypatch)
    command = "c++ -O3 " + "-I/some/include " * 200 + "scan.cpp"

    def no_compiler(**kwargs):
        raise RuntimeError(f"Error building extension 'regdrop_scan': {command}\n" + "scan.cpp:1: error\n" * 50)

    monkeypatch.setattr("torch.utils.cpp_extension.load", no_compiler)
    with caplog.at_level("WARNING", logger=F_rnn.__name__):
        assert not extension_available()
    (record,) = caplog.records
    message = record.getMessage()
    assert "\n" not in message and len(message) < 400, message
    assert "(RuntimeError: Error building extension 'regdrop_scan': c++ -O3" in message
    assert message.endswith("per-sample recurrent dropout runs as a Python loop, correct but slower")
    assert not extension_available() and len(caplog.records) == 1  # said once


def test_the_first_build_says_so_once(monkeypatch, tmp_path, capsys):
    _fresh_extension_state(monkeypatch)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    built = []

    def fake_load(name, **kwargs):  # stands in for the compiler: leaves the built library behind
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f"{name}.so").touch()
        built.append(name)

    monkeypatch.setattr("torch.utils.cpp_extension.load", fake_load)
    assert extension_available()
    err = capsys.readouterr().err
    assert err == "regdrop: building the compiled recurrent-dropout loop (once, ~30 s)...\n"
    monkeypatch.setattr(F_rnn, "_EXT_STATE", {})  # a new process: the library is cached now
    assert extension_available() and len(built) == 2
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ zoneout and projection
# The compiled loop with zoneout masks (training) or the expectation (eval), and with an LSTM
# projection, against the reference loop given the same masks; float64 gradcheck.
ZONE_KINDS = ["lstm", "lstm-proj", "gru"]


def _zone_case(kind: str, batch_sizes: list[int], masked: bool, zone: str, dtype=torch.float64):
    gen = torch.Generator().manual_seed(1)
    hidden, n, rows = 5, batch_sizes[0], sum(batch_sizes)
    width = 3 if kind == "lstm-proj" else hidden  # the width of h
    g = 3 if kind == "gru" else 4
    opts = dict(dtype=dtype, generator=gen)
    tensors = {
        "xw": torch.randn(rows, g * hidden, **opts),
        "h0": torch.randn(n, width, **opts),
        "w_hh": torch.randn(g * hidden, width, **opts) * 0.5,
    }
    if kind == "gru":
        tensors["b_hh"] = torch.randn(g * hidden, **opts)
    else:
        tensors["c0"] = torch.randn(n, hidden, **opts)
    if kind == "lstm-proj":
        tensors["w_hr"] = torch.randn(width, hidden, **opts) * 0.5
    tensors = {k: v.requires_grad_() for k, v in tensors.items()}
    mask = (torch.rand(n, width, **opts) > 0.3).to(dtype) / 0.7 if masked else None
    zone_h = zone_c = None
    if zone == "train":
        zone_h = torch.rand(rows, width, **opts) < 0.4
        zone_c = torch.rand(rows, hidden, **opts) < 0.4
    return tensors, mask, zone_h, zone_c


def _zone_fns(kind, bs, reverse, mask, zone_h, zone_c, zone):
    """(compiled, reference) as functions of the tensors, in the order of _zone_case's dict."""
    p = 0.3 if zone == "eval" else 0.0  # the rate, used by both only in evaluation
    training = zone == "train"
    if kind == "gru":

        def compiled(xw, h0, w_hh, b_hh):
            return F_rnn._GRUScan.apply(xw, h0, w_hh, b_hh, mask, bs, reverse, zone_h, p)

        def reference(xw, h0, w_hh, b_hh):
            return F_rnn._gru_loop(xw, bs, h0, w_hh, b_hh, mask, p, training, reverse, None, zone_masks=zone_h)

        return compiled, reference

    def compiled(xw, h0, w_hh, c0, w_hr=None):
        return F_rnn._LSTMScan.apply(xw, h0, c0, w_hh, mask, bs, reverse, w_hr, zone_h, zone_c, p)

    def reference(xw, h0, w_hh, c0, w_hr=None):
        return F_rnn._lstm_loop(
            xw, bs, h0, c0, w_hh, w_hr, mask, p, training, reverse, None, zone_masks=(zone_h, zone_c)
        )

    return compiled, reference


def _weighted_sum(outs):
    return sum(o.sum() * (i + 1) + (o * o).sum() for i, o in enumerate(outs))


# Without zoneout and projection: test_compiled_loop_matches_reference_and_gradcheck.
ZONE_GRID = [
    (kind, zone) for kind in ZONE_KINDS for zone in ("train", "eval", "off") if zone != "off" or kind == "lstm-proj"
]


@needs_extension
@pytest.mark.parametrize(("kind", "zone"), ZONE_GRID)
@pytest.mark.parametrize("layout", ["padded", "packed"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_compiled_zoneout_and_projection_match_reference_and_gradcheck(kind, zone, layout, reverse, masked):
    bs = BATCH_SIZES[layout]
    tensors, mask, zone_h, zone_c = _zone_case(kind, bs, masked, zone)
    compiled, reference = _zone_fns(kind, bs, reverse, mask, zone_h, zone_c, zone)
    args = tuple(tensors.values())
    got, expected = compiled(*args), reference(*args)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)
    grads_c = torch.autograd.grad(_weighted_sum(got), args)
    grads_r = torch.autograd.grad(_weighted_sum(expected), args)
    for name, g, e in zip(tensors, grads_c, grads_r, strict=True):
        torch.testing.assert_close(g, e, msg=lambda m, name=name: f"d{name}: {m}")
    assert torch.autograd.gradcheck(compiled, args)


@needs_extension
@pytest.mark.parametrize("kind", ZONE_KINDS)
@pytest.mark.parametrize("zone", ["train", "eval"])
def test_float32_zoneout_and_projection_match_the_reference(kind, zone):
    bs = [6, 6, 5, 5, 3, 2, 2, 1]
    tensors, mask, zone_h, zone_c = _zone_case(kind, bs, True, zone, dtype=torch.float32)
    compiled, reference = _zone_fns(kind, bs, True, mask, zone_h, zone_c, zone)
    args = tuple(tensors.values())
    got, expected = compiled(*args), reference(*args)
    assert "Scan" in type(got[0].grad_fn).__name__
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
    grads_c = torch.autograd.grad(_weighted_sum(got), args)
    grads_r = torch.autograd.grad(_weighted_sum(expected), args)
    for g, e in zip(grads_c, grads_r, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


def test_zoneout_training_masks_keep_previous_values_exactly(monkeypatch):
    # A kept unit is the previous state bit for bit, in both loops (lerp with weight 1).
    torch.manual_seed(0)
    xw, h0, c0, w = torch.randn(12, 16), torch.randn(3, 4), torch.randn(3, 4), torch.randn(16, 4)
    for extension in ("1", "0"):
        monkeypatch.setenv("REGDROP_EXTENSION", extension)
        out, hn, cn = lstm_scan(xw, h0, c0, w, None, [3, 3, 3, 3], zoneout=0.5)
        kept = out[:3] == h0
        assert 0 < int(kept.sum()) < 12


@pytest.mark.parametrize("kind", ["lstm", "lstm-proj", "gru"])
@pytest.mark.parametrize("training", [True, False])
def test_compiled_and_reference_loops_draw_the_same_zoneout_masks(kind, training, monkeypatch):
    # lstm_scan / gru_scan with and without the extension (REGDROP_EXTENSION=0, the fallback
    # without a compiler): the same seed gives the same result.
    bs = [4, 4, 3, 1]
    tensors, mask, _, _ = _zone_case(kind, bs, True, "off", dtype=torch.float32)
    results = []
    for extension in ("1", "0"):
        if extension == "1" and not extension_available():
            pytest.skip("no C++ compiler to build the time loop")
        monkeypatch.setenv("REGDROP_EXTENSION", extension)
        gen = torch.Generator().manual_seed(11)
        t = tensors
        if kind == "gru":
            outs = gru_scan(
                t["xw"], t["h0"], t["w_hh"], t["b_hh"], mask, bs, True, zoneout=0.4, training=training, generator=gen
            )
        else:
            outs = lstm_scan(
                t["xw"], t["h0"], t["c0"], t["w_hh"], mask, bs, True,
                w_hr=t.get("w_hr"), zoneout=0.4, training=training, generator=gen,
            )  # fmt: skip
        grads = torch.autograd.grad(_weighted_sum(outs), tuple(t.values()))
        results.append((outs, grads))
    assert ("Scan" in type(results[0][0][0].grad_fn).__name__) and "Scan" not in type(results[1][0][0].grad_fn).__name__
    for got, expected in zip([*results[0][0], *results[0][1]], [*results[1][0], *results[1][1]], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
