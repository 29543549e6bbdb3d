"""What the processor running the tests can do, for tests that depend on it."""

from __future__ import annotations

import torch


def torch_lstm_runs_under_bf16_autocast() -> bool:
    """Whether torch's own fused LSTM runs under CPU bf16 autocast here.

    It goes to oneDNN, which on some processors has no bf16 LSTM primitive (seen on this
    project's AMD EPYC build machine, where torch 2.13.0 reports AVX2 only): torch.nn.LSTM itself
    raises there, and so does regdrop's LSTM, whose eval path is torch's kernel.
    """
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(2, 2)(torch.randn(1, 1, 2))
    except RuntimeError:
        return False
    return True
