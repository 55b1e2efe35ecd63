// Header-only use (no lowbit_kernels library linked): lowbit::gemv runs the kernel set this
// TU's flags enable and the portable generic set, both against the float64 reference.
#include <lowbit/kernel/cpu/reference.hpp>
#include <lowbit/kernel/gemv.hpp>

#include <random>

#include "kernel_test_support.hpp"
#include "lowbit_catch.hpp"

using namespace lowbit;
namespace cpu = lowbit::kernel::cpu;

#if defined(LOWBIT_KERNELS_LIBRARY)
#error "kernel_header_only_test must not link lowbit_kernels"
#endif

TEST_CASE("header-only: the static kernel set is the one the flags enable") {
  const auto tables = cpu::runnable_tables();
  REQUIRE(tables.size() >= 1);
  CHECK(tables.front()->id == cpu::isa::generic);
  CHECK(tables.back()->id == cpu::compiled_isa());
  CHECK(cpu::active_table().id == cpu::compiled_isa());
  CHECK(backend_traits<cpu_simd>::isa() == cpu::isa_name(cpu::compiled_isa()));
}

TEST_CASE("header-only: gemm matches the reference, and set_max_isa picks the generic set") {
  using PM = packed_matrix<bits<4>, group<adaptive, 32>, sparse_outliers>;
  for (axis ax : {axis::oc, axis::ic}) {
    const PM W = lowbit_test::random_packed<PM>(67, 133, ax, 5);
    std::mt19937 rng(6);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> X(static_cast<std::size_t>(3 * W.cols()));
    for (auto& v : X) v = d(rng);
    std::vector<float> ref(static_cast<std::size_t>(3 * W.rows())), got(ref.size());
    kernel::reference::gemm(W, X, ref, 3);
    const auto mag = lowbit_test::magnitude(W, X, 3);
    for (cpu::isa cap : {cpu::isa::avx512_vnni, cpu::isa::generic}) {
      cpu::set_max_isa(cap);
      gemm(W, X, got, 3);
      for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(std::abs(got[i] - ref[i]) <= 2e-6 * mag[i]);
    }
    CHECK(cpu::active_table().id == cpu::isa::generic);
    cpu::set_max_isa(cpu::isa::avx512_vnni);
  }
}
