#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The user-facing kernels: lowbit::gemv / lowbit::gemm on a packed matrix. They check shapes
// and hand the work to the backend chosen by backend traits (backend_traits.hpp: cpu_simd for host
// memory, with run-time ISA dispatch in kernel/cpu/).
#include <span>

#include "lowbit/kernel/backend_traits.hpp"
#include "lowbit/core/error.hpp"

namespace lowbit::inline LOWBIT_ABI {

// The activation precision of the CPU kernels: fp32 (default, float math on the exact x) or
// int8 (x quantized per block once per call, as ggml does; faster, see docs/performance.md).
using kernel::cpu::activations;
using gemm_options = kernel::cpu::gemm_options;

// y = W_hat x.
template <PackedMatrix PM>
void gemv(const PM& W, std::span<const float> x, std::span<float> y, const gemm_options& opt = {}) {
  detail::require(static_cast<index>(x.size()) == W.cols(), "gemv: x has ", x.size(), " entries, W has ",
                  W.cols(), " columns");
  detail::require(static_cast<index>(y.size()) == W.rows(), "gemv: y has ", y.size(), " entries, W has ",
                  W.rows(), " rows");
  backend_traits<cpu_simd>::gemm(W, x.data(), y.data(), 1, opt);
}

// Y = X · W_hatᵀ for m activation rows: X is [m x cols], Y is [m x rows], row-major.
template <PackedMatrix PM>
void gemm(const PM& W, std::span<const float> X, std::span<float> Y, index m, const gemm_options& opt = {}) {
  detail::require(m >= 1, "gemm: batch size m = ", m, " must be >= 1");
  detail::require(static_cast<index>(X.size()) == m * W.cols(), "gemm: X has ", X.size(), " entries, expected m * cols = ",
                  m * W.cols());
  detail::require(static_cast<index>(Y.size()) == m * W.rows(), "gemm: Y has ", Y.size(), " entries, expected m * rows = ",
                  m * W.rows());
  backend_traits<cpu_simd>::gemm(W, X.data(), Y.data(), m, opt);
}

}  // namespace lowbit
