"""Learned dropout rates (concrete dropout) against a grid of fixed rates, from recorded runs.

For each task, the same small network is trained with every dropout rate fixed at one grid
value (0.1, 0.2, 0.3, 0.5: input, between-layer and recurrent dropout of the ``regdrop.nn``
layer and the dropout before the head) and once with every rate learned
(``learn_rates=True`` on the recurrent layer, ``ConcreteDropout`` before the head, the
``ConcreteRegularization`` callback; the rates start at 0.1). Every arm has the same epoch
budget and keeps the weights of its best validation epoch (``EarlyStopping`` with
``restore_best_weights=True`` and a patience longer than the budget). The best grid point
is chosen by its mean validation loss over the seeds; its test metric is compared with the
learned arm's.

Tasks (the recipes' data modules, as they are in ``recipes/common``):

- ``sine``: ``SineDataModule`` (noisy sine waves, whole waves held out), 2-layer LSTM;
- ``airline``: ``RealSeriesDataModule("airline")`` (monthly passengers, last 33% held out), 2-layer LSTM;
- ``vowels``: ``UCRDataModule("JapaneseVowels")`` (official test set), bidirectional GRU.

Measured per run: the test metric (RMSE for forecasts, accuracy for classification), the
learned rates, the training wall time, and Monte Carlo dropout calibration with 30 passes:
for forecasts the fraction of test targets inside mean ± 2 std (the dropout's own spread;
the data noise is not added), for classification the NLL and the expected calibration
error (ECE, 10 bins) of the MC-averaged class probabilities.

Each run is written as JSON under ``--runs`` as soon as it ends; a rerun skips the runs
already there, so the script resumes; the markdown table is drawn from the JSON files. A folder
holds runs of one ``--epochs-scale`` (a rerun at another scale is refused), and the table names
the scale when it is not 1.

Run it (CPU; about 25 minutes on 2 shared cores with the defaults)::

    python recipes/concrete_evidence.py                         # runs, then writes recipes/CONCRETE_EVIDENCE.md
    python recipes/concrete_evidence.py --only airline --seeds 0 1
    python recipes/concrete_evidence.py --table-only            # redraw the table from the recorded runs
    python recipes/concrete_evidence.py --epochs-scale 0.1 --runs /tmp/r --output /tmp/t.md  # machinery check
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import regdrop
from airline_lstm import RealSeriesDataModule
from evidence import _at_least_one  # the same check of an int option >= 1
from regdrop.callbacks import ConcreteRegularization, EarlyStopping
from regdrop.nn import GRU, LSTM, ConcreteDropout
from sine_lstm import SineDataModule
from vowels_gru import UCRDataModule

__all__ = ["GRID", "TASKS", "EvidenceNet", "main", "render", "run_one"]

HERE = Path(__file__).resolve().parent
GRID = (0.1, 0.2, 0.3, 0.5)
LEARNED_START = 0.1
MC_SAMPLES = 30

TASKS: dict[str, dict[str, Any]] = {
    "sine": dict(
        task="forecast",
        data=lambda: SineDataModule(
            num_series=80, length=160, input_length=32, horizon=8, stride=4, batch_size=64, seed=0
        ),
        net=dict(cell="lstm", hidden_size=32, num_layers=2, bidirectional=False, input_dropout=False),
        epochs=20,
    ),
    "airline": dict(
        task="forecast",
        data=lambda: RealSeriesDataModule("airline", input_length=12, horizon=1, batch_size=16, seed=0),
        net=dict(cell="lstm", hidden_size=32, num_layers=2, bidirectional=False, input_dropout=False),
        epochs=150,
    ),
    "vowels": dict(
        task="classify",
        data=lambda: UCRDataModule("JapaneseVowels", batch_size=32, seed=0),
        net=dict(cell="gru", hidden_size=32, num_layers=1, bidirectional=True, input_dropout=True),
        epochs=60,
    ),
}


class EvidenceNet(pl.LightningModule):
    """A recurrent encoder and a linear head; every dropout at ``rate``, or every rate learned.

    Forecasts standardize each input window and map the forecast back (as the recipes'
    ``SequenceModel`` does); classification runs padded batches as packed sequences.
    """

    def __init__(
        self,
        task: str,
        input_size: int,
        out_features: int,
        cell: str,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        input_dropout: bool,
        rate: float,
        learn: bool,
        horizon: int = 1,
        lr: float = 3e-3,
    ) -> None:
        super().__init__()
        self.task, self.horizon, self.lr = task, horizon, lr
        rnn_class = LSTM if cell == "lstm" else GRU
        learned = {"input_dropout": input_dropout, "dropout": num_layers > 1, "recurrent_dropout": True}
        self.rnn = rnn_class(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=rate if num_layers > 1 else 0.0,
            input_dropout=rate if input_dropout else 0.0,
            recurrent_dropout=rate,
            # learn exactly the rates the grid arms use (learn_rates=True would add input dropout)
            learn_rates=[r for r, on in learned.items() if on] if learn else False,
        )
        width = hidden_size * (2 if bidirectional else 1)
        self.head_dropout: torch.nn.Module = ConcreteDropout(width, p=rate) if learn else torch.nn.Dropout(rate)
        self.head = torch.nn.Linear(width, out_features)

    def forward(self, input: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.task == "forecast":
            loc = input.mean(1, keepdim=True)
            scale = input.std(1, keepdim=True).clamp_min(1e-5)
            input = (input - loc) / scale
        if lengths is not None:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                input, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            _, h = self.rnn(packed)
        else:
            _, h = self.rnn(input)
        h = h[0] if isinstance(h, tuple) else h
        directions = 2 if self.rnn.bidirectional else 1
        last = torch.cat(list(h[-directions:]), dim=1)  # the last layer's final state(s)
        out = self.head(self.head_dropout(last))
        if self.task == "forecast":
            out = out.view(input.shape[0], self.horizon, -1) * scale + loc
        return out

    def _loss(self, batch: Sequence[Tensor]) -> Tensor:
        if len(batch) == 3:
            x, lengths, y = batch
            return F.cross_entropy(self(x, lengths), y)
        x, y = batch
        return F.mse_loss(self(x), y)

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch), on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.0)


def _arm_name(rate: float | None) -> str:
    return "learned" if rate is None else f"p={rate}"


def _learned_rates(model: EvidenceNet) -> dict[str, list[float]]:
    rates = {name: [round(v, 4) for v in r.reshape(-1).tolist()] for name, r in model.rnn.learned_rates.items()}
    if isinstance(model.head_dropout, ConcreteDropout):
        rates["head"] = [round(model.head_dropout.p, 4)]
    return rates


def _ece(probs: Tensor, target: Tensor, bins: int = 10) -> float:
    confidence, predicted = probs.max(1)
    correct = (predicted == target).double()
    edges = torch.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += float(inside.double().mean()) * abs(
                float(correct[inside].mean()) - float(confidence[inside].mean())
            )
    return total


def _evaluate(model: EvidenceNet, dm: Any, task: str) -> dict[str, float]:
    model.eval()
    batches = list(dm.test_dataloader())
    if task == "forecast":
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        with torch.no_grad():
            point = model(x)
        mean, std = regdrop.mc_predict(model, x, samples=MC_SAMPLES)
        return {
            "test_rmse": float((point - y).pow(2).mean().sqrt()),
            "mc_rmse": float((mean - y).pow(2).mean().sqrt()),
            "coverage_2std": float(((y - mean).abs() <= 2 * std).double().mean()),
            "mean_std": float(std.mean()),
        }
    correct = nll = 0.0
    mc_probs, targets = [], []
    n = 0
    for x, lengths, y in batches:
        with torch.no_grad():
            logits = model(x, lengths)
        correct += float((logits.argmax(1) == y).sum())
        nll += float(F.cross_entropy(logits, y, reduction="sum"))
        with torch.no_grad(), regdrop.mc_dropout(model):
            probs = torch.stack([model(x, lengths).softmax(-1) for _ in range(MC_SAMPLES)]).mean(0)
        mc_probs.append(probs)
        targets.append(y)
        n += len(y)
    probs, target = torch.cat(mc_probs), torch.cat(targets)
    return {
        "test_acc": correct / n,
        "test_nll": nll / n,
        "mc_acc": float((probs.argmax(1) == target).double().mean()),
        "mc_nll": float(-probs.gather(1, target[:, None]).clamp_min(1e-12).log().mean()),
        "mc_ece": _ece(probs, target),
    }


def run_one(task_name: str, rate: float | None, seed: int, epochs_scale: float = 1.0) -> dict[str, Any]:
    """Train and test one arm (``rate=None``: learned) of one task with one seed; return the record."""
    spec = TASKS[task_name]
    dm = spec["data"]()
    dm.prepare_data()
    dm.setup("fit")
    task = spec["task"]
    if task == "forecast":
        features = dm.num_features
        out_features, horizon = dm.horizon * features, dm.horizon
    else:
        features, out_features, horizon = dm.num_features, dm.num_classes, 1
    pl.seed_everything(seed, workers=True, verbose=False)
    learn = rate is None
    model = EvidenceNet(
        task, features, out_features, rate=LEARNED_START if learn else rate, learn=learn, horizon=horizon, **spec["net"]
    )
    epochs = _epochs(task_name, epochs_scale)
    callbacks: list[pl.Callback] = [EarlyStopping("val_loss", patience=epochs + 1, restore_best_weights=True)]
    if learn:
        callbacks.append(ConcreteRegularization())
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        accelerator="cpu",
        devices=1,
        deterministic=False,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    train_seconds = time.perf_counter() - start
    val_loss = min(float(v) for v in [trainer.callback_metrics.get("val_loss", math.inf)])
    es = callbacks[0]
    best_val = float(getattr(es, "best_score", val_loss))
    dm.setup("test")
    record: dict[str, Any] = {
        "task": task_name,
        "arm": _arm_name(rate),
        "seed": seed,
        "epochs": epochs,
        "train_seconds": round(train_seconds, 2),
        "best_val_loss": best_val,
        **_evaluate(model, dm, task),
    }
    if learn:
        record["learned_rates"] = _learned_rates(model)
    return record


def _epochs(task_name: str, epochs_scale: float) -> int:
    """The epoch budget of ``task_name`` at ``epochs_scale`` (a budget that rounds to 0 runs 1 epoch)."""
    return max(1, round(TASKS[task_name]["epochs"] * epochs_scale))


def _budget(task_name: str, rows: list[dict[str, Any]]) -> str:
    """The epoch budget of a table's section; the scale is named when it is not 1 (e.g. a machinery check)."""
    epochs = TASKS[task_name]["epochs"]
    scales = {r.get("epochs_scale", 1.0) for r in rows}
    if len(scales) > 1:
        raise ValueError(f"{task_name}: runs recorded at different --epochs-scale values {sorted(scales)}")
    (scale,) = scales
    if scale == 1:
        return f"{epochs} epochs x scale"
    if round(epochs * scale) < 1:
        return f"{epochs} epochs x scale {scale:g} = {epochs * scale:g}, raised to 1 epoch"
    return f"{epochs} epochs x scale {scale:g} = {_epochs(task_name, scale)} epoch(s)"


def _columns(task_name: str) -> tuple[str, ...]:
    """The test metric and the two calibration columns of ``task_name``'s table."""
    if TASKS[task_name]["task"] == "forecast":
        return "test_rmse", "coverage_2std", "mean_std"
    return "test_acc", "mc_nll", "mc_ece"


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def render(records: list[dict[str, Any]], header: str = "") -> str:
    """The markdown tables of ``records`` (one row per task and arm, mean ± std over seeds)."""
    lines = [header] if header else []
    for task_name in TASKS:
        rows = [r for r in records if r["task"] == task_name]
        if not rows:
            continue
        forecast = TASKS[task_name]["task"] == "forecast"
        metric, *calib = _columns(task_name)
        arms = [_arm_name(r) for r in GRID] + ["learned"]
        by_arm = {arm: [r for r in rows if r["arm"] == arm] for arm in arms}
        grid = [a for a in arms[:-1] if by_arm[a]]
        best = min(grid, key=lambda a: statistics.fmean(r["best_val_loss"] for r in by_arm[a])) if grid else None
        lines.append(f"\n**{task_name}** ({_budget(task_name, rows)}, {MC_SAMPLES} MC passes)\n")
        cols = ["arm", "seeds", "val loss", metric, *calib, "train s", "learned rates (mean over seeds)"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for arm in arms:
            runs = by_arm[arm]
            if not runs:
                continue
            cells = [arm + (" (best grid, by val)" if arm == best else ""), str(len(runs))]
            for key in ("best_val_loss", metric, *calib, "train_seconds"):
                m, s = _mean_std([float(r[key]) for r in runs])
                cells.append(f"{m:.4g} ± {s:.2g}")
            if arm == "learned":
                names = runs[0]["learned_rates"].keys()
                cells.append(
                    ", ".join(
                        f"{name} "
                        + "/".join(
                            f"{statistics.fmean(r['learned_rates'][name][k] for r in runs):.3f}"
                            for k in range(len(runs[0]["learned_rates"][name]))
                        )
                        for name in names
                    )
                )
            else:
                cells.append("")
            lines.append("| " + " | ".join(cells) + " |")
        if best and by_arm["learned"]:
            lm, ls = _mean_std([float(r[metric]) for r in by_arm["learned"]])
            bm, bs = _mean_std([float(r[metric]) for r in by_arm[best]])
            better = lm < bm if forecast else lm > bm
            within = abs(lm - bm) <= max(ls, bs)
            verdict = "better than" if better else ("within the seed spread of" if within else "worse than")
            tm = statistics.fmean(r["train_seconds"] for r in by_arm["learned"])
            gm = statistics.fmean(r["train_seconds"] for r in by_arm[best])
            lines.append(
                f"\nLearned: {metric} {lm:.4g} ± {ls:.2g}, {verdict} the best grid point {best} "
                f"({bm:.4g} ± {bs:.2g}); training time {tm:.1f} s vs {gm:.1f} s for one grid point "
                f"({tm / gm:.2f}x; the grid costs {len(grid)} runs)."
            )
    return "\n".join(lines) + "\n"


def _seed(value: str) -> int:
    """A seed value for ``pl.seed_everything`` (argparse puts the option's name before the message)."""
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"must be an int seed value from 0 to {2**32 - 1}, got {value!r}")
    return seed


def _scale(value: str) -> float:
    """A finite epoch scale > 0 whose largest budget is finite too."""
    try:
        scale = float(value)
    except ValueError:
        scale = math.nan
    if not (scale > 0 and math.isfinite(scale * max(spec["epochs"] for spec in TASKS.values()))):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value!r}")
    return scale


def _load_runs(runs: Path) -> list[dict[str, Any]]:
    """The recorded runs under ``runs``; ValueError names a JSON file that is not one of this script's runs."""
    records = []
    for path in sorted(runs.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            task_name = record["task"]
            keys = ["arm", "seed", "epochs_scale", "best_val_loss", "train_seconds", *_columns(task_name)]
            if record["arm"] == "learned":
                keys.append("learned_rates")
            missing = [key for key in keys if key not in record]
            if missing:
                raise ValueError(f"missing {missing}")
            if not isinstance(record["seed"], int) or not isinstance(record["epochs_scale"], int | float):
                raise ValueError(f"seed {record['seed']!r}, epochs_scale {record['epochs_scale']!r}")
            if path.name != f"{task_name}_{record['arm']}_seed{record['seed']}.json":
                raise ValueError("named unlike its task, arm and seed")
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise ValueError(f"{path} is not a run recorded by this script ({type(error).__name__}: {error})") from None
        records.append(record)
    return records


def main(argv: Sequence[str] | None = None) -> str:
    """Run the missing runs, then write and return the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(TASKS), help="tasks (default: all)")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=_seed,
        metavar="SEED",
        help="seed VALUES, not a count (unlike the other evidence scripts): '--seeds 3' runs seed 3 only "
        "(default: 0 1 2)",
    )
    parser.add_argument(
        "--epochs-scale",
        type=_scale,
        help="multiplies every task's epoch budget (at least 1 epoch); the recorded runs must have been made at "
        "the same scale (default: 1, or with --table-only the recorded runs' scale)",
    )
    parser.add_argument("--runs", type=Path, default=HERE / "concrete_evidence_runs", help="the runs' JSON folder")
    parser.add_argument("--output", type=Path, default=HERE / "CONCRETE_EVIDENCE.md", help="the markdown table")
    parser.add_argument("--threads", type=_at_least_one, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="run nothing: draw the table from the recorded runs (of the --only tasks and --seeds if given)",
    )
    args = parser.parse_args(argv)
    if args.output.is_dir() or not args.output.parent.is_dir():
        parser.error(f"--output must be a file in an existing folder, got {args.output}")
    try:
        records = _load_runs(args.runs) if args.runs.is_dir() else []
    except ValueError as error:
        parser.error(f"--runs must hold only this script's runs: {error}")
    scales = sorted({r["epochs_scale"] for r in records})
    if len(scales) > 1:
        parser.error(f"--runs holds runs recorded at different --epochs-scale values {scales}: {args.runs}")
    if args.table_only:
        if not records:
            parser.error(f"--table-only draws the table from recorded runs, but --runs {args.runs} holds none")
        if args.only or args.seeds:  # draw only these, and all of them
            tasks = args.only or {r["task"] for r in records}
            records = [r for r in records if r["task"] in tasks and r["seed"] in (args.seeds or [r["seed"]])]
            recorded = {(r["task"], r["seed"]) for r in records} | {(r["task"], None) for r in records}
            missing = [
                t if seed is None else f"{t} seed {seed}"
                for t in tasks
                for seed in args.seeds or [None]
                if (t, seed) not in recorded
            ]
            if missing:
                parser.error(f"--only/--seeds with --table-only: {args.runs} holds no runs of {', '.join(missing)}")
    epochs_scale = args.epochs_scale or (scales[0] if args.table_only else 1.0)
    if scales and scales != [epochs_scale]:
        parser.error(
            f"--epochs-scale must be the scale of the runs recorded in {args.runs}, {scales[0]:g}, got "
            f"{epochs_scale:g}; pass --epochs-scale {scales[0]:g} or a fresh --runs folder"
        )
    try:
        args.runs.mkdir(parents=True, exist_ok=True)  # --table-only: there already, holding the runs
    except OSError as error:
        parser.error(f"--runs must be a folder of runs or one that can be created, got {args.runs} ({error})")
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    if not args.table_only:
        for seed in args.seeds or [0, 1, 2]:
            for task_name in args.only or TASKS:
                for rate in [None, *GRID]:
                    path = args.runs / f"{task_name}_{_arm_name(rate)}_seed{seed}.json"
                    if path.exists():
                        continue
                    record = run_one(task_name, rate, seed, epochs_scale)
                    record["epochs_scale"] = epochs_scale
                    path.write_text(json.dumps(record, indent=1))
                    print(json.dumps(record), flush=True)
        records = _load_runs(args.runs)
    header = (
        f"Concrete dropout vs a grid of fixed rates; recorded by recipes/concrete_evidence.py on "
        f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} torch thread(s)), "
        f"torch {torch.__version__}. Mean ± std over seeds; each arm has the same epoch budget."
    )
    table = render(records, header)
    args.output.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
