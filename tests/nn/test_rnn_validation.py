"""regdrop.nn recurrent layers and cells: every bad input gets a named error up front; empty batches."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

from regdrop.functional import bernoulli_mask
from regdrop.nn import GRU, LSTM, GRUCell, LSTMCell

RATES = {
    "off": {},
    "recurrent": {"recurrent_dropout": 0.3, "input_dropout": 0.2, "dropout": 0.2},
    "zoneout": {"zoneout": 0.2},
    "shared": {"recurrent_dropout": 0.3, "recurrent_dropout_shared": True},
}


def _layer(kind: str, rates: dict, **kwargs):
    torch.manual_seed(0)
    return (LSTM if kind == "lstm" else GRU)(3, 4, **kwargs, **rates)


def _state(kind: str, h):
    return (h, h.clone()) if kind == "lstm" else h


def _bad_layer_inputs(kind: str):
    """(description, input, hx, error type, message pattern)."""
    x = torch.randn(5, 2, 3)
    h = torch.zeros(1, 2, 4)
    state = "h_0" if kind == "lstm" else "hx"
    return [
        (
            "packed rows != sum",
            PackedSequence(torch.randn(7, 3), torch.tensor([2, 2, 2, 2])),
            None,
            ValueError,
            r"batch_sizes must sum to the number of rows of the data, 7, got \[2, 2, 2, 2\] \(sum 8\)",
        ),
        (
            "packed increasing",
            PackedSequence(torch.randn(6, 3), torch.tensor([1, 2, 3])),
            None,
            ValueError,
            r"batch_sizes must be non-increasing .* got \[1, 2, 3\]",
        ),
        (
            "packed zero size",
            PackedSequence(torch.randn(4, 3), torch.tensor([2, 2, 0])),
            None,
            ValueError,
            r"every entry of the PackedSequence's batch_sizes must be >= 1, got 0",
        ),
        (
            "packed negative size",
            PackedSequence(torch.randn(4, 3), torch.tensor([5, -1])),
            None,
            ValueError,
            r"must be >= 1, got -1",
        ),
        (
            "packed float sizes",
            PackedSequence(torch.randn(4, 3), torch.tensor([2.0, 2.0])),
            None,
            TypeError,
            r"batch_sizes must be a 1-D integer tensor",
        ),
        (
            "packed 3-D data",
            PackedSequence(torch.randn(4, 1, 3), torch.tensor([2, 2])),
            None,
            ValueError,
            r"data must be 2-D",
        ),
        (
            "packed short sorted_indices",
            PackedSequence(torch.randn(4, 3), torch.tensor([2, 2]), torch.tensor([0]), torch.tensor([0])),
            None,
            ValueError,
            r"sorted_indices must have shape \(2,\)",
        ),
        ("zero-length sequence", torch.randn(0, 2, 3), None, ValueError, r"at least one time step .* got shape"),
        ("not a tensor", [[1.0, 2.0, 3.0]], None, TypeError, r"input must be a Tensor or a PackedSequence, got list"),
        (
            "float64 state",
            x,
            _state(kind, h.double()),
            TypeError,
            rf"{state} must have the dtype of the input, torch.float32, got torch.float64",
        ),
        (
            "float16 state",
            x,
            _state(kind, h.half()),
            TypeError,
            rf"{state} must have the dtype of the input, torch.float32, got torch.float16",
        ),
        ("integer state", x, _state(kind, h.long()), TypeError, rf"{state} must be a floating-point tensor"),
        (
            "state on another device",
            x,
            _state(kind, h.to("meta")),
            ValueError,
            rf"{state} must be on the input's device, cpu, got meta",
        ),
        (
            "state not a tensor",
            x,
            _state(kind, 0.0) if kind == "gru" else (h, "c"),
            TypeError,
            r"must be a Tensor, got (float|str)",
        ),
    ]


CASES = [
    (kind, mode, case)
    for kind in ("lstm", "gru")
    for mode in ("eval", "off", "recurrent", "zoneout", "shared")
    for case in range(len(_bad_layer_inputs(kind)))
]


@pytest.mark.parametrize(("kind", "mode", "case"), CASES)
def test_bad_layer_inputs_get_a_named_error_in_every_mode(kind, mode, case):
    description, x, hx, error, pattern = _bad_layer_inputs(kind)[case]
    layer = _layer(kind, RATES["recurrent" if mode == "eval" else mode])
    layer.train(mode != "eval")
    with pytest.raises(error, match=pattern):
        layer(x, hx)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_lstm_state_must_be_a_pair(kind):
    layer = _layer("lstm", RATES["recurrent"])
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\) of two tensors, got Tensor"):
        layer(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("mode", ["eval", "off", "recurrent", "zoneout", "shared"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_empty_batch_gives_torch_shapes(kind, mode, batch_first):
    kwargs = {"num_layers": 2, "bidirectional": True, "batch_first": batch_first}
    layer = _layer(kind, RATES["zoneout" if mode == "eval" else mode], **kwargs)
    ref = layer.to_torch()
    layer.train(mode != "eval"), ref.train(mode != "eval")
    x = torch.randn(0, 5, 3) if batch_first else torch.randn(5, 0, 3)
    for hx in (None, _state(kind, torch.zeros(4, 0, 4))):
        expected, got = ref(x, hx), layer(x, hx)
        assert got[0].shape == expected[0].shape
        states = zip(got[1], expected[1]) if kind == "lstm" else [(got[1], expected[1])]
        for g, e in states:
            assert g.shape == e.shape


def test_wrong_state_shapes_keep_torchs_clear_errors_before_any_kernel():
    layer = LSTM(3, 4, recurrent_dropout=0.3)
    packed = PackedSequence(torch.randn(4, 3), torch.tensor([2, 2]), torch.tensor([1, 0]), torch.tensor([1, 0]))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 2, 4\), got \[1, 5, 4\]"):
        layer(packed, (torch.zeros(1, 5, 4), torch.zeros(1, 5, 4)))


@pytest.mark.parametrize("cls", [LSTMCell, GRUCell])
def test_cell_errors(cls):
    cell = cls(3, 4, recurrent_dropout=0.5)
    x = torch.randn(2, 3)
    h = torch.zeros(2, 4)
    hx = (h, h) if cls is LSTMCell else h
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: recurrent_mask must have shape \(2, 4\), got \(1, 4\)"):
        cell(x, hx, recurrent_mask=torch.ones(1, 4))
    with pytest.raises(ValueError, match=r"recurrent_mask must have shape \(2, 4\), got \(3, 4\)"):
        cell(x, None, recurrent_mask=torch.ones(3, 4))
    with pytest.raises(
        TypeError,
        match=r"recurrent_mask must have the dtype of the input, torch.float32, "
        r"got torch.float64",
    ):
        cell(x, hx, recurrent_mask=torch.ones(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"recurrent_mask must be a floating-point tensor, got dtype torch.int64"):
        cell(x, hx, recurrent_mask=torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"recurrent_mask must be on the input's device, cpu, got meta"):
        cell(x, hx, recurrent_mask=torch.ones(2, 4, device="meta"))
    with pytest.raises(TypeError, match=r"h must have the dtype of the input, torch.float32, got torch.float64"):
        cell(x, (h.double(), h.double()) if cls is LSTMCell else h.double())
    with pytest.raises(ValueError, match=rf"{name}.recurrent_mask: batch_size must be an int >= 0, got -1"):
        cell.recurrent_mask(-1)
    with pytest.raises(TypeError, match=r"batch_size must be an int >= 0, got float 2.0"):
        cell.recurrent_mask(2.0)
    assert cell.recurrent_mask(0).shape == (0, 4)
    if cls is LSTMCell:
        with pytest.raises(TypeError, match=r"hx must be a tuple \(h, c\)"):
            cell(x, h)


def test_bernoulli_mask_errors():
    with pytest.raises(ValueError, match=r"bernoulli_mask: shape must hold sizes >= 0, got \(2, -1\)"):
        bernoulli_mask((2, -1), 0.5)
    with pytest.raises(TypeError, match=r"bernoulli_mask: shape must be a sequence of ints >= 0, got float 2.5"):
        bernoulli_mask(2.5, 0.5)
    with pytest.raises(TypeError, match=r"shape must be a sequence of ints"):
        bernoulli_mask((2, 1.5), 0.5)
    with pytest.raises(
        TypeError,
        match=r"bernoulli_mask: dtype must be a floating-point torch.dtype .* "
        r"got torch.int64",
    ):
        bernoulli_mask((2, 2), 0.5, dtype=torch.long)
    with pytest.raises(TypeError, match=r"dtype must be a floating-point torch.dtype"):
        bernoulli_mask((2, 2), 1.0, dtype=torch.int32)
    assert bernoulli_mask(torch.Size([0, 3]), 0.5).shape == (0, 3)
