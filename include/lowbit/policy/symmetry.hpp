#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Zero-point policy. Asymmetric grids store a zero per group (GPTQ/AWQ default); symmetric
// grids fix the zero at the middle code and store only a scale.
#include <type_traits>

namespace lowbit::inline LOWBIT_ABI {

struct asymmetric {
  static constexpr const char* name = "asymmetric";
  static constexpr bool is_symmetric = false;
};
struct symmetric {
  static constexpr const char* name = "symmetric";
  static constexpr bool is_symmetric = true;
};

template <class T>
concept ZeroPointPolicy = std::is_same_v<T, asymmetric> || std::is_same_v<T, symmetric>;

}  // namespace lowbit
