#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// RTN: round-to-nearest on the uniform grid, group by group (the common baseline of every
// paper here, and the inner quantizer of AWQ and AdaDim-RTN).
#include <chrono>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/detail/policy_set.hpp"
#include "lowbit/method/grid.hpp"
#include "lowbit/method/quantized.hpp"

namespace lowbit::inline LOWBIT_ABI {

// The grid a packed type implies: bits, symmetry and the storage rounding of its stats.
template <PackedMatrix PM>
grid_spec grid_spec_for() {
  grid_spec s;
  s.bits = PM::bits;
  s.symmetric = PM::symmetric;
  if constexpr (!PM::stats_policy::second_level) s.round_stat = &stats_table<typename PM::stats_policy>::round;
  return s;
}

// Fills `pm` (shape and axis already set, no weak columns) with RTN codes and stats of W.
template <ScaleSearch Search, PackedMatrix PM>
void rtn_fill(matrix_view<const float> W, PM& pm) {
  static_assert(!PM::stats_policy::second_level,
                "lowbit::rtn: quantized_stats<> need SpQR's two-level fit (method/spqr.hpp)");
  detail::require(W.rows == pm.rows() && W.cols == pm.cols(), "rtn: matrix is ", W.rows, " x ", W.cols,
                  ", packed target is ", pm.rows(), " x ", pm.cols());
  detail::require(pm.weak_count() == 0, "rtn: the target has weak columns; OWQ fills those");
  const grid_spec spec = grid_spec_for<PM>();
  const index G = pm.group_size();
  const int maxq = spec.maxq();
  if (pm.group_axis() == axis::oc) {
    parallel_for(W.rows, 16, [&](index r0, index r1) {
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(W.cols));
      for (index r = r0; r < r1; ++r) {
        for (index c0 = 0; c0 < W.cols; c0 += G) {
          const index n = std::min(G, W.cols - c0);
          const grid_params p = fit_group<Search>({&W(r, c0), n, W.col_stride}, spec);
          pm.stats().set(pm.stat_index(r, c0), p);
          for (index c = c0; c < c0 + n; ++c) codes[static_cast<std::size_t>(c)] = encode(W(r, c), p, maxq);
        }
        pm.set_row_codes(r, codes);
      }
    });
  } else {
    // Per-IC: groups run down a column. Fit stats column by column, collect codes row-major.
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(W.rows * W.cols));
    parallel_for(W.cols, 16, [&](index c0, index c1) {
      for (index c = c0; c < c1; ++c)
        for (index r0 = 0; r0 < W.rows; r0 += G) {
          const index n = std::min(G, W.rows - r0);
          const grid_params p = fit_group<Search>({&W(r0, c), n, W.row_stride}, spec);
          pm.stats().set(pm.stat_index(r0, c), p);
          for (index r = r0; r < r0 + n; ++r)
            codes[static_cast<std::size_t>(r * W.cols + c)] = encode(W(r, c), p, maxq);
        }
    });
    parallel_for(W.rows, 64, [&](index r0, index r1) {
      for (index r = r0; r < r1; ++r)
        pm.set_row_codes(r, std::span<const std::uint8_t>(codes.data() + r * W.cols, static_cast<std::size_t>(W.cols)));
    });
  }
}

// Validates a weight matrix before any method touches it.
inline void require_valid_weights(matrix_view<const float> W) {
  require_nonempty(W, "weight matrix W");
  require_finite(W, "weight matrix W");
}

template <class... Policies>
struct rtn {
  using policies = detail::policy_set<Policies...>;
  using packed_type = packed_matrix<typename policies::bit_width, typename policies::grouping,
                                    typename policies::outliers, typename policies::stats,
                                    typename policies::zero_point>;
  static_assert(std::is_same_v<typename policies::outliers, no_outliers>,
                "lowbit::rtn fills no outlier store: use owq<> for dense_columns or spqr<> for "
                "sparse_outliers (or gptq<> with them)");
  static_assert(policies::grouping::group_axis != axis::adaptive,
                "lowbit::rtn: group<adaptive, N> is chosen by adadim<rtn<...>>; give rtn oc or ic");

  static quantized<packed_type> run(matrix_view<const float> W) {
    const auto t0 = std::chrono::steady_clock::now();
    require_valid_weights(W);
    packed_type pm(W.rows, W.cols);
    rtn_fill<typename policies::search>(W, pm);
    quant_report rep;
    rep.method = "rtn";
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return quantized<packed_type>(std::move(pm), std::move(rep));
  }
};

}  // namespace lowbit
