#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// BitWidth policy: how many bits each stored weight code has.
#include <concepts>

#include "lowbit/detail/tag_name.hpp"

namespace lowbit::inline LOWBIT_ABI {

// The bit widths with packed formats and kernels. 3 bits is stored densely (bit planes 2+1),
// never padded to 4.
inline constexpr bool is_supported_bit_width(int n) { return n == 2 || n == 3 || n == 4 || n == 8; }

template <int N>
struct bits {
  static_assert(is_supported_bit_width(N),
                "lowbit::bits<N>: N must be 2, 3, 4 or 8 (the widths lowbit packs and runs)");
  static constexpr int value = N;
  static constexpr int levels = 1 << N;
  static constexpr int max_code = levels - 1;
  static constexpr detail::tag_name_text name_text = detail::tag_name("bits<", N, ">");
  static constexpr const char* name = name_text.data();
};

template <class T>
concept BitWidth = requires {
  { T::value } -> std::convertible_to<int>;
  { T::max_code } -> std::convertible_to<int>;
} && is_supported_bit_width(T::value);

}  // namespace lowbit
