"""Embedding dropout: an embedding lookup that drops whole words."""

from __future__ import annotations

from torch import Tensor, nn

from regdrop.functional._validation import check_rate
from regdrop.functional.embedding import dropped_embedding

__all__ = ["EmbeddingDropout"]


class EmbeddingDropout(nn.Module):
    r"""Wrap an :class:`torch.nn.Embedding` so that training drops whole rows (whole words).

    Gal & Ghahramani (2016), Merity et al. (2017). In training, one Bernoulli draw per row of
    the embedding matrix :math:`W` (per word of the vocabulary) is made at every call and
    shared by every occurrence of that word in the batch:

    .. math::
        y_{i} = W_{x_i,:} \, \frac{b_{x_i}}{1 - p}, \qquad b_v \sim \mathrm{Bernoulli}(1 - p),

    i.e. the lookup in ``W`` with its dropped rows zeroed and the kept rows scaled (see
    :func:`regdrop.functional.dropped_embedding`). In ``eval()`` mode it is exactly the
    wrapped embedding. The wrapped module keeps its parameter and its own settings
    (``padding_idx``, ``max_norm``, ``sparse``, ...), so the state_dict holds
    ``embedding.weight``, and ``self.weight`` is that same parameter (to tie it to an
    output layer).

    Args:
        embedding: the embedding to wrap; it becomes the submodule ``embedding``.
        p: probability of a word being dropped, in [0, 1]. A plain attribute, which may be
            changed between calls. Default: 0.5.

    Shape:
        - Input: :math:`(*)`, integer indices in :math:`[0, V)`.
        - Output: :math:`(*, D)`, with :math:`D` the embedding size.

    Raises:
        TypeError: if ``embedding`` is not a ``torch.nn.Embedding`` or ``p`` is not a real number.
        ValueError: if ``p`` is outside [0, 1].

    Example:
        >>> import torch
        >>> from regdrop.nn import EmbeddingDropout
        >>> emb = EmbeddingDropout(torch.nn.Embedding(100, 16), p=0.1)
        >>> emb
        EmbeddingDropout(
          p=0.1
          (embedding): Embedding(100, 16)
        )
        >>> tokens = torch.tensor([[5, 9, 5], [9, 9, 2]])
        >>> y = emb(tokens)
        >>> y.shape
        torch.Size([2, 3, 16])
        >>> torch.equal(y[0, 1], y[1, 0])  # word 9 kept or dropped everywhere in the batch
        True
    """

    rate_names: tuple[str, ...] = ("p",)

    def __init__(self, embedding: nn.Embedding, p: float = 0.5) -> None:
        super().__init__()
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(f"embedding must be a torch.nn.Embedding, got {type(embedding).__name__}")
        self.embedding = embedding
        self.p = check_rate("p", p)

    @property
    def weight(self) -> Tensor:
        """The wrapped embedding's weight, of shape ``(num_embeddings, embedding_dim)``."""
        return self.embedding.weight

    def forward(self, input: Tensor) -> Tensor:
        e = self.embedding
        return dropped_embedding(
            input,
            e.weight,
            self.p,
            e.padding_idx,
            e.max_norm,
            e.norm_type,
            e.scale_grad_by_freq,
            e.sparse,
            self.training,
            who=type(self).__name__,
        )

    def extra_repr(self) -> str:
        return f"p={self.p}"
