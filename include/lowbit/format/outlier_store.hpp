#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// outlier_store<O>: what a packed matrix keeps beside its low-bit codes.
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/policy/outliers.hpp"

namespace lowbit::inline LOWBIT_ABI {

template <class O>
struct outlier_store;

template <>
struct outlier_store<no_outliers> {
  std::size_t stored_bytes() const { return 0; }
};

// OWQ weak columns: `columns` (ascending logical column indices, k of them) and their fp16
// values, row-major [rows x k]. The low-bit part holds the other columns in natural order.
template <>
struct outlier_store<dense_columns> {
  std::vector<std::int32_t> columns;
  std::vector<half> values;

  index count() const { return static_cast<index>(columns.size()); }
  float value(index r, index j) const {
    return values[static_cast<std::size_t>(r * count() + j)].to_float();
  }
  std::size_t stored_bytes() const {
    return columns.size() * sizeof(std::int32_t) + values.size() * sizeof(half);
  }
};

// SpQR outliers in CSR: row r's outliers are entries row_ptr[r] .. row_ptr[r+1]-1, each a
// uint16 logical column and an fp16 value that is added to the dequantized low-bit weight.
template <>
struct outlier_store<sparse_outliers> {
  std::vector<std::uint32_t> row_ptr;
  std::vector<std::uint16_t> col;
  std::vector<half> values;

  index count() const { return static_cast<index>(col.size()); }
  std::size_t stored_bytes() const {
    return row_ptr.size() * sizeof(std::uint32_t) + col.size() * sizeof(std::uint16_t) +
           values.size() * sizeof(half);
  }
};

}  // namespace lowbit
