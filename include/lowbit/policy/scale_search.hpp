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

template <float Norm = 2.4f, int Grid = 100, float MaxShrink = 0.8f>
struct mse_clip {
  static_assert(Norm > 0.0f, "lowbit::mse_clip: the error norm must be positive");
  static_assert(Grid >= 1, "lowbit::mse_clip: the grid needs at least one step");
  static_assert(MaxShrink > 0.0f && MaxShrink <= 1.0f,
                "lowbit::mse_clip: max_shrink must be in (0, 1]");
  static constexpr bool searches = true;
  static constexpr float norm = Norm;
  static constexpr int grid = Grid;
  static constexpr float max_shrink = MaxShrink;
};

template <class T>
concept ScaleSearch = requires {
  { T::searches } -> std::convertible_to<bool>;
};

}  // namespace lowbit
