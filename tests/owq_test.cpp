// OWQ: weak columns by sensitivity, placed last in GPTQ's order (checked against a plain
// float64 loop), exact bits accounting, lower output error than GPTQ at the same base bits on
// inputs with outlier channels; weak column tuning (gradient, Adam, frozen low-bit part).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "lowbit/owq.hpp"
#include "lowbit/rtn.hpp"
#include "lowbit_catch.hpp"
#include "test_data.hpp"

namespace {

using namespace lowbit;
using owq3 = owq<bits<3>, group<oc, per_channel>, mse_clip<>>;

Eigen::MatrixXd hessian_of(const Eigen::MatrixXf& X) {
  hessian H(X.rows());
  H.add_batch(X);
  return H.matrix();
}

double output_error(const Eigen::MatrixXf& W, const Eigen::MatrixXf& W_hat, const Eigen::MatrixXf& X) {
  return ((W - W_hat).cast<double>() * X.cast<double>()).squaredNorm();
}

// Sensitivity by its definition, in float64: H_jj · ‖W[:, j] − RTN_mse(W)[:, j]‖².
std::vector<Eigen::Index> top_sensitive(const Eigen::MatrixXf& W, const Eigen::MatrixXd& H, Eigen::Index k) {
  const Eigen::MatrixXf R = quantize<rtn<bits<3>, group<oc, per_channel>, mse_clip<>>>(W).dequantize();
  std::vector<double> s(static_cast<std::size_t>(W.cols()));
  for (Eigen::Index j = 0; j < W.cols(); ++j)
    s[static_cast<std::size_t>(j)] = H(j, j) * (W.col(j) - R.col(j)).cast<double>().squaredNorm();
  std::vector<Eigen::Index> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return s[static_cast<std::size_t>(a)] > s[static_cast<std::size_t>(b)]; });
  idx.resize(static_cast<std::size_t>(k));
  return idx;
}

// Plain float64 GPTQ with the weak columns last and never quantized; per-channel stats fitted
// (mse search) on the original non-weak weights of each row, as OWQ's find_params does.
Eigen::MatrixXd reference_owq(const Eigen::MatrixXf& W, const Eigen::MatrixXd& H, const std::vector<Eigen::Index>& weak) {
  using PM = owq3::packed_type;
  const Eigen::Index rows = W.rows(), n = W.cols();
  std::vector<Eigen::Index> order;
  for (Eigen::Index j = 0; j < n; ++j)
    if (std::find(weak.begin(), weak.end(), j) == weak.end()) order.push_back(j);
  const Eigen::Index nq = static_cast<Eigen::Index>(order.size());
  order.insert(order.end(), weak.begin(), weak.end());
  Eigen::MatrixXd Wp(rows, n), Hp(n, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    Wp.col(i) = W.col(order[static_cast<std::size_t>(i)]).cast<double>();
    for (Eigen::Index j = 0; j < n; ++j) Hp(i, j) = H(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  Hp.diagonal().array() += 0.01 * Hp.diagonal().mean();
  const Eigen::MatrixXd U = Eigen::MatrixXd(Hp.inverse()).llt().matrixU();
  const grid_spec spec = grid_spec_for<PM>();
  std::vector<grid_params> row_params;
  for (Eigen::Index r = 0; r < rows; ++r) {
    std::vector<float> g;
    for (Eigen::Index i = 0; i < nq; ++i) g.push_back(static_cast<float>(Wp(r, i)));
    row_params.push_back(fit_group<mse_clip<>>({g.data(), nq, 1}, spec));
  }
  Eigen::MatrixXd Q(rows, n);
  for (Eigen::Index pos = 0; pos < nq; ++pos) {
    Eigen::VectorXd e(rows);
    for (Eigen::Index r = 0; r < rows; ++r) {
      const auto p = row_params[static_cast<std::size_t>(r)];
      const double q = decode(encode(static_cast<float>(Wp(r, pos)), p, spec.maxq()), p);
      Q(r, order[static_cast<std::size_t>(pos)]) = q;
      e(r) = (Wp(r, pos) - q) / U(pos, pos);
    }
    for (Eigen::Index k = pos + 1; k < n; ++k) Wp.col(k) -= e * U(pos, k);
  }
  for (Eigen::Index pos = nq; pos < n; ++pos) Q.col(order[static_cast<std::size_t>(pos)]) = Wp.col(pos);
  return Q;
}

}  // namespace

TEST_CASE("owq: weak columns are the most sensitive, placed last, stored compensated", "[owq][reference]") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(40, 128, 81);
  const Eigen::MatrixXd H = hessian_of(lowbit_test::activations(128, 800, 82));
  owq_options o;
  o.weak_columns = 6;
  o.gptq.blocksize = 32;
  const auto q = quantize<owq3>(W, H, o);
  REQUIRE(q.weak_count() == 6);
  auto expect = top_sensitive(W, H, 6);
  std::vector<Eigen::Index> got(q.outliers().columns.begin(), q.outliers().columns.end());
  const auto ref = reference_owq(W, H, expect);  // weak order: most sensitive first
  std::sort(expect.begin(), expect.end());
  CHECK(got == expect);
  const Eigen::MatrixXf D = q.dequantize();
  Eigen::Index same = 0, total = 0;
  for (Eigen::Index c = 0; c < W.cols(); ++c) {
    const bool weak = std::binary_search(expect.begin(), expect.end(), c);
    for (Eigen::Index r = 0; r < W.rows(); ++r) {
      if (weak) {  // fp16 storage of the compensated value
        CHECK(std::abs(D(r, c) - ref(r, c)) <= 1e-3 * std::abs(ref(r, c)) + 1e-6);
        // ... which is not the original weight: the column absorbed updates.
      } else {
        same += std::abs(D(r, c) - ref(r, c)) <= 1e-5 * (1.0 + std::abs(ref(r, c)));
        ++total;
      }
    }
  }
  CHECK(static_cast<double>(same) / static_cast<double>(total) >= 0.999);
  CHECK((D.col(expect[0]) - W.col(expect[0])).norm() > 1e-3 * W.col(expect[0]).norm());
}

TEST_CASE("owq: lower output error than GPTQ at the same base bits on outlier inputs", "[owq]") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(128, 256, 91);
  const Eigen::MatrixXf X = lowbit_test::activations(256, 2048, 92, 6);
  hessian H(256);
  H.add_batch(X);
  owq_options o;
  o.extra_bits = 0.25;  // 16-bit columns: about 4 of 256
  const auto q = quantize<owq3>(W, H, o);
  const auto g = quantize<gptq<bits<3>, group<oc, per_channel>, mse_clip<>>>(W, H);
  const double eo = output_error(W, q.dequantize(), X), eg = output_error(W, g.dequantize(), X);
  INFO("owq " << eo << " (k = " << q.weak_count() << ", " << q.bits_per_weight() << " bits), gptq " << eg << " ("
              << g.bits_per_weight() << " bits)");
  CHECK(q.weak_count() >= 2);
  CHECK(eo < 0.2 * eg);
  // Exact bits: every stored byte, by hand. Per row: ceil(qcols / 32) blocks of 4·3 bytes of
  // codes, an fp16 scale and an fp16 zero; per weak column an int32 index and rows fp16 values.
  const Eigen::Index k = q.weak_count(), qcols = 256 - k;
  const double bytes = 128.0 * (static_cast<double>((qcols + 31) / 32) * 12.0 + 4.0) + 4.0 * k + 2.0 * 128.0 * k;
  CHECK(std::abs(q.bits_per_weight() - 8.0 * bytes / (128.0 * 256.0)) <= 1e-12);
  CHECK(q.report.bits_per_weight == q.bits_per_weight());
  CHECK(q.report.notes.find("weak_columns=" + std::to_string(k)) != std::string::npos);
  // The GEMV kernel runs the low-bit part plus the gathered weak columns.
  const Eigen::VectorXf x = X.col(7);
  Eigen::VectorXf y(128);
  q.gemv(std::span<const float>(x.data(), 256), std::span<float>(y.data(), 128));
  CHECK((y - q.dequantize() * x).norm() <= 1e-4 * (q.dequantize() * x).norm());
}

TEST_CASE("owq: the weak column count from a bits target, a count, a ratio", "[owq][budget]") {
  const lowbit::index rows = 96, cols = 512;
  const double base = owq3::bits_per_weight(rows, cols, 0);
  owq_options o;
  o.target_bits = base + 0.1;
  const lowbit::index k = owq3::weak_count(rows, cols, o);
  CHECK(k % 2 == 0);
  CHECK(k > 0);
  CHECK(owq3::bits_per_weight(rows, cols, k) <= o.target_bits);
  CHECK(owq3::bits_per_weight(rows, cols, k + 2) > o.target_bits);
  owq_options e;
  e.extra_bits = 0.1;
  CHECK(owq3::weak_count(rows, cols, e) == k);
  owq_options n;
  n.weak_columns = 3;  // rounded up to even
  CHECK(owq3::weak_count(rows, cols, n) == 4);
  n.weak_columns = 8;
  n.ratio = 0.375;  // 3 -> 4
  CHECK(owq3::weak_count(rows, cols, n) == 4);
  owq_options low;
  low.target_bits = base - 0.01;
  CHECK_THROWS_AS(owq3::weak_count(rows, cols, low), error);
  owq_options two;
  two.target_bits = 3.01;
  two.weak_columns = 2;
  CHECK_THROWS_AS(owq3::weak_count(rows, cols, two), error);
  CHECK_THROWS_AS(owq3::weak_count(rows, cols, owq_options{}), error);
  owq_options many;
  many.weak_columns = cols;
  CHECK_THROWS_AS(owq3::weak_count(rows, cols, many), error);
}

TEST_CASE("owq: bad inputs throw lowbit::error", "[owq][errors]") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(8, 32, 95);
  Eigen::MatrixXd H = hessian_of(lowbit_test::gaussian(32, 100, 96));
  owq_options o;
  o.weak_columns = 2;
  Eigen::MatrixXf Wn = W;
  Wn(1, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(quantize<owq3>(Wn, H, o), error);
  CHECK_THROWS_AS(quantize<owq3>(W, Eigen::MatrixXd(H.topLeftCorner(16, 16)), o), error);
  H(0, 5) = H(5, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(quantize<owq3>(W, H, o), error);
}

TEST_CASE("wct: the weak column gradient matches finite differences", "[owq][wct]") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(12, 32, 101);
  const Eigen::MatrixXf X = lowbit_test::activations(32, 64, 102, 2);
  owq_options o;
  o.weak_columns = 4;
  const auto q = quantize<owq3>(W, hessian_of(X), o);
  const Eigen::MatrixXf T = lowbit_test::gaussian(12, 64, 103);
  // L = Σ (Ŵ X − T)² / 2, ∂L/∂Y = Ŵ X − T.
  auto loss_at = [&](const Eigen::MatrixXf& Wh) { return 0.5 * ((Wh * X - T).cast<double>()).squaredNorm(); };
  const Eigen::MatrixXf Wh = q.dequantize();
  const Eigen::MatrixXf G = weak_column_gradient(q, X, Eigen::MatrixXf(Wh * X - T));
  REQUIRE(G.rows() == 12);
  REQUIRE(G.cols() == 4);
  for (Eigen::Index j = 0; j < 4; ++j)
    for (Eigen::Index r : {0, 5, 11}) {
      const Eigen::Index c = q.outliers().columns[static_cast<std::size_t>(j)];
      const float h = 1e-2f;
      Eigen::MatrixXf Wp = Wh, Wm = Wh;
      Wp(r, c) += h;
      Wm(r, c) -= h;
      const double numeric = (loss_at(Wp) - loss_at(Wm)) / (2.0 * h);  // exact for a quadratic up to rounding
      CHECK(std::abs(G(r, j) - numeric) <= 1e-3 * (1.0 + std::abs(numeric)));
    }
}

TEST_CASE("wct: tuning on task data lowers held-out error and leaves the low-bit part bitwise", "[owq][wct]") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(48, 96, 111);
  const Eigen::MatrixXf Xall = lowbit_test::activations(96, 1024, 112, 4);
  const Eigen::MatrixXf Xtrain = Xall.leftCols(512), Xtest = Xall.rightCols(512);
  owq_options o;
  o.weak_columns = 8;
  auto q = quantize<owq3>(W, hessian_of(Xtrain), o);
  // The task: a shifted weight matrix; its outputs are the targets.
  const Eigen::MatrixXf W_task = W + 0.01f * lowbit_test::gaussian(48, 96, 113);
  const Eigen::MatrixXf Ytrain = W_task * Xtrain, Ytest = W_task * Xtest;
  const std::vector<std::uint8_t> codes(q.codes().begin(), q.codes().end());
  const auto stats = q.stats();
  const auto columns = q.outliers().columns;
  const double before = ((q.dequantize() * Xtest - Ytest).cast<double>()).squaredNorm();
  wct_options t;
  t.steps = 300;
  t.lr = 2e-3;
  const wct_report rep = tune_weak_columns(q, Xtrain, Ytrain, t);
  const double after = ((q.dequantize() * Xtest - Ytest).cast<double>()).squaredNorm();
  INFO("train loss " << rep.initial_loss << " -> " << rep.final_loss << ", held-out " << before << " -> " << after);
  CHECK(rep.steps == 300);
  CHECK(rep.final_loss < 0.2 * rep.initial_loss);
  CHECK(after < 0.2 * before);
  CHECK(std::equal(codes.begin(), codes.end(), q.codes().begin(), q.codes().end()));
  CHECK(std::equal(stats.scales().begin(), stats.scales().end(), q.stats().scales().begin()));
  CHECK(std::equal(stats.zeros().begin(), stats.zeros().end(), q.stats().zeros().begin()));
  CHECK(q.outliers().columns == columns);
}

TEST_CASE("wct: a user loss callable drives the tuner", "[owq][wct]") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(16, 32, 121);
  const Eigen::MatrixXf X = lowbit_test::activations(32, 128, 122, 2);
  owq_options o;
  o.weak_columns = 2;
  auto q = quantize<owq3>(W, hessian_of(X), o);
  // Push the outputs' mean towards 1 (a loss no target matrix expresses directly).
  const wct_loss mean_to_one = [](const Eigen::MatrixXf& Y, Eigen::MatrixXf& dY) {
    const double m = Y.cast<double>().mean(), n = static_cast<double>(Y.size());
    dY.setConstant(static_cast<float>(2.0 * (m - 1.0) / n));
    return (m - 1.0) * (m - 1.0);
  };
  wct_options t;
  t.steps = 200;
  t.lr = 1e-2;
  const auto rep = tune_weak_columns(q, X, mean_to_one, t);
  CHECK(rep.final_loss < 0.1 * rep.initial_loss);
  CHECK_THROWS_AS(tune_weak_columns(q, Eigen::MatrixXf(X.topRows(31)), mean_to_one), error);
  CHECK_THROWS_AS(tune_weak_columns(q, X, wct_loss{}), error);
}
