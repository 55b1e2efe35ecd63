#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// wxa_matrix: a weight matrix ready for y = W_hat · Q_A(x) with BOTH operands as integer
// codes (RPTQ's W4A8 / W8A8 / W4A4 / W3A3 settings).
//
// Why segments: the activation scale is per cluster (a contiguous range of reordered input
// channels) and the weight scale is per (row, group of input columns). A product of two
// affine codes expands exactly, per run of columns j that share BOTH scales:
//     sum_j s_w (w_j - z_w) · s_a (a_j - z_a)
//       = s_w s_a [ sum_j w_j a_j - z_a sum_j w_j - z_w sum_j a_j + n z_w z_a ],
// so the integer dot sum_j w_j a_j (the kernel, exact int32) must be taken per segment =
// (weight group ∩ activation cluster); sum_j w_j is stored per (row, segment), sum_j a_j is
// computed once per call. Two ways in:
//   * wxa_matrix::quantize(W, bits, grid): RPTQ's weight layout, one (scale, zero) per
//     (output row, input cluster), so segments = clusters;
//   * wxa_matrix::from_packed(pm, grid): any per-OC packed_matrix (RTN, GPTQ, ...) without
//     outliers; segments = its groups ∩ the clusters.
// Storage: codes in blocks of 4 rows interleaved per segment, each segment zero-padded to a
// multiple of 32 columns (see kernel/cpu/int8/dot.hpp); weights of <= 4 bits as nibbles, 8-bit as bytes; per
// (row, segment) a float scale, an int32 zero and k_w = n z_w - sum of codes. Activation codes
// are stored shifted to s8 (8-bit codes minus 128) because vpdpbusd multiplies u8 by s8.
//
// Float results do not depend on the ISA path: the kernels return the same integers, and
// the scaling below runs in one fixed order.
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/kernel/cpu/int8/activation_grid.hpp"
#include "lowbit/kernel/cpu/int8/dot.hpp"
#include "lowbit/core/grid_types.hpp"

namespace lowbit::inline LOWBIT_ABI {

class wxa_matrix {
 public:
  struct segment {
    index begin = 0, end = 0;  // logical input columns [begin, end)
    index padded_begin = 0;    // where it starts in the padded layout (multiple of 32)
    index cluster = 0;         // activation cluster it belongs to
  };

  // Integer activation codes of one input vector in the padded layout, plus the per-segment
  // code sums the zero-point correction needs.
  struct activations {
    std::vector<std::int8_t> codes;
    std::vector<std::int32_t> sums;
  };

  wxa_matrix() = default;

  // RPTQ's weight quantizer: asymmetric min-max, one (scale, zero) per (output row, input
  // cluster) (RPTQ `UniformAffineQuantizer` with cluster_dim = 1). W's columns must already
  // be in the reordered channel order of `grid`.
  static wxa_matrix quantize(matrix_view<const float> W, int weight_bits, cluster_activation_grid grid) {
    require_nonempty(W, "wxa_matrix: weight matrix W");
    require_finite(W, "wxa_matrix: weight matrix W");
    detail::require(is_supported_bit_width(weight_bits), "wxa_matrix: weight bits = ", weight_bits,
                    "; expected ", supported_bit_widths_text);
    wxa_matrix m(W.rows, W.cols, weight_bits, std::move(grid));
    grid_spec spec;
    spec.bits = weight_bits;
    const int maxq = spec.maxq();
    parallel_for(m.rows_, 16, [&](index r0, index r1) {
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(m.cols_));
      for (index r = r0; r < r1; ++r) {
        for (std::size_t s = 0; s < m.segs_.size(); ++s) {
          const segment& g = m.segs_[s];
          const grid_params p = fit_minmax({&W(r, g.begin), g.end - g.begin, W.col_stride}, spec);
          m.set_stat(r, static_cast<index>(s), p);
          for (index c = g.begin; c < g.end; ++c) codes[static_cast<std::size_t>(c)] = encode(W(r, c), p, maxq);
        }
        m.set_row(r, codes);
      }
    });
    return m;
  }

  // Integer execution of an existing per-OC packed matrix (RTN, GPTQ, ...): its columns must
  // be in the reordered channel order of `grid` (permute W's columns before quantizing).
  template <PackedMatrix PM>
  static wxa_matrix from_packed(const PM& W, cluster_activation_grid grid) {
    static_assert(std::is_same_v<typename PM::outlier_policy, no_outliers>,
                  "lowbit::wxa_matrix: the integer path has no outlier store; quantize without "
                  "dense_columns / sparse_outliers");
    static_assert(!PM::stats_policy::second_level, "lowbit::wxa_matrix: quantized_stats<> are not supported");
    detail::require(W.group_axis() == axis::oc, "wxa_matrix: needs per-OC groups (scales constant along runs of "
                    "input columns); got axis ", axis_name(W.group_axis()));
    wxa_matrix m(W.rows(), W.cols(), PM::bits, std::move(grid), W.group_size());
    parallel_for(m.rows_, 16, [&](index r0, index r1) {
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(m.cols_));
      for (index r = r0; r < r1; ++r) {
        W.unpack_row_codes(r, codes);
        for (std::size_t s = 0; s < m.segs_.size(); ++s) {
          const grid_params p = W.params(r, m.segs_[s].begin);
          detail::require(p.zero == std::nearbyint(p.zero), "wxa_matrix: row ", r, " has a non-integral zero point ",
                          p.zero, "; the integer path needs integral zeros");
          m.set_stat(r, static_cast<index>(s), p);
        }
        m.set_row(r, codes);
      }
    });
    return m;
  }

  // ---- shape and layout ----
  index rows() const { return rows_; }
  index cols() const { return cols_; }
  index padded_cols() const { return padded_cols_; }
  int weight_bits() const { return wbits_; }
  int activation_bits() const { return grid_.bits; }
  const cluster_activation_grid& activation_grid() const { return grid_; }
  const std::vector<segment>& segments() const { return segs_; }
  index segment_count() const { return static_cast<index>(segs_.size()); }
  bool nibbles() const { return wbits_ <= 4; }

  // Every byte the weight side stores (codes with padding; per (row, segment) scale, zero and
  // k_w = n z_w - sum(w), in blocks of 4 rows); the activation grid's few bytes too.
  std::size_t stored_bytes() const {
    return codes_.size() + wscale_.size() * sizeof(float) + wzero_.size() * sizeof(std::int32_t) +
           wk_.size() * sizeof(std::int32_t) + grid_.params.size() * sizeof(grid_params);
  }
  double bits_per_weight() const {
    return 8.0 * static_cast<double>(stored_bytes()) / (static_cast<double>(rows_) * static_cast<double>(cols_));
  }

  // Weight code of (row, logical column).
  int code(index r, index c) const {
    const index s = segment_of_[static_cast<std::size_t>(c)];
    const segment& g = segs_[static_cast<std::size_t>(s)];
    return kernel::int8::weight_code(layout().segment(r, s), seg_begin_[static_cast<std::size_t>(s) + 1] - g.padded_begin,
                                     c - g.begin, nibbles());
  }
  grid_params weight_params(index r, index s) const {
    const std::size_t i = stat_slot(r, s);
    return {wscale_[i], static_cast<float>(wzero_[i])};
  }

  // W_hat as floats (for references and error measurements).
  Eigen::MatrixXf dequantize() const {
    Eigen::MatrixXf out(rows_, cols_);
    for (index r = 0; r < rows_; ++r)
      for (index s = 0; s < segment_count(); ++s) {
        const grid_params p = weight_params(r, s);
        for (index c = segs_[static_cast<std::size_t>(s)].begin; c < segs_[static_cast<std::size_t>(s)].end; ++c)
          out(r, c) = decode(code(r, c), p);
      }
    return out;
  }

  // ---- execution ----
  // Q_A(x): codes in the padded layout (s8; 8-bit codes shifted by -128) and segment sums.
  void quantize_activations(std::span<const float> x, activations& a) const {
    detail::require(static_cast<index>(x.size()) == cols_, "wxa_matrix: x has ", x.size(), " entries, W has ", cols_,
                    " columns");
    a.codes.assign(static_cast<std::size_t>(padded_cols_), 0);
    a.sums.assign(segs_.size(), 0);
    const int maxq = grid_.max_code();
    for (std::size_t s = 0; s < segs_.size(); ++s) {
      const segment& g = segs_[s];
      const grid_params p = grid_.params[static_cast<std::size_t>(g.cluster)];
      std::int32_t sum = 0;
      for (index c = g.begin; c < g.end; ++c) {
        const float v = x[static_cast<std::size_t>(c)];
        if (!std::isfinite(v)) detail::fail("wxa_matrix: activation x[", c, "] = ", v, " is not finite");
        const int q = static_cast<int>(encode(v, p, maxq)) - act_offset_;
        a.codes[static_cast<std::size_t>(g.padded_begin + (c - g.begin))] = static_cast<std::int8_t>(q);
        sum += q;
      }
      a.sums[s] = sum;
    }
  }

  // Raw integer dots for rows [r0, r1): out[(r - r0) * segment_count() + s] (row-major; the
  // kernels' own blocked layout is converted here).
  void dot(const activations& a, index r0, index r1, std::span<std::int32_t> out,
           std::optional<kernel::cpu::isa> isa = std::nullopt) const {
    detail::require(r0 >= 0 && r0 <= r1 && r1 <= rows_, "wxa_matrix::dot: rows [", r0, ", ", r1, ") out of [0, ", rows_, ")");
    detail::require(static_cast<index>(out.size()) >= (r1 - r0) * segment_count(), "wxa_matrix::dot: output too small");
    detail::require(static_cast<index>(a.codes.size()) == padded_cols_, "wxa_matrix::dot: activations of another layout");
    const index S = segment_count(), start = r0 / kernel::int8::row_block * kernel::int8::row_block;
    std::vector<std::int32_t> blk(static_cast<std::size_t>(blocked_size(r1 - start)));
    kernel::int8::dot_rows(resolve_int8_isa(isa), dot_args(a), start, r1, blk.data());
    for (index r = r0; r < r1; ++r)
      for (index s = 0; s < S; ++s)
        out[static_cast<std::size_t>((r - r0) * S + s)] = blk[static_cast<std::size_t>(kernel::int8::blocked(r - start, s, S))];
  }

  // y = W_hat · Q_A(x): x in the reordered channel order.
  void gemv(std::span<const float> x, std::span<float> y, std::optional<kernel::cpu::isa> isa = std::nullopt) const {
    detail::require(static_cast<index>(y.size()) == rows_, "wxa_matrix: y has ", y.size(), " entries, W has ", rows_, " rows");
    activations a;
    quantize_activations(x, a);
    run(a, y, resolve_int8_isa(isa));
  }

  // Y[i, :] = W_hat · Q_A(X[i, :]) for m rows (X: [m x cols], Y: [m x rows], row-major).
  void gemm(std::span<const float> X, std::span<float> Y, index m,
            std::optional<kernel::cpu::isa> isa = std::nullopt) const {
    detail::require(m >= 1, "wxa_matrix::gemm: m = ", m, " must be >= 1");
    detail::require(static_cast<index>(X.size()) == m * cols_ && static_cast<index>(Y.size()) == m * rows_,
                    "wxa_matrix::gemm: X must be m x cols and Y m x rows");
    for (index i = 0; i < m; ++i)
      gemv(X.subspan(static_cast<std::size_t>(i * cols_), static_cast<std::size_t>(cols_)),
           Y.subspan(static_cast<std::size_t>(i * rows_), static_cast<std::size_t>(rows_)), isa);
  }

  // The kernels on already quantized activations: integer dots per block of rows, then the
  // scaling step (kernel/cpu/int8/dot.hpp, combine_rows) while the dots are still in L1.
  void run(const activations& a, std::span<float> y, kernel::cpu::isa isa) const {
    const kernel::int8::dot_args args = dot_args(a);
    const index S = segment_count();
    std::vector<double> asum(a.sums.begin(), a.sums.end());
    const index blocks = (rows_ + kernel::int8::row_block - 1) / kernel::int8::row_block;
    parallel_for(blocks, 16, [&](index b0, index b1) {
      constexpr index tile = 4 * kernel::int8::row_block;
      std::vector<std::int32_t> dots(static_cast<std::size_t>(blocked_size(tile)));
      for (index t = b0 * kernel::int8::row_block; t < std::min(rows_, b1 * kernel::int8::row_block); t += tile) {
        const index te = std::min({rows_, t + tile, b1 * kernel::int8::row_block});
        kernel::int8::dot_rows(isa, args, t, te, dots.data());
        kernel::int8::combine_args c;
        const std::size_t base = stat_slot(t, 0);
        c.sw = wscale_.data() + base;
        c.zw = wzero_.data() + base;
        c.kw = wk_.data() + base;
        c.sa = act_scale_.data();
        c.za = act_zero_.data();
        c.asum = asum.data();
        c.nseg = S;
        kernel::int8::combine_rows(isa, c, te - t, dots.data(), y.data() + t);
      }
    });
  }

  // ---- assembly (for methods that choose codes themselves, e.g. rptq::gptq_weights) ----
  // An all-zero matrix whose segments are the grid's clusters cut at multiples of `group`
  // (0: no cut, one (scale, zero) per (row, cluster)). Fill every (row, segment)'s stats with
  // set_stat, then each row's codes with set_row (which needs the row's stats).
  wxa_matrix(index rows, index cols, int wbits, cluster_activation_grid grid, index group = 0)
      : rows_(rows), cols_(cols), wbits_(wbits), grid_(std::move(grid)) {
    detail::require(rows >= 1 && cols >= 1, "wxa_matrix: shape ", rows, " x ", cols, " is empty");
    detail::require(is_supported_bit_width(wbits), "wxa_matrix: weight bits = ", wbits, "; expected ",
                    supported_bit_widths_text);
    grid_.validate();
    detail::require(grid_.channels() == cols, "wxa_matrix: the activation grid covers ", grid_.channels(),
                    " channels, W has ", cols, " columns");
    act_offset_ = grid_.bits == 8 ? 128 : 0;
    index padded = 0;
    segment_of_.resize(static_cast<std::size_t>(cols));
    for (index c = 0; c < grid_.clusters(); ++c) {
      index b = grid_.offsets[static_cast<std::size_t>(c)];
      const index e = grid_.offsets[static_cast<std::size_t>(c) + 1];
      while (b < e) {
        const index end = group > 0 ? std::min(e, (b / group + 1) * group) : e;
        detail::require(end - b <= 65536, "wxa_matrix: a segment of ", end - b,
                        " columns could overflow the int32 dot; expected <= 65536");
        segs_.push_back({b, end, padded, c});
        std::fill(segment_of_.begin() + b, segment_of_.begin() + end, static_cast<index>(segs_.size() - 1));
        padded += (end - b + kernel::int8::segment_align - 1) / kernel::int8::segment_align * kernel::int8::segment_align;
        b = end;
      }
    }
    padded_cols_ = padded;
    for (const segment& g : segs_) seg_begin_.push_back(g.padded_begin);
    seg_begin_.push_back(padded_cols_);
    row_bytes_ = static_cast<std::size_t>(nibbles() ? padded / 2 : padded);
    const index row_blocks = (rows + kernel::int8::row_block - 1) / kernel::int8::row_block;
    codes_.assign(static_cast<std::size_t>(row_blocks * kernel::int8::row_block) * row_bytes_, 0);
    const std::size_t n = static_cast<std::size_t>(blocked_size(rows));
    wscale_.assign(n, 0.0f);
    wzero_.assign(n, 0);
    wk_.assign(n, 0);
    for (const segment& g : segs_) {
      const grid_params p = grid_.params[static_cast<std::size_t>(g.cluster)];
      act_scale_.push_back(p.scale);
      act_zero_.push_back(static_cast<double>(static_cast<std::int32_t>(p.zero) - act_offset_));
    }
    const int amax = grid_.bits == 8 ? 128 : grid_.max_code();
    maddubs_exact_ = 2 * ((1 << wbits_) - 1) * amax <= 32767;
  }

  index segment_of(index c) const { return segment_of_[static_cast<std::size_t>(c)]; }

  // Slot of (row, segment) in the blocked per-(row, segment) arrays.
  std::size_t stat_slot(index r, index s) const {
    return static_cast<std::size_t>(kernel::int8::blocked(r, s, segment_count()));
  }
  index blocked_size(index n_rows) const {
    return (n_rows + kernel::int8::row_block - 1) / kernel::int8::row_block * kernel::int8::row_block * segment_count();
  }

  void set_stat(index r, index s, grid_params p) {
    const std::size_t i = stat_slot(r, s);
    detail::require(p.scale > 0.0f && std::isfinite(p.scale), "wxa_matrix: weight scale ", p.scale, " must be positive");
    // |z_w| <= 256 keeps k_w = n z_w - sum(w) in int32 and every term of the expansion < 2^53.
    detail::require(p.zero == std::nearbyint(p.zero) && std::abs(p.zero) <= 256.0f, "wxa_matrix: weight zero point ",
                    p.zero, " must be an integer with |zero| <= 256");
    wscale_[i] = p.scale;
    wzero_[i] = static_cast<std::int32_t>(p.zero);
  }

  // Lays row r's logical codes (cols entries, each <= 2^bits - 1) into the padded (nibble or
  // byte) layout and stores the per-segment k_w = n z_w - sum(w).
  void set_row(index r, std::span<const std::uint8_t> codes) {
    detail::require(static_cast<index>(codes.size()) == cols_, "wxa_matrix::set_row: got ", codes.size(), " codes, the row has ", cols_);
    const kernel::int8::dot_args L = layout();
    for (std::size_t s = 0; s < segs_.size(); ++s) {
      const segment& g = segs_[s];
      std::int32_t sum = 0;
      for (index c = g.begin; c < g.end; ++c) {
        const std::uint8_t q = codes[static_cast<std::size_t>(c)];
        detail::require(q < (1 << wbits_), "wxa_matrix::set_row: code ", int(q), " exceeds ", (1 << wbits_) - 1);
        sum += q;
        // The segment's bytes of this row inside its block of 4 rows (dot.hpp's layout).
        std::uint8_t* seg = codes_.data() + (L.segment(r, static_cast<index>(s)) - codes_.data());
        const index o = c - g.begin;
        if (nibbles()) {
          const auto slot = kernel::int8::nibble_position(seg_begin_[s + 1] - g.padded_begin, o);
          std::uint8_t& b = seg[slot.byte];
          b = static_cast<std::uint8_t>(slot.high ? (b & 0x0F) | (q << 4) : (b & 0xF0) | q);
        } else {
          seg[o] = q;
        }
      }
      const std::size_t i = stat_slot(r, static_cast<index>(s));
      wk_[i] = static_cast<std::int32_t>(g.end - g.begin) * wzero_[i] - sum;  // set_stat ran first
    }
  }

 private:
  // The code layout as the kernels see it (no activations yet).
  kernel::int8::dot_args layout() const {
    kernel::int8::dot_args d;
    d.codes = codes_.data();
    d.row_bytes = row_bytes_;
    d.nibbles = nibbles();
    d.maddubs_exact = maddubs_exact_;
    d.seg_begin = seg_begin_.data();
    d.nseg = segment_count();
    return d;
  }
  kernel::int8::dot_args dot_args(const activations& a) const {
    kernel::int8::dot_args d = layout();
    d.act = a.codes.data();
    return d;
  }

  index rows_ = 0, cols_ = 0, padded_cols_ = 0;
  int wbits_ = 4;
  int act_offset_ = 0;
  bool maddubs_exact_ = true;
  std::size_t row_bytes_ = 0;
  cluster_activation_grid grid_;
  std::vector<segment> segs_;
  std::vector<index> segment_of_;
  std::vector<std::uint8_t> codes_;
  std::vector<float> wscale_;
  std::vector<std::int32_t> wzero_, wk_;  // k_w = n z_w - sum(w) per (row, segment)
  std::vector<float> act_scale_;
  std::vector<double> act_zero_;          // z_a - offset per segment (an integer)
  std::vector<index> seg_begin_;  // padded segment starts + the end, for the kernels
};

}  // namespace lowbit
