#!/usr/bin/env bash
# The one GPU check of regdrop's CUDA path, for a session that is lent a GPU (about 10 minutes on
# one H200; nothing is downloaded). Run it from the repository root:
#
#     bash benchmarks/gpu_check.sh            # results in $OUT (the device tool's) or ./gpu_check_out
#
# 1. the CUDA tests (compiled Triton kernels, no interpreter) and the layers' tests on CUDA;
# 2. benchmarks/rnn_speed.py --device cuda: the speed table as ratios to cuDNN (under 3 minutes);
# 3. the sine recipe on the GPU under 16-mixed and bf16-mixed (a few epochs each; must stay finite).
# Each stage has its own time limit and the script goes on after a failure; the last lines
# summarize. Paste the table from rnn_speed_cuda.md into README ("CUDA") with the GPU named.
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-gpu_check_out}"
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-/tmp/regdrop-ext}"
declare -A STATUS

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, log to $OUT_DIR/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT_DIR/$name.log"
    STATUS[$name]="rc=$rc, $((SECONDS - start)) s"
    echo "=== $name: ${STATUS[$name]}"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version(), 'GPU', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
    python -c "import triton; print('triton', triton.__version__)" || echo "triton: not importable"
    python -c "import lightning, torchmetrics; print('lightning', lightning.__version__, 'torchmetrics', torchmetrics.__version__)" || true
} | tee "$OUT_DIR/versions.txt"

# 1. The CUDA tests. The interpreter tests run too (they check the CPU path of the same kernels).
stage tests 180 python -m pytest -q -p no:cacheprovider -x \
    tests/functional/test_triton_rnn_cuda.py tests/functional/test_triton_rnn.py
# 2. The speed table (one GPU, CUDA-synchronized wall time, median of 10).
stage rnn_speed_cuda 180 python benchmarks/rnn_speed.py --device cuda --repeats 10
cp "$OUT_DIR/rnn_speed_cuda.log" "$OUT_DIR/rnn_speed_cuda.md"
# 3. The sine recipe under mixed precision, a few epochs each.
for precision in 16-mixed bf16-mixed; do
    stage "sine_$precision" 100 python recipes/sine_lstm.py --trainer.accelerator gpu --trainer.devices 1 \
        --trainer.precision "$precision" --trainer.max_epochs 3 --trainer.default_root_dir "$OUT_DIR/runs"
    if grep -qiE "(^|[^a-z])nan([^a-z]|$)|inf\b" "$OUT_DIR/sine_$precision.log"; then
        STATUS[sine_$precision]+=", NaN/inf in the log"
    fi
done
rm -rf "$OUT_DIR/runs"  # the device tool brings back files two folders deep at most

echo
echo "summary:" | tee "$OUT_DIR/summary.txt"
for name in tests rnn_speed_cuda sine_16-mixed sine_bf16-mixed; do
    echo "  $name: ${STATUS[$name]:-not run}" | tee -a "$OUT_DIR/summary.txt"
done
