#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Backends: where a packed_matrix's kernels run. A backend is a tag type; backend_traits<B>
// tell the generic front end (kernel/gemv.hpp) whether it can run here, which code path it
// will take, and how to run GEMV/GEMM on host-side activations. cpu_simd is always present;
// the CUDA backend (kernel/cuda/, CUDA builds only) adds backend_traits<cuda>. The front
// header lowbit/backend.hpp includes this one.
#include <string_view>

#include "lowbit/kernel/cpu/gemv_cpu.hpp"

namespace lowbit::inline LOWBIT_ABI {

// Host memory, xsimd/intrinsics kernels with run-time ISA dispatch (kernel/cpu/).
struct cpu_simd {};

template <class Backend>
struct backend_traits;

template <>
struct backend_traits<cpu_simd> {
  static constexpr std::string_view name = "cpu_simd";
  static bool available() { return true; }
  // The instruction set the next call will use ("avx512_vnni", "avx2", "generic", ...).
  static std::string_view isa() { return kernel::cpu::isa_name(kernel::cpu::active_table().id); }
  // Y = X · W_hatᵀ, X [m x cols], Y [m x rows] row-major, shapes already checked.
  template <PackedMatrix PM>
  static void gemm(const PM& W, const float* X, float* Y, index m, const kernel::cpu::gemm_options& opt = {}) {
    kernel::cpu::gemm(W, X, Y, m, opt);
  }
};

}  // namespace lowbit
