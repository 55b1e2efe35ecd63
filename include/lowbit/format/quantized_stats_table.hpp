#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
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
#include "lowbit/core/grid_types.hpp"
#include "lowbit/policy/stats.hpp"

namespace lowbit::inline LOWBIT_ABI {

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
  static_assert(is_supported_bit_width(B),
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
  // The kernels ask for whole stat rows (a block of output rows): each stat column's 32-code
  // blocks are then unpacked once and its fp16 second-level params converted once per group.
  void decode(index begin, index n, float* scale, float* zero, float implicit_zero) const {
    if (n <= 0) return;
    if (begin % cols_ == 0 && n % cols_ == 0) {
      decode_rows(begin / cols_, n / cols_, scale, zero);
      return;
    }
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
  // Stat rows [sr0, sr0 + nr), all columns, into row-major [nr x stat_cols] buffers, with the
  // same arithmetic as get(). Per 32-row code block: each column's block is unpacked once and
  // transposed to rows; per second-level group the fp16 params of every column are converted
  // once; the rows are then contiguous loops over the columns (vectorised by the compiler).
  void decode_rows(index sr0, index nr, float* scale, float* zero) const {
    thread_local std::vector<std::uint8_t> qs, qz;
    thread_local std::vector<float> pp;
    const std::size_t C = static_cast<std::size_t>(cols_), bpb = bytes_per_block(B);
    qs.resize(codes_per_block * C);
    qz.resize(codes_per_block * C);
    pp.resize(4 * C);
    std::uint8_t tmp[codes_per_block];
    for (index a = sr0; a < sr0 + nr;) {
      const index blk = a / codes_per_block, e = std::min<index>(sr0 + nr, (blk + 1) * codes_per_block);
      for (std::size_t sc = 0; sc < C; ++sc) {
        unpack_block(scale_codes_.data() + sc * col_bytes_ + static_cast<std::size_t>(blk) * bpb, tmp, B);
        for (int j = 0; j < codes_per_block; ++j) qs[static_cast<std::size_t>(j) * C + sc] = tmp[j];
        unpack_block(zero_codes_.data() + sc * col_bytes_ + static_cast<std::size_t>(blk) * bpb, tmp, B);
        for (int j = 0; j < codes_per_block; ++j) qz[static_cast<std::size_t>(j) * C + sc] = tmp[j];
      }
      while (a < e) {
        const index g = a / R, ge = std::min<index>(e, (g + 1) * R);
        float* ss = pp.data();
        float* sz = ss + C;
        float* zs = sz + C;
        float* zz = zs + C;
        for (std::size_t sc = 0; sc < C; ++sc) {
          const half* p = params_.data() + (sc * static_cast<std::size_t>(groups_) + static_cast<std::size_t>(g)) * 4;
          ss[sc] = p[0].to_float();
          sz[sc] = p[1].to_float();
          zs[sc] = p[2].to_float();
          zz[sc] = p[3].to_float();
        }
        for (; a < ge; ++a)
          decode_row(qs.data() + static_cast<std::size_t>(a % codes_per_block) * C,
                     qz.data() + static_cast<std::size_t>(a % codes_per_block) * C, ss, sz, zs, zz,
                     scale + static_cast<std::size_t>(a - sr0) * C, zero + static_cast<std::size_t>(a - sr0) * C, C);
      }
    }
  }

  // One stat row; restrict-qualified so the compiler vectorises it (the same arithmetic as
  // get(): scale clamped at 1e-9).
  static void decode_row(const std::uint8_t* __restrict cs, const std::uint8_t* __restrict cz,
                         const float* __restrict ss, const float* __restrict sz, const float* __restrict zs,
                         const float* __restrict zz, float* __restrict os, float* __restrict oz, std::size_t C) {
    for (std::size_t sc = 0; sc < C; ++sc) {
      const float v = ss[sc] * (static_cast<float>(cs[sc]) - sz[sc]);
      os[sc] = v > 1e-9f ? v : 1e-9f;
      oz[sc] = zs[sc] * (static_cast<float>(cz[sc]) - zz[sc]);
    }
  }

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
