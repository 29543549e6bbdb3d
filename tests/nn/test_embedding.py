"""Tests specific to regdrop.nn.EmbeddingDropout (the common checks are in test_common.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import regdrop
from regdrop.functional import embedding_dropout
from regdrop.nn import EmbeddingDropout


def test_usage_from_the_issue() -> None:
    tokens = torch.randint(0, 100, (4, 12))
    out = regdrop.nn.EmbeddingDropout(nn.Embedding(100, 16), p=0.1)(tokens)
    assert out.shape == (4, 12, 16)


def test_training_is_lookup_in_the_row_dropped_matrix() -> None:
    module = EmbeddingDropout(nn.Embedding(50, 6), p=0.4)
    tokens = torch.randint(0, 50, (5, 7))
    torch.manual_seed(0)
    y = module(tokens)
    torch.manual_seed(0)
    assert torch.equal(y, F.embedding(tokens, embedding_dropout(module.weight, 0.4)))


def test_eval_is_exactly_the_wrapped_embedding() -> None:
    emb = nn.Embedding(20, 4, padding_idx=0)
    module = EmbeddingDropout(emb, p=0.5).eval()
    tokens = torch.tensor([[0, 3, 5], [7, 7, 19]])
    assert torch.equal(module(tokens), emb(tokens))


def test_whole_words_dropped_at_rate_p() -> None:
    torch.manual_seed(1)
    vocab = 500
    module = EmbeddingDropout(nn.Embedding(vocab, 3), p=0.3)
    tokens = torch.arange(vocab).repeat(4, 1)  # every word in every sequence
    dropped = (module(tokens) == 0).all(dim=-1)
    assert torch.equal(dropped.amin(dim=0), dropped.amax(dim=0))
    assert abs(dropped[0].float().mean().item() - 0.3) < 0.07


def test_weight_is_the_wrapped_parameter_and_can_be_tied() -> None:
    emb = nn.Embedding(30, 8)
    module = EmbeddingDropout(emb, p=0.2)
    assert module.weight is emb.weight
    assert list(module.state_dict()) == ["embedding.weight"]
    head = nn.Linear(8, 30, bias=False)
    head.weight = module.weight
    logits = head(module(torch.randint(0, 30, (2, 5))))
    logits.sum().backward()
    assert emb.weight.grad is not None and torch.isfinite(emb.weight.grad).all()


def test_options_of_the_wrapped_embedding_are_used() -> None:
    torch.manual_seed(2)
    module = EmbeddingDropout(nn.Embedding(10, 3, padding_idx=0, sparse=True, max_norm=1.0), p=0.5)
    with torch.no_grad():
        module.weight.mul_(10)
    tokens = torch.tensor([[0, 1, 2, 2]])
    module(tokens).sum().backward()
    assert module.weight.grad.is_sparse
    assert torch.equal(module.weight.grad.to_dense()[0], torch.zeros(3))
    assert (module.weight[:3].norm(dim=1) <= 1.0 + 1e-5).all()  # max_norm renormalized the looked-up rows
    assert (module.weight[3:].norm(dim=1) > 1.0).all()


def test_wrapping_something_else_is_refused() -> None:
    with pytest.raises(TypeError, match=r"^embedding must be a torch.nn.Embedding, got Linear$"):
        EmbeddingDropout(nn.Linear(3, 3), p=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\], got 1.2$"):
        EmbeddingDropout(nn.Embedding(3, 3), p=1.2)
