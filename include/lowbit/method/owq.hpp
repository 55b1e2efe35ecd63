#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// OWQ: outlier-aware weight quantization (Lee, Jin, Kim, Kim, Park, "OWQ: Outlier-Aware
// Weight Quantization for Efficient Fine-Tuning and Inference of Large Language Models",
// AAAI 2024; code xvyaward/owq).
//
// A few input channels carry activation outliers; the weights that multiply them dominate
// the output error. OWQ keeps the k most sensitive input columns ("weak columns") in fp16 and
// quantizes the rest with GPTQ:
//   1. sensitivity s_j = H_jj · ‖W[:, j] − RTN(W)[:, j]‖² (paper Eq. 5: λ_j ‖ΔW_:,j‖², the
//      RTN with the "mse" range search; `recon.py hessian_sorting`);
//   2. the top-k columns are weak: excluded from every group's range, placed LAST in GPTQ's
//      order so that they absorb the error updates of all quantized columns, then stored in
//      fp16 with their compensated values (not the originals);
//   3. k from an average-bits target or given explicitly, rounded up to even (the reference's
//      half2 kernels need an even count).
//   quantize<owq<bits<3>, group<oc, per_channel>, mse_range_zero<>>>(W, H, owq_options{.target_bits = 3.01})
// (mse_range_zero<>: the reference's "mse" tuning, a joint range × zero-point grid; its
// default with --target_bit.)
// owq<...> implies the dense_columns store (writing it is allowed, sparse_outliers is not).
//
// Bits accounting. `target_bits` is the EXACT average of the packed matrix: codes (block
// padding included), scales and zeros, fp16 weak columns and their int32 indices, as
// packed_matrix::bits_per_weight() counts them. The reference counts only codes and fp16
// columns, so its "3.01" is 0.01 bit above the plain 3-bit codes; `extra_bits = 0.01` asks
// for exactly that on top of this packed format without weak columns.
// `ratio` scales k per layer (the reference uses 1.0 for attention projections and 0.375 for
// the MLP of LLaMA, 0.25 for OPT's fc1/fc2).
#include <Eigen/Core>
#include <algorithm>
#include <numeric>
#include <sstream>
#include <type_traits>
#include <vector>

#include "lowbit/method/gptq.hpp"
#include "lowbit/method/rtn.hpp"

namespace lowbit::inline LOWBIT_ABI {

struct owq_options {
  double target_bits = 0.0;  // exact average bits per weight of the result (0: unused)
  double extra_bits = 0.0;   // or: bits above the same packed format with no weak column (0: unused)
  index weak_columns = -1;   // or: an explicit k (rounded up to even); -1: unused
  double ratio = 1.0;        // per-layer multiplier of the k the budget gives
  gptq_options gptq;         // the GPTQ run on the other columns
};

namespace detail {

// s_j = H_jj · ‖W[:, j] − RTN_mse(W)[:, j]‖², with RTN on the method's grid and groups.
template <class RtnMethod>
std::vector<double> owq_sensitivity(matrix_view<const float> W, const Eigen::MatrixXd& H) {
  const Eigen::MatrixXf Q = RtnMethod::run(W).dequantize();
  std::vector<double> s(static_cast<std::size_t>(W.cols), 0.0);
  parallel_for(W.cols, 16, [&](index c0, index c1) {
    for (index c = c0; c < c1; ++c) {
      double e = 0.0;
      for (index r = 0; r < W.rows; ++r) {
        const double d = static_cast<double>(W(r, c)) - static_cast<double>(Q(r, c));
        e += d * d;
      }
      s[static_cast<std::size_t>(c)] = H(c, c) * e;
    }
  });
  return s;
}

}  // namespace detail

template <class... Policies>
struct owq {
  using policies = detail::policy_set<Policies...>;
  static_assert(!std::is_same_v<typename policies::outliers, sparse_outliers>,
                "lowbit::owq<> stores weak columns (dense_columns), not sparse outliers; use spqr<...> for those");
  static_assert(!policies::stats::second_level,
                "lowbit::owq<>: quantized_stats<> need SpQR's two-level fit; use fp16_stats or fp32_stats");
  static_assert(policies::grouping::group_axis != axis::adaptive,
                "lowbit::owq<>: group<adaptive, N> is chosen by adadim<owq<...>>; give owq oc or ic");
  using packed_type = packed_matrix<typename policies::bit_width, typename policies::grouping, dense_columns,
                                    typename policies::stats, typename policies::zero_point>;
  // The RTN of the sensitivity metric: the same grid and groups and the method's own range
  // search (the reference's quantizer), or mse_clip<> when the method has none (minmax).
  using sensitivity_search = std::conditional_t<policies::search::searches, typename policies::search, mse_clip<>>;
  using sensitivity_rtn = rtn<typename policies::bit_width, typename policies::grouping, sensitivity_search,
                              typename policies::stats, typename policies::zero_point>;

  // Exact bits per weight of a rows x cols result with k weak columns.
  static double bits_per_weight(index rows, index cols, index k) {
    std::vector<std::int32_t> weak(static_cast<std::size_t>(k));
    std::iota(weak.begin(), weak.end(), 0);
    return packed_type(rows, cols, policies::grouping::group_axis, std::move(weak)).bits_per_weight();
  }

  // The number of weak columns options ask for on a rows x cols matrix (even, < cols).
  static index weak_count(index rows, index cols, const owq_options& opt) {
    const int given = (opt.target_bits > 0.0) + (opt.extra_bits > 0.0) + (opt.weak_columns >= 0);
    detail::require(given == 1, "owq: give exactly one of owq_options::target_bits, extra_bits or weak_columns (got ",
                    given, ")");
    detail::require(opt.ratio >= 0.0 && std::isfinite(opt.ratio), "owq: ratio is ", opt.ratio, "; expected >= 0");
    const index max_k = ((cols - 1) / 2) * 2;  // leave at least one quantized column
    index k = 0;
    if (opt.weak_columns >= 0) {
      k = opt.weak_columns;
    } else {
      const double base = bits_per_weight(rows, cols, 0);
      const double target = opt.target_bits > 0.0 ? opt.target_bits : base + opt.extra_bits;
      detail::require(target >= base, "owq: target_bits ", target, " is below ", base,
                      ", the size of this packed format with no weak column (codes + stats; see docs/owq.md)");
      // Largest even k within the budget (bits_per_weight grows with k: a 16-bit column replaces
      // a b-bit one).
      index lo = 0, hi = max_k / 2;
      while (lo < hi) {
        const index mid = (lo + hi + 1) / 2;
        if (bits_per_weight(rows, cols, 2 * mid) <= target) lo = mid;
        else hi = mid - 1;
      }
      k = 2 * lo;
    }
    k = static_cast<index>(std::llround(static_cast<double>(k) * opt.ratio));
    if (k % 2) ++k;
    detail::require(k <= max_k, "owq: ", k, " weak columns leave too few of the ", cols, " columns to quantize");
    return k;
  }

  static quantized<packed_type> run(matrix_view<const float> W, const hessian& H, const owq_options& opt) {
    return run_impl(W, detail::hessian_matrix(H), opt);
  }
  template <class D>
  static quantized<packed_type> run(matrix_view<const float> W, const Eigen::MatrixBase<D>& H, const owq_options& opt) {
    return run_impl(W, detail::hessian_matrix(H), opt);
  }

 private:
  static quantized<packed_type> run_impl(matrix_view<const float> W, const Eigen::MatrixXd& H_in,
                                         const owq_options& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    require_valid_weights(W);
    const Eigen::MatrixXd H = detail::checked_hessian(H_in, W.cols, "owq");
    const index k = weak_count(W.rows, W.cols, opt);
    const std::vector<double> s = detail::owq_sensitivity<sensitivity_rtn>(W, H);
    std::vector<index> by_sens(static_cast<std::size_t>(W.cols));
    std::iota(by_sens.begin(), by_sens.end(), 0);
    std::stable_sort(by_sens.begin(), by_sens.end(),
                     [&](index a, index b) { return s[static_cast<std::size_t>(a)] > s[static_cast<std::size_t>(b)]; });
    // Most sensitive first, as the reference appends desc[:k].
    const std::vector<index> weak(by_sens.begin(), by_sens.begin() + k);
    auto q = detail::gptq_quantize<packed_type, typename policies::search>(W, H, weak, opt.gptq, "owq");
    std::ostringstream notes;
    notes << "weak_columns=" << k << " bits_per_weight=" << q.bits_per_weight() << "; " << q.report.notes;
    q.report.notes = notes.str();
    q.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return q;
  }
};

}  // namespace lowbit
