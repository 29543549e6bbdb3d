"""recipes/stopping_evidence.py: where early stopping stops, the table of its two endings, and one real run."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import stopping_evidence
from stopping_evidence import stop, table


def test_doctests() -> None:
    result = doctest.testmod(stopping_evidence)
    assert result.attempted > 0 and result.failed == 0


def test_stop_counts_patience_from_the_first_counted_check() -> None:
    # Lightning's rule: stop at the check that makes `patience` checks in a row without improvement
    assert stop([3.0, 2.0, 2.5, 2.6, 2.7], patience=3, start=0) == (1, 4)
    assert stop([3.0, 2.0, 2.5, 2.6, 2.7], patience=4, start=0) == (1, 4)  # the budget ended first
    # checks before start do not count, even when they are the lowest
    assert stop([0.1, 2.0, 1.5, 1.6, 1.7], patience=2, start=1) == (2, 4)
    # a tie is not an improvement
    assert stop([2.0, 2.0, 2.0], patience=2, start=0) == (0, 2)
    with pytest.raises(ValueError, match="no check at or after start=5 among 3 checks"):
        stop([1.0, 2.0, 3.0], patience=2, start=5)


def test_table_tests_the_best_check_or_the_last_one() -> None:
    # ArrowHead's patience is 15 from epoch 5: the best check is epoch 6, the run stops at epoch 21
    losses = [9.0] * 6 + [1.0] + [2.0] * 20
    tests = [float(epoch) for epoch in range(len(losses))]
    runs = {("ArrowHead", "none", 0): {"rows": [{"val_loss": v, "test": t} for v, t in zip(losses, tests)]}}
    row = next(line for line in table(runs).splitlines() if line.startswith("| ArrowHead | none"))
    # to the end: epoch 26; restore best: epoch 6; keep last: epoch 21; stopped after 22 epochs
    assert row == "| ArrowHead | none | test accuracy (%) | 26.00 | 6.00 | 21.00 | 22 | 1 |"


@pytest.mark.slow
def test_a_real_run_records_every_check_and_draws_the_table(tmp_path: Path) -> None:
    args = ["--only", "ItalyPowerDemand", "--seeds", "1", "--json", str(tmp_path / "s.json"),
            "--output", str(tmp_path / "s.md"), "--log-root", str(tmp_path / "logs"),
            "--extra", "--trainer.max_epochs", "7"]  # fmt: skip
    text = stopping_evidence.main(args)
    runs = json.loads((tmp_path / "s.json").read_text())
    assert set(runs) == {"ItalyPowerDemand-none-0", "ItalyPowerDemand-dropout-0"}
    for run in runs.values():
        assert run["extra"] == ["--trainer.max_epochs", "7"]
        assert len(run["rows"]) == 7  # one row per epoch
        assert all(0.0 <= row["test"] <= 100.0 and row["val_loss"] > 0 for row in run["rows"])
    assert "| ItalyPowerDemand | none | test accuracy (%) |" in text
    assert "trained with the extra options `--trainer.max_epochs 7`" in text
    assert (tmp_path / "s.md").read_text() == text
    # a second call with the same options runs nothing new and draws the same table, as does --table-only
    assert stopping_evidence.main(args) == text
    assert stopping_evidence.main([*args[4:8], "--table-only"]) == text


# careless input: every refusal is one usage line (exit status 2) before any run starts


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_curve(*args: Any) -> None:
        raise AssertionError("a run started")

    monkeypatch.setattr(stopping_evidence, "run_curve", run_curve)


def _refused(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        stopping_evidence.main(args)
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("usage: ") or "error: " in lines[-1]
    return lines[-1].partition("error: ")[2]


def _run(checks: int = 12, extra: list[str] | None = None) -> dict[str, Any]:
    run: dict[str, Any] = {"rows": [{"val_loss": 10.0 - epoch, "test": 1.0} for epoch in range(checks)]}
    return {**run, "extra": extra} if extra else run


def _paths(tmp_path: Path, runs: Any = None) -> list[str]:
    if runs is not None:
        (tmp_path / "s.json").write_text(runs if isinstance(runs, str) else json.dumps(runs))
    return ["--json", str(tmp_path / "s.json"), "--output", str(tmp_path / "s.md")]


def test_the_committed_table_redraws_unchanged(tmp_path: Path) -> None:
    recipes = Path(stopping_evidence.__file__).parent
    args = ["--table-only", "--json", str(recipes / "STOPPING.json"), "--output", str(tmp_path / "s.md")]
    assert stopping_evidence.main(args) == (recipes / "STOPPING.md").read_text()


@pytest.mark.parametrize(
    ("runs", "reason"),
    [
        ("", "cannot read it as JSON"),
        ("junk", "cannot read it as JSON"),
        ([_run()], "must hold an object of runs keyed 'data set-arm-seed', got a list"),
        ({"meta": {"command": "x"}}, "key 'meta' is not 'data set-arm-seed' with a data set in ACSF1"),
        ({"Nile-none-0": _run()}, "key 'Nile-none-0' is not 'data set-arm-seed'"),
        ({"nile-none-00": _run()}, "key 'nile-none-00' is not"),
        ({"nile-none-0": 5}, "run 'nile-none-0' must be an object with rows of numbers val_loss and test, got 5"),
        ({"nile-none-0": {"rows": [{"val_loss": "1"}]}}, "must be an object with rows of numbers"),
        ({"nile-none-0": {**_run(), "extra": "--x"}}, "run 'nile-none-0': extra must be a list of options"),
        ({"nile-none-0": {"rows": []}}, "run 'nile-none-0' has 0 checks; nile's early stopping counts checks from "
         "start_from_epoch=10, so the table needs at least 12"),
        ({"nile-none-0": _run(11)}, "has 11 checks"),
        ({"nile-none-0": _run(), "nile-none-1": _run(extra=["--x"])}, "it mixes runs recorded with different --extra"),
    ],
)  # fmt: skip
def test_a_bad_json_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: None, runs: Any, reason: str
) -> None:
    for mode in (["--table-only"], ["--only", "nile", "--log-root", str(tmp_path / "logs")]):
        message = _refused(capsys, [*mode, *_paths(tmp_path, runs)])
        assert message.startswith(f"--json {tmp_path / 's.json'}: ") and reason in message
    assert not (tmp_path / "s.md").exists()


def test_table_only_refuses_a_missing_json_and_the_options_of_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = _refused(capsys, ["--table-only", *_paths(tmp_path)])
    assert message == f"--json {tmp_path / 's.json'}: does not exist (--table-only draws the runs recorded there)"
    args = ["--table-only", *_paths(tmp_path, {"nile-none-0": _run()})]
    assert _refused(capsys, [*args, "--only", "nile", "--seeds", "1"]) == (
        "--table-only runs nothing and draws every run in --json; it takes no --only, --seeds"
    )
    assert _refused(capsys, [*args, "--log-root", "x", "--extra"]).endswith("it takes no --log-root, --extra")
    assert "| nile | none | test RMSE | 1.00 | 1.00 | 1.00 | 12 | 1 |" in stopping_evidence.main(args)


def _fake_cli(runs: list[str]) -> Any:
    """A recipe CLI whose training records 15 checks at once (and its run's name in ``runs``)."""

    def cli(name: str, arm: str, seed: int, log_root: Path, extra: list[str]) -> Any:
        trainer = SimpleNamespace(callbacks=[], max_epochs=15, check_val_every_n_epoch=1)
        stopping = SimpleNamespace(patience=25, start_from_epoch=10)

        def fit(model: Any, datamodule: Any) -> None:
            runs.append(f"{name}-{arm}-{seed}")
            trainer.callbacks[-1].rows.extend({"val_loss": 2.0, "test": 3.0} for _ in range(15))

        trainer.fit = fit
        return SimpleNamespace(
            trainer=trainer, model=None, datamodule=None, config=SimpleNamespace(early_stopping=stopping)
        )

    return cli


def test_extra_options_are_recorded_with_each_run_and_said_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[str] = []
    monkeypatch.setattr(stopping_evidence, "_cli", _fake_cli(trained))
    args = ["--only", "nile", "--seeds", "1", *_paths(tmp_path), "--log-root", str(tmp_path / "logs")]
    text = stopping_evidence.main([*args, "--extra", "--trainer.max_epochs", "15"])
    assert trained == ["nile-none-0", "nile-dropout-0"]
    runs = json.loads((tmp_path / "s.json").read_text())
    assert all(run["extra"] == ["--trainer.max_epochs", "15"] for run in runs.values())
    assert "Every run was trained with the extra options `--trainer.max_epochs 15`.\n" in text
    # the same extra options reuse the runs; others (or none) are refused, not mixed in
    assert stopping_evidence.main([*args, "--extra", "--trainer.max_epochs", "15"]) == text
    assert len(trained) == 2
    assert _refused(capsys, args) == (
        f"--extra: {tmp_path / 's.json'} holds runs recorded with --extra --trainer.max_epochs 15, got no --extra; "
        "pass the same --extra or another --json"
    )
    assert "got --extra --trainer.max_epochs 16;" in _refused(capsys, [*args, "--extra", "--trainer.max_epochs", "16"])
    assert len(trained) == 2
    assert stopping_evidence.main(["--table-only", *args[4:8]]) == text


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--trainer.max_epochs", "3"], "--extra: nile would get 3 validation checks (--trainer.max_epochs 3); its "
         "early stopping counts checks from start_from_epoch=10, so the table needs at least 12"),
        (["--trainer.max_epochs", "11"], "nile would get 11 validation checks"),
        (["--trainer.max_epochs", "24", "--trainer.check_val_every_n_epoch", "2"], "nile would get 12"),  # accepted
        (["--early_stopping.patience", "3"], "--extra: the table applies airline_lstm's own early stopping "
         "(patience 25, start_from_epoch 10); got patience 3, start_from_epoch 10"),
        (["--bogus", "1"], "--extra: the recipe airline_lstm (data set nile) refuses --extra --bogus 1: "
         "unrecognized arguments: --bogus 1"),
        (["--trainer.max_epochs", "12", "--seeds", "1", "--output", "x"], "--extra must come last: it took this "
         "script's options --seeds, --output (got --extra --trainer.max_epochs 12 --seeds 1 --output x)"),
        (["--model.regularize=all"], "--extra may not set --model.regularize=all: each run sets --model.regularize"),
        (["--seed_everything", "1"], "--extra may not set --seed_everything"),
    ],
)  # fmt: skip
def test_extra_options_are_checked_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: None, extra: list[str], reason: str
) -> None:
    args = ["--only", "nile", *_paths(tmp_path), "--log-root", str(tmp_path / "logs"), "--extra", *extra]
    if "would get 12" in reason:  # 12 checks are enough: the recipe accepts it and the (absent) run starts
        with pytest.raises(AssertionError, match="a run started"):
            stopping_evidence.main(args)
        return
    assert reason in _refused(capsys, args)


def test_bad_paths_are_refused_before_any_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: None) -> None:
    (tmp_path / "file").write_text("")
    good = {"--json": str(tmp_path / "s.json"), "--output": str(tmp_path / "s.md"), "--log-root": str(tmp_path)}
    bad = [
        ("--json", tmp_path / "missing" / "s.json", f"its folder {tmp_path / 'missing'} does not exist"),
        ("--json", tmp_path, f"{tmp_path} is a folder"),
        ("--json", tmp_path / "file" / "s.json", f"{tmp_path / 'file'} is not a folder"),
        ("--output", tmp_path / "missing" / "s.md", f"its folder {tmp_path / 'missing'} does not exist"),
        ("--output", tmp_path, f"{tmp_path} is a folder"),
        ("--log-root", tmp_path / "file", f"{tmp_path / 'file'} is a file"),
        ("--log-root", tmp_path / "file" / "logs", f"{tmp_path / 'file'} is not a folder"),
    ]
    for flag, path, reason in bad:
        args = [item for option, value in {**good, flag: str(path)}.items() for item in (option, value)]
        assert _refused(capsys, ["--only", "nile", *args]) == f"{flag} {path}: {reason}"
    assert _refused(capsys, ["--json", good["--json"], "--output", good["--json"]]) == (
        f"--output must differ from --json (the runs), got {good['--json']} for both"
    )
    assert _refused(capsys, ["--table-only", "--json", str(tmp_path), "--output", good["--output"]]) == (
        f"--json {tmp_path}: {tmp_path} is a folder (--table-only draws the runs recorded there)"
    )
