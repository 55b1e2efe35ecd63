#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The policy families in one place, and `Policy`: anything a method accepts in its list.
#include "lowbit/policy/bits.hpp"
#include "lowbit/policy/group.hpp"
#include "lowbit/policy/outliers.hpp"
#include "lowbit/policy/scale_search.hpp"
#include "lowbit/policy/stats.hpp"
#include "lowbit/policy/symmetry.hpp"

namespace lowbit::inline LOWBIT_ABI {

template <class T>
concept Policy = BitWidth<T> || GroupPolicy<T> || OutlierStore<T> || ScaleSearch<T> ||
                 StatsStorage<T> || ZeroPointPolicy<T>;

}  // namespace lowbit
