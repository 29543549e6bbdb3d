"""Tests of regdrop.nn.concrete: learned rates, their regularizer and how the rate tools treat them."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import regdrop
from regdrop.nn import (
    ConcreteDropout,
    ConcreteLockedDropout,
    concrete_modules,
    concrete_regularization,
    dropout_rates,
    learned_rate_keys,
    set_dropout_rates,
)


@pytest.mark.parametrize("cls", [ConcreteDropout, ConcreteLockedDropout])
def test_errors(cls: type[nn.Module]) -> None:
    for p in (0.0, 1.0):
        with pytest.raises(ValueError, match=rf"p must be in \(0, 1\) for a learned rate .*got {p}"):
            cls(4, p=p)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        cls(4, p=1.5)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got -1.0"):
        cls(4, temperature=-1)
    with pytest.raises(ValueError, match="num_features must be an int >= 1, got 0"):
        cls(0)
    with pytest.raises(ValueError, match=f"{cls.__name__}: the input's last dim must be num_features=4"):
        cls(4)(torch.ones(3, 2, 5))


def test_rate_is_read_only_and_learned_in_logit_space() -> None:
    drop = ConcreteDropout(5, p=0.25, per_unit=True)
    assert drop.p_logit.shape == (5,)
    assert torch.allclose(drop.rates, torch.full((5,), 0.25))
    assert drop.p == pytest.approx(0.25)
    with pytest.raises(AttributeError):
        drop.p = 0.5  # type: ignore[misc]
    assert "p_logit" in drop.state_dict()


def test_packed_sequence_keeps_one_mask_per_sample() -> None:
    drop = ConcreteLockedDropout(4, p=0.5, batch_first=True)
    padded = torch.ones(3, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(drop(packed), batch_first=True)
    for n, length in enumerate(lengths.tolist()):
        rows = out[n, :length]
        assert torch.equal(rows, rows[:1].expand_as(rows))
    assert drop.eval()(packed) is packed


def _fit_rate(noise_hurts: bool, steps: int = 150) -> float:
    """Train a linear model behind a ConcreteDropout with the regularizer; return the learned rate."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    # Noise hurts: the target is an exact linear function of every feature, so each dropped
    # feature costs error. Noise is fine: the target ignores the features.
    y = x.sum(1, keepdim=True) if noise_hurts else torch.zeros(256, 1)
    torch.manual_seed(0)
    model = nn.Sequential(ConcreteDropout(8, p=0.2), nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y) + concrete_regularization(model, dataset_size=len(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
    drop = model[0]
    assert isinstance(drop, ConcreteDropout)
    return drop.p


def test_rate_goes_down_where_dropout_hurts_and_up_where_noise_is_free() -> None:
    assert _fit_rate(noise_hurts=True) < 0.1
    assert _fit_rate(noise_hurts=False) > 0.3  # the entropy term pulls it towards 0.5


def test_regularization_value_and_model_sum() -> None:
    a, b = ConcreteDropout(10, p=0.1), ConcreteLockedDropout(4, p=0.3, per_unit=True)
    model = nn.Sequential(a, nn.Linear(10, 4), b)
    assert [name for name, _ in concrete_modules(model)] == ["0", "2"]

    def neg_h(p: float) -> float:
        return p * math.log(p) + (1 - p) * math.log(1 - p)

    want = 2 / 100 * (10 * neg_h(0.1) + 4 * neg_h(0.3))
    assert float(concrete_regularization(model, 100).detach()) == pytest.approx(want, rel=1e-5)
    w = torch.ones(3, 10)
    got = a.regularization(w, weight_regularizer=0.5, dropout_regularizer=0.0)
    assert float(got) == pytest.approx(0.5 * 30 / 0.9, rel=1e-5)
    assert float(concrete_regularization(nn.Linear(2, 2), 10)) == 0.0
    with pytest.raises(ValueError, match="dataset_size must be an int >= 1, got 0"):
        concrete_regularization(model, 0)


def test_set_dropout_rates_leaves_learned_rates_alone() -> None:
    model = nn.Sequential(nn.Dropout(0.1), ConcreteDropout(4, p=0.2))
    assert learned_rate_keys(model) == ["1.p"]
    assert dropout_rates(model) == pytest.approx({"0.p": 0.1, "1.p": 0.2})
    with pytest.warns(UserWarning, match=r"leaving the learned rates \['1.p'\]"):
        rates = set_dropout_rates(model, 0.4)
    assert rates == pytest.approx({"0.p": 0.4, "1.p": 0.2})
    with pytest.warns(UserWarning, match="learned rates"):
        set_dropout_rates(model, lambda name, rate: rate / 2)
    assert model[1].p == pytest.approx(0.2)
    with pytest.raises(ValueError, match="names '1.p', a learned rate .* cannot be set"):
        set_dropout_rates(model, {"1.p": 0.3})
    set_dropout_rates(model, {"0.p": 0.3})  # naming only set rates: no warning, no error


def test_mc_predict_samples_the_learned_rates() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), ConcreteDropout(16, p=0.3), nn.Linear(16, 1)).eval()
    x = torch.randn(5, 3)
    mean, std = regdrop.mc_predict(model, x, samples=30)
    assert mean.shape == (5, 1) and (std > 0).all()
    assert not model[2].training  # put back
    assert torch.equal(model(x), model(x))
