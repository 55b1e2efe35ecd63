#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// BitWidth policy: how many bits each stored weight code has.
#include <array>
#include <concepts>
#include <cstddef>
#include <string_view>

#include "lowbit/detail/tag_name.hpp"

namespace lowbit::inline LOWBIT_ABI {

// The one list of bit widths with a packed layout (format/bit_layout.hpp has one per entry)
// and kernels. Every check and every message about widths reads it: is_supported_bit_width,
// supported_bit_widths_text ("2, 3, 4 or 8"), visit_bit_width (format/bit_layout.hpp).
// 3 bits is stored densely (bit planes 2+1), never padded to 4.
inline constexpr std::array<int, 4> supported_bit_widths{2, 3, 4, 8};

inline constexpr bool is_supported_bit_width(int n) {
  for (const int b : supported_bit_widths)
    if (b == n) return true;
  return false;
}

namespace detail {
constexpr tag_name_text bit_widths_text() {
  tag_name_builder b;
  for (std::size_t i = 0; i < supported_bit_widths.size(); ++i) {
    if (i > 0) b.add(i + 1 == supported_bit_widths.size() ? " or " : ", ");
    b.add(supported_bit_widths[i]);
  }
  b.text[b.n] = '\0';
  return b.text;
}
inline constexpr tag_name_text supported_bit_widths_storage = bit_widths_text();
}  // namespace detail

// "2, 3, 4 or 8", spelled from the list, for error messages.
inline constexpr const char* supported_bit_widths_text = detail::supported_bit_widths_storage.data();

template <int N>
struct bits {
  // A static_assert message must be a literal in C++20; the check below it keeps the literal
  // equal to the list.
  static_assert(is_supported_bit_width(N),
                "lowbit::bits<N>: N must be 2, 3, 4 or 8 (the widths lowbit packs and runs)");
  static_assert(std::string_view(detail::supported_bit_widths_storage.data()) == "2, 3, 4 or 8",
                "lowbit: supported_bit_widths changed; update the literal in bits<N>'s message");
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
