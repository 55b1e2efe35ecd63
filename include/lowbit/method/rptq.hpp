#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// RPTQ: reorder-based post-training quantization of activations (Yuan et al. 2023,
// "RPTQ: Reorder-based Post-training Quantization for Large Language Models").
//
// Activation channels of LLMs have wildly different ranges, so one (scale, zero) per tensor
// wastes most levels on the few wide channels. RPTQ
//   1. records each channel's (min, max) on calibration data            (channel_ranges)
//   2. clusters the channels by their (max, min) point with k-means and reorders them so
//      every cluster is contiguous                                      (cluster_channels)
//   3. quantizes activations with one static (scale, zero) per cluster  (activation_grid)
//   4. folds the reorder into the producer (norm weight/bias, or the previous linear's
//      rows) and the consumer's weight columns, so no gather runs at inference
//                                                    (permute, permute_rows, permute_columns)
//   5. quantizes weights with GPTQ on the Hessian of the QUANTIZED inputs, one (scale,
//      zero) per (output row, input cluster)     (add_quantized_batch, gptq_weights)
// and runs y = W_hat · Q_A(x) with integer codes on both sides (kernel/cpu/int8/wxa_matrix.hpp).
//
// Conventions: activations enter as [tokens x channels] (each row one token's vector, the
// layout of gemm's X). A reorder's perm[i] is the ORIGINAL channel at new position i.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_view.hpp"
#include "lowbit/kernel/cpu/int8/activation_grid.hpp"
#include "lowbit/kernel/cpu/int8/wxa_matrix.hpp"
#include "lowbit/method/gptq.hpp"
#include "lowbit/method/hessian.hpp"
#include "lowbit/method/kmeans.hpp"

namespace lowbit::inline LOWBIT_ABI::rptq {

// How per-channel ranges combine over calibration batches.
//   minmax  running min of minima / max of maxima over every batch (default: the range
//           really seen, nothing clipped);
//   ema     RPTQ's `ema_minmax`: the first batch initialises, then
//           range = momentum · range + (1 - momentum) · batch_range (momentum 0.99), which
//           forgets rare extremes (a mild clip) but depends on the batch order and size.
enum class range_metric { minmax, ema };

class channel_ranges {
 public:
  explicit channel_ranges(index channels, range_metric metric = range_metric::minmax, float momentum = 0.99f)
      : metric_(metric), momentum_(momentum), lo_(static_cast<std::size_t>(std::max<index>(channels, 0))),
        hi_(lo_.size()) {
    detail::require(channels >= 1, "channel_ranges: channels = ", channels, " must be >= 1");
    detail::require(momentum >= 0.0f && momentum < 1.0f, "channel_ranges: momentum = ", momentum,
                    " must be in [0, 1)");
  }

  // One calibration batch X [tokens x channels] (any number of tokens >= 1).
  void observe(matrix_view<const float> X) {
    require_nonempty(X, "channel_ranges: calibration batch X");
    detail::require(X.cols == channels(), "channel_ranges: batch X has ", X.cols, " channels (columns), expected ",
                    channels());
    require_finite(X, "channel_ranges: calibration batch X");
    for (index c = 0; c < X.cols; ++c) {
      float l = X(0, c), h = X(0, c);
      for (index t = 1; t < X.rows; ++t) {
        l = std::min(l, X(t, c));
        h = std::max(h, X(t, c));
      }
      float& L = lo_[static_cast<std::size_t>(c)];
      float& H = hi_[static_cast<std::size_t>(c)];
      if (batches_ == 0) {
        L = l;
        H = h;
      } else if (metric_ == range_metric::minmax) {
        L = std::min(L, l);
        H = std::max(H, h);
      } else {
        L = momentum_ * L + (1.0f - momentum_) * l;
        H = momentum_ * H + (1.0f - momentum_) * h;
      }
    }
    ++batches_;
  }
  template <class M>
    requires MatrixInput<M>
  void observe(const M& X) {
    observe(to_view(X));
  }

  index channels() const { return static_cast<index>(lo_.size()); }
  index batches() const { return batches_; }
  std::span<const float> min() const { return lo_; }
  std::span<const float> max() const { return hi_; }
  void require_observed() const {
    detail::require(batches_ > 0, "channel_ranges: no calibration batch observed yet");
  }

 private:
  range_metric metric_;
  float momentum_;
  std::vector<float> lo_, hi_;
  index batches_ = 0;
};

// A channel permutation whose clusters are contiguous.
struct channel_reorder {
  std::vector<std::int32_t> perm;  // perm[i] = original channel at new position i
  std::vector<index> offsets{0};   // cluster c covers new positions [offsets[c], offsets[c + 1])

  index channels() const { return static_cast<index>(perm.size()); }
  index clusters() const { return static_cast<index>(offsets.size()) - 1; }
  std::vector<std::int32_t> inverse() const {
    std::vector<std::int32_t> inv(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) inv[static_cast<std::size_t>(perm[i])] = static_cast<std::int32_t>(i);
    return inv;
  }
  // No reorder, one cluster: per-tensor activation quantization.
  static channel_reorder identity(index channels) {
    channel_reorder r;
    r.perm.resize(static_cast<std::size_t>(channels));
    std::iota(r.perm.begin(), r.perm.end(), 0);
    r.offsets = {0, channels};
    return r;
  }
};

struct reorder_options {
  index clusters = 32;  // per head; RPTQ's defaults: 32 for LN outputs and fc2 input, 4 per head for q/k and out-proj
  index heads = 1;      // > 1: cluster each head's channels separately, so no channel leaves its head (R2, R3)
  kmeans_options kmeans{};
};

// Clusters channels by their points (row c of `points` describes channel c: RPTQ uses
// (max, min), or (q max, k max, q min, k min) for QK^T), per head, and returns the reorder:
// heads stay in order; inside a head, clusters are sorted by their centre's spread
// (max - min for 2-D points: narrow clusters first), ties by their first channel; inside a
// cluster channels keep their original order. Empty clusters (fewer distinct points than k)
// are dropped.
inline channel_reorder cluster_points(matrix_view<const float> points, const reorder_options& opt = {}) {
  require_nonempty(points, "rptq: channel points");
  require_finite(points, "rptq: channel points (calibration ranges)");
  const index C = points.rows;
  detail::require(opt.heads >= 1 && C % opt.heads == 0, "rptq: heads = ", opt.heads, " must be >= 1 and divide the ",
                  C, " channels");
  const index per_head = C / opt.heads;
  detail::require(opt.clusters >= 1, "rptq: clusters = ", opt.clusters, " must be >= 1");
  detail::require(opt.clusters <= per_head, "rptq: clusters = ", opt.clusters, " exceeds the ", per_head,
                  " channels per head");
  channel_reorder r;
  r.perm.reserve(static_cast<std::size_t>(C));
  const index dims = points.cols;
  for (index h = 0; h < opt.heads; ++h) {
    const matrix_view<const float> head{&points(h * per_head, 0), per_head, dims, points.row_stride, points.col_stride};
    const kmeans_result km = kmeans(head, opt.clusters, opt.kmeans);
    // Spread of a centre: first half of the coordinates are maxima, second half minima.
    auto spread = [&](index c) {
      double s = 0.0;
      for (index d = 0; d < dims; ++d) s += (d < (dims + 1) / 2 ? 1.0 : -1.0) * km.center(c, d);
      return dims == 1 ? km.center(c, 0) : s;
    };
    std::vector<std::vector<std::int32_t>> members(static_cast<std::size_t>(opt.clusters));
    for (index i = 0; i < per_head; ++i)
      members[static_cast<std::size_t>(km.labels[static_cast<std::size_t>(i)])].push_back(static_cast<std::int32_t>(h * per_head + i));
    std::vector<index> order;
    for (index c = 0; c < opt.clusters; ++c)
      if (!members[static_cast<std::size_t>(c)].empty()) order.push_back(c);
    std::sort(order.begin(), order.end(), [&](index a, index b) {
      const double sa = spread(a), sb = spread(b);
      if (sa != sb) return sa < sb;
      return members[static_cast<std::size_t>(a)].front() < members[static_cast<std::size_t>(b)].front();
    });
    for (index c : order) {
      const auto& m = members[static_cast<std::size_t>(c)];
      r.perm.insert(r.perm.end(), m.begin(), m.end());
      r.offsets.push_back(static_cast<index>(r.perm.size()));
    }
  }
  return r;
}

// RPTQ's reorder from calibration ranges: k-means on the per-channel (max, min) points.
inline channel_reorder cluster_channels(const channel_ranges& ranges, const reorder_options& opt = {}) {
  ranges.require_observed();
  const index C = ranges.channels();
  std::vector<float> pts(static_cast<std::size_t>(2 * C));
  for (index c = 0; c < C; ++c) {
    pts[static_cast<std::size_t>(2 * c)] = ranges.max()[static_cast<std::size_t>(c)];
    pts[static_cast<std::size_t>(2 * c + 1)] = ranges.min()[static_cast<std::size_t>(c)];
  }
  return cluster_points(row_major(pts.data(), C, 2), opt);
}

// The static per-cluster activation grid (RPTQ: min of minima and max of maxima inside
// each cluster) at 8, 4 or 3 bits (any 2..8).
inline cluster_activation_grid activation_grid(const channel_ranges& ranges, const channel_reorder& r, int bits) {
  ranges.require_observed();
  detail::require(r.channels() == ranges.channels(), "rptq: the reorder has ", r.channels(),
                  " channels, the ranges ", ranges.channels());
  std::vector<float> lo(static_cast<std::size_t>(r.channels())), hi(lo.size());
  for (std::size_t i = 0; i < lo.size(); ++i) {
    lo[i] = ranges.min()[static_cast<std::size_t>(r.perm[i])];
    hi[i] = ranges.max()[static_cast<std::size_t>(r.perm[i])];
  }
  return cluster_activation_grid::from_ranges(lo, hi, r.offsets, bits);
}

// ---- folding the reorder into neighbouring layers (RPTQ Sec. 3.3) ----
inline void require_reorder_of(const channel_reorder& r, index n, const char* what) {
  detail::require(r.channels() == n, "rptq: ", what, " has ", n, " channels, the reorder ", r.channels());
}

// A producer's per-channel vector (norm weight or bias, a linear's bias): out[i] = v[perm[i]].
inline std::vector<float> permute(std::span<const float> v, const channel_reorder& r) {
  require_reorder_of(r, static_cast<index>(v.size()), "the vector");
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[static_cast<std::size_t>(r.perm[i])];
  return out;
}

// A producing linear's output rows: out.row(i) = W.row(perm[i]) (its outputs come out reordered).
inline Eigen::MatrixXf permute_rows(matrix_view<const float> W, const channel_reorder& r) {
  require_reorder_of(r, W.rows, "the producer's weight (rows)");
  Eigen::MatrixXf out(W.rows, W.cols);
  for (index i = 0; i < W.rows; ++i)
    for (index c = 0; c < W.cols; ++c) out(i, c) = W(r.perm[static_cast<std::size_t>(i)], c);
  return out;
}

// A consuming linear's input columns: out.col(i) = W.col(perm[i]) (it reads reordered inputs).
inline Eigen::MatrixXf permute_columns(matrix_view<const float> W, const channel_reorder& r) {
  require_reorder_of(r, W.cols, "the consumer's weight (columns)");
  Eigen::MatrixXf out(W.rows, W.cols);
  for (index c = 0; c < W.cols; ++c) {
    const index src = r.perm[static_cast<std::size_t>(c)];
    for (index i = 0; i < W.rows; ++i) out(i, c) = W(i, src);
  }
  return out;
}

// ---- weights (RPTQ Sec. 3.4: GPTQ against what the layer will really see) ----

// Q_A(X): a calibration batch [tokens x channels] (reordered) as the integer path sees it.
inline Eigen::MatrixXf fake_quantize_inputs(matrix_view<const float> X, const cluster_activation_grid& g) {
  require_nonempty(X, "rptq: calibration inputs X");
  detail::require(X.cols == g.channels(), "rptq: X has ", X.cols, " channels, the grid ", g.channels());
  Eigen::MatrixXf Q(X.rows, X.cols);
  std::vector<float> row(static_cast<std::size_t>(X.cols));
  for (index t = 0; t < X.rows; ++t) {
    for (index c = 0; c < X.cols; ++c) row[static_cast<std::size_t>(c)] = X(t, c);
    const std::vector<float> q = g.fake_quantize(row);
    for (index c = 0; c < X.cols; ++c) Q(t, c) = q[static_cast<std::size_t>(c)];
  }
  return Q;
}

// Adds a batch [tokens x channels] to the GPTQ Hessian AFTER activation quantization, as
// RPTQ records it (`recorded_quant_input`): H = 2/N · sum_t x_hat_t x_hat_tᵀ.
// (A template, as hessian::add_batch is: the Hessian's GEMMs compile only where it is called.)
template <MatrixInput M>
void add_quantized_batch(hessian& H, const M& X, const cluster_activation_grid& g, double samples = -1.0) {
  H.add_batch_tokens_major(fake_quantize_inputs(to_view(X), g), samples);
}

// RPTQ's weight quantizer without GPTQ (`--w_quantizer normal`): asymmetric min-max RTN, one
// (scale, zero) per (output row, input cluster). W's columns in the reordered order.
inline wxa_matrix rtn_weights(matrix_view<const float> W, int bits, const cluster_activation_grid& g) {
  return wxa_matrix::quantize(W, bits, g);
}

// RPTQ's weight path (`quantize/gptq.py` with cluster_dim = 1): the per-(row, cluster)
// min-max stats are fitted ONCE on the original weights (the reference calls
// weight_quantizer.calibration(W) before the loop), then GPTQ's column loop (method/gptq.hpp,
// the same loop every GPTQ descendant uses) quantizes column j with the stats of its
// cluster and spreads the error. H should come from add_quantized_batch. act_order is
// allowed (the stats are static) but RPTQ does not use it.
template <class HessianLike>
wxa_matrix gptq_weights(matrix_view<const float> W, int bits, const cluster_activation_grid& g, const HessianLike& H,
                        const gptq_options& opt = {}) {
  const wxa_matrix stats_only = wxa_matrix::quantize(W, bits, g);  // validates W, bits and g; RTN stats
  wxa_matrix m(W.rows, W.cols, bits, g);
  for (index r = 0; r < W.rows; ++r)
    for (index s = 0; s < m.segment_count(); ++s) m.set_stat(r, s, stats_only.weight_params(r, s));
  const int maxq = (1 << bits) - 1;
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(W.rows * W.cols));
  struct hook {
    const wxa_matrix& m;
    std::vector<std::uint8_t>& codes;
    int maxq;
    void quantize_column(const detail::gptq_state&, const detail::gptq_column& c, std::span<float> q) {
      const index s = m.segment_of(c.col), cols = m.cols();
      for (index r = 0; r < m.rows(); ++r) {
        const grid_params p = m.weight_params(r, s);
        const std::uint8_t code = encode(c.w[static_cast<std::size_t>(r)], p, maxq);
        codes[static_cast<std::size_t>(r * cols + c.col)] = code;
        q[static_cast<std::size_t>(r)] = decode(code, p);
      }
    }
  } h{m, codes, maxq};
  detail::gptq_problem p = detail::gptq_prepare(W, detail::checked_hessian(detail::hessian_matrix(H), W.cols, "rptq::gptq_weights"),
                                                {}, opt, "rptq::gptq_weights", nullptr);
  detail::gptq_run(p, h, opt);
  for (index r = 0; r < W.rows; ++r)
    m.set_row(r, std::span<const std::uint8_t>(codes.data() + r * W.cols, static_cast<std::size_t>(W.cols)));
  return m;
}

}  // namespace lowbit::rptq
