"""torch.compile traces through the compiled time loop (fake kernels): one graph, eager's numbers."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
import torch._inductor.config

from regdrop.functional import rnn as F_rnn
from regdrop.nn import GRU, LSTM

needs_extension = pytest.mark.skipif(not F_rnn.extension_available(), reason="no C++ compiler to build the time loop")

CONFIGS = {
    "lstm": (LSTM, dict(recurrent_dropout=0.3, zoneout=0.1, proj_size=4, bidirectional=True)),
    "gru": (GRU, dict(recurrent_dropout=0.3, zoneout=0.1, num_layers=2)),
}


def _model(kind: str):
    cls, kwargs = CONFIGS[kind]
    torch.manual_seed(0)
    rnn = cls(5, 6, batch_first=True, **kwargs)
    width = (kwargs.get("proj_size") or 6) * (2 if kwargs.get("bidirectional") else 1)
    return torch.nn.ModuleDict({"rnn": rnn, "head": torch.nn.Linear(width, 1)})


def _step(model, x):
    out, _ = model["rnn"](x)
    return model["head"](out).square().mean()


def _loss_and_grads(model, fn, x, seed: int):
    model.zero_grad()
    torch.manual_seed(seed)
    loss = fn(model, x)
    loss.backward()
    return [loss.detach(), *(p.grad.clone() for p in model.parameters())]


def _refuse_the_reference_loops(monkeypatch):
    """The compiled op must run, eager and compiled: the reference loops raise if called."""

    def refuse(*args, **kwargs):
        raise AssertionError("the reference loop ran instead of the compiled one")

    monkeypatch.setattr(F_rnn, "_lstm_loop", refuse)
    monkeypatch.setattr(F_rnn, "_gru_loop", refuse)


@needs_extension
@pytest.mark.parametrize("kind", list(CONFIGS))
def test_compile_traces_through_the_loop_in_one_graph(kind, monkeypatch):
    # Dynamo refuses every nn.RNNBase subclass (torch.nn.LSTM too) unless allow_rnn is set.
    torch._dynamo.reset()
    _refuse_the_reference_loops(monkeypatch)
    model = _model(kind).train()
    x = torch.randn(3, 7, 5)
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    with torch._dynamo.config.patch(allow_rnn=True):
        compiled = torch.compile(_step, fullgraph=True, backend=counter)
        eager = _loss_and_grads(model, _step, x, seed=3)
        got = _loss_and_grads(model, compiled, x, seed=3)
        other_seed = _loss_and_grads(model, compiled, x, seed=4)
    assert counter.frame_count == 1  # one graph, compiled once (the second seed reuses it)
    for g, e in zip(got, eager, strict=True):
        # the same masks and loop; eager's input projection runs on oneDNN, the traced one on addmm
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    assert not torch.equal(other_seed[0], eager[0])  # masks come from the seed, not the trace
    torch._dynamo.reset()


@needs_extension
@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CONFIGS))
def test_inductor_matches_eager(kind, monkeypatch):
    # Inductor with torch's own random ops (fallback_random) draws the same masks as eager;
    # its fused element-wise kernels round differently, hence assert_close.
    torch._dynamo.reset()
    _refuse_the_reference_loops(monkeypatch)
    model = _model(kind).train()
    x = torch.randn(3, 7, 5)
    with torch._dynamo.config.patch(allow_rnn=True), torch._inductor.config.patch(fallback_random=True):
        compiled = torch.compile(_step, fullgraph=True)
        eager = _loss_and_grads(model, _step, x, seed=3)
        got = _loss_and_grads(model, compiled, x, seed=3)
    for g, e in zip(got, eager, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()


def test_fake_kernels_give_the_ops_output_shapes():
    # The fake kernels against the real ops, for every optional operand present or absent.
    if not F_rnn.extension_available():
        pytest.skip("no C++ compiler to build the time loop")
    from torch._subclasses.fake_tensor import FakeTensorMode

    ops = torch.ops.regdrop_scan
    n, p, h, bs = 3, 2, 4, [3, 3, 2]
    rows = sum(bs)
    e = torch.empty(0)
    lstm_cases = [
        (torch.randn(rows, 4 * h), torch.randn(n, p), torch.randn(n, h), torch.randn(4 * h, p), e, bs, False,
         torch.randn(p, h), torch.ones(rows, p, dtype=torch.bool), torch.zeros(rows, h, dtype=torch.bool), 0.0),
        (torch.randn(rows, 4 * h), torch.randn(n, h), torch.randn(n, h), torch.randn(4 * h, h), torch.ones(n, h), bs,
         True, None, None, None, 0.3),
        # CPU autocast: bfloat16 xw and w_hh, float32 state, the bias added inside the loop
        (torch.randn(rows, 4 * h).bfloat16(), torch.randn(n, h), torch.randn(n, h), torch.randn(4 * h, h).bfloat16(),
         torch.ones(n, h), bs, False, None, None, None, 0.0, torch.randn(4 * h)),
    ]  # fmt: skip

    def described(ts):
        return [(t.shape, t.dtype) for t in ts]

    for args in lstm_cases:
        real = ops.lstm_forward(*args)
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            fake = ops.lstm_forward(*(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args))
        assert described(fake) == described(real)
        saved = real[3:6]
        bias_grad = len(args) > 11
        back_args = (torch.randn_like(real[0]), torch.randn_like(real[1]), torch.randn_like(real[2]), *saved,
                     args[3], args[4], bs, args[6], *args[7:11], bias_grad)  # fmt: skip
        real_b = ops.lstm_backward(*back_args)
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            fake_b = ops.lstm_backward(*(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in back_args))
        assert described(fake_b) == described(real_b)
    for w_hh in (torch.randn(3 * h, h), torch.randn(3 * h, h).bfloat16()):  # bfloat16: CPU autocast
        gru_args = (torch.randn(rows, 3 * h), torch.randn(n, h), w_hh, torch.randn(3 * h), e, bs, False,
                    torch.ones(rows, h, dtype=torch.bool), 0.0)  # fmt: skip
        real = ops.gru_forward(*gru_args)
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            fake = ops.gru_forward(*(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in gru_args))
        assert described(fake) == described(real)
        back_args = (torch.randn_like(real[0]), torch.randn_like(real[1]), real[2], real[3], real[4], w_hh, e, bs,
                     False, gru_args[7], 0.0)  # fmt: skip
        real_b = ops.gru_backward(*back_args)
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            fake_b = ops.gru_backward(*(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in back_args))
        assert described(fake_b) == described(real_b)
