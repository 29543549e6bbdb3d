"""The ablation arms: --model.regularize picks which regularizers a recipe run keeps."""

from __future__ import annotations

import doctest
import sys

import pytest

import common.arms
from common.arms import ARMS, resolve_arm, uses_dropout, uses_early_stopping
from common.cli import RecipeCLI
from common.model import SequenceModel
from regdrop.callbacks import EarlyStopping, MaxNorm, RegularizationMonitor
from sine_lstm import SineDataModule

TINY_DATA = ["--data.num_series", "10", "--data.length", "40", "--data.input_length", "12", "--data.horizon", "4"]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["recipe.py"])


def test_doctests() -> None:
    result = doctest.testmod(common.arms)
    assert result.attempted > 0 and result.failed == 0


def test_the_four_arms() -> None:
    assert ARMS == ("none", "early_stopping", "dropout", "all")
    assert [uses_dropout(a) for a in ARMS] == [False, False, True, True]
    assert [uses_early_stopping(a) for a in ARMS] == [False, True, False, True]
    assert resolve_arm(True) == "all" and resolve_arm(False) == "none"


@pytest.mark.parametrize(
    ("value", "max_norm", "early_stopping", "dropout"),
    [
        ("false", False, False, False),
        ("none", False, False, False),
        ("early_stopping", False, True, False),
        ("dropout", True, False, True),
        ("all", True, True, True),
        ("true", True, True, True),
    ],
)
def test_each_arm_keeps_its_callbacks_and_rates(tmp_path, value, max_norm, early_stopping, dropout) -> None:
    args = ["--trainer.logger.save_dir", str(tmp_path), "--model.hidden_size", "8", "--model.regularize", value]
    cli = RecipeCLI("demo", SequenceModel, SineDataModule, args=[*args, *TINY_DATA])
    kinds = [type(cb) for cb in cli.trainer.callbacks]
    assert (MaxNorm in kinds) is max_norm and (EarlyStopping in kinds) is early_stopping
    assert RegularizationMonitor in kinds  # every arm keeps the monitor
    rates = [getattr(m, r) for m in cli.model.modules() for r in getattr(m, "rate_names", ())]
    assert rates and any(rate > 0 for rate in rates) is dropout
    assert cli.model.arm == resolve_arm({"true": True, "false": False}.get(value, value))


def test_a_wrong_arm_is_a_usage_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        RecipeCLI("demo", SequenceModel, SineDataModule, args=["--model.regularize", "some", *TINY_DATA])
    assert exit_info.value.code == 2 and "model.regularize" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"regularize must be true, false or one of .*got 'some'"):
        SequenceModel(regularize="some")  # type: ignore[arg-type]
