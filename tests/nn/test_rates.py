"""Tests of regdrop.nn.rates: which modules have dropout rates, and reading and setting them."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

import regdrop.nn as rnn_mod
from regdrop.nn import (
    AlphaDropout,
    EmbeddingDropout,
    GaussianDropout,
    GaussianNoise,
    LockedDropout,
    SpatialDropout1d,
    SpatialDropout2d,
    SpatialDropout3d,
    dropout_modules,
    dropout_rates,
    rate_attributes,
    set_dropout_rates,
)


class TwoRates(nn.Module):
    """A user-defined regularizer that declares its rates and keeps a torch Dropout inside."""

    rate_names = ("p_in", "p_out")

    def __init__(self) -> None:
        super().__init__()
        self.p_in = 0.1
        self.p_out = 0.2
        self.inner = nn.Dropout(0.9)  # an implementation detail: not a rate of the model


def _model() -> nn.Module:
    return nn.Sequential(
        nn.LSTM(4, 8, num_layers=2, dropout=0.25, batch_first=True),
        nn.Sequential(nn.Linear(8, 8), LockedDropout(0.3, batch_first=True), nn.BatchNorm1d(8)),
        TwoRates(),
        nn.Dropout(0.5),
        GaussianNoise(0.1),
    )


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (nn.Dropout(0.1), ("p",)),
        (nn.Dropout1d(0.1), ("p",)),
        (nn.Dropout2d(0.1), ("p",)),
        (nn.Dropout3d(0.1), ("p",)),
        (nn.AlphaDropout(0.1), ("p",)),
        (nn.FeatureAlphaDropout(0.1), ("p",)),
        (nn.LSTM(2, 3), ("dropout",)),
        (nn.GRU(2, 3), ("dropout",)),
        (nn.RNN(2, 3), ("dropout",)),
        (nn.MultiheadAttention(4, 2, dropout=0.1), ("dropout",)),
        (LockedDropout(0.1), ("p",)),
        (SpatialDropout1d(0.1), ("p",)),
        (SpatialDropout2d(0.1), ("p",)),
        (SpatialDropout3d(0.1), ("p",)),
        (GaussianDropout(0.1), ("p",)),
        (AlphaDropout(0.1), ("p",)),
        (EmbeddingDropout(nn.Embedding(5, 3), 0.1), ("p",)),
        (GaussianNoise(0.1), ()),
        (TwoRates(), ("p_in", "p_out")),
        (nn.Linear(2, 3), ()),
        (nn.BatchNorm1d(3), ()),
        (nn.LSTMCell(2, 3), ()),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_rate_attributes(module: nn.Module, expected: tuple[str, ...]) -> None:
    assert rate_attributes(module) == expected
    for name in expected:
        assert isinstance(getattr(module, name), float)


def test_dropout_rates_names_and_values() -> None:
    assert dropout_rates(_model()) == {
        "0.dropout": 0.25,
        "1.1.p": 0.3,
        "2.p_in": 0.1,
        "2.p_out": 0.2,
        "3.p": 0.5,
    }


def test_dropout_modules_skips_the_inside_of_declared_regularizers() -> None:
    model = _model()
    names = [name for name, _ in dropout_modules(model)]
    assert names == ["0", "1.1", "2", "3"]
    assert "2.inner" not in names and "4" not in names  # TwoRates owns .inner; GaussianNoise has no rate


def test_root_module_and_shared_modules() -> None:
    assert dropout_rates(nn.Dropout(0.4)) == {"p": 0.4}
    shared = nn.Dropout(0.2)
    model = nn.Sequential(shared, nn.Linear(2, 2), shared)
    assert dropout_rates(model) == {"0.p": 0.2}
    assert dropout_rates(nn.Linear(3, 3)) == {}


def test_names_follow_named_modules() -> None:
    model = _model()
    qualnames = {name for name, _ in model.named_modules()}
    for key in dropout_rates(model):
        assert key.rsplit(".", 1)[0] in qualnames


def test_set_float_sets_every_rate() -> None:
    model = _model()
    assert set_dropout_rates(model, 0.05) == dict.fromkeys(dropout_rates(_model()), 0.05)
    assert model[0].dropout == 0.05 and model[1][1].p == 0.05 and model[3].p == 0.05
    assert model[2].p_in == 0.05 and model[2].p_out == 0.05
    assert model[2].inner.p == 0.9  # inside a declared regularizer: untouched


def test_set_mapping_changes_only_named_rates() -> None:
    model = _model()
    rates = set_dropout_rates(model, {"1.1.p": 0.0, "0.dropout": 1})
    assert rates == {"0.dropout": 1.0, "1.1.p": 0.0, "2.p_in": 0.1, "2.p_out": 0.2, "3.p": 0.5}
    assert isinstance(model[0].dropout, float) and model[0].dropout == 1.0
    assert model[1][1].p == 0.0


def test_set_callable_gets_name_and_rate() -> None:
    model = _model()
    seen: list[tuple[str, float]] = []

    def halve(name: str, rate: float) -> float:
        seen.append((name, rate))
        return rate / 2

    rates = set_dropout_rates(model, halve)
    assert seen == list(dropout_rates(_model()).items())
    assert rates == {name: rate / 2 for name, rate in dropout_rates(_model()).items()}


def test_set_rate_changes_behaviour() -> None:
    # The attribute the tools set is the one the module reads at forward time.
    model = nn.Sequential(LockedDropout(0.5, batch_first=True), nn.Dropout(0.5)).train()
    x = torch.randn(3, 6, 4) + 2.0
    assert not torch.equal(model(x), x)
    set_dropout_rates(model, 0.0)
    assert torch.equal(model(x), x)
    set_dropout_rates(model, {"1.p": 1.0})
    assert torch.equal(model(x), torch.zeros_like(x))


def test_bad_rate_names_the_attribute_and_changes_nothing() -> None:
    model = _model()
    before = dropout_rates(model)
    with pytest.raises(ValueError, match=r"^3\.p must be in \[0, 1\], got 1\.5$"):
        set_dropout_rates(model, {"0.dropout": 0.1, "3.p": 1.5})
    assert dropout_rates(model) == before
    with pytest.raises(ValueError, match=r"2\.p_in must be in \[0, 1\], got -0\.1"):
        set_dropout_rates(model, lambda name, rate: -0.1 if name == "2.p_in" else rate)
    with pytest.raises(TypeError, match=r"0\.dropout must be a float in \[0, 1\], got str"):
        set_dropout_rates(model, lambda name, rate: "0.1")
    assert dropout_rates(model) == before


def test_unknown_name_lists_the_rates() -> None:
    with pytest.raises(
        ValueError,
        match=r"rates names 'rnn\.dropout', which the model does not have; its rates are \['0\.dropout', '1\.1\.p'",
    ):
        set_dropout_rates(_model(), {"rnn.dropout": 0.1})


@pytest.mark.parametrize("rates", [True, "0.1", None, [0.1]])
def test_bad_rates_type(rates: object) -> None:
    with pytest.raises(TypeError, match="rates must be a float, a mapping from rate names to floats, or a callable"):
        set_dropout_rates(_model(), rates)  # type: ignore[arg-type]


def test_model_still_pickles_after_setting() -> None:
    model = _model()
    set_dropout_rates(model, 0.15)
    assert dropout_rates(pickle.loads(pickle.dumps(model))) == dropout_rates(model)


def test_star_import_of_regdrop_nn_gives_the_working_functions() -> None:
    namespace: dict[str, object] = {}
    exec("from regdrop.nn import *", namespace)
    model = _model()
    namespace["set_dropout_rates"](model, 0.25)  # type: ignore[operator]
    rates = namespace["dropout_rates"](model)  # type: ignore[operator]
    assert rates and set(rates.values()) == {0.25}
    assert namespace["rate_attributes"](nn.Dropout(0.1)) == ("p",)  # type: ignore[operator]
    found = namespace["dropout_modules"](model)  # type: ignore[operator]
    assert [name for name, _ in found] == [name for name, _ in dropout_modules(model)]


# ---------------------------------------------------------------- regdrop's recurrent layers
RNN_RATES = ("input_dropout", "dropout", "recurrent_dropout", "weight_dropout", "zoneout")


@pytest.mark.parametrize("cls", [rnn_mod.LSTM, rnn_mod.GRU])
def test_recurrent_layer_rates(cls: type[nn.Module]) -> None:
    layer = cls(3, 4, num_layers=2, batch_first=True, dropout=0.1, recurrent_dropout=0.2)
    model = nn.Sequential(layer, nn.Dropout(0.3))
    assert rate_attributes(model[0]) == RNN_RATES
    assert dropout_rates(model) == {
        "0.input_dropout": 0.0,
        "0.dropout": 0.1,
        "0.recurrent_dropout": 0.2,
        "0.weight_dropout": 0.0,
        "0.zoneout": 0.0,
        "1.p": 0.3,
    }
    set_dropout_rates(model, {"0.recurrent_dropout": 0.5, "0.weight_dropout": 0.25})
    assert model[0].recurrent_dropout == 0.5 and model[0].weight_dropout == 0.25


@pytest.mark.parametrize("cls", [rnn_mod.LSTMCell, rnn_mod.GRUCell])
def test_recurrent_cell_rates(cls: type[nn.Module]) -> None:
    assert dropout_rates(cls(3, 4, recurrent_dropout=0.2)) == {"recurrent_dropout": 0.2, "zoneout": 0.0}


def test_setting_recurrent_rates_changes_the_layer() -> None:
    torch.manual_seed(0)
    layer = rnn_mod.LSTM(3, 5, batch_first=True, recurrent_dropout=0.5, weight_dropout=0.3)
    x = torch.randn(2, 7, 3)
    expected = layer.eval()(x)[0]
    layer.train()
    assert not torch.allclose(layer(x)[0], expected)
    set_dropout_rates(layer, 0.0)  # every rate off: training computes what evaluation does
    assert torch.allclose(layer(x)[0], expected, atol=1e-6)
