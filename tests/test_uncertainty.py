"""Tests of regdrop.uncertainty: the mc_dropout context and mc_predict."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import regdrop
from regdrop.nn import GaussianNoise, LockedDropout
from tests.callbacks._tiny import AlternatingShift


def _seq_model() -> nn.Sequential:
    """(N, L, C) -> (N, L, 1): LSTM, LockedDropout, BatchNorm over features, Dropout, Linear."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(3, 6, num_layers=2, dropout=0.3, batch_first=True)
            self.drop = LockedDropout(0.2, batch_first=True)
            self.norm = nn.BatchNorm1d(6)
            self.head_drop = nn.Dropout(0.2)
            self.head = nn.Linear(6, 1)

        def forward(self, x: Tensor) -> Tensor:
            out, _ = self.rnn(x)
            out = self.norm(self.drop(out).transpose(1, 2)).transpose(1, 2)
            return self.head(self.head_drop(out))

    return Net()  # type: ignore[return-value]


def _flags(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


# ---------------------------------------------------------------- mc_dropout
def test_mc_dropout_activates_only_dropout() -> None:
    model = _seq_model().train()
    with regdrop.mc_dropout(model) as inside:
        assert inside is model
        flags = _flags(model)
    assert flags == {"": False, "rnn": True, "drop": True, "norm": False, "head_drop": True, "head": False}


def test_batchnorm_stays_in_eval() -> None:
    model = _seq_model()
    model.norm.running_mean.fill_(0.5)
    model.norm.running_var.fill_(2.0)
    before = {k: v.clone() for k, v in model.norm.state_dict().items()}
    x = torch.randn(4, 5, 3)
    with regdrop.mc_dropout(model), torch.no_grad():
        model(x)
    after = model.norm.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key], value), key  # running stats not updated, batches not counted


@pytest.mark.parametrize("start", ["train", "eval", "mixed"])
def test_modes_restored_on_exit(start: str) -> None:
    model = _seq_model()
    model.train(start != "eval")
    if start == "mixed":
        model.norm.eval()
        model.head_drop.eval()
        model.training = False
    before = _flags(model)
    with regdrop.mc_dropout(model):
        pass
    assert _flags(model) == before


def test_modes_restored_on_exception() -> None:
    model = _seq_model().train()
    model.norm.eval()
    before = _flags(model)
    with pytest.raises(RuntimeError, match="boom"), regdrop.mc_dropout(model):
        assert not model.norm.training and model.drop.training
        raise RuntimeError("boom")
    assert _flags(model) == before


def test_nested_blocks_restore_the_flags_once_the_outermost_ends() -> None:
    model = _seq_model().train()
    model.norm.eval()
    before = _flags(model)
    with regdrop.mc_dropout(model):
        inside = _flags(model)
        assert not inside["norm"] and inside["drop"] and not inside[""]
        with regdrop.mc_dropout(model), regdrop.mc_dropout(model.rnn):
            assert _flags(model) == inside  # not the flags from before the outer block
        assert _flags(model) == inside
    assert _flags(model) == before


def test_overlapping_blocks_and_threads_leave_mc_mode_only_at_the_last_exit() -> None:
    import threading

    model = _seq_model().train()
    before = _flags(model)
    first, second = regdrop.mc_dropout(model), regdrop.mc_dropout(model)
    first.__enter__()
    inside = _flags(model)
    second.__enter__()
    first.__exit__(None, None, None)  # not nested: the first to enter leaves first
    assert _flags(model) == inside
    second.__exit__(None, None, None)
    assert _flags(model) == before

    barrier, seen = threading.Barrier(2), []

    def worker() -> None:
        with regdrop.mc_dropout(model):
            barrier.wait()
            seen.append(_flags(model))
            barrier.wait()
        # every thread saw MC mode while any was inside

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [inside, inside]
    assert _flags(model) == before
    assert not regdrop.uncertainty._ACTIVE  # nothing kept once every block ended


def test_default_samples_is_50_as_in_the_readme() -> None:
    import inspect

    assert inspect.signature(regdrop.mc_predict).parameters["samples"].default == 50


def test_gaussian_noise_stays_in_eval() -> None:
    model = nn.Sequential(GaussianNoise(1.0), nn.Dropout(0.1))
    with regdrop.mc_dropout(model):
        assert [m.training for m in model] == [False, True]


def test_mc_dropout_output_is_random_and_eval_is_not() -> None:
    model = _seq_model().eval()
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        with regdrop.mc_dropout(model):
            assert not torch.equal(model(x), model(x))


# ---------------------------------------------------------------- mc_predict
def test_std_positive_with_dropout_shapes_and_no_grad() -> None:
    torch.manual_seed(0)
    model = _seq_model()
    x = torch.randn(7, 5, 3)
    mean, std = regdrop.mc_predict(model, x, samples=10)
    assert mean.shape == std.shape == (7, 5, 1)
    assert (std > 0).all()
    assert not mean.requires_grad and not std.requires_grad
    assert model.training  # a fresh module is in train mode, and stays so


def test_std_zero_without_dropout_and_warning() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    x = torch.randn(6, 3)
    with pytest.warns(UserWarning, match=r"has no dropout that acts .* std is 0: give the model a dropout layer"):
        mean, std = regdrop.mc_predict(model, x, samples=5)
    assert torch.equal(std, torch.zeros_like(std))
    with torch.no_grad():
        assert torch.allclose(mean, model.eval()(x))


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.0)),
        nn.LSTM(3, 3, num_layers=1, dropout=0.0, batch_first=True),
        nn.Sequential(GaussianNoise(0.5)),
    ],
    ids=["rate0", "rnn-1layer", "gaussian-noise"],
)
def test_warning_when_no_rate_acts(model: nn.Module) -> None:
    with pytest.warns(UserWarning, match="has no dropout that acts"):
        _, std = regdrop.mc_predict(model, torch.randn(2, 4, 3), samples=3, transform=_first)
    assert torch.equal(std, torch.zeros_like(std))


def _first(out: object) -> Tensor:
    return out[0] if isinstance(out, tuple) else out  # type: ignore[return-value]


def test_exact_mean_and_std() -> None:
    # +p, -p, +p, -p, ...: mean x and population std p exactly, for any even number of samples
    model = AlternatingShift(0.25)
    x = torch.randn(5, 4, 3)
    mean, std = regdrop.mc_predict(model, x, samples=4)
    assert torch.allclose(mean, x, atol=1e-6)
    assert torch.allclose(std, torch.full_like(x, 0.25), atol=1e-6)


def test_dropout_statistics() -> None:
    # inverted dropout of ones: values 0 or 1/(1-p); mean 1, std sqrt(p / (1 - p))
    torch.manual_seed(0)
    p = 0.2
    mean, std = regdrop.mc_predict(nn.Dropout(p), torch.ones(50, 40), samples=400, batch_size=16)
    assert abs(mean.mean().item() - 1.0) < 0.01
    assert abs(std.mean().item() - math.sqrt(p / (1 - p))) < 0.01


def test_batched_calls_and_samples_are_separate_forward_calls() -> None:
    calls: list[int] = []

    class Recorder(nn.Module):
        rate_names = ("p",)
        p = 0.5

        def forward(self, x: Tensor) -> Tensor:
            calls.append(x.shape[0])
            return x * (torch.rand(()) + 0.5)  # one draw per call, like a batch-shared mask

    x = torch.randn(10, 2, 3)
    mean, std = regdrop.mc_predict(Recorder(), x, samples=3, batch_size=4)
    assert calls == [4, 4, 4, 4, 4, 4, 2, 2, 2]  # chunks of <= batch_size rows, samples each
    assert mean.shape == std.shape == x.shape
    assert (std > 0).all()  # every row got independent draws


def test_model_modes_restored_after_mc_predict() -> None:
    model = _seq_model().eval()
    model.head_drop.train()
    before = _flags(model)
    regdrop.mc_predict(model, torch.randn(3, 4, 3), samples=2)
    assert _flags(model) == before


def test_transform_and_tuple_output() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True)
    x = torch.randn(2, 6, 3)
    with pytest.raises(TypeError, match=r"output must be a Tensor, got tuple; pass transform="):
        regdrop.mc_predict(lstm, x, samples=2)
    mean, std = regdrop.mc_predict(lstm, x, samples=8, transform=lambda out: out[0])
    assert mean.shape == (2, 6, 4) and (std > 0).any()
    probs, _ = regdrop.mc_predict(
        nn.Sequential(nn.Linear(3, 5), nn.Dropout(0.3)),
        torch.randn(4, 3),
        samples=4,
        transform=lambda out: out.softmax(-1),
    )
    assert torch.allclose(probs.sum(-1), torch.ones(4))


def test_transformer_encoder_layer_dropout_is_used() -> None:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.2, batch_first=True)
    _, std = regdrop.mc_predict(layer, torch.randn(3, 5, 8), samples=4)
    assert (std > 0).all()
    assert layer.training


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"samples": -3}, ValueError, r"samples must be an int >= 2 \(a standard deviation needs two passes\), got -3"),
        ({"samples": 1}, ValueError, r"samples must be an int >= 2"),
        ({"samples": 2.5}, TypeError, r"samples must be an int >= 2, got float 2.5"),
        ({"batch_size": 0}, ValueError, r"batch_size must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        regdrop.mc_predict(nn.Dropout(0.5), torch.ones(3, 2), **kwargs)


def test_bad_input() -> None:
    with pytest.raises(TypeError, match=r"input must be a Tensor with the batch first, got list"):
        regdrop.mc_predict(nn.Dropout(0.5), [1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input must have a batch dimension, got a 0-D tensor"):
        regdrop.mc_predict(nn.Dropout(0.5), torch.tensor(1.0))


def test_star_import_of_regdrop_gives_the_working_functions() -> None:
    namespace: dict[str, object] = {}
    exec("from regdrop import *", namespace)
    assert namespace["mc_dropout"] is regdrop.uncertainty.mc_dropout
    torch.manual_seed(0)
    mean, var = namespace["mc_predict"](nn.Dropout(0.5).eval(), torch.ones(3, 200), samples=8)  # type: ignore[operator]
    assert mean.shape == var.shape == (3, 200)
    assert var.gt(0).any()  # the samples differ: dropout was on although the model was in eval


# ---------------------------------------------------------------- regdrop's recurrent layers
@pytest.mark.parametrize("cls", [regdrop.nn.LSTM, regdrop.nn.GRU])
@pytest.mark.parametrize(
    "rates",
    [
        {"recurrent_dropout": 0.3},
        {"recurrent_dropout": 0.3, "recurrent_dropout_shared": True},
        {"weight_dropout": 0.3},
        {"input_dropout": 0.3},
        {"zoneout": 0.3},
    ],
    ids=["recurrent", "recurrent-shared", "weight", "input", "zoneout"],
)
def test_recurrent_masks_are_sampled(cls: type[nn.Module], rates: dict) -> None:
    torch.manual_seed(0)
    layer = cls(3, 4, batch_first=True, **rates).eval()
    mean, std = regdrop.mc_predict(layer, torch.randn(5, 6, 3), samples=6, batch_size=2, transform=_first)
    assert mean.shape == (5, 6, 4)
    # batch-shared masks and weight dropout too: each sample is its own call, so every row varies
    assert (std.amax(dim=(1, 2)) > 0).all()
    assert not layer.training


def test_recurrent_layer_inside_mc_dropout() -> None:
    model = nn.Sequential(regdrop.nn.LSTM(3, 4, recurrent_dropout=0.2), nn.BatchNorm1d(4)).eval()
    with regdrop.mc_dropout(model):
        assert [m.training for m in model] == [True, False]
    assert [m.training for m in model] == [False, False]


def test_single_layer_between_layer_dropout_warns() -> None:
    layer = regdrop.nn.LSTM(3, 4, dropout=0.0, recurrent_dropout=0.0)
    layer.dropout = 0.5  # acts between stacked layers only: nothing to sample with one layer
    with pytest.warns(UserWarning, match=r"has no dropout that acts .* its rates: input_dropout=0.0, dropout=0.5"):
        _, std = regdrop.mc_predict(layer, torch.randn(2, 3, 3), samples=3, transform=_first)
    assert torch.equal(std, torch.zeros_like(std))
