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
