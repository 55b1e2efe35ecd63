#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Scalar reference kernels: the test oracle for every optimised path. They decode each
// weight exactly as packed_matrix::dequantize() does and accumulate in double, so a SIMD
// kernel is judged against the mathematically intended result, not another float kernel.
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/format/packed_matrix.hpp"

namespace lowbit::inline LOWBIT_ABI::kernel::reference {

// y[r] = sum_c w_hat(r, c) * x[c]
template <PackedMatrix PM>
void gemv(const PM& W, std::span<const float> x, std::span<float> y) {
  const auto map = W.quantized_column_map();
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(W.quantized_cols()));
  for (index r = 0; r < W.rows(); ++r) {
    W.unpack_row_codes(r, codes);
    double acc = 0.0;
    for (index qc = 0; qc < W.quantized_cols(); ++qc) {
      const grid_params p = W.params(r, qc);
      const double w = static_cast<double>(p.scale) * (static_cast<double>(codes[static_cast<std::size_t>(qc)]) - p.zero);
      acc += w * x[static_cast<std::size_t>(map[static_cast<std::size_t>(qc)])];
    }
    W.outliers().for_each_in_row(r, [&](index c, float v) {
      acc += static_cast<double>(v) * x[static_cast<std::size_t>(c)];
    });
    y[static_cast<std::size_t>(r)] = static_cast<float>(acc);
  }
}

// Y[i, :] = W_hat · X[i, :] for a batch of m activation rows (X: [m x cols], Y: [m x rows],
// both row-major).
template <PackedMatrix PM>
void gemm(const PM& W, std::span<const float> X, std::span<float> Y, index m) {
  for (index i = 0; i < m; ++i)
    reference::gemv(W, X.subspan(static_cast<std::size_t>(i * W.cols()), static_cast<std::size_t>(W.cols())),
         Y.subspan(static_cast<std::size_t>(i * W.rows()), static_cast<std::size_t>(W.rows())));
}

}  // namespace lowbit::kernel::reference
