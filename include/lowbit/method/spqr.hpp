#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// SpQR: sparse-quantized representation (Dettmers, Svirschevski, Egiazarian, Kuznedelev,
// Frantar, Ashkboos, Borzunov, Hoefler, Alistarh, "SpQR: A Sparse-Quantized Representation for
// Near-Lossless LLM Weight Compression", 2023; code Vahe1994/SpQR spqr_engine.py,
// quant_groups.py).
//
// GPTQ's column loop (method/gptq.hpp, the shared engine) with SpQR's column hook:
//   1. tiny groups: β₁ consecutive input columns IN PROCESSING ORDER (act-order by default)
//      per output row, fitted when the loop reaches the group (on the error-compensated
//      weights) with a min-max asymmetric grid that does NOT force 0 into the range and keeps
//      the zero fractional (quant_groups.py, round_zero = False):
//        scale = (max - min) / maxq, zero = -min / scale,
//        q = clamp(round(w / scale + zero), 0, maxq), ŵ = scale · (q - zero);
//   2. second level (format/quantized_stats_table.hpp): the scales and zeros of β₂ consecutive
//      output rows are quantized to 3 bits with fp16 second-level stats; the weights are
//      quantized against the DECODED stats, so the loop compensates their error too;
//   3. outliers, by the OBS sensitivity (w - ŵ)² / U_jj² (paper Eq. 3, U = chol(H⁻¹)ᵀ) against
//        τ = r · mean_j( var_rows(W[:, j]) / U_jj² )   (r = outlier_threshold, default 0.2):
//      at each group start a leave-one-out prescreen (get_leave_one_out_error) gives each
//      weight's reduction of the row-group's U-weighted error if it were left out of the fit;
//      weights with a reduction > τ are replaced by the row mean of the others for the fit.
//      After a column is quantized, weights with ((w - ŵ)/U_jj)² > τ become outliers: lowbit
//      keeps their normal code and stores the fp16 residual w - ŵ in the CSR store (whose values
//      are ADDED to the dequantized weight), so they decode to ŵ + half(w - ŵ) ≈ w and
//      propagate (almost) no error. (The reference stores the code of 0 and the full value.)
//
// Act-order and storage. SpQR's groups are consecutive columns in processing order, so the
// matrix is stored in that order: spqr_matrix<PM> holds a packed_matrix over the permuted
// columns and the permutation (perm[pos] = natural column, uint16, 16 bits per input column,
// counted in bits_per_weight()); gemv/gemm gather x by perm and run the ordinary kernels.
//
// Average bits (main.py get_average_number_of_bits, round_zero = False):
//   w + (3 + 3)/β₁ + 64/(β₁β₂) + 32 · outlier_rate;
// lowbit's bits_per_weight() counts every stored byte: on top of the formula the CSR row
// pointers (32 bits per output row), the permutation (16 bits per input column) and block
// padding (codes are packed in blocks of 32).
//
// Deviations from the reference (docs/spqr.md): dead inputs are handled before damping (the
// shared GPTQ prepare), so the damping mean sees H_jj = 1 for them; a degenerate range
// (max = min) is widened to [min, min + |min|] instead of [-1, 1], so a constant group
// decodes exactly; the LOO prescreen is skipped for a 1-column tail group.
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <sstream>
#include <type_traits>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/detail/policy_set.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/format/quantized_stats_table.hpp"
#include "lowbit/kernel/gemv.hpp"
#include "lowbit/method/gptq.hpp"
#include "lowbit/method/quantized.hpp"

namespace lowbit::inline LOWBIT_ABI {

struct spqr_options {
  double percdamp = 1.0;            // λ = percdamp · mean(diag H): SpQR's README recipe uses 1.0
  index blocksize = 128;            // columns per lazy batch update
  bool act_order = true;            // process (and store) columns by descending H_jj
  double outlier_threshold = 0.2;   // r in τ = r · mean_j(var(W[:, j]) / U_jj²); +inf: no outliers
  bool simplified_outliers = false;  // skip the leave-one-out prescreen (outliers still extracted)
  std::function<void(index done, index total)> progress = nullptr;  // after each block
};

// A SpQR matrix: the packed matrix over the permuted columns plus the permutation.
template <PackedMatrix PM>
class spqr_matrix {
 public:
  using packed_type = PM;

  spqr_matrix() = default;
  // perm[pos] = natural column of stored column pos; empty = identity.
  spqr_matrix(PM inner, std::vector<std::uint16_t> perm) : inner_(std::move(inner)), perm_(std::move(perm)) {
    const index cols = inner_.cols();
    detail::require(perm_.empty() || static_cast<index>(perm_.size()) == cols, "spqr_matrix: the permutation has ",
                    perm_.size(), " entries, expected 0 (identity) or ", cols);
    std::vector<char> seen(static_cast<std::size_t>(cols), 0);
    for (auto c : perm_) {
      detail::require(static_cast<index>(c) < cols && !seen[c], "spqr_matrix: the permutation repeats or exceeds column ",
                      c, " (", cols, " columns)");
      seen[c] = 1;
    }
  }

  index rows() const { return inner_.rows(); }
  index cols() const { return inner_.cols(); }
  const PM& packed() const { return inner_; }
  PM& packed() { return inner_; }
  std::span<const std::uint16_t> permutation() const { return perm_; }

  index outlier_count() const { return inner_.outliers().sparse_entries(); }
  double outlier_rate() const {
    return static_cast<double>(outlier_count()) / (static_cast<double>(rows()) * static_cast<double>(cols()));
  }

  // The float matrix in natural column order.
  Eigen::MatrixXf dequantize() const {
    const Eigen::MatrixXf P = inner_.dequantize();
    if (perm_.empty()) return P;
    Eigen::MatrixXf out(P.rows(), P.cols());
    for (index pos = 0; pos < P.cols(); ++pos) out.col(perm_[static_cast<std::size_t>(pos)]) = P.col(pos);
    return out;
  }

  // y = Ŵ x: x gathered into processing order, then the packed matrix's kernels.
  void gemv(std::span<const float> x, std::span<float> y, const gemm_options& opt = {}) const {
    detail::require(static_cast<index>(x.size()) == cols(), "spqr gemv: x has ", x.size(), " entries, W has ", cols(),
                    " columns");
    lowbit::gemv(inner_, gathered(x.data(), 1), y, opt);
  }
  // Y = X · Ŵᵀ for m rows of X [m x cols], row-major.
  void gemm(std::span<const float> X, std::span<float> Y, index m, const gemm_options& opt = {}) const {
    detail::require(m >= 1 && static_cast<index>(X.size()) == m * cols(), "spqr gemm: X has ", X.size(),
                    " entries, expected m * cols = ", m * cols());
    lowbit::gemm(inner_, gathered(X.data(), m), Y, m, opt);
  }

  std::size_t stored_bytes() const { return inner_.stored_bytes() + perm_.size() * sizeof(std::uint16_t); }
  double bits_per_weight() const {
    return 8.0 * static_cast<double>(stored_bytes()) / (static_cast<double>(rows()) * static_cast<double>(cols()));
  }

 private:
  std::span<const float> gathered(const float* X, index m) const {
    const index n = cols();
    if (perm_.empty()) return {X, static_cast<std::size_t>(m * n)};
    thread_local std::vector<float> buf;
    buf.resize(static_cast<std::size_t>(m * n));
    for (index i = 0; i < m; ++i)
      for (index pos = 0; pos < n; ++pos)
        buf[static_cast<std::size_t>(i * n + pos)] = X[i * n + perm_[static_cast<std::size_t>(pos)]];
    return buf;
  }

  PM inner_;
  std::vector<std::uint16_t> perm_;
};

// What quantize<spqr<...>> returns: the matrix and how it was made.
template <PackedMatrix PM>
struct spqr_quantized : spqr_matrix<PM> {
  quant_report report;
  spqr_quantized() = default;
  spqr_quantized(spqr_matrix<PM> m, quant_report r) : spqr_matrix<PM>(std::move(m)), report(std::move(r)) {
    report.bits_per_weight = spqr_matrix<PM>::bits_per_weight();
  }
};

namespace detail {

// SpQR's first-level fit of one row-group (fp32, no storage rounding: the second level or
// the fp16 table rounds afterwards).
inline grid_params spqr_fit_first(const float* w, index n, int maxq, float min_rel_width) {
  float lo = w[0], hi = w[0];
  for (index i = 1; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  return spqr_grid(lo, hi, maxq, keep_float, min_rel_width);
}

// Sum over the group of ((Q(w_k) - w_k) / d_k)² for the grid fitted on the group without
// weight `skip` (skip = -1: on all of it), summed over the weights other than `skip`.
inline double spqr_group_error(const float* w, const float* d, index n, index skip, int maxq, float* tmp) {
  index m = 0;
  for (index k = 0; k < n; ++k)
    if (k != skip) tmp[m++] = w[k];
  const grid_params p = spqr_fit_first(tmp, m, maxq, 0.0f);
  double e = 0.0;
  for (index k = 0; k < n; ++k) {
    if (k == skip) continue;
    const float r = (decode(spqr_encode(w[k], p, maxq), p) - w[k]) / d[k];
    e += static_cast<double>(r) * static_cast<double>(r);
  }
  return e;
}

// The GPTQ column hook of SpQR (see the header comment).
template <PackedMatrix PM>
class spqr_hook {
 public:
  spqr_hook(PM& pm, float tau, bool prescreen)
      : pm_(pm), tau_(tau), prescreen_(prescreen && std::isfinite(tau)), outliers_on_(std::isfinite(tau)),
        rows_(pm.rows()), cols_(pm.cols()), codes_(static_cast<std::size_t>(rows_ * cols_)),
        params_(static_cast<std::size_t>(rows_)), scales_(static_cast<std::size_t>(rows_)),
        zeros_(static_cast<std::size_t>(rows_)), outliers_(static_cast<std::size_t>(rows_)) {}

  void quantize_column(const gptq_state& s, const gptq_column& c, std::span<float> q) {
    const index G = pm_.group_size();
    if (c.pos % G == 0) fit_group(s, c.pos, std::min(G, s.n_quant - c.pos));
    const float d = c.d;
    for (index r = 0; r < rows_; ++r) {
      const grid_params p = params_[static_cast<std::size_t>(r)];
      const float w = c.w[static_cast<std::size_t>(r)];
      const std::uint8_t code = spqr_encode(w, p, maxq);
      codes_[static_cast<std::size_t>(r * cols_ + c.pos)] = code;
      const float w_hat = decode(code, p);
      float out = w_hat;
      if (outliers_on_) {
        const float e = (w - w_hat) / d;
        if (e * e > tau_) {
          const half residual(w - w_hat);
          out = w_hat + residual.to_float();
          outliers_[static_cast<std::size_t>(r)].push_back({static_cast<std::uint16_t>(c.pos), residual});
        }
      }
      q[static_cast<std::size_t>(r)] = out;
    }
  }

  // Packs codes and the CSR store into pm; returns the outlier count.
  index finish() {
    parallel_for(rows_, 64, [&](index r0, index r1) {
      for (index r = r0; r < r1; ++r)
        pm_.set_row_codes(r, std::span<const std::uint8_t>(codes_.data() + r * cols_, static_cast<std::size_t>(cols_)));
    });
    index total = 0;
    if constexpr (std::is_same_v<typename PM::outlier_policy, sparse_outliers>) {
      auto& o = pm_.outliers();
      o.row_ptr.assign(static_cast<std::size_t>(rows_) + 1, 0u);
      for (index r = 0; r < rows_; ++r) {
        for (const auto& e : outliers_[static_cast<std::size_t>(r)]) {
          o.col.push_back(e.col);
          o.values.push_back(e.value);
        }
        o.row_ptr[static_cast<std::size_t>(r) + 1] = static_cast<std::uint32_t>(o.col.size());
      }
      total = o.count();
    }
    return total;
  }

 private:
  static constexpr int maxq = PM::max_code;
  static constexpr bool second_level = PM::stats_policy::second_level;
  struct entry {
    std::uint16_t col;
    half value;
  };

  void fit_group(const gptq_state& s, index pos, index n) {
    std::vector<float> d(static_cast<std::size_t>(n));
    for (index k = 0; k < n; ++k) d[static_cast<std::size_t>(k)] = s.U(pos + k, pos + k);
    // fp16_stats store scale and zero in fp16: keep the zero representable (see spqr_grid).
    const float min_rel = second_level ? 0.0f : fp16_min_rel_width(maxq);
    parallel_for(rows_, 32, [&](index r0, index r1) {
      std::vector<float> g(static_cast<std::size_t>(n)), tmp(static_cast<std::size_t>(n));
      std::vector<char> likely(static_cast<std::size_t>(n));
      for (index r = r0; r < r1; ++r) {
        for (index k = 0; k < n; ++k) g[static_cast<std::size_t>(k)] = s.W(r, pos + k);
        if (prescreen_ && n >= 2) {
          // get_leave_one_out_error: base error minus the error without weight k.
          const double base = spqr_group_error(g.data(), d.data(), n, -1, maxq, tmp.data());
          double keep_sum = 0.0;
          index keep_n = 0;
          for (index k = 0; k < n; ++k) {
            const double gain = base - spqr_group_error(g.data(), d.data(), n, k, maxq, tmp.data());
            likely[static_cast<std::size_t>(k)] = gain > static_cast<double>(tau_);
            if (!likely[static_cast<std::size_t>(k)]) {
              keep_sum += g[static_cast<std::size_t>(k)];
              ++keep_n;
            }
          }
          if (keep_n > 0 && keep_n < n) {
            const float mean = static_cast<float>(keep_sum / static_cast<double>(keep_n));
            for (index k = 0; k < n; ++k)
              if (likely[static_cast<std::size_t>(k)]) g[static_cast<std::size_t>(k)] = mean;
          }
        }
        const grid_params p = spqr_fit_first(g.data(), n, maxq, min_rel);
        scales_[static_cast<std::size_t>(r)] = p.scale;
        zeros_[static_cast<std::size_t>(r)] = p.zero;
      }
    });
    if constexpr (second_level) {
      pm_.stats().set_column(pos / pm_.group_size(), scales_, zeros_);
    } else {
      for (index r = 0; r < rows_; ++r)
        pm_.stats().set(pm_.stat_index(r, pos), grid_params{scales_[static_cast<std::size_t>(r)], zeros_[static_cast<std::size_t>(r)]});
    }
    for (index r = 0; r < rows_; ++r) params_[static_cast<std::size_t>(r)] = pm_.params(r, pos);
  }

  PM& pm_;
  float tau_;
  bool prescreen_, outliers_on_;
  index rows_, cols_;
  std::vector<std::uint8_t> codes_;
  std::vector<grid_params> params_;
  std::vector<float> scales_, zeros_;
  std::vector<std::vector<entry>> outliers_;
};

// τ = r · mean_j( var_rows(W[:, j]) / U_jj² ), unbiased variance over the output rows of the
// prepared (permuted, dead-zeroed) weights. +inf when there is no variance to estimate.
inline double spqr_tau(const gptq_problem& p, double r) {
  const index rows = p.W.rows(), cols = p.W.cols();
  if (!std::isfinite(r) || rows < 2) return std::numeric_limits<double>::infinity();
  double acc = 0.0;
  for (index j = 0; j < cols; ++j) {
    const double mean = p.W.col(j).cast<double>().mean();
    const double var = (p.W.col(j).cast<double>().array() - mean).square().sum() / static_cast<double>(rows - 1);
    const double d = p.U(j, j);
    acc += var / (d * d);
  }
  return r * acc / static_cast<double>(cols);
}

template <PackedMatrix PM>
spqr_quantized<PM> spqr_quantize(matrix_view<const float> W, const Eigen::MatrixXd& H_in, const spqr_options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  require_valid_weights(W);
  require(W.cols <= 65536, "spqr: W has ", W.cols, " input columns; the permutation and outlier columns are uint16 (<= 65536)");
  require(!std::isnan(opt.outlier_threshold) && opt.outlier_threshold >= 0.0, "spqr: outlier_threshold is ",
          opt.outlier_threshold, "; expected >= 0 (default 0.2; +inf disables outliers)");
  Eigen::MatrixXd H = checked_hessian(H_in, W.cols, "spqr");
  gptq_options g;
  g.percdamp = opt.percdamp;
  g.blocksize = opt.blocksize;
  g.act_order = opt.act_order;
  g.max_percdamp = std::max(opt.percdamp, 1.0);
  g.progress = opt.progress;
  gptq_problem p = gptq_prepare(W, std::move(H), {}, g, "spqr");

  const double tau = spqr_tau(p, opt.outlier_threshold);
  PM pm(W.rows, W.cols, axis::oc);
  spqr_hook<PM> hook(pm, static_cast<float>(tau), !opt.simplified_outliers);
  const double loss = gptq_run(p, hook, g);
  const index n_out = hook.finish();

  std::vector<std::uint16_t> perm;
  if (opt.act_order) {
    perm.resize(p.order.size());
    for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<std::uint16_t>(p.order[i]);
  }
  spqr_matrix<PM> m(std::move(pm), std::move(perm));
  quant_report rep;
  rep.method = "spqr";
  rep.loss = loss;
  std::ostringstream notes;
  notes << "outliers=" << n_out << " outlier_rate=" << m.outlier_rate() << " tau=" << tau
        << " outlier_threshold=" << opt.outlier_threshold << " simplified_outliers=" << opt.simplified_outliers
        << " percdamp=" << p.percdamp << (p.damping_raised ? " (raised: H + λI was not positive definite)" : "")
        << " blocksize=" << opt.blocksize << " act_order=" << opt.act_order << " dead_columns=" << p.dead;
  rep.notes = notes.str();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return spqr_quantized<PM>(std::move(m), std::move(rep));
}

}  // namespace detail

// spqr<bits<B>, [group<oc, β₁>], [quantized_stats<bits, β₂> | fp16_stats], [sparse_outliers]>
//   lowbit::quantize<spqr<bits<3>>>(W, H, spqr_options{})        // β₁ = β₂ = 16, 3-bit stats
// Defaults: group<oc, 16>, quantized_stats<3, 16>, sparse_outliers, asymmetric, minmax.
template <class... Policies>
struct spqr {
  using policies = detail::policy_set<Policies...>;
  using grouping = std::conditional_t<policies::template has<detail::is_group>,
                                      typename policies::grouping, group<axis::oc, 16>>;
  using stats = std::conditional_t<policies::template has<detail::is_stats_storage>,
                                   typename policies::stats, quantized_stats<3, 16>>;
  static_assert(grouping::group_axis == axis::oc,
                "lowbit::spqr<>: SpQR's tiny groups run along the input columns of each output row; use group<oc, N> "
                "(per-IC and adaptive groups are not supported)");
  static_assert(!std::is_same_v<typename policies::outliers, dense_columns>,
                "lowbit::spqr<> stores unstructured outliers (sparse_outliers, implied); dense_columns belong to owq<...>");
  static_assert(!policies::zero_point::is_symmetric,
                "lowbit::spqr<>: SpQR's grids are asymmetric (fractional zeros); drop `symmetric`");
  static_assert(!policies::search::searches,
                "lowbit::spqr<>: SpQR fits min-max grids (outliers are handled by the sparse store); drop mse_clip<>");
  static_assert(!std::is_same_v<stats, fp32_stats>, "lowbit::spqr<>: use quantized_stats<> (default) or fp16_stats");
  using packed_type = packed_matrix<typename policies::bit_width, grouping, sparse_outliers, stats, asymmetric>;
  using result_type = spqr_quantized<packed_type>;

  static result_type run(matrix_view<const float> W, const hessian& H, const spqr_options& opt = {}) {
    return detail::spqr_quantize<packed_type>(W, detail::hessian_matrix(H), opt);
  }
  template <class D>
  static result_type run(matrix_view<const float> W, const Eigen::MatrixBase<D>& H, const spqr_options& opt = {}) {
    return detail::spqr_quantize<packed_type>(W, detail::hessian_matrix(H), opt);
  }
};

}  // namespace lowbit
