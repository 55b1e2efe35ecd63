#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// stats_table<S>: the stored per-group (scale, zero) pairs of a packed matrix, in the
// precision the StatsStorage policy S asks for. Symmetric grids store no zeros.
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "lowbit/format/half.hpp"
#include "lowbit/core/grid_types.hpp"
#include "lowbit/policy/stats.hpp"

namespace lowbit::inline LOWBIT_ABI {

template <class Element>
class dense_stats_table {
 public:
  dense_stats_table() = default;
  dense_stats_table(index n, bool has_zero)
      : scales_(static_cast<std::size_t>(n)), zeros_(has_zero ? static_cast<std::size_t>(n) : 0) {}

  // The value as the table will hold it: quantizers fit against the stored scale.
  static float round(float v) {
    if constexpr (std::is_same_v<Element, half>) return half(v).to_float();
    else return v;
  }

  void set(index i, grid_params p) {
    scales_[static_cast<std::size_t>(i)] = Element(p.scale);
    if (!zeros_.empty()) zeros_[static_cast<std::size_t>(i)] = Element(p.zero);
  }
  // `implicit_zero` is the symmetric grid's fixed zero, used when no zeros are stored.
  grid_params get(index i, float implicit_zero) const {
    grid_params p;
    p.scale = static_cast<float>(scales_[static_cast<std::size_t>(i)]);
    p.zero = zeros_.empty() ? implicit_zero : static_cast<float>(zeros_[static_cast<std::size_t>(i)]);
    return p;
  }
  // Bulk decode of n consecutive stats (a per-OC row's groups, or a per-IC row group's
  // columns) into float buffers: the interface every stats storage offers to kernels.
  void decode(index begin, index n, float* scale, float* zero, float implicit_zero) const {
    for (index i = 0; i < n; ++i) {
      const grid_params p = get(begin + i, implicit_zero);
      scale[i] = p.scale;
      zero[i] = p.zero;
    }
  }
  index size() const { return static_cast<index>(scales_.size()); }
  bool has_zeros() const { return !zeros_.empty(); }
  std::size_t stored_bytes() const { return (scales_.size() + zeros_.size()) * sizeof(Element); }

  std::span<const Element> scales() const { return scales_; }
  std::span<const Element> zeros() const { return zeros_; }
  std::span<Element> scales() { return scales_; }
  std::span<Element> zeros() { return zeros_; }

 private:
  std::vector<Element> scales_;
  std::vector<Element> zeros_;
};

// Specialised per StatsStorage; quantized_stats<> (SpQR's second level) lives in
// format/quantized_stats_table.hpp.
template <class S>
class stats_table;

template <>
class stats_table<fp16_stats> : public dense_stats_table<half> {
  using dense_stats_table<half>::dense_stats_table;
};
template <>
class stats_table<fp32_stats> : public dense_stats_table<float> {
  using dense_stats_table<float>::dense_stats_table;
};

}  // namespace lowbit

// SpQR's second level (stats_table<quantized_stats<B, R>>): every user of packed_matrix sees it.
#include "lowbit/format/quantized_stats_table.hpp"
