#pragma once
// ScaleSearch policies: how a group's quantization range is chosen.
//   minmax            the range [min, max] of the group (with 0 included).
//   mse_clip<...>     GPTQ/OWQ "mse" search: shrink the range by p = 1 - i/grid for
//                     i < max_shrink*grid and keep the p minimising sum |w - w_hat|^norm.
// AWQ's output-aware clip search lives in method/awq.hpp: it needs activations.
#include <concepts>

namespace lowbit {

struct minmax {
  static constexpr bool searches = false;
};

// The norm and the shrink limit are given in hundredths (mse_clip<240, 100, 80> is the
// reference's 2.4-norm, 100-step grid, 0.8 max shrink): float template parameters would read
// better but clang 14 does not accept them, and lowbit must build with both compilers.
template <int NormHundredths = 240, int Grid = 100, int MaxShrinkPercent = 80>
struct mse_clip {
  static_assert(NormHundredths > 0, "lowbit::mse_clip: the error norm must be positive");
  static_assert(Grid >= 1, "lowbit::mse_clip: the grid needs at least one step");
  static_assert(MaxShrinkPercent > 0 && MaxShrinkPercent <= 100,
                "lowbit::mse_clip: max_shrink (in percent) must be in (0, 100]");
  static constexpr bool searches = true;
  static constexpr float norm = static_cast<float>(NormHundredths) / 100.0f;
  static constexpr int grid = Grid;
  static constexpr float max_shrink = static_cast<float>(MaxShrinkPercent) / 100.0f;
};

template <class T>
concept ScaleSearch = requires {
  { T::searches } -> std::convertible_to<bool>;
};

}  // namespace lowbit
