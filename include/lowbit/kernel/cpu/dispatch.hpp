#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Which kernel set runs. One place decides (xsimd's lesson: keep the dispatch table in one
// place):
//   * header-only use: the set compiled into the caller's TU for its own flags
//     (kernels.hpp, `compiled_table()`), plus the portable `generic` set;
//   * with the `lowbit_kernels` library linked (CMake defines LOWBIT_KERNELS_LIBRARY): one
//     set per ISA, each compiled with that ISA's flags, chosen at run time by cpuid.
// `set_max_isa` caps the choice (benchmarks and tests compare paths; users can rule out
// AVX-512 on machines where it down-clocks).
#include <atomic>
#include <vector>

#include "lowbit/core/shared_state.hpp"
#include "lowbit/kernel/cpu/kernels.hpp"

#if defined(LOWBIT_KERNELS_LIBRARY)
// Defined in the lowbit_kernels library (one definition for the whole program, outside the
// ABI tag): the set built for `i`, or nullptr when the library was built without it (another
// architecture, or a compiler without those flags).
namespace lowbit::kernel_interface::library {
const kernel_table* table(isa i);
}  // namespace lowbit::kernel_interface::library
#endif

namespace lowbit::inline LOWBIT_ABI::kernel::cpu {

#if defined(LOWBIT_KERNELS_LIBRARY)
namespace library = kernel_interface::library;
#endif

// The kernel set for ISA `i` if this build has it and this CPU runs it, else nullptr.
inline const kernel_table* table_for(isa i) {
  if (!isa_runs_on(i, machine_isa())) return nullptr;
#if defined(LOWBIT_KERNELS_LIBRARY)
  return library::table(i);
#else
  if (i == isa::generic) return &LOWBIT_KERNEL_NS::generic::table();
  if (i == compiled_isa()) return &LOWBIT_KERNEL_NS::compiled_table();
  return nullptr;
#endif
}

// Every kernel set this build can run here, best last (tests run each one).
inline std::vector<const kernel_table*> runnable_tables() {
  std::vector<const kernel_table*> out;
  for (int i = 0; i < isa_count; ++i)
    if (const kernel_table* t = table_for(static_cast<isa>(i))) out.push_back(t);
  return out;
}

// Caps the ISA that active_table() picks (isa::generic forces the portable path). The cap is
// a level (isa_level): on arm, set_max_isa(isa::avx2) and set_max_isa(isa::neon) both mean
// "no dot-product instructions"; the default (avx512_vnni, level 3) caps nothing.
inline void set_max_isa(isa cap) { shared::max_isa_cap.store(static_cast<int>(cap)); }

// The best runnable kernel set under the cap.
inline const kernel_table& active_table() {
  for (int i = isa_count - 1; i > 0; --i)
    if (isa_within_cap(static_cast<isa>(i)))
      if (const kernel_table* t = table_for(static_cast<isa>(i))) return *t;
  return LOWBIT_KERNEL_NS::generic::table();
}

}  // namespace lowbit::kernel::cpu

// ---- the library's run-time table (compiled once, in lowbit_kernels' dispatch TU) ----
#if defined(LOWBIT_KERNELS_LIBRARY_IMPL)
namespace lowbit::kernel_interface::library {
#if defined(LOWBIT_KERNELS_WITH_AVX2)
const kernel_table& table_avx2();
#endif
#if defined(LOWBIT_KERNELS_WITH_AVX512)
const kernel_table& table_avx512();
#endif
#if defined(LOWBIT_KERNELS_WITH_AVX512_VNNI)
const kernel_table& table_avx512_vnni();
#endif
#if defined(LOWBIT_KERNELS_WITH_NEON)
const kernel_table& table_neon();
#endif
#if defined(LOWBIT_KERNELS_WITH_NEON_DOTPROD)
const kernel_table& table_neon_dotprod();
#endif
const kernel_table* table(isa i) {
  switch (i) {
#if defined(LOWBIT_KERNELS_WITH_AVX2)
    case isa::avx2: return &table_avx2();
#endif
#if defined(LOWBIT_KERNELS_WITH_AVX512)
    case isa::avx512: return &table_avx512();
#endif
#if defined(LOWBIT_KERNELS_WITH_AVX512_VNNI)
    case isa::avx512_vnni: return &table_avx512_vnni();
#endif
#if defined(LOWBIT_KERNELS_WITH_NEON)
    case isa::neon: return &table_neon();
#endif
#if defined(LOWBIT_KERNELS_WITH_NEON_DOTPROD)
    case isa::neon_dotprod: return &table_neon_dotprod();
#endif
    case isa::generic: return &lowbit::kernel::cpu::LOWBIT_KERNEL_NS::generic::table();
    default: return nullptr;
  }
}
}  // namespace lowbit::kernel_interface::library
#endif
