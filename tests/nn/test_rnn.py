"""regdrop.nn.LSTM / GRU / cells: drop-in equality with torch.nn, mask semantics, gradients, errors."""

from __future__ import annotations

import itertools
import pickle

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import regdrop.functional.dropout as F_dropout
import regdrop.nn.rnn as rnn_module
from regdrop.functional.rnn import lstm_layer_loop
from regdrop.nn import GRU, LSTM, GRUCell, LSTMCell

INPUT, HIDDEN, STEPS, BATCH = 5, 6, 7, 4
LENGTHS = torch.tensor([7, 5, 5, 2])


def _pair(kind: str, **kwargs):
    """A torch layer and the regdrop layer holding the same weights (loaded from torch's state_dict)."""
    torch.manual_seed(0)
    ref = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(INPUT, HIDDEN, **kwargs)
    ours = (LSTM if kind == "lstm" else GRU)(INPUT, HIDDEN, **kwargs)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _input(batch_first: bool, batched: bool, packed: bool, dtype=torch.float32):
    x = torch.randn(BATCH, STEPS, INPUT, dtype=dtype) if batch_first else torch.randn(STEPS, BATCH, INPUT, dtype=dtype)
    if packed:
        return pack_padded_sequence(
            x, LENGTHS[torch.tensor([2, 0, 3, 1])], batch_first=batch_first, enforce_sorted=False
        )
    if not batched:
        return x[0] if batch_first else x[:, 0]
    return x


def _hidden(kind: str, num_layers: int, bidirectional: bool, proj_size: int, batched: bool):
    d = 2 if bidirectional else 1
    shape = (num_layers * d, BATCH) if batched else (num_layers * d,)
    h = torch.randn(*shape, proj_size or HIDDEN)
    return (h, torch.randn(*shape, HIDDEN)) if kind == "lstm" else h


def _flat(out):
    """Output and states as a list of plain tensors (packed outputs padded)."""
    y, h = out
    if isinstance(y, torch.nn.utils.rnn.PackedSequence):
        y = pad_packed_sequence(y)[0]
    return [y, *(h if isinstance(h, tuple) else (h,))]


CONFIGS = [
    dict(kind=k, num_layers=nl, bidirectional=bd, batch_first=bf, proj_size=ps, packed=pk, batched=bt, with_hx=hx)
    for k, nl, bd, bf, ps, pk, bt, hx in itertools.product(
        ["lstm", "gru"], [1, 2], [False, True], [False, True], [0, 3], [False, True], [True, False], [False, True]
    )
    if not (k == "gru" and ps) and not (pk and not bt)
]


def _config_id(c):
    return "-".join(f"{k}={v}" for k, v in c.items())


def _run_both(c, ours_mode: str, **rates):
    layer_kwargs = dict(num_layers=c["num_layers"], bidirectional=c["bidirectional"], batch_first=c["batch_first"])
    if c["proj_size"]:
        layer_kwargs["proj_size"] = c["proj_size"]
    ref, ours = _pair(c["kind"], **layer_kwargs)
    for name, value in rates.items():
        setattr(ours, name, value)
    x = _input(c["batch_first"], c["batched"], c["packed"])
    hx = _hidden(c["kind"], c["num_layers"], c["bidirectional"], c["proj_size"], c["batched"]) if c["with_hx"] else None
    ref.train(ours_mode == "train")
    ours.train(ours_mode == "train")
    return _flat(ref(x, hx)), _flat(ours(x, hx))


@pytest.mark.parametrize("c", CONFIGS, ids=_config_id)
def test_eval_is_exactly_torch(c):
    # Every rate on: in eval none of them may change a single bit.
    expected, got = _run_both(c, "eval", input_dropout=0.3, dropout=0.3, recurrent_dropout=0.4, weight_dropout=0.2)
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


@pytest.mark.parametrize("shared", [False, True], ids=["per-sample", "batch-shared"])
@pytest.mark.parametrize("c", CONFIGS, ids=_config_id)
def test_train_with_unit_masks_matches_torch(c, shared, monkeypatch):
    # Every mask forced to 1 sends the input through the regularized path (layer by layer;
    # per-sample: compiled or autograd loop per direction; batch-shared: torch's kernel on the
    # folded weights): it must still compute torch's LSTM/GRU.
    def ones(shape, p, dtype=None, device=None, generator=None):
        return torch.ones(shape, dtype=dtype, device=device)

    monkeypatch.setattr(rnn_module, "bernoulli_mask", ones)  # recurrent masks
    monkeypatch.setattr(F_dropout, "bernoulli_mask", ones)  # variational masks (locked_dropout)
    monkeypatch.setattr(rnn_module, "dropconnect", lambda w, p, training=True, generator=None: w)
    expected, got = _run_both(
        c,
        "train",
        input_dropout=0.3,
        dropout=0.3,
        recurrent_dropout=0.4,
        weight_dropout=0.2,
        recurrent_dropout_shared=shared,
    )
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_train_with_zero_rates_and_torch_kernel_is_exactly_torch(kind):
    ref, ours = _pair(kind, num_layers=2, bidirectional=True)
    ours.compiled_training = False
    for packed in (False, True):
        x = _input(False, True, packed)
        ref.train(), ours.train()
        for e, g in zip(_flat(ref(x)), _flat(ours(x))):
            assert torch.equal(e, g)


def _ran_compiled_loop(output) -> bool:
    """Whether the compiled loop's autograd node is in ``output``'s graph."""
    stack, seen = [output.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if "Scan" in type(fn).__name__:
            return True
        stack += [n for n, _ in fn.next_functions]
    return False


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_train_with_zero_rates_runs_the_faster_kernel_with_torchs_numbers(kind, packed):
    # Without dropout, a GRU (and an LSTM on packed input) trains on the compiled loop on the CPU,
    # where torch's kernel is slower; the padded LSTM keeps torch's (oneDNN) kernel, bit for bit.
    from regdrop.functional import rnn as F_rnn

    if not F_rnn.extension_available():
        pytest.skip("no C++ compiler to build the time loop")
    ref, ours = _pair(kind, num_layers=2, bidirectional=True, batch_first=True)
    ref.train(), ours.train()
    x = _input(True, True, packed)
    expected, got = _flat(ref(x)), _flat(ours(x))
    loop = kind == "gru" or packed
    output = ours(x)[0]
    assert _ran_compiled_loop(output.data if packed else output) is loop
    for e, g in zip(expected, got):
        if loop:
            torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
        else:
            assert torch.equal(e, g)
    # the same gradients, through either kernel
    grads = []
    for layer in (ref, ours):
        layer.zero_grad()
        out = layer(x)[0]
        (out.data if packed else out).pow(2).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for e, g in zip(*grads):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)
    # eval, autocast and compiled_training=False keep torch's kernel
    ours.eval()
    assert not _ran_compiled_loop(ours(x)[0].data if packed else ours(x)[0])
    ours.train()
    ours.compiled_training = False
    assert not _ran_compiled_loop(ours(x)[0].data if packed else ours(x)[0])
    ours.compiled_training = True
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(x)[0]
    assert not _ran_compiled_loop(out.data if packed else out)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_state_dict_round_trip_and_converters(kind):
    torch_cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    ours_cls = LSTM if kind == "lstm" else GRU
    kwargs = dict(num_layers=2, bidirectional=True, batch_first=True)
    if kind == "lstm":
        kwargs["proj_size"] = 3
    plain = torch_cls(INPUT, HIDDEN, **kwargs)
    ours = ours_cls(INPUT, HIDDEN, **kwargs, recurrent_dropout=0.25)
    assert list(ours.state_dict()) == list(plain.state_dict())
    ours.load_state_dict(plain.state_dict())
    back = torch_cls(INPUT, HIDDEN, **kwargs)
    back.load_state_dict(ours.state_dict())
    converted = ours_cls.from_torch(plain, recurrent_dropout=0.5)
    assert converted.recurrent_dropout == 0.5 and converted.batch_first
    served = converted.to_torch()
    assert type(served) is torch_cls
    x = torch.randn(BATCH, STEPS, INPUT)
    plain.eval(), converted.eval(), served.eval(), back.eval()
    assert torch.equal(plain(x)[0], converted(x)[0])
    assert torch.equal(plain(x)[0], served(x)[0])
    assert torch.equal(plain(x)[0], back(x)[0])
    assert isinstance(ours, torch_cls)


def _recurrent_probe(kind: str, shared: bool, column: int):
    """Outputs before and after changing column ``column`` of W_hh, with the same masks."""
    torch.manual_seed(1)
    layer = (LSTM if kind == "lstm" else GRU)(3, 8, recurrent_dropout=0.5, recurrent_dropout_shared=shared)
    x = torch.randn(12, 32, 3)
    h0 = torch.randn(1, 32, 8)
    hx = (h0, torch.randn(1, 32, 8)) if kind == "lstm" else h0
    torch.manual_seed(2)
    before = layer(x, hx)[0]
    with torch.no_grad():
        layer.weight_hh_l0[:, column] += 1.0
    torch.manual_seed(2)
    after = layer(x, hx)[0]
    return (before - after).abs().amax(dim=2)  # (time, batch)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_mask_is_per_sample_and_fixed_over_time(kind):
    # Unit j of h(t-1) dropped for sample n means column j of W_hh never touches sample n,
    # at any step; kept means it does at every step. A mask redrawn per step, or one shared
    # by the batch, fails this.
    unaffected_counts = []
    for column in range(8):
        change = _recurrent_probe(kind, shared=False, column=column)
        unaffected = (change == 0).all(dim=0)
        assert ((change > 0).all(dim=0) | unaffected).all(), "a sample's mask changed between time steps"
        unaffected_counts.append(int(unaffected.sum()))
    assert 0 < sum(unaffected_counts) < 8 * 32
    assert any(0 < c < 32 for c in unaffected_counts), "masks look shared by the batch"


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_batch_shared_recurrent_mask(kind):
    outcomes = set()
    for column in range(8):
        unaffected = (_recurrent_probe(kind, shared=True, column=column) == 0).all(dim=0)
        assert unaffected.all() or not unaffected.any(), "the shared mask differs between samples"
        outcomes.add(bool(unaffected.all()))
    assert outcomes == {True, False}


def test_recurrent_mask_applies_where_h_enters_w_hh_only(monkeypatch):
    # The exact recurrence with the mask that was drawn: compare with the autograd reference
    # loop, which masks h(t-1) before W_hh and carries c (and h) unmasked.
    torch.manual_seed(3)
    layer = LSTM(3, 6, recurrent_dropout=0.5)
    drawn = []
    draw = rnn_module.bernoulli_mask

    def recording(shape, p, **kw):
        drawn.append(draw(shape, p, **kw))
        return drawn[-1]

    monkeypatch.setattr(rnn_module, "bernoulli_mask", recording)
    x = torch.randn(9, 5, 3)
    out, (h, c) = layer(x)
    (mask,) = drawn
    assert mask.shape == (5, 6)
    zeros = torch.zeros(5, 6)
    ref_out, ref_h, ref_c = lstm_layer_loop(
        x.reshape(45, 3),
        [5] * 9,
        zeros,
        zeros,
        layer.weight_ih_l0,
        layer.weight_hh_l0,
        layer.bias_ih_l0,
        layer.bias_hh_l0,
        mask=mask,
    )
    torch.testing.assert_close(out.reshape(45, 6), ref_out)
    torch.testing.assert_close(c[0], ref_c)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_masks_are_redrawn_every_call_and_seeded(kind):
    torch.manual_seed(0)
    layer = (LSTM if kind == "lstm" else GRU)(
        INPUT, HIDDEN, num_layers=2, input_dropout=0.2, dropout=0.3, recurrent_dropout=0.3, weight_dropout=0.3
    )
    x = torch.randn(STEPS, BATCH, INPUT)
    torch.manual_seed(5)
    a = layer(x)[0]
    b = layer(x)[0]
    torch.manual_seed(5)
    a_again = layer(x)[0]
    assert not torch.equal(a, b)
    assert torch.equal(a, a_again)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_weight_dropout_is_dropconnect_per_call(kind):
    torch.manual_seed(0)
    layer = (LSTM if kind == "lstm" else GRU)(INPUT, HIDDEN, weight_dropout=0.5)
    x = torch.randn(STEPS, BATCH, INPUT)
    patterns = []
    for _ in range(2):
        layer.zero_grad()
        layer(x)[0].sum().backward()
        patterns.append(layer.weight_hh_l0.grad == 0)
    for dropped in patterns:
        assert 0.35 < dropped.float().mean() < 0.65  # the dropped entries get no gradient
    assert not torch.equal(patterns[0], patterns[1])
    assert not (layer.weight_ih_l0.grad == 0).any()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_variational_input_mask_is_fixed_over_time(kind):
    # A dropped input feature of a sample is dropped at every step: perturbing it at every
    # step changes nothing for that sample, and changes every kept sample.
    torch.manual_seed(0)
    layer = (LSTM if kind == "lstm" else GRU)(INPUT, HIDDEN, input_dropout=0.5)
    x = torch.randn(STEPS, 64, INPUT)
    torch.manual_seed(9)
    before = layer(x)[0]
    x2 = x.clone()
    x2[:, :, 0] += 1.0
    torch.manual_seed(9)
    after = layer(x2)[0]
    unchanged = (before - after).abs().amax(dim=(0, 2)) == 0
    assert 10 < int(unchanged.sum()) < 54


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_zoneout_eval_is_the_expectation(kind):
    # One step from a random state: training gives d*h0 + (1-d)*h_new per unit, so the mean
    # over many draws must approach eval's p*h0 + (1-p)*h_new; with p the only randomness.
    torch.manual_seed(0)
    layer = (LSTM if kind == "lstm" else GRU)(INPUT, HIDDEN, zoneout=0.3)
    x = torch.randn(1, 2, INPUT)
    h0 = torch.randn(1, 2, HIDDEN)
    hx = (h0, torch.randn(1, 2, HIDDEN)) if kind == "lstm" else h0
    layer.eval()
    expected = layer(x, hx)[0]
    plain = layer.to_torch().eval()(x, hx)[0]
    torch.testing.assert_close(expected, 0.3 * h0 + 0.7 * plain)
    layer.train()
    with torch.no_grad():
        draws = torch.stack([layer(x, hx)[0] for _ in range(4000)])
    torch.testing.assert_close(draws.mean(0), expected, atol=0.03, rtol=0)
    kept_old = (draws == h0).float().mean()
    assert 0.25 < kept_old < 0.35


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("shared", [False, True])
def test_gradcheck_float64(kind, shared):
    torch.manual_seed(0)
    layer = (LSTM if kind == "lstm" else GRU)(
        3,
        4,
        num_layers=2,
        bidirectional=True,
        dropout=0.3,
        recurrent_dropout=0.4,
        recurrent_dropout_shared=shared,
        weight_dropout=0.2,
        dtype=torch.float64,
    )
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in layer.named_parameters()]

    def f(inp, *params):
        torch.manual_seed(11)  # the same masks at every evaluation
        return torch.func.functional_call(layer, dict(zip(names, params)), (inp,))[0]

    params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
    assert torch.autograd.gradcheck(f, (x, *params))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bf16_autocast_runs_and_stays_finite(kind):
    layer = (LSTM if kind == "lstm" else GRU)(
        INPUT, HIDDEN, num_layers=2, dropout=0.2, recurrent_dropout=0.3, batch_first=True
    )
    x = torch.randn(BATCH, STEPS, INPUT)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)[0]
        loss = out.float().pow(2).mean()
    loss.backward()
    assert torch.isfinite(out.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    layer.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(layer(x)[0].float()).all()


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_runs_under_bf16_autocast_where_torchs_kernel_cannot(monkeypatch, bidirectional):
    # Where oneDNN has no bf16 LSTM primitive (an AVX2-only CPU), torch.nn.LSTM raises under CPU
    # bf16 autocast, in training and eval; regdrop's LSTM runs those calls itself, in float32
    # where bf16 GEMMs are slow: the numbers of autocast off, every rate 0 included.
    from regdrop.functional import rnn as F_rnn

    monkeypatch.setattr(rnn_module, "_torch_lstm_runs_under_cpu_bf16_autocast", lambda: False)
    monkeypatch.setitem(F_rnn._EXT_STATE, "bf16", False)
    layer = LSTM(INPUT, HIDDEN, num_layers=2, bidirectional=bidirectional, batch_first=True)
    x = torch.randn(BATCH, STEPS, INPUT)
    for training in (True, False):
        layer.train(training)
        expected, (h, c) = layer(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, (h16, c16) = layer(x)
        assert out.dtype == torch.float32
        assert torch.equal(out, expected) and torch.equal(h16, h) and torch.equal(c16, c)
    # a packed input keeps torch's kernel, which runs there
    packed = pack_padded_sequence(x, [STEPS, 5, 3, 2], batch_first=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not layer._torch_kernel_fails_here(packed)


def test_the_bf16_autocast_probe_leaves_the_random_stream_alone():
    rnn_module._torch_lstm_runs_under_cpu_bf16_autocast.cache_clear()
    state = torch.get_rng_state()
    assert isinstance(rnn_module._torch_lstm_runs_under_cpu_bf16_autocast(), bool)
    assert torch.equal(torch.get_rng_state(), state)


def test_repr_shows_every_regularizer_and_pickles():
    layer = LSTM(
        4,
        8,
        num_layers=2,
        dropout=0.2,
        input_dropout=0.1,
        recurrent_dropout=0.25,
        recurrent_dropout_shared=True,
        weight_dropout=0.3,
        zoneout=0.05,
    )
    text = repr(layer)
    for part in (
        "dropout=0.2",
        "input_dropout=0.1",
        "recurrent_dropout=0.25",
        "recurrent_dropout_shared=True",
        "weight_dropout=0.3",
        "zoneout=0.05",
    ):
        assert part in text
    clone = pickle.loads(pickle.dumps(layer))
    assert clone.zoneout == 0.05 and torch.equal(clone.weight_hh_l0, layer.weight_hh_l0)
    assert "recurrent_dropout" not in repr(GRU(4, 8))


@pytest.mark.parametrize("name", ["input_dropout", "recurrent_dropout", "weight_dropout", "zoneout"])
def test_bad_rates_name_the_argument(name):
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\], got 1.5"):
        LSTM(3, 4, **{name: 1.5})
    with pytest.raises(TypeError, match=name):
        GRU(3, 4, **{name: "0.1"})
    layer = LSTM(3, 4)
    setattr(layer, name, -0.1)  # a schedule may assign rates; a bad one is caught at the next call
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\], got -0.1"):
        layer(torch.randn(2, 1, 3))


def test_shape_and_state_errors():
    layer = LSTM(3, 4, recurrent_dropout=0.2)
    with pytest.raises(ValueError, match=r"LSTM: expected input to be 2-D \(unbatched\) or 3-D, got 4-D"):
        layer(torch.randn(2, 2, 2, 3))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        layer(torch.randn(5, 2, 7))
    with pytest.raises(RuntimeError, match="Expected hidden\\[0\\] size"):
        layer(torch.randn(5, 2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(RuntimeError, match="hx and cx should also be 3-D"):
        layer(torch.randn(5, 2, 3), (torch.zeros(2, 4), torch.zeros(2, 4)))
    with pytest.raises(TypeError, match="recurrent_dropout_shared must be a bool"):
        GRU(3, 4, recurrent_dropout_shared="yes")
    with pytest.raises(TypeError, match="module must be a torch.nn.LSTM, got GRU"):
        LSTM.from_torch(torch.nn.GRU(3, 4))
    with pytest.raises(TypeError, match="proj_size"):
        GRU(3, 4, proj_size=2)
    with pytest.warns(UserWarning, match="recurrent_dropout_shared=True has no effect while recurrent_dropout=0"):
        LSTM(3, 4, recurrent_dropout_shared=True)


def test_cells_match_torch_and_use_a_fixed_mask():
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(3, 5)
    cell = LSTMCell(3, 5, recurrent_dropout=0.5)
    cell.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3)
    state = (torch.randn(2, 5), torch.randn(2, 5))
    assert all(torch.equal(a, b) for a, b in zip(ref(x, state), cell(x, state)))
    cell.eval()
    assert cell.recurrent_mask(2) is None
    cell.train()
    mask = cell.recurrent_mask(2)
    assert mask.shape == (2, 5) and set(mask.unique().tolist()) <= {0.0, 2.0}
    h, c = cell(x, state, recurrent_mask=mask)
    h_ref, c_ref = ref(x, (state[0] * mask, state[1]))
    assert torch.equal(h, h_ref) and torch.equal(c, c_ref)

    gref = torch.nn.GRUCell(3, 5)
    gcell = GRUCell(3, 5, recurrent_dropout=0.5)
    gcell.load_state_dict(gref.state_dict())
    torch.testing.assert_close(gcell(x, state[0], recurrent_mask=torch.ones(2, 5)), gref(x, state[0]))
    assert "recurrent_dropout=0.5" in repr(gcell)


@pytest.mark.slow
def test_torch_compile_trains_and_evaluates():
    torch.manual_seed(0)
    layer = LSTM(INPUT, HIDDEN, batch_first=True, recurrent_dropout=0.3, weight_dropout=0.2)
    compiled = torch.compile(layer)
    x = torch.randn(BATCH, STEPS, INPUT)
    compiled(x)[0].sum().backward()
    assert layer.weight_hh_l0.grad is not None
    layer.eval()
    assert torch.allclose(compiled(x)[0], layer.to_torch().eval()(x)[0], atol=1e-6)


@pytest.mark.slow
def test_onnx_export_in_eval_matches():
    # eval is torch's own forward, so torch's ONNX exporter and runtimes see a plain nn.LSTM.
    import io

    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    layer = LSTM(
        INPUT,
        HIDDEN,
        num_layers=2,
        bidirectional=True,
        batch_first=True,
        dropout=0.2,
        recurrent_dropout=0.3,
        weight_dropout=0.2,
    ).eval()
    x = torch.randn(BATCH, STEPS, INPUT)
    buffer = io.BytesIO()
    torch.onnx.export(layer, (x,), buffer, dynamo=False, input_names=["x"])
    (out, *_) = ort.InferenceSession(buffer.getvalue()).run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), layer(x)[0].detach(), atol=1e-5, rtol=1e-5)


def test_variational_input_mask_follows_each_sample_through_a_packed_batch():
    # Packed rows of different steps belong to different samples: each sample must keep one
    # mask over all its steps, whatever its length.
    torch.manual_seed(0)
    layer = GRU(INPUT, HIDDEN, input_dropout=0.5)
    lengths = torch.randint(2, STEPS + 1, (64,))
    x = torch.randn(STEPS, 64, INPUT)
    x2 = x.clone()
    x2[:, :, 0] += 1.0
    outs = []
    for inp in (x, x2):
        torch.manual_seed(9)
        packed = pack_padded_sequence(inp, lengths, enforce_sorted=False)
        outs.append(pad_packed_sequence(layer(packed)[0])[0])
    change = (outs[0] - outs[1]).abs().amax(dim=2)  # (time, batch)
    valid = torch.arange(STEPS)[:, None] < lengths[None, :]
    unchanged = ((change == 0) | ~valid).all(dim=0)
    changed_everywhere = ((change > 0) | ~valid).all(dim=0)
    assert (unchanged | changed_everywhere).all(), "a sample's input mask changed between steps"
    assert 10 < int(unchanged.sum()) < 54


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_packed_and_padded_inputs_get_the_same_masks_under_one_seed(kind):
    # Masks are assigned per sample in the caller's (unsorted) order, as locked_dropout does
    # for a PackedSequence: packing a batch must not change which sample gets which mask. A
    # forward layer at the valid steps of a sample then gives the same numbers either way.
    torch.manual_seed(0)
    layer = (LSTM if kind == "lstm" else GRU)(
        INPUT, HIDDEN, num_layers=2, input_dropout=0.5, dropout=0.5, recurrent_dropout=0.5
    )
    lengths = torch.tensor([3, 7, 2, 5, 7, 1])
    x = torch.randn(STEPS, len(lengths), INPUT)
    torch.manual_seed(4)
    padded_out = layer(x)[0]
    torch.manual_seed(4)
    packed_out = pad_packed_sequence(layer(pack_padded_sequence(x, lengths, enforce_sorted=False))[0])[0]
    valid = torch.arange(STEPS)[:, None] < lengths[None, :]
    torch.testing.assert_close(packed_out[valid], padded_out[valid])


# ------------------------------------------- zoneout and proj_size on the compiled time loop
LOOP_CONFIGS = {
    "lstm zoneout": ("lstm", dict(zoneout=0.3)),
    "lstm zoneout+recurrent, proj": ("lstm", dict(zoneout=0.2, recurrent_dropout=0.3, proj_size=4)),
    "lstm recurrent, proj": ("lstm", dict(recurrent_dropout=0.3, proj_size=4)),
    "gru zoneout": ("gru", dict(zoneout=0.3)),
    "gru zoneout+recurrent": ("gru", dict(zoneout=0.2, recurrent_dropout=0.3)),
}


@pytest.mark.parametrize("config", list(LOOP_CONFIGS))
@pytest.mark.parametrize("training", [True, False])
def test_compiled_loop_and_fallback_agree_under_the_same_seed(config, training, monkeypatch):
    # Packed, bidirectional, two layers: the compiled loop (with the extension) and the
    # reference loop (REGDROP_EXTENSION=0, the fallback without a compiler) draw the same
    # masks from the same seed, so outputs and gradients agree.
    from regdrop.functional import rnn as F_rnn

    if not F_rnn.extension_available():
        pytest.skip("no C++ compiler to build the time loop")
    kind, rates = LOOP_CONFIGS[config]
    if not training and not rates.get("zoneout"):
        pytest.skip("eval without zoneout runs torch's fused kernel")
    torch.manual_seed(0)
    layer = (LSTM if kind == "lstm" else GRU)(INPUT, HIDDEN, num_layers=2, bidirectional=True, **rates)
    layer.train(training)
    x = _input(batch_first=False, batched=True, packed=True)
    calls = {"reference": 0}
    loops = {"lstm": F_rnn._lstm_loop, "gru": F_rnn._gru_loop}

    def counting(*args, **kwargs):
        calls["reference"] += 1
        return loops[kind](*args, **kwargs)

    monkeypatch.setattr(F_rnn, f"_{kind}_loop", counting)
    results = []
    for extension in ("1", "0"):
        monkeypatch.setenv("REGDROP_EXTENSION", extension)
        calls["reference"] = 0
        layer.zero_grad()
        torch.manual_seed(5)
        out, hidden = layer(x)
        states = hidden if kind == "lstm" else (hidden,)
        loss = (out.data**2).sum() + sum((s * (i + 2)).sum() for i, s in enumerate(states))
        loss.backward()
        assert calls["reference"] == (0 if extension == "1" else 4)  # 2 layers x 2 directions
        results.append([out.data, *states, *(p.grad.clone() for p in layer.parameters())])
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    torch.manual_seed(6)
    again = layer(x)[0].data
    assert torch.equal(again, results[1][0]) != training  # a new seed, new zoneout masks (training only)
