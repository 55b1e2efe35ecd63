// lowbit::gemv / gemm on every ISA path this machine runs (Highway's rule), against the
// float64 reference (kernel/cpu/reference.hpp), on awkward shapes: rows and columns that are
// not multiples of 32, of the vector width or of the group size.
#include <lowbit/kernel/cpu/reference.hpp>
#include <lowbit/kernel/backend_traits.hpp>
#include <lowbit/kernel/gemv.hpp>

#include <cmath>
#include <cstring>
#include <iostream>
#include <random>

#include "kernel_test_support.hpp"
#include "lowbit_catch.hpp"

using namespace lowbit;
namespace cpu = lowbit::kernel::cpu;

namespace {

struct shape {
  lowbit::index rows, cols;
};
constexpr shape shapes[] = {{37, 200}, {70, 33}, {129, 300}, {5, 7}, {1, 65}, {33, 1}};

std::vector<float> random_x(lowbit::index n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = d(rng);
  return x;
}

template <class PM>
void check_against_reference(const PM& W, lowbit::index m, const cpu::kernel_table& K, std::uint32_t seed) {
  const std::vector<float> X = random_x(m * W.cols(), seed);
  std::vector<float> ref(static_cast<std::size_t>(m * W.rows())), got(ref.size(), -1.0f);
  kernel::reference::gemm(W, X, ref, m);
  cpu::gemm_options opt;
  opt.table = &K;
  gemm(W, X, got, m, opt);
  const auto mag = lowbit_test::magnitude(W, X, m);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    INFO("isa " << cpu::isa_name(K.id) << ", " << W.rows() << " x " << W.cols() << ", axis " << axis_name(W.group_axis())
                << ", m " << m << ", entry " << i);
    REQUIRE(std::abs(got[i] - ref[i]) <= 2e-6 * mag[i] + 1e-30);
  }
}

template <class PM>
void run_all_paths(std::uint32_t seed) {
  for (const cpu::kernel_table* K : cpu::runnable_tables())
    for (axis ax : {axis::oc, axis::ic})
      for (const shape& s : shapes) {
        const PM W = lowbit_test::random_packed<PM>(s.rows, s.cols, ax, seed++);
        for (lowbit::index m : {1, 3, 6}) check_against_reference(W, m, *K, seed++);
      }
}

}  // namespace

TEST_CASE("kernel: the ISA paths this machine runs") {
  const auto tables = cpu::runnable_tables();
  std::cout << "kernel paths tested:";
  for (const auto* t : tables) std::cout << ' ' << cpu::isa_name(t->id);
  std::cout << " (best detected: " << cpu::isa_name(cpu::detect_isa()) << ", active: "
            << cpu::isa_name(cpu::active_table().id) << ")\n";
  REQUIRE(!tables.empty());
  CHECK(tables.front()->id == cpu::isa::generic);
#if defined(LOWBIT_KERNELS_LIBRARY) && (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__))
  // The library carries every x86 (or arm) set: the best one the CPU runs must be there.
  CHECK(tables.back()->id == cpu::detect_isa());
#endif
#if defined(__aarch64__)
  // arm runs NEON (issue #21), never the portable loops, and says so.
  const std::string_view active = backend_traits<cpu_simd>::isa();
  CHECK((active == "neon" || active == "neon_dotprod"));
  CHECK(cpu::family_of(cpu::detect_isa()) == cpu::isa_family::arm);
#endif
}

// Types: group<adaptive, G> lets one instantiation run both axes. Every bit width, group
// sizes 4 (below a 16-code segment), 16, 32, 64, 128, 256, 512 and per-channel, both
// symmetries, fp16 and fp32 stats, and both outlier stores.
template <int B, int G, class O = no_outliers, class S = fp16_stats, class Z = asymmetric>
using pm = packed_matrix<bits<B>, group<adaptive, G>, O, S, Z>;

TEMPLATE_TEST_CASE("kernel: gemv/gemm match the float64 reference on every ISA path", "",
                   (pm<4, 128>), (pm<4, 16, no_outliers, fp32_stats, symmetric>), (pm<3, 64>),
                   (pm<2, 32, no_outliers, fp16_stats, symmetric>), (pm<8, per_channel, no_outliers, fp32_stats>),
                   (pm<3, 4>), (pm<2, 256>), (pm<8, 512>), (pm<4, 128, dense_columns>),
                   (pm<3, 16, sparse_outliers>), (pm<2, per_channel, dense_columns, fp32_stats, symmetric>),
                   (pm<8, 32, sparse_outliers, fp16_stats, symmetric>)) {
  run_all_paths<TestType>(1000u);
}

TEST_CASE("kernel: fixed-axis policies (group<oc, G>, group<ic, G>) run too") {
  for (const cpu::kernel_table* K : cpu::runnable_tables()) {
    check_against_reference(lowbit_test::random_packed<packed_matrix<bits<4>, group<oc, 128>>>(45, 300, oc, 7), 2, *K, 8);
    check_against_reference(lowbit_test::random_packed<packed_matrix<bits<3>, group<ic, 16>>>(45, 300, ic, 9), 2, *K, 10);
  }
}

// A stats storage the kernels have no fast path for (as SpQR's quantized_stats<>): they must
// read it through the table's generic decode(begin, n, scale*, zero*, implicit_zero).
struct f64_test_stats {
  static constexpr int storage_bits = 64;
  static constexpr bool second_level = false;
};
template <>
class lowbit::stats_table<f64_test_stats> : public lowbit::dense_stats_table<double> {
  using dense_stats_table<double>::dense_stats_table;
};

TEST_CASE("kernel: other stats storages go through the table's generic decode") {
  using PM = pm<3, 32, no_outliers, f64_test_stats>;
  for (const cpu::kernel_table* K : cpu::runnable_tables())
    for (axis ax : {axis::oc, axis::ic}) {
      check_against_reference(lowbit_test::random_packed<PM>(45, 100, ax, 3), 1, *K, 4);
      check_against_reference(lowbit_test::random_packed<PM>(45, 100, ax, 5), 5, *K, 6);
    }
}

TEST_CASE("kernel: results do not depend on the thread count") {
  using PM = pm<4, 32, sparse_outliers>;
  const unsigned before = num_threads();
  for (axis ax : {axis::oc, axis::ic}) {
    const PM W = lowbit_test::random_packed<PM>(301, 257, ax, 21);
    const std::vector<float> X = random_x(5 * W.cols(), 22);
    std::vector<std::vector<float>> outs;
    for (unsigned t : {1u, 2u, 3u, 7u}) {
      set_num_threads(t);
      std::vector<float> y(static_cast<std::size_t>(5 * W.rows()));
      gemm(W, X, y, 5);
      outs.push_back(y);
      std::vector<float> y8(y.size());
      gemm(W, X, y8, 5, gemm_options{activations::int8, nullptr});
      outs.push_back(y8);
    }
    for (std::size_t k = 2; k < outs.size(); ++k) CHECK(outs[k] == outs[k % 2]);
  }
  set_num_threads(before);
}

TEST_CASE("kernel: gemv equals gemm with m = 1 and rows of a batch are independent") {
  using PM = pm<3, 64, dense_columns>;
  const PM W = lowbit_test::random_packed<PM>(90, 150, oc, 31);
  const std::vector<float> X = random_x(4 * W.cols(), 32);
  std::vector<float> Y(static_cast<std::size_t>(4 * W.rows()));
  gemm(W, X, Y, 4);
  for (lowbit::index i = 0; i < 4; ++i) {
    std::vector<float> y(static_cast<std::size_t>(W.rows()));
    gemv(W, std::span<const float>(X).subspan(static_cast<std::size_t>(i * W.cols()), static_cast<std::size_t>(W.cols())), y);
    for (lowbit::index r = 0; r < W.rows(); ++r) CHECK(y[static_cast<std::size_t>(r)] == Approx(Y[static_cast<std::size_t>(i * W.rows() + r)]).margin(1e-5));
  }
}

// int8 activations: per-OC the result is exactly W_hat x_hat for x rounded per block of
// min(G, 256) quantized columns to absmax/127 steps; per-IC x is scaled per row group first,
// so only the error bound is checked there.
TEMPLATE_TEST_CASE("kernel: int8 activations compute W_hat x_hat on every ISA path", "", (pm<4, 128>), (pm<3, 32>),
                   (pm<2, per_channel, no_outliers, fp16_stats, symmetric>), (pm<8, 512, no_outliers, fp32_stats>),
                   (pm<4, 16>)) {
  for (const cpu::kernel_table* K : cpu::runnable_tables())
    for (const shape& s : shapes) {
      const TestType W = lowbit_test::random_packed<TestType>(s.rows, s.cols, oc, 77);
      const lowbit::index m = 3, qb = W.stat_cols() == 1 ? 256 : std::min<lowbit::index>(W.group_size(), 256);
      std::vector<float> X = random_x(m * W.cols(), 78), Xh = X;
      for (lowbit::index i = 0; i < m; ++i)
        for (lowbit::index b0 = 0; b0 < W.cols(); b0 += qb) {
          const lowbit::index b1 = std::min(W.cols(), b0 + qb);
          float amax = 0.0f;
          for (lowbit::index c = b0; c < b1; ++c) amax = std::max(amax, std::abs(X[static_cast<std::size_t>(i * W.cols() + c)]));
          const float d = amax / 127.0f;
          for (lowbit::index c = b0; c < b1; ++c) {
            float& v = Xh[static_cast<std::size_t>(i * W.cols() + c)];
            v = d == 0.0f ? 0.0f : d * std::nearbyint(v * (1.0f / d));
          }
        }
      std::vector<float> ref(static_cast<std::size_t>(m * W.rows())), got(ref.size());
      kernel::reference::gemm(W, Xh, ref, m);
      gemm(W, X, got, m, gemm_options{activations::int8, K});
      const auto mag = lowbit_test::magnitude(W, Xh, m);
      // Groups under 32 codes, and 8-bit codes without VNNI, take the fp32 path.
      const bool exact_path = (W.stat_cols() == 1 || W.group_size() >= 32) && (K->i8_bits >> TestType::bits & 1u);
      std::vector<float> ref_exact(ref.size());
      kernel::reference::gemm(W, X, ref_exact, m);
      for (std::size_t i = 0; i < ref.size(); ++i) {
        INFO("isa " << cpu::isa_name(K->id) << ", " << W.rows() << " x " << W.cols() << ", entry " << i);
        REQUIRE(std::abs(got[i] - (exact_path ? ref[i] : ref_exact[i])) <= 2e-6 * mag[i] + 1e-30);
      }
    }
}

TEST_CASE("kernel: int8 activations per-IC stay within the activation rounding bound") {
  using PM = pm<4, 32>;
  for (const cpu::kernel_table* K : cpu::runnable_tables()) {
    const PM W = lowbit_test::random_packed<PM>(100, 600, ic, 91);
    const std::vector<float> X = random_x(2 * W.cols(), 92);
    std::vector<float> ref(static_cast<std::size_t>(2 * W.rows())), got(ref.size());
    kernel::reference::gemm(W, X, ref, 2);
    gemm(W, X, got, 2, gemm_options{activations::int8, K});
    // |x - x_hat| <= absmax / 254 per element, and the zero term uses the same x_hat.
    const Eigen::MatrixXf D = W.dequantize();
    for (lowbit::index i = 0; i < 2; ++i)
      for (lowbit::index r = 0; r < W.rows(); ++r) {
        double bound = 0.0;
        for (lowbit::index c = 0; c < W.cols(); ++c) bound += std::abs(D(r, c)) * 4.5 / 254.0 * std::abs(W.params(r, c).scale) / 0.01;
        const std::size_t k = static_cast<std::size_t>(i * W.rows() + r);
        CHECK(std::abs(got[k] - ref[k]) <= bound);
      }
  }
}

TEST_CASE("kernel: bad shapes are lowbit::errors naming the argument") {
  const auto W = lowbit_test::random_packed<pm<4, 32>>(8, 40, oc, 1);
  std::vector<float> x(40), y(8), xs(39), ys(9);
  CHECK_THROWS_WITH(gemv(W, xs, y), Catch::Contains("x has 39 entries"));
  CHECK_THROWS_WITH(gemv(W, x, ys), Catch::Contains("y has 9 entries"));
  CHECK_THROWS_WITH(gemm(W, x, y, 0), Catch::Contains("m = 0"));
  CHECK_THROWS_WITH(gemm(W, x, y, 2), Catch::Contains("X has 40 entries"));
}

// issue #21: the arm levels are a family of their own; x86's "higher implies lower" holds
// within each family only, and a cap is a level.
TEST_CASE("kernel: ISA levels are per architecture family") {
  using cpu::isa;
  static_assert(cpu::isa_runs_on(isa::avx2, isa::avx512_vnni) && cpu::isa_runs_on(isa::avx512, isa::avx512_vnni));
  static_assert(!cpu::isa_runs_on(isa::avx512, isa::avx2));
  static_assert(cpu::isa_runs_on(isa::neon, isa::neon_dotprod) && !cpu::isa_runs_on(isa::neon_dotprod, isa::neon));
  static_assert(!cpu::isa_runs_on(isa::neon, isa::avx512_vnni) && !cpu::isa_runs_on(isa::avx2, isa::neon_dotprod));
  static_assert(cpu::isa_runs_on(isa::generic, isa::neon) && cpu::isa_runs_on(isa::generic, isa::avx2));
  static_assert(cpu::isa_runs_on(isa::generic, isa::generic) && !cpu::isa_runs_on(isa::neon, isa::generic));
  // Capping at each runnable set's own isa makes it the active one.
  for (const cpu::kernel_table* K : cpu::runnable_tables()) {
    cpu::set_max_isa(K->id);
    CHECK(cpu::active_table().id == K->id);
  }
  cpu::set_max_isa(isa::avx512_vnni);  // the default: level 3 caps nothing on either family
  CHECK(cpu::active_table().id == cpu::runnable_tables().back()->id);
}

// The NEON int8-activation kernels reduce each x-block's integer dot exactly and scale it as
// the generic kernel does (kernels.hpp): the same floats, bit for bit (docs/performance.md,
// "Numeric contract"). Only int8-path shapes (groups >= 32 codes) and no outlier store (the
// fp16 outlier dots are float dot products, covered by the bound); nothing to run on x86.
TEMPLATE_TEST_CASE("kernel: int8 activations on neon equal the generic set bit for bit", "", (pm<4, 128>), (pm<3, 32>),
                   (pm<2, per_channel, no_outliers, fp16_stats, symmetric>), (pm<8, 512, no_outliers, fp32_stats>),
                   (pm<4, 64, no_outliers, fp32_stats, symmetric>)) {
  const cpu::kernel_table& G = *cpu::runnable_tables().front();
  REQUIRE(G.id == cpu::isa::generic);
  for (const cpu::kernel_table* K : cpu::runnable_tables()) {
    if (cpu::family_of(K->id) != cpu::isa_family::arm) continue;
    for (axis ax : {axis::oc, axis::ic})
      for (const shape& s : shapes) {
        const TestType W = lowbit_test::random_packed<TestType>(s.rows, s.cols, ax, 91);
        for (lowbit::index m : {1, 3, 6}) {
          const std::vector<float> X = random_x(m * W.cols(), 92);
          std::vector<float> want(static_cast<std::size_t>(m * W.rows())), got(want.size());
          gemm(W, X, want, m, gemm_options{activations::int8, &G});
          gemm(W, X, got, m, gemm_options{activations::int8, K});
          INFO("isa " << cpu::isa_name(K->id) << ", " << W.rows() << " x " << W.cols() << ", axis " << axis_name(ax) << ", m " << m);
          REQUIRE(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
        }
      }
  }
}
