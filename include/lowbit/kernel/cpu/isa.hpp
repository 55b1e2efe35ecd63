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

#include "lowbit/core/shared_state.hpp"

#if defined(__aarch64__) && defined(__linux__)
// getauxval(AT_HWCAP), declared here rather than through <sys/auxv.h>, which would hand every
// includer its AT_* / HWCAP_* macros (the reason detect_isa does not include <cpuid.h>).
// The asm label binds lowbit's own declaration to the libc symbol without redeclaring
// ::getauxval (whose exception specification differs between libcs).
extern "C" unsigned long lowbit_getauxval(unsigned long type) __asm__("getauxval");
#endif


// The names every TU agrees on, whatever its flags (outside the ABI tag, core/abi.hpp): the
// compiled kernel library's interface uses them across TUs built for different ISAs.
namespace lowbit::kernel_interface {

// Two families, one per architecture; within a family a higher level implies every lower
// one (x86: avx512_vnni > avx512 > avx2; arm: neon_dotprod > neon). `generic` belongs to
// both. Compare levels with isa_level / isa_family (isa.hpp), never the raw values across
// families: the values only order the enum (runnable_tables lists generic, the x86 sets,
// then the arm sets) and stay stable for code compiled before the arm levels existed.
enum class isa : int {
  generic = 0,      // portable C++ (any CPU)
  avx2 = 1,         // AVX2 + FMA + F16C (Haswell / Zen 1 and later)
  avx512 = 2,       // AVX-512 F/BW/DQ/VL (Skylake-X / Zen 4)
  avx512_vnni = 3,  // + VNNI (vpdpbusd: int8 dot products in one instruction; Cascade Lake / Zen 4)
  neon = 4,         // aarch64 Advanced SIMD (every ARMv8-A core)
  neon_dotprod = 5  // + the dot-product extension (sdot/udot; Cortex-A55/A76, Neoverse, Apple M)
};
inline constexpr int isa_count = 6;

enum class isa_family : int { any = 0, x86 = 1, arm = 2 };

inline constexpr isa_family family_of(isa i) {
  switch (i) {
    case isa::avx2:
    case isa::avx512:
    case isa::avx512_vnni: return isa_family::x86;
    case isa::neon:
    case isa::neon_dotprod: return isa_family::arm;
    default: return isa_family::any;
  }
}

// The level within the family: 0 generic; x86 1..3; arm 1..2. A cap (set_max_isa) is a
// level: set_max_isa(isa::avx2) on an arm machine allows neon (level 1), not neon_dotprod.
inline constexpr int isa_level(isa i) {
  switch (i) {
    case isa::avx2: return 1;
    case isa::avx512: return 2;
    case isa::avx512_vnni: return 3;
    case isa::neon: return 1;
    case isa::neon_dotprod: return 2;
    default: return 0;
  }
}

// Whether a machine whose best set is `best` runs the set `i` (same family, or generic).
inline constexpr bool isa_runs_on(isa i, isa best) {
  return i == isa::generic || (family_of(i) == family_of(best) && isa_level(i) <= isa_level(best));
}

}  // namespace lowbit::kernel_interface

namespace lowbit::inline LOWBIT_ABI::kernel::cpu {

using kernel_interface::family_of;
using kernel_interface::isa;
using kernel_interface::isa_count;
using kernel_interface::isa_family;
using kernel_interface::isa_level;
using kernel_interface::isa_runs_on;

inline constexpr std::string_view isa_name(isa i) {
  switch (i) {
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
    case isa::avx512_vnni: return "avx512_vnni";
    case isa::neon: return "neon";
    case isa::neon_dotprod: return "neon_dotprod";
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
#elif defined(__aarch64__) && defined(__ARM_NEON) && defined(__ARM_FEATURE_DOTPROD)
  return isa::neon_dotprod;
#elif defined(__aarch64__) && defined(__ARM_NEON)
  return isa::neon;
#else
  return isa::generic;
#endif
}

#if defined(__aarch64__) && defined(__linux__)
inline unsigned long arm_hwcap() { return lowbit_getauxval(16ul /* AT_HWCAP */); }
#endif

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
#elif defined(__aarch64__) && defined(__linux__)
  // The kernel's view of the CPU (AT_HWCAP; asimd is bit 1, asimddp bit 20: <asm/hwcap.h>).
  const unsigned long hwcap = arm_hwcap();
  if ((hwcap & (1ul << 1)) && (hwcap & (1ul << 20))) return isa::neon_dotprod;
  if (hwcap & (1ul << 1)) return isa::neon;
#elif defined(__aarch64__) && defined(__ARM_NEON)
  return compiled_isa();  // no run-time query here: what the compiler was told
#endif
  return isa::generic;
}

// The machine's best set, detected once (cpuid / AT_HWCAP) for both dispatchers: the float
// kernel tables (dispatch.hpp) and the int8 paths (int8/isa.hpp).
inline isa machine_isa() {
  static const isa best = detect_isa();
  return best;
}

// Whether the cap of set_max_isa (dispatch.hpp; one cap for the float and the int8 kernels)
// allows set `i`. The cap is a level (isa_level), so it reads the same on x86 and arm.
inline bool isa_within_cap(isa i) {
  return isa_level(i) <= isa_level(static_cast<isa>(shared::max_isa_cap.load()));
}

}  // namespace lowbit::kernel::cpu
