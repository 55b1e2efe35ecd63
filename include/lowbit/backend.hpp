#pragma once
// Backends: where a packed_matrix's kernels run (cpu_simd always; cuda in CUDA builds, from
// lowbit/kernel/cuda/backend.cuh). The traits live in the kernel layer: kernel/backend_traits.hpp.
#include "lowbit/kernel/backend_traits.hpp"
