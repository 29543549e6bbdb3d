"""Property-based tests (hypothesis): random valid configurations against torch.nn and the
reference loops, random invalid ones against regdrop's errors."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import regdrop.functional.dropout as F_dropout
import regdrop.nn.rnn as rnn_module
from regdrop.functional import rnn as F_rnn
from regdrop.nn import GRU, LSTM

EXAMPLES = 12
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RATES = st.sampled_from([0.0, 0.3, 0.97])


@st.composite
def configs(draw):
    kind = draw(st.sampled_from(["lstm", "gru"]))
    steps, n = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    return {
        "kind": kind,
        "num_layers": draw(st.integers(1, 2)),
        "bidirectional": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "proj_size": draw(st.sampled_from([0, 2])) if kind == "lstm" else 0,
        "steps": steps,
        "n": n,
        "lengths": draw(st.none() | st.lists(st.integers(1, steps), min_size=n, max_size=n)),
        "with_hx": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
        "rates": {name: draw(RATES) for name in ("input_dropout", "dropout", "recurrent_dropout", "weight_dropout")},
        "shared": draw(st.booleans()),
    }


def _run(c, train: bool):
    torch.manual_seed(c["seed"])
    kwargs = {k: c[k] for k in ("num_layers", "bidirectional", "batch_first")}
    if c["proj_size"]:
        kwargs["proj_size"] = c["proj_size"]
    ref = (torch.nn.LSTM if c["kind"] == "lstm" else torch.nn.GRU)(3, 4, **kwargs)
    ours = (LSTM if c["kind"] == "lstm" else GRU)(
        3, 4, **kwargs, **c["rates"], recurrent_dropout_shared=c["shared"] and c["rates"]["recurrent_dropout"] > 0
    )
    ours.load_state_dict(ref.state_dict())
    ref.train(train), ours.train(train)
    shape = (c["n"], c["steps"], 3) if c["batch_first"] else (c["steps"], c["n"], 3)
    x = torch.randn(shape)
    if c["lengths"] is not None:
        x = pack_padded_sequence(x, torch.tensor(c["lengths"]), batch_first=c["batch_first"], enforce_sorted=False)
    hx = None
    if c["with_hx"]:
        d = (2 if c["bidirectional"] else 1) * c["num_layers"]
        h = torch.randn(d, c["n"], c["proj_size"] or 4)
        hx = (h, torch.randn(d, c["n"], 4)) if c["kind"] == "lstm" else h
    results = []
    for layer in (ref, ours):
        y, h = layer(x, hx)
        if isinstance(y, PackedSequence):
            y = pad_packed_sequence(y)[0]
        results.append([y, *(h if isinstance(h, tuple) else (h,))])
    return results


@SETTINGS
@given(configs())
def test_eval_equals_torch(c):
    expected, got = _run(c, train=False)
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


def _ones(shape, p, dtype=None, device=None, generator=None):
    return torch.ones(shape, dtype=dtype, device=device)


@SETTINGS
@given(configs())
def test_training_with_unit_masks_equals_torch(c):
    with (
        mock.patch.object(rnn_module, "bernoulli_mask", _ones),
        mock.patch.object(F_dropout, "bernoulli_mask", _ones),
        mock.patch.object(rnn_module, "dropconnect", lambda w, p, training=True, generator=None: w),
    ):
        expected, got = _run(c, train=True)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


@st.composite
def scan_cases(draw):
    n = draw(st.integers(1, 4))
    steps = draw(st.integers(1, 5))
    sizes = sorted((draw(st.integers(1, n)) for _ in range(steps - 1)), reverse=True)
    return {
        "kind": draw(st.sampled_from(["lstm", "gru"])),
        "batch_sizes": [n, *sizes],
        "hidden": draw(st.integers(1, 5)),
        "masked": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "reverse": draw(st.booleans()),
        "p": draw(st.sampled_from([0.3, 0.97])),
        "seed": draw(st.integers(0, 999)),
    }


def _scan_inputs(c, dtype):
    gen = torch.Generator().manual_seed(c["seed"])
    bs, hidden = c["batch_sizes"], c["hidden"]
    n, rows, g = bs[0], sum(bs), 4 if c["kind"] == "lstm" else 3
    opts = {"dtype": torch.float64, "generator": gen}
    tensors = [
        torch.randn(rows, g * hidden, **opts),
        torch.randn(n, hidden, **opts),
        torch.randn(n, hidden, **opts) if c["kind"] == "lstm" else torch.randn(g * hidden, **opts),
        torch.randn(g * hidden, hidden, **opts) * 0.5,
    ]
    tensors = [t.to(dtype).requires_grad_() for t in tensors]
    mask = (torch.rand(n, hidden, **opts) > c["p"]).to(dtype) / (1 - c["p"]) if c["masked"] else None
    return tensors, mask


def _scan(c, tensors, mask, compiled: bool):
    xw, h0, third, w = tensors
    bs, rev = c["batch_sizes"], c["reverse"]
    if c["kind"] == "lstm":
        if compiled:
            return F_rnn._LSTMScan.apply(xw, h0, third, w, mask, bs, rev)
        return F_rnn._lstm_loop(xw, bs, h0, third, w, None, mask, 0.0, True, rev, None)
    b = third if c["bias"] else None
    if compiled:
        return F_rnn._GRUScan.apply(xw, h0, w, b, mask, bs, rev)
    return F_rnn._gru_loop(xw, bs, h0, w, b, mask, 0.0, True, rev, None)


def _grads(c, tensors, mask, compiled):
    outs = _scan(c, tensors, mask, compiled)
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view(o.shape)).sum() for o in outs)
    used = [t for i, t in enumerate(tensors) if not (c["kind"] == "gru" and i == 2 and not c["bias"])]
    return outs, torch.autograd.grad(loss, used)


needs_extension = pytest.mark.skipif(not F_rnn.extension_available(), reason="no C++ compiler")


@needs_extension
@SETTINGS
@given(scan_cases())
def test_compiled_loop_equals_reference_loop(c):
    tensors, mask = _scan_inputs(c, torch.float64)
    outs_c, grads_c = _grads(c, tensors, mask, compiled=True)
    outs_r, grads_r = _grads(c, tensors, mask, compiled=False)
    for got, expected in zip([*outs_c, *grads_c], [*outs_r, *grads_r]):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@needs_extension
@SETTINGS
@given(scan_cases())
def test_float32_compiled_gradients_match_the_float64_reference(c):
    # The float32 build uses the polynomial fast_exp for sigmoid/tanh: its gradients must stay
    # within float32 rounding of the exact (float64, libm) reference loop.
    tensors64, mask64 = _scan_inputs(c, torch.float64)
    tensors32 = [t.detach().float().requires_grad_() for t in tensors64]
    mask32 = mask64.float() if mask64 is not None else None
    outs32, grads32 = _grads(c, tensors32, mask32, compiled=True)
    outs64, grads64 = _grads(c, tensors64, mask64, compiled=False)
    for got, expected in zip([*outs32, *grads32], [*outs64, *grads64]):
        scale = expected.abs().max().item() + 1.0
        torch.testing.assert_close(got.double(), expected, rtol=0, atol=2e-5 * scale)


@st.composite
def bad_scan_calls(draw):
    """A valid call with one thing broken."""
    kind = draw(st.sampled_from(["lstm", "gru"]))
    n, hidden, g = draw(st.integers(1, 4)), draw(st.integers(1, 4)), 4 if kind == "lstm" else 3
    sizes = [n, *sorted(draw(st.lists(st.integers(1, n), max_size=4)), reverse=True)]
    rows = sum(sizes)
    args = {
        "xw": torch.randn(rows, g * hidden),
        "h0": torch.zeros(n, hidden),
        "w_hh": torch.randn(g * hidden, hidden),
        "mask": torch.ones(n, hidden),
        "batch_sizes": sizes,
    }
    if kind == "lstm":
        args["c0"] = torch.zeros(n, hidden)
    broken = draw(
        st.sampled_from(
            [
                "rows",
                "increasing",
                "negative",
                "first",
                "mask_rows",
                "mask_width",
                "mask_dtype",
                "state_dtype",
                "weight",
                "float_sizes",
            ]
        )
    )
    delta = draw(st.integers(1, 3))
    if broken == "rows":
        args["batch_sizes"] = [*sizes[:-1], sizes[-1] + delta]
    elif broken == "increasing":
        args["batch_sizes"] = [*sizes, sizes[-1] + delta]
        args["xw"] = torch.randn(rows + sizes[-1] + delta, g * hidden)
    elif broken == "negative":
        args["batch_sizes"] = [*sizes, -delta]
    elif broken == "first":
        args["batch_sizes"] = [n + delta, *sizes[1:]]
        args["xw"] = torch.randn(rows + delta, g * hidden)
    elif broken == "mask_rows":
        args["mask"] = torch.ones(max(0, n - delta), hidden)
    elif broken == "mask_width":
        args["mask"] = torch.ones(n, hidden + delta)
    elif broken == "mask_dtype":
        args["mask"] = args["mask"].to(draw(st.sampled_from([torch.float64, torch.float16, torch.int64])))
    elif broken == "state_dtype":
        args["h0"] = args["h0"].to(draw(st.sampled_from([torch.float64, torch.bfloat16])))
    elif broken == "weight":
        args["w_hh"] = torch.randn(g * hidden + delta, hidden)
    else:
        args["batch_sizes"] = [float(b) for b in sizes]
    return kind, args


@SETTINGS
@given(bad_scan_calls())
def test_invalid_scan_calls_get_a_regdrop_error(call):
    kind, args = call
    fn = F_rnn.lstm_scan if kind == "lstm" else F_rnn.gru_scan
    if kind == "gru":
        args = {**args, "b_hh": None}
    with pytest.raises((ValueError, TypeError), match=r"^(lstm|gru)_scan: "):
        fn(**args)


@SETTINGS
@given(
    st.sampled_from(["lstm", "gru"]),
    st.integers(1, 3),
    st.lists(st.integers(-2, 4), min_size=1, max_size=4),
    st.integers(-2, 2),
    st.booleans(),
)
def test_invalid_packed_sequences_get_a_regdrop_error(kind, n, sizes, extra_rows, train):
    sizes = [n, *sizes]
    valid = all(b >= 1 for b in sizes) and sizes == sorted(sizes, reverse=True) and extra_rows == 0
    if valid:
        extra_rows = 1
    packed = PackedSequence(torch.randn(max(0, sum(sizes) + extra_rows), 3), torch.tensor(sizes))
    layer = (LSTM if kind == "lstm" else GRU)(3, 4, recurrent_dropout=0.3).train(train)
    with pytest.raises(ValueError, match=rf"^{kind.upper()}: .*batch_sizes"):
        layer(packed)
