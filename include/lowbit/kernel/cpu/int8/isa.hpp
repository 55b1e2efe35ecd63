#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Which integer dot-product path the CPU runs, named by the instruction set it needs: the
// one `isa` enum, detection and cap of the CPU backend (kernel/cpu/isa.hpp, dispatch's
// set_max_isa), not a second list.
//   isa::avx512_vnni  vpdpbusd: 64 u8 x s8 products summed into 16 int32 lanes per instruction
//                     (AVX-512 VNNI + BW + VL; Ice Lake, Zen 4 and later);
//   isa::avx2         vpmaddubsw + vpmaddwd: the same u8 x s8 products via int16 pair sums
//                     (any x86-64 since Haswell; an AVX-512 CPU without VNNI runs this one);
//   isa::neon_dotprod sdot: 16 s8 x s8 products summed into 4 int32 lanes per instruction
//                     (aarch64 with the dot-product extension: HWCAP_ASIMDDP);
//   isa::neon         smull + sadalp: the same products via int16 (every aarch64 core);
//   isa::generic      the portable reference every path is tested against.
// xsimd 8.1 has no int8 dot product and no VNNI arch tag, so each path is written with
// intrinsics inside functions marked __attribute__((target(...))): that works header-only,
// with no per-file compiler flags, and the choice below picks the best one the machine has.
#include <optional>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/shared_state.hpp"
#include "lowbit/kernel/cpu/isa.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define LOWBIT_INT8_X86 1
#else
#define LOWBIT_INT8_X86 0
#endif
#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__))
#define LOWBIT_INT8_NEON 1
#else
#define LOWBIT_INT8_NEON 0
#endif

namespace lowbit::inline LOWBIT_ABI {

// The int8 paths, in the backend's ISA enum. isa::avx512 (no VNNI) has none of its own.
inline constexpr bool has_int8_path(kernel::cpu::isa i) { return i != kernel::cpu::isa::avx512; }

inline constexpr std::string_view int8_isa_name(kernel::cpu::isa i) {
  return i == kernel::cpu::isa::generic ? "scalar" : kernel::cpu::isa_name(i);
}

// Whether this machine (CPU and OS: detect_isa) can run the path.
inline bool int8_isa_available(kernel::cpu::isa i) {
  return has_int8_path(i) && kernel::cpu::isa_runs_on(i, kernel::cpu::machine_isa());
}

// The fastest available path under the backend's cap (kernel::cpu::set_max_isa, one cap for
// the float and the int8 kernels).
inline kernel::cpu::isa best_int8_isa() {
  using kernel::cpu::isa;
  for (const isa i : {isa::avx512_vnni, isa::avx2, isa::neon_dotprod, isa::neon})
    if (kernel::cpu::isa_within_cap(i) && int8_isa_available(i)) return i;
  return isa::generic;
}

// Every path this machine can run, the generic one first (what the tests iterate over).
inline std::vector<kernel::cpu::isa> available_int8_isas() {
  using kernel::cpu::isa;
  std::vector<isa> v{isa::generic};
  for (const isa i : {isa::avx2, isa::avx512_vnni, isa::neon, isa::neon_dotprod})
    if (int8_isa_available(i)) v.push_back(i);
  return v;
}

// No request: the best available path; an unavailable explicit request is an error (running
// it would fault with an illegal instruction).
inline kernel::cpu::isa resolve_int8_isa(std::optional<kernel::cpu::isa> i) {
  if (!i) return best_int8_isa();
  detail::require(int8_isa_available(*i), "int8 kernel: ISA path ", int8_isa_name(*i),
                  " is not available on this CPU",
                  has_int8_path(*i) ? "" : " (avx512 without VNNI runs the avx2 path)",
                  "; pass no ISA for the best one, or one of available_int8_isas()");
  return *i;
}

}  // namespace lowbit
