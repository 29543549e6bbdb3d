"""regdrop.nn.LSTM / GRU with learn_rates: concrete (relaxed) masks whose rates are parameters."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

from regdrop.functional import concrete_dropout_regularizer
from regdrop.functional import rnn as F_rnn
from regdrop.functional.rnn import extension_available
from regdrop.nn import GRU, LSTM, concrete_regularization, dropout_rates

needs_extension = pytest.mark.skipif(not extension_available(), reason="no C++ compiler to build the time loop")
LAYERS = {"lstm": LSTM, "gru": GRU}


def _layer(kind: str, **kwargs):
    torch.manual_seed(0)
    settings = dict(num_layers=2, dtype=torch.float64, learn_rates=True, recurrent_dropout=0.3, dropout=0.2)
    settings.update(kwargs)
    return LAYERS[kind](3, 4, **settings)


def _input(layout: str):
    gen = torch.Generator().manual_seed(1)
    if layout == "packed":
        lengths = [5, 2, 4]
        return pack_sequence(
            [torch.randn(n, 3, dtype=torch.float64, generator=gen) for n in lengths], enforce_sorted=False
        )
    return torch.randn(5, 3, 3, dtype=torch.float64, generator=gen)


def _output(result):
    out = result[0]
    return out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out


def _run(layer, x, seed: int = 7):
    torch.manual_seed(seed)
    return _output(layer(x))


@needs_extension
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layout", ["padded", "packed"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_compiled_loop_gives_the_reference_gradients_of_the_rates(kind, layout, bidirectional, monkeypatch):
    layer = _layer(kind, bidirectional=bidirectional)
    x = _input(layout)
    weights = torch.randn(_run(layer, x).shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    params = [p for _, p in layer.named_parameters()]
    compiled = torch.autograd.grad((_run(layer, x) * weights).sum(), params)
    with monkeypatch.context() as patch:
        patch.setattr(F_rnn, "_use_extension", lambda *tensors, **kwargs: False)  # the plain autograd loops
        reference = torch.autograd.grad((_run(layer, x) * weights).sum(), params)
    for (name, _), got, expected in zip(layer.named_parameters(), compiled, reference, strict=True):
        torch.testing.assert_close(got, expected, msg=name)
    logits = dict(zip([n for n, _ in layer.named_parameters()], compiled, strict=True))
    assert logits["recurrent_dropout_logit"].abs().min() > 0  # every layer's rate gets a gradient


@needs_extension
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradcheck_of_the_rates_through_the_compiled_loop(kind):
    layer = _layer(kind, bidirectional=True, input_dropout=0.1)
    x = _input("packed")
    names = [f"{r}_logit" for r in layer.learned_rate_names]
    assert names == ["input_dropout_logit", "dropout_logit", "recurrent_dropout_logit"]

    def f(*logits):
        torch.manual_seed(3)  # the same masks' noise at every call
        return _output(torch.func.functional_call(layer, dict(zip(names, logits, strict=True)), (x,)))

    inputs = tuple(getattr(layer, n).detach().clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_eval_is_exactly_torch(kind):
    layer = _layer(kind, bidirectional=True).eval()
    reference = layer.to_torch().eval()
    assert type(reference) is getattr(torch.nn, kind.upper())
    for layout in ("padded", "packed"):
        x = _input(layout)
        assert torch.equal(_output(layer(x)), _output(reference(x)))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_state_dict_names_and_loading_both_ways(kind):
    layer = _layer(kind)
    keys = list(layer.state_dict())
    torch_keys = list(getattr(torch.nn, kind.upper())(3, 4, num_layers=2).state_dict())
    assert keys == [*torch_keys, "input_dropout_logit", "dropout_logit", "recurrent_dropout_logit"]
    with torch.no_grad():
        layer.recurrent_dropout_logit.fill_(0.5)
    # into torch: the logits are unexpected keys, nothing else
    plain = getattr(torch.nn, kind.upper())(3, 4, num_layers=2, dtype=torch.float64)
    result = plain.load_state_dict(layer.state_dict(), strict=False)
    assert sorted(result.unexpected_keys) == ["dropout_logit", "input_dropout_logit", "recurrent_dropout_logit"]
    assert not result.missing_keys
    # from torch, strictly: the rates keep their start
    fresh = _layer(kind)
    fresh.load_state_dict(plain.state_dict())
    assert fresh.recurrent_dropout == pytest.approx(0.3)
    # round trip, inside a model (prefixed keys), keeps the learned logits
    model, other = torch.nn.Sequential(layer), torch.nn.Sequential(_layer(kind))
    other.load_state_dict(model.state_dict())
    assert other[0].recurrent_dropout == pytest.approx(1 / (1 + math.exp(-0.5)))
    with pytest.raises(RuntimeError, match="Missing key"):  # other missing keys still fail
        other.load_state_dict({k: v for k, v in model.state_dict().items() if "weight_ih_l0" not in k})
    assert pickle.loads(pickle.dumps(layer)).recurrent_dropout == pytest.approx(layer.recurrent_dropout)


def test_rates_read_the_parameters_and_refuse_assignment():
    layer = _layer("lstm", num_layers=3, weight_dropout=0.1, learn_rates=["recurrent_dropout"])
    assert layer.learned_rate_names == ("recurrent_dropout",)
    assert [n for n, _ in layer.named_parameters() if "logit" in n] == ["recurrent_dropout_logit"]
    with torch.no_grad():
        layer.recurrent_dropout_logit.copy_(torch.tensor([0.0, 1.0, -1.0]))
    expected = torch.sigmoid(torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64))
    torch.testing.assert_close(layer.learned_rates["recurrent_dropout"], expected)
    assert layer.recurrent_dropout == pytest.approx(float(expected.mean()))
    assert dropout_rates(layer)["recurrent_dropout"] == pytest.approx(float(expected.mean()))
    with pytest.raises(AttributeError, match=r"recurrent_dropout is learned .* recurrent_dropout_logit"):
        layer.recurrent_dropout = 0.2
    layer.dropout = 0.4  # fixed rates stay settings
    assert layer.dropout == 0.4
    assert "recurrent_dropout=learned[0.5, 0.7311, 0.2689]" in repr(layer)
    assert "dropout=0.4" in repr(layer) and "weight_dropout=0.1" in repr(layer)


def test_a_rate_given_as_zero_starts_at_0_1_and_arguments_are_checked():
    layer = LSTM(3, 4, learn_rates=True)
    assert layer.learned_rate_names == ("input_dropout", "recurrent_dropout")  # no `dropout` with one layer
    assert layer.input_dropout == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"learn_rates must be a bool or a sequence of names from .*got 'zoneout'"):
        LSTM(3, 4, learn_rates=["zoneout"])
    with pytest.raises(TypeError, match="learn_rates must be a bool or a sequence of names.*got str 'dropout'"):
        GRU(3, 4, learn_rates="dropout")
    with pytest.raises(ValueError, match=r"a learned recurrent_dropout must start in \(0, 1\).*got 1.0"):
        LSTM(3, 4, recurrent_dropout=1.0, learn_rates=True)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got -1.0"):
        LSTM(3, 4, learn_rates=True, temperature=-1.0)
    with pytest.warns(UserWarning, match="'dropout' .* no effect with num_layers=1"):
        GRU(3, 4, learn_rates=["dropout", "recurrent_dropout"])
    with pytest.warns(UserWarning, match="temperature has no effect without learned rates"):
        LSTM(3, 4, temperature=0.5)


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_masks_are_relaxed_and_locked_per_sample_and_unit(layout):
    layer = _layer("lstm", input_dropout=0.4, learn_rates=["input_dropout", "recurrent_dropout"])
    x = _input(layout)
    seq = layer._unpack(x)
    torch.manual_seed(0)
    masks = layer._draw_masks(seq, layer._rates())
    input_mask = masks[0].input
    if layout == "padded":
        assert input_mask.shape == (1, 3, 3)  # broadcast over time
    else:
        rows = torch.nn.utils.rnn.PackedSequence(input_mask, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        padded, lengths = torch.nn.utils.rnn.pad_packed_sequence(rows)
        for n, length in enumerate(lengths.tolist()):
            assert (padded[:length, n] == padded[0, n]).all()  # one mask per sample for all its steps
    assert input_mask.requires_grad and not ((input_mask == 0) | (input_mask == input_mask.max())).all()
    recurrent = masks[1].directions[0].recurrent_mask
    assert recurrent.shape == (3, 4) and recurrent.requires_grad
    between = masks[1].input  # `dropout` stays fixed at 0.2: a Bernoulli mask, no gradient
    assert between is not None and not between.requires_grad
    assert set(between.unique().tolist()) <= {0.0, 1 / 0.8}


def test_regularization_sums_the_paper_term_over_layers():
    layer = _layer("lstm", bidirectional=True, input_dropout=0.1, proj_size=2)
    reg = layer.regularization(dropout_regularizer=0.01)
    terms = [concrete_dropout_regularizer(None, torch.tensor(0.1), 3, 0.0, 0.01)]
    terms += [concrete_dropout_regularizer(None, torch.tensor(0.2), 2 * 2, 0.0, 0.01)]
    terms += [concrete_dropout_regularizer(None, torch.tensor(0.3), 2 * 2, 0.0, 0.01)] * 2
    assert float(reg.detach()) == pytest.approx(float(sum(terms)), rel=1e-6)
    reg.backward()
    assert all(float(p) < 0 for p in layer.recurrent_dropout_logit.grad)  # below 0.5: the term pushes p up
    model = torch.nn.Sequential(layer, torch.nn.Linear(4, 1))
    n = 100
    expected = layer.regularization(dropout_regularizer=2 / n)
    assert float(concrete_regularization(model, n)) == pytest.approx(float(expected))
    with pytest.raises(ValueError, match="LSTM.regularization: weight must be None"):
        layer.regularization(torch.ones(2), dropout_regularizer=0.1)
    assert LSTM(3, 4).learned_rates == {}


def test_batch_shared_learned_recurrent_mask_keeps_the_fused_kernel_and_learns():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # recurrent_dropout=0 is fine here: the learned rate starts at 0.1
        layer = LSTM(3, 4, recurrent_dropout_shared=True, learn_rates=["recurrent_dropout"], dtype=torch.float64)
    x = _input("padded")
    seq = layer._unpack(x)
    direction = layer._draw_masks(seq, layer._rates())[0].directions[0]
    assert direction.recurrent_mask is None and direction.weights[1].requires_grad  # folded into W_hh's columns
    _run(layer, x).sum().backward()
    assert layer.recurrent_dropout_logit.grad.abs().sum() > 0
