#pragma once
// The user-facing kernels: lowbit::gemv / lowbit::gemm on a packed matrix. They check shapes
// and hand the work to the backend chosen by backend traits (kernel/cpu for host memory).
#include <span>

#include "lowbit/core/error.hpp"
#include "lowbit/kernel/cpu/reference.hpp"

namespace lowbit {

template <PackedMatrix PM>
void gemv(const PM& W, std::span<const float> x, std::span<float> y) {
  detail::require(static_cast<index>(x.size()) == W.cols(), "gemv: x has ", x.size(), " entries, W has ",
                  W.cols(), " columns");
  detail::require(static_cast<index>(y.size()) == W.rows(), "gemv: y has ", y.size(), " entries, W has ",
                  W.rows(), " rows");
  kernel::reference::gemv(W, x, y);
}

// Y = X · W_hatᵀ for m activation rows: X is [m x cols], Y is [m x rows], row-major.
template <PackedMatrix PM>
void gemm(const PM& W, std::span<const float> X, std::span<float> Y, index m) {
  detail::require(m >= 1, "gemm: batch size m = ", m, " must be >= 1");
  detail::require(static_cast<index>(X.size()) == m * W.cols(), "gemm: X has ", X.size(), " entries, expected m * cols = ",
                  m * W.cols());
  detail::require(static_cast<index>(Y.size()) == m * W.rows(), "gemm: Y has ", Y.size(), " entries, expected m * rows = ",
                  m * W.rows());
  kernel::reference::gemm(W, X, Y, m);
}

}  // namespace lowbit
