#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// matrix_view: a non-owning (pointer, rows, cols, strides) view, so row-major and
// column-major data, Eigen matrices/maps and engine buffers all enter the library the same way.
#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "lowbit/core/error.hpp"

namespace lowbit::inline LOWBIT_ABI {

using index = std::ptrdiff_t;

template <class T>
struct matrix_view {
  T* data = nullptr;
  index rows = 0;
  index cols = 0;
  index row_stride = 0;  // elements between (r, c) and (r + 1, c)
  index col_stride = 1;  // elements between (r, c) and (r, c + 1)

  T& operator()(index r, index c) const { return data[r * row_stride + c * col_stride]; }
  bool empty() const { return rows == 0 || cols == 0; }
  operator matrix_view<const T>() const requires(!std::is_const_v<T>) {
    return {data, rows, cols, row_stride, col_stride};
  }
};

// Views of raw buffers in the two usual layouts.
template <class T>
matrix_view<T> row_major(T* data, index rows, index cols, index ld = -1) {
  return {data, rows, cols, ld < 0 ? cols : ld, 1};
}
template <class T>
matrix_view<T> col_major(T* data, index rows, index cols, index ld = -1) {
  return {data, rows, cols, 1, ld < 0 ? rows : ld};
}

namespace detail {
template <class M>
concept EigenDirectAccess = std::is_base_of_v<Eigen::DenseBase<M>, M> &&
                            (static_cast<int>(Eigen::internal::traits<M>::Flags) & Eigen::DirectAccessBit) != 0;
}  // namespace detail

// to_view(x): a matrix_view<const float> over a view, or an Eigen dense object with direct
// access (Matrix, Map, Block of those, row- or column-major).
inline matrix_view<const float> to_view(matrix_view<const float> v) { return v; }
inline matrix_view<const float> to_view(matrix_view<float> v) { return v; }

template <class M>
  requires detail::EigenDirectAccess<M>
matrix_view<const float> to_view(const M& m) {
  static_assert(std::is_same_v<typename M::Scalar, float>,
                "lowbit: weights and activations enter as float (fp32); cast with .cast<float>()");
  const bool row_major_storage = M::IsRowMajor;
  const index inner = m.innerStride();
  const index outer = m.outerStride();
  if (row_major_storage) return {m.data(), m.rows(), m.cols(), outer, inner};
  return {m.data(), m.rows(), m.cols(), inner, outer};
}

template <class M>
  requires detail::EigenDirectAccess<M>
matrix_view<float> to_mutable_view(M& m) {
  static_assert(std::is_same_v<typename M::Scalar, float>, "lowbit: expected a float matrix");
  if (M::IsRowMajor) return {m.data(), m.rows(), m.cols(), m.outerStride(), m.innerStride()};
  return {m.data(), m.rows(), m.cols(), m.innerStride(), m.outerStride()};
}

template <class M>
concept MatrixInput = requires(const M& m) {
  { to_view(m) } -> std::same_as<matrix_view<const float>>;
};

// Rejects NaN/Inf with the position of the first bad value: quantizing them would give
// silent garbage (a NaN scale poisons a whole group).
inline void require_finite(matrix_view<const float> m, const char* what) {
  for (index r = 0; r < m.rows; ++r)
    for (index c = 0; c < m.cols; ++c) {
      const float v = m(r, c);
      if (!std::isfinite(v))
        detail::fail(what, " has a non-finite value (", v, ") at row ", r, ", column ", c);
    }
}

inline void require_nonempty(matrix_view<const float> m, const char* what) {
  if (m.rows <= 0 || m.cols <= 0)
    detail::fail(what, " is empty (", m.rows, " x ", m.cols, "); expected at least 1 x 1");
}

}  // namespace lowbit
