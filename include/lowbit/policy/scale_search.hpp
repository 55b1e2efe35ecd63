#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// ScaleSearch policies: how a group's quantization range is chosen.
//   minmax            the range [min, max] of the group (with 0 included).
//   mse_clip<...>     GPTQ/OWQ "mse" search: shrink the range by p = 1 - i/grid for
//                     i < max_shrink*grid and keep the p minimising sum |w - w_hat|^norm.
//   mse_range_zero<...> OWQ "mse" tuning: a joint grid over the range and every integer
//                     zero point, so a skewed group can shift its grid instead of only
//                     shrinking it around the min/max zero.
// AWQ's output-aware clip search lives in method/awq.hpp: it needs activations.
//
// A search is a small type with behaviour: lowbit calls its fit() for every group.
//   struct my_search {
//     static constexpr const char* name = "my_search";  // reports, file metadata
//     static constexpr bool searches = true;            // true: fit() is costly (a search),
//                                                       // so lowbit spreads it over threads
//     static lowbit::grid_params fit(lowbit::weight_run w, const lowbit::grid_spec& spec);
//   };
//   lowbit::quantize<lowbit::rtn<lowbit::bits<3>, my_search>>(W);
// fit() returns the group's grid for spec (bits, symmetry, spec.round_stat: the storage's
// rounding, to apply to the scale); core/grid_types.hpp's grid_for_range, fit_minmax and
// range_with_zero are the building blocks (examples/custom_search.cpp).
#include <concepts>

#include "lowbit/core/grid_types.hpp"

namespace lowbit::inline LOWBIT_ABI {

struct minmax {
  static constexpr const char* name = "minmax";
  static constexpr bool searches = false;
  static grid_params fit(weight_run w, const grid_spec& spec) { return fit_minmax(w, spec); }
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
  static constexpr const char* name = "mse_clip";
  static constexpr bool searches = true;
  static constexpr float norm = static_cast<float>(NormHundredths) / 100.0f;
  static constexpr int grid = Grid;
  static constexpr float max_shrink = static_cast<float>(MaxShrinkPercent) / 100.0f;
  static grid_params fit(weight_run w, const grid_spec& spec);  // defined in method/grid.hpp
};

// OWQ's quantizer (owq/quant.py find_params, mse=True): steps s_i = (i / Grid) · range / maxq
// for i = 1..Grid (range = max(w, 0) − min(w, 0)), and for each every zero point
// z = 0..maxq; the pair minimising sum |w − s_i (clamp(round(w / s_i) + z) − z)|^norm wins.
// The reference calls it with Grid = 100 for per-channel rows and 40 for groups. It
// contains every candidate of mse_clip<Norm, Grid, 100> and of minmax, so it never does
// worse than either on its own objective. Symmetric grids have no zero point to search: it
// is the range search alone.
template <int NormHundredths = 240, int Grid = 100>
struct mse_range_zero {
  static_assert(NormHundredths > 0, "lowbit::mse_range_zero: the error norm must be positive");
  static_assert(Grid >= 1, "lowbit::mse_range_zero: the grid needs at least one step");
  static constexpr const char* name = "mse_range_zero";
  static constexpr bool searches = true;
  static constexpr bool searches_zero_point = true;
  static constexpr float norm = static_cast<float>(NormHundredths) / 100.0f;
  static constexpr int grid = Grid;
  static constexpr float max_shrink = 1.0f;  // the range runs down to 1 / Grid of the min/max one
  static grid_params fit(weight_run w, const grid_spec& spec);  // defined in method/grid.hpp
};

// What makes a type a search: a name, whether it is costly, and the fit() lowbit calls.
template <class T>
concept ScaleSearch = requires(const weight_run& w, const grid_spec& spec) {
  { T::name } -> std::convertible_to<const char*>;
  { T::searches } -> std::convertible_to<bool>;
  { T::fit(w, spec) } -> std::same_as<grid_params>;
};

}  // namespace lowbit
