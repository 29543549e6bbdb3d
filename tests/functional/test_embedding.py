"""Tests of regdrop.functional.embedding: dropping whole rows (words) of an embedding matrix."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from regdrop.functional import dropped_embedding, embedding_dropout


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def weight(v: int = 2000, d: int = 8, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (torch.rand(v, d, generator=gen(99)) + 0.5).to(dtype)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_embedding_dropout_drops_whole_rows_and_scales_the_rest(p: float) -> None:
    w = weight()
    out = embedding_dropout(w, p, generator=gen(1))
    dropped = (out == 0).all(dim=1)
    assert torch.equal(dropped, (out == 0).any(dim=1)), "a row is dropped whole or kept whole"
    rate = dropped.float().mean().item()
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / w.shape[0])
    torch.testing.assert_close(out[~dropped], w[~dropped] / (1 - p))


def test_embedding_dropout_preserves_the_expectation() -> None:
    w = weight(20, 3)
    draws = torch.stack([embedding_dropout(w, 0.3, generator=gen(s)) for s in range(3000)])
    assert ((draws.mean(0) - w).abs() < 5 * w * math.sqrt(0.3 / 0.7 / 3000)).all()


def test_embedding_dropout_gradient_reaches_kept_rows_only() -> None:
    w = weight(50, 4).requires_grad_()
    out = embedding_dropout(w, 0.4, generator=gen(2))
    out.sum().backward()
    kept = (out != 0).all(dim=1)
    assert torch.equal(w.grad[kept], torch.full_like(w.grad[kept], 1 / 0.6))
    assert torch.equal(w.grad[~kept], torch.zeros_like(w.grad[~kept]))


def test_embedding_dropout_edges() -> None:
    w = weight(5, 3)
    assert embedding_dropout(w, 0.5, training=False) is w
    assert embedding_dropout(w, 0.0) is w
    assert torch.equal(embedding_dropout(w, 1.0), torch.zeros_like(w))


@pytest.mark.parametrize("op", [embedding_dropout, lambda w, p: dropped_embedding(torch.tensor([0]), w, p)])
def test_weight_must_be_a_2d_float_matrix(op) -> None:
    expected = r": weight must be 2-D \(num_embeddings, embedding_dim\), got a 1-D tensor of shape \(5,\)$"
    with pytest.raises(ValueError, match=expected):
        op(torch.ones(5), 0.5)
    with pytest.raises(ValueError, match=r"got a 3-D tensor of shape \(2, 3, 4\)$"):
        op(torch.ones(2, 3, 4), 0.5)
    with pytest.raises(TypeError, match=r": weight must be a floating-point tensor, got dtype torch.int64$"):
        op(torch.ones(5, 2, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match=r"^p must be in \[0, 1\], got 2.0$"):
        op(torch.ones(5, 2), 2.0)


def test_dropped_embedding_equals_lookup_in_the_dropped_matrix() -> None:
    tokens = torch.randint(0, 40, (6, 11), generator=gen(3))
    w1 = weight(40, 5).requires_grad_()
    w2 = w1.detach().clone().requires_grad_()
    upstream = torch.randn(6, 11, 5, generator=gen(4))
    y1 = dropped_embedding(tokens, w1, 0.5, generator=gen(5))
    y2 = F.embedding(tokens, embedding_dropout(w2, 0.5, generator=gen(5)))
    assert torch.equal(y1, y2)
    (y1 * upstream).sum().backward()
    (y2 * upstream).sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad)


def test_dropped_embedding_shares_a_word_mask_over_the_batch() -> None:
    vocab = 200
    tokens = torch.arange(vocab).repeat(3, 2)  # every word six times
    y = dropped_embedding(tokens, weight(vocab, 4), 0.5, generator=gen(6))
    dropped = (y == 0).all(dim=-1)
    per_word = dropped.view(-1, vocab)
    assert torch.equal(per_word.amin(0), per_word.amax(0))
    assert 0.3 < per_word[0].float().mean().item() < 0.7


def test_dropped_embedding_eval_is_f_embedding_with_its_options() -> None:
    tokens = torch.tensor([[1, 2, 0], [3, 3, 0]])
    w = weight(5, 4) * 3
    w_renormed = w.clone()
    y = dropped_embedding(tokens, w, 0.5, padding_idx=0, max_norm=1.0, training=False)
    assert torch.equal(y, F.embedding(tokens, w_renormed, padding_idx=0, max_norm=1.0))
    assert torch.equal(w, w_renormed)  # max_norm renormalized the looked-up rows in place, as F.embedding does
    assert (w[1:4].norm(dim=1) <= 1.0 + 1e-6).all() and w[4].norm() > 1.0


def test_dropped_embedding_sparse_and_padding_gradients() -> None:
    tokens = torch.tensor([[1, 2, 0, 4], [3, 3, 0, 4]])
    w = weight(6, 3).requires_grad_()
    y = dropped_embedding(tokens, w, 0.5, padding_idx=0, sparse=True, generator=gen(7))
    y.sum().backward()
    assert w.grad.is_sparse
    grad = w.grad.to_dense()
    assert torch.equal(grad[0], torch.zeros(3))  # padding_idx gets no gradient
    assert torch.equal(grad[5], torch.zeros(3))  # not looked up
    kept = (y != 0).all(dim=-1)
    for word, count in ((1, 1), (2, 1), (3, 2), (4, 2)):
        is_kept = bool(kept[tokens == word].all())
        assert torch.equal(grad[word], torch.full((3,), 2.0 * count if is_kept else 0.0))
