"""Tests of regdrop.functional.concrete: the relaxed mask, its gradient, and the paper's regularizer."""

from __future__ import annotations

import math

import pytest
import torch

import regdrop.functional as RF


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.6])
def test_mask_rounds_to_bernoulli_p_and_keeps_the_mean(p: float) -> None:
    logit = torch.tensor(math.log(p / (1 - p)), dtype=torch.float64)
    n = 200_000
    m = RF.concrete_mask((n,), logit, temperature=0.1, generator=_gen())
    # P(z > 1/2) = P(l + L > 0) = sigmoid(l) = p exactly, at any temperature.
    dropped = (m < 0.5 / (1 - p)).double().mean()
    assert abs(float(dropped) - p) < 4 * math.sqrt(p * (1 - p) / n)
    # As t -> 0 the mask is the inverted-dropout mask, whose mean is 1.
    cold = RF.concrete_mask((n,), logit, temperature=1e-3, generator=_gen(1))
    assert abs(float(cold.mean()) - 1.0) < 4 * math.sqrt(p / (1 - p) / n) + 1e-3


def test_gradient_reaches_the_logit_and_gradcheck() -> None:
    x = torch.rand(5, 4, 3, dtype=torch.float64) + 0.5
    logit = torch.tensor([-1.0, 0.2, 0.5], dtype=torch.float64, requires_grad=True)

    def f(x: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
        return RF.concrete_dropout(x, logit, 0.5, shared_dims=1, generator=_gen(3))

    y = f(x, logit)
    mask = y / x
    assert torch.allclose(mask, mask[:, :1].expand_as(mask))  # shared over dim 1
    y.sum().backward()
    assert logit.grad is not None and (logit.grad != 0).all()
    assert torch.autograd.gradcheck(f, (x.requires_grad_(True), logit), eps=1e-6, atol=1e-5)


def test_eval_is_identity_and_draws_nothing() -> None:
    x = torch.randn(3, 4)
    state = torch.get_rng_state()
    assert RF.concrete_dropout(x, torch.tensor(0.0), training=False) is x
    assert torch.equal(torch.get_rng_state(), state)


def test_errors() -> None:
    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got 0.0"):
        RF.concrete_dropout(x, torch.tensor(0.0), temperature=0)
    with pytest.raises(TypeError, match="temperature must be a number"):
        RF.concrete_dropout(x, torch.tensor(0.0), temperature="hot")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="p_logit must be a Tensor"):
        RF.concrete_dropout(x, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p_logit of shape \(4,\) does not broadcast"):
        RF.concrete_dropout(x, torch.zeros(4))
    with pytest.raises(ValueError, match="input_dim must equal the number of per-unit rates 2, got 3"):
        RF.concrete_dropout_regularizer(None, torch.tensor([0.1, 0.2]), 3, 0.0, 1.0)
    with pytest.raises(ValueError, match="weight_regularizer must be a finite number >= 0"):
        RF.concrete_dropout_regularizer(None, torch.tensor(0.1), 3, -1.0, 1.0)


def test_regularizer_matches_the_paper() -> None:
    p = torch.tensor(0.2, dtype=torch.float64)
    w = torch.randn(5, 4, dtype=torch.float64)
    got = RF.concrete_dropout_regularizer(w, p, 4, 0.01, 0.5)
    want = 0.01 * w.pow(2).sum() / (1 - p) + 0.5 * 4 * (p * p.log() + (1 - p) * (1 - p).log())
    assert torch.allclose(got, want)
    # per unit: column k of W goes with rate k
    pu = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    got = RF.concrete_dropout_regularizer(w, pu, 4, 0.01, 0.5)
    want = (0.01 * w.pow(2).sum(0) / (1 - pu) + 0.5 * (pu * pu.log() + (1 - pu) * (1 - pu).log())).sum()
    assert torch.allclose(got, want)


def test_regularizer_sign_pushes_the_rate_towards_one_half() -> None:
    for start, direction in ((0.1, 1.0), (0.9, -1.0)):
        p = torch.tensor(start, requires_grad=True)
        RF.concrete_dropout_regularizer(None, p, 1, 0.0, 1.0).backward()
        assert p.grad is not None and float(-p.grad) * direction > 0  # a descent step moves p towards 0.5
