r"""A callback that carries the random number generators' states through a checkpoint, per rank.

Lightning's checkpoints hold the weights, the optimizers, the loops' progress and the callbacks'
state, but not the state of the random number generators; a run resumed from a checkpoint
therefore draws other dropout masks (and other random augmentations) than the run it continues.
:class:`RNGState` saves, on every rank, the states of torch's CPU generator, of every CUDA device's
generator (when CUDA is initialized), of numpy's global generator and of Python's :mod:`random`,
and puts them back when the resumed run reaches its first training batch: the point at which the
checkpointed run was when it saved (checkpoints written in ``on_train_batch_end``, e.g. by
``ModelCheckpoint(every_n_train_steps=...)``, or at the end of an epoch).

Exact resume also needs a data loader that resumes where it stopped (one with ``state_dict`` /
``load_state_dict``, such as ``torchdata``'s ``StatefulDataLoader``, or a map-style dataset with a
sampler seeded per epoch that skips what was already served) and loaders with their own
``generator=``, so that creating an iterator draws from neither run's global generator.
"""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from typing_extensions import override

try:  # numpy comes with Lightning's dependencies, but regdrop does not require it
    import numpy as np
except ImportError:  # pragma: no cover
    np = None  # type: ignore[assignment]

__all__ = ["RNGState"]


def _capture() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
    }
    if np is not None:
        # as a tensor and plain numbers: Lightning loads checkpoints with torch.load(weights_only=True)
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        keys_tensor = torch.from_numpy(np.asarray(keys, dtype=np.int64))
        state["numpy"] = (kind, keys_tensor, int(pos), int(has_gauss), float(cached))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if np is not None and "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGState(Callback):
    r"""Save the random number generators' states in every checkpoint, one per rank, and restore them on resume.

    Under DDP each rank draws its own masks, so the states of all ranks are gathered into the
    checkpoint (which rank 0 writes) and each rank gets its own back. A checkpoint saved with
    another number of ranks, or without this callback, leaves the generators as they are, with a
    warning.

    See the module docstring for what else an exact resume needs.

    Example:
        >>> import lightning.pytorch as pl
        >>> from lightning.pytorch.callbacks import ModelCheckpoint
        >>> trainer = pl.Trainer(callbacks=[RNGState(), ModelCheckpoint(every_n_train_steps=100)], logger=False)
        >>> # trainer.fit(model, datamodule, ckpt_path="last") then resumes with the same random draws
    """

    def __init__(self) -> None:
        self._trainer: pl.Trainer | None = None
        self._pending: dict[str, Any] | None = None  # the state to restore at the first training batch

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = None
        self._pending = None

    @override
    def state_dict(self) -> dict[str, Any]:
        mine = _capture()
        trainer = self._trainer
        world_size = 1 if trainer is None else trainer.world_size
        states = [mine]
        if world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            states = [None] * world_size  # type: ignore[list-item]
            torch.distributed.all_gather_object(states, mine)
        return {"world_size": world_size, "states": states}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        trainer = self._trainer
        rank, world_size = (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)
        saved_world = state_dict.get("world_size")
        states = state_dict.get("states") or []
        if saved_world != world_size or len(states) != world_size:
            rank_zero_warn(
                f"RNGState: the checkpoint holds the generator states of {saved_world} rank(s) and this run has"
                f" {world_size}; the generators are left as they are, so the resumed run draws other random numbers."
            )
            return
        self._pending = states[rank]

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending is not None:
            _restore(self._pending)
            self._pending = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_trainer"] = None
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
