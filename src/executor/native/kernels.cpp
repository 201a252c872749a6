// The native path's kernels: a blocked single-precision GEMM for linear layers (AVX-512 or
// AVX2+FMA when the CPU has it, chosen once at run time; plain loops otherwise) and the
// element-wise and row-wise operations. Nothing here allocates.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "executor/native/net.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EMBER_NATIVE_X86 1
#endif

namespace ember::detail {

namespace {

// Without FMA, sums are kept in double (64 columns at a time, on the stack), so that the
// answers stay as close to LibTorch's as the FMA kernels' are.
void linear_generic(const float* x, std::int64_t rows, std::int64_t in, const float* wt, const float* bias,
                    std::int64_t out, float* y) {
  constexpr std::int64_t kChunk = 64;
  double acc[kChunk];
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * in;
    for (std::int64_t o0 = 0; o0 < out; o0 += kChunk) {
      const std::int64_t n = std::min(kChunk, out - o0);
      for (std::int64_t o = 0; o < n; ++o) acc[o] = bias != nullptr ? bias[o0 + o] : 0.0;
      for (std::int64_t i = 0; i < in; ++i) {
        const double xv = xr[i];
        const float* w = wt + i * out + o0;
        for (std::int64_t o = 0; o < n; ++o) acc[o] += xv * w[o];
      }
      for (std::int64_t o = 0; o < n; ++o) y[r * out + o0 + o] = static_cast<float>(acc[o]);
    }
  }
}

#ifdef EMBER_NATIVE_X86
// Columns [o0, o0 + 16) of `rows_in_block` (1 to 4) rows: 8 accumulators of 8 floats in
// registers, one broadcast of x and two loads of W^T per input.
template <int R>
__attribute__((target("avx2,fma"))) void block16(const float* x, std::int64_t in, const float* wt, const float* bias,
                                                 std::int64_t out, std::int64_t o0, float* y) {
  __m256 acc[R][2];
  const __m256 b0 = bias != nullptr ? _mm256_loadu_ps(bias + o0) : _mm256_setzero_ps();
  const __m256 b1 = bias != nullptr ? _mm256_loadu_ps(bias + o0 + 8) : _mm256_setzero_ps();
  for (int r = 0; r < R; ++r) {
    acc[r][0] = b0;
    acc[r][1] = b1;
  }
  for (std::int64_t i = 0; i < in; ++i) {
    const __m256 w0 = _mm256_loadu_ps(wt + i * out + o0);
    const __m256 w1 = _mm256_loadu_ps(wt + i * out + o0 + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(x + r * in + i);
      acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(y + r * out + o0, acc[r][0]);
    _mm256_storeu_ps(y + r * out + o0 + 8, acc[r][1]);
  }
}

// Columns [o0, out) (fewer than 16) of one row, and a whole row when out is 1: the
// dot product of x with W^T's column, 8 inputs at a time.
__attribute__((target("avx2,fma"))) void tail_row(const float* xr, std::int64_t in, const float* wt, const float* bias,
                                                  std::int64_t out, std::int64_t o0, float* yr) {
  if (out == 1) {
    __m256 acc = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 8 <= in; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(xr + i), _mm256_loadu_ps(wt + i), acc);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; i < in; ++i) sum = std::fma(xr[i], wt[i], sum);
    yr[0] = sum + (bias != nullptr ? bias[0] : 0.0f);
    return;
  }
  for (std::int64_t o = o0; o < out; ++o) {
    float sum = bias != nullptr ? bias[o] : 0.0f;
    for (std::int64_t i = 0; i < in; ++i) sum = std::fma(xr[i], wt[i * out + o], sum);
    yr[o] = sum;
  }
}

// Columns [from, out): blocks of 16, then the rest column by column.
__attribute__((target("avx2,fma"))) void linear_avx2(const float* x, std::int64_t rows, std::int64_t in,
                                                     const float* wt, const float* bias, std::int64_t out, float* y,
                                                     std::int64_t from = 0) {
  const std::int64_t full = from + (out - from) / 16 * 16;
  std::int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    for (std::int64_t o0 = from; o0 < full; o0 += 16) block16<4>(x + r * in, in, wt, bias, out, o0, y + r * out);
  }
  for (; r < rows; ++r) {
    for (std::int64_t o0 = from; o0 < full; o0 += 16) block16<1>(x + r * in, in, wt, bias, out, o0, y + r * out);
  }
  if (full < out) {
    for (r = 0; r < rows; ++r) tail_row(x + r * in, in, wt, bias, out, full, y + r * out);
  }
}

// The same with 512-bit registers: columns [o0, o0 + 32) of R rows, 2R accumulators.
// Each output is the same chain of FMAs over the inputs as in block16, so the answers
// are identical bit for bit whichever kernel a CPU runs.
template <int R>
__attribute__((target("avx512f"))) void block32(const float* x, std::int64_t in, const float* wt, const float* bias,
                                               std::int64_t out, std::int64_t o0, float* y) {
  __m512 acc[R][2];
  const __m512 b0 = bias != nullptr ? _mm512_loadu_ps(bias + o0) : _mm512_setzero_ps();
  const __m512 b1 = bias != nullptr ? _mm512_loadu_ps(bias + o0 + 16) : _mm512_setzero_ps();
  for (int r = 0; r < R; ++r) {
    acc[r][0] = b0;
    acc[r][1] = b1;
  }
  for (std::int64_t i = 0; i < in; ++i) {
    const __m512 w0 = _mm512_loadu_ps(wt + i * out + o0);
    const __m512 w1 = _mm512_loadu_ps(wt + i * out + o0 + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 xv = _mm512_set1_ps(x[r * in + i]);
      acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(y + r * out + o0, acc[r][0]);
    _mm512_storeu_ps(y + r * out + o0 + 16, acc[r][1]);
  }
}

__attribute__((target("avx512f,avx2,fma"))) void linear_avx512(const float* x, std::int64_t rows, std::int64_t in,
                                                               const float* wt, const float* bias, std::int64_t out,
                                                               float* y) {
  const std::int64_t full = out / 32 * 32;
  std::int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    for (std::int64_t o0 = 0; o0 < full; o0 += 32) block32<8>(x + r * in, in, wt, bias, out, o0, y + r * out);
  }
  for (; r + 4 <= rows; r += 4) {
    for (std::int64_t o0 = 0; o0 < full; o0 += 32) block32<4>(x + r * in, in, wt, bias, out, o0, y + r * out);
  }
  for (; r < rows; ++r) {
    for (std::int64_t o0 = 0; o0 < full; o0 += 32) block32<1>(x + r * in, in, wt, bias, out, o0, y + r * out);
  }
  if (full < out) linear_avx2(x, rows, in, wt, bias, out, y, full);
}

// The widest kernel the CPU runs, chosen once; EMBER_NATIVE_ISA=generic|avx2 asks for a
// narrower one (the tests run every kernel on one machine that way).
enum Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };
Isa isa() {
  static const Isa chosen = [] {
    Isa best = kGeneric;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      best = __builtin_cpu_supports("avx512f") ? kAvx512 : kAvx2;
    }
    const char* asked = std::getenv("EMBER_NATIVE_ISA");
    if (asked != nullptr && std::strcmp(asked, "generic") == 0) return kGeneric;
    if (asked != nullptr && std::strcmp(asked, "avx2") == 0) return std::min(best, kAvx2);
    return best;
  }();
  return chosen;
}
#endif

float gelu(float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); }
float gelu_tanh(float v) {
  return 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
}

}  // namespace

void linear_forward(const float* x, std::int64_t rows, std::int64_t in, const float* wt, const float* bias,
                    std::int64_t out, float* y) {
#ifdef EMBER_NATIVE_X86
  switch (isa()) {
    case kAvx512:
      linear_avx512(x, rows, in, wt, bias, out, y);
      return;
    case kAvx2:
      linear_avx2(x, rows, in, wt, bias, out, y);
      return;
    case kGeneric:
      break;
  }
#endif
  linear_generic(x, rows, in, wt, bias, out, y);
}

void run_net(const NetSpec& spec, const float* x, std::int64_t rows, float* y, float* a, float* b,
             float* const* saved) {
  const float* cur = x;
  std::int64_t width = spec.inputs;
  // The next layer writes into whichever scratch buffer does not hold `cur`; the last
  // one writes into y.
  const auto target = [&](std::size_t i) { return i + 1 == spec.layers.size() ? y : (cur == a ? b : a); };
  for (std::size_t li = 0; li < spec.layers.size(); ++li) {
    const NetLayer& l = spec.layers[li];
    float* dst = target(li);
    const std::int64_t n = rows * width;
    switch (l.op) {
      case NetOp::kLinear:
        linear_forward(cur, rows, l.in, l.weight.data(), l.bias.empty() ? nullptr : l.bias.data(), l.out, dst);
        break;
      case NetOp::kRelu:
        for (std::int64_t k = 0; k < n; ++k) dst[k] = cur[k] < 0.0f ? 0.0f : cur[k];  // NaN stays NaN, as in torch
        break;
      case NetOp::kLeakyRelu:
        for (std::int64_t k = 0; k < n; ++k) dst[k] = cur[k] < 0.0f ? cur[k] * l.alpha : cur[k];
        break;
      case NetOp::kGelu:
        for (std::int64_t k = 0; k < n; ++k) dst[k] = gelu(cur[k]);
        break;
      case NetOp::kGeluTanh:
        for (std::int64_t k = 0; k < n; ++k) dst[k] = gelu_tanh(cur[k]);
        break;
      case NetOp::kTanh:
        for (std::int64_t k = 0; k < n; ++k) dst[k] = std::tanh(cur[k]);
        break;
      case NetOp::kSigmoid:
        for (std::int64_t k = 0; k < n; ++k) dst[k] = 1.0f / (1.0f + std::exp(-cur[k]));
        break;
      case NetOp::kSoftmax:
        for (std::int64_t r = 0; r < rows; ++r) {
          const float* in = cur + r * width;
          float* o = dst + r * width;
          float top = in[0];
          for (std::int64_t c = 1; c < width; ++c) top = std::max(top, in[c]);
          float sum = 0.0f;
          for (std::int64_t c = 0; c < width; ++c) sum += (o[c] = std::exp(in[c] - top));
          const float inv = 1.0f / sum;
          for (std::int64_t c = 0; c < width; ++c) o[c] *= inv;
        }
        break;
      case NetOp::kLayerNorm:
        for (std::int64_t r = 0; r < rows; ++r) {
          const float* in = cur + r * width;
          float* o = dst + r * width;
          double mean = 0, var = 0;
          for (std::int64_t c = 0; c < width; ++c) mean += in[c];
          mean /= static_cast<double>(width);
          for (std::int64_t c = 0; c < width; ++c) var += (in[c] - mean) * (in[c] - mean);
          var /= static_cast<double>(width);
          const auto inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(l.alpha)));
          const auto m = static_cast<float>(mean);
          for (std::int64_t c = 0; c < width; ++c) {
            float v = (in[c] - m) * inv;
            if (!l.weight.empty()) v *= l.weight[static_cast<std::size_t>(c)];
            if (!l.bias.empty()) v += l.bias[static_cast<std::size_t>(c)];
            o[c] = v;
          }
        }
        break;
      case NetOp::kAffine:
        for (std::int64_t r = 0; r < rows; ++r) {
          for (std::int64_t c = 0; c < width; ++c) {
            const auto k = static_cast<std::size_t>(c);
            dst[r * width + c] = cur[r * width + c] * l.weight[k] + l.bias[k];
          }
        }
        break;
      case NetOp::kSave:
        std::memcpy(saved[l.slot], cur, static_cast<std::size_t>(n) * sizeof(float));
        std::memcpy(dst, cur, static_cast<std::size_t>(n) * sizeof(float));
        break;
      case NetOp::kAddSaved: {
        const float* s = saved[l.slot];
        for (std::int64_t k = 0; k < n; ++k) dst[k] = cur[k] + s[k];
        break;
      }
    }
    cur = dst;
    width = l.out;
  }
  if (spec.layers.empty()) std::memcpy(y, x, static_cast<std::size_t>(rows * spec.inputs) * sizeof(float));
}

}  // namespace ember::detail
