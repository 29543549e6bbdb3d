"""Training-step speed and activation memory of regdrop's LSTM/GRU against torch's fused layers.

Prints, above the table, the processor, the vector ISA torch dispatches to, the GEMM engines
the compiled loop chose and the thread count. Then, for each reference shape (batch, time,
input, hidden) and layer kind, one row per setting in ``ROWS``: the time of a training step
(forward + backward; forward only for the eval row) of the regdrop layer as a ratio to the
fused ``torch.nn`` layer *without dropout* of the same architecture, input and precision,
timed interleaved in the same run (median of the repeats), and the ratio of the memory
autograd saves for backward. A ratio above its target prints "MISS by X%".

    python benchmarks/rnn_speed.py                 # all shapes, markdown table
    python benchmarks/rnn_speed.py --repeats 15 --shapes 64,100,32,128 --rows zoneout "bf16 autocast"
    python benchmarks/rnn_speed.py --device cuda   # one GPU: ratios to cuDNN, CUDA-synchronized timing

Targets (issue 10, docs/design.md): per-sample recurrent dropout <= 1.10x; zoneout <= 1.20x;
bf16 autocast <= 1.10x the fused layer under the same autocast; batch-shared recurrent dropout
and weight dropout <= 1.05x; eval 1.00x; memory <= 1.2x. On one GPU (``--device cuda``, baseline
cuDNN): per-sample recurrent dropout and zoneout <= 1.5x, eval 1.00x. Misses are flagged.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import regdrop
from regdrop.functional._triton_rnn import cuda_scan_available
from regdrop.functional.rnn import _onednn_linear_available, extension_available

SHAPES = [(64, 100, 32, 128), (32, 200, 8, 64), (64, 50, 256, 512)]
MEMORY_TARGET = 1.2
# On one GPU the baseline is cuDNN; the per-step loops aim at <= 1.5x (docs/design.md).
GPU_TARGETS = {"recurrent (per sample)": 1.5, "variational input + recurrent": 1.5, "zoneout 0.1": 1.5}
DEVICE = torch.device("cpu")


@dataclass(frozen=True)
class Row:
    """One setting of the table: the regdrop layer's rates against the fused torch layer.

    The baseline is ``torch.nn.LSTM``/``GRU`` with the same architecture (``num_layers``,
    ``bidirectional``, ``proj_size``), on the same input (padded or packed), under the same
    autocast, without any dropout. Rows with the same baseline are timed interleaved with it.
    """

    name: str
    rates: dict[str, Any]
    target: float
    kinds: tuple[str, ...] = ("LSTM", "GRU")
    num_layers: int = 1
    bidirectional: bool = False
    proj: bool = False  # LSTM proj_size = hidden // 2
    packed: bool = False  # a PackedSequence of lengths L/2 .. L, in shuffled order
    bf16: bool = False  # under torch.autocast(device, dtype=torch.bfloat16), baseline too
    eval: bool = False  # forward in eval() mode under no_grad instead of a training step
    max_hidden: int | None = None  # skipped above this hidden size (to keep the run short)

    def baseline_key(self) -> tuple[Any, ...]:
        return (self.num_layers, self.bidirectional, self.proj, self.packed, self.bf16, self.eval)


PER_SAMPLE = dict(recurrent_dropout=0.25)
ROWS = [
    Row("recurrent (per sample)", PER_SAMPLE, 1.10),
    Row("recurrent (batch-shared)", dict(recurrent_dropout=0.25, recurrent_dropout_shared=True), 1.05),
    Row("weight (DropConnect)", dict(weight_dropout=0.25), 1.05),
    Row("variational input + recurrent", dict(input_dropout=0.25, recurrent_dropout=0.25), 1.10),
    Row("zoneout 0.1", dict(zoneout=0.1), 1.20),
    Row("proj_size H/2 + recurrent (per sample)", PER_SAMPLE, 1.10, kinds=("LSTM",), proj=True),
    Row("bf16 autocast + recurrent (per sample)", PER_SAMPLE, 1.10, bf16=True),
    # torch runs a packed LSTM/GRU without oneDNN (its slower per-step path): seconds per
    # training step at H = 512 on a 2-core CPU, so this row stops at H = 128.
    Row(
        "2 layers, bidirectional, packed + recurrent (per sample)",
        PER_SAMPLE,
        1.10,
        num_layers=2,
        bidirectional=True,
        packed=True,
        max_hidden=128,
    ),
    # Training without dropout: a GRU, and an LSTM on packed input, run the compiled loop where
    # torch's CPU kernel is slower (regdrop.nn.rnn); the padded LSTM is torch's own kernel.
    Row("no dropout (training)", {}, 1.05, kinds=("GRU",)),
    Row(
        "2 layers, bidirectional, packed, no dropout (training)",
        {},
        1.05,
        num_layers=2,
        bidirectional=True,
        packed=True,
        max_hidden=128,
    ),
    Row("eval (all rates on)", dict(recurrent_dropout=0.25, weight_dropout=0.25), 1.00, eval=True),
]


def saved_bytes(step: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd keeps for backward during ``step``."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    loss.backward()
    return sum(seen.values())


CLOCK = time.perf_counter


def now() -> float:
    """The clock, after the GPU (if any) has finished the work queued so far."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)
    return CLOCK()


def target_of(row: Row) -> float:
    return GPU_TARGETS.get(row.name, row.target) if DEVICE.type == "cuda" else row.target


def make_input(row: Row, shape: tuple[int, int, int, int]) -> Any:
    """The input of a row: a (N, L, in) batch-first tensor, or a PackedSequence of it."""
    n, steps, inp, _ = shape
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, steps, inp, generator=gen).to(DEVICE)
    if not row.packed:
        return x.requires_grad_()
    lengths = torch.linspace(steps, max(1, steps // 2), n).round().long()
    lengths = lengths[torch.randperm(n, generator=gen)]
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return packed._replace(data=packed.data.detach().requires_grad_())


def measure_group(
    kind: str, shape: tuple[int, int, int, int], rows: list[Row], repeats: int
) -> list[tuple[Row, float, float | None]]:
    """(row, time ratio, saved-memory ratio) for rows sharing one baseline, timed interleaved."""
    _, _, inp, hidden = shape
    spec = rows[0]
    torch.manual_seed(0)
    kwargs: dict[str, Any] = dict(num_layers=spec.num_layers, bidirectional=spec.bidirectional, batch_first=True)
    if spec.proj:
        kwargs["proj_size"] = hidden // 2
    base = (torch.nn.LSTM if kind == "LSTM" else torch.nn.GRU)(inp, hidden, device=DEVICE, **kwargs)
    ours_cls = regdrop.nn.LSTM if kind == "LSTM" else regdrop.nn.GRU
    layers: list[torch.nn.Module] = [base] + [ours_cls.from_torch(base, **row.rates) for row in rows]
    for layer in layers:
        layer.train(not spec.eval)
    x = make_input(spec, shape)
    precision = torch.autocast(DEVICE.type, dtype=torch.bfloat16) if spec.bf16 else contextlib.nullcontext()
    base_precision: Any = precision
    if spec.bf16:
        try:
            with precision, torch.no_grad():
                base(x)
        except RuntimeError as err:  # torch's fused LSTM under CPU bf16 autocast on an AVX2-only CPU
            print(
                f"    ({kind} {shape}: torch's fused layer fails under bf16 autocast here: "
                f"{str(err).splitlines()[0][:80]}; the bf16 rows' baseline is the fused float32 layer)"
            )
            base_precision = contextlib.nullcontext()

    def step(layer: torch.nn.Module) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with base_precision if layer is base else precision:
                out, _ = layer(x)
            data = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
            return data.float().square().mean()

        return run

    def timed(layer: torch.nn.Module) -> float:
        t0 = now()
        if spec.eval:
            with torch.no_grad():
                step(layer)()
        else:
            step(layer)().backward()
        return now() - t0

    times: list[list[float]] = [[] for _ in layers]
    for _ in range(2):  # warm up (also builds the compiled loop)
        for layer in layers:
            timed(layer)
    for _ in range(repeats):
        for i, layer in enumerate(layers):
            times[i].append(timed(layer))
    ref_t = statistics.median(times[0])
    memory: list[float | None] = [None] * len(rows)
    if not spec.eval:
        ref_m = saved_bytes(step(base))
        memory = [saved_bytes(step(layer)) / ref_m for layer in layers[1:]]
    print(f"    ({kind} {shape} {describe_baseline(spec)}: fused step {ref_t * 1e3:.1f} ms)", flush=True)
    return [(row, statistics.median(t) / ref_t, m) for row, t, m in zip(rows, times[1:], memory, strict=True)]


def describe_baseline(row: Row) -> str:
    parts = [f"{row.num_layers} layer{'s' if row.num_layers > 1 else ''}"]
    parts += ["bidirectional"] * row.bidirectional + ["proj_size H/2"] * row.proj + ["packed"] * row.packed
    parts += ["bf16 autocast"] * row.bf16 + ["eval forward"] * row.eval
    return ", ".join(parts)


def measure(
    kind: str, shape: tuple[int, int, int, int], repeats: int, rows: list[Row]
) -> list[tuple[Row, float, float | None]]:
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        if kind in row.kinds and (row.max_hidden is None or shape[3] <= row.max_hidden):
            groups.setdefault(row.baseline_key(), []).append(row)
    results = {}
    for group in groups.values():
        try:
            for row, ratio, mem in measure_group(kind, shape, group, repeats):
                results[row.name] = (row, ratio, mem)
        except RuntimeError as err:
            print(f"    ({kind} {shape} {describe_baseline(group[0])}: not measured, {str(err).splitlines()[0]})")
    return [results[row.name] for row in rows if row.name in results]


def verdict(ratio: float, target: float) -> str:
    shown = round(ratio, 2)
    return f"{ratio:.2f}x" if shown <= target else f"{ratio:.2f}x MISS by {shown / target - 1:.0%}"


def machine() -> list[str]:
    """Header lines: processor, ISA, GEMM engines (on ``--device cuda``: the GPU, CUDA, cuDNN and
    whether the Triton loop runs)."""
    if DEVICE.type == "cuda":
        props = torch.cuda.get_device_properties(DEVICE)
        return [
            f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}; baseline: torch's fused layer on cuDNN; "
            "regdrop's per-step loop: cuBLAS GEMMs + Triton kernels "
            + ("(on)" if cuda_scan_available() else "(OFF: triton missing, the reference loop runs)")
        ]
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in (platform.processor(), platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    extras = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    libs = [name for name, ok in (("oneDNN", torch.backends.mkldnn.is_available()),
                                  ("MKL", torch.backends.mkl.is_available())) if ok]  # fmt: skip
    if extension_available():
        step = torch.ops.regdrop_scan.step_gemm_engine()
    else:
        step = "none: the compiled loop is not built, per-sample dropout runs the Python loop (torch.mm)"
    proj = "oneDNN linear op" if _onednn_linear_available() else "torch.addmm"
    return [
        f"CPU: {model} ({os.cpu_count()} logical cores), ISA: {torch.backends.cpu.get_cpu_capability()} "
        f"(cpu flags: {', '.join(extras) or 'none of avx2/avx512'}); torch {torch.__version__} built with "
        f"{', '.join(libs) or 'neither oneDNN nor MKL'}",
        f"GEMM engines: compiled loop per-step products: {step}; input projection: {proj}; weight gradients: "
        f"torch.mm ({'MKL' if 'MKL' in libs else 'BLAS'}); torch's fused LSTM/GRU: oneDNN where available",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per setting (default 5)")
    parser.add_argument(
        "--shapes", nargs="*", default=None, help="batch,time,input,hidden (default: the three reference shapes)"
    )
    parser.add_argument("--kinds", nargs="*", default=["LSTM", "GRU"], choices=["LSTM", "GRU"])
    parser.add_argument(
        "--rows", nargs="*", default=None, help="names (or name prefixes) of the rows to run (default: all)"
    )
    # The recipes' CLI spells it --num_threads and recipes/evidence.py --num-threads; both work here,
    # and --threads, the name this script had first, still does.
    parser.add_argument(
        "--num_threads",
        "--num-threads",
        "--threads",
        dest="threads",
        type=int,
        default=None,
        help="torch CPU threads (torch.set_num_threads); also --num-threads or --threads (default: torch's choice)",
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time, or CPU time of this process (steadier on a busy machine)",
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="where the layers run (cuda: the first GPU)"
    )
    args = parser.parse_args()
    global CLOCK, DEVICE
    if args.device == "cuda":
        if not torch.cuda.is_available():
            parser.error(
                f"--device cuda: torch sees no CUDA GPU here (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); run it on a machine with a GPU and a CUDA build of torch"
            )
        if args.clock == "cpu":
            parser.error("--device cuda times wall-clock (the GPU's work is not CPU time); drop --clock cpu")
        DEVICE = torch.device("cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        CLOCK = time.process_time
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else SHAPES
    rows = ROWS if args.rows is None else [r for r in ROWS if any(r.name.startswith(p) for p in args.rows)]
    if not rows:
        parser.error(f"--rows matches none of {[r.name for r in ROWS]}")
    for line in machine():
        print(line)
    print(
        f"threads: {torch.get_num_threads()} (torch.get_num_threads()), {args.clock} clock, "
        f"{args.repeats} repeats, device: {DEVICE}"
    )
    print()
    print("| layer | shape (N, L, in, H) | setting | time / fused | saved memory / fused | target |")
    print("|---|---|---|---|---|---|")
    for kind in args.kinds:
        for shape in shapes:
            for row, ratio, mem in measure(kind, shape, args.repeats, rows):
                mem_s = "-" if mem is None else verdict(mem, MEMORY_TARGET)
                target = target_of(row)
                cells = [kind, str(shape), row.name, verdict(ratio, target), mem_s, f"<= {target:.2f}x"]
                print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
