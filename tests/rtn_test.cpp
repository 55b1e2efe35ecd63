// RTN against an independent float64 reference of the grid formula, a brute-force clip
// search, and the bad-input contract.
#include <lowbit/rtn.hpp>

#include <cmath>
#include <limits>

#include "lowbit_catch.hpp"
#include "test_data.hpp"

using namespace lowbit;

namespace {
// The asymmetric min-max grid of the spec, in double, written from the formula (not the code).
double ref_fake_quant(double w, double lo, double hi, int b) {
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  if (lo == 0 && hi == 0) { lo = -1; hi = 1; }
  const int maxq = (1 << b) - 1;
  const double scale = static_cast<double>(half(static_cast<float>((hi - lo) / maxq)).to_float());
  const double zero = std::nearbyint(-lo / scale);
  const double q = std::clamp(std::nearbyint(w / scale) + zero, 0.0, static_cast<double>(maxq));
  return scale * (q - zero);
}
}  // namespace

TEMPLATE_TEST_CASE_SIG("rtn: per-OC groups match the float64 reference", "", ((int B), B), 2, 3, 4, 8) {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(37, 200, 11);  // awkward: 200 = 3×64 + 8
  auto q = quantize<rtn<bits<B>, group<oc, 64>>>(W);
  const Eigen::MatrixXf D = q.dequantize();
  for (Eigen::Index r = 0; r < W.rows(); ++r)
    for (Eigen::Index g = 0; g < W.cols(); g += 64) {
      const Eigen::Index n = std::min<Eigen::Index>(64, W.cols() - g);
      const double lo = W.row(r).segment(g, n).minCoeff(), hi = W.row(r).segment(g, n).maxCoeff();
      for (Eigen::Index c = g; c < g + n; ++c)
        REQUIRE(D(r, c) == Approx(ref_fake_quant(W(r, c), lo, hi, B)).margin(1e-6));
    }
}

TEST_CASE("rtn: per-IC groups share stats down a column") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(70, 33, 12);  // 70 rows: groups 32, 32, 6
  auto q = quantize<rtn<bits<3>, group<ic, 32>>>(W);
  CHECK(q.group_axis() == ic);
  const Eigen::MatrixXf D = q.dequantize();
  for (Eigen::Index c = 0; c < W.cols(); ++c)
    for (Eigen::Index g = 0; g < W.rows(); g += 32) {
      const Eigen::Index n = std::min<Eigen::Index>(32, W.rows() - g);
      const double lo = W.col(c).segment(g, n).minCoeff(), hi = W.col(c).segment(g, n).maxCoeff();
      for (Eigen::Index r = g; r < g + n; ++r) REQUIRE(D(r, c) == Approx(ref_fake_quant(W(r, c), lo, hi, 3)).margin(1e-6));
    }
}

TEST_CASE("rtn: row-major, column-major and raw views give identical codes") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(48, 96, 3);
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> R = W;
  using M = rtn<bits<4>, group<oc, 32>>;
  auto a = quantize<M>(W), b = quantize<M>(R);
  auto c = quantize<M>(row_major(R.data(), 48, 96));
  CHECK(std::equal(a.codes().begin(), a.codes().end(), b.codes().begin()));
  CHECK(std::equal(a.codes().begin(), a.codes().end(), c.codes().begin()));
  CHECK(a.dequantize() == b.dequantize());
}

TEST_CASE("rtn: symmetric grid keeps zero at the middle code and stores no zeros") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(8, 64, 4);
  auto q = quantize<rtn<bits<4>, group<oc, per_channel>, symmetric>>(W);
  CHECK(!q.stats().has_zeros());
  CHECK(q.params(0, 0).zero == 8.0f);
  const Eigen::MatrixXf D = q.dequantize();
  for (Eigen::Index r = 0; r < 8; ++r) {
    const double m = W.row(r).cwiseAbs().maxCoeff();
    const double scale = half(static_cast<float>(2 * m / 15)).to_float();
    for (Eigen::Index c = 0; c < 64; ++c) REQUIRE(std::abs(D(r, c) - W(r, c)) <= scale * 0.5 + 1e-3 * m);
  }
}

TEST_CASE("rtn: mse_clip picks the brute-force best shrink factor") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(16, 128, 5);
  auto q = quantize<rtn<bits<3>, group<oc, 128>, mse_clip<>>>(W);
  const Eigen::MatrixXf D = q.dequantize();
  for (Eigen::Index r = 0; r < 16; ++r) {
    // Brute force over the same 80 shrink factors, error in double.
    const double lo = W.row(r).minCoeff(), hi = W.row(r).maxCoeff();
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < 80; ++i) {
      const double p = 1.0 - i / 100.0;
      double err = 0;
      for (Eigen::Index c = 0; c < 128; ++c) {
        // fake-quantize with the clipped range [p lo, p hi]
        const double w = W(r, c);
        const int maxq = 7;
        const double s = half(static_cast<float>((std::max(p * hi, 0.0) - std::min(p * lo, 0.0)) / maxq)).to_float();
        const double z = std::nearbyint(-std::min(p * lo, 0.0) / s);
        const double qq = std::clamp(std::nearbyint(w / s) + z, 0.0, 7.0);
        err += std::pow(std::abs(s * (qq - z) - w), 2.4);
      }
      best = std::min(best, err);
    }
    double got = 0;
    for (Eigen::Index c = 0; c < 128; ++c) got += std::pow(std::abs(static_cast<double>(D(r, c)) - W(r, c)), 2.4);
    REQUIRE(got == Approx(best).epsilon(1e-3));
    // and never worse than plain min-max
    double mm = 0;
    for (Eigen::Index c = 0; c < 128; ++c) mm += std::pow(std::abs(ref_fake_quant(W(r, c), lo, hi, 3) - W(r, c)), 2.4);
    REQUIRE(got <= mm * (1 + 1e-6));
  }
}

TEST_CASE("rtn: mse_range_zero picks the brute-force best (step, zero point) pair") {
  // Groups with one outlier on one side: shrinking the min/max grid keeps its lopsided zero
  // point; the best grid clips the outlier and re-centres on the bulk.
  Eigen::MatrixXf W = lowbit_test::gaussian(12, 96, 21);
  for (Eigen::Index r = 0; r < W.rows(); ++r)
    for (Eigen::Index c0 = 0; c0 < 96; c0 += 32) W(r, c0 + (r * 7 + c0) % 32) = (r % 2 ? 5.0f : -5.0f);
  constexpr int grid = 40, maxq = 7;
  auto q = quantize<rtn<bits<3>, group<oc, 32>, mse_range_zero<240, grid>>>(W);
  auto c = quantize<rtn<bits<3>, group<oc, 32>, mse_clip<240, grid, 100>>>(W);
  const Eigen::MatrixXf D = q.dequantize(), Dc = c.dequantize();
  int better = 0;  // groups where moving the zero point beat every shrink of the min/max grid
  for (Eigen::Index r = 0; r < W.rows(); ++r)
    for (Eigen::Index c0 = 0; c0 < 96; c0 += 32) {
      // Brute force over every (i, z) of owq/quant.py, written from its formula, error in double.
      double lo = 0, hi = 0;
      for (Eigen::Index k = c0; k < c0 + 32; ++k) {
        lo = std::min<double>(lo, W(r, k));
        hi = std::max<double>(hi, W(r, k));
      }
      double best = std::numeric_limits<double>::infinity();
      for (int i = 1; i <= grid; ++i) {
        const double s = half(static_cast<float>((hi - lo) * i / grid / maxq)).to_float();
        for (int z = 0; z <= maxq; ++z) {
          double err = 0;
          for (Eigen::Index k = c0; k < c0 + 32; ++k) {
            const double qq = std::clamp(std::nearbyint(W(r, k) / s) + z, 0.0, double{maxq});
            err += std::pow(std::abs(s * (qq - z) - W(r, k)), 2.4);
          }
          best = std::min(best, err);
        }
      }
      auto err_of = [&](const Eigen::MatrixXf& M) {
        double e = 0;
        for (Eigen::Index k = c0; k < c0 + 32; ++k) e += std::pow(std::abs(static_cast<double>(M(r, k)) - W(r, k)), 2.4);
        return e;
      };
      const double got = err_of(D);
      REQUIRE(got == Approx(best).epsilon(1e-4));
      // Its candidates include mse_clip's and min-max's: never worse than either.
      REQUIRE(got <= err_of(Dc) * (1 + 1e-6));
      if (got < err_of(Dc) * (1 - 1e-3)) ++better;
      double mm = 0;  // the group's min/max grid (lo, hi already include 0, as ref_fake_quant does)
      for (Eigen::Index k = c0; k < c0 + 32; ++k) mm += std::pow(std::abs(ref_fake_quant(W(r, k), lo, hi, 3) - W(r, k)), 2.4);
      REQUIRE(got <= mm * (1 + 1e-6));
    }
  CHECK(better > 0);  // the zero-point half of the search mattered on these rows
}

TEST_CASE("rtn: mse_range_zero on a symmetric grid is the full-depth range search") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(8, 64, 4);
  auto a = quantize<rtn<bits<4>, group<oc, 64>, symmetric, mse_range_zero<240, 50>>>(W);
  auto b = quantize<rtn<bits<4>, group<oc, 64>, symmetric, mse_clip<240, 50, 100>>>(W);
  CHECK(a.dequantize() == b.dequantize());
}

TEST_CASE("rtn: gemv and gemm agree with the dequantized matrix") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(33, 130, 6);
  auto q = quantize<rtn<bits<2>, group<ic, 16>>>(W);
  const Eigen::VectorXf x = lowbit_test::gaussian(130, 1, 7);
  Eigen::VectorXf y(33);
  q.gemv({x.data(), 130}, {y.data(), 33});
  const Eigen::VectorXd ref = q.dequantize().cast<double>() * x.cast<double>();
  CHECK((y.cast<double>() - ref).norm() <= 1e-5 * ref.norm());
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> X = lowbit_test::gaussian(3, 130, 8);
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Y(3, 33);
  q.gemm({X.data(), 390}, {Y.data(), 99}, 3);
  const Eigen::MatrixXd refm = X.cast<double>() * q.dequantize().cast<double>().transpose();
  CHECK((Y.cast<double>() - refm).norm() <= 1e-5 * refm.norm());
}

TEST_CASE("rtn: bad input ends in lowbit::error naming the problem") {
  Eigen::MatrixXf W = lowbit_test::gaussian(4, 8, 9);
  W(2, 5) = std::numeric_limits<float>::quiet_NaN();
  using M = rtn<bits<4>, group<oc, 4>>;
  CHECK_THROWS_WITH(quantize<M>(W), Catch::Contains("non-finite") && Catch::Contains("row 2, column 5"));
  W(2, 5) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(quantize<M>(W), Catch::Contains("non-finite"));
  Eigen::MatrixXf E(0, 8);
  CHECK_THROWS_WITH(quantize<M>(E), Catch::Contains("empty"));
  auto q = quantize<M>(lowbit_test::gaussian(4, 8, 10));
  std::vector<float> x(7), y(4);
  CHECK_THROWS_WITH(q.gemv(x, y), Catch::Contains("x has 7 entries"));
}

TEST_CASE("rtn: constant and all-zero groups decode exactly, without dividing by zero") {
  Eigen::MatrixXf W = Eigen::MatrixXf::Zero(2, 32);
  W.row(1).setConstant(0.25f);
  auto q = quantize<rtn<bits<4>, group<oc, 32>>>(W);
  const Eigen::MatrixXf D = q.dequantize();
  CHECK(D.row(0).isZero());
  CHECK(D.row(1).isApproxToConstant(0.25f, 1e-3f));
}

TEST_CASE("rtn: results do not depend on the thread count") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(257, 300, 13);
  using M = rtn<bits<3>, group<ic, 64>, mse_clip<>>;
  set_num_threads(1);
  auto a = quantize<M>(W);
  set_num_threads(4);
  auto b = quantize<M>(W);
  set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
  CHECK(std::equal(a.codes().begin(), a.codes().end(), b.codes().begin()));
  CHECK(a.dequantize() == b.dequantize());
}
