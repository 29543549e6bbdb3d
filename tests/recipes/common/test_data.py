"""The generic recipe data modules: windows, splits by series and by time, padding, yardsticks."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import Tensor

import common.data
from common.data import ClassificationDataModule, ForecastDataModule, majority_accuracy, make_windows, pad_collate


class Ramps(ForecastDataModule):
    """Series ``k`` is ``1000 k + t``, so every value tells its series and its step."""

    def __init__(self, count: int = 10, length: int = 30, channels: int = 1, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.count, self.length, self.channels = count, length, channels

    def load_series(self) -> list[Tensor]:
        t = torch.arange(self.length, dtype=torch.float32)
        out = [1000.0 * k + t for k in range(self.count)]
        if self.channels == 1:
            return out
        return [torch.stack([s + 0.5 * c for c in range(self.channels)], dim=1) for s in out]


class Labelled(ClassificationDataModule):
    """``count`` sequences; sequence ``i`` has ``3 + i % 4`` steps filled with ``i`` and label ``labels[i]``."""

    def __init__(self, labels: list[int], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.labels = labels

    def load_sequences(self) -> tuple[list[Tensor], Tensor]:
        seqs = [torch.full((3 + i % 4, 2), float(i)) for i in range(len(self.labels))]
        return seqs, torch.tensor(self.labels)


def test_doctests() -> None:
    result = doctest.testmod(common.data)
    assert result.attempted > 0, "no doctest ran: the examples are gone"
    assert result.failed == 0


def test_make_windows_exact_values_and_count() -> None:
    series = torch.arange(10.0).unsqueeze(1)
    x, y = make_windows(series, input_length=4, horizon=2, stride=3)
    assert x.shape == (2, 4, 1) and y.shape == (2, 2, 1)  # starts 0 and 3; start 6 would need 12 steps
    assert x[:, :, 0].tolist() == [[0, 1, 2, 3], [3, 4, 5, 6]]
    assert y[:, :, 0].tolist() == [[4, 5], [7, 8]]


def test_make_windows_multichannel_and_too_short() -> None:
    series = torch.stack([torch.arange(6.0), -torch.arange(6.0)], dim=1)
    x, y = make_windows(series, 3, 1)
    assert x.shape == (3, 3, 2)
    assert torch.equal(x[1, :, 1], -torch.tensor([1.0, 2.0, 3.0])) and torch.equal(y[2, 0], torch.tensor([5.0, -5.0]))
    x, y = make_windows(series, 5, 2)
    assert x.shape == (0, 5, 2) and y.shape == (0, 2, 2)


def test_series_split_is_disjoint_complete_and_seeded() -> None:
    dm = Ramps(count=20, input_length=5, horizon=2, val_fraction=0.2, test_fraction=0.25, seed=3)
    ids = {key: sorted(int(s[0, 0]) // 1000 for s in part) for key, part in dm.series_splits.items()}
    assert [len(ids[k]) for k in ("train", "val", "test")] == [11, 4, 5]
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == list(range(20))
    again = Ramps(count=20, input_length=5, horizon=2, val_fraction=0.2, test_fraction=0.25, seed=3)
    assert [int(s[0, 0]) for s in again.series_splits["test"]] == [int(s[0, 0]) for s in dm.series_splits["test"]]
    other = Ramps(count=20, input_length=5, horizon=2, val_fraction=0.2, test_fraction=0.25, seed=4)
    assert [int(s[0, 0]) for s in other.series_splits["test"]] != [int(s[0, 0]) for s in dm.series_splits["test"]]


def test_windows_stay_inside_one_series() -> None:
    dm = Ramps(count=6, length=30, input_length=8, horizon=3, stride=2, val_fraction=0.2, test_fraction=0.2)
    dm.setup("fit")
    x, y = dm.windows("train").tensors
    assert x.shape[1:] == (8, 1) and y.shape[1:] == (3, 1)
    assert len(x) == 4 * ((30 - 11) // 2 + 1)
    # consecutive values: each window (input then target) is 11 consecutive steps of one series
    whole = torch.cat([x, y], dim=1)[:, :, 0]
    assert torch.equal(whole.diff(dim=1), torch.ones(len(x), 10))


def test_time_split_targets_lie_in_their_part() -> None:
    dm = Ramps(count=2, length=100, input_length=10, horizon=5, split="time", val_fraction=0.2, test_fraction=0.2)
    train, val, test = (dm.series_splits[k][0][:, 0] for k in ("train", "val", "test"))
    assert train.tolist() == list(range(60))
    assert val.tolist() == list(range(50, 80))  # 10 steps of context before step 60
    assert test.tolist() == list(range(70, 100))
    dm.setup("fit")
    dm.setup("test")
    _, y_val = dm.windows("val").tensors
    _, y_test = dm.windows("test").tensors
    steps = lambda y: y.remainder(1000.0)  # noqa: E731
    assert steps(y_val).min() >= 60 and steps(y_val).max() < 80
    assert steps(y_test).min() >= 80


def test_multichannel_num_features_and_loader_batches() -> None:
    dm = Ramps(count=10, length=20, channels=3, input_length=6, horizon=2, batch_size=4)
    assert dm.num_features == 3
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 6, 3) and y.shape == (4, 2, 3)


def test_forecast_yardstick_is_the_last_value_rmse() -> None:
    dm = Ramps(count=10, length=20, input_length=5, horizon=3)
    name, value = dm.yardstick()
    # on a ramp the last value misses step h by h: RMSE = sqrt((1 + 4 + 9) / 3)
    assert name == "naive last-value forecast RMSE"
    assert value == pytest.approx((14 / 3) ** 0.5, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_length": 0}, r"input_length must be an int >= 1, got 0"),
        ({"horizon": 2.5}, r"horizon must be an int >= 1, got float 2.5"),
        ({"split": "random"}, r"split must be 'series' or 'time', got 'random'"),
        ({"val_fraction": 1.2}, r"val_fraction must be in \[0, 1\), got 1.2"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"val_fraction \+ test_fraction must be < 1"),
        ({"num_workers": -1}, r"num_workers must be an int >= 0, got -1"),
    ],
)
def test_forecast_argument_errors(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Ramps(**kwargs)


def test_split_errors_say_what_is_missing() -> None:
    with pytest.raises(ValueError, match=r"Ramps: splitting 3 series .* gives 3 train, 0 validation and 0 test series"):
        _ = Ramps(count=3).series_splits
    with pytest.raises(ValueError, match=r"Ramps: series 0 has 30 steps, fewer than input_length \+ horizon = 40"):
        _ = Ramps(count=10, input_length=30, horizon=10).series_splits
    with pytest.raises(ValueError, match=r"the val part of a series of length 30 has 16 steps"):
        _ = Ramps(count=1, split="time", input_length=10, horizon=8, val_fraction=0.2, test_fraction=0.2).series_splits


def test_pad_collate_pads_with_zeros() -> None:
    x, lengths, y = pad_collate([(torch.ones(2, 3), torch.tensor(1)), (torch.full((4, 3), 2.0), torch.tensor(0))])
    assert x.shape == (2, 4, 3) and lengths.tolist() == [2, 4] and y.tolist() == [1, 0]
    assert x[0, 2:].abs().sum() == 0 and torch.equal(x[1], torch.full((4, 3), 2.0))


def test_classification_split_is_stratified_and_batches_are_padded() -> None:
    labels = [0] * 20 + [1] * 10 + [2] * 10
    dm = Labelled(labels, val_fraction=0.2, test_fraction=0.2, batch_size=8, seed=1)
    counts = {key: torch.bincount(part.labels, minlength=3).tolist() for key, part in dm.splits.items()}
    assert counts == {"train": [12, 6, 6], "val": [4, 2, 2], "test": [4, 2, 2]}
    members = [int(s[0, 0]) for part in dm.splits.values() for s in part.sequences]
    assert sorted(members) == list(range(40))
    assert dm.num_classes == 3 and dm.num_features == 2
    dm.setup("fit")
    x, lengths, y = next(iter(dm.train_dataloader()))
    assert x.shape[0] == 8 and x.shape[1] == int(lengths.max()) and x.shape[2] == 2
    for row, n, label in zip(x, lengths, y, strict=True):
        value = row[0, 0]
        assert labels[int(value)] == int(label)
        assert torch.all(row[:n] == value) and torch.all(row[n:] == 0)


def test_classification_yardstick_is_majority_accuracy() -> None:
    dm = Labelled([0] * 20 + [1] * 10 + [2] * 10, val_fraction=0.2, test_fraction=0.2)
    assert dm.yardstick() == ("majority-class accuracy", pytest.approx(4 / 8))


def test_classification_empty_split_error() -> None:
    with pytest.raises(ValueError, match=r"Labelled: the val split is empty with val_fraction=0.1"):
        _ = Labelled([0, 0, 1, 1], val_fraction=0.1, test_fraction=0.5).splits


def test_majority() -> None:
    assert majority_accuracy(torch.tensor([2, 2, 0]), torch.tensor([2, 0, 1, 2])) == 0.5


def test_under_ddp_every_process_validates_and_tests_every_case_once(monkeypatch: pytest.MonkeyPatch) -> None:
    dm = Labelled([0, 1] * 11, val_fraction=0.2, test_fraction=0.3, batch_size=4)  # odd-sized splits
    dm.setup("fit")
    assert not isinstance(dm.test_dataloader().sampler, torch.utils.data.DistributedSampler)  # one process
    monkeypatch.setattr(common.data, "_distributed", lambda: True)
    for split in ("val", "test"):
        sampler = dm.loader(split).sampler
        # Lightning keeps a DistributedSampler as given; this one deals every case, in order, with no padding
        assert isinstance(sampler, torch.utils.data.DistributedSampler)
        assert list(sampler) == list(range(len(dm.split_dataset(split))))
    assert isinstance(dm.train_dataloader().sampler, torch.utils.data.RandomSampler)  # Lightning shards training
