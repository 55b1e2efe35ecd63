#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The uniform quantization grid, below every layer that uses it: its value types (a
// ScaleSearch policy's fit() takes a weight_run and a grid_spec and returns grid_params),
// encode/decode, and the min/max grid of a range (grid_for_range, fit_minmax). The costlier
// range searches (mse shrink, joint range x zero point) are methods: method/grid.hpp.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include <limits>
#include <utility>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_view.hpp"

namespace lowbit::inline LOWBIT_ABI {

// One group's grid: w_hat = scale * (q - zero).
struct grid_params {
  float scale = 1.0f;
  float zero = 0.0f;  // integral for the standard grids; SpQR's second level may store any value
};

// How stats are rounded by their storage (fp16 tables round the scale): the codes are
// computed against the stored scale so the dequantized weights are exactly what kernels see.
using stat_rounding = float (*)(float);
inline float keep_float(float v) { return v; }

// What a group is fitted for: its bit width, symmetry and the storage's rounding.
struct grid_spec {
  int bits = 4;
  bool symmetric = false;
  stat_rounding round_stat = keep_float;
  bool round_zero = true;  // SpQR's recipe keeps zeros unrounded ("round_zero=False")
  int maxq() const { return (1 << bits) - 1; }
};

// The grid's arithmetic: q = clamp(round(w / scale) + zero, 0, maxq), w_hat = scale (q - zero).
// Rounding is round-half-to-even (std::nearbyint), as PyTorch does in the references.
inline std::uint8_t encode(float w, grid_params p, int maxq) {
  const float q = std::nearbyint(w / p.scale) + p.zero;
  return static_cast<std::uint8_t>(std::clamp(q, 0.0f, static_cast<float>(maxq)));
}
inline float decode(int q, grid_params p) { return p.scale * (static_cast<float>(q) - p.zero); }
inline float fake_quantize(float w, grid_params p, int maxq) { return decode(encode(w, p, maxq), p); }

// A strided run of weights: a group inside a row (stride 1 in a row-major matrix) or a column.
struct weight_run {
  const float* data;
  index size;
  index stride;
  float operator[](index i) const { return data[i * stride]; }
};

// Grid for the range [lo, hi] (lo <= 0 <= hi after widening), as GPTQ's Quantizer does.
inline grid_params grid_for_range(float lo, float hi, const grid_spec& spec) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  if (spec.symmetric) {
    hi = std::max(-lo, hi);
    if (lo < 0) lo = -hi;
  }
  if (lo == 0.0f && hi == 0.0f) {  // an all-zero group: any scale decodes it exactly
    lo = -1.0f;
    hi = 1.0f;
  }
  const int maxq = spec.maxq();
  grid_params p;
  float step = (hi - lo) / static_cast<float>(maxq);
  if (!std::isfinite(step)) step = hi / static_cast<float>(maxq) - lo / static_cast<float>(maxq);  // hi - lo > FLT_MAX
  p.scale = spec.round_stat(step);
  // A step the storage cannot hold (fp16 stops at 65504) would dequantize to Inf/NaN: refuse it.
  if (!std::isfinite(p.scale))
    detail::fail("quantization grid: the weight range [", lo, ", ", hi, "] needs a step of ", step,
                 ", more than the stats storage holds (fp16 stats stop at 65504); use fp32_stats");
  if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) {
    // fp16 storage underflow (range < 6e-8 · maxq) or overflow: fall back to the smallest/largest
    // representable positive scale instead of dividing by zero.
    p.scale = spec.round_stat(p.scale > 0.0f ? std::numeric_limits<float>::max() : 6.0e-8f);
    if (!(p.scale > 0.0f)) p.scale = 6.0e-8f;
  }
  if (spec.symmetric) {
    p.zero = static_cast<float>(maxq + 1) / 2.0f;
  } else {
    const float z = -lo / p.scale;
    p.zero = spec.round_zero ? std::nearbyint(z) : z;
  }
  p.zero = spec.round_stat(p.zero);
  return p;
}

// [min(w, 0), max(w, 0)]: the range every grid of a group covers.
inline std::pair<float, float> range_with_zero(weight_run w) {
  float lo = 0.0f, hi = 0.0f;
  for (index i = 0; i < w.size; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  return {lo, hi};
}

inline grid_params fit_minmax(weight_run w, const grid_spec& spec) {
  const auto [lo, hi] = range_with_zero(w);
  return grid_for_range(lo, hi, spec);
}

}  // namespace lowbit
