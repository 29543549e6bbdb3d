"""recipes/stopping_evidence.py: where early stopping stops, the table of its two endings, and one real run."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

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
        assert len(run["rows"]) == 7  # one row per epoch
        assert all(0.0 <= row["test"] <= 100.0 and row["val_loss"] > 0 for row in run["rows"])
    assert "| ItalyPowerDemand | none | test accuracy (%) |" in text
    assert (tmp_path / "s.md").read_text() == text
    # a second call runs nothing new and draws the same table
    assert stopping_evidence.main([*args[:-3], "--table-only"]) == text
