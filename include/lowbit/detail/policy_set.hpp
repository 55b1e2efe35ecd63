#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// policy_set<Ps...>: reads an unordered list of policy tags (as users write them:
// rtn<bits<4>, group<oc, 128>, symmetric>) into named members with defaults, and rejects
// an unknown tag or a family given twice with one readable static_assert.
#include <type_traits>

#include "lowbit/policy/concepts.hpp"

namespace lowbit::inline LOWBIT_ABI::detail {

template <class T> struct is_bit_width : std::bool_constant<BitWidth<T>> {};
template <class T> struct is_group : std::bool_constant<GroupPolicy<T>> {};
template <class T> struct is_outlier_store : std::bool_constant<OutlierStore<T>> {};
template <class T> struct is_scale_search : std::bool_constant<ScaleSearch<T>> {};
template <class T> struct is_stats_storage : std::bool_constant<StatsStorage<T>> {};
template <class T> struct is_zero_point : std::bool_constant<ZeroPointPolicy<T>> {};

// First P with Pred<P>, else Default.
template <template <class> class Pred, class Default, class... Ps>
struct pick_policy { using type = Default; };
template <template <class> class Pred, class Default, class P, class... Ps>
struct pick_policy<Pred, Default, P, Ps...> {
  using type = std::conditional_t<Pred<P>::value, P,
                                  typename pick_policy<Pred, Default, Ps...>::type>;
};

template <template <class> class Pred, class... Ps>
inline constexpr int count_policy = (0 + ... + (Pred<Ps>::value ? 1 : 0));

template <class... Ps>
struct policy_set {
  static_assert((Policy<Ps> && ...),
                "lowbit: a method's template arguments must be policies: bits<N>, group<axis, N>, "
                "symmetric/asymmetric, minmax/mse_clip<>/mse_range_zero<>, fp16_stats/fp32_stats/quantized_stats<>, "
                "no_outliers/dense_columns/sparse_outliers; a search of your own needs name, searches and "
                "static grid_params fit(weight_run, const grid_spec&) (policy/scale_search.hpp)");
  static_assert(count_policy<is_bit_width, Ps...> <= 1, "lowbit: bits<N> is given more than once");
  static_assert(count_policy<is_group, Ps...> <= 1, "lowbit: group<axis, N> is given more than once");
  static_assert(count_policy<is_outlier_store, Ps...> <= 1,
                "lowbit: only one outlier store (dense_columns or sparse_outliers) per matrix");
  static_assert(count_policy<is_scale_search, Ps...> <= 1,
                "lowbit: only one scale search (minmax, mse_clip<> or mse_range_zero<>) per method");
  static_assert(count_policy<is_stats_storage, Ps...> <= 1,
                "lowbit: only one stats storage (fp16_stats, fp32_stats or quantized_stats<>)");
  static_assert(count_policy<is_zero_point, Ps...> <= 1,
                "lowbit: symmetric and asymmetric exclude each other");

  using bit_width = typename pick_policy<is_bit_width, bits<4>, Ps...>::type;
  using grouping = typename pick_policy<is_group, group<axis::oc, 128>, Ps...>::type;
  using outliers = typename pick_policy<is_outlier_store, no_outliers, Ps...>::type;
  using search = typename pick_policy<is_scale_search, minmax, Ps...>::type;
  using stats = typename pick_policy<is_stats_storage, fp16_stats, Ps...>::type;
  using zero_point = typename pick_policy<is_zero_point, asymmetric, Ps...>::type;

  template <template <class> class Pred>
  static constexpr bool has = count_policy<Pred, Ps...> > 0;
};

}  // namespace lowbit::detail
