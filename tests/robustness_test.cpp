// Robustness under bad input: property tests over random shapes, bit widths, group sizes and
// axes for the quantizers and kernels, and NaN/Inf injection. The property: every input
// either gives the right answer (checked against an independent bound or the float64
// reference kernel) or ends in a lowbit::error that says what is wrong, never a crash.
#include <lowbit/adadim.hpp>
#include <lowbit/awq.hpp>
#include <lowbit/io/interop_autoawq.hpp>
#include <lowbit/io/lowbit_format.hpp>
#include <lowbit/kernel/cpu/reference.hpp>
#include <lowbit/rtn.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "lowbit_catch.hpp"
#include "test_data.hpp"

using namespace lowbit;
using idx = lowbit::index;

namespace {

constexpr float bad_values[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity()};

Eigen::MatrixXf random_matrix(std::mt19937& rng, idx rows, idx cols) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale(-6.0f, 3.0f);
  const float s = std::pow(10.0f, scale(rng));  // 1e-6 .. 1e3: tiny and large weights alike
  Eigen::MatrixXf W(rows, cols);
  for (idx i = 0; i < W.size(); ++i) W.data()[i] = s * n(rng);
  if (rng() % 4 == 0) W.row(static_cast<idx>(rng() % static_cast<std::uint32_t>(rows))).setZero();  // an all-zero row
  return W;
}

// |w - w_hat| <= scale / 2 inside a group's range: RTN's defining property (minmax grids
// contain every weight of their group), in float64 with a little slack for fp16 stats.
template <class PM>
void require_rtn_bound(const Eigen::MatrixXf& W, const PM& pm) {
  const Eigen::MatrixXf D = pm.dequantize();
  REQUIRE(D.allFinite());
  for (idx r = 0; r < W.rows(); ++r)
    for (idx c = 0; c < W.cols(); ++c) {
      const grid_params p = pm.params(r, c);
      const double err = std::abs(static_cast<double>(W(r, c)) - static_cast<double>(D(r, c)));
      // Storage rounds the step s* to s (fp16: relative 2^-11, or 2^-25 absolute below 2^-14;
      // fp32: 2^-24) before the zero is fitted, so the edge codes of the group sit up to
      // maxq |s - s*| further away than half a step.
      const double s = std::abs(static_cast<double>(p.scale));
      const double ds = std::is_same_v<typename PM::stats_policy, fp16_stats> ? std::max(s * 0x1p-11, 0x1p-25) : s * 0x1p-23;
      const double bound = 0.5 * s + PM::max_code * ds + 1e-44;
      if (!(err <= bound)) {
        INFO("row " << r << " col " << c << " w " << W(r, c) << " w_hat " << D(r, c) << " scale " << p.scale);
        REQUIRE(err <= bound);
      }
    }
}

// The public kernel against the float64 reference, on a random x.
template <class PM>
void require_gemv_matches(const PM& pm, std::mt19937& rng) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(pm.cols())), y(static_cast<std::size_t>(pm.rows())), ref(y.size());
  for (auto& v : x) v = n(rng);
  lowbit::gemv(pm, x, y);
  kernel::reference::gemv(pm, x, ref);
  // Kernels may factor s (q - z) x into s (sum q x - z sum x) (llama.cpp, the AWQ kernels do),
  // so their rounding error scales with sum |s| (q + |z|) |x|, not with sum |w x|.
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(pm.cols()));
  for (idx r = 0; r < pm.rows(); ++r) {
    pm.unpack_row_codes(r, codes);
    double mag = 0.0;
    for (idx c = 0; c < pm.cols(); ++c) {
      const grid_params p = pm.params(r, c);
      mag += std::abs(static_cast<double>(p.scale)) * (codes[static_cast<std::size_t>(c)] + std::abs(static_cast<double>(p.zero))) *
             std::abs(static_cast<double>(x[static_cast<std::size_t>(c)]));
    }
    REQUIRE(std::abs(static_cast<double>(y[static_cast<std::size_t>(r)]) - ref[static_cast<std::size_t>(r)]) <= 1e-5 * mag + 1e-30);
  }
  // NaN in x is not an error for a kernel: IEEE says the result is NaN, and it must be.
  x[static_cast<std::size_t>(rng() % x.size())] = std::numeric_limits<float>::quiet_NaN();
  lowbit::gemv(pm, x, y);
  for (float v : y) REQUIRE(std::isnan(v));
}

template <class Method>
void rtn_properties(std::uint32_t seed, int trials) {
  using PM = typename Method::packed_type;
  std::mt19937 rng(seed);
  for (int t = 0; t < trials; ++t) {
    const idx rows = 1 + static_cast<idx>(rng() % 40), cols = 1 + static_cast<idx>(rng() % 150);
    INFO(io::packed_type_name<PM>() << " " << rows << " x " << cols);
    Eigen::MatrixXf W = random_matrix(rng, rows, cols);
    const auto q = quantize<Method>(W);
    // The half-step bound holds for asymmetric minmax grids. Not for mse_clip (it shrinks the
    // range on purpose), nor for symmetric ones: like GPTQ's reference quantizer, a group
    // with no negative weight keeps xmin = 0, so its top codes clip at 7/15 of the maximum.
    if constexpr (!PM::symmetric && !Method::policies::search::searches) require_rtn_bound(W, q.packed());
    require_gemv_matches(q.packed(), rng);
    // One bad value anywhere: a lowbit::error naming its position, never a quantized NaN.
    const idx r = static_cast<idx>(rng() % static_cast<std::uint32_t>(rows)), c = static_cast<idx>(rng() % static_cast<std::uint32_t>(cols));
    W(r, c) = bad_values[rng() % 3];
    REQUIRE_THROWS_WITH(quantize<Method>(W), Catch::Contains("non-finite") && Catch::Contains("row " + std::to_string(r)) &&
                                                 Catch::Contains("column " + std::to_string(c)));
  }
}

}  // namespace

TEST_CASE("robustness: RTN over random shapes, bit widths, group sizes and axes, and NaN/Inf refused by position") {
  rtn_properties<rtn<bits<2>, group<oc, 16>>>(1, 12);
  rtn_properties<rtn<bits<3>, group<oc, 32>>>(2, 12);
  rtn_properties<rtn<bits<3>, group<ic, 8>>>(3, 12);
  rtn_properties<rtn<bits<4>, group<oc, 128>>>(4, 12);
  rtn_properties<rtn<bits<4>, group<ic, per_channel>, symmetric>>(5, 12);
  rtn_properties<rtn<bits<8>, group<oc, 2>>>(6, 12);
  rtn_properties<rtn<bits<4>, group<oc, 64>, fp32_stats>>(7, 12);
  rtn_properties<rtn<bits<2>, group<ic, 4>, symmetric>>(8, 12);
  rtn_properties<rtn<bits<3>, group<oc, per_channel>, mse_clip<>>>(9, 6);
}

TEST_CASE("robustness: empty matrices, extreme magnitudes and shape mismatches") {
  const Eigen::MatrixXf empty(0, 5);
  REQUIRE_THROWS_WITH((quantize<rtn<bits<4>, group<oc, 32>>>(empty)), Catch::Contains("empty"));
  // Magnitudes near float's limits: fp32 stats quantize them to finite weights (even when
  // hi - lo overflows float); fp16 stats cannot hold such steps and say so, never NaN.
  for (float big : {1e30f, 1e38f, 1e-30f, 1e-44f}) {
    Eigen::MatrixXf W = lowbit_test::gaussian(4, 64, 3) * big;
    W(1, 5) = big > 1.0f ? 1.7e38f : W(1, 5);
    W(1, 6) = big > 1.0f ? -1.7e38f : W(1, 6);
    const auto q = quantize<rtn<bits<4>, group<oc, 32>, fp32_stats>>(W);
    REQUIRE(q.dequantize().allFinite());
    require_rtn_bound(W, q.packed());
    if (big > 1.0f) {
      REQUIRE_THROWS_WITH((quantize<rtn<bits<4>, group<oc, 32>>>(W)), Catch::Contains("fp16") && Catch::Contains("fp32_stats"));
    } else {
      REQUIRE((quantize<rtn<bits<4>, group<oc, 32>>>(W)).dequantize().allFinite());
    }
  }
  const auto q = quantize<rtn<bits<4>, group<oc, 32>>>(lowbit_test::gaussian(8, 64, 4));
  std::vector<float> x(63), y(8), X(64 * 3), Y(8 * 3);
  REQUIRE_THROWS_WITH(q.gemv(x, y), Catch::Contains("x has 63 entries"));
  x.resize(64);
  y.resize(7);
  REQUIRE_THROWS_WITH(q.gemv(x, y), Catch::Contains("y has 7 entries"));
  REQUIRE_THROWS_WITH(q.gemm(X, Y, 0), Catch::Contains("batch size"));
  REQUIRE_THROWS_WITH(q.gemm(X, Y, 2), Catch::Contains("X has 192 entries"));
  // packed_matrix's own checks.
  using P = packed_matrix<bits<4>, group<oc, 32>, dense_columns>;
  REQUIRE_THROWS_WITH(P(0, 4), Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(P(4, 8, axis::oc, {8}), Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(P(4, 8, axis::oc, {1, 1}), Catch::Contains("repeat"));
  REQUIRE_THROWS_WITH(P(4, 2, axis::oc, {0, 1}), Catch::Contains("no column to quantize"));
  REQUIRE_THROWS_WITH((packed_matrix<bits<4>, group<oc, 32>>(4, 8, axis::ic)), Catch::Contains("differs"));
}

TEST_CASE("robustness: AWQ and AdaDim refuse non-finite weights and calibration data") {
  std::mt19937 rng(21);
  for (int t = 0; t < 4; ++t) {
    const idx out = 8 + static_cast<idx>(rng() % 8), in = 32 * (1 + static_cast<idx>(rng() % 3)), tokens = 16;
    Eigen::MatrixXf W = lowbit_test::gaussian(out, in, rng());
    Eigen::MatrixXf X = lowbit_test::activations(in, tokens, rng(), 2);
    Eigen::MatrixXf Xbad = X;
    Xbad(static_cast<idx>(rng() % static_cast<std::uint32_t>(in)), static_cast<idx>(rng() % tokens)) = bad_values[t % 3];
    REQUIRE_THROWS_WITH((quantize<awq<bits<4>, group<oc, 32>>>(W, Xbad)), Catch::Contains("finite"));
    REQUIRE_THROWS_WITH((quantize<adadim<rtn<bits<3>, group<oc, 32>>>>(W, Xbad)), Catch::Contains("non-finite"));
    Eigen::MatrixXf Wbad = W;
    Wbad(0, static_cast<idx>(rng() % static_cast<std::uint32_t>(in))) = bad_values[(t + 1) % 3];
    REQUIRE_THROWS_AS((quantize<awq<bits<4>, group<oc, 32>>>(Wbad, X)), lowbit::error);
    REQUIRE_THROWS_WITH((quantize<adadim<rtn<bits<3>, group<oc, 32>>>>(Wbad, X)), Catch::Contains("non-finite"));
    // Mismatched calibration shape.
    REQUIRE_THROWS_AS((quantize<awq<bits<4>, group<oc, 32>>>(W, Eigen::MatrixXf(in + 1, tokens))), lowbit::error);
    // And the good inputs give finite results whose kernels agree with the reference.
    const auto a = quantize<adadim<rtn<bits<3>, group<oc, 32>>>>(W, X);
    require_gemv_matches(a.packed(), rng);
  }
}

TEST_CASE("robustness: random shapes through the lowbit file and the GPTQ layout round-trip exactly") {
  std::mt19937 rng(31);
  for (int t = 0; t < 10; ++t) {
    const idx rows = 32 * (1 + static_cast<idx>(rng() % 3)), cols = 32 * (1 + static_cast<idx>(rng() % 5));
    const Eigen::MatrixXf W = random_matrix(rng, rows, cols);
    auto check = [&]<class M>(M) {
      using PM = typename M::packed_type;
      const auto q = quantize<M>(W);
      io::lowbit_writer w;
      w.add("w", q.packed());
      const PM back = io::lowbit_file::from_memory(w.bytes()).load<PM>("w");
      REQUIRE(std::equal(back.codes().begin(), back.codes().end(), q.codes().begin(), q.codes().end()));
      REQUIRE(back.dequantize() == q.dequantize());
      const PM g = io::from_gptq<PM>(io::to_gptq(q.packed(), io::gptq_checkpoint::v2), io::gptq_checkpoint::v2);
      REQUIRE(g.dequantize() == q.dequantize());
    };
    check(rtn<bits<2>, group<oc, 32>>{});
    check(rtn<bits<3>, group<oc, 32>>{});
    check(rtn<bits<4>, group<oc, per_channel>, symmetric>{});
    check(rtn<bits<8>, group<oc, 64>>{});
  }
}

#include <lowbit/gptq.hpp>
#include <lowbit/spqr.hpp>

TEST_CASE("robustness: GPTQ and SpQR refuse non-finite weights and Hessians, and SpQR results survive the file") {
  std::mt19937 rng(41);
  for (int t = 0; t < 3; ++t) {
    const idx out = 16 + static_cast<idx>(rng() % 17), in = 32 * (1 + static_cast<idx>(rng() % 2));
    const Eigen::MatrixXf W = lowbit_test::gaussian(out, in, rng());
    const Eigen::MatrixXf X = lowbit_test::activations(in, 64, rng(), 2);
    const Eigen::MatrixXf H = 2.0f / 64.0f * X * X.transpose();
    Eigen::MatrixXf Wbad = W, Hbad = H;
    Wbad(static_cast<idx>(rng() % static_cast<std::uint32_t>(out)), 0) = bad_values[t % 3];
    Hbad(1, 2) = bad_values[(t + 1) % 3];
    using G = gptq<bits<3>, group<oc, 16>>;
    using S = spqr<bits<3>>;
    REQUIRE_THROWS_WITH((quantize<G>(Wbad, H)), Catch::Contains("non-finite"));
    REQUIRE_THROWS_WITH((quantize<G>(W, Hbad)), Catch::Contains("non-finite"));
    REQUIRE_THROWS_AS((quantize<G>(W, Eigen::MatrixXf(H.topLeftCorner(in - 1, in - 1)))), lowbit::error);
    REQUIRE_THROWS_AS((quantize<S>(Wbad, H)), lowbit::error);
    REQUIRE_THROWS_AS((quantize<S>(W, Hbad)), lowbit::error);
    const auto g = quantize<G>(W, H);
    REQUIRE(g.dequantize().allFinite());
    require_gemv_matches(g.packed(), rng);
    // SpQR with act-order: the packed part and its column permutation through a lowbit file.
    const auto sq = quantize<S>(W, H, spqr_options{.act_order = true});
    using SP = std::remove_cvref_t<decltype(sq.packed())>;
    std::vector<std::int32_t> perm(sq.permutation().begin(), sq.permutation().end());
    io::lowbit_writer w;
    w.add("spqr", sq.packed());
    w.add_indices("spqr.perm", perm);
    const auto f = io::lowbit_file::from_memory(w.bytes());
    const SP back = f.load<SP>("spqr");
    REQUIRE(back.dequantize() == sq.packed().dequantize());
    REQUIRE(f.load_indices("spqr.perm") == perm);
  }
}
