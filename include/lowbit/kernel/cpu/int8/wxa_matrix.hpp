#pragma once
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
// Storage: codes row-major, each segment zero-padded to a multiple of 32 columns (see
// kernel/cpu/int8/dot.hpp); weights of <= 4 bits as nibbles, 8-bit as bytes; per
// (row, segment) a float scale, an int32 zero and the int32 sum of codes. Activation codes
// are stored shifted to s8 (8-bit codes minus 128) because vpdpbusd multiplies u8 by s8.
//
// Float results do not depend on the ISA path: the kernels return the same integers, and
// the scaling below runs in one fixed order.
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/kernel/cpu/int8/activation_grid.hpp"
#include "lowbit/kernel/cpu/int8/dot.hpp"
#include "lowbit/method/grid.hpp"

namespace lowbit {

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
                    "; expected 2, 3, 4 or 8");
    wxa_matrix m(W.rows, W.cols, weight_bits, std::move(grid), 0);
    grid_spec spec;
    spec.bits = weight_bits;
    const int maxq = spec.maxq();
    parallel_for(m.rows_, 16, [&](index r0, index r1) {
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(m.cols_));
      for (index r = r0; r < r1; ++r) {
        for (std::size_t s = 0; s < m.segs_.size(); ++s) {
          const segment& g = m.segs_[s];
          const grid_params p = fit_minmax({&W(r, g.begin), g.end - g.begin, W.col_stride}, spec);
          m.set_stat(r, s, p);
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
          m.set_stat(r, s, p);
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

  // Every byte the weight side stores (codes with padding, per (row, segment) scale, zero and
  // code sum); the activation grid's few bytes are counted too.
  std::size_t stored_bytes() const {
    return codes_.size() + wscale_.size() * sizeof(float) + wzero_.size() * sizeof(std::int32_t) +
           wsum_.size() * sizeof(std::int32_t) + grid_.params.size() * sizeof(grid_params);
  }
  double bits_per_weight() const {
    return 8.0 * static_cast<double>(stored_bytes()) / (static_cast<double>(rows_) * static_cast<double>(cols_));
  }

  // Weight code of (row, logical column).
  int code(index r, index c) const {
    const segment& g = segs_[static_cast<std::size_t>(segment_of_[static_cast<std::size_t>(c)])];
    return kernel::int8::weight_code(codes_.data() + static_cast<std::size_t>(r) * row_bytes_,
                                     g.padded_begin + (c - g.begin), nibbles());
  }
  grid_params weight_params(index r, index s) const {
    const std::size_t i = static_cast<std::size_t>(r * segment_count() + s);
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

  // Raw integer dots for rows [r0, r1): out[(r - r0) * segment_count() + s].
  void dot(const activations& a, index r0, index r1, std::span<std::int32_t> out, int8_isa isa = int8_isa::best) const {
    detail::require(r0 >= 0 && r0 <= r1 && r1 <= rows_, "wxa_matrix::dot: rows [", r0, ", ", r1, ") out of [0, ", rows_, ")");
    detail::require(static_cast<index>(out.size()) >= (r1 - r0) * segment_count(), "wxa_matrix::dot: output too small");
    detail::require(static_cast<index>(a.codes.size()) == padded_cols_, "wxa_matrix::dot: activations of another layout");
    kernel::int8::dot_rows(resolve_int8_isa(isa), dot_args(a), r0, r1, out.data());
  }

  // y[r] from row r's integer dots: the zero-point expansion in int64, then the scales, in
  // segment order.
  float combine_row(index r, const std::int32_t* dots, const activations& a) const {
    double y = 0.0;
    const index S = segment_count();
    for (index s = 0; s < S; ++s) {
      const std::size_t i = static_cast<std::size_t>(r * S + s);
      const std::int64_t zw = wzero_[i], za = act_zero_[static_cast<std::size_t>(s)];
      const std::int64_t n = segs_[static_cast<std::size_t>(s)].end - segs_[static_cast<std::size_t>(s)].begin;
      const std::int64_t v = static_cast<std::int64_t>(dots[s]) - za * wsum_[i] - zw * a.sums[static_cast<std::size_t>(s)] + n * zw * za;
      y += static_cast<double>(wscale_[i] * act_scale_[static_cast<std::size_t>(s)]) * static_cast<double>(v);
    }
    return static_cast<float>(y);
  }

  // y = W_hat · Q_A(x): x in the reordered channel order.
  void gemv(std::span<const float> x, std::span<float> y, int8_isa isa = int8_isa::best) const {
    detail::require(static_cast<index>(y.size()) == rows_, "wxa_matrix: y has ", y.size(), " entries, W has ", rows_, " rows");
    activations a;
    quantize_activations(x, a);
    run(a, y, resolve_int8_isa(isa));
  }

  // Y[i, :] = W_hat · Q_A(X[i, :]) for m rows (X: [m x cols], Y: [m x rows], row-major).
  void gemm(std::span<const float> X, std::span<float> Y, index m, int8_isa isa = int8_isa::best) const {
    detail::require(m >= 1, "wxa_matrix::gemm: m = ", m, " must be >= 1");
    detail::require(static_cast<index>(X.size()) == m * cols_ && static_cast<index>(Y.size()) == m * rows_,
                    "wxa_matrix::gemm: X must be m x cols and Y m x rows");
    for (index i = 0; i < m; ++i)
      gemv(X.subspan(static_cast<std::size_t>(i * cols_), static_cast<std::size_t>(cols_)),
           Y.subspan(static_cast<std::size_t>(i * rows_), static_cast<std::size_t>(rows_)), isa);
  }

  void run(const activations& a, std::span<float> y, int8_isa isa) const {
    const kernel::int8::dot_args args = dot_args(a);
    const index S = segment_count();
    parallel_for(rows_, 64, [&](index r0, index r1) {
      constexpr index tile = 16;
      std::vector<std::int32_t> dots(static_cast<std::size_t>(tile * S));
      for (index t = r0; t < r1; t += tile) {
        const index te = std::min(r1, t + tile);
        kernel::int8::dot_rows(isa, args, t, te, dots.data());
        for (index r = t; r < te; ++r) y[static_cast<std::size_t>(r)] = combine_row(r, dots.data() + (r - t) * S, a);
      }
    });
  }

 private:
  // Segments = cluster boundaries ∪ weight group boundaries (group 0: one group per cluster).
  wxa_matrix(index rows, index cols, int wbits, cluster_activation_grid grid, index group)
      : rows_(rows), cols_(cols), wbits_(wbits), grid_(std::move(grid)) {
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
    codes_.assign(static_cast<std::size_t>(rows) * row_bytes_, 0);
    const std::size_t n = static_cast<std::size_t>(rows) * segs_.size();
    wscale_.resize(n);
    wzero_.resize(n);
    wsum_.resize(n);
    for (const segment& g : segs_) {
      const grid_params p = grid_.params[static_cast<std::size_t>(g.cluster)];
      act_scale_.push_back(p.scale);
      act_zero_.push_back(static_cast<std::int32_t>(p.zero) - act_offset_);
    }
    const int amax = grid_.bits == 8 ? 128 : grid_.max_code();
    maddubs_exact_ = 2 * ((1 << wbits_) - 1) * amax <= 32767;
  }

  void set_stat(index r, std::size_t s, grid_params p) {
    const std::size_t i = static_cast<std::size_t>(r) * segs_.size() + s;
    wscale_[i] = p.scale;
    wzero_[i] = static_cast<std::int32_t>(p.zero);
  }

  // Lays row r's logical codes into the padded (nibble or byte) layout and stores the
  // per-segment code sums.
  void set_row(index r, std::span<const std::uint8_t> codes) {
    std::uint8_t* row = codes_.data() + static_cast<std::size_t>(r) * row_bytes_;
    for (std::size_t s = 0; s < segs_.size(); ++s) {
      const segment& g = segs_[s];
      std::int32_t sum = 0;
      for (index c = g.begin; c < g.end; ++c) {
        const std::uint8_t q = codes[static_cast<std::size_t>(c)];
        sum += q;
        const index j = g.padded_begin + (c - g.begin);
        if (nibbles()) {
          std::uint8_t& b = row[(j / 32) * 16 + (j % 32 & 15)];
          b = static_cast<std::uint8_t>(j % 32 < 16 ? (b & 0xF0) | q : (b & 0x0F) | (q << 4));
        } else {
          row[j] = q;
        }
      }
      wsum_[static_cast<std::size_t>(r) * segs_.size() + s] = sum;
    }
  }

  kernel::int8::dot_args dot_args(const activations& a) const {
    kernel::int8::dot_args d;
    d.codes = codes_.data();
    d.row_bytes = row_bytes_;
    d.nibbles = nibbles();
    d.maddubs_exact = maddubs_exact_;
    d.seg_begin = seg_begin_.data();
    d.nseg = segment_count();
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
  std::vector<std::int32_t> wzero_, wsum_;
  std::vector<float> act_scale_;
  std::vector<std::int32_t> act_zero_;
  std::vector<index> seg_begin_;  // padded segment starts + the end, for the kernels
};

}  // namespace lowbit
