"""recipes/evidence.py: it runs the recipes, and every number of its table comes from those runs."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

import pytest

import evidence
import sonar_mlp
from evidence import Run, render, run_experiments


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [evidence.__file__])


def table_rows(markdown: str, title_start: str) -> dict[str, list[str]]:
    """The cells of each row of the table under the section whose title starts with ``title_start``."""
    section = markdown.split(f"## {title_start}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| configuration"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def mean_std(values: list[float]) -> str:
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


@pytest.mark.slow
def test_sonar_table_comes_from_the_runs(tmp_path: Path) -> None:
    output, json_path = tmp_path / "E.md", tmp_path / "E.json"
    runs = run_experiments(["sonar"], [0, 1], "tiny", output, json_path, tmp_path / "logs")
    saved = json.loads(json_path.read_text())
    assert len(runs) == len(saved["runs"]) == 6 and saved["meta"]["seeds"] == [0, 1]
    # a run's number is what the recipe itself gives for that seed
    again = sonar_mlp.cross_validate("hidden", folds=2, epochs=2, seed=1)
    recorded = next(r for r in saved["runs"] if r["config"].startswith("dropout 0.2 on the hidden") and r["seed"] == 1)
    assert recorded["test"] == again.mean and recorded["train"] == again.train_mean
    markdown = output.read_text()
    rows = table_rows(markdown, "Sonar")
    assert len(rows) == 3
    for config in evidence.EXPERIMENTS[-1].configs:
        mine = [r for r in saved["runs"] if r["config"] == config.label]
        cells = rows[config.label]
        assert cells[0] == mean_std([r["test"] for r in mine])
        assert cells[1] == mean_std([r["train"] for r in mine])
        assert cells[2] == mean_std([r["train"] - r["test"] for r in mine])  # accuracy: gap = train - test
        assert cells[5] == "2" and cells[6] == config.published
    assert "**Scale: tiny**" in markdown


@pytest.mark.slow
def test_cli_recipe_run_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output, json_path = tmp_path / "E.md", tmp_path / "E.json"
    runs = run_experiments(["airline"], [0], "tiny", output, json_path, tmp_path / "logs")
    assert [r.config for r in runs] == [c.label for c in evidence._EXPERIMENTS_BY_NAME["airline"].configs]
    for run in runs:
        summary = json.loads((Path(run.extra["log_dir"]) / "summary.json").read_text())
        assert run.test == summary["metrics"]["test_rmse"] and run.epochs == summary["epochs_trained"] == 2
        assert run.train > 0 and run.gap == pytest.approx(run.test - run.train)  # RMSE: gap = test - train
    before = output.read_text()

    def fail(*args: object) -> Run:
        raise AssertionError("a finished run ran again")

    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", fail)
    resumed = run_experiments(["airline"], [0], "tiny", output, json_path, tmp_path / "logs", resume=True)
    assert [asdict_test(r) for r in resumed] == [asdict_test(r) for r in runs]
    assert output.read_text() == before


def asdict_test(run: Run) -> tuple[str, int, float]:
    return run.config, run.seed, run.test


def fake(experiment: str, config: str, tests: list[float]) -> list[Run]:
    return [Run(experiment, config, seed, test=t, train=t / 2, seconds=1.0, epochs=3) for seed, t in enumerate(tests)]


def test_verdicts_say_where_regularization_did_not_help() -> None:
    configs = evidence._EXPERIMENTS_BY_NAME["airline"].configs  # airline: lower RMSE is better
    reference, regularized = configs[0].label, configs[-1].label
    meta = {"command": "x", "date": "d", "machine": "m", "total_seconds": 60.0, "json": "E.json", "seeds": [0, 1, 2],
            "scale": "full"}  # fmt: skip
    worse = render(fake("airline", reference, [20, 21, 22]) + fake("airline", regularized, [30, 31, 32]), meta)
    assert f"- *{regularized}* did **not** help: +10.00 against *{reference}*." in worse
    better = render(fake("airline", reference, [20, 21, 22]) + fake("airline", regularized, [20.5, 19.5, 20.5]), meta)
    assert (
        f"- *{regularized}* helped: -0.83 against *{reference}* (within one standard deviation of the seeds)." in better
    )
    rows = table_rows(worse, "airline")
    assert rows[reference][:3] == ["21.00 ± 1.00", "10.50 ± 0.50", "10.50 ± 0.50"]
    assert "## JapaneseVowels" not in worse  # experiments without runs get no table


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(
        ValueError,
        match=r"experiments must be among \['acsf1', 'airline', .*'sonar', 'sunspots', 'sunspots_tuned'\], "
        r"got \['mnist'\]",
    ):
        run_experiments(["mnist"], [0], "tiny", tmp_path / "E.md", tmp_path / "E.json", tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        evidence.main(["--seeds", "0", "--output", str(tmp_path / "E.md")])
    assert exit_info.value.code == 2  # argparse's usage error, not a crash
    assert "--seeds must be an int >= 1, got 0" in capsys.readouterr().err
    assert re.search(r"python recipes/evidence.py", evidence.__doc__ or "")


def test_variational_is_also_judged_against_per_step_dropout() -> None:
    none, per_step, variational, awd = (c.label for c in evidence._EXPERIMENTS_BY_NAME["asv_masks"].configs)
    meta = {"command": "x", "date": "d", "machine": "m", "total_seconds": 1.0, "json": "E.json", "seeds": [0, 1],
            "scale": "full"}  # fmt: skip
    runs = (
        fake("asv_masks", none, [170, 180])
        + fake("asv_masks", per_step, [90, 92])
        + fake("asv_masks", variational, [80, 82])
    )
    markdown = render(runs, meta)
    assert f"- *{variational}* helped: -10.00 against *{per_step}*." in markdown
    assert f"- *{variational}* helped: -94.00 against *{none}*." in markdown
    assert awd not in markdown  # no runs, no row and no verdict


def test_resume_with_every_run_done_redraws_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    json_path, output = tmp_path / "E.json", tmp_path / "E.md"
    runs = fake("airline", "none", [20, 22])
    meta = {"command": "python recipes/evidence.py --only airline", "date": "d", "machine": "m", "total_seconds": 90.0,
            "json": "E.json", "seeds": [0, 1], "scale": "full"}  # fmt: skip
    json_path.write_text(json.dumps({"meta": meta, "runs": [r.__dict__ for r in runs]}))
    airline = evidence._EXPERIMENTS_BY_NAME["airline"]
    # an experiment whose only configuration has all its runs: resuming must run nothing
    finished = evidence.Experiment(airline.name, airline.title, airline.metric, False, airline.configs[:1])
    monkeypatch.setitem(evidence._EXPERIMENTS_BY_NAME, "airline", finished)
    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", lambda *args: pytest.fail("a finished run ran again"))
    resumed = run_experiments(["airline"], [0, 1], "full", output, json_path, tmp_path, resume=True)
    assert [r.test for r in resumed] == [20, 22]
    markdown = output.read_text()
    assert "Produced by `python recipes/evidence.py --only airline`" in markdown and "1.5 min" in markdown
    assert table_rows(markdown, "airline")["none"][0] == "21.00 ± 1.41"
    assert json.loads(json_path.read_text())["runs"] == [r.__dict__ for r in runs]


def test_baselines_and_the_overview_say_who_wins() -> None:
    configs = [c.label for c in evidence._EXPERIMENTS_BY_NAME["nile"].configs]
    meta = {"command": "x", "date": "d", "machine": "m", "total_seconds": 1.0, "json": "E.json", "seeds": [0, 1],
            "scale": "reduced"}  # fmt: skip
    runs = fake("nile", configs[0], [130, 132]) + fake("nile", configs[-1], [120, 122])
    for run in runs:
        run.extra["baselines"] = {"naive last-value forecast RMSE": 146.8, "ARIMA RMSE (ARIMA(1,1,1))": 121.6}
    # a run that restored its first check although later ones ran is named
    runs[-1].extra.update(restored_epoch=2, first_check_epoch=2)
    runs[-1].epochs = 10
    markdown = render(runs, meta)
    assert "**Scale: reduced**" in markdown
    overview = markdown.split("## Overview", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in overview.splitlines() if line.startswith("| nile"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # all (121) beats none (131) and the naive forecast, but not ARIMA (121.6 > 121): it does, by 0.6
    assert cells == ["nile", "131.00", "121.00", f"{configs[-1]} (121.00)", "ARIMA 121.60", "yes", "yes", "yes"]
    assert f"- *{configs[0]}* (131.00) does **not** beat ARIMA." in markdown
    assert f"- *{configs[-1]}* (121.00) beats every baseline." in markdown
    assert f"restored its **first check** in 1 run(s) ({configs[-1]} seed 1)" in markdown
    runs[0].extra["baselines"]["ARIMA RMSE (ARIMA(1,1,1))"] = 100.0
    for run in runs:
        run.extra["baselines"] = runs[0].extra["baselines"]
    row = next(line for line in render(runs, meta).splitlines() if line.startswith("| nile"))
    assert row.rstrip(" |").endswith("**no**")  # now the best arm loses to ARIMA


def test_merge_joins_parallel_runs(tmp_path: Path) -> None:
    meta = {"command": "a", "date": "d", "machine": "m", "total_seconds": 60.0, "json": "A.json", "seeds": [0],
            "scale": "reduced"}  # fmt: skip
    (tmp_path / "A.json").write_text(
        json.dumps({"meta": meta, "runs": [r.__dict__ for r in fake("nile", "none", [1])]})
    )
    meta_b = {**meta, "command": "b", "seeds": [0, 1]}
    runs_b = fake("lynx", "none", [5, 6])
    (tmp_path / "B.json").write_text(json.dumps({"meta": meta_b, "runs": [r.__dict__ for r in runs_b]}))
    merged = evidence.main(["--merge", str(tmp_path / "A.json"), str(tmp_path / "B.json"), "--output",
                            str(tmp_path / "E.md")])  # fmt: skip
    assert [(r.experiment, r.seed) for r in merged] == [("nile", 0), ("lynx", 0), ("lynx", 1)]
    saved = json.loads((tmp_path / "E.json").read_text())
    assert saved["meta"]["total_seconds"] == 120.0 and saved["meta"]["seeds"] == [0, 1] and len(saved["runs"]) == 3
    assert "## lynx" in (tmp_path / "E.md").read_text()


def all_arms(experiment: str) -> list[Run]:
    return [
        run for c in evidence._EXPERIMENTS_BY_NAME[experiment].configs for run in fake(experiment, c.label, [50, 52])
    ]


def test_published_numbers_reach_the_table() -> None:
    # every shipped set but BasicMotions (no readable source) has numbers; a few are pinned to their sources
    assert set(evidence.PUBLISHED) == set(evidence.UCR_SETS) - {"BasicMotions"}
    pinned = {
        ("GunPoint", "UCR archive 2018", "1-NN DTW (no window)"): 90.67,  # DataSummary.csv: error 0.0933
        ("ArrowHead", "Karim et al. 2017, Table 1", "LSTM-FCN"): 90.86,
        ("OSULeaf", "Karim et al., min. training loss", "LSTM-FCN"): 98.35,  # train_loss_old_datasets.csv: 0.98347
        ("JapaneseVowels", "Fawaz et al. 2019", "FCN"): 99.3,
        ("PLAID", "UCR archive 2018", "1-NN DTW (learned window)"): 83.43,  # error 0.1657
    }
    for (name, source, model), accuracy in pinned.items():
        assert (
            evidence.Published(source, model, accuracy, entry_digits(name, source, model)) in evidence.PUBLISHED[name]
        )
    meta = {"command": "x", "date": "d", "machine": "m", "total_seconds": 1.0, "json": "E.json", "seeds": [0, 1],
            "scale": "reduced"}  # fmt: skip
    everything = evidence.ARM_LABELS["all"]
    for name in evidence.UCR_SETS:
        markdown = render(all_arms(name.lower()), meta)
        rows = table_rows(markdown, f"{name},")
        cell = rows[everything][-1]
        entries = evidence.PUBLISHED.get(name, ())
        assert cell == (evidence._published_cell(name) if entries else "-")
        for entry in entries:
            assert f"{entry.model} {entry.accuracy:.{entry.digits}f}" in cell and entry.source in cell
        assert all(cells[-1] == "-" for label, cells in rows.items() if label != everything)
        # the protocol note sits under the title wherever there are numbers
        assert ("*published* column" in markdown) == bool(entries)
    assert "1-NN DTW (no window) 90.67" in evidence._published_cell("GunPoint")
    with pytest.raises(ValueError, match=r"name must be one of \['ACSF1', .*'PLAID'\], got 'gunpoint'"):
        evidence._published_cell("gunpoint")


def entry_digits(name: str, source: str, model: str) -> int:
    return next(e.digits for e in evidence.PUBLISHED[name] if (e.source, e.model) == (source, model))


def test_committed_evidence_shows_the_published_numbers() -> None:
    """recipes/EVIDENCE.md is redrawn from its JSON with the current table: no set loses its numbers."""
    markdown = (Path(evidence.__file__).parent / "EVIDENCE.md").read_text()
    for name in evidence.PUBLISHED:
        assert table_rows(markdown, f"{name},")[evidence.ARM_LABELS["all"]][-1] == evidence._published_cell(name)
    # where the archive's 1-NN DTW has no window, as ours, the recorded baseline is the published number
    saved = json.loads((Path(evidence.__file__).parent / "EVIDENCE.json").read_text())
    for name in ("ArrowHead", "GunPoint", "ItalyPowerDemand", "OSULeaf"):
        ours = next(
            r["extra"]["baselines"]["1-NN DTW accuracy"] for r in saved["runs"] if r["experiment"] == name.lower()
        )
        published = next(e.accuracy for e in evidence.PUBLISHED[name] if e.model == "1-NN DTW (no window)")
        assert round(ours, 2) == published
