#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The uniform quantization grid shared by every method: fitting (scale, zero) to a group of
// weights (min/max, the GPTQ "mse" shrink search or OWQ's joint range × zero-point search),
// encoding and decoding codes.
// One routine, used by RTN, GPTQ, OWQ, SpQR, AdaDim and AWQ.
//   asymmetric: scale = (max - min) / maxq, zero = round(-min / scale)
//   symmetric:  scale = 2 max|w| / maxq,    zero = (maxq + 1) / 2
//   q = clamp(round(w / scale) + zero, 0, maxq),  w_hat = scale * (q - zero)
// Rounding is round-half-to-even (std::nearbyint), as PyTorch does in the references.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "lowbit/core/grid_types.hpp"
#include "lowbit/core/matrix_view.hpp"
#include "lowbit/policy/scale_search.hpp"

namespace lowbit::inline LOWBIT_ABI {


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

// |d|^norm, the searches' per-element error: in float (powf is several times cheaper than
// pow and the searches only rank candidates); callers sum it in double.
inline double error_power(float d, float norm) {
  return norm == 2.0f ? static_cast<double>(d * d) : static_cast<double>(std::pow(d, norm));
}

// GPTQ/OWQ "mse" search: p = 1 - i/grid for i < max_shrink*grid; error sum |w - w_hat|^norm.
inline grid_params fit_mse(weight_run w, const grid_spec& spec, float norm, int grid, float max_shrink) {
  const auto [lo, hi] = range_with_zero(w);
  const int maxq = spec.maxq();
  grid_params best = grid_for_range(lo, hi, spec);
  double best_err = std::numeric_limits<double>::infinity();
  const int steps = static_cast<int>(max_shrink * static_cast<float>(grid));
  for (int i = 0; i < steps; ++i) {
    const float p = 1.0f - static_cast<float>(i) / static_cast<float>(grid);
    const grid_params cand = grid_for_range(p * lo, p * hi, spec);
    double err = 0.0;
    for (index k = 0; k < w.size; ++k) err += error_power(std::abs(fake_quantize(w[k], cand, maxq) - w[k]), norm);
    if (err < best_err) {
      best_err = err;
      best = cand;
    }
  }
  return best;
}

// OWQ's joint range × zero-point search (policy/scale_search.hpp, mse_range_zero): for
// i = 1..grid the step s = (i / grid) · (hi − lo) / maxq and every integer zero z in
// [0, maxq]. Exact over that candidate set; two things keep it affordable (grid · (maxq + 1)
// candidates, 1600 at 4 bits, each a pass over the group):
//   - the min/max grid is scored first, and a candidate stops as soon as its partial error
//     passes the best so far (errors only add up);
//   - the weights are visited farthest-from-the-middle first, so a bad candidate's clamped
//     extremes are met, and the candidate dropped, after a few elements.
inline grid_params fit_range_zero(weight_run w, const grid_spec& spec, float norm, int grid) {
  if (spec.symmetric) return fit_mse(w, spec, norm, grid, 1.0f);  // no zero point to search
  const auto [lo, hi] = range_with_zero(w);
  grid_params best = grid_for_range(lo, hi, spec);
  if (lo == hi) return best;  // all zero
  const int maxq = spec.maxq();
  const float mid = 0.5f * (lo + hi);
  std::vector<float> v(static_cast<std::size_t>(w.size));
  for (index i = 0; i < w.size; ++i) v[static_cast<std::size_t>(i)] = w[i];
  std::sort(v.begin(), v.end(), [mid](float a, float b) { return std::abs(a - mid) > std::abs(b - mid); });
  // Error of (scale, zero) on the codes xr = round(w / scale), abandoned past `limit`.
  std::vector<float> xr(v.size());
  auto error = [&](float scale, float zero, double limit) {
    double err = 0.0;
    for (std::size_t k = 0; k < v.size(); ++k) {
      const float q = std::clamp(xr[k] + zero, 0.0f, static_cast<float>(maxq));
      err += error_power(std::abs(v[k] - scale * (q - zero)), norm);
      if (err >= limit) return err;
    }
    return err;
  };
  for (std::size_t k = 0; k < v.size(); ++k) xr[k] = std::nearbyint(v[k] / best.scale);
  double best_err = error(best.scale, best.zero, std::numeric_limits<double>::infinity());
  for (int i = 1; i <= grid; ++i) {
    const float step = (hi - lo) * static_cast<float>(i) / static_cast<float>(grid) / static_cast<float>(maxq);
    const float scale = spec.round_stat(std::max(step, 1e-8f));
    if (!(scale > 0.0f) || !std::isfinite(scale)) continue;  // below the stats storage's resolution
    for (std::size_t k = 0; k < v.size(); ++k) xr[k] = std::nearbyint(v[k] / scale);
    for (int z = 0; z <= maxq; ++z) {
      const float zero = spec.round_stat(static_cast<float>(z));
      const double err = error(scale, zero, best_err);
      if (err < best_err) {
        best_err = err;
        best = {scale, zero};
      }
    }
  }
  return best;
}

// Fits a group with the ScaleSearch policy S: the policy's own fit() (minmax, mse_clip<...>,
// mse_range_zero<...>, or a user's search: policy/scale_search.hpp).
template <ScaleSearch S>
grid_params fit_group(weight_run w, const grid_spec& spec) {
  return S::fit(w, spec);
}

// The built-in searches' behaviour (declared with the tags, defined here with the grid).
inline grid_params minmax::fit(weight_run w, const grid_spec& spec) { return fit_minmax(w, spec); }
template <int N, int G, int S>
grid_params mse_clip<N, G, S>::fit(weight_run w, const grid_spec& spec) {
  return fit_mse(w, spec, norm, grid, max_shrink);
}
template <int N, int G>
grid_params mse_range_zero<N, G>::fit(weight_run w, const grid_spec& spec) {
  return fit_range_zero(w, spec, norm, grid);
}

}  // namespace lowbit
