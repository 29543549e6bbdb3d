"""Threads: the compiled loop and its GEMMs run on torch's intra-op threads only, so two DDP
processes on a 2-core machine (Lightning gives each cores / processes threads) don't
oversubscribe it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from regdrop.functional.rnn import extension_available

REPO_ROOT = Path(__file__).resolve().parents[2]

needs_linux_and_extension = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not extension_available(),
    reason="counts threads in /proc/self/task (Linux) of the compiled loop (needs a C++ compiler)",
)

# Runs torch's fused layer first (its GEMMs and OpenMP pool start whatever threads torch
# starts at this thread count), then regdrop's per-sample path (compiled loop, oneDNN input
# projection, weight gradients, bf16 autocast), and reports the process's thread counts.
COUNT_SCRIPT = """
import json, os, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
import regdrop

def tasks():
    return len(os.listdir("/proc/self/task"))

def step(layer, x, bf16=False):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out, _ = layer(x)
    out.float().square().mean().backward()

x = torch.randn(32, 30, 16, requires_grad=True)
counts = {{"start": tasks()}}
for kind in ("LSTM", "GRU"):
    base = getattr(torch.nn, kind)(16, 64, batch_first=True)
    step(base, x)
    try:
        step(base, x, bf16=True)
    except RuntimeError:  # torch's LSTM has no bf16 kernel on an AVX2-only CPU (oneDNN)
        pass
counts["after torch"] = tasks()
for kind in ("LSTM", "GRU"):
    base = getattr(torch.nn, kind)(16, 64, batch_first=True)
    ours = getattr(regdrop.nn, kind).from_torch(base, recurrent_dropout=0.25)
    step(ours, x)
    step(ours, x, bf16=True)
counts["after regdrop"] = tasks()
counts["torch threads"] = torch.get_num_threads()
print(json.dumps(counts))
"""


@needs_linux_and_extension
@pytest.mark.parametrize("threads", [1, 2])
def test_the_compiled_loop_starts_no_threads_beyond_torchs(tmp_path, threads):
    script = tmp_path / "count_threads.py"
    script.write_text(textwrap.dedent(COUNT_SCRIPT.format(root=str(REPO_ROOT), threads=threads)))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["torch threads"] == threads
    # The premise: torch's own layers ran at this thread count and started their pool.
    assert counts["after torch"] >= counts["start"]
    assert counts["after regdrop"] <= counts["after torch"], counts


DDP_SCRIPT = """
import json, os, sys
sys.path.insert(0, {root!r})
import torch
import lightning.pytorch as pl
import regdrop
from regdrop.functional.rnn import extension_available


class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.rnn = regdrop.nn.LSTM(4, 16, batch_first=True, recurrent_dropout=0.25)
        self.head = torch.nn.Linear(16, 1)
        self.seen = {{}}

    def training_step(self, batch, batch_idx):
        x, y = batch
        out, _ = self.rnn(x)
        self.seen = {{"threads": torch.get_num_threads(), "compiled": extension_available(),
                     "tasks": len(os.listdir("/proc/self/task"))}}
        return torch.nn.functional.mse_loss(self.head(out[:, -1]), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    pl.seed_everything(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 10, 4), torch.randn(32, 1))
    model = Model()
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, limit_train_batches=2,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, logger=False,
        default_root_dir={out!r},
    )
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8))
    with open({out!r} + f"/rank{{trainer.global_rank}}.json", "w") as f:
        json.dump(model.seen, f)
    torch.distributed.destroy_process_group()  # gloo's threads abort the process at exit without it (pytorch#190489)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Lightning's DDP launcher test on Linux")
def test_two_process_cpu_ddp_gives_each_process_its_share_of_the_cores(tmp_path):
    """Lightning sets torch's threads to cores // processes when OMP_NUM_THREADS is unset
    (lightning.fabric.utilities.distributed._set_num_threads_if_needed); the compiled loop
    uses exactly those threads, so 2 processes never run more threads than cores."""
    script = tmp_path / "ddp_threads.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(root=str(REPO_ROOT), out=str(tmp_path))))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cores = len(os.sched_getaffinity(0))
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert seen["threads"] == max(1, cores // 2), seen
        assert seen["compiled"] == extension_available()
