"""recipes/vowels_gru.py, its data: the .ts reader, the sets sktime ships, the official split, 1-NN DTW."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from common.files import MissingDataError
from tests.recipes._uninstall import uninstall  # noqa: F401
from vowels_gru import UCRDataModule, load_ucr, one_nn_dtw_accuracy, read_ts, sktime_ts_names


def test_japanese_vowels_is_the_published_set() -> None:
    train, test = load_ucr("JapaneseVowels")
    assert (len(train.sequences), len(test.sequences)) == (270, 370)
    assert train.class_names == [str(k) for k in range(1, 10)]
    assert Counter(train.labels) == {str(k): 30 for k in range(1, 10)}
    assert Counter(test.labels)["3"] == 88 and Counter(test.labels)["6"] == 24  # 24 to 88 test cases per speaker
    lengths = [s.shape[0] for s in train.sequences + test.sequences]
    assert min(lengths) == 7 and max(lengths) == 29
    assert all(s.shape[1] == 12 and s.dtype == torch.float32 for s in train.sequences + test.sequences)
    # the first value of the first case's first channel, as written in the file
    assert train.sequences[0][0, 0].item() == pytest.approx(1.860936)
    assert train.sequences[0][0, 1].item() == pytest.approx(-0.207383)  # second channel, first step


def test_sktime_names_are_the_classification_sets() -> None:
    names = sktime_ts_names()
    assert {"JapaneseVowels", "BasicMotions", "GunPoint", "ArrowHead"} <= set(names)
    assert "Covid3Month" not in names and "Tecator" not in names  # regression problems
    train, test = load_ucr("BasicMotions")
    assert (len(train.sequences), len(test.sequences)) == (40, 40)
    assert train.sequences[0].shape == (100, 6) and train.class_names == ["Standing", "Running", "Walking", "Badminton"]


def test_data_module_keeps_the_official_test_set() -> None:
    dm = UCRDataModule("JapaneseVowels", val_fraction=0.15, seed=3)
    splits = dm.splits
    assert [len(splits[k]) for k in ("train", "val", "test")] == [230, 40, 370]  # 15% of 270, rounded
    assert dm.num_classes == 9 and dm.num_features == 12
    counts = torch.bincount(splits["val"].labels).tolist()
    assert sorted(counts) == [4] * 5 + [5] * 4  # stratified: 40 cases over 9 speakers of 30 training cases each
    train, test = load_ucr("JapaneseVowels")
    assert splits["test"].labels.tolist() == [int(label) - 1 for label in test.labels]
    # standardized with the training split's statistics: train steps have mean 0 and std 1 per channel
    steps = torch.cat(splits["train"].sequences)
    assert torch.allclose(steps.mean(0), torch.zeros(12), atol=1e-5) and torch.allclose(
        steps.std(0, correction=0), torch.ones(12), atol=1e-5
    )
    # validation and test use the training split's numbers, not their own
    val_steps = torch.cat(splits["val"].sequences)
    assert not torch.allclose(val_steps.mean(0), torch.zeros(12), atol=1e-3)
    raw = UCRDataModule("JapaneseVowels", standardize=False).splits["test"].sequences[0]
    assert torch.equal(raw, test.sequences[0])
    x, lengths, y = next(iter(dm.test_dataloader()))
    assert x.shape[0] == 32 and x.shape[2] == 12 and int(lengths.max()) == x.shape[1]


HEADER = "@problemName Toy\n@timestamps false\n@univariate false\n@dimensions 2\n@classLabel true a b\n@data\n"


def write_ts(path: Path, body: str, header: str = HEADER) -> Path:
    path.write_text("# a comment\n" + header + body)
    return path


def test_user_files(tmp_path: Path) -> None:
    write_ts(tmp_path / "Toy_TRAIN.ts", "1,2,3:4,5,6:a\n1,2:3,4:b\n5,6:7,8:a\n6,7:8,9:b\n")
    write_ts(tmp_path / "Toy_TEST.ts", "9,9:9,9:b\n")
    dm = UCRDataModule(str(tmp_path / "Toy_TRAIN.ts"), val_fraction=0.5, standardize=False)
    assert [len(dm.splits[k]) for k in ("train", "val", "test")] == [2, 2, 1]
    assert dm.splits["test"].labels.tolist() == [1] and dm.class_names == ["a", "b"]
    assert dm.splits["test"].sequences[0].tolist() == [[9.0, 9.0], [9.0, 9.0]]
    # cases of different lengths keep their own lengths, time first, channels second
    train = read_ts(tmp_path / "Toy_TRAIN.ts")
    assert [tuple(s.shape) for s in train.sequences] == [(3, 2), (2, 2), (2, 2), (2, 2)]
    assert train.sequences[0][:, 1].tolist() == [4.0, 5.0, 6.0] and train.labels == ["a", "b", "a", "b"]


@pytest.mark.parametrize(
    ("body", "header", "message"),
    [
        ("1,2:3,4:a\n1,2:3,4:c\n", None, r"case 2: class label must be one of \['a', 'b'\], got 'c'"),
        ("1,2:3:a\n", None, r"case 1: the channels of a case must have one length, got \[1, 2\]"),
        ("1,2:3,4:a\n1,2:a\n", None, r"sktime cannot read it .*inconsistent number of dimensions"),
        ("1,x:3,4:a\n", None, r"sktime cannot read it .*could not convert string to float: 'x'"),
        ("1,?:3,4:a\n", None, r"case 1: missing values \(\? or NaN\) are not supported"),
        ("", None, r"sktime cannot read it .*no data"),
        ("1:2:a\n", "@classLabel true a b\n@data\n", r"sktime cannot read it .*full set of metadata"),
        ("1:2:a\n", "@timeStamps true\n@data\n", r"timestamps are not supported"),
        ("1:2:0.5\n", "@targetLabel true\n@data\n", r"@classLabel true <labels>, got no @classLabel line"),
        ("1:2:a\n", "@classLabel maybe a\n@data\n", r"@classLabel true <labels>, got @classLabel maybe a"),
        # values float32 cannot hold, and a case without steps, would reach the scaler or the GRU
        ("1,2:3,4:a\n1,inf:3,4:b\n", None, r"case 2: values must be finite float32 numbers .*, got inf"),
        ("1,1e39:3,4:a\n", None, r"case 1: values must be finite float32 numbers .*, got inf"),
        ("::a\n1,2:3,4:b\n", None, r"case 1: a case must have at least one time step, got none"),
        # sktime lower-cases the file: labels that differ in case only would become one class
        ("1,2:3,4:a\n", HEADER.replace("true a b", "true Walk walk"), r"ignoring case .*'Walk' and 'walk'"),
        ("1,2:3,4:a\n", HEADER.replace("true a b", "true a b a"), r"each label once, ignoring case .*'a' and 'a' in"),
        # a header that says one shape and a file that holds another
        ("1,2:3,4:a\n", HEADER.replace("@univariate false\n@dimensions 2", "@univariate true"),
         r"case 1: the header says @univariate true \(1 channel\), the case has 2 channel\(s\)"),
        ("1,2:3,4:a\n", HEADER.replace("@dimensions 2", "@dimensions 3"),
         r"case 1: the header says @dimensions 3, the case has 2 channel\(s\)"),
        ("1,2:3,4:a\n1,2,3:4,5,6:b\n", HEADER.replace("@data", "@equalLength true\n@data"),
         r"case 2: the header says @equalLength true \(the length of case 1\), the case has 3 steps"),
        ("1,2:3,4:a\n", HEADER.replace("@data", "@equalLength true\n@seriesLength 5\n@data"),
         r"case 1: the header says @seriesLength 5, the case has 2 steps"),
        ("1,2:3,4:a\n", HEADER.replace("@data", "@seriesLength many\n@data"), r"@seriesLength must be a whole number"),
    ],
)  # fmt: skip
def test_malformed_ts(tmp_path: Path, body: str, header: str | None, message: str) -> None:
    path = tmp_path / "Bad_TRAIN.ts"
    if header is None:
        write_ts(path, body)
    else:
        write_ts(path, body, header)
    with pytest.raises(ValueError, match=message) as error:
        read_ts(path)
    assert str(path) in str(error.value)  # the message names the file


def test_user_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="the training .ts file: no such file"):
        load_ucr(str(tmp_path / "Toy_TRAIN.ts"))
    write_ts(tmp_path / "Toy_TRAIN.ts", "1:2:a\n")
    with pytest.raises(FileNotFoundError, match="the test .ts file beside it: no such file '.*Toy_TEST.ts'"):
        load_ucr(str(tmp_path / "Toy_TRAIN.ts"))
    write_ts(tmp_path / "toy.ts", "1:2:a\n")
    with pytest.raises(ValueError, match="path of a NAME_TRAIN.ts file, got"):
        load_ucr(str(tmp_path / "toy.ts"))


def test_a_byte_order_mark_is_named(tmp_path: Path) -> None:
    path = tmp_path / "Bom_TRAIN.ts"
    path.write_text(
        HEADER + "1,2:3,4:a\n", encoding="utf-8-sig"
    )  # sktime: "a full set of metadata has not been provided"
    with pytest.raises(
        ValueError, match=r"Bom_TRAIN.ts: a .ts file must be plain UTF-8, got one that starts with a byte"
    ):
        read_ts(path)


def test_header_that_matches_the_data_is_read(tmp_path: Path) -> None:
    header = HEADER.replace("@data", "@equalLength false\n@seriesLength 5\n@data")  # no equal length: no check
    write_ts(tmp_path / "Ok_TRAIN.ts", "1,2:3,4:a\n1,2,3:4,5,6:b\n", header)
    assert [tuple(s.shape) for s in read_ts(tmp_path / "Ok_TRAIN.ts").sequences] == [(2, 2), (3, 2)]
    univariate = HEADER.replace("@univariate false\n@dimensions 2", "@univariate true")
    write_ts(
        tmp_path / "Uni_TRAIN.ts", "1,2:a\n", univariate.replace("@data", "@equalLength true\n@seriesLength 2\n@data")
    )
    assert read_ts(tmp_path / "Uni_TRAIN.ts").sequences[0].shape == (2, 1)


def test_the_test_file_is_the_last_train_of_the_name_renamed(tmp_path: Path) -> None:
    write_ts(tmp_path / "A_TRAIN_B_TRAIN.ts", "1,2:3,4:a\n")
    write_ts(tmp_path / "A_TRAIN_B_TEST.ts", "5,6:7,8:b\n")
    train, test = load_ucr(str(tmp_path / "A_TRAIN_B_TRAIN.ts"))
    assert (train.labels, test.labels) == (["a"], ["b"])


@pytest.mark.parametrize(
    ("name", "message"),
    [("gunpoint", r"got 'gunpoint' \(did you mean 'GunPoint'\?\)"), ("NoSuchSet", r"got 'NoSuchSet'$"),
     ("data/Toy_TRAIN", r"got 'data/Toy_TRAIN'$"), ("Covid3Month", r"got 'Covid3Month'$")],
)  # fmt: skip
def test_unknown_names_list_the_sets_sktime_ships(name: str, message: str) -> None:
    allowed = r"name must be one of the classification sets sktime ships, \['ACSF1', 'ArrowHead', .*'JapaneseVowels'"
    with pytest.raises(ValueError, match=allowed + r".*, or the path of a NAME_TRAIN.ts file, " + message):
        UCRDataModule(name).num_classes


def test_directories_are_not_ts_files(tmp_path: Path) -> None:
    (tmp_path / "Dir_TRAIN.ts").mkdir()
    with pytest.raises(FileNotFoundError, match=r"the training .ts file: '.*Dir_TRAIN.ts' is a folder, not a file"):
        load_ucr(str(tmp_path / "Dir_TRAIN.ts"))
    write_ts(tmp_path / "Toy_TRAIN.ts", "1:2:a\n")
    (tmp_path / "Toy_TEST.ts").mkdir()
    with pytest.raises(FileNotFoundError, match=r"the test .ts file beside it: '.*Toy_TEST.ts' is a folder, not a"):
        load_ucr(str(tmp_path / "Toy_TRAIN.ts"))


def test_unknown_name_and_missing_sktime(uninstall: Callable[[str], None]) -> None:
    with pytest.raises(ValueError, match=r"name must be one of .* got 'NoSuchSet'"):
        UCRDataModule("NoSuchSet").num_classes
    uninstall("sktime")
    with pytest.raises(MissingDataError, match=r"the JapaneseVowels data ships in the PyPI package 'sktime'"):
        UCRDataModule().num_classes


def test_small_training_sets_get_a_validation_split_that_can_rank_epochs() -> None:
    # ArrowHead: 36 training cases of 3 classes; 15% would be 5 cases, the floor gives 12
    dm = UCRDataModule("ArrowHead", val_fraction=0.15)
    val = dm.splits["val"].labels
    assert len(val) == 12 and len(dm.splits["train"]) == 24
    assert torch.bincount(val).min() >= 2  # every class is there, stratified
    assert set(dm.baselines()) == {"majority-class accuracy", "1-NN DTW accuracy"}


def toy_pair(tmp_path: Path, train_labels: str, test_labels: str, classes: str = "a b") -> str:
    """A Toy_TRAIN.ts and Toy_TEST.ts with one case per letter of the labels (case i: steps i, i + 1, two channels)."""
    header = HEADER.replace("true a b", f"true {classes}")
    for split, labels in (("TRAIN", train_labels), ("TEST", test_labels)):
        write_ts(
            tmp_path / f"Toy_{split}.ts", "".join(f"{i},{i + 1}:{i},{i}:{y}\n" for i, y in enumerate(labels)), header
        )
    return str(tmp_path / "Toy_TRAIN.ts")


def test_a_training_file_needs_two_classes(tmp_path: Path) -> None:
    # the header declares two classes, the cases use one (the model's num_classes check only said "got 1")
    with pytest.raises(
        ValueError, match=r"needs cases of at least 2 classes in the training file, got cases of \['a'\] only"
    ):
        UCRDataModule(toy_pair(tmp_path, "aaaa", "ab")).num_classes


def test_test_labels_need_training_cases(tmp_path: Path) -> None:
    # b is declared by both headers but the training file has no case of it: the model could never learn it
    name = toy_pair(tmp_path, "aacc", "abc", classes="a b c")
    with pytest.raises(
        ValueError, match=r"test labels must be classes the training file has cases of, \['a', 'c'\], got \['b'\]"
    ):
        UCRDataModule(name).num_classes


def test_a_class_of_one_training_case_is_refused_unless_refitting(tmp_path: Path) -> None:
    dm = UCRDataModule(toy_pair(tmp_path, "aaaab", "ab"), standardize=False)
    with pytest.raises(
        ValueError, match=r"every class needs at least 2 training cases .*, got 1 of \['b'\]; .*--refit_epochs N"
    ):
        dm.splits
    with pytest.raises(ValueError, match=r"got 1 of \['b'\]"):
        dm.fold(2, 0).splits
    assert sorted(dm.refit().splits["train"].labels.tolist()) == [0, 0, 0, 0, 1]  # a refit trains on every case


@pytest.mark.parametrize("seed", range(8))
def test_a_validation_split_smaller_than_the_classes_keeps_a_training_case_of_each(tmp_path: Path, seed: int) -> None:
    # 6 classes of 2 cases: the split holds 4 cases (a third of 12), too few to stratify
    dm = UCRDataModule(toy_pair(tmp_path, "aabbccddeeff", "abcdef", classes="a b c d e f"), seed=seed)
    val, train = dm.splits["val"].labels.tolist(), dm.splits["train"].labels.tolist()
    assert len(val) == 4 and len(set(val)) == 4 and set(train) == set(range(6))


def test_a_val_fraction_that_leaves_a_class_no_training_case_is_refused(tmp_path: Path) -> None:
    dm = UCRDataModule(toy_pair(tmp_path, "aabbcc" + "d" * 40, "abcd", classes="a b c d"), val_fraction=0.9)
    with pytest.raises(
        ValueError, match=r"val_fraction=0.9 must leave every class a training case, got none of \['a', 'b', 'c'\]"
    ):
        dm.splits


@pytest.mark.parametrize("labels", ["aabb", "aaaaaaaaaabbbbbbbbbbcc"])
def test_folds_keep_a_training_case_of_every_class(tmp_path: Path, labels: str) -> None:
    # classes with fewer cases than folds (2 < 3): each case validates once, and every fold trains on every class
    dm = UCRDataModule(toy_pair(tmp_path, labels, "".join(sorted(set(labels))), classes="a b c"), standardize=False)
    validated = []
    for index in range(3):
        fold = dm.fold(3, index)
        assert set(fold.splits["train"].labels.tolist()) == set(range(len(set(labels))))
        validated += [int(s[0, 0]) for s in fold.splits["val"].sequences]
    assert sorted(validated) == list(range(len(labels)))


def test_doctests() -> None:
    import doctest

    import vowels_gru

    result = doctest.testmod(vowels_gru)
    assert result.attempted > 0 and result.failed == 0


def test_resample_to_gives_every_case_one_length_as_the_dtw_baseline_does() -> None:
    import pandas as pd
    from sktime.transformations.panel.interpolate import TSInterpolator

    from vowels_gru import resample

    # the same values as sktime's interpolator (which the 1-NN DTW baseline uses), up and down
    gen = torch.Generator().manual_seed(0)
    for length, steps in ((37, 16), (9, 25)):
        case = torch.randn(length, 2, generator=gen)
        theirs = TSInterpolator(steps).fit_transform([pd.DataFrame(case.double().numpy())])[0].to_numpy()
        torch.testing.assert_close(resample(case, steps), torch.from_numpy(theirs).float(), atol=1e-6, rtol=1e-6)
    plain, resampled = UCRDataModule("JapaneseVowels"), UCRDataModule("JapaneseVowels", resample_to=20)
    assert {s.shape for s in resampled.load_sequences()[0]} == {torch.Size([20, 12])}
    assert len(resampled.splits["test"]) == len(plain.splits["test"])
    first = plain.load_sequences()[0][0]
    torch.testing.assert_close(resampled.load_sequences()[0][0][[0, -1]], first[[0, -1]])  # the span is kept
    for bad in (1, 0, 2.5, True, "64"):
        with pytest.raises(ValueError, match=rf"resample_to must be None or an int >= 2, got {bad!r}"):
            UCRDataModule("JapaneseVowels", resample_to=bad)  # type: ignore[arg-type]


def test_folds_partition_the_training_file_and_keep_the_test_file() -> None:
    dm = UCRDataModule("GunPoint")
    assert dm.can_fold  # what --tune asks before it cross-validates
    assert not dm.fold_always  # only where its validation split is small
    train_file = {tuple(s.flatten().tolist()[:5]) for s in dm.splits["train"].sequences + dm.splits["val"].sequences}
    seen: list[tuple[float, ...]] = []
    for index in range(3):
        fold = dm.fold(3, index)
        val = [tuple(s.flatten().tolist()[:5]) for s in fold.splits["val"].sequences]
        train = {tuple(s.flatten().tolist()[:5]) for s in fold.splits["train"].sequences}
        assert not train & set(val) and len(train) + len(val) == len(train_file)
        assert len(fold.splits["test"]) == len(dm.splits["test"])
        # each class in every validation fold (stratified)
        assert set(fold.splits["val"].labels.tolist()) == {0, 1}
        seen += val
    # every training case validates once (compared unstandardized: each fold standardizes with its own part)
    raw = UCRDataModule("GunPoint", standardize=False)
    raw_val = [tuple(s.flatten().tolist()[:5]) for i in range(3) for s in raw.fold(3, i).splits["val"].sequences]
    raw_all = [tuple(s.flatten().tolist()[:5]) for s in raw.splits["train"].sequences + raw.splits["val"].sequences]
    assert sorted(raw_val) == sorted(raw_all) and len(seen) == len(raw_all)
    assert dm.splits["val"] is not dm.fold(3, 0).splits["val"]  # the original split is untouched


@pytest.mark.parametrize(
    ("folds", "index", "message"),
    [(1, 0, "folds must be an int from 2 to 50"), (51, 0, "folds must be an int from 2 to 50"),
     (3, 3, "index must be an int from 0 to 2, got 3"), (3, -1, "index must be an int from 0 to 2, got -1"),
     (True, 0, "folds must be an int")],
)  # fmt: skip
def test_fold_rejects_bad_arguments(folds: object, index: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UCRDataModule("GunPoint").fold(folds, index)  # type: ignore[arg-type]


def test_refit_trains_on_every_training_case_standardized_with_all_of_them() -> None:
    raw = UCRDataModule("GunPoint", standardize=False)
    refit = raw.refit()
    key = lambda s: tuple(s.flatten().tolist()[:5])  # noqa: E731
    everything = sorted(key(s) for s in raw.splits["train"].sequences + raw.splits["val"].sequences)
    assert sorted(key(s) for s in refit.splits["train"].sequences) == everything
    assert len(refit.splits["test"]) == len(raw.splits["test"]) and len(raw.splits["train"]) < len(everything)
    # standardized with the statistics of all training steps: mean 0, variance 1 over them
    steps = torch.cat(UCRDataModule("GunPoint").refit().splits["train"].sequences).double()
    assert abs(float(steps.mean())) < 1e-6 and float(steps.std(unbiased=False)) == pytest.approx(1.0, abs=1e-6)
    assert len(raw.splits["train"]) == 38 and len(raw.splits["val"]) == 12  # the original split is untouched


def _bump(length: int, at: int) -> torch.Tensor:
    x = torch.zeros(length, 1)
    x[at : at + 3, 0] = torch.tensor([1.0, 3.0, 1.0])
    return x


def test_dtw_matches_shifted_shapes_that_euclidean_distance_confuses() -> None:
    # class 0: one bump; class 1: two bumps. The test bumps are shifted, so by Euclidean distance
    # the single bump at 12 lies closer to the double bump whose second bump is at 12.
    one, two = _bump(20, 2), _bump(20, 2) + _bump(20, 12)
    shifted_one = _bump(20, 12)
    shifted_two = _bump(20, 4) + _bump(20, 15)
    train, labels = [one, two], torch.tensor([0, 1])
    euclidean = [int(torch.stack([(t - s).norm() for s in train]).argmin()) for t in (shifted_one, shifted_two)]
    assert euclidean[0] == 1  # the premise: Euclidean 1-NN gets the first case wrong
    assert one_nn_dtw_accuracy(train, labels, [shifted_one, shifted_two], torch.tensor([0, 1])) == 1.0


def test_dtw_takes_sequences_of_different_lengths() -> None:
    up = [torch.linspace(0, 1, n).unsqueeze(1).repeat(1, 2) for n in (9, 12)]
    down = [torch.linspace(1, 0, n).unsqueeze(1).repeat(1, 2) for n in (10, 14)]
    accuracy = one_nn_dtw_accuracy(
        [up[0], down[0]], torch.tensor([0, 1]), [up[1], down[1]], torch.tensor([0, 1]), max_length=8
    )
    assert accuracy == 1.0


def test_dtw_takes_cases_of_one_step() -> None:
    # sets of unequal length are resampled; sktime's interpolator cannot stretch a single step
    low, high = torch.zeros(1, 1), torch.full((8, 1), 5.0)
    accuracy = one_nn_dtw_accuracy([low, high], torch.tensor([0, 1]), [low + 0.1, high[:3] - 0.1], torch.tensor([0, 1]))
    assert accuracy == 1.0


def test_a_dtw_baseline_over_its_time_budget_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    import vowels_gru

    monkeypatch.setattr(vowels_gru, "_TIME_DTW_ABOVE", 0)  # time every set, however small
    vowels_gru._dtw_correct.cache_clear()
    try:
        quick = UCRDataModule("ItalyPowerDemand", dtw_max_minutes=1e-9)
        baselines = quick.baselines()
        assert "1-NN DTW accuracy" not in baselines and "majority-class accuracy" in baselines
        (note,) = quick.baseline_notes
        assert note.startswith("1-NN DTW baseline skipped: 67 training x 1,029 test cases of 24 steps would take")
        assert "more than --data.dtw_max_minutes 1e-09; raise it" in note
        # within its budget, the timed set gets the same accuracy as an untimed one
        roomy = UCRDataModule("ItalyPowerDemand", dtw_max_minutes=60)
        assert roomy.baselines()["1-NN DTW accuracy"] == pytest.approx(0.9504373177842566)
        assert roomy.baseline_notes == []
        # the 0/1 errors the summary's paired margin test reads: one per test case, the baselines' error rates
        losses = roomy.baseline_case_losses()
        assert {name: 1 - float(loss.mean()) for name, loss in losses.items()} == pytest.approx(roomy.baselines())
        assert all(len(loss) == len(roomy.splits["test"]) == 1029 for loss in losses.values())
        assert list(quick.baseline_case_losses()) == ["majority-class accuracy"]  # skipped: no DTW errors either
    finally:
        vowels_gru._dtw_correct.cache_clear()
    with pytest.raises(ValueError, match=r"dtw_max_minutes must be a number > 0, got 0"):
        UCRDataModule("ItalyPowerDemand", dtw_max_minutes=0)
