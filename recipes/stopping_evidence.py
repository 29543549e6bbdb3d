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
import contextlib
import io
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
from evidence import _unwritable  # the same check of an output path

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
# options run_curve sets for each run: --extra may not change them
PER_RUN = ("--model.regularize", "--seed_everything", "--trainer.logger.save_dir", "--trainer.logger.name")


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


def _cli(name: str, arm: str, seed: int, log_root: Path, extra: Sequence[str]) -> Any:
    module, data = SETS[name]
    return module.cli([
        *data, "--model.regularize", arm, "--seed_everything", str(seed), "--num_threads", "1",
        "--trainer.logger.save_dir", str(log_root), "--trainer.logger.name", f"stopping-{name}",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *extra,
    ])  # fmt: skip


def run_curve(name: str, arm: str, seed: int, log_root: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Train ``name``'s recipe with ``arm`` for its whole budget; every check's ``val_loss`` and test score.

    The run records ``extra`` (when there are any), so that no later call mixes it with runs without them.
    """
    cli = _cli(name, arm, seed, log_root, extra)
    curve = _Curve(cli.datamodule)
    cli.trainer.callbacks.append(curve)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    rows = [{"val_loss": float(f"{row['val_loss']:.6g}"), "test": round(row["test"], 4)} for row in curve.rows]
    run: dict[str, Any] = {"rows": rows, "seconds": round(time.perf_counter() - start, 1)}
    if extra:
        run["extra"] = list(extra)
    return run


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


def _fewest_checks(module: Any) -> int:
    """A run needs its first counted check and one after it, or the endings have nothing to tell apart."""
    return _patience(module)[1] + 2


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
    """The runs recorded in ``path`` (none when it is missing); a ValueError says what is wrong with the file."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read it as JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"must hold an object of runs keyed 'data set-arm-seed', got a {type(data).__name__}")
    runs = {}
    for key, run in data.items():
        name, arm, seed = [*key.rsplit("-", 2), "", ""][:3]
        if name not in SETS or arm not in ARMS or not seed.isdecimal() or key != f"{name}-{arm}-{int(seed)}":
            raise ValueError(
                f"key {key!r} is not 'data set-arm-seed' with a data set in {', '.join(SETS)}, an arm in "
                f"{', '.join(ARMS)} and a seed 0, 1, ..."
            )
        rows = run.get("rows") if isinstance(run, dict) else None
        numbers = (int, float)
        if not isinstance(rows, list) or not all(
            isinstance(row, dict) and isinstance(row.get("val_loss"), numbers) and isinstance(row.get("test"), numbers)
            for row in rows
        ):
            raise ValueError(f"run {key!r} must be an object with rows of numbers val_loss and test, got {run!r:.80}")
        extra = run.get("extra", [])
        if not isinstance(extra, list) or not all(isinstance(option, str) for option in extra):
            raise ValueError(f"run {key!r}: extra must be a list of options, got {extra!r:.80}")
        fewest = _fewest_checks(SETS[name][0])
        if len(rows) < fewest:
            raise ValueError(
                f"run {key!r} has {len(rows)} checks; {name}'s early stopping counts checks from start_from_epoch="
                f"{fewest - 2}, so the table needs at least {fewest}"
            )
        runs[(name, arm, int(seed))] = run
    if len({tuple(run.get("extra", [])) for run in runs.values()}) > 1:
        raise ValueError("it mixes runs recorded with different --extra options")
    return runs


def _save(path: Path, runs: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    data = {f"{name}-{arm}-{seed}": run for (name, arm, seed), run in sorted(runs.items())}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=0) + "\n")
    temporary.replace(path)


def _said(extra: Sequence[str]) -> str:
    return f"--extra {' '.join(extra)}" if extra else "no --extra"


def _check_recipe(parser: argparse.ArgumentParser, name: str, log_root: Path, extra: Sequence[str]) -> None:
    """Stop with a usage error when ``name``'s recipe refuses ``extra`` or its budget leaves the table nothing."""
    module = SETS[name][0]
    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint):
            cli = _cli(name, "none", 0, log_root, extra)
    except SystemExit as error:
        if not error.code:  # --extra --help
            raise
        reason = " ".join(complaint.getvalue().partition("error: ")[2].split()) or complaint.getvalue().strip()
        parser.error(f"--extra: the recipe {module.__name__} (data set {name}) refuses {_said(extra)}: {reason}")
    patience, start = _patience(module)
    stopping = cli.config.early_stopping
    if (stopping.patience, stopping.start_from_epoch) != (patience, start):
        parser.error(
            f"--extra: the table applies {module.__name__}'s own early stopping (patience {patience}, "
            f"start_from_epoch {start}); got patience {stopping.patience}, start_from_epoch {stopping.start_from_epoch}"
        )
    checks = cli.trainer.max_epochs // (cli.trainer.check_val_every_n_epoch or 1)
    if checks < _fewest_checks(module):
        parser.error(
            f"--extra: {name} would get {checks} validation checks (--trainer.max_epochs {cli.trainer.max_epochs}); "
            f"its early stopping counts checks from start_from_epoch={start}, so the table needs at least "
            f"{_fewest_checks(module)}"
        )


def main(args: Sequence[str] | None = None) -> str:
    """Run what ``--json`` lacks (saving after each run), then write the table to ``--output`` and return it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # --only, --seeds, --log-root and --extra default to None: --table-only refuses them when given
    parser.add_argument("--only", nargs="+", choices=list(SETS), help="data sets to run (default: all)")
    parser.add_argument("--seeds", type=int, help="seeds 0 .. N-1 (default: 3)")
    here = Path(__file__).parent
    parser.add_argument("--json", type=Path, default=here / "STOPPING.json", help="every run's curve")
    parser.add_argument("--output", type=Path, default=here / "STOPPING.md", help="the markdown table")
    parser.add_argument("--log-root", type=Path, help="TensorBoard logs (default: lightning_logs)")
    parser.add_argument("--table-only", action="store_true", help="run nothing; draw every run in --json")
    parser.add_argument(
        "--extra", nargs=argparse.REMAINDER, help="options passed to every run; must come last (it takes the rest)"
    )
    options = parser.parse_args(args)
    if options.seeds is not None and options.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {options.seeds}")
    extra = options.extra or []
    flags = {flag for action in parser._actions for flag in action.option_strings if flag not in ("-h", "--help")}
    taken = [option for option in extra if option.split("=")[0] in flags]
    if taken:
        parser.error(f"--extra must come last: it took this script's options {', '.join(taken)} (got {_said(extra)})")
    taken = [option for option in extra if option.split("=")[0] in PER_RUN]
    if taken:
        parser.error(f"--extra may not set {', '.join(taken)}: each run sets {', '.join(PER_RUN)} itself")
    chosen = {
        "--only": options.only,
        "--seeds": options.seeds,
        "--log-root": options.log_root,
        "--extra": options.extra,
    }
    given = [flag for flag, value in chosen.items() if value is not None]
    if options.table_only and given:
        parser.error(f"--table-only runs nothing and draws every run in --json; it takes no {', '.join(given)}")
    if options.output.resolve() == options.json.resolve():
        parser.error(f"--output must differ from --json (the runs), got {options.output} for both")
    log_root = options.log_root or Path("lightning_logs")
    problems = [("--output", options.output, _unwritable(options.output))]
    if options.table_only:
        found = "" if options.json.is_file() else _unwritable(options.json) or "does not exist"
        problems.append(("--json", options.json, found and f"{found} (--table-only draws the runs recorded there)"))
    else:
        problems += [("--json", options.json, _unwritable(options.json))]
        problems += [("--log-root", log_root, _unwritable(log_root, folder=True))]
    for flag, path, problem in problems:
        if problem:
            parser.error(f"{flag} {path}: {problem}")
    try:
        runs = _load(options.json)
    except ValueError as error:
        parser.error(f"--json {options.json}: {error}")
    recorded = {tuple(run.get("extra", [])) for run in runs.values()}
    if not options.table_only:
        if recorded and recorded != {tuple(extra)}:
            parser.error(
                f"--extra: {options.json} holds runs recorded with {_said(next(iter(recorded)))}, got {_said(extra)}; "
                "pass the same --extra or another --json"
            )
        only = options.only or list(SETS)
        for name in dict.fromkeys(only):
            _check_recipe(parser, name, log_root, extra)
        for seed in range(options.seeds or 3):
            for name in only:
                for arm in ARMS:
                    if (name, arm, seed) not in runs:
                        runs[(name, arm, seed)] = run_curve(name, arm, seed, log_root, extra)
                        _save(options.json, runs)
    said = next((run.get("extra", []) for run in runs.values()), [])
    text = (
        "# Early stopping: restore the best check or keep the last weights\n\nDrawn by "
        f"`python recipes/stopping_evidence.py` from the runs in `{options.json.name}`. Every run trains its "
        "whole budget and scores the test data after each check; each ending applies the recipe's patience "
        "and first counted check to the recorded `val_loss`. Mean over the seeds; accuracy: higher is better, "
        "RMSE: lower."
        + (f" Every run was trained with the extra options `{' '.join(said)}`." if said else "")
        + "\n\n"
        + table(runs)
    )
    options.output.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
