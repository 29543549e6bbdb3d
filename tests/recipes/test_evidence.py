"""recipes/evidence.py: it runs the recipes, and every number of its table comes from those runs."""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import threadpoolctl
import torch

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
        match=r"experiments must be among \['acsf1', 'acsf1_tuned', 'airline', .*'sunspots', 'sunspots_tuned'\], "
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
    assert f"**first check** improved in 1 run(s) ({configs[-1]} seed 1)" in markdown
    # a run that kept its last weights and stopped as soon as patience allowed is named too
    runs[-1].extra.update(restored_epoch=None, best_epoch=2, stopped_early=True)
    assert f"**first check** improved in 1 run(s) ({configs[-1]} seed 1)" in render(runs, meta)
    runs[-1].extra.update(best_epoch=3)  # a later check improved: nothing to name
    assert "**first check**" not in render(runs, meta)
    runs[-1].extra.update(best_epoch=2, stopped_early=False)  # the budget ended the run, not patience
    assert "**first check**" not in render(runs, meta)
    runs[-1].extra.update(restored_epoch=2, best_epoch=None)
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
    meta_b = {**meta, "command": "b", "seeds": [0, 1], "date": "e"}
    runs_b = fake("lynx", "none", [5, 6])
    (tmp_path / "B.json").write_text(json.dumps({"meta": meta_b, "runs": [r.__dict__ for r in runs_b]}))
    merged = evidence.main(["--merge", str(tmp_path / "A.json"), str(tmp_path / "B.json"), "--output",
                            str(tmp_path / "E.md")])  # fmt: skip
    assert [(r.experiment, r.seed) for r in merged] == [("nile", 0), ("lynx", 0), ("lynx", 1)]
    saved = json.loads((tmp_path / "E.json").read_text())
    assert saved["meta"]["total_seconds"] == 120.0 and saved["meta"]["seeds"] == [0, 1] and len(saved["runs"]) == 3
    assert saved["meta"]["date"] == "d and e"  # runs of two days say so
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


# --jobs: runs in worker processes. The fake runners below live at module level so that a spawned
# worker can import them (a pickled function is its module and name).
_SLOW = "none"  # the first airline arm: the fake runners hold it back


def sleepy_runner(
    experiment: evidence.Experiment, config: evidence.Config, seed: int, scale: str, log_root: Path, *study: Any
) -> Run:
    """A run that takes 4 s for the first arm and none for the others, and says where it ran."""
    if config.label == _SLOW:
        time.sleep(4.0)
    place = [c.label for c in experiment.configs].index(config.label)
    return Run(experiment.name, config.label, seed, test=10.0 * seed + place, train=1.0, seconds=0.0, epochs=1,
               extra={"pid": os.getpid(), "threads": torch.get_num_threads(), "blas": blas_threads()})  # fmt: skip


def blas_threads() -> int:
    return max(pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas")


def failing_runner(
    experiment: evidence.Experiment, config: evidence.Config, seed: int, scale: str, log_root: Path, *study: Any
) -> Run:
    """The first arm fails at once; the second takes 2 s."""
    if config.label == _SLOW:
        raise ValueError(f"a broken run ({config.label}, seed {seed})")
    time.sleep(2.0)
    return Run(experiment.name, config.label, seed, test=1.0, train=1.0, seconds=0.0)


def comparable(run: dict[str, object]) -> dict[str, object]:
    """A recorded run without what differs between two runs of it: its wall time and its log folder."""
    extra = {k: v for k, v in run["extra"].items() if k != "log_dir"}  # type: ignore[attr-defined]
    return {**{k: v for k, v in run.items() if k not in ("seconds", "extra")}, "extra": extra}


def without_seconds(rows: dict[str, list[str]]) -> dict[str, list[str]]:
    return {label: cells[:4] + cells[5:] for label, cells in rows.items()}  # cells[4] is s / run


@pytest.mark.slow
def test_jobs_2_records_the_same_runs_and_table_as_jobs_1(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    results = {}
    for jobs in (1, 2):
        output, json_path = tmp_path / f"J{jobs}.md", tmp_path / f"J{jobs}.json"
        runs = run_experiments(["airline"], [0], "tiny", output, json_path, tmp_path / f"logs{jobs}", jobs=jobs)
        saved = json.loads(json_path.read_text())
        assert [asdict(r) for r in runs] == saved["runs"]
        results[jobs] = saved, output.read_text()
    (one, table_one), (two, table_two) = results[1], results[2]
    plan = [("airline", c.label, 0) for c in evidence._EXPERIMENTS_BY_NAME["airline"].configs]
    assert [(r["experiment"], r["config"], r["seed"]) for r in two["runs"]] == plan
    assert all(r["test"] > 0 and r["train"] > 0 and r["epochs"] == 2 for r in two["runs"])
    # the recipes seed every run: in other processes, in another order, they give the same numbers
    assert [comparable(r) for r in two["runs"]] == [comparable(r) for r in one["runs"]]
    assert without_seconds(table_rows(table_two, "airline")) == without_seconds(table_rows(table_one, "airline"))
    assert (
        table_two.split("\n## ", 1)[1].split("| configuration")[0]
        == table_one.split("\n## ", 1)[1].split("| configuration")[0]
    )
    assert "2 runs at once" in two["meta"]["machine"] and "runs at once" not in one["meta"]["machine"]


@pytest.mark.slow
def test_jobs_keep_the_sequential_order_whatever_order_runs_end_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", sleepy_runner)
    torch.set_num_threads(1)
    output, json_path = tmp_path / "E.md", tmp_path / "E.json"
    runs = run_experiments(["airline"], [0, 1], "tiny", output, json_path, tmp_path, jobs=2)
    labels = [c.label for c in evidence._EXPERIMENTS_BY_NAME["airline"].configs]
    out = capsys.readouterr().out
    ended = [line[10:].split(":")[0].strip() for line in out.splitlines() if line.startswith("[evidence]   ")]
    # the premise: the slow first arm of seed 0 ended after later runs
    assert ended.index(f"airline | {_SLOW} | seed 0") > ended.index(f"airline | {labels[1]} | seed 0")
    expected = [(label, seed) for seed in (0, 1) for label in labels]
    assert [(r.config, r.seed) for r in runs] == expected
    saved = json.loads(json_path.read_text())
    assert [(r["config"], r["seed"]) for r in saved["runs"]] == expected
    assert [r["test"] for r in saved["runs"]] == [10.0 * seed + i for seed in (0, 1) for i in range(4)]
    # each run ran in a worker process, with this process's torch threads
    assert {r["extra"]["threads"] for r in saved["runs"]} == {r["extra"]["blas"] for r in saved["runs"]} == {1}
    assert os.getpid() not in {r["extra"]["pid"] for r in saved["runs"]}
    # the estimate comes first: no run of the airline recipe is time-capped
    first = out.splitlines()[0]
    assert first == "[evidence] 8 runs, 2 at a time. Worst case: unknown: none of them is time-capped " \
        "(--trainer.max_time)."  # fmt: skip
    assert table_rows(output.read_text(), "airline")[labels[1]][:2] == ["6.00 ± 7.07", "1.00 ± 0.00"]


@pytest.mark.slow
def test_resume_with_jobs_skips_the_recorded_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", sleepy_runner)
    labels = [c.label for c in evidence._EXPERIMENTS_BY_NAME["airline"].configs]
    # as left by a run killed after two runs had ended (one of them the slow arm, recorded with its own number)
    partial = [Run("airline", labels[0], 0, test=1234.5, train=1.0, seconds=1.0),
               Run("airline", labels[2], 0, test=2345.5, train=1.0, seconds=1.0)]  # fmt: skip
    meta = {"command": "python recipes/evidence.py --jobs 2", "date": "d", "machine": "m", "total_seconds": 60.0,
            "json": "E.json", "seeds": [0], "scale": "tiny"}  # fmt: skip
    json_path = tmp_path / "E.json"
    json_path.write_text(json.dumps({"meta": meta, "runs": [asdict(r) for r in partial]}))
    runs = run_experiments(["airline"], [0], "tiny", tmp_path / "E.md", json_path, tmp_path, resume=True, jobs=2)
    started = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[evidence] airline |")]
    assert started == [f"[evidence] airline | {labels[1]} | seed 0", f"[evidence] airline | {labels[3]} | seed 0"]
    saved = json.loads(json_path.read_text())
    # the recorded runs are kept as they were, first; the new ones follow in the plan's order
    assert [(r["config"], r["test"]) for r in saved["runs"]] == [
        (labels[0], 1234.5), (labels[2], 2345.5), (labels[1], 1.0), (labels[3], 3.0)
    ]  # fmt: skip
    assert [(r.config, r.test) for r in runs] == [(r["config"], r["test"]) for r in saved["runs"]]
    assert saved["meta"]["command"] == "python recipes/evidence.py --jobs 2 (resumed: python recipes/evidence.py)"


@pytest.mark.slow
def test_a_failed_run_with_jobs_is_raised_and_the_others_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", failing_runner)
    labels = [c.label for c in evidence._EXPERIMENTS_BY_NAME["airline"].configs]
    json_path = tmp_path / "E.json"
    with pytest.raises(ValueError, match=r"a broken run \(none, seed 0\)") as error:
        run_experiments(["airline"], [0], "tiny", tmp_path / "E.md", json_path, tmp_path, jobs=2)
    assert "failing_runner" in str(error.value.__cause__)  # the worker's traceback comes with it
    captured = capsys.readouterr()
    assert "[evidence] FAILED: airline | none | seed 0: ValueError: a broken run (none, seed 0)" in captured.err
    # the run under way when the first failed was finished and saved; no run started after the failure
    assert [r["config"] for r in json.loads(json_path.read_text())["runs"]] == [labels[1]]
    assert f"[evidence] airline | {labels[2]} | seed 0" not in captured.out


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_jobs_must_be_a_positive_int(value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        evidence.main(["--only", "airline", "--scale", "tiny", "--output", str(tmp_path / "E.md"), "--jobs", value])
    assert exit_info.value.code == 2
    assert f"argument --jobs: must be an int >= 1, got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "E.json").exists()  # nothing ran


def test_jobs_errors_in_run_experiments(tmp_path: Path) -> None:
    for jobs in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match=rf"jobs must be an int >= 1, got {jobs!r}"):
            run_experiments(["airline"], [0], "tiny", tmp_path / "E.md", tmp_path / "E.json", tmp_path, jobs=jobs)  # type: ignore[arg-type]


def test_the_time_estimate_sums_the_caps_of_the_capped_runs() -> None:
    plaid, gunpoint, sonar = (evidence._EXPERIMENTS_BY_NAME[n] for n in ("plaid", "gunpoint", "sonar"))
    # full: PLAID's 2-minute guard beside its epoch budget; reduced: the 1-minute cap; tiny: no cap
    assert [evidence.time_cap(plaid, plaid.configs[0], s) for s in ("full", "reduced", "tiny")] == [120.0, 60.0, None]
    assert evidence._option(evidence._recipe_args(plaid, plaid.configs[0], "full"), "--trainer.max_epochs") == "40"
    assert evidence.time_cap(sonar, sonar.configs[0], "full") is None
    tuned = evidence.Config("tuned", ("--tune", "3"))  # 3 trials and the final training, each capped
    assert evidence.time_cap(gunpoint, tuned, "full") == 4 * 60.0
    assert evidence.time_cap(gunpoint, tuned, "full", study=False) == 60.0  # reuses another seed's study
    plan = [(seed, e, c) for seed in (0, 1, 2) for e in (plaid, gunpoint) for c in e.configs]
    line = evidence.time_estimate([*plan, (0, sonar, sonar.configs[0]), (1, sonar, sonar.configs[0])], "full", 3)
    assert line == (
        "26 runs, 3 at a time. Worst case: the 24 time-capped runs (--trainer.max_time) train for at most 36.0 min "
        "in all, 12.0 min of wall time over 3 jobs (an upper bound on their training; loading, baselines and "
        "testing add to it); 2 runs have no time cap: their time is unknown and not included."
    )
    assert evidence.time_estimate(plan, "reduced", 1).startswith(
        "24 runs, 1 at a time. Worst case: the 24 time-capped runs (--trainer.max_time) train for at most 24.0 min "
        "in all, 24.0 min of wall time over 1 job ("
    )
    assert evidence.time_estimate(plan[:1], "tiny", 2).endswith(
        "unknown: the run is not time-capped (--trainer.max_time)."
    )


def test_the_recipes_get_the_threads_of_the_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    class Stop(Exception):
        pass

    class FakeRecipe:
        @staticmethod
        def cli(args: list[str]) -> None:
            seen.append(args)
            raise Stop

    monkeypatch.setitem(evidence._CLI_RECIPES, "airline_lstm", (FakeRecipe, "test_rmse", "val_rmse", False))
    airline = evidence._EXPERIMENTS_BY_NAME["airline"]
    torch.set_num_threads(3)
    with pytest.raises(Stop):
        evidence._run_cli_recipe(airline, airline.configs[0], 0, "tiny", tmp_path)
    args = seen[0]
    assert args[args.index("--num_threads") + 1] == "3"


def test_a_run_in_this_process_has_as_many_blas_threads_as_torch_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []

    def runner(
        experiment: evidence.Experiment, config: evidence.Config, seed: int, scale: str, root: Path, *study: Any
    ) -> Run:
        seen.append((torch.get_num_threads(), blas_threads()))
        return Run(experiment.name, config.label, seed, test=1.0, train=1.0, seconds=0.0)

    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", runner)
    torch.set_num_threads(1)
    before = blas_threads()
    run_experiments(["airline"], [0], "tiny", tmp_path / "E.md", tmp_path / "E.json", tmp_path)
    assert seen == [(1, 1)] * 4
    assert blas_threads() == before  # the limit is lifted afterwards


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_tuned_arm_studies_once_and_every_seed_trains_with_its_best_values(tmp_path: Path, jobs: int) -> None:
    runs = run_experiments(["nile_tuned"], [0, 1, 2], "tiny", tmp_path / "E.md", tmp_path / "E.json", tmp_path,
                           jobs=jobs)  # fmt: skip
    for config in evidence._EXPERIMENTS_BY_NAME["nile_tuned"].configs:
        mine = sorted((r for r in runs if r.config == config.label), key=lambda r: r.seed)
        assert [r.seed for r in mine] == [0, 1, 2]
        study = mine[0].extra["tuned"]
        assert study["trials"] == 2 and "shared" not in study  # the first seed ran the study
        for run in mine[1:]:  # the others trained once with its values
            assert run.extra["tuned"] == {"best": study["best"], "shared": True}
    # the regularized study ran after the unregularized one, its unregularized trial at that study's learning
    # rate: it repeats that trial, so it ends no worse on validation
    none_study, all_study = (next(r.extra["tuned"] for r in runs if r.seed == 0 and r.config == c.label)
                             for c in evidence._EXPERIMENTS_BY_NAME["nile_tuned"].configs)  # fmt: skip
    assert "none_lr" not in none_study and all_study["none_lr"] == none_study["best"]["lr"]
    assert all_study["best_score"] <= none_study["best_score"]
    text = (tmp_path / "E.md").read_text()
    assert "tuned all" in text and "its unregularized trial at the tuned none arm's lr" in text


@pytest.mark.slow
def test_a_seasonal_series_regularized_study_takes_the_bare_studys_difference_too(tmp_path: Path) -> None:
    # Airline's window holds two periods: each study chooses the difference, and the regularized study's
    # unregularized trial repeats the bare study's best, lag included
    runs = run_experiments(["airline_tuned"], [0, 1], "tiny", tmp_path / "E.md", tmp_path / "E.json", tmp_path)
    none_study, all_study = (next(r.extra["tuned"] for r in runs if r.seed == 0 and r.config == c.label)
                             for c in evidence._EXPERIMENTS_BY_NAME["airline_tuned"].configs)  # fmt: skip
    assert none_study["best"]["difference"] in (0, 12)
    assert all_study["none_difference"] == none_study["best"]["difference"]
    assert all_study["best_score"] <= none_study["best_score"]
    seed1 = next(r for r in runs if r.seed == 1 and r.config == "tuned none")
    assert seed1.extra["tuned"]["best"]["difference"] == none_study["best"]["difference"]
    assert f"and difference {none_study['best']['difference']}" in (tmp_path / "E.md").read_text()


@pytest.mark.slow
def test_after_a_cross_validated_study_every_seed_is_refit_for_the_studys_epochs(tmp_path: Path) -> None:
    runs = run_experiments(["arrowhead_tuned"], [0, 1], "tiny", tmp_path / "E.md", tmp_path / "E.json", tmp_path)
    for config in evidence._EXPERIMENTS_BY_NAME["arrowhead_tuned"].configs:
        study, other = sorted((r for r in runs if r.config == config.label), key=lambda r: r.seed)
        assert study.extra["tuned"]["folds"] == 3 and "shared" not in study.extra["tuned"]
        epochs = study.extra["refit"]["epochs"]
        assert 1 <= epochs <= 2  # the tiny scale trains 2 epochs
        # both seeds train on all 36 training cases for the study's epochs; the second without a study
        assert study.extra["refit"] == other.extra["refit"] == {"epochs": epochs, "cases": 36}
        assert other.extra["tuned"] == {"best": study.extra["tuned"]["best"], "shared": True}
    assert "every seed then refit on all 36 training cases" in (tmp_path / "E.md").read_text()


def test_without_study_drops_the_tune_option_and_gives_the_values() -> None:
    args = ["--data.dataset", "nile", "--tune", "8", "--model.regularize", "all", "--tune=3"]
    assert evidence._without_study(args, {"lr": 0.01, "dropout": 0.5}) == [
        "--data.dataset", "nile", "--model.regularize", "all", "--model.lr", "0.01", "--model.dropout", "0.5",
    ]  # fmt: skip


def test_the_targets_are_counted_from_the_tuned_arms() -> None:
    meta = {"command": "x", "date": "d", "machine": "m", "total_seconds": 60.0, "json": "E.json", "seeds": [0, 1],
            "scale": "full"}  # fmt: skip

    def tuned(name: str, none: float, everything: float, baselines: dict[str, float]) -> list[Run]:
        labels = [c.label for c in evidence._EXPERIMENTS_BY_NAME[name].configs]
        runs = fake(name, labels[0], [none, none]) + fake(name, labels[1], [everything, everything])
        for run in runs:
            run.extra["baselines"] = baselines
        runs[0].extra["tuned"] = {"best": {"lr": 0.01}, "trials": 4, "pruned": 1, "best_score": 0.5}
        return runs

    dtw = {"majority-class accuracy": 50.0, "1-NN DTW accuracy": 90.0}
    arima = {"naive last-value forecast RMSE": 150.0, "ARIMA RMSE (ARIMA(1,1,1))": 120.0}
    runs = (tuned("gunpoint_tuned", 85.0, 95.0, dtw) + tuned("arrowhead_tuned", 80.0, 70.0, dtw)
            + tuned("nile_tuned", 125.0, 119.0, arima))  # fmt: skip
    # nile's regularized study switched regularization off, with 3-fold cross-validation
    study = {"best": {"regularize": "none", "lr": 0.002}, "trials": 4, "pruned": 0, "best_score": 0.4, "folds": 3}
    next(r for r in runs if r.experiment == "nile_tuned" and r.config.startswith("tuned all")).extra["tuned"] = study
    text = render(runs, meta)
    assert "- The regularized study switched regularization off on 1 of 3 data sets (nile): there the arm" in text
    assert ("the study (seed 0, 4 trials, 0 pruned, each trial scored by 3-fold cross-validation) chose "
            "**no regularization** (the unregularized network), lr 0.002.") in text  # fmt: skip
    assert "- Tuned regularized at least as good as tuned unregularized: 2 of 3 data sets (not: arrowhead)" in text
    assert "- Tuned regularized better than the trivial baseline: 3 of 3 data sets (target: all)." in text
    assert "- Classification: tuned regularized beats 1-NN DTW on 1 of 2 sets (not: arrowhead)" in text
    assert "- Forecasting: tuned regularized at least as good as ARIMA on 1 of 1 series (target: 3 of 5)." in text
    assert "- *tuned none*: the study (seed 0, 4 trials, 1 pruned) chose lr 0.01." in text
    # the untuned arms do not count toward the targets
    assert "## Targets" not in render(fake("airline", "none", [20.0, 21.0]), meta)


def test_the_tables_pair_runs_on_their_test_cases() -> None:
    meta = {"command": "x", "date": "d", "machine": "m", "total_seconds": 60.0, "json": "E.json", "seeds": [0, 1],
            "scale": "full"}  # fmt: skip
    labels = [c.label for c in evidence._EXPERIMENTS_BY_NAME["nile_tuned"].configs]
    arima = "ARIMA RMSE (ARIMA(1,1,1))"
    # two seeds; per-window squared errors of 40 windows. Seed 0: tuned all is worse on every window by 1 (apart);
    # seed 1: worse by 1 on half the windows and better by 1 on the other half save one (within one standard error)
    base = [float(k % 7) for k in range(40)]
    worse = [[x + 1 for x in base], [x + (1 if k % 2 else -1) for k, x in enumerate(base)]]
    worse[1][0] += 2.0
    runs = fake("nile_tuned", labels[0], [123.0, 123.0]) + fake("nile_tuned", labels[1], [124.0, 124.0])
    for run in runs:
        losses = base if run.config == labels[0] else worse[run.seed]
        run.extra.update(baselines={"naive last-value forecast RMSE": 146.8, arima: 121.6},
                         test_losses=evidence.encode_losses(losses),
                         margins={arima: [0.5, 1.0] if run.seed else [3.0, 1.0]})  # fmt: skip
    runs[0].extra["tuned"] = {"best": {"lr": 0.01}, "trials": 4, "pruned": 1, "best_score": 0.5}
    text = " ".join(render(runs, meta).split())
    assert (
        f"- *{labels[1]}* did **not** help: +1.00 against *{labels[0]}*. Paired on the test cases, at least one "
        "standard error apart in 1 of 2 seeds." in text
    )
    assert (
        f"- *{labels[1]}* (124.00) does **not** beat ARIMA. Against ARIMA, paired on the test cases: at least "
        "one standard error apart in 1 of 2 seeds." in text
    )
    assert (
        "the seeds in which tuned regularized is at least one standard error from tuned unregularized where it "
        "lost to it: nile 1 of 2." in text
    )
    assert "- The same against 1-NN DTW or ARIMA (won or lost on the means, as above): nile 1 of 2 (lost)." in text
    # runs recorded before the losses were (the committed tables up to this change): no such sentence
    for run in runs:
        del run.extra["test_losses"], run.extra["margins"]
    assert "paired on the" not in render(runs, meta).lower()


def test_doctests() -> None:
    import doctest

    result = doctest.testmod(evidence)
    assert result.attempted > 0 and result.failed == 0


def test_a_study_that_kept_early_stopping_says_the_final_fit_was_not_refit() -> None:
    experiment = next(e for e in evidence.EXPERIMENTS if e.name == "acsf1_tuned")
    label = experiment.configs[1].label
    tuned = {"best": {"regularize": "all", "lr": 0.003, "dropout": 0.0}, "trials": 4, "pruned": 0, "folds": 3}
    kept = Run(experiment.name, label, 0, test=71.0, train=80.0, seconds=1.0,
               extra={"tuned": {**tuned, "kept_early_stopping": True}, "refit": None})  # fmt: skip
    lines = " ".join(evidence._study_lines(experiment, [kept]))
    assert "it stops early, so every seed then trained on the recipe's split with early stopping" in lines
    # a series' study (no refit either way) or one without the record: nothing said
    plain = Run(experiment.name, label, 0, test=71.0, train=80.0, seconds=1.0, extra={"tuned": tuned, "refit": None})
    assert "stops early" not in " ".join(evidence._study_lines(experiment, [plain]))


def test_arms_of_an_experiment_log_to_folders_of_their_own() -> None:
    # two arms running at once with one run name (a regularized study that kept the bare network) must
    # not share a folder: both would pick the same _N and the second would stop at the first's config.yaml
    for experiment in evidence.EXPERIMENTS:
        names = [evidence.log_name(experiment, config) for config in experiment.configs]
        assert len(set(names)) == len(names), names
        assert all(name.startswith(f"{experiment.name}/") for name in names)


def test_runs_whose_last_epoch_was_still_the_best_are_named_and_counted() -> None:
    configs = [c.label for c in evidence._EXPERIMENTS_BY_NAME["nile"].configs]
    meta = {"command": "x", "date": "d", "machine": "m", "total_seconds": 1.0, "json": "E.json", "seeds": [0, 1],
            "scale": "full"}  # fmt: skip
    runs = fake("nile", configs[-1], [120, 122])
    for run in runs:
        run.epochs = 50
        run.extra.update(best_epoch=30, stopped_early=False, baselines={"naive last-value forecast RMSE": 146.8})
    runs[1].extra.update(best_epoch=49)  # the budget ended it while its checks still improved
    tuned = evidence._EXPERIMENTS_BY_NAME["nile_tuned"].configs[0].label
    markdown = render([*runs, *fake("nile_tuned", tuned, [125, 126])], meta)  # a tuned arm: the targets' section
    assert f"the best check in 1 run(s) ({configs[-1]} seed 1): the budget ended them" in markdown
    assert "still gave the best check (their budget ended them before they converged by its measure): 1;" in markdown
    # stopped by early stopping, refit without validation, or an earlier best check: nothing to name
    for change in ({"stopped_early": True}, {"refit": {"epochs": 50, "cases": 9}}, {"best_epoch": 48}):
        runs[1].extra.update(best_epoch=49, stopped_early=False, refit=None)
        runs[1].extra.update(change)
        assert "the budget ended them, not early stopping" not in render(runs, meta)


def usage_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line usage error of ``main(args)`` (exit status 2, no traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        evidence.main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("evidence.py: error: ") and "Traceback" not in "\n".join(lines)
    return lines[-1]


def runs_file(path: Path, runs: list[Run], **meta: Any) -> Path:
    """``path``, written as a JSON of ``runs`` (the meta of a tiny run, updated with ``meta``; None: left out)."""
    meta = {"command": "c", "date": "d", "machine": "m", "total_seconds": 1.0, "json": path.name, "seeds": [0, 1],
            "scale": "tiny"} | meta  # fmt: skip
    meta = {key: value for key, value in meta.items() if value is not None}
    path.write_text(json.dumps({"meta": meta, "runs": [asdict(r) for r in runs]}))
    return path


_NILE_RUNS = fake("nile", "none", [1, 2])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "cannot be read (No such file or directory)"),
        ("", "is not JSON (Expecting value"),
        (
            "[1]",
            "is not a JSON of runs: it needs an object with 'meta' (an object) and 'runs' (a list), got a JSON list",
        ),
        ('{"meta": {}, "runs": []}', "is not a JSON of runs: its meta lacks ['command', 'date', 'machine', 'seeds'"),
        ('{"nile-none-0": {}}', "is not a JSON of runs: it needs an object with 'meta'"),  # as recipes/STOPPING.json
        (
            "unknown key",
            "run 0 must have the keys ['config', 'experiment', 'seconds', 'seed', 'test', 'train'] and "
            "may have ['epochs', 'extra'], got ['config', 'epochs', 'experiment', 'extra', 'seconds', 'seed', 'speed'",
        ),
        ("unknown experiment", "run 0 is of no known experiment and configuration, got 'mnist' | 'none'"),
        ("no scale", "its meta lacks ['scale']"),  # the table names the scale
    ],
)
def test_merge_refuses_a_file_that_is_not_a_json_of_runs(
    text: str | None, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "A.json"
    if text == "unknown key":
        runs_file(path, _NILE_RUNS)
        path.write_text(path.read_text().replace('"seed"', '"speed": 1, "seed"', 1))
    elif text == "unknown experiment":
        runs_file(path, fake("mnist", "none", [1]))
    elif text == "no scale":
        runs_file(path, _NILE_RUNS, scale=None)
    elif text is not None:
        path.write_text(text)
    error = usage_error(["--merge", str(path), "--output", str(tmp_path / "E.md")], capsys)
    assert f"--merge takes JSON files of runs as this script writes them (--json): {path}" in error and says in error
    assert not (tmp_path / "E.md").exists() and not (tmp_path / "E.json").exists()


def test_merge_refuses_a_run_recorded_twice_and_files_without_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = runs_file(tmp_path / "A.json", _NILE_RUNS), runs_file(tmp_path / "B.json", _NILE_RUNS[1:])
    output = str(tmp_path / "E.md")
    error = usage_error(["--merge", str(a), str(b), "--output", output], capsys)
    assert f"the run nile | none | seed 1 is recorded twice, in {a} and in {b}: each run must be recorded once" in error
    assert "recorded twice" in usage_error(["--merge", str(a), str(a), "--output", output], capsys)
    empty = runs_file(tmp_path / "C.json", [])
    assert "hold no run: there is no table to draw" in usage_error(["--merge", str(empty), "--output", output], capsys)
    full = runs_file(tmp_path / "D.json", fake("lynx", "none", [1]), scale="full")
    error = usage_error(["--merge", str(a), str(full), "--output", output], capsys)
    assert f"{full} records runs of scale 'full', {a} of scale 'tiny': one table is of one scale" in error
    assert not (tmp_path / "E.md").exists()


@pytest.mark.parametrize(
    "option", [["--seeds", "1"], ["--only", "nile"], ["--resume"], ["--scale", "tiny"], ["--jobs", "2"]]
)
def test_merge_refuses_the_options_of_a_run(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = runs_file(tmp_path / "A.json", _NILE_RUNS)
    error = usage_error(["--merge", str(a), *option, "--output", str(tmp_path / "E.md")], capsys)
    assert error.endswith(
        "--merge redraws the recorded runs and runs nothing: it takes none of --only, --seeds, --scale, --log-root, "
        f"--resume, --num-threads, --jobs, got {option[0]}"
    )
    assert not (tmp_path / "E.md").exists()


@pytest.mark.parametrize(
    ("text", "says"),
    [('{"nile-none-0": {"test": 1}}', "is not a JSON of runs: it needs an object with 'meta'"), ("x", "is not JSON")],
)
def test_resume_refuses_a_json_that_is_not_one_of_runs(
    text: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "E.json").write_text(text)
    args = ["--only", "nile", "--scale", "tiny", "--seeds", "1", "--resume", "--output", str(tmp_path / "E.md")]
    error = usage_error([*args, "--log-root", str(tmp_path)], capsys)
    assert (
        f"--resume keeps the runs of the JSON (--json, default: the output with .json): {tmp_path / 'E.json'}" in error
    )
    assert says in error and (tmp_path / "E.json").read_text() == text


def test_resume_refuses_runs_of_another_scale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", lambda *args: pytest.fail("a run started"))
    json_path = runs_file(tmp_path / "E.json", _NILE_RUNS)  # tiny
    args = [
        "--only",
        "nile",
        "--seeds",
        "2",
        "--resume",
        "--output",
        str(tmp_path / "E.md"),
        "--log-root",
        str(tmp_path),
    ]
    error = usage_error([*args, "--scale", "full"], capsys)
    assert error.endswith(
        f"the runs in {json_path} are of scale 'tiny': --scale must be 'tiny' to resume them, got 'full'"
    )
    with pytest.raises(ValueError, match="are of scale 'tiny'"):
        run_experiments(["nile"], [0], "full", tmp_path / "E.md", json_path, tmp_path, resume=True)
    # a JSON that does not record its scale resumes at any scale
    runs_file(json_path, _NILE_RUNS[:1], scale=None)
    nile = evidence._EXPERIMENTS_BY_NAME["nile"]
    monkeypatch.setitem(evidence._EXPERIMENTS_BY_NAME, "nile", evidence.Experiment(
        nile.name, nile.title, nile.metric, False, nile.configs[:1]))  # fmt: skip
    assert [r.test for r in evidence.main([*args[:3], "1", *args[4:], "--scale", "full"])] == [1]


def test_resume_without_a_json_says_every_run_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", lambda e, c, seed, *args: fake(e.name, c.label, [1])[0])
    json_path = tmp_path / "E.json"
    runs = run_experiments(["nile"], [0], "tiny", tmp_path / "E.md", json_path, tmp_path, resume=True)
    assert len(runs) == len(evidence._EXPERIMENTS_BY_NAME["nile"].configs)
    assert f"[evidence] --resume: there is no {json_path} yet, every run starts afresh\n" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("where", "says"),
    [
        (
            ["--output", "{tmp}/no/E.md"],
            "--output must be a file in an existing folder, got {tmp}/no/E.md: its folder {tmp}/no does not exist",
        ),
        (
            ["--output", "{tmp}/file/E.md"],
            "--output must be a file in an existing folder, got {tmp}/file/E.md: {tmp}/file is not a folder",
        ),
        (["--output", "{tmp}"], "--output must be a file in an existing folder, got {tmp}: {tmp} is a folder"),
        (
            ["--output", "{tmp}/E.md", "--json", "{tmp}"],
            "--json must be a file in an existing folder, got {tmp}: {tmp} is a folder",
        ),
        (["--output", "{tmp}/E.md", "--json", "{tmp}/no/E.json"], "--json must be a file in an existing folder"),
        (
            ["--output", "{tmp}/E.json"],
            "--output must differ from the JSON of the runs (--json, default: the output "
            "with .json), got {tmp}/E.json for both: the table would overwrite the runs",
        ),
        (["--output", "{tmp}/E.md", "--json", "{tmp}/E.md"], "got {tmp}/E.md for both"),
        (
            ["--output", "{tmp}/E.md", "--log-root", "{tmp}/file"],
            "--log-root must be a folder or a path to make one, got {tmp}/file: {tmp}/file is not a folder",
        ),
        (
            ["--output", "{tmp}/E.md", "--log-root", "{tmp}/file/logs"],
            "got {tmp}/file/logs: {tmp}/file is not a folder",
        ),
    ],
)
def test_bad_output_paths_stop_before_any_run(
    where: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(evidence._RUNNERS, "airline_lstm", lambda *args: pytest.fail("a run started"))
    (tmp_path / "file").write_text("")
    args = [arg.format(tmp=tmp_path) for arg in ["--only", "nile", "--scale", "tiny", "--seeds", "1", *where]]
    if "--log-root" not in where:
        args += ["--log-root", str(tmp_path / "logs")]
    assert says.format(tmp=tmp_path) in usage_error(args, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written
    if "--log-root" not in where:  # the same paths are refused by --merge
        merged = runs_file(tmp_path / "file", _NILE_RUNS)
        assert says.format(tmp=tmp_path) in usage_error(["--merge", str(merged), *args[6:-2]], capsys)


def test_more_jobs_than_runs_say_how_many_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[int] = []
    monkeypatch.setattr(evidence, "_run_parallel", lambda plan, jobs, *args: started.append(jobs))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    torch.set_num_threads(1)
    json_path = tmp_path / "E.json"
    run_experiments(["nile"], [0], "tiny", tmp_path / "E.md", json_path, tmp_path, jobs=99)
    captured = capsys.readouterr()
    assert "[evidence] --jobs 99: only 4 runs to do, so 4 at once\n" in captured.err
    assert captured.out.startswith("[evidence] 4 runs, 4 at a time. Worst case: unknown: none of them is time-capped "
                                   "(--trainer.max_time). (4 x 1 threads on 2 cores: they compete)")  # fmt: skip
    assert started == [4]
