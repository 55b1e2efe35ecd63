#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// OutlierStore policies: what is kept beside the low-bit codes in higher precision.
//   no_outliers      codes and stats only;
//   dense_columns    OWQ's weak columns: k whole input columns in fp16 ([rows x k]) plus
//                    their k indices; the low-bit part covers the other cols - k columns;
//   sparse_outliers  SpQR's outliers: CSR (row pointers, uint16 column indices, fp16
//                    values). The value is *added* to the dequantized dense weight.
#include <concepts>

namespace lowbit::inline LOWBIT_ABI {

struct no_outliers { static constexpr int kind = 0; };
struct dense_columns { static constexpr int kind = 1; };
struct sparse_outliers { static constexpr int kind = 2; };
// The name OWQ users know.
using weak_columns = dense_columns;

template <class T>
concept OutlierStore = requires {
  { T::kind } -> std::convertible_to<int>;
} && (T::kind >= 0 && T::kind <= 2);

}  // namespace lowbit
