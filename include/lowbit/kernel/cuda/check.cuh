#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Every CUDA runtime call is checked: a failure becomes a lowbit::error naming the call and
// the runtime's message, so a missing device or a bad launch never goes unnoticed.
#include <cuda_runtime.h>

#include "lowbit/core/error.hpp"

namespace lowbit::inline LOWBIT_ABI::kernel::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    detail::fail("CUDA call ", what, " failed: ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
}

// After a kernel launch: the launch error (bad configuration) is reported at once; errors
// raised while the kernel runs surface at the next synchronising call, which is checked too.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// True when at least one CUDA device can be used (tests skip cleanly without one).
inline bool device_available() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" state
    return false;
  }
  return n > 0;
}

}  // namespace lowbit::kernel::cuda

#define LOWBIT_CUDA_CHECK(expr) ::lowbit::kernel::cuda::check((expr), #expr)
