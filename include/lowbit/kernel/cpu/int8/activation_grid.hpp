#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// cluster_activation_grid: static per-cluster affine quantization of an activation vector
// whose channels were reordered so that each cluster is a contiguous range (RPTQ, Yuan et
// al. 2023, Sec. 3.2-3.3). Cluster c covers channels [offsets[c], offsets[c+1]) and has one
// (scale, zero) fitted offline to the calibration range of its channels.
//
// Grid: unsigned codes q in [0, 2^b - 1], q = clamp(round(x / scale) + zero), x_hat =
// scale * (q - zero), with
//     scale = (hi - lo) / (2^b - 1),   zero = round(-lo / scale).
// Unlike the weight grid (core/grid_types.hpp) the range is NOT widened to contain 0: a cluster
// of LayerNorm outputs living in [2, 5] keeps all 2^b levels inside [2, 5] (the zero is then
// simply an integer outside [0, 2^b - 1]). RPTQ's code uses scale = range / 2^b on a signed
// grid, which clips the top of the range by one step; we use 2^b - 1 so both ends are codes.
// encode/decode are grid.hpp's.
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/grid_types.hpp"

namespace lowbit::inline LOWBIT_ABI {

inline bool is_supported_activation_bits(int b) { return b >= 2 && b <= 8; }

// The per-cluster grid for a calibration range [lo, hi].
inline grid_params fit_activation_range(float lo, float hi, int bits) {
  detail::require(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "activation range [", lo, ", ", hi,
                  "] must be finite with min <= max");
  detail::require(is_supported_activation_bits(bits), "activation bits = ", bits, "; expected 2..8");
  const float mag = std::max(std::abs(lo), std::abs(hi));
  grid_spec spec;
  spec.bits = bits;
  // A (near-)constant cluster: its offset would need a huge zero; fall back to the
  // zero-containing weight grid, which represents the constant to within half a step.
  if (!(hi - lo > 1e-4f * mag)) return grid_for_range(lo, hi, spec);
  grid_params p;
  p.scale = (hi - lo) / static_cast<float>(spec.maxq());
  p.zero = std::nearbyint(-lo / p.scale);
  return p;
}

struct cluster_activation_grid {
  int bits = 8;
  std::vector<index> offsets{0};   // clusters + 1 entries, offsets[0] = 0, strictly increasing
  std::vector<grid_params> params; // one per cluster

  index channels() const { return offsets.back(); }
  index clusters() const { return static_cast<index>(params.size()); }
  int max_code() const { return (1 << bits) - 1; }

  void validate() const {
    detail::require(is_supported_activation_bits(bits), "cluster_activation_grid: bits = ", bits, "; expected 2..8");
    detail::require(offsets.size() >= 2 && offsets.front() == 0,
                    "cluster_activation_grid: offsets must start at 0 and name at least one cluster");
    detail::require(params.size() + 1 == offsets.size(), "cluster_activation_grid: ", params.size(),
                    " cluster grids for ", offsets.size() - 1, " clusters");
    for (std::size_t c = 0; c + 1 < offsets.size(); ++c)
      detail::require(offsets[c] < offsets[c + 1], "cluster_activation_grid: cluster ", c, " is empty");
    for (const grid_params& p : params)
      detail::require(p.scale > 0.0f && std::isfinite(p.scale) && std::isfinite(p.zero) &&
                          p.zero == std::nearbyint(p.zero) && std::abs(p.zero) <= 4194304.0f,
                      "cluster_activation_grid: every cluster needs a positive finite scale and an integral zero "
                      "with |zero| <= 2^22 (the integer path's exactness bound)");
  }

  // Builds the grid from per-channel calibration ranges given in the (reordered) channel
  // order: a cluster's range is the min of its channels' minima and the max of their maxima.
  static cluster_activation_grid from_ranges(std::span<const float> lo, std::span<const float> hi,
                                             std::vector<index> offsets, int bits) {
    cluster_activation_grid g;
    g.bits = bits;
    g.offsets = std::move(offsets);
    detail::require(lo.size() == hi.size(), "cluster_activation_grid: ", lo.size(), " minima but ", hi.size(), " maxima");
    detail::require(!g.offsets.empty() && g.offsets.back() == static_cast<index>(lo.size()),
                    "cluster_activation_grid: the clusters cover ", g.offsets.empty() ? 0 : g.offsets.back(),
                    " channels, the ranges ", lo.size());
    for (std::size_t c = 0; c + 1 < g.offsets.size(); ++c) {
      detail::require(g.offsets[c] < g.offsets[c + 1], "cluster_activation_grid: cluster ", c, " is empty");
      float l = lo[static_cast<std::size_t>(g.offsets[c])], h = hi[static_cast<std::size_t>(g.offsets[c])];
      for (index j = g.offsets[c]; j < g.offsets[c + 1]; ++j) {
        l = std::min(l, lo[static_cast<std::size_t>(j)]);
        h = std::max(h, hi[static_cast<std::size_t>(j)]);
      }
      g.params.push_back(fit_activation_range(l, h, bits));
    }
    g.validate();
    return g;
  }

  // x_hat: what the integer path computes with (for references and error measurements).
  std::vector<float> fake_quantize(std::span<const float> x) const {
    detail::require(static_cast<index>(x.size()) == channels(), "cluster_activation_grid: x has ", x.size(),
                    " channels, the grid ", channels());
    std::vector<float> out(x.size());
    for (index c = 0; c < clusters(); ++c)
      for (index j = offsets[static_cast<std::size_t>(c)]; j < offsets[static_cast<std::size_t>(c) + 1]; ++j) {
        const float v = x[static_cast<std::size_t>(j)];
        detail::require(std::isfinite(v), "activation x[", j, "] = ", v, " is not finite");
        out[static_cast<std::size_t>(j)] = fake_quantize_value(v, params[static_cast<std::size_t>(c)], max_code());
      }
    return out;
  }

  static float fake_quantize_value(float v, grid_params p, int maxq) { return decode(encode(v, p, maxq), p); }
};

}  // namespace lowbit
