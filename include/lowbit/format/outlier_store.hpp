#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// outlier_store<O>: what a packed matrix keeps beside its low-bit codes, and everything that
// depends on which store it is. Containers, kernels and the file format call only the
// contract below (OutlierStorage), never `is_same_v<O, ...>`, so a new store is a tag
// (policy/outliers.hpp) plus one specialization here and its test.
//
// The contract, for a matrix of `rows` x `cols`:
//   name                          O::name, the word the file format and the CLI use
//   keeps_columns, keeps_entries  whether it may hold weak columns / sparse entries (a file's
//                                 counts are checked against them)
//   init(rows, cols, weak)        the empty store for that shape; `weak` are the columns the
//                                 low-bit part leaves out (ascending), a store that has none
//                                 rejects a non-empty list
//   weak_columns()                those columns (a span; empty for most stores)
//   sparse_entries()              entries stored apart from whole columns (the file's "nnz")
//   for_each_in_row(r, f)         f(col, value) for each stored value of row r: the weight is
//                                 w(r, col) = low-bit part (0 on a weak column) + value
//   stored_bytes()                every byte it stores (bits_per_weight counts them)
//   save(rows, put)               put(suffix, shape, span<const T>) for each tensor it stores
//   load_weak_columns(load)       static: the weak columns from a file, before the matrix exists
//   load(rows, cols, nnz, get)    get(suffix, shape, span<T>) fills each tensor; then the
//                                 store validates what it read (indices, ordering)
//   add_products(K, args)         the CPU GEMV's contribution Y[i, r] += Σ value · x (K is the
//                                 kernel table: dot_f16, sparse_dot)
//   expect_tensors(rows, k, nnz, e)   static: e(suffix, dtype tag T, shape) for a file check
//                                 that has no type (io/lowbit_format.hpp's listing)
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_view.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/policy/outliers.hpp"

namespace lowbit::inline LOWBIT_ABI {

template <class O>
struct outlier_store;

namespace detail {
using tensor_shape = std::vector<std::uint64_t>;
inline tensor_shape shape_of(std::initializer_list<index> d) {
  tensor_shape v;
  for (index x : d) v.push_back(static_cast<std::uint64_t>(x));
  return v;
}
inline void reject_weak_columns(const std::vector<std::int32_t>& weak, const char* store) {
  detail::require(weak.empty(), "packed_matrix: weak columns need the dense_columns outlier store, not ", store);
}
// Every element of a stored tensor (fp16 or fp32) is finite; the message names the element,
// after `where` (the file and matrix, or empty when the caller adds them).
template <class T>
void require_finite_values(std::span<const T> v, std::string_view tensor, std::string_view where = {}) {
  for (std::size_t k = 0; k < v.size(); ++k)
    detail::require(std::isfinite(static_cast<float>(v[k])), where, "tensor '", tensor, "' element ", k, " is ",
                    static_cast<float>(v[k]), "; expected a finite number");
}
// Stand-ins for the element types in expect_tensors (the listing checks dtype by type).
template <class T>
struct tensor_of {
  using type = T;
};
// A visitor for the concept below (a named type, not a lambda: nvcc's front end rejects
// lambdas in a requires-expression).
struct row_entry_probe {
  void operator()(index, float) const {}
};
}  // namespace detail

// What every outlier_store<O> provides (see the top of this file).
template <class S>
concept OutlierStorage = requires(S& s, const S& cs, index i, std::vector<std::int32_t> weak) {
  { S::name } -> std::convertible_to<const char*>;
  { S::keeps_columns } -> std::convertible_to<bool>;
  { S::keeps_entries } -> std::convertible_to<bool>;
  s.init(i, i, std::move(weak));
  { cs.weak_columns() } -> std::convertible_to<std::span<const std::int32_t>>;
  { cs.sparse_entries() } -> std::convertible_to<index>;
  { cs.stored_bytes() } -> std::convertible_to<std::size_t>;
  cs.for_each_in_row(i, detail::row_entry_probe{});
};

template <>
struct outlier_store<no_outliers> {
  static constexpr const char* name = no_outliers::name;
  static constexpr bool keeps_columns = false, keeps_entries = false;

  void init(index, index, std::vector<std::int32_t> weak) { detail::reject_weak_columns(weak, name); }
  std::span<const std::int32_t> weak_columns() const { return {}; }
  index sparse_entries() const { return 0; }
  template <class F>
  void for_each_in_row(index, F&&) const {}
  std::size_t stored_bytes() const { return 0; }
  template <class Put>
  void save(index, Put&&) const {}
  template <class Load>
  static std::vector<std::int32_t> load_weak_columns(Load&&) { return {}; }
  template <class Get>
  void load(index, index, index, Get&&) {}
  template <class K>
  void add_products(const K&, const float*, const float*, index, index, index, index, index, float*) const {}
  template <class E>
  static void expect_tensors(index, index, index, E&&) {}
};

// OWQ weak columns: `columns` (ascending logical column indices, k of them) and their fp16
// values, row-major [rows x k]. The low-bit part holds the other columns in natural order.
template <>
struct outlier_store<dense_columns> {
  static constexpr const char* name = dense_columns::name;
  static constexpr bool keeps_columns = true, keeps_entries = false;
  std::vector<std::int32_t> columns;
  std::vector<half> values;

  void init(index rows, index cols, std::vector<std::int32_t> weak) {
    std::sort(weak.begin(), weak.end());
    detail::require(std::adjacent_find(weak.begin(), weak.end()) == weak.end(),
                    "packed_matrix: weak column indices repeat");
    detail::require(weak.empty() || (weak.front() >= 0 && weak.back() < cols),
                    "packed_matrix: weak column index out of range [0, ", cols, ")");
    detail::require(static_cast<index>(weak.size()) < cols, "packed_matrix: ", weak.size(),
                    " weak columns leave no column to quantize");
    columns = std::move(weak);
    values.assign(static_cast<std::size_t>(rows) * columns.size(), half(0.0f));
  }
  index count() const { return static_cast<index>(columns.size()); }
  float value(index r, index j) const { return values[static_cast<std::size_t>(r * count() + j)].to_float(); }
  std::span<const std::int32_t> weak_columns() const { return columns; }
  index sparse_entries() const { return 0; }
  template <class F>
  void for_each_in_row(index r, F&& f) const {
    for (index j = 0; j < count(); ++j) f(static_cast<index>(columns[static_cast<std::size_t>(j)]), value(r, j));
  }
  std::size_t stored_bytes() const { return columns.size() * sizeof(std::int32_t) + values.size() * sizeof(half); }
  template <class Put>
  void save(index rows, Put&& put) const {
    put(".weak_columns", detail::shape_of({count()}), std::span<const std::int32_t>(columns));
    put(".weak_values", detail::shape_of({rows, count()}), std::span<const half>(values));
  }
  // The columns come first: the packed matrix is shaped by them (load(".weak_columns") returns
  // that I32 tensor, unchecked; init validates it).
  template <class Load>
  static std::vector<std::int32_t> load_weak_columns(Load&& load) { return load(".weak_columns"); }
  template <class Get>
  void load(index rows, index, index, Get&& get) {
    get(".weak_values", detail::shape_of({rows, count()}), std::span<half>(values));
    detail::require_finite_values(std::span<const half>(values), "weak_values");
  }
  // x_weak: x gathered to the weak columns, [m x k] (packed_matrix::gather_weak).
  template <class K>
  void add_products(const K& kernels, const float*, const float* x_weak, index m, index, index r0, index r1,
                    index rows, float* Y) const {
    const index k = count();
    if (k == 0) return;
    const auto* v = reinterpret_cast<const std::uint16_t*>(values.data());
    for (index r = r0; r < r1; ++r)
      for (index i = 0; i < m; ++i) Y[i * rows + r] += kernels.dot_f16(v + r * k, x_weak + i * k, k);
  }
  template <class E>
  static void expect_tensors(index rows, index k, index, E&& e) {
    e(".weak_columns", detail::tensor_of<std::int32_t>{}, detail::shape_of({k}));
    e(".weak_values", detail::tensor_of<half>{}, detail::shape_of({rows, k}));
  }
};

// SpQR outliers in CSR: row r's outliers are entries row_ptr[r] .. row_ptr[r+1]-1, each a
// uint16 logical column and an fp16 value that is added to the dequantized low-bit weight.
template <>
struct outlier_store<sparse_outliers> {
  static constexpr const char* name = sparse_outliers::name;
  static constexpr bool keeps_columns = false, keeps_entries = true;
  std::vector<std::uint32_t> row_ptr;
  std::vector<std::uint16_t> col;
  std::vector<half> values;

  void init(index rows, index cols, std::vector<std::int32_t> weak) {
    detail::reject_weak_columns(weak, name);
    detail::require(cols <= 65536, "packed_matrix: sparse_outliers store uint16 column indices; ", cols,
                    " columns exceed 65536");
    row_ptr.assign(static_cast<std::size_t>(rows) + 1, 0u);
    col.clear();
    values.clear();
  }
  index count() const { return static_cast<index>(col.size()); }
  std::span<const std::int32_t> weak_columns() const { return {}; }
  index sparse_entries() const { return count(); }
  template <class F>
  void for_each_in_row(index r, F&& f) const {
    for (auto k = row_ptr[static_cast<std::size_t>(r)]; k < row_ptr[static_cast<std::size_t>(r) + 1]; ++k)
      f(static_cast<index>(col[k]), values[k].to_float());
  }
  std::size_t stored_bytes() const {
    return row_ptr.size() * sizeof(std::uint32_t) + col.size() * sizeof(std::uint16_t) + values.size() * sizeof(half);
  }
  template <class Put>
  void save(index rows, Put&& put) const {
    put(".outlier_row_ptr", detail::shape_of({rows + 1}), std::span<const std::uint32_t>(row_ptr));
    put(".outlier_cols", detail::shape_of({count()}), std::span<const std::uint16_t>(col));
    put(".outlier_values", detail::shape_of({count()}), std::span<const half>(values));
  }
  template <class Load>
  static std::vector<std::int32_t> load_weak_columns(Load&&) { return {}; }
  template <class Get>
  void load(index rows, index cols, index nnz, Get&& get) {
    const auto n = static_cast<std::size_t>(nnz);
    col.resize(n);
    values.resize(n);
    get(".outlier_row_ptr", detail::shape_of({rows + 1}), std::span<std::uint32_t>(row_ptr));
    get(".outlier_cols", detail::shape_of({nnz}), std::span<std::uint16_t>(col));
    get(".outlier_values", detail::shape_of({nnz}), std::span<half>(values));
    detail::require_finite_values(std::span<const half>(values), "outlier_values");
    detail::require(row_ptr.front() == 0 && row_ptr.back() == n, "outlier row pointers must run from 0 to ", n);
    for (std::size_t r = 0; r + 1 < row_ptr.size(); ++r)
      detail::require(row_ptr[r] <= row_ptr[r + 1], "outlier row pointers decrease at row ", r);
    for (std::size_t k = 0; k < n; ++k)
      detail::require(static_cast<index>(col[k]) < cols, "outlier column ", col[k], " is out of range [0, ", cols, ")");
  }
  template <class K>
  void add_products(const K& kernels, const float* X, const float*, index m, index cols, index r0, index r1,
                    index rows, float* Y) const {
    const auto* v = reinterpret_cast<const std::uint16_t*>(values.data());
    for (index r = r0; r < r1; ++r) {
      const auto b = row_ptr[static_cast<std::size_t>(r)], e = row_ptr[static_cast<std::size_t>(r) + 1];
      if (b == e) continue;
      for (index i = 0; i < m; ++i)
        Y[i * rows + r] += kernels.sparse_dot(v + b, col.data() + b, static_cast<index>(e - b), X + i * cols);
    }
  }
  template <class E>
  static void expect_tensors(index rows, index, index nnz, E&& e) {
    e(".outlier_row_ptr", detail::tensor_of<std::uint32_t>{}, detail::shape_of({rows + 1}));
    e(".outlier_cols", detail::tensor_of<std::uint16_t>{}, detail::shape_of({nnz}));
    e(".outlier_values", detail::tensor_of<half>{}, detail::shape_of({nnz}));
  }
};

// The stores a file without a type (lowbit_file's listing and checks) can name.
template <class... O>
struct outlier_store_list {
  template <class F>
  static bool visit(std::string_view name, F&& f) {
    return ((name == O::name ? (f.template operator()<O>(), true) : false) || ...);
  }
  static std::string names() {
    std::string s;
    ((s += (s.empty() ? "" : ", "), s += O::name), ...);
    return s;
  }
};
using known_outlier_stores = outlier_store_list<no_outliers, dense_columns, sparse_outliers>;

}  // namespace lowbit
