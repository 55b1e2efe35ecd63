#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// packed_matrix<Bits, Group, Outliers, Stats, ZeroPoint>: a quantized [rows x cols] weight
// matrix as it is stored and run: bit-packed codes (format/bitpack.hpp), one (scale, zero)
// per group in a stats_table, and an optional outlier store. Every byte it stores is
// counted by bits_per_weight().
//
// Layout
//   The low-bit part covers the `quantized_cols()` columns that are not OWQ weak columns
//   (all of them unless Outliers = dense_columns), in natural order; we call its column
//   index `qc`. Codes are row-major: row r starts at r * row_bytes().
//   Stats grid: per-OC, [rows x ceil(qcols / g)] row-major, entry (r, qc / g);
//               per-IC, [ceil(rows / g) x qcols] row-major, entry (r / g, qc).
//   Dequantized weight: w(r, c) = scale * (code - zero) [+ sparse outlier value]; a weak
//   column's weights come from the dense fp16 store.
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/format/bitpack.hpp"
#include "lowbit/format/outlier_store.hpp"
#include "lowbit/format/stats_table.hpp"
#include "lowbit/policy/concepts.hpp"

namespace lowbit::inline LOWBIT_ABI {

template <BitWidth Bits, GroupPolicy Group, OutlierStore Outliers = no_outliers,
          StatsStorage Stats = fp16_stats, ZeroPointPolicy ZeroPoint = asymmetric>
class packed_matrix {
  static_assert(OutlierStorage<outlier_store<Outliers>>,
                "lowbit::packed_matrix: the outlier store tag has no usable outlier_store<Tag> specialization "
                "(init, weak_columns, sparse_entries, for_each_in_row, stored_bytes: format/outlier_store.hpp)");
  static_assert(!(Stats::second_level && ZeroPoint::is_symmetric),
                "lowbit::packed_matrix: quantized_stats<> (SpQR) quantizes scales and zeros; "
                "it needs asymmetric grids");

 public:
  using bit_width = Bits;
  using grouping = Group;
  using outlier_policy = Outliers;
  using stats_policy = Stats;
  using zero_point_policy = ZeroPoint;
  static constexpr int bits = Bits::value;
  static constexpr int max_code = Bits::max_code;
  static constexpr bool symmetric = ZeroPoint::is_symmetric;
  // The zero of a symmetric grid (not stored).
  static constexpr float implicit_zero = static_cast<float>(max_code + 1) / 2.0f;

  packed_matrix() = default;

  // Allocates an all-zero-code matrix. `ax` must equal Group's axis unless it is adaptive;
  // `weak` lists OWQ weak columns (dense_columns only).
  packed_matrix(index rows, index cols, axis ax = Group::group_axis, std::vector<std::int32_t> weak = {})
      : rows_(rows), cols_(cols), axis_(ax) {
    detail::require(rows > 0 && cols > 0, "packed_matrix: shape ", rows, " x ", cols,
                    " is empty; expected at least 1 x 1");
    detail::require(ax != axis::adaptive, "packed_matrix: the group axis must be oc or ic once quantized");
    detail::require(Group::group_axis == axis::adaptive || ax == Group::group_axis,
                    "packed_matrix: axis ", axis_name(ax), " differs from the policy's ",
                    axis_name(Group::group_axis));
    outliers_.init(rows, cols, std::move(weak));
    qcols_ = cols_ - weak_count();
    group_size_ = Group::size == per_channel ? (ax == axis::oc ? qcols_ : rows_) : Group::size;
    row_bytes_ = packed_row_bytes(qcols_, bits);
    codes_.assign(static_cast<std::size_t>(rows_) * row_bytes_, 0);
    if constexpr (!Stats::second_level) stats_ = stats_table<Stats>(stat_rows() * stat_cols(), !symmetric);
    if constexpr (Stats::second_level) stats_ = stats_table<Stats>(stat_rows(), stat_cols());
  }

  // ---- shape and layout ----
  index rows() const { return rows_; }
  index cols() const { return cols_; }
  index quantized_cols() const { return qcols_; }
  axis group_axis() const { return axis_; }
  index group_size() const { return group_size_; }
  std::size_t row_bytes() const { return row_bytes_; }
  index stat_rows() const { return axis_ == axis::oc ? rows_ : ceil_div(rows_, group_size_); }
  index stat_cols() const { return axis_ == axis::oc ? ceil_div(qcols_, group_size_) : qcols_; }
  index stat_index(index r, index qc) const {
    return axis_ == axis::oc ? r * stat_cols() + qc / group_size_ : (r / group_size_) * stat_cols() + qc;
  }
  index weak_count() const { return static_cast<index>(outliers_.weak_columns().size()); }
  std::span<const std::int32_t> weak_columns() const { return outliers_.weak_columns(); }

  // ---- parts ----
  std::span<const std::uint8_t> codes() const { return codes_; }
  std::span<std::uint8_t> codes() { return codes_; }
  const std::uint8_t* row_codes(index r) const { return codes_.data() + static_cast<std::size_t>(r) * row_bytes_; }
  const stats_table<Stats>& stats() const { return stats_; }
  stats_table<Stats>& stats() { return stats_; }
  const outlier_store<Outliers>& outliers() const { return outliers_; }
  outlier_store<Outliers>& outliers() { return outliers_; }

  // Packs row r from qcols codes (each <= max_code).
  void set_row_codes(index r, std::span<const std::uint8_t> codes) {
    detail::require(static_cast<index>(codes.size()) == qcols_, "set_row_codes: got ", codes.size(),
                    " codes, the row has ", qcols_);
    pack_row(codes, std::span<std::uint8_t>(codes_.data() + static_cast<std::size_t>(r) * row_bytes_, row_bytes_), bits);
  }
  void unpack_row_codes(index r, std::span<std::uint8_t> out) const {
    unpack_row(std::span<const std::uint8_t>(row_codes(r), row_bytes_), out.first(static_cast<std::size_t>(qcols_)), bits);
  }
  grid_params params(index r, index qc) const { return stats_.get(stat_index(r, qc), implicit_zero); }

  // The logical column of low-bit column qc (identity without weak columns).
  std::vector<index> quantized_column_map() const {
    std::vector<index> map;
    map.reserve(static_cast<std::size_t>(qcols_));
    const auto weak = outliers_.weak_columns();
    std::size_t w = 0;
    for (index c = 0; c < cols_; ++c) {
      if (w < weak.size() && weak[w] == c) {
        ++w;
        continue;
      }
      map.push_back(c);
    }
    return map;
  }

  // The float matrix the packed form stands for.
  Eigen::MatrixXf dequantize() const {
    Eigen::MatrixXf out = Eigen::MatrixXf::Zero(rows_, cols_);  // weak columns: 0 + their stored value
    const auto map = quantized_column_map();
    std::vector<std::uint8_t> row(static_cast<std::size_t>(qcols_));
    for (index r = 0; r < rows_; ++r) {
      unpack_row_codes(r, row);
      for (index qc = 0; qc < qcols_; ++qc) out(r, map[static_cast<std::size_t>(qc)]) = decode(row[static_cast<std::size_t>(qc)], params(r, qc));
    }
    for (index r = 0; r < rows_; ++r) outliers_.for_each_in_row(r, [&](index c, float v) { out(r, c) += v; });
    return out;
  }

  // Every byte stored: codes (with block padding), stats, outliers.
  std::size_t stored_bytes() const { return codes_.size() + stats_.stored_bytes() + outliers_.stored_bytes(); }
  double bits_per_weight() const {
    return 8.0 * static_cast<double>(stored_bytes()) / (static_cast<double>(rows_) * static_cast<double>(cols_));
  }

 private:
  static index ceil_div(index a, index b) { return (a + b - 1) / b; }

  index rows_ = 0, cols_ = 0, qcols_ = 0;
  axis axis_ = Group::group_axis == axis::adaptive ? axis::oc : Group::group_axis;
  index group_size_ = 0;
  std::size_t row_bytes_ = 0;
  std::vector<std::uint8_t> codes_;
  stats_table<Stats> stats_;
  outlier_store<Outliers> outliers_;
};

// Concept: any packed_matrix instantiation.
template <class T>
concept PackedMatrix = requires(const T& m) {
  typename T::bit_width;
  typename T::grouping;
  typename T::outlier_policy;
  { m.bits_per_weight() } -> std::convertible_to<double>;
  { m.dequantize() } -> std::convertible_to<Eigen::MatrixXf>;
};

}  // namespace lowbit
