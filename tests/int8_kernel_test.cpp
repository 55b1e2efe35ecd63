// The W x A integer path (kernel/cpu/int8): every ISA path this machine has returns the
// scalar reference's integers bit for bit (and so the same floats), on odd shapes, every
// weight/activation width, and the saturation corner of vpmaddubsw; the result equals the
// float64 product of the dequantized weights and fake-quantized activations.
#include <lowbit/rptq.hpp>
#include <lowbit/rtn.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "lowbit_catch.hpp"
#include "test_data.hpp"

using idx = lowbit::index;

namespace {

// A grid with clusters of the given sizes; cluster c spans a range that grows with c.
lowbit::cluster_activation_grid make_grid(const std::vector<idx>& sizes, int bits) {
  std::vector<idx> off{0};
  std::vector<float> lo, hi;
  for (std::size_t c = 0; c < sizes.size(); ++c) {
    off.push_back(off.back() + sizes[c]);
    for (idx j = 0; j < sizes[c]; ++j) {
      lo.push_back(-0.5f * static_cast<float>(c + 1) + 0.1f);
      hi.push_back(0.7f * static_cast<float>(c + 1));
    }
  }
  return lowbit::cluster_activation_grid::from_ranges(lo, hi, off, bits);
}

// x inside (and a little outside, to hit clamping) each cluster's range.
std::vector<float> make_x(const lowbit::cluster_activation_grid& g, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.1f, 1.1f);
  std::vector<float> x(static_cast<std::size_t>(g.channels()));
  for (idx c = 0; c < g.clusters(); ++c)
    for (idx j = g.offsets[static_cast<std::size_t>(c)]; j < g.offsets[static_cast<std::size_t>(c) + 1]; ++j)
      x[static_cast<std::size_t>(j)] = 0.7f * static_cast<float>(c + 1) * u(rng);
  return x;
}

// Independent float64 reference: W_hat · x_hat.
std::vector<double> reference(const lowbit::wxa_matrix& W, const std::vector<float>& x) {
  const Eigen::MatrixXf D = W.dequantize();
  const std::vector<float> xq = W.activation_grid().fake_quantize(x);
  std::vector<double> y(static_cast<std::size_t>(W.rows()), 0.0);
  for (idx r = 0; r < W.rows(); ++r)
    for (idx c = 0; c < W.cols(); ++c) y[static_cast<std::size_t>(r)] += static_cast<double>(D(r, c)) * xq[static_cast<std::size_t>(c)];
  return y;
}

// Integer dots of every path equal the scalar path's and a brute-force sum; floats equal too.
void check_all_paths(const lowbit::wxa_matrix& W, const std::vector<float>& x) {
  lowbit::wxa_matrix::activations a;
  W.quantize_activations(x, a);
  const idx S = W.segment_count();
  std::vector<std::int32_t> ref(static_cast<std::size_t>(W.rows() * S));
  W.dot(a, 0, W.rows(), ref, lowbit::kernel::cpu::isa::generic);
  // Brute force from the logical codes: sum_c w(r, c) * (q_a(c) - offset).
  const auto& g = W.activation_grid();
  const int off = g.bits == 8 ? 128 : 0;
  for (idx r = 0; r < W.rows(); ++r)
    for (idx s = 0; s < S; ++s) {
      const auto& seg = W.segments()[static_cast<std::size_t>(s)];
      const lowbit::grid_params p = g.params[static_cast<std::size_t>(seg.cluster)];
      std::int64_t acc = 0;
      for (idx c = seg.begin; c < seg.end; ++c)
        acc += static_cast<std::int64_t>(W.code(r, c)) * (lowbit::encode(x[static_cast<std::size_t>(c)], p, g.max_code()) - off);
      REQUIRE(ref[static_cast<std::size_t>(r * S + s)] == acc);
    }
  std::vector<float> y_ref(static_cast<std::size_t>(W.rows()));
  W.gemv(x, y_ref, lowbit::kernel::cpu::isa::generic);
  const std::vector<double> y64 = reference(W, x);
  double num = 0, den = 0;
  for (std::size_t r = 0; r < y64.size(); ++r) {
    num += (y_ref[r] - y64[r]) * (y_ref[r] - y64[r]);
    den += y64[r] * y64[r];
  }
  CHECK(std::sqrt(num / den) < 1e-6);
  for (lowbit::kernel::cpu::isa isa : lowbit::available_int8_isas()) {
    INFO("isa " << lowbit::int8_isa_name(isa) << ", W" << W.weight_bits() << "A" << W.activation_bits());
    std::vector<std::int32_t> got(ref.size());
    W.dot(a, 0, W.rows(), got, isa);
    CHECK(got == ref);
    // A sub-range of rows gives the same integers (row tiling must not matter).
    std::vector<std::int32_t> part(static_cast<std::size_t>(3 * S));
    W.dot(a, 5, 8, part, isa);
    CHECK(std::equal(part.begin(), part.end(), ref.begin() + 5 * S));
    std::vector<float> y(static_cast<std::size_t>(W.rows()));
    W.gemv(x, y, isa);
    CHECK(y == y_ref);
  }
}

}  // namespace

TEST_CASE("int8 kernels: the machine's paths are listed, scalar first") {
  const auto isas = lowbit::available_int8_isas();
  REQUIRE(!isas.empty());
  CHECK(isas.front() == lowbit::kernel::cpu::isa::generic);
  CHECK(lowbit::int8_isa_available(lowbit::best_int8_isa()));
  WARN("best int8 path on this machine: " << lowbit::int8_isa_name(lowbit::best_int8_isa()));
}

TEST_CASE("int8 kernels: one ISA enum and one cap with the float kernels (set_max_isa)") {
  using lowbit::kernel::cpu::isa;
  struct restore {
    ~restore() { lowbit::kernel::cpu::set_max_isa(isa::avx512_vnni); }
  } guard;
  lowbit::kernel::cpu::set_max_isa(isa::generic);
  CHECK(lowbit::best_int8_isa() == isa::generic);
  lowbit::kernel::cpu::set_max_isa(isa::avx2);  // level 1: avx2 on x86, neon on arm, never VNNI / sdot
  const isa capped = lowbit::best_int8_isa();
  CHECK(lowbit::kernel::cpu::isa_level(capped) <= 1);
  CHECK(lowbit::int8_isa_available(capped));
  lowbit::kernel::cpu::set_max_isa(isa::avx512_vnni);
  CHECK(lowbit::kernel::cpu::isa_level(lowbit::best_int8_isa()) >= lowbit::kernel::cpu::isa_level(capped));
  // AVX-512 without VNNI has no int8 path of its own: a request for it names the one it runs.
  CHECK_FALSE(lowbit::int8_isa_available(isa::avx512));
  const auto isas = lowbit::available_int8_isas();
  CHECK(std::find(isas.begin(), isas.end(), isa::avx512) == isas.end());
  const std::vector<idx> sizes = {8, 8};
  const auto g = make_grid(sizes, 8);
  const Eigen::MatrixXf Wf = lowbit_test::gaussian(4, 16, 2);
  const auto W = lowbit::wxa_matrix::quantize(lowbit::to_view(Wf), 4, g);
  std::vector<float> x(16, 1.0f), y(4);
  CHECK_THROWS_WITH(W.gemv(x, y, isa::avx512), Catch::Contains("avx512 without VNNI runs the avx2 path"));
}

TEST_CASE("int8 kernels: every path equals the scalar reference exactly (odd shapes, all widths)") {
  // Cluster sizes that straddle every SIMD width: 1, 31, 33, 64 + 1, 97, 130.
  const std::vector<idx> sizes = {33, 1, 97, 65, 31, 130, 7};
  idx cols = 0;
  for (idx s : sizes) cols += s;
  const Eigen::MatrixXf W = lowbit_test::gaussian(37, cols, 3);
  for (int ab : {8, 4, 3}) {
    const auto grid = make_grid(sizes, ab);
    const auto x = make_x(grid, 17 + static_cast<unsigned>(ab));
    for (int wb : {8, 4, 3, 2}) {
      const auto q = lowbit::wxa_matrix::quantize(lowbit::to_view(W), wb, grid);
      CHECK(q.segment_count() == static_cast<idx>(sizes.size()));
      check_all_paths(q, x);
    }
  }
}

TEST_CASE("int8 kernels: packed_matrix weights, segments = groups ∩ clusters") {
  const std::vector<idx> sizes = {50, 100, 13, 93};  // 256 columns, boundaries not on the 64-groups
  const Eigen::MatrixXf W = lowbit_test::gaussian(21, 256, 9);
  using namespace lowbit;
  const auto pm = quantize<rtn<bits<4>, group<oc, 64>>>(W);
  const auto grid = make_grid(sizes, 8);
  const auto q = wxa_matrix::from_packed(pm, grid);
  // Segments: every cluster boundary and every group boundary.
  CHECK(q.segment_count() == 7);  // 0|50|64|128|150|163|192|256
  CHECK(q.dequantize() == pm.dequantize());
  check_all_paths(q, make_x(grid, 4));
  const auto pm3 = quantize<rtn<bits<3>, group<oc, 32>>>(W);
  const auto q3 = wxa_matrix::from_packed(pm3, make_grid(sizes, 3));
  CHECK(q3.dequantize() == pm3.dequantize());
  check_all_paths(q3, make_x(q3.activation_grid(), 6));
}

TEST_CASE("int8 kernels: W8A8 at the vpmaddubsw saturation corner stays exact") {
  // Weights at their row extremes (codes 0 / 255) against activations at theirs (-128 / 127):
  // pairs of 255 x -128 overflow int16, so AVX2 must not use vpmaddubsw here.
  const idx cols = 96;
  Eigen::MatrixXf W(9, cols);
  for (idx r = 0; r < W.rows(); ++r)
    for (idx c = 0; c < cols; ++c) W(r, c) = ((c + r) % 3 == 0) ? -1.0f : 1.0f;
  const auto grid = make_grid({cols}, 8);
  std::vector<float> x(static_cast<std::size_t>(cols));
  for (idx c = 0; c < cols; ++c) x[static_cast<std::size_t>(c)] = (c % 3 == 0) ? 0.7f : -0.4f;
  const auto q = lowbit::wxa_matrix::quantize(lowbit::to_view(W), 8, grid);
  check_all_paths(q, x);
}

TEST_CASE("int8 kernels: bad input throws lowbit::error") {
  const auto grid = make_grid({40, 24}, 8);
  const Eigen::MatrixXf W = lowbit_test::gaussian(4, 64, 1);
  const auto q = lowbit::wxa_matrix::quantize(lowbit::to_view(W), 4, grid);
  std::vector<float> x(64, 0.5f), y(4);
  x[10] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(q.gemv(x, y), lowbit::error);
  std::vector<float> short_x(63, 0.0f);
  CHECK_THROWS_AS(q.gemv(short_x, y), lowbit::error);
  const Eigen::MatrixXf W65 = lowbit_test::gaussian(4, 65, 1);
  CHECK_THROWS_AS(lowbit::wxa_matrix::quantize(lowbit::to_view(W65), 4, grid), lowbit::error);
  CHECK_THROWS_AS(lowbit::wxa_matrix::quantize(lowbit::to_view(W), 5, grid), lowbit::error);
  CHECK_THROWS_AS(lowbit::fit_activation_range(1.0f, 0.0f, 8), lowbit::error);
  CHECK_THROWS_AS(lowbit::fit_activation_range(0.0f, 1.0f, 9), lowbit::error);
  using namespace lowbit;
  const auto pic = quantize<rtn<bits<4>, group<ic, 64>>>(W);
  CHECK_THROWS_AS(wxa_matrix::from_packed(pic, grid), lowbit::error);
}
