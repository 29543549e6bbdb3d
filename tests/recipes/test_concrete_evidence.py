"""recipes/concrete_evidence.py: learned rates against the grid; every number of its table comes from recorded runs."""

from __future__ import annotations

import json
from pathlib import Path

import concrete_evidence
import pytest
from concrete_evidence import GRID, render

ROOT = Path(__file__).resolve().parents[2]


def _record(task: str, arm: str, seed: int, val: float, metric: float, seconds: float = 1.0) -> dict:
    record = {"task": task, "arm": arm, "seed": seed, "train_seconds": seconds, "best_val_loss": val}
    if task == "vowels":
        record.update(test_acc=metric, mc_nll=0.2, mc_ece=0.05)
    else:
        record.update(test_rmse=metric, coverage_2std=0.9, mean_std=0.1)
    if arm == "learned":
        record["learned_rates"] = {"recurrent_dropout": [0.1 + seed / 100, 0.2], "head": [0.3]}
    return record


def test_the_best_grid_point_is_chosen_by_validation_and_the_verdict_follows_the_metric() -> None:
    records = []
    for seed in range(3):
        # p=0.2 has the best validation loss, p=0.5 the best test RMSE: the table must pick p=0.2
        for rate, val, rmse in ((0.1, 2.0, 1.0), (0.2, 1.0, 0.9), (0.3, 3.0, 0.95), (0.5, 4.0, 0.5)):
            records.append(_record("airline", f"p={rate}", seed, val, rmse + seed / 100))
        records.append(_record("airline", "learned", seed, 1.5, 0.8 + seed / 100, seconds=2.0))
        for rate in GRID:
            records.append(_record("vowels", f"p={rate}", seed, 1.0 + rate, 0.95))
        records.append(_record("vowels", "learned", seed, 1.0, 0.90))
    table = render(records)
    assert "| p=0.2 (best grid, by val) | 3 |" in table
    assert "test_rmse 0.81 ± 0.01, better than the best grid point p=0.2 (0.91 ± 0.01)" in table
    assert "training time 2.0 s vs 1.0 s for one grid point (2.00x; the grid costs 4 runs)" in table
    assert "test_acc 0.9 ± 0, worse than the best grid point p=0.1 (0.95 ± 0)" in table  # higher is better
    assert "recurrent_dropout 0.110/0.200, head 0.300" in table  # means over the seeds, per layer
    assert "sine" not in table  # no runs, no section


@pytest.mark.slow
def test_runs_are_recorded_resumed_and_tabulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs, output = tmp_path / "runs", tmp_path / "T.md"
    args = ["--only", "airline", "--seeds", "0", "--epochs-scale", "0.02", "--runs", str(runs), "--output", str(output)]
    table = concrete_evidence.main(args)
    files = sorted(p.name for p in runs.glob("*.json"))
    assert files == sorted(f"airline_{arm}_seed0.json" for arm in ["learned", *(f"p={r}" for r in GRID)])
    learned = json.loads((runs / "airline_learned_seed0.json").read_text())
    assert set(learned["learned_rates"]) == {"dropout", "recurrent_dropout", "head"}
    assert 0.0 <= learned["coverage_2std"] <= 1.0 and learned["epochs"] == 3
    assert f"{learned['test_rmse']:.4g} ± 0" in table and output.read_text() == table

    def fail(*args, **kwargs):
        raise AssertionError("a recorded run was run again")

    monkeypatch.setattr(concrete_evidence, "run_one", fail)
    assert concrete_evidence.main(args) == table  # resumes: nothing left to run, the same table


def test_readme_carries_the_recorded_table_verbatim() -> None:
    recorded = (ROOT / "recipes" / "CONCRETE_EVIDENCE.md").read_text()
    body = recorded.split("\n", 1)[1].strip()  # after the header line naming the machine
    assert body in (ROOT / "README.md").read_text(), "paste recipes/CONCRETE_EVIDENCE.md into README.md again"


def _write_runs(runs: Path, task: str, seeds: range | list[int], scale: float = 1.0) -> None:
    runs.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for arm in ["learned", *(f"p={r}" for r in GRID)]:
            record = _record(task, arm, seed, 1.0, 0.5) | {"epochs_scale": scale}
            (runs / f"{task}_{arm}_seed{seed}.json").write_text(json.dumps(record))


def _refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """Run main, which must stop with a usage error (exit status 2) before any run; return the message."""

    def fail(*args, **kwargs):
        raise AssertionError("ran a run despite a usage error")

    monkeypatch.setattr(concrete_evidence, "run_one", fail)
    with pytest.raises(SystemExit) as exit:
        concrete_evidence.main(args)
    assert exit.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--seeds", "-1", "from 0 to 4294967295"),
        ("--seeds", "4294967296", "from 0 to 4294967295"),
        ("--threads", "0", ">= 1"),
        ("--threads", "-1", ">= 1"),
        ("--epochs-scale", "nan", "finite number > 0"),
        ("--epochs-scale", "inf", "finite number > 0"),
        ("--epochs-scale", "1e307", "finite number > 0"),  # 150 epochs x 1e307 overflows
        ("--epochs-scale", "0", "finite number > 0"),  # was clipped to 1 epoch without a word
        ("--epochs-scale", "-1", "finite number > 0"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option, value, allowed
) -> None:
    runs = tmp_path / "runs"
    args = ["--only", "sine", "--seeds", "0", "--runs", str(runs), "--output", str(tmp_path / "T.md"), option, value]
    message = _refused(monkeypatch, capsys, args)
    assert option in message and allowed in message and repr(value) in message
    assert not runs.exists()


def test_the_table_names_a_scale_other_than_1_and_a_budget_raised_to_1_epoch() -> None:
    def records(scale: float) -> list[dict]:
        return [_record("sine", arm, 0, 1.0, 0.5) | {"epochs_scale": scale} for arm in ("p=0.1", "learned")]

    assert "**sine** (20 epochs x scale, 30 MC passes)" in render(records(1.0))  # the committed format
    assert "**sine** (20 epochs x scale 0.05 = 1 epoch(s), 30 MC passes)" in render(records(0.05))
    assert "**sine** (20 epochs x scale 0.01 = 0.2, raised to 1 epoch, 30 MC passes)" in render(records(0.01))
    with pytest.raises(ValueError, match="different --epochs-scale"):
        render(records(1.0) + records(0.5))


def test_runs_recorded_at_another_scale_are_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, output = tmp_path / "runs", tmp_path / "T.md"
    _write_runs(runs, "sine", [0], scale=0.05)
    args = ["--only", "sine", "--seeds", "0", "--runs", str(runs), "--output", str(output)]
    message = _refused(monkeypatch, capsys, args)  # the default scale 1 on runs made at 0.05
    assert "--epochs-scale" in message and "0.05, got 1" in message
    message = _refused(monkeypatch, capsys, [*args, "--table-only", "--epochs-scale", "0.5"])
    assert "0.05, got 0.5" in message
    assert not output.exists()
    # with --table-only and no --epochs-scale the table is drawn at the runs' scale, and says it
    assert "20 epochs x scale 0.05 = 1 epoch(s)" in concrete_evidence.main([*args, "--table-only"])
    _write_runs(runs, "airline", [0], scale=1.0)
    message = _refused(monkeypatch, capsys, [*args, "--table-only"])
    assert "--runs holds runs recorded at different --epochs-scale values [0.05, 1.0]" in message


def test_table_only_refuses_missing_runs_and_applies_only_and_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, output = tmp_path / "runs", tmp_path / "T.md"
    args = ["--table-only", "--runs", str(runs), "--output", str(output)]
    assert f"--table-only draws the table from recorded runs, but --runs {runs} holds none" in _refused(
        monkeypatch, capsys, args
    )
    assert not runs.exists()  # a missing folder is not created
    runs.mkdir()
    assert f"--runs {runs} holds none" in _refused(monkeypatch, capsys, args)  # an empty one
    assert not output.exists()
    _write_runs(runs, "sine", [0, 1])
    _write_runs(runs, "airline", [0])
    assert "holds no runs of vowels" in _refused(monkeypatch, capsys, [*args, "--only", "vowels"])
    assert "holds no runs of airline seed 1" in _refused(
        monkeypatch, capsys, [*args, "--only", "airline", "--seeds", "1"]
    )
    table = concrete_evidence.main([*args, "--only", "airline", "--seeds", "0"])
    assert "**airline**" in table and "**sine**" not in table
    assert "holds no runs of airline seed 1" in _refused(monkeypatch, capsys, [*args, "--seeds", "1"])  # of a task
    table = concrete_evidence.main([*args, "--only", "sine", "--seeds", "1"])
    assert "**airline**" not in table and "| learned | 1 |" in table
    assert "| learned | 2 |" in concrete_evidence.main(args)  # no filter: every recorded run


@pytest.mark.parametrize(
    "bad", ["runs is a file", "other JSON", "not JSON", "misnamed run", "output folder", "output dir"]
)
def test_bad_runs_and_output_are_refused_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    runs, output = tmp_path / "runs", tmp_path / "T.md"
    _write_runs(runs, "sine", [0])
    if bad == "runs is a file":
        runs = tmp_path / "runs.txt"
        runs.write_text("")
    elif bad == "other JSON":
        (runs / "config.json").write_text('{"lr": 0.1}')
    elif bad == "not JSON":
        (runs / "sine_learned_seed0.json").write_text("{")
    elif bad == "misnamed run":
        (runs / "sine_learned_seed0.json").rename(runs / "sine_learned_seed7.json")
    elif bad == "output folder":
        output = tmp_path / "missing" / "T.md"
    else:
        output = tmp_path
    args = ["--only", "sine", "--seeds", "0", "--runs", str(runs), "--output", str(output)]
    message = _refused(monkeypatch, capsys, args)
    assert ("--output" if bad.startswith("output") else "--runs") in message
    if bad in ("other JSON", "not JSON", "misnamed run"):
        assert "is not a run recorded by this script" in message


def test_help_says_seeds_are_values_not_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        concrete_evidence.main(["--help"])
    assert "seed VALUES, not a count" in " ".join(capsys.readouterr().out.split())


def test_the_committed_table_is_drawn_from_the_committed_runs(tmp_path: Path) -> None:
    committed = (ROOT / "recipes" / "CONCRETE_EVIDENCE.md").read_text()
    table = concrete_evidence.main(["--table-only", "--output", str(tmp_path / "T.md")])
    assert table.split("\n", 1)[1] == committed.split("\n", 1)[1]  # all but the header naming the machine
