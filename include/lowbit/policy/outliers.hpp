#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// OutlierStore policies: what is kept beside the low-bit codes in higher precision.
//   no_outliers      codes and stats only;
//   dense_columns    OWQ's weak columns: k whole input columns in fp16 ([rows x k]) plus
//                    their k indices; the low-bit part covers the other cols - k columns;
//   sparse_outliers  SpQR's outliers: CSR (row pointers, uint16 column indices, fp16
//                    values). The value is *added* to the dequantized dense weight.
// A tag is a name and a flag; its behaviour (storage, dequantization, the GEMV contribution,
// its tensors in a file) is the specialization outlier_store<Tag> in format/outlier_store.hpp,
// which packed_matrix checks against the OutlierStorage contract. A new store is a tag plus
// that specialization, in one file (docs/architecture.md shows one).
#include <concepts>

namespace lowbit::inline LOWBIT_ABI {

struct no_outliers {
  static constexpr const char* name = "no_outliers";
  static constexpr bool is_outlier_store = true;
};
struct dense_columns {
  static constexpr const char* name = "dense_columns";
  static constexpr bool is_outlier_store = true;
};
struct sparse_outliers {
  static constexpr const char* name = "sparse_outliers";
  static constexpr bool is_outlier_store = true;
};
// The name OWQ users know.
using weak_columns = dense_columns;

// The tag side of the contract: a name (the file format's and the CLI's word for it) and the
// marker that tells it from the other policy families (a scale search has a name too).
template <class T>
concept OutlierStore = requires {
  { T::name } -> std::convertible_to<const char*>;
  { T::is_outlier_store } -> std::convertible_to<bool>;
} && T::is_outlier_store;

}  // namespace lowbit
