"""Embedding dropout: drop whole rows of an embedding matrix, i.e. whole words."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from regdrop.functional._validation import check_rate, check_tensor, shape_str
from regdrop.functional.dropout import bernoulli_mask, shared_dropout

__all__ = ["embedding_dropout", "dropped_embedding"]


def _check_weight(weight: object, who: str) -> Tensor:
    weight = check_tensor(weight, who, name="weight")
    if weight.dim() != 2:
        raise ValueError(f"{who}: weight must be 2-D (num_embeddings, embedding_dim), got a {shape_str(weight)}")
    return weight


def embedding_dropout(
    weight: Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Drop whole rows of an embedding matrix, scaling the kept rows by ``1 / (1 - p)``.

    Gal & Ghahramani (2016), Merity et al. (2017): dropping row :math:`v` of the matrix drops
    word :math:`v` everywhere it occurs in the batch,

    .. math::
        \tilde W_{v,:} = W_{v,:} \, m_v, \qquad m_v = \frac{b_v}{1 - p},
        \quad b_v \sim \mathrm{Bernoulli}(1 - p).

    Use the result in place of the weight, e.g. ``F.embedding(tokens, embedding_dropout(W, p))``;
    :func:`dropped_embedding` does that lookup without scaling the whole matrix. It is
    :func:`~regdrop.functional.shared_dropout` with ``shared_dims=1``. With ``p == 1`` the
    result is zeros; with ``p == 0`` or ``training=False`` ``weight`` is returned unchanged.

    Args:
        weight: the embedding matrix.
        p: probability of a row (a word) being zeroed, in [0, 1]. Default: 0.5.
        training: apply dropout if True, return ``weight`` if False. Default: True.
        generator: random generator to draw the mask from. Default: the global one.

    Shape:
        - Weight: :math:`(V, D)`, :math:`V` the vocabulary size, :math:`D` the embedding size.
        - Output: :math:`(V, D)`.

    Raises:
        TypeError: if ``weight`` is not a floating-point tensor, or ``p`` is not a real number.
        ValueError: if ``p`` is outside [0, 1], or ``weight`` is not 2-D.

    Example:
        >>> import torch
        >>> from regdrop.functional import embedding_dropout
        >>> w = torch.randn(1000, 8)
        >>> w_dropped = embedding_dropout(w, p=0.25)
        >>> kept = w_dropped.ne(0).all(dim=1)  # a row is kept whole or zeroed whole
        >>> bool(w_dropped.eq(0).all(dim=1).logical_or(kept).all())
        True
        >>> torch.allclose(w_dropped[kept], w[kept] / 0.75)
        True
    """
    _check_weight(weight, "embedding_dropout")
    return shared_dropout(weight, p, shared_dims=1, training=training, generator=generator)


def dropped_embedding(
    input: Tensor,
    weight: Tensor,
    p: float = 0.5,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
    training: bool = True,
    generator: torch.Generator | None = None,
    *,
    who: str = "dropped_embedding",
) -> Tensor:
    r"""Look up embeddings with embedding dropout: ``F.embedding`` on a matrix with dropped rows.

    Equal to ``F.embedding(input, embedding_dropout(weight, p), ...)`` (same values and
    gradients under the same seed), computed as

    .. math::
        y_{i} = W_{x_i,:} \, m_{x_i}, \qquad m_v = \frac{b_v}{1 - p},
        \quad b_v \sim \mathrm{Bernoulli}(1 - p),

    so only the looked-up rows are scaled and ``sparse`` gradients and ``max_norm`` (which
    renormalizes rows of ``weight`` in place) behave as with :func:`torch.nn.functional.embedding`.
    One mask over the vocabulary is drawn per call and shared by every position of every
    sequence in ``input``. With ``p == 0`` or ``training=False`` it is ``F.embedding``.

    Args:
        input: token indices.
        weight: the embedding matrix.
        p: probability of a word being dropped, in [0, 1]. Default: 0.5.
        padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse: as in
            :func:`torch.nn.functional.embedding`.
        training: apply dropout if True. Default: True.
        generator: random generator to draw the mask from. Default: the global one.
        who: the name that prefixes the errors about ``weight`` (a module passes its class
            name). Default: the function's name.

    Shape:
        - Input: :math:`(*)`, integer indices in :math:`[0, V)`.
        - Weight: :math:`(V, D)`.
        - Output: :math:`(*, D)`.

    Raises:
        TypeError: if ``weight`` is not a floating-point tensor, or ``p`` is not a real number.
        ValueError: if ``p`` is outside [0, 1], or ``weight`` is not 2-D.

    Example:
        >>> import torch
        >>> from regdrop.functional import dropped_embedding
        >>> w = torch.randn(100, 16)
        >>> tokens = torch.tensor([[3, 7, 3, 3]])
        >>> y = dropped_embedding(tokens, w, p=0.5)
        >>> y.shape
        torch.Size([1, 4, 16])
        >>> torch.equal(y[0, 0], y[0, 2])  # word 3 is kept or dropped at every position
        True
    """
    _check_weight(weight, who)
    p = check_rate("p", p)
    out = F.embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
    if not training or p == 0.0:
        return out
    mask = bernoulli_mask((weight.shape[0], 1), p, dtype=out.dtype, device=weight.device, generator=generator)
    return out * mask[input]
