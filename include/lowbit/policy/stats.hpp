#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// StatsStorage policies: how the per-group scales and zeros are stored.
//   fp16_stats  one fp16 scale (+ fp16 zero when asymmetric) per group (default);
//   fp32_stats  the same in fp32;
//   quantized_stats<Bits, Rows>  SpQR's second level: the group scales and zeros are
//               themselves quantized to `Bits` bits in groups of `Rows` consecutive stats,
//               each such group with its own fp16 scale and zero (filled by method/spqr.hpp).
#include <concepts>

#include "lowbit/detail/tag_name.hpp"

namespace lowbit::inline LOWBIT_ABI {

struct fp16_stats {
  static constexpr const char* name = "fp16_stats";
  static constexpr int storage_bits = 16;
  static constexpr bool second_level = false;
};
struct fp32_stats {
  static constexpr const char* name = "fp32_stats";
  static constexpr int storage_bits = 32;
  static constexpr bool second_level = false;
};
template <int Bits = 3, int Rows = 16>
struct quantized_stats {
  static_assert(Bits >= 2 && Bits <= 8, "lowbit::quantized_stats<Bits, Rows>: Bits must be 2..8");
  static_assert(Rows >= 2 && (Rows & (Rows - 1)) == 0,
                "lowbit::quantized_stats<Bits, Rows>: Rows must be a power of two >= 2");
  static constexpr int storage_bits = Bits;
  static constexpr int rows = Rows;
  static constexpr bool second_level = true;
  static constexpr detail::tag_name_text name_text = detail::tag_name("quantized_stats<", Bits, ", ", Rows, ">");
  static constexpr const char* name = name_text.data();
};

template <class T>
concept StatsStorage = requires {
  { T::storage_bits } -> std::convertible_to<int>;
  { T::second_level } -> std::convertible_to<bool>;
};

}  // namespace lowbit
