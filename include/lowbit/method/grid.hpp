#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The range searches of the uniform quantization grid (the grid itself — value types,
// encode/decode, the min/max fit — is core/grid_types.hpp): GPTQ's "mse" shrink search and
// OWQ's joint range × zero-point search, and fit_group, which every method (RTN, GPTQ, OWQ,
// SpQR, AdaDim, AWQ) calls with its ScaleSearch policy.
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

// The searches' behaviour (declared with their tags in policy/scale_search.hpp).
template <int N, int G, int S>
grid_params mse_clip<N, G, S>::fit(weight_run w, const grid_spec& spec) {
  return fit_mse(w, spec, norm, grid, max_shrink);
}
template <int N, int G>
grid_params mse_range_zero<N, G>::fit(weight_run w, const grid_spec& spec) {
  return fit_range_zero(w, spec, norm, grid);
}

}  // namespace lowbit
