#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// GroupPolicy: which weights share one (scale, zero) pair.
//   axis::oc  groups of `Size` consecutive input columns inside one output row (the usual
//             layout of GPTQ/AWQ/llama.cpp);
//   axis::ic  groups of `Size` consecutive output rows inside one input column (AdaDim):
//             an input channel with outlier activations gets scales of its own.
//   axis::adaptive  the axis is chosen per matrix at quantization time (AdaDim's choice) and
//             recorded in the packed matrix; kernels read it at run time.
#include <concepts>
#include <cstdint>

#include "lowbit/detail/tag_name.hpp"

namespace lowbit::inline LOWBIT_ABI {

enum class axis : std::uint8_t { oc = 0, ic = 1, adaptive = 2 };
inline constexpr axis oc = axis::oc;
inline constexpr axis ic = axis::ic;
inline constexpr axis adaptive = axis::adaptive;

inline constexpr const char* axis_name(axis a) {
  return a == axis::oc ? "oc" : a == axis::ic ? "ic" : "adaptive";
}

// A group that spans a whole row (per-OC) or a whole column (per-IC).
inline constexpr int per_channel = 0;

inline constexpr bool is_valid_group_size(int s) {
  return s == per_channel || (s >= 2 && (s & (s - 1)) == 0);
}

template <axis A, int Size>
struct group {
  static_assert(is_valid_group_size(Size),
                "lowbit::group<axis, Size>: Size must be a power of two (>= 2) or per_channel");
  static constexpr lowbit::axis group_axis = A;
  static constexpr int size = Size;
  static constexpr detail::tag_name_text name_text =
      Size == per_channel ? detail::tag_name("group<", axis_name(A), ", per_channel>")
                          : detail::tag_name("group<", axis_name(A), ", ", Size, ">");
  static constexpr const char* name = name_text.data();
};

template <class T>
concept GroupPolicy = requires {
  { T::group_axis } -> std::convertible_to<axis>;
  { T::size } -> std::convertible_to<int>;
} && is_valid_group_size(T::size);

}  // namespace lowbit
