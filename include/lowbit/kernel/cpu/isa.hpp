#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The CPU instruction sets lowbit has kernels for, what this translation unit was compiled
// for, and what the running machine can execute.
//
// Two ways to pick a kernel set (toolchain-notes: an xsimd batch<T, Arch> exists only in a
// TU compiled with that ISA):
//   * header-only (default): the best ISA the user's own compiler flags enable
//     (`compiled_isa`), instantiated inline in the user's TU;
//   * the optional `lowbit_kernels` library (cmake/lowbitKernels.cmake): one TU per ISA built
//     with that ISA's flags, and a run-time choice by cpuid (`detect_isa`), so one binary
//     runs on AVX2-only and AVX-512 machines.
#include <string_view>


// The names every TU agrees on, whatever its flags (outside the ABI tag, core/abi.hpp): the
// compiled kernel library's interface uses them across TUs built for different ISAs.
namespace lowbit::kernel_interface {

// Ordered: a higher level implies every lower one on x86.
enum class isa : int {
  generic = 0,     // portable C++ (any CPU, NEON/other archs included)
  avx2 = 1,        // AVX2 + FMA + F16C (Haswell / Zen 1 and later)
  avx512 = 2,      // AVX-512 F/BW/DQ/VL (Skylake-X / Zen 4)
  avx512_vnni = 3  // + VNNI (vpdpbusd: int8 dot products in one instruction; Cascade Lake / Zen 4)
};
inline constexpr int isa_count = 4;

}  // namespace lowbit::kernel_interface

namespace lowbit::inline LOWBIT_ABI::kernel::cpu {

using kernel_interface::isa;
using kernel_interface::isa_count;

inline constexpr std::string_view isa_name(isa i) {
  switch (i) {
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
    case isa::avx512_vnni: return "avx512_vnni";
    default: return "generic";
  }
}

// The best ISA this translation unit's flags enable.
inline constexpr isa compiled_isa() {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__AVX512VNNI__) && defined(__FMA__) && defined(__F16C__)
  return isa::avx512_vnni;
#elif defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__FMA__) && defined(__F16C__)
  return isa::avx512;
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  return isa::avx2;
#else
  return isa::generic;
#endif
}

// The best ISA the running CPU (and OS: __builtin_cpu_supports checks XSAVE state) executes.
inline isa detect_isa() {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  // F16C through CPUID (leaf 1, ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c".
  // The instruction itself, not <cpuid.h>: that header would hand every includer its
  // __cpuid macros (which clash with engines' own) and ~140 bit_* / signature_* macros.
  unsigned eax = 1, ebx = 0, ecx = 0, edx = 0;
  __asm__ __volatile__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
  (void)ebx;
  (void)edx;
  const bool f16c = (ecx & (1u << 29)) != 0;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (avx512 && __builtin_cpu_supports("avx512vnni")) return isa::avx512_vnni;
  if (avx512) return isa::avx512;
  if (avx2) return isa::avx2;
#endif
  return isa::generic;
}

}  // namespace lowbit::kernel::cpu
