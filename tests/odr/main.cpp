// tests/odr.cmake: a baseline program that takes its CPU kernels from lowbit::kernels (one TU
// per ISA, chosen by cpuid at run time). It prints the kernel set it runs and a digest of the
// quantized weights and GEMV results; on a CPU without AVX it must run the generic set.
#include <lowbit/kernel/cpu/dispatch.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

extern "C" std::uint64_t odr_run_baseline();

int main() {
  const std::uint64_t h = odr_run_baseline();
  std::printf("kernels %s, digest %016llx\n",
              std::string(lowbit::kernel::cpu::isa_name(lowbit::kernel::cpu::active_table().id)).c_str(),
              static_cast<unsigned long long>(h));
  return 0;
}
