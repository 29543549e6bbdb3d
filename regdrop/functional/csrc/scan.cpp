// Time loops of LSTM and GRU with a per-sample mask on h(t-1) where it enters W_hh.
//
// Why this file exists: with a different recurrent mask per sample, the weights cannot be
// folded and torch's fused kernel cannot be used. A loop in Python costs ~20 operator calls
// per time step, which at hidden sizes up to ~128 costs more than the arithmetic. Here each
// step is one GEMM plus one fused element-wise pass (forward) or one fused pass plus one
// GEMM (backward); the input projections and the weight gradients are single large GEMMs
// done by the caller over all time steps. Zoneout (its masks drawn by the caller, one row per
// step and sample) is mixed in the same element-wise pass; an LSTM projection (proj_size)
// adds one GEMM per step.
//
// Layout: sequences are packed time-major. Step t owns rows [offset[t], offset[t] + bs[t])
// of every (rows, ...) tensor, and those rows belong to samples 0 .. bs[t]-1. A padded
// batch is the special case bs[t] == N for all t. The state buffers (N, H) carry each
// sample's state; a sample that is not active at a step keeps its state untouched, which
// gives PackedSequence semantics for free in both directions.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <torch/library.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

std::vector<int64_t> offsets_of(const std::vector<int64_t>& bs) {
  std::vector<int64_t> off(bs.size());
  int64_t o = 0;
  for (size_t t = 0; t < bs.size(); ++t) { off[t] = o; o += bs[t]; }
  return off;
}

// Element-wise sigmoid and tanh the compiler can vectorize inside the fused loops (libm's
// scalar exp/tanh cost more than the GEMM at these sizes, and an ATen call per gate costs
// its dispatch at every step). float: exp by range reduction and a degree-6 polynomial
// (measured: exp and sigmoid within 3e-7 relative, tanh within 2e-7 absolute); double
// keeps libm (used by the float64 gradient checks).
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : x;  // selects, not branches (built with -fno-trapping-math)
  x = x > 88.0f ? 88.0f : x;
  const float a = x * 1.44269504088896341f;
  const float kf = (a + 12582912.0f) - 12582912.0f;  // round to nearest without a libm call
  const float r = (x - kf * 0.693145751953125f) - kf * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(kf) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}
inline float sigmoid_of(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
inline float tanh_of(float x) { return 1.0f - 2.0f / (1.0f + fast_exp(2.0f * x)); }
inline double sigmoid_of(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_of(double x) { return std::tanh(x); }

// What enters W_hh at the next step: h, times this sample's recurrent mask when there is one.
template <typename T>
inline void store_masked(T* __restrict__ dst, const T* __restrict__ h, const T* __restrict__ m, int64_t H) {
  if (m) {
    _Pragma("omp simd")
    for (int64_t j = 0; j < H; ++j) dst[j] = h[j] * m[j];
  } else {
    _Pragma("omp simd")
    for (int64_t j = 0; j < H; ++j) dst[j] = h[j];
  }
}

// Zoneout mixes the new and the previous state as torch.lerp(new, previous, w) does (the same
// formula, so a 0/1 weight returns exactly one of the two values): w is the row's training
// mask entry (true = keep the previous value), or the rate itself in evaluation (the expectation).
template <typename T>
inline T lerp_of(T start, T end, T w) {
  const T d = end - start;
  return std::abs(w) < T(0.5) ? start + w * d : end - d * (T(1) - w);
}

// One row's zoneout weights as T: the row of the boolean training mask (1 = keep the previous
// value), or the rate p in evaluation, in a per-thread buffer (slot 0 for h, 1 for c). The
// element-wise loops read these with no branch, so they vectorize.
template <typename T>
inline const T* zone_row(const bool* mask_row, T p, int64_t width, int slot) {
  thread_local std::vector<T> buffers[2];
  auto& buf = buffers[slot];
  if (static_cast<int64_t>(buf.size()) < width) buf.resize(static_cast<size_t>(width));
  T* __restrict__ w = buf.data();
  if (mask_row) {
    _Pragma("omp simd")
    for (int64_t j = 0; j < width; ++j) w[j] = static_cast<T>(mask_row[j]);
  } else {
    _Pragma("omp simd")
    for (int64_t j = 0; j < width; ++j) w[j] = p;
  }
  return w;
}

// Every element-wise loop below carries `omp simd` (honoured with -fopenmp / -fopenmp-simd):
// GCC left the LSTM forward's cell loop scalar without it (it cannot prove that row pointers
// declared __restrict__ inside lambdas do not alias); with it the forward took 8-27% less time
// on the AMD EPYC build machine (A/B in one process, one thread).

// Runs f with zoneout on or off as a compile-time constant (std::true_type or std::false_type):
// a loop that tests a run-time flag per element does not vectorize (measured: the LSTM forward's
// cell loop ran scalar).
template <typename F>
inline void with_zone(bool on, F&& f) {
  if (on) f(std::true_type{});
  else f(std::false_type{});
}


// ---------------------------------------------------------------------------- GEMM engine
// Every product of the time loop goes through StepWeight::run and gemm_rows:
//     C[M, N] = A[M, K] B[K, N]  (+ C if accumulate),  row-major, with row strides lda/ldb/ldc,
// computed on the calling thread. The loops split each step's rows between threads themselves
// (at::parallel_for, torch's OpenMP pool: the build adds -fopenmp, without which the header
// template runs serially), so one parallel region per step covers the product and the
// element-wise pass of the same rows, and no product starts threads of its own: a process
// never runs more threads than torch.get_num_threads() (under DDP, Lightning sets that to
// cores / processes). Products over all steps (input projection, weight gradients) are done
// by the Python caller: regdrop.functional.input_projection (oneDNN linear op) and torch.mm.
//
// Engine, chosen by measurement (benchmarks/gemm_engines.py; numbers in README, "Speed and
// memory"): oneDNN's batch-reduce GEMM micro-kernel (brgemm), which torch exports as
// at::native::cpublas::brgemm. On the 2-core AMD EPYC build machine, one thread, it ran the
// per-step products of the reference shapes, (32,64)@(64,256) to (64,2048)@(2048,512), at
// 99-117 GFLOP/s, against 68-99 for at::mm (MKL) and 38-112 for the oneDNN linear op
// (mkldnn::_linear_pointwise, weight prepacked) through the dispatcher, whose per-call
// overhead loses at hidden sizes 64-128 (it wins by 3-7% at 512). It has no per-call setup beyond a hash lookup of the JIT-compiled kernel
// (cached per thread and shape). Where oneDNN has no float32 micro-kernel (processors without
// AVX2, or mkldnn disabled) cpublas::brgemm runs cpublas::gemm (MKL or torch's BLAS) itself.
// float64 (used by the gradient checks) goes to at::mm (MKL).
//
// Except on processors without AVX-512, at large products: there oneDNN's float32 micro-kernel
// is its AVX2 one, and on an AVX2-only AMD EPYC (one thread) it ran (64,512)@(512,2048) at 41
// GFLOP/s and (64,2048)@(2048,512) at 58, against 81-82 for at::mm (MKL); at hidden size 256 at
// 35 and 45 against 69 and 57; the two tied at hidden size 128 ((64,128)@(128,512), 84-85) and
// the micro-kernel won at 64 (93 against 78). So there
// a product whose B has more than 2^17 elements (hidden size above ~181) runs at::mm.
inline bool step_gemm_on_mm(int64_t N, int64_t K) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return !avx512 && N * K > (int64_t{1} << 17);
}

// C = A B (+ C) by at::mm (MKL) on views of the raw rows: torch exports no raw-pointer BLAS
// call (cpublas::gemm's float and double overloads are not in libtorch's exported symbols);
// inside a parallel region at::mm runs on the calling thread.
template <typename T>
inline void aten_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                      int64_t ldc, bool accumulate) {
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const auto a = at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opts);
  const auto b = at::from_blob(const_cast<T*>(B), {K, N}, {ldb, 1}, opts);
  auto c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  if (accumulate) c.addmm_(a, b);
  else at::mm_out(c, a, b);
}

inline void gemm_rows(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                      float* C, int64_t ldc, bool accumulate) {
  if (M <= 0) return;
  if (step_gemm_on_mm(N, K)) return aten_gemm(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  at::native::cpublas::brgemm(M, N, K, lda, ldb, ldc, accumulate, A, B, C, /*is_vnni=*/false);
}

inline void gemm_rows(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb,
                      double* C, int64_t ldc, bool accumulate) {
  if (M <= 0) return;
  aten_gemm(M, N, K, A, lda, B, ldb, C, ldc, accumulate);  // float64 (the gradient checks): at::mm
}

// bfloat16 values as their bits (at::BFloat16 holds a uint16_t and nothing else).
inline uint16_t* bits_of(at::BFloat16* p) { return reinterpret_cast<uint16_t*>(p); }
inline const uint16_t* bits_of(const at::BFloat16* p) { return reinterpret_cast<const uint16_t*>(p); }

// float32 -> bfloat16, round to nearest even, NaN to 0x7FC0 (as at::BFloat16's constructor); a bit
// operation per element that vectorizes, where the constructor's per-element branch did not.
inline void to_bf16(const float* __restrict__ src, uint16_t* __restrict__ dst, int64_t n) {
  _Pragma("omp simd")
  for (int64_t k = 0; k < n; ++k) {
    uint32_t u;
    std::memcpy(&u, src + k, sizeof(u));
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    dst[k] = static_cast<uint16_t>(nan ? 0x7FC0u : rounded);
  }
}

// float64 state never meets a bfloat16 weight (the ops refuse it); this overload only lets the
// float64 instantiation of the loops compile.
inline void to_bf16(const double*, uint16_t*, int64_t) {
  TORCH_CHECK(false, "regdrop_scan: bfloat16 rows need float32 state");
}

// dst = float(src) (+ bias): a bfloat16 row of the input projection, widened for the
// element-wise pass (bfloat16 is float32's upper half), the bias added in float32.
inline void widen_row(const at::BFloat16* src_bf16, const float* __restrict__ bias, float* __restrict__ dst,
                      int64_t n) {
  const uint16_t* __restrict__ src = bits_of(src_bf16);
  auto value = [](uint16_t bits) {
    const uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
  };
  if (bias) {
    _Pragma("omp simd")
    for (int64_t k = 0; k < n; ++k) dst[k] = value(src[k]) + bias[k];
  } else {
    _Pragma("omp simd")
    for (int64_t k = 0; k < n; ++k) dst[k] = value(src[k]);
  }
}

// Whether oneDNN has a bfloat16 micro-kernel here (its test: AVX-512 core; torch's
// cpublas::brgemm refuses the packed layout elsewhere). Without it the bf16 products run through
// cpublas::gemm's bfloat16 path (unpacked right operand).
bool bf16_microkernel() {
  static const bool ok = at::hasMKLDNN() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return ok && at::globalContext().userEnabledMkldnn();
}

// The right operand B (K x N) of a loop's per-step product, prepared once per call. In float32
// or float64 it is B itself, row-major. With bfloat16 weights (autocast) it is B rounded to
// bfloat16 and, for the micro-kernel, packed in pairs of rows (VNNI: element (k, n) at
// [k / 2][n][k % 2], K padded to even); run() rounds its rows of A to bfloat16, and the product
// accumulates and lands in float32 (C stays float32, and so does everything the loop carries).
template <typename T>
struct StepWeight {
  int64_t K, N;
  bool bf16, vnni;
  at::Tensor b;

  explicit StepWeight(const at::Tensor& b_kn)
      : K(b_kn.size(0)), N(b_kn.size(1)), bf16(b_kn.scalar_type() == at::kBFloat16), vnni(bf16 && bf16_microkernel()) {
    if (!bf16) {
      b = b_kn.contiguous();
    } else if (!vnni) {
      b = b_kn.contiguous();
    } else {
      const auto src = b_kn.contiguous();
      const int64_t K2 = (K + 1) / 2 * 2;
      b = at::zeros({K2 / 2, N, 2}, src.options());
      const at::BFloat16* S = src.data_ptr<at::BFloat16>();
      at::BFloat16* D = b.data_ptr<at::BFloat16>();
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) D[(k / 2) * N * 2 + n * 2 + (k % 2)] = S[k * N + n];
    }
  }

  // C[M, N] = A[M, K] B (+ C if accumulate), on the calling thread.
  void run(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc, bool accumulate) const {
    if (M <= 0) return;
    if constexpr (std::is_same_v<T, float>) {
      if (bf16) {
        const int64_t K2 = vnni ? (K + 1) / 2 * 2 : K;
        thread_local std::vector<at::BFloat16> a16;
        a16.resize(static_cast<size_t>(M * K2));
        for (int64_t i = 0; i < M; ++i) {
          to_bf16(A + i * lda, bits_of(a16.data() + i * K2), K);
          if (K2 > K) a16[i * K2 + K] = at::BFloat16(0.0f);
        }
        at::native::cpublas::brgemm(M, N, K2, K2, N, ldc, accumulate, a16.data(), b.data_ptr<at::BFloat16>(), C, vnni);
        return;
      }
    }
    gemm_rows(M, N, K, A, lda, b.data_ptr<T>(), N, C, ldc, accumulate);
  }

  // The same with A's rows already in bfloat16 (a bfloat16 weight only): the loop wrote them so
  // (they are also what the weight gradient needs), and no per-step rounding is left to do.
  void run(int64_t M, const at::BFloat16* A, int64_t lda, T* C, int64_t ldc, bool accumulate) const {
    if constexpr (std::is_same_v<T, float>) {
      if (M <= 0) return;
      TORCH_CHECK(bf16, "regdrop_scan: bfloat16 rows need a bfloat16 weight");
      if (vnni && K % 2) {  // the packed layout pads K to even: the rows need a zero column
        thread_local std::vector<at::BFloat16> a16;
        a16.resize(static_cast<size_t>(M * (K + 1)));
        for (int64_t i = 0; i < M; ++i) {
          std::memcpy(a16.data() + i * (K + 1), A + i * lda, static_cast<size_t>(K) * sizeof(at::BFloat16));
          a16[i * (K + 1) + K] = at::BFloat16(0.0f);
        }
        at::native::cpublas::brgemm(M, N, K + 1, K + 1, N, ldc, accumulate, a16.data(), b.data_ptr<at::BFloat16>(),
                                    C, vnni);
        return;
      }
      at::native::cpublas::brgemm(M, N, K, lda, N, ldc, accumulate, A, b.data_ptr<at::BFloat16>(), C, vnni);
    } else {
      TORCH_CHECK(false, "regdrop_scan: bfloat16 rows need float32 state");  // the ops refuse that first
    }
  }
};

// Rows per task of a step's parallel region: enough that a task's product (2 K N flops per row)
// outweighs the cost of waking a thread (~1-2 us), so the small steps of the smallest shapes
// stay on one thread.
int64_t rows_per_task(int64_t K, int64_t N) { return std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(1, K * N)); }

// Rows per task of a purely element-wise pass.
int64_t grain(int64_t width) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, width)); }

// One step over rows [0, b): each block of rows runs its product (K x N weight) and its
// element-wise pass (`width` values a row; width 0: none), in that order or the other
// (product_first). A product
// that runs on at::mm (step_gemm_on_mm) runs once over all rows, outside any parallel region, where
// at::mm (MKL) splits it over torch's threads itself, and the element-wise pass is split alone:
// with two threads, two 32-row products each on one thread took 1.12-1.29x the fused LSTM at
// (64, 50, 256, 512) on the AVX2-only EPYC.
template <typename Product, typename Rows>
void step_blocks(int64_t b, int64_t K, int64_t N, int64_t width, bool product_first, const Product& product,
                 const Rows& rows) {
  if (b <= 0) return;
  if (step_gemm_on_mm(N, K)) {
    if (width > 0 && !product_first) at::parallel_for(0, b, grain(width), rows);
    product(int64_t{0}, b);
    if (width > 0 && product_first) at::parallel_for(0, b, grain(width), rows);
    return;
  }
  at::parallel_for(0, b, rows_per_task(K, N), [&](int64_t n0, int64_t n1) {
    if (product_first) product(n0, n1);
    rows(n0, n1);
    if (!product_first) product(n0, n1);
  });
}

// Rows [0, b) as at most `blocks` fixed blocks of at least `grain` rows, run as parallel tasks:
// f(block, n0, n1). The blocks depend on b, grain and blocks only, not on which thread runs
// them, so a partial sum per block is the same in every run.
template <typename F>
void for_row_blocks(int64_t b, int64_t grain_rows, int64_t blocks, const F& f) {
  if (b <= 0) return;
  const int64_t count = std::max<int64_t>(1, std::min(blocks, (b + grain_rows - 1) / grain_rows));
  const int64_t chunk = (b + count - 1) / count;
  at::parallel_for(0, count, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) f(k, k * chunk, std::min(b, (k + 1) * chunk));
  });
}

// ------------------------------------------------------------------------ argument checks
// The Python wrappers (lstm_scan / gru_scan) check all of this with clearer messages; these
// checks make a direct call of the op safe: nothing below indexes past what it was given.
void check_batch_sizes(const char* op, const std::vector<int64_t>& bs, int64_t rows, int64_t N) {
  int64_t total = 0;
  for (size_t t = 0; t < bs.size(); ++t) {
    TORCH_CHECK(bs[t] >= 0, op, ": batch_sizes must be >= 0, got ", bs[t], " at step ", t);
    TORCH_CHECK(t == 0 || bs[t] <= bs[t - 1], op, ": batch_sizes must be non-increasing, got ", bs[t - (t > 0)],
                " then ", bs[t], " at step ", t);
    total += bs[t];
  }
  TORCH_CHECK(total == rows, op, ": batch_sizes must sum to the number of rows, ", rows, ", got ", total);
  TORCH_CHECK(bs.empty() || bs[0] == N, op, ": batch_sizes[0] must equal the batch size N = ", N, ", got ",
              bs.empty() ? 0 : bs[0]);
}

// A tensor the loop reads by raw pointer: defined, 2-D (or 1-D), exact shape, ref's dtype and
// device, contiguous.
void check_operand(const char* op, const char* name, const at::Tensor& t, const at::Tensor& ref,
                   std::vector<int64_t> shape, bool weight = false) {
  TORCH_CHECK(t.defined(), op, ": ", name, " must be a defined tensor");
  TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), op, ": ", name, " must have shape ", at::IntArrayRef(shape),
              ", got ", t.sizes());
  // A weight may be bfloat16 with float32 data: the loop then runs bf16 products (autocast).
  const bool bf16_weight = weight && t.scalar_type() == at::kBFloat16 && ref.scalar_type() == at::kFloat;
  TORCH_CHECK(t.scalar_type() == ref.scalar_type() || bf16_weight, op, ": ", name, " must have dtype ",
              ref.scalar_type(), weight && ref.scalar_type() == at::kFloat ? " or BFloat16" : "", ", got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == ref.device() && t.device().is_cpu(), op, ": ", name, " must be a CPU tensor on ",
              ref.device(), ", got ", t.device());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

// An optional operand (mask, bias): an empty tensor means absent.
bool check_optional(const char* op, const char* name, const at::Tensor& t, const at::Tensor& ref,
                    std::vector<int64_t> shape) {
  if (!t.defined() || t.numel() == 0) return false;
  check_operand(op, name, t, ref, shape);
  return true;
}

at::Tensor given_or_empty(const std::optional<at::Tensor>& t) { return t.has_value() ? *t : at::Tensor(); }

// Zoneout's operands: per-row boolean masks (true = keep the previous state) from a training
// step (zone_h, and zone_c for an LSTM, given together), or the rate zone_p in [0, 1] for
// evaluation; not both. Returns whether masks are given.
bool check_zone(const char* op, const at::Tensor& zone_h, const at::Tensor* zone_c, double zone_p,
                const at::Tensor& ref, int64_t rows, int64_t h_width, int64_t c_width) {
  TORCH_CHECK(std::isfinite(zone_p) && zone_p >= 0.0 && zone_p <= 1.0, op, ": zone_p must be in [0, 1], got ",
              zone_p);
  const auto bool_ref = ref.new_empty({0}, ref.options().dtype(at::kBool));  // the masks are bool
  const bool has_h = check_optional(op, "zone_h", zone_h, bool_ref, {rows, h_width});
  const bool has_c = zone_c != nullptr && check_optional(op, "zone_c", *zone_c, bool_ref, {rows, c_width});
  TORCH_CHECK(zone_c == nullptr || has_h == has_c, op, ": zone_h and zone_c must be given together, got ",
              has_h ? "zone_h only" : "zone_c only");
  TORCH_CHECK(!(has_h && zone_p != 0.0), op,
              ": give per-row zoneout weights (training) or zone_p (evaluation), not both; got zone_p = ", zone_p);
  return has_h;
}

void check_2d(const char* op, const char* name, const at::Tensor& t, bool bf16_ok = false) {
  TORCH_CHECK(t.defined() && t.dim() == 2, op, ": ", name, " must be a 2-D tensor, got ",
              t.defined() ? t.dim() : 0, "-D");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble ||
                  (bf16_ok && t.scalar_type() == at::kBFloat16),
              op, ": ", name, " must be float32 or float64", bf16_ok ? " (or bfloat16 with a bfloat16 w_hh)" : "",
              ", got ", t.scalar_type());
}

// A row of xw (or of bfloat16 activations saved for backward) as the element-wise pass reads
// it: in place where it is in the state's dtype and has no bias to add, else widened (bfloat16)
// and/or with the bias added, in a per-thread buffer.
template <typename T>
inline const T* x_row(const T* x, const at::BFloat16* x16, const T* bias, int64_t width) {
  if (x && !bias) return x;
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < width) buf.resize(static_cast<size_t>(width));
  T* __restrict__ dst = buf.data();
  if constexpr (std::is_same_v<T, float>) {
    if (x16) {
      widen_row(x16, bias, dst, width);
      return dst;
    }
  }
  TORCH_CHECK(x, "regdrop_scan: bfloat16 rows need float32 state");  // the ops refuse that first
  _Pragma("omp simd")
  for (int64_t j = 0; j < width; ++j) dst[j] = x[j] + bias[j];
  return dst;
}

// ---------------------------------------------------------------------------------- LSTM
// Per step: gates = xw_t + (m * h(t-1)) W_hh^T; c~ = f c(t-1) + i g; r = o tanh(c~);
// h~ = r W_hr^T with a projection (a second GEMM per step), else h~ = r; then zoneout:
// c(t) = lerp(c~, c(t-1), zc), h(t) = lerp(h~, h(t-1), zh). Widths: H of the cell, P of h
// (P = H without projection).
// A bfloat16 w_hh (CPU autocast) runs the step products on bfloat16 operands: xw may then be
// bfloat16 too (autocast's input projection), widened to float32 row by row, and h_prev, the
// masked h(t-1), is kept in bfloat16: the rows the step's product read, and those of dW_hh.
// bias (4H, the state's dtype, optional) is added to xw in the element-wise pass.
// Returns out, h_n, c_n and what the backward pass needs: the gate activations, tanh(c~),
// c(t-1), the masked h(t-1) that entered W_hh, and r (only with a projection, for dW_hr).
std::vector<at::Tensor> lstm_forward(const at::Tensor& xw, const at::Tensor& h0, const at::Tensor& c0,
                                     const at::Tensor& w_hh, const at::Tensor& mask,
                                     std::vector<int64_t> bs, bool reverse,
                                     const std::optional<at::Tensor>& w_hr_arg,
                                     const std::optional<at::Tensor>& zone_h_arg,
                                     const std::optional<at::Tensor>& zone_c_arg, double zone_p,
                                     const std::optional<at::Tensor>& bias_arg) {
  const char* op = "regdrop_scan::lstm_forward";
  check_2d(op, "h0", h0);
  check_2d(op, "c0", c0);
  check_2d(op, "xw", xw, w_hh.defined() && w_hh.scalar_type() == at::kBFloat16);
  const int64_t N = h0.size(0), P = h0.size(1), H = c0.size(1), rows = xw.size(0);
  const at::Tensor w_hr = given_or_empty(w_hr_arg), zone_h = given_or_empty(zone_h_arg),
                   zone_c = given_or_empty(zone_c_arg), bias = given_or_empty(bias_arg);
  // h0 sets the dtype of the state and everything float; xw may be bfloat16 with a bfloat16 w_hh
  const at::Tensor& st = h0;
  check_operand(op, "h0", h0, st, {N, P});
  check_operand(op, "w_hh", w_hh, st, {4 * H, P}, true);
  const bool bf16 = w_hh.scalar_type() == at::kBFloat16;
  check_operand(op, "xw", xw, st, {rows, 4 * H}, bf16);
  const bool x16 = xw.scalar_type() == at::kBFloat16;
  check_operand(op, "c0", c0, st, {N, H});
  const bool masked = check_optional(op, "mask", mask, st, {N, P});
  const bool proj = check_optional(op, "w_hr", w_hr, st, {P, H});
  const bool biased = check_optional(op, "bias", bias, st, {4 * H});
  TORCH_CHECK(proj || P == H, op, ": without w_hr, h0 and c0 must have the same width, got ", P, " and ", H);
  const bool zoned = check_zone(op, zone_h, &zone_c, zone_p, st, rows, P, H);
  const bool zone_on = zoned || zone_p != 0.0;
  check_batch_sizes(op, bs, rows, N);
  // The GEMM's output, then the gate activations (no copy of xw). With a bfloat16 weight the
  // GEMM writes a per-step buffer and the activations are saved for backward in bfloat16.
  auto acts = bf16               ? at::empty({rows, 4 * H}, st.options().dtype(at::kBFloat16))
              : x16 || biased ? at::empty({rows, 4 * H}, st.options())
                              : at::empty_like(xw);
  auto pre = at::empty({bf16 ? N : 0, 4 * H}, st.options());
  auto out = at::empty({rows, P}, st.options());
  auto tanh_c = at::empty({rows, H}, st.options());
  auto c_prev = at::empty({rows, H}, st.options());
  auto h_prev = at::empty({rows, P}, st.options().dtype(bf16 ? at::kBFloat16 : st.scalar_type()));
  auto r = at::empty({proj ? rows : 0, H}, st.options());
  auto h = h0.clone();
  auto c = c0.clone();
  auto hm = masked ? h0 * mask : h0.clone();
  auto w_hr_t = proj ? w_hr.t().contiguous() : at::Tensor();
  const auto off = offsets_of(bs);
  const int64_t L = bs.size();
  AT_DISPATCH_FLOATING_TYPES(st.scalar_type(), "lstm_forward", [&] {
    const scalar_t zp = static_cast<scalar_t>(zone_p);
    with_zone(zone_on, [&](auto zone_tag) {  // the body below, compiled once with and once without zoneout
    constexpr bool zone = decltype(zone_tag)::value;
    const StepWeight<scalar_t> w(w_hh.t());  // B = W_hh^T, (P, 4H)
    for (int64_t s = 0; s < L; ++s) {
      const int64_t t = reverse ? L - 1 - s : s, b = bs[t], o = off[t];
      const scalar_t* X = x16 ? nullptr : xw.data_ptr<scalar_t>() + o * 4 * H;
      const at::BFloat16* X16 = x16 ? xw.data_ptr<at::BFloat16>() + o * 4 * H : nullptr;
      const scalar_t* Bias = biased ? bias.data_ptr<scalar_t>() : nullptr;
      scalar_t* A = bf16 ? pre.data_ptr<scalar_t>() : acts.data_ptr<scalar_t>() + o * 4 * H;
      at::BFloat16* A16 = bf16 ? acts.data_ptr<at::BFloat16>() + o * 4 * H : nullptr;
      scalar_t* OUT = out.data_ptr<scalar_t>() + o * P;
      scalar_t* TC = tanh_c.data_ptr<scalar_t>() + o * H;
      scalar_t* CP = c_prev.data_ptr<scalar_t>() + o * H;
      scalar_t* HP = bf16 ? nullptr : h_prev.data_ptr<scalar_t>() + o * P;
      at::BFloat16* HP16 = bf16 ? h_prev.data_ptr<at::BFloat16>() + o * P : nullptr;
      scalar_t* R = proj ? r.data_ptr<scalar_t>() + o * H : nullptr;
      scalar_t* Hc = h.data_ptr<scalar_t>();
      scalar_t* Cc = c.data_ptr<scalar_t>();
      scalar_t* HM = hm.data_ptr<scalar_t>();
      const scalar_t* M = masked ? mask.data_ptr<scalar_t>() : nullptr;
      const bool* ZH = zoned ? zone_h.data_ptr<bool>() + o * P : nullptr;
      const bool* ZC = zoned ? zone_c.data_ptr<bool>() + o * H : nullptr;
      // The gates and the cell; r = o tanh(c~) goes to R (projection) or straight to out.
      auto cell = [&](int64_t n) {
        const scalar_t* __restrict__ xn = x_row<scalar_t>(X ? X + n * 4 * H : nullptr, X16 ? X16 + n * 4 * H : nullptr,
                                                          Bias, 4 * H);
        scalar_t* __restrict__ an = A + n * 4 * H;
        scalar_t* __restrict__ cc = Cc + n * H;
        scalar_t* __restrict__ cp = CP + n * H;
        scalar_t* __restrict__ tc = TC + n * H;
        scalar_t* __restrict__ rn = proj ? R + n * H : OUT + n * P;
        const scalar_t* __restrict__ zc = zone ? zone_row(ZC ? ZC + n * H : nullptr, zp, H, 1) : nullptr;
        _Pragma("omp simd")
        for (int64_t j = 0; j < 2 * H; ++j) an[j] = sigmoid_of(xn[j] + an[j]);
        _Pragma("omp simd")
        for (int64_t j = 2 * H; j < 3 * H; ++j) an[j] = tanh_of(xn[j] + an[j]);
        _Pragma("omp simd")
        for (int64_t j = 3 * H; j < 4 * H; ++j) an[j] = sigmoid_of(xn[j] + an[j]);
        _Pragma("omp simd")
        for (int64_t j = 0; j < H; ++j) {
          cp[j] = cc[j];
          const scalar_t cn = an[H + j] * cc[j] + an[j] * an[2 * H + j];
          tc[j] = tanh_of(cn);
          cc[j] = zone ? lerp_of(cn, cc[j], zc[j]) : cn;
          rn[j] = an[3 * H + j] * tc[j];
        }
        if (A16) to_bf16(an, bits_of(A16 + n * 4 * H), 4 * H);
      };
      // h~ (in out's rows) and h(t-1) give h(t): zoneout, then the state and the next GEMM's operand.
      auto new_h = [&](int64_t n) {
        scalar_t* __restrict__ hc = Hc + n * P;
        scalar_t* __restrict__ hp = HP ? HP + n * P : nullptr;
        scalar_t* __restrict__ hm_n = HM + n * P;
        scalar_t* __restrict__ out_n = OUT + n * P;
        const scalar_t* __restrict__ zh = zone ? zone_row(ZH ? ZH + n * P : nullptr, zp, P, 0) : nullptr;
        if (hp) std::memcpy(hp, hm_n, static_cast<size_t>(P) * sizeof(scalar_t));
        _Pragma("omp simd")
        for (int64_t j = 0; j < P; ++j) {
          const scalar_t hn = zone ? lerp_of(out_n[j], hc[j], zh[j]) : out_n[j];
          hc[j] = hn;
          out_n[j] = hn;
        }
        store_masked(hm_n, out_n, M ? M + n * P : nullptr, P);
      };
      // gates of these rows = xw + (m * h(t-1)) W_hh^T (the sum in the element-wise pass); with a
      // bfloat16 weight the rows of m * h(t-1) are rounded once, into h_prev, and read from there
      auto product = [&](int64_t n0, int64_t n1) {
        if (HP16) {
          to_bf16(HM + n0 * P, bits_of(HP16 + n0 * P), (n1 - n0) * P);
          return w.run(n1 - n0, HP16 + n0 * P, P, A + n0 * 4 * H, 4 * H, false);
        }
        w.run(n1 - n0, HM + n0 * P, P, A + n0 * 4 * H, 4 * H, false);
      };
      if (!proj) {
        step_blocks(b, P, 4 * H, 4 * H, true, product,
                    [&](int64_t n0, int64_t n1) { for (int64_t n = n0; n < n1; ++n) { cell(n); new_h(n); } });
      } else {
        step_blocks(b, P, 4 * H, 4 * H, true, product,
                    [&](int64_t n0, int64_t n1) { for (int64_t n = n0; n < n1; ++n) cell(n); });
        auto out_b = out.narrow(0, o, b);
        at::mm_out(out_b, r.narrow(0, o, b), w_hr_t);
        at::parallel_for(0, b, grain(2 * P), [&](int64_t n0, int64_t n1) {
          for (int64_t n = n0; n < n1; ++n) new_h(n);
        });
      }
    }
    });
  });
  return {out, h, c, acts, tanh_c, c_prev, h_prev, r};
}

// Returns d(xw) (the gate pre-activation gradients, which are also the bias gradients; in
// bfloat16 with a bfloat16 w_hh: they are the operands of the step products and of the weight
// gradients, rounded once), dh0, dc0, with a projection d(h~) (rows, P), and with bias_grad the
// bias gradient (4H, summed before any rounding); the caller forms dW_hh = d(xw)^T h_prev and
// dW_hr = d(h~)^T r in single GEMMs. dh holds what reaches h(t) besides the output: zoneout's
// carry from the step after, plus (added at the start of a step) the GEMM's d(xw) W_hh, masked.
std::vector<at::Tensor> lstm_backward(const at::Tensor& dout, const at::Tensor& dhn, const at::Tensor& dcn,
                                      const at::Tensor& acts, const at::Tensor& tanh_c, const at::Tensor& c_prev,
                                      const at::Tensor& w_hh, const at::Tensor& mask,
                                      std::vector<int64_t> bs, bool reverse,
                                      const std::optional<at::Tensor>& w_hr_arg,
                                      const std::optional<at::Tensor>& zone_h_arg,
                                      const std::optional<at::Tensor>& zone_c_arg, double zone_p,
                                      bool bias_grad) {
  const char* op = "regdrop_scan::lstm_backward";
  check_2d(op, "dhn", dhn);
  check_2d(op, "dcn", dcn);
  check_2d(op, "acts", acts, w_hh.defined() && w_hh.scalar_type() == at::kBFloat16);
  const int64_t N = dcn.size(0), H = dcn.size(1), P = dhn.size(1), rows = acts.size(0);
  const at::Tensor w_hr = given_or_empty(w_hr_arg), zone_h = given_or_empty(zone_h_arg),
                   zone_c = given_or_empty(zone_c_arg);
  // dcn sets the dtype of the state and of everything float; with a bfloat16 w_hh the gate
  // activations may be bfloat16 (as lstm_forward saves them then)
  const at::Tensor& st = dcn;
  check_operand(op, "w_hh", w_hh, st, {4 * H, P}, true);
  const bool bf16 = w_hh.scalar_type() == at::kBFloat16;
  check_operand(op, "acts", acts, st, {rows, 4 * H}, bf16);
  const bool acts16 = acts.scalar_type() == at::kBFloat16;
  check_operand(op, "dout", dout, st, {rows, P});
  check_operand(op, "dhn", dhn, st, {N, P});
  check_operand(op, "dcn", dcn, st, {N, H});
  check_operand(op, "tanh_c", tanh_c, st, {rows, H});
  check_operand(op, "c_prev", c_prev, st, {rows, H});
  const bool masked = check_optional(op, "mask", mask, st, {N, P});
  const bool proj = check_optional(op, "w_hr", w_hr, st, {P, H});
  TORCH_CHECK(proj || P == H, op, ": without w_hr, dhn and dcn must have the same width, got ", P, " and ", H);
  const bool zoned = check_zone(op, zone_h, &zone_c, zone_p, st, rows, P, H);
  const bool zone_on = zoned || zone_p != 0.0;
  check_batch_sizes(op, bs, rows, N);
  auto dgates = at::empty({rows, 4 * H}, st.options().dtype(bf16 ? at::kBFloat16 : st.scalar_type()));
  // bias_grad: the column sums of dgates (the gradient of the bias lstm_forward added), summed
  // in the state's dtype before any rounding to bfloat16, one partial sum per block of rows
  // (for_row_blocks: the same blocks whichever thread runs them, so the sum is deterministic)
  const int64_t db_blocks = std::max<int64_t>(1, at::get_num_threads());
  auto db_parts = at::zeros({bias_grad ? db_blocks : 0, 4 * H}, st.options());
  auto dht = at::empty({proj ? rows : 0, P}, st.options());
  auto dh = dhn.clone();
  auto dc = dcn.clone();
  auto through_w = at::empty({N, P}, st.options());
  auto dr = at::empty({N, H}, st.options());
  const auto off = offsets_of(bs);
  const int64_t L = bs.size();
  int64_t from_gemm = 0;  // rows of through_w that hold (dgates @ W_hh), not yet added to dh
  // Rows [lo, hi) leave the batch for good (reverse direction of a packed batch), or the loop
  // is over: add what went through W_hh to their gradient.
  auto finish = [&](int64_t lo, int64_t hi) {
    auto tw = through_w.narrow(0, lo, hi - lo);
    if (masked) tw = tw * mask.narrow(0, lo, hi - lo);
    dh.narrow(0, lo, hi - lo).add_(tw);
  };
  AT_DISPATCH_FLOATING_TYPES(st.scalar_type(), "lstm_backward", [&] {
    const scalar_t zp = static_cast<scalar_t>(zone_p);
    with_zone(zone_on, [&](auto zone_tag) {  // the body below, compiled once with and once without zoneout
    constexpr bool zone = decltype(zone_tag)::value;
    const StepWeight<scalar_t> w(w_hh);  // B = W_hh, (4H, P)
    for (int64_t s = L - 1; s >= 0; --s) {
      const int64_t t = reverse ? L - 1 - s : s, b = bs[t], o = off[t];
      if (b < from_gemm) finish(b, from_gemm);
      from_gemm = std::min(from_gemm, b);
      const scalar_t* A = acts16 ? nullptr : acts.data_ptr<scalar_t>() + o * 4 * H;
      const at::BFloat16* A16 = acts16 ? acts.data_ptr<at::BFloat16>() + o * 4 * H : nullptr;
      const scalar_t* TC = tanh_c.data_ptr<scalar_t>() + o * H;
      const scalar_t* CP = c_prev.data_ptr<scalar_t>() + o * H;
      const scalar_t* DO = dout.data_ptr<scalar_t>() + o * P;
      const scalar_t* TW = through_w.data_ptr<scalar_t>();
      scalar_t* DG = bf16 ? nullptr : dgates.data_ptr<scalar_t>() + o * 4 * H;
      at::BFloat16* DG16 = bf16 ? dgates.data_ptr<at::BFloat16>() + o * 4 * H : nullptr;
      scalar_t* DB = bias_grad ? db_parts.data_ptr<scalar_t>() : nullptr;
      scalar_t* DHT = proj ? dht.data_ptr<scalar_t>() + o * P : nullptr;
      scalar_t* DR = dr.data_ptr<scalar_t>();
      scalar_t* DH = dh.data_ptr<scalar_t>();
      scalar_t* DC = dc.data_ptr<scalar_t>();
      const scalar_t* M = masked ? mask.data_ptr<scalar_t>() : nullptr;
      const bool* ZH = zoned ? zone_h.data_ptr<bool>() + o * P : nullptr;
      const bool* ZC = zoned ? zone_c.data_ptr<bool>() + o * H : nullptr;
      const int64_t fg = from_gemm;
      // d h(t) = output's + carry + through W_hh (masked); zoneout splits it into d h~ (to the
      // projection or straight to r) and the carry to h(t-1).
      auto split_h = [&](int64_t n) {
        scalar_t* __restrict__ dh_n = DH + n * P;
        const scalar_t* __restrict__ tw = TW + n * P;
        const scalar_t* __restrict__ dout_n = DO + n * P;
        scalar_t* __restrict__ dst = proj ? DHT + n * P : DR + n * H;
        const scalar_t* __restrict__ zh = zone ? zone_row(ZH ? ZH + n * P : nullptr, zp, P, 0) : nullptr;
        if (n < fg) {
          if (M) {
            const scalar_t* __restrict__ m = M + n * P;
            _Pragma("omp simd")
            for (int64_t j = 0; j < P; ++j) dh_n[j] += tw[j] * m[j];
          } else {
            _Pragma("omp simd")
            for (int64_t j = 0; j < P; ++j) dh_n[j] += tw[j];
          }
        }
        _Pragma("omp simd")
        for (int64_t j = 0; j < P; ++j) {
          const scalar_t dhk = dout_n[j] + dh_n[j];
          if (zone) {
            const scalar_t w = zh[j];
            dst[j] = (scalar_t(1) - w) * dhk;
            dh_n[j] = w * dhk;
          } else {
            dst[j] = dhk;
            dh_n[j] = scalar_t(0);
          }
        }
      };
      auto gates = [&](int64_t n, scalar_t* __restrict__ db) {
        const scalar_t* __restrict__ an = x_row<scalar_t>(A ? A + n * 4 * H : nullptr, A16 ? A16 + n * 4 * H : nullptr,
                                                          nullptr, 4 * H);
        thread_local std::vector<scalar_t> dg_row;  // bfloat16 output: the float32 row, rounded below
        if (DG16 && static_cast<int64_t>(dg_row.size()) < 4 * H) dg_row.resize(static_cast<size_t>(4 * H));
        scalar_t* __restrict__ dg = DG16 ? dg_row.data() : DG + n * 4 * H;
        scalar_t* __restrict__ dc_n = DC + n * H;
        const scalar_t* __restrict__ dr_n = DR + n * H;
        const scalar_t* __restrict__ tc = TC + n * H;
        const scalar_t* __restrict__ cp = CP + n * H;
        const scalar_t* __restrict__ zc = zone ? zone_row(ZC ? ZC + n * H : nullptr, zp, H, 1) : nullptr;
        _Pragma("omp simd")
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t i = an[j], f = an[H + j], g = an[2 * H + j], og = an[3 * H + j];
          const scalar_t dC = dc_n[j], w = zone ? zc[j] : scalar_t(0);
          const scalar_t dck = (zone ? (scalar_t(1) - w) * dC : dC) + dr_n[j] * og * (scalar_t(1) - tc[j] * tc[j]);
          dg[j] = dck * g * i * (scalar_t(1) - i);
          dg[H + j] = dck * cp[j] * f * (scalar_t(1) - f);
          dg[2 * H + j] = dck * i * (scalar_t(1) - g * g);
          dg[3 * H + j] = dr_n[j] * tc[j] * og * (scalar_t(1) - og);
          dc_n[j] = zone ? dck * f + w * dC : dck * f;
        }
        if (db) {
          _Pragma("omp simd")
          for (int64_t j = 0; j < 4 * H; ++j) db[j] += dg[j];
        }
        if (DG16) to_bf16(dg, bits_of(DG16 + n * 4 * H), 4 * H);
      };
      // the bias gradient's partial sums go to one row of DB per block of rows
      auto db_of = [&](int64_t block) { return DB ? DB + block * 4 * H : nullptr; };
      if (!proj) {
        for_row_blocks(b, grain(4 * H), db_blocks, [&](int64_t block, int64_t n0, int64_t n1) {
          for (int64_t n = n0; n < n1; ++n) { split_h(n); gates(n, db_of(block)); }
        });
      } else {
        at::parallel_for(0, b, grain(2 * P), [&](int64_t n0, int64_t n1) {
          for (int64_t n = n0; n < n1; ++n) split_h(n);
        });
        auto dr_b = dr.narrow(0, 0, b);
        at::mm_out(dr_b, dht.narrow(0, o, b), w_hr);
        for_row_blocks(b, grain(4 * H), db_blocks, [&](int64_t block, int64_t n0, int64_t n1) {
          for (int64_t n = n0; n < n1; ++n) gates(n, db_of(block));
        });
      }
      // what reaches h(t-1) through W_hh, added (masked) at the previous step
      scalar_t* TWo = through_w.data_ptr<scalar_t>();
      step_blocks(b, 4 * H, P, 0, true,
                  [&](int64_t n0, int64_t n1) {
                    if (DG16) return w.run(n1 - n0, DG16 + n0 * 4 * H, 4 * H, TWo + n0 * P, P, false);
                    w.run(n1 - n0, DG + n0 * 4 * H, 4 * H, TWo + n0 * P, P, false);
                  },
                  [](int64_t, int64_t) {});
      from_gemm = b;
    }
    });
  });
  finish(0, from_gemm);
  return {dgates, dh, dc, dht, db_parts.sum(0)};
}

// ----------------------------------------------------------------------------------- GRU
// xw = x W_ih^T + b_ih; per step hw = (h * m) W_hh^T + b_hh;
// r = s(xw_r + hw_r), z = s(xw_z + hw_z), n = tanh(xw_n + r * hw_n), h~ = (1 - z) n + z h,
// then zoneout h' = lerp(h~, h, zh). The carry z * h uses the unmasked state.
std::vector<at::Tensor> gru_forward(const at::Tensor& xw, const at::Tensor& h0, const at::Tensor& w_hh,
                                    const at::Tensor& b_hh, const at::Tensor& mask,
                                    std::vector<int64_t> bs, bool reverse,
                                    const std::optional<at::Tensor>& zone_h_arg, double zone_p) {
  const char* op = "regdrop_scan::gru_forward";
  check_2d(op, "h0", h0);
  check_2d(op, "xw", xw);
  const int64_t N = h0.size(0), H = h0.size(1), rows = xw.size(0);
  const at::Tensor zone_h = given_or_empty(zone_h_arg);
  check_operand(op, "xw", xw, xw, {rows, 3 * H});
  check_operand(op, "h0", h0, xw, {N, H});
  check_operand(op, "w_hh", w_hh, xw, {3 * H, H}, true);
  const bool has_bias = check_optional(op, "b_hh", b_hh, xw, {3 * H});
  const bool masked = check_optional(op, "mask", mask, xw, {N, H});
  const bool zoned = check_zone(op, zone_h, nullptr, zone_p, xw, rows, H, H);
  const bool zone_on = zoned || zone_p != 0.0;
  check_batch_sizes(op, bs, rows, N);
  // r, z, n; with a bfloat16 weight saved for backward in bfloat16 (computed in float32)
  const bool bf16 = w_hh.scalar_type() == at::kBFloat16;
  auto acts = at::empty({rows, 3 * H}, xw.options().dtype(bf16 ? at::kBFloat16 : xw.scalar_type()));
  auto hwn = at::empty({rows, H}, xw.options());         // W_hn h + b_hn, needed for dr
  auto out = at::empty({rows, H}, xw.options());
  auto h_prev = at::empty({rows, H}, xw.options());      // unmasked h(t-1)
  auto hw = at::empty({bs.empty() ? 0 : bs[0], 3 * H}, xw.options());
  auto h = h0.clone();
  auto hm = masked ? h0 * mask : h0.clone();
  auto bias = has_bias ? b_hh : at::zeros({3 * H}, xw.options());
  const auto off = offsets_of(bs);
  const int64_t L = bs.size();
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "gru_forward", [&] {
    const scalar_t zp = static_cast<scalar_t>(zone_p);
    with_zone(zone_on, [&](auto zone_tag) {  // the body below, compiled once with and once without zoneout
    constexpr bool zone = decltype(zone_tag)::value;
    const StepWeight<scalar_t> w(w_hh.t());  // B = W_hh^T, (H, 3H)
    const scalar_t* BH = bias.data_ptr<scalar_t>();
    for (int64_t s = 0; s < L; ++s) {
      const int64_t t = reverse ? L - 1 - s : s, b = bs[t], o = off[t];
      const scalar_t* X = xw.data_ptr<scalar_t>() + o * 3 * H;
      scalar_t* HW = hw.data_ptr<scalar_t>();
      scalar_t* A = bf16 ? nullptr : acts.data_ptr<scalar_t>() + o * 3 * H;
      at::BFloat16* A16 = bf16 ? acts.data_ptr<at::BFloat16>() + o * 3 * H : nullptr;
      scalar_t* HWN = hwn.data_ptr<scalar_t>() + o * H;
      scalar_t* OUT = out.data_ptr<scalar_t>() + o * H;
      scalar_t* HP = h_prev.data_ptr<scalar_t>() + o * H;
      scalar_t* Hc = h.data_ptr<scalar_t>();
      scalar_t* HM = hm.data_ptr<scalar_t>();
      const scalar_t* M = masked ? mask.data_ptr<scalar_t>() : nullptr;
      const bool* ZH = zoned ? zone_h.data_ptr<bool>() + o * H : nullptr;
      // hw of these rows = (m * h(t-1)) W_hh^T (b_hh is added below), then their element-wise pass
      step_blocks(b, H, 3 * H, 3 * H, true,
                  [&](int64_t n0, int64_t n1) { w.run(n1 - n0, HM + n0 * H, H, HW + n0 * 3 * H, 3 * H, false); },
                  [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          const scalar_t* __restrict__ x = X + n * 3 * H;
          const scalar_t* __restrict__ hw_n = HW + n * 3 * H;
          thread_local std::vector<scalar_t> a_row;  // bfloat16 acts: the float32 row, rounded below
          if (A16 && static_cast<int64_t>(a_row.size()) < 3 * H) a_row.resize(static_cast<size_t>(3 * H));
          scalar_t* __restrict__ an = A16 ? a_row.data() : A + n * 3 * H;
          scalar_t* __restrict__ hwn_n = HWN + n * H;
          scalar_t* __restrict__ hc = Hc + n * H;
          scalar_t* __restrict__ hp = HP + n * H;
          scalar_t* __restrict__ hm_n = HM + n * H;
          scalar_t* __restrict__ out_n = OUT + n * H;
          const scalar_t* __restrict__ zh = zone ? zone_row(ZH ? ZH + n * H : nullptr, zp, H, 0) : nullptr;
          _Pragma("omp simd")
          for (int64_t j = 0; j < 2 * H; ++j) an[j] = sigmoid_of(x[j] + (hw_n[j] + BH[j]));
          _Pragma("omp simd")
          for (int64_t j = 0; j < H; ++j) {
            hwn_n[j] = hw_n[2 * H + j] + BH[2 * H + j];
            an[2 * H + j] = tanh_of(x[2 * H + j] + an[j] * hwn_n[j]);
          }
          _Pragma("omp simd")
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t z = an[H + j], nn = an[2 * H + j];
            const scalar_t hnew = nn + z * (hc[j] - nn);
            hp[j] = hc[j];
            hc[j] = zone ? lerp_of(hnew, hc[j], zh[j]) : hnew;
            out_n[j] = hc[j];
          }
          store_masked(hm_n, out_n, M ? M + n * H : nullptr, H);
          if (A16) to_bf16(an, bits_of(A16 + n * 3 * H), 3 * H);
        }
      });
    }
    });
  });
  return {out, h, acts, hwn, h_prev};
}

// Returns d(xw), d(hw) (per-row gradients of the two projections) and dh0; the caller forms
// dW_hh = d(hw)^T (m * h_prev) and db_hh = sum d(hw) in single GEMMs.
std::vector<at::Tensor> gru_backward(const at::Tensor& dout, const at::Tensor& dhn, const at::Tensor& acts,
                                     const at::Tensor& hwn, const at::Tensor& h_prev, const at::Tensor& w_hh,
                                     const at::Tensor& mask, std::vector<int64_t> bs, bool reverse,
                                     const std::optional<at::Tensor>& zone_h_arg, double zone_p) {
  const char* op = "regdrop_scan::gru_backward";
  check_2d(op, "dhn", dhn);
  check_2d(op, "acts", acts, w_hh.defined() && w_hh.scalar_type() == at::kBFloat16);
  const int64_t N = dhn.size(0), H = dhn.size(1), rows = acts.size(0);
  const at::Tensor zone_h = given_or_empty(zone_h_arg);
  // dhn sets the dtype of the state and of everything float; with a bfloat16 w_hh the gate
  // activations may be bfloat16 (as gru_forward saves them then)
  const at::Tensor& st = dhn;
  check_operand(op, "w_hh", w_hh, st, {3 * H, H}, true);
  check_operand(op, "acts", acts, st, {rows, 3 * H}, w_hh.scalar_type() == at::kBFloat16);
  const bool acts16 = acts.scalar_type() == at::kBFloat16;
  check_operand(op, "dout", dout, st, {rows, H});
  check_operand(op, "dhn", dhn, st, {N, H});
  check_operand(op, "hwn", hwn, st, {rows, H});
  check_operand(op, "h_prev", h_prev, st, {rows, H});
  const bool masked = check_optional(op, "mask", mask, st, {N, H});
  const bool zoned = check_zone(op, zone_h, nullptr, zone_p, st, rows, H, H);
  const bool zone_on = zoned || zone_p != 0.0;
  check_batch_sizes(op, bs, rows, N);
  auto dxw = at::empty({rows, 3 * H}, st.options());
  auto dhw = at::empty({rows, 3 * H}, st.options());
  auto dh = dhn.clone();
  auto through_w = at::empty_like(dhn);
  const auto off = offsets_of(bs);
  const int64_t L = bs.size();
  int64_t from_gemm = 0;
  // Rows [lo, hi) leave the batch for good (reverse direction of a packed batch), or the
  // loop is over: add what went through W_hh to their gradient.
  auto finish = [&](int64_t lo, int64_t hi) {
    auto tw = through_w.narrow(0, lo, hi - lo);
    if (masked) tw = tw * mask.narrow(0, lo, hi - lo);
    dh.narrow(0, lo, hi - lo).add_(tw);
  };
  AT_DISPATCH_FLOATING_TYPES(st.scalar_type(), "gru_backward", [&] {
    const scalar_t zp = static_cast<scalar_t>(zone_p);
    with_zone(zone_on, [&](auto zone_tag) {  // the body below, compiled once with and once without zoneout
    constexpr bool zone = decltype(zone_tag)::value;
    const StepWeight<scalar_t> w(w_hh);  // B = W_hh, (3H, H)
    for (int64_t s = L - 1; s >= 0; --s) {
      const int64_t t = reverse ? L - 1 - s : s, b = bs[t], o = off[t];
      if (b < from_gemm) finish(b, from_gemm);
      from_gemm = std::min(from_gemm, b);
      const scalar_t* A = acts16 ? nullptr : acts.data_ptr<scalar_t>() + o * 3 * H;
      const at::BFloat16* A16 = acts16 ? acts.data_ptr<at::BFloat16>() + o * 3 * H : nullptr;
      const scalar_t* HWN = hwn.data_ptr<scalar_t>() + o * H;
      const scalar_t* HP = h_prev.data_ptr<scalar_t>() + o * H;
      const scalar_t* DO = dout.data_ptr<scalar_t>() + o * H;
      const scalar_t* TW = through_w.data_ptr<scalar_t>();
      scalar_t* DX = dxw.data_ptr<scalar_t>() + o * 3 * H;
      scalar_t* DW = dhw.data_ptr<scalar_t>() + o * 3 * H;
      scalar_t* DH = dh.data_ptr<scalar_t>();
      const scalar_t* M = masked ? mask.data_ptr<scalar_t>() : nullptr;
      const bool* ZH = zoned ? zone_h.data_ptr<bool>() + o * H : nullptr;
      scalar_t* TWo = through_w.data_ptr<scalar_t>();
      const int64_t fg = from_gemm;
      // the element-wise pass of these rows, then what reaches their h(t-1) through W_hh (added,
      // masked, at the previous step)
      step_blocks(b, 3 * H, H, 3 * H, false,
                  [&](int64_t n0, int64_t n1) { w.run(n1 - n0, DW + n0 * 3 * H, 3 * H, TWo + n0 * H, H, false); },
                  [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          const scalar_t* __restrict__ a =
              x_row<scalar_t>(A ? A + n * 3 * H : nullptr, A16 ? A16 + n * 3 * H : nullptr, nullptr, 3 * H);
          scalar_t* __restrict__ dx = DX + n * 3 * H;
          scalar_t* __restrict__ dw = DW + n * 3 * H;
          scalar_t* __restrict__ dh_n = DH + n * H;
          const scalar_t* __restrict__ tw = TW + n * H;
          const scalar_t* __restrict__ hwn = HWN + n * H;
          const scalar_t* __restrict__ hp = HP + n * H;
          const scalar_t* __restrict__ dout_n = DO + n * H;
          const scalar_t* __restrict__ zh = zone ? zone_row(ZH ? ZH + n * H : nullptr, zp, H, 0) : nullptr;
          if (n < fg) {  // add what reached h(t-1) through W_hh (masked) to the carried part
            if (M) {
              const scalar_t* __restrict__ m = M + n * H;
              _Pragma("omp simd")
              for (int64_t j = 0; j < H; ++j) dh_n[j] += tw[j] * m[j];
            } else {
              _Pragma("omp simd")
              for (int64_t j = 0; j < H; ++j) dh_n[j] += tw[j];
            }
          }
          _Pragma("omp simd")
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t r = a[j], z = a[H + j], nn = a[2 * H + j];
            const scalar_t dH = dout_n[j] + dh_n[j], w = zone ? zh[j] : scalar_t(0);
            const scalar_t dhk = zone ? (scalar_t(1) - w) * dH : dH;  // the part through h~
            const scalar_t dan = dhk * (scalar_t(1) - z) * (scalar_t(1) - nn * nn);
            const scalar_t daz = dhk * (hp[j] - nn) * z * (scalar_t(1) - z);
            const scalar_t dar = dan * hwn[j] * r * (scalar_t(1) - r);
            dx[j] = dar; dx[H + j] = daz; dx[2 * H + j] = dan;
            dw[j] = dar; dw[H + j] = daz; dw[2 * H + j] = dan * r;
            dh_n[j] = zone ? dhk * z + w * dH : dhk * z;
          }
        }
      });
      from_gemm = b;
    }
    });
  });
  finish(0, from_gemm);
  return {dxw, dhw, dh};
}

// ------------------------------------------------------------------------- zoneout masks
// Counter-based draws, so that any element can be drawn on its own, on any thread and in any
// order: element e of a (rows, width) mask (row-major) is u < floor(p 2^32 + 1/2), where u is
// the low (e even) or high (e odd) 32-bit half of splitmix64 (Steele, Lea and Flood 2014) at
// counter e / 2: z = seed + (k + 1) 0x9E3779B97F4A7C15, then its two xor-shift-multiply rounds
// and a final xor-shift, all modulo 2^64. regdrop/functional/rnn.py (_hash_mask) computes the
// same bits with torch ops, for the reference loops and the GPU; a test checks they agree.
inline uint64_t splitmix64(uint64_t seed, uint64_t k) {
  uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

at::Tensor zoneout_mask(const at::Tensor& seed, int64_t rows, int64_t width, double p) {
  const char* op = "regdrop_scan::zoneout_mask";
  TORCH_CHECK(seed.defined() && seed.numel() == 1 && seed.scalar_type() == at::kLong && seed.device().is_cpu(), op,
              ": seed must be a one-element int64 CPU tensor, got ",
              seed.defined() ? seed.toString() : std::string("an undefined tensor"));
  TORCH_CHECK(rows >= 0 && width >= 0, op, ": rows and width must be >= 0, got ", rows, " and ", width);
  TORCH_CHECK(std::isfinite(p) && p >= 0.0 && p <= 1.0, op, ": p must be in [0, 1], got ", p);
  const uint64_t s = static_cast<uint64_t>(seed.item<int64_t>());
  const uint64_t threshold = static_cast<uint64_t>(std::floor(p * 4294967296.0 + 0.5));
  auto out = at::empty({rows, width}, seed.options().dtype(at::kBool));
  bool* o = out.data_ptr<bool>();
  const int64_t n = rows * width, pairs = n / 2;
  at::parallel_for(0, pairs, 16384, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const uint64_t z = splitmix64(s, static_cast<uint64_t>(k));
      o[2 * k] = (z & 0xFFFFFFFFULL) < threshold;
      o[2 * k + 1] = (z >> 32) < threshold;
    }
  });
  if (n % 2) o[n - 1] = (splitmix64(s, static_cast<uint64_t>(pairs)) & 0xFFFFFFFFULL) < threshold;
  return out;
}

}  // namespace

// Which engine gemm_rows runs here (for the benchmark's header): cpublas::brgemm takes oneDNN's
// micro-kernel where oneDNN is enabled and the processor has AVX2 (torch's own test), else its
// cpublas::gemm fallback.
std::string step_gemm_engine() {
  const bool ukernel = at::hasMKLDNN() && at::globalContext().userEnabledMkldnn() && __builtin_cpu_supports("avx2");
  const bool avx512 = __builtin_cpu_supports("avx512f");
  return std::string(ukernel ? "oneDNN brgemm micro-kernel" : "cpublas::gemm (no oneDNN micro-kernel here)") +
         (ukernel && !avx512 ? " up to 2^17 weight elements, at::mm (MKL) above" : "") +
         " (float32), " + (bf16_microkernel() ? "oneDNN brgemm micro-kernel" : "cpublas::gemm") +
         " (bfloat16 weights under autocast), at::mm (float64)";
}

// Schemas here, CPU kernels below: torch.compile traces through the ops with the fake
// (shape-only) kernels registered from Python (regdrop/functional/rnn.py, _register_fakes).
// An absent optional tensor may also be passed as an empty tensor.
TORCH_LIBRARY(regdrop_scan, m) {
  m.set_python_module("regdrop.functional.rnn");
  m.def("step_gemm_engine() -> str", &step_gemm_engine);
  m.def("zoneout_mask(Tensor seed, int rows, int width, float p) -> Tensor");
  m.def("lstm_forward(Tensor xw, Tensor h0, Tensor c0, Tensor w_hh, Tensor mask, int[] bs, bool reverse, "
        "Tensor? w_hr=None, Tensor? zone_h=None, Tensor? zone_c=None, float zone_p=0.0, Tensor? bias=None) -> Tensor[]");
  m.def("lstm_backward(Tensor dout, Tensor dhn, Tensor dcn, Tensor acts, Tensor tanh_c, Tensor c_prev, "
        "Tensor w_hh, Tensor mask, int[] bs, bool reverse, Tensor? w_hr=None, Tensor? zone_h=None, "
        "Tensor? zone_c=None, float zone_p=0.0, bool bias_grad=False) -> Tensor[]");
  m.def("gru_forward(Tensor xw, Tensor h0, Tensor w_hh, Tensor b_hh, Tensor mask, int[] bs, bool reverse, "
        "Tensor? zone_h=None, float zone_p=0.0) -> Tensor[]");
  m.def("gru_backward(Tensor dout, Tensor dhn, Tensor acts, Tensor hwn, Tensor h_prev, Tensor w_hh, Tensor mask, "
        "int[] bs, bool reverse, Tensor? zone_h=None, float zone_p=0.0) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(regdrop_scan, CPU, m) {
  m.impl("zoneout_mask", &zoneout_mask);
  m.impl("lstm_forward", &lstm_forward);
  m.impl("lstm_backward", &lstm_backward);
  m.impl("gru_forward", &gru_forward);
  m.impl("gru_backward", &gru_backward);
}
