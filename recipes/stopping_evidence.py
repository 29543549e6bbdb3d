"""Restore the best check or keep the last weights? Early stopping's two endings, from recorded runs.

Each run trains a recipe's network for its whole epoch budget (``--model.regularize none`` or
``dropout``: no early stopping) and, after every validation check, also scores the test data: so
one run holds the curve that any stopping rule would have cut. The rules are then applied to the
recorded validation losses, with the recipe's own patience and first counted check:

- *to the end*: the last epoch's weights, no early stopping;
- *restore best*: stop when ``val_loss`` has not improved for ``patience`` checks, test the best
  check's weights (``EarlyStopping(restore_best_weights=True)``);
- *keep last*: stop at the same epoch, test the weights that training reached there (Keras's and
  Lightning's default).

The test scores serve this comparison only; no run chooses anything by them.

Run it (CPU; about 20 minutes on 2 cores for the defaults)::

    python recipes/stopping_evidence.py             # runs what recipes/STOPPING.json lacks, writes STOPPING.md
    python recipes/stopping_evidence.py --only ArrowHead sunspots --seeds 2 --json /tmp/s.json --output /tmp/s.md
    python recipes/stopping_evidence.py --table-only  # redraw the table from the recorded runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import airline_lstm
import vowels_gru

__all__ = ["SETS", "main", "run_curve", "stop", "table"]

# data set: (recipe module, data options); the long UCR set resampled as the evidence table does
SETS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "ACSF1": (vowels_gru, ("--data.name", "ACSF1", "--data.resample_to", "256")),
    "ArrowHead": (vowels_gru, ("--data.name", "ArrowHead")),
    "GunPoint": (vowels_gru, ("--data.name", "GunPoint")),
    "ItalyPowerDemand": (vowels_gru, ("--data.name", "ItalyPowerDemand")),
    "airline": (airline_lstm, ("--data.dataset", "airline", "--data.input_length", "12")),
    "sunspots": (airline_lstm, ("--data.dataset", "sunspots", "--data.input_length", "22")),
    "lynx": (airline_lstm, ("--data.dataset", "lynx", "--data.input_length", "20")),
    "nile": (airline_lstm, ("--data.dataset", "nile", "--data.input_length", "10")),
}
ARMS = ("none", "dropout")


class _Curve(pl.Callback):
    """After every validation check: the logged ``val_*`` values and the model's test score then."""

    def __init__(self, datamodule: pl.LightningDataModule) -> None:
        self.datamodule = datamodule
        self.rows: list[dict[str, float]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        training = pl_module.training
        pl_module.eval()
        squares, right, count = 0.0, 0, 0
        with torch.no_grad():
            for batch in self.datamodule.test_dataloader():
                _, prediction, target, _ = pl_module._step(batch)  # type: ignore[operator]
                if pl_module.task == "forecast":
                    squares += float((prediction - target.float()).pow(2).sum())
                else:
                    right += int((prediction.argmax(-1) == target).sum())
                count += target.numel()
        row["test"] = (squares / count) ** 0.5 if pl_module.task == "forecast" else 100.0 * right / count
        pl_module.train(training)
        self.rows.append(row)


def run_curve(name: str, arm: str, seed: int, log_root: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Train ``name``'s recipe with ``arm`` for its whole budget; every check's ``val_loss`` and test score."""
    module, data = SETS[name]
    cli = module.cli([
        *data, "--model.regularize", arm, "--seed_everything", str(seed), "--num_threads", "1",
        "--trainer.logger.save_dir", str(log_root), "--trainer.logger.name", f"stopping-{name}",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *extra,
    ])  # fmt: skip
    curve = _Curve(cli.datamodule)
    cli.trainer.callbacks.append(curve)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    rows = [{"val_loss": float(f"{row['val_loss']:.6g}"), "test": round(row["test"], 4)} for row in curve.rows]
    return {"rows": rows, "seconds": round(time.perf_counter() - start, 1)}


def stop(losses: Sequence[float], patience: int, start: int) -> tuple[int, int]:
    """Where ``EarlyStopping("val_loss", patience, start_from_epoch=start)`` stops: (best check, last check).

    Checks before ``start`` do not count; a check improves when its loss is below the best so far;
    the run stops at the check that makes ``patience`` checks in a row without improvement.

    Example:
        >>> stop([5.0, 4.0, 3.0, 3.5, 3.6, 2.0], patience=2, start=1)
        (2, 4)
        >>> stop([5.0, 4.0, 3.0], patience=2, start=0)  # the budget ends first
        (2, 2)
    """
    best, best_at, wait = None, None, 0
    for epoch, loss in enumerate(losses):
        if epoch < start:
            continue
        if best is None or loss < best:
            best, best_at, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return best_at, epoch  # type: ignore[return-value]
    if best_at is None:
        raise ValueError(f"no check at or after start={start} among {len(losses)} checks")
    return best_at, len(losses) - 1


def _patience(module: Any) -> tuple[int, int]:
    defaults = module.CALLBACK_DEFAULTS
    return int(defaults["early_stopping.patience"]), int(defaults.get("early_stopping.start_from_epoch", 0))


def table(runs: dict[tuple[str, str, int], dict[str, Any]]) -> str:
    """The markdown table: per data set and arm, the mean test score of each ending over the seeds."""
    lines = [
        "| data set | arm | metric | to the end | restore best | keep last | stopped at (epochs) | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (module, _) in SETS.items():
        patience, start = _patience(module)
        for arm in ARMS:
            seeds = sorted(seed for (n, a, seed) in runs if n == name and a == arm)
            if not seeds:
                continue
            end, restored, last, stops = [], [], [], []
            for seed in seeds:
                rows = runs[(name, arm, seed)]["rows"]
                best_at, stopped_at = stop([row["val_loss"] for row in rows], patience, start)
                end.append(rows[-1]["test"])
                restored.append(rows[best_at]["test"])
                last.append(rows[stopped_at]["test"])
                stops.append(stopped_at + 1)
            metric = "test accuracy (%)" if module is vowels_gru else "test RMSE"
            cells = [f"{statistics.mean(values):.2f}" for values in (end, restored, last)]
            lines.append(
                f"| {name} | {arm} | {metric} | {' | '.join(cells)} | {', '.join(map(str, stops))} | {len(seeds)} |"
            )
    return "\n".join(lines) + "\n"


def _load(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    if not path.exists():
        return {}
    runs = {}
    for key, run in json.loads(path.read_text()).items():
        name, arm, seed = key.rsplit("-", 2)
        runs[(name, arm, int(seed))] = run
    return runs


def _save(path: Path, runs: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    data = {f"{name}-{arm}-{seed}": run for (name, arm, seed), run in sorted(runs.items())}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=0) + "\n")
    temporary.replace(path)


def main(args: Sequence[str] | None = None) -> str:
    """Run what ``--json`` lacks (saving after each run), then write the table to ``--output`` and return it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(SETS), default=list(SETS), help="data sets to run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default: 3)")
    here = Path(__file__).parent
    parser.add_argument("--json", type=Path, default=here / "STOPPING.json", help="every run's curve")
    parser.add_argument("--output", type=Path, default=here / "STOPPING.md", help="the markdown table")
    parser.add_argument("--log-root", type=Path, default=Path("lightning_logs"), help="TensorBoard logs")
    parser.add_argument("--table-only", action="store_true", help="run nothing; draw the table from --json")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="options passed to every run")
    options = parser.parse_args(args)
    if options.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {options.seeds}")
    runs = _load(options.json)
    if not options.table_only:
        for seed in range(options.seeds):
            for name in options.only:
                for arm in ARMS:
                    if (name, arm, seed) not in runs:
                        runs[(name, arm, seed)] = run_curve(name, arm, seed, options.log_root, options.extra)
                        _save(options.json, runs)
    text = (
        "# Early stopping: restore the best check or keep the last weights\n\nDrawn by "
        f"`python recipes/stopping_evidence.py` from the runs in `{options.json.name}`. Every run trains its "
        "whole budget and scores the test data after each check; each ending applies the recipe's patience "
        "and first counted check to the recorded `val_loss`. Mean over the seeds; accuracy: higher is better, "
        "RMSE: lower.\n\n" + table(runs)
    )
    options.output.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
