"""Micro-benchmark of the GEMM engines reachable from regdrop's compiled loop, at the products
of the reference shapes (the numbers behind the engine rule in csrc/scan.cpp and README).

Per call, best of 5 timings, for: torch.mm (MKL on x86), the oneDNN linear op
``torch.ops.mkldnn._linear_pointwise`` (weight as given, or prepacked by
``torch.ops.mkldnn._reorder_linear_weight``) from Python and from C++ through the dispatcher,
oneDNN's brgemm micro-kernel (``at::native::cpublas::brgemm``) on one thread and split over
threads, and a small hand-written AVX2/FMA kernel. Builds a throwaway C++ extension (~40 s).

    python benchmarks/gemm_engines.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.cpp_extension import load_inline

SHAPES = [  # (what, M, K, N): A (M, K) @ B (K, N)
    ("step fwd H=128", 64, 128, 512),
    ("step fwd H=64", 32, 64, 256),
    ("step fwd H=256", 64, 256, 1024),
    ("step fwd H=512", 64, 512, 2048),
    ("step bwd H=128", 64, 512, 128),
    ("step bwd H=64", 32, 256, 64),
    ("step bwd H=256", 64, 1024, 256),
    ("step bwd H=512", 64, 2048, 512),
    ("input proj H=128", 6400, 32, 512),
    ("input proj H=64", 6400, 8, 256),
    ("input proj H=512", 3200, 256, 2048),
    ("weight grad H=128", 512, 6400, 128),
    ("weight grad H=64", 256, 6400, 64),
    ("weight grad H=512", 2048, 3200, 512),
]
CPP_ENGINES = ["mm", "brgemm", "brgemm_par", "hand", "hand_par", "onednn", "onednn_packed"]

CPP = r"""
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <immintrin.h>
#include <chrono>

using clk = std::chrono::steady_clock;
static double secs(clk::time_point a) { return std::chrono::duration<double>(clk::now() - a).count(); }

// C(M,N) (+)= A(M,K) B(K,N), all row-major, N % 16 == 0
static void hand_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                      float* C, int64_t ldc, bool add) {
  for (int64_t j = 0; j < N; j += 16) {
    int64_t i = 0;
    for (; i + 4 <= M; i += 4) {
      __m256 c00, c01, c10, c11, c20, c21, c30, c31;
      if (add) {
        c00 = _mm256_loadu_ps(C + (i + 0) * ldc + j); c01 = _mm256_loadu_ps(C + (i + 0) * ldc + j + 8);
        c10 = _mm256_loadu_ps(C + (i + 1) * ldc + j); c11 = _mm256_loadu_ps(C + (i + 1) * ldc + j + 8);
        c20 = _mm256_loadu_ps(C + (i + 2) * ldc + j); c21 = _mm256_loadu_ps(C + (i + 2) * ldc + j + 8);
        c30 = _mm256_loadu_ps(C + (i + 3) * ldc + j); c31 = _mm256_loadu_ps(C + (i + 3) * ldc + j + 8);
      } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = _mm256_setzero_ps();
      }
      const float* a0 = A + i * lda;
      for (int64_t k = 0; k < K; ++k) {
        const __m256 b0 = _mm256_loadu_ps(B + k * ldb + j), b1 = _mm256_loadu_ps(B + k * ldb + j + 8);
        __m256 a = _mm256_broadcast_ss(a0 + k);
        c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(a0 + lda + k);
        c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(a0 + 2 * lda + k);
        c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(a0 + 3 * lda + k);
        c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
      }
      _mm256_storeu_ps(C + (i + 0) * ldc + j, c00); _mm256_storeu_ps(C + (i + 0) * ldc + j + 8, c01);
      _mm256_storeu_ps(C + (i + 1) * ldc + j, c10); _mm256_storeu_ps(C + (i + 1) * ldc + j + 8, c11);
      _mm256_storeu_ps(C + (i + 2) * ldc + j, c20); _mm256_storeu_ps(C + (i + 2) * ldc + j + 8, c21);
      _mm256_storeu_ps(C + (i + 3) * ldc + j, c30); _mm256_storeu_ps(C + (i + 3) * ldc + j + 8, c31);
    }
    for (; i < M; ++i) {
      __m256 c0 = add ? _mm256_loadu_ps(C + i * ldc + j) : _mm256_setzero_ps();
      __m256 c1 = add ? _mm256_loadu_ps(C + i * ldc + j + 8) : _mm256_setzero_ps();
      for (int64_t k = 0; k < K; ++k) {
        const __m256 a = _mm256_broadcast_ss(A + i * lda + k);
        c0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(B + k * ldb + j), c0);
        c1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(B + k * ldb + j + 8), c1);
      }
      _mm256_storeu_ps(C + i * ldc + j, c0); _mm256_storeu_ps(C + i * ldc + j + 8, c1);
    }
  }
}

// a (M,K), b (K,N) row-major contiguous, out (M,N). Returns seconds per call.
double bench(std::string engine, at::Tensor a, at::Tensor b, at::Tensor out, int64_t iters) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  std::function<void()> f;
  at::Tensor wT, wp;
  if (engine == "mm") f = [&] { at::mm_out(out, a, b); };
  else if (engine == "addmm_") f = [&] { out.addmm_(a, b); };
  else if (engine == "brgemm") f = [&] {
    at::native::cpublas::brgemm(M, N, K, K, N, N, true, a.data_ptr<float>(), b.data_ptr<float>(),
                                out.data_ptr<float>(), false);
  };
  else if (engine == "brgemm_par") f = [&] {
    // split columns in blocks of 64 over threads (one brgemm per block)
    const int64_t nb = (N + 63) / 64;
    at::parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t bi = b0; bi < b1; ++bi) {
        int64_t j = bi * 64, n = std::min<int64_t>(64, N - j);
        at::native::cpublas::brgemm(M, n, K, K, N, N, true, a.data_ptr<float>(), b.data_ptr<float>() + j,
                                    out.data_ptr<float>() + j, false);
      }
    });
  };
  else if (engine == "brgemm_rows") f = [&] {
    at::parallel_for(0, M, 1, [&](int64_t r0, int64_t r1) {
      at::native::cpublas::brgemm(r1 - r0, N, K, K, N, N, true, a.data_ptr<float>() + r0 * K, b.data_ptr<float>(),
                                  out.data_ptr<float>() + r0 * N, false);
    });
  };
  else if (engine == "hand") f = [&] {
    hand_gemm(M, N, K, a.data_ptr<float>(), K, b.data_ptr<float>(), N, out.data_ptr<float>(), N, true);
  };
  else if (engine == "hand_par") f = [&] {
    const int64_t nb = N / 16;
    at::parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
      hand_gemm(M, (b1 - b0) * 16, K, a.data_ptr<float>(), K, b.data_ptr<float>() + b0 * 16, N,
                out.data_ptr<float>() + b0 * 16, N, true);
    });
  };
  else if (engine == "onednn_packed" || engine == "onednn") {
    static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "")
        .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, c10::string_view,
                          c10::List<std::optional<at::Scalar>>, std::optional<c10::string_view>)>();
    static auto reorder = c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_reorder_linear_weight", "")
        .typed<at::Tensor(const at::Tensor&, std::optional<int64_t>)>();
    wT = b.t().contiguous();
    wp = engine == "onednn_packed" ? reorder.call(wT, M) : wT;
    f = [&] { out = op.call(a, wp, std::nullopt, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt); };
  } else TORCH_CHECK(false, "engine");
  for (int i = 0; i < 10; ++i) f();
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    auto t0 = clk::now();
    for (int64_t i = 0; i < iters; ++i) f();
    best = std::min(best, secs(t0) / iters);
  }
  return best;
}


"""


def python_times(a: torch.Tensor, b: torch.Tensor, iters: int) -> dict[str, float]:
    lp, reorder = torch.ops.mkldnn._linear_pointwise, torch.ops.mkldnn._reorder_linear_weight
    w = b.t().contiguous()  # the linear op's weight layout, (N, K)
    packed = reorder(w, a.shape[0])
    out = torch.empty(a.shape[0], b.shape[1])
    calls = {
        "py mm": lambda: torch.mm(a, b, out=out),
        "py onednn": lambda: lp(a, w, None, "none", [], ""),
        "py onednn_packed": lambda: lp(a, packed, None, "none", [], ""),
    }
    result = {}
    for name, f in calls.items():
        for _ in range(10):
            f()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(iters):
                f()
            best = min(best, (time.perf_counter() - t0) / iters)
        result[name] = best
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args()
    ext = load_inline(
        "regdrop_gemm_engines", cpp_sources=[CPP], functions=["bench"], extra_cflags=["-O3", "-mavx2", "-mfma"]
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, ISA {torch.backends.cpu.get_cpu_capability()}"
    )
    print("us per call (GFLOP/s)")
    for what, m, k, n in SHAPES:
        a, b, out = torch.randn(m, k), torch.randn(k, n), torch.zeros(m, n)
        flop = 2 * m * k * n
        iters = max(3, int(1e8 / flop))
        times = python_times(a, b, iters)
        for engine in CPP_ENGINES:
            if engine.startswith("hand") and n % 16:
                continue
            times[engine] = ext.bench(engine, a, b, out, iters)
        cells = [f"{name} {t * 1e6:.1f} ({flop / t / 1e9:.0f})" for name, t in times.items()]
        print(f"{what:18s} ({m},{k})@({k},{n}): " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
