#pragma once
// stats_table<quantized_stats<B, R>>: SpQR's two-level statistics (Dettmers et al., "SpQR: A
// Sparse-Quantized Representation for Near-Lossless LLM Weight Compression", 2023, §4.1;
// code Vahe1994/SpQR quant_groups.py).
//
// The first-level (scale, zero) of every weight group is itself quantized: the stats of R
// consecutive stat rows of one stat column (per-OC: R consecutive output rows of the same
// β₁-column group, a β₁ x R tile of weights) form a second-level group; its R scales go
// through a B-bit asymmetric min-max grid, and so do its R zeros, each grid with its own fp16
// scale and zero. What the table returns (get / decode) is the DECODED first-level pair: the
// value the weights were quantized against (SpQR quantizes the weights after this round trip,
// so GPTQ compensates the stats' error too).
//
// The second-level grid is SpQR's Quantizer with round_zero = False: the range is the plain
// [min, max] (0 is NOT forced into it) and the zero is not rounded; lowbit rounds the grid's
// scale and zero to fp16 (their storage) BEFORE computing the codes, so the codes fit what is
// stored. A degenerate range (max - min too small for fp16 to carry the zero) is widened to
// [min, min + |min|] (or [0, 1] at min = 0): the value is then code 0 and decodes to itself
// (the reference widens to [-1, 1], which clamps a constant outside it).
//
// Storage (every byte counted by stored_bytes()):
//   scale codes: per stat column, its stat_rows codes packed with bitpack.hpp's pack_row
//                (blocks of 32 codes, 4·B bytes each): stat_cols · packed_row_bytes(stat_rows, B);
//   zero codes:  the same;
//   params:      per stat column, per second-level group g (stat rows [g·R, g·R + R)), four fp16
//                values: scale and zero of the scale-codes grid, scale and zero of the zero-codes grid.
// Stat index i = sr · stat_cols + sc, as packed_matrix's stat grid numbers them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/format/bitpack.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/format/stats_table.hpp"
#include "lowbit/method/grid.hpp"
#include "lowbit/policy/stats.hpp"

namespace lowbit {

namespace detail {

inline float round_to_half(float v) { return half(v).to_float(); }

// SpQR's min-max asymmetric grid for the range [lo, hi] of a group (quant_groups.py
// find_params with round_zero = False): 0 is not forced into the range, the zero stays
// fractional. `round_stat` is the storage rounding of scale and zero (fp16 or none).
// `min_rel_width`: a range narrower than min_rel_width · max(|lo|, |hi|) counts as degenerate
// and is widened to [lo, lo + |lo|] (so that lo is code 0 and |zero| stays maxq-sized);
// fp16 storage needs it so the zero -lo/scale stays representable.
inline grid_params spqr_grid(float lo, float hi, int maxq, stat_rounding round_stat, float min_rel_width) {
  const float mag = std::max(std::abs(lo), std::abs(hi));
  if (!(hi - lo > min_rel_width * mag) || hi - lo == 0.0f) hi = lo + (lo != 0.0f ? std::abs(lo) : 1.0f);
  grid_params p;
  float step = (hi - lo) / static_cast<float>(maxq);
  if (!std::isfinite(step)) step = hi / static_cast<float>(maxq) - lo / static_cast<float>(maxq);
  p.scale = round_stat(step);
  if (!std::isfinite(p.scale))
    fail("spqr: a group's range [", lo, ", ", hi, "] needs a step of ", step,
         ", more than fp16 statistics hold (65504)");
  if (!(p.scale > 0.0f)) p.scale = round_stat(5.9604645e-8f) > 0.0f ? round_stat(5.9604645e-8f) : 5.9604645e-8f;
  p.zero = round_stat(-lo / p.scale);
  return p;
}

// SpQR's quantize(): the scale is clamped at 1e-9 and the zero is added BEFORE rounding
// (grid.hpp's encode rounds w/scale and adds an integral zero; SpQR's zeros are fractional).
inline std::uint8_t spqr_encode(float w, grid_params p, int maxq) {
  const float q = std::nearbyint(w / std::max(p.scale, 1e-9f) + p.zero);
  return static_cast<std::uint8_t>(std::clamp(q, 0.0f, static_cast<float>(maxq)));
}

// Relative width below which fp16-stored grids treat a range as degenerate: then
// |zero| = |lo| · maxq / (hi - lo) < 1024, where fp16 still resolves a quarter code.
inline float fp16_min_rel_width(int maxq) { return static_cast<float>(maxq) / 1024.0f; }

}  // namespace detail

template <int B, int R>
class stats_table<quantized_stats<B, R>> {
  static_assert(B == 2 || B == 3 || B == 4 || B == 8,
                "lowbit::quantized_stats<B, R>: the stats codes are bit-packed like weight codes; B must be 2, 3, 4 or 8");

 public:
  static constexpr int bits = B;
  static constexpr int group_rows = R;
  static constexpr int maxq = (1 << B) - 1;

  stats_table() = default;
  stats_table(index stat_rows, index stat_cols)
      : rows_(stat_rows), cols_(stat_cols), groups_((stat_rows + R - 1) / R),
        col_bytes_(packed_row_bytes(stat_rows, B)),
        scale_codes_(static_cast<std::size_t>(stat_cols) * col_bytes_, 0),
        zero_codes_(static_cast<std::size_t>(stat_cols) * col_bytes_, 0),
        params_(static_cast<std::size_t>(stat_cols * groups_ * 4), half(0.0f)) {
    detail::require(stat_rows > 0 && stat_cols > 0, "quantized stats table: shape ", stat_rows, " x ", stat_cols,
                    " is empty");
  }

  // Quantizes stat column sc from its first-level scales and zeros (stat_rows each).
  void set_column(index sc, std::span<const float> scales, std::span<const float> zeros) {
    detail::require(sc >= 0 && sc < cols_, "quantized stats table: column ", sc, " out of range [0, ", cols_, ")");
    detail::require(static_cast<index>(scales.size()) == rows_ && static_cast<index>(zeros.size()) == rows_,
                    "quantized stats table: set_column got ", scales.size(), " scales and ", zeros.size(),
                    " zeros, expected ", rows_, " each");
    std::vector<std::uint8_t> sq(static_cast<std::size_t>(rows_)), zq(static_cast<std::size_t>(rows_));
    for (index g = 0; g < groups_; ++g) {
      const index r0 = g * R, n = std::min<index>(R, rows_ - r0);
      const grid_params ps = fit(scales.data() + r0, n), pz = fit(zeros.data() + r0, n);
      for (index i = 0; i < n; ++i) {
        sq[static_cast<std::size_t>(r0 + i)] = detail::spqr_encode(scales[static_cast<std::size_t>(r0 + i)], ps, maxq);
        zq[static_cast<std::size_t>(r0 + i)] = detail::spqr_encode(zeros[static_cast<std::size_t>(r0 + i)], pz, maxq);
      }
      half* p = params_.data() + static_cast<std::size_t>((sc * groups_ + g) * 4);
      p[0] = half(ps.scale);
      p[1] = half(ps.zero);
      p[2] = half(pz.scale);
      p[3] = half(pz.zero);
    }
    pack_row(sq, scale_codes(sc), B);
    pack_row(zq, zero_codes(sc), B);
  }

  // The decoded first-level pair of stat i = sr · stat_cols + sc (scale clamped at 1e-9, as
  // SpQR's quantizer clamps it). `implicit_zero` is unused: quantized stats always store zeros.
  grid_params get(index i, float implicit_zero = 0.0f) const {
    (void)implicit_zero;
    const index sr = i / cols_, sc = i % cols_;
    const half* p = params_.data() + static_cast<std::size_t>((sc * groups_ + sr / R) * 4);
    const auto* col = scale_codes_.data() + static_cast<std::size_t>(sc) * col_bytes_;
    const auto* zcol = zero_codes_.data() + static_cast<std::size_t>(sc) * col_bytes_;
    grid_params out;
    out.scale = std::max(lowbit::decode(packed_code_at(col, sr, B), {p[0].to_float(), p[1].to_float()}), 1e-9f);
    out.zero = lowbit::decode(packed_code_at(zcol, sr, B), {p[2].to_float(), p[3].to_float()});
    return out;
  }
  // Bulk decode of n consecutive stats (the interface the kernels use for every storage).
  void decode(index begin, index n, float* scale, float* zero, float implicit_zero) const {
    for (index i = 0; i < n; ++i) {
      const grid_params p = get(begin + i, implicit_zero);
      scale[i] = p.scale;
      zero[i] = p.zero;
    }
  }

  index size() const { return rows_ * cols_; }
  index stat_rows() const { return rows_; }
  index stat_cols() const { return cols_; }
  index groups_per_column() const { return groups_; }
  bool has_zeros() const { return true; }
  std::size_t stored_bytes() const {
    return scale_codes_.size() + zero_codes_.size() + params_.size() * sizeof(half);
  }

  // Raw parts (file format, device upload). Column sc's packed codes are
  // [sc · column_bytes(), (sc + 1) · column_bytes()); params [(sc · groups + g) · 4 + k],
  // k = 0 scale-codes scale, 1 scale-codes zero, 2 zero-codes scale, 3 zero-codes zero.
  std::size_t column_bytes() const { return col_bytes_; }
  std::span<const std::uint8_t> scale_codes() const { return scale_codes_; }
  std::span<const std::uint8_t> zero_codes() const { return zero_codes_; }
  std::span<const half> second_level() const { return params_; }
  std::span<std::uint8_t> scale_codes() { return scale_codes_; }
  std::span<std::uint8_t> zero_codes() { return zero_codes_; }
  std::span<half> second_level() { return params_; }

  // The second-level grid of a run of n first-level values (public for tests and tools).
  static grid_params fit(const float* v, index n) {
    float lo = v[0], hi = v[0];
    for (index i = 1; i < n; ++i) {
      lo = std::min(lo, v[i]);
      hi = std::max(hi, v[i]);
    }
    return detail::spqr_grid(lo, hi, maxq, detail::round_to_half, detail::fp16_min_rel_width(maxq));
  }

 private:
  std::span<std::uint8_t> scale_codes(index sc) {
    return std::span<std::uint8_t>(scale_codes_.data() + static_cast<std::size_t>(sc) * col_bytes_, col_bytes_);
  }
  std::span<std::uint8_t> zero_codes(index sc) {
    return std::span<std::uint8_t>(zero_codes_.data() + static_cast<std::size_t>(sc) * col_bytes_, col_bytes_);
  }

  index rows_ = 0, cols_ = 0, groups_ = 0;
  std::size_t col_bytes_ = 0;
  std::vector<std::uint8_t> scale_codes_, zero_codes_;
  std::vector<half> params_;
};

}  // namespace lowbit
