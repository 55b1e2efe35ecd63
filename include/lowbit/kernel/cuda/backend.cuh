#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// backend_traits<cuda>: the CUDA backend beside backend_traits<cpu_simd> (lowbit/kernel/backend_traits.hpp).
// Include this header only in CUDA translation units (nvcc); CPU-only users never see it.
//
// The CUDA backend works on device memory: a packed matrix is uploaded once (repacked into
// tensor-core fragment order, layout.cuh), activations and outputs are fp16 device arrays,
// accumulation is fp32. Large batches: call gemm in chunks (it does, 16 rows per launch) or
// dequantize() once and use cuBLAS, which wins from a few hundred rows on (anchors.md A3).
#include <cuda_runtime.h>

#include <string>
#include <string_view>

#include "lowbit/kernel/cuda/gemm.cuh"

namespace lowbit::inline LOWBIT_ABI {

// Tag of the CUDA backend.
struct cuda {};

template <class Backend>
struct backend_traits;

template <>
struct backend_traits<cuda> {
  static constexpr std::string_view name = "cuda";
  using matrix_type = kernel::cuda::device_packed_matrix;
  using activation_type = __half;
  using accumulator_type = float;
  static constexpr index max_batch_per_launch = kernel::cuda::max_batch;

  // A CUDA device is present and usable.
  static bool available() { return kernel::cuda::device_available(); }
  // The code path the next call takes: "sm_<major><minor>" of the current device.
  static std::string isa() {
    int dev = 0;
    LOWBIT_CUDA_CHECK(cudaGetDevice(&dev));
    cudaDeviceProp p{};
    LOWBIT_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
    return "sm_" + std::to_string(p.major) + std::to_string(p.minor);
  }
  // Host packed_matrix → device (synchronous).
  template <PackedMatrix PM>
  static matrix_type upload(const PM& W) {
    return kernel::cuda::upload(W);
  }
  // Y = X · W_hatᵀ, X [m x cols], Y [m x rows], fp16 row-major device arrays (asynchronous).
  static void gemm(const matrix_type& W, const __half* X, __half* Y, index m, cudaStream_t stream = nullptr) {
    kernel::cuda::gemm(W, X, Y, m, stream);
  }
  static void dequantize(const matrix_type& W, __half* out, cudaStream_t stream = nullptr) {
    kernel::cuda::dequantize(W, out, stream);
  }
};

}  // namespace lowbit
