#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The value types of the uniform quantization grid, below every layer that names them: a
// ScaleSearch policy's fit() (policy/scale_search.hpp) takes a weight_run and a grid_spec and
// returns grid_params; method/grid.hpp does the fitting, format/ stores the results.
#include <algorithm>
#include <cmath>
#include <cstdint>

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

}  // namespace lowbit
