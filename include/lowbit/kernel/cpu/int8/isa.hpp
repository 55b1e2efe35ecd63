#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Which integer dot-product path the CPU offers, decided at run time.
//   avx512_vnni  vpdpbusd: 64 u8 x s8 products summed into 16 int32 lanes per instruction
//                (AVX-512 VNNI + BW + VL; Ice Lake, Zen 4 and later);
//   avx2         vpmaddubsw + vpmaddwd: the same u8 x s8 products via int16 pair sums
//                (any x86-64 since Haswell; with FMA for the scaling step);
//   neon_dotprod sdot: 16 s8 x s8 products summed into 4 int32 lanes per instruction
//                (aarch64 with the dot-product extension: HWCAP_ASIMDDP);
//   neon         smull + sadalp: the same products via int16 (every aarch64 core);
//   scalar       the portable reference every path is tested against.
// xsimd 8.1 has no int8 dot product and no VNNI arch tag, so each path is written with
// intrinsics inside functions marked __attribute__((target(...))): that works header-only,
// with no per-file compiler flags, and the dispatch below picks the best one the machine has.
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define LOWBIT_INT8_X86 1
#else
#define LOWBIT_INT8_X86 0
#endif
#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__))
#define LOWBIT_INT8_NEON 1
#include "lowbit/kernel/cpu/isa.hpp"  // detect_isa (AT_HWCAP)
#else
#define LOWBIT_INT8_NEON 0
#endif

namespace lowbit::inline LOWBIT_ABI {

// (best keeps its value; the arm paths come after it.)
enum class int8_isa { scalar = 0, avx2 = 1, avx512_vnni = 2, best = 3, neon = 4, neon_dotprod = 5 };

inline constexpr std::string_view int8_isa_name(int8_isa i) {
  switch (i) {
    case int8_isa::scalar: return "scalar";
    case int8_isa::avx2: return "avx2";
    case int8_isa::avx512_vnni: return "avx512vnni";
    case int8_isa::best: return "best";
    case int8_isa::neon: return "neon";
    case int8_isa::neon_dotprod: return "neon_dotprod";
  }
  return "?";
}

// Whether this machine (CPU and OS) can run the path.
inline bool int8_isa_available(int8_isa i) {
  switch (i) {
    case int8_isa::scalar: return true;
#if LOWBIT_INT8_X86 && (defined(__GNUC__) || defined(__clang__))
    case int8_isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case int8_isa::avx512_vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if LOWBIT_INT8_NEON
    case int8_isa::neon: return true;  // Advanced SIMD is part of ARMv8-A
    case int8_isa::neon_dotprod: return kernel::cpu::detect_isa() == kernel::cpu::isa::neon_dotprod;
#endif
    default: return false;
  }
}

// The fastest available path (cached: cpuid once).
inline int8_isa best_int8_isa() {
  static const int8_isa best = int8_isa_available(int8_isa::avx512_vnni)    ? int8_isa::avx512_vnni
                               : int8_isa_available(int8_isa::avx2)         ? int8_isa::avx2
                               : int8_isa_available(int8_isa::neon_dotprod) ? int8_isa::neon_dotprod
                               : int8_isa_available(int8_isa::neon)         ? int8_isa::neon
                                                                            : int8_isa::scalar;
  return best;
}

// Every path this machine can run, scalar first (what the tests iterate over).
inline std::vector<int8_isa> available_int8_isas() {
  std::vector<int8_isa> v{int8_isa::scalar};
  for (int8_isa i : {int8_isa::avx2, int8_isa::avx512_vnni, int8_isa::neon, int8_isa::neon_dotprod})
    if (int8_isa_available(i)) v.push_back(i);
  return v;
}

// `best` becomes the best available path; an unavailable explicit request is an error
// (running it would fault with an illegal instruction).
inline int8_isa resolve_int8_isa(int8_isa i) {
  if (i == int8_isa::best) return best_int8_isa();
  detail::require(int8_isa_available(i), "int8 kernel: ISA path ", int8_isa_name(i),
                  " is not available on this CPU; use int8_isa::best or one of available_int8_isas()");
  return i;
}

}  // namespace lowbit
