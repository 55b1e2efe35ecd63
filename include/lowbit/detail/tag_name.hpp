#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// tag_name(...): the compile-time name of a parameterised policy tag ("bits<4>",
// "group<oc, 128>", "quantized_stats<3, 16>"), so every tag has a `name` the file format and
// the CLI can print and compare, without building strings at run time.
#include <array>
#include <cstddef>

namespace lowbit::inline LOWBIT_ABI::detail {

inline constexpr std::size_t tag_name_capacity = 48;
using tag_name_text = std::array<char, tag_name_capacity>;

struct tag_name_builder {
  tag_name_text text{};
  std::size_t n = 0;
  constexpr void add(const char* s) {
    for (; *s != '\0'; ++s) text[n++] = *s;  // a too long name fails constant evaluation
  }
  constexpr void add(int v) {
    if (v < 0) {
      text[n++] = '-';
      v = -v;
    }
    char digits[12]{};
    int k = 0;
    do {
      digits[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v > 0);
    while (k > 0) text[n++] = digits[--k];
  }
};

template <class... Parts>
constexpr tag_name_text tag_name(Parts... parts) {
  tag_name_builder b;
  (b.add(parts), ...);
  b.text[b.n] = '\0';
  return b.text;
}

}  // namespace lowbit::detail
