// lowbit::hessian: the running mean over batches equals the one-shot 2/N · X Xᵀ computed by
// a scalar float64 loop, whatever the batch split, layout or thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "lowbit/method/hessian.hpp"
#include "lowbit_catch.hpp"
#include "test_data.hpp"

namespace {

// 2/N Σ_t x_t x_tᵀ by plain loops in float64.
Eigen::MatrixXd one_shot(const Eigen::MatrixXf& X) {
  const Eigen::Index in = X.rows(), n = X.cols();
  Eigen::MatrixXd H = Eigen::MatrixXd::Zero(in, in);
  for (Eigen::Index i = 0; i < in; ++i)
    for (Eigen::Index j = 0; j < in; ++j) {
      double s = 0.0;
      for (Eigen::Index t = 0; t < n; ++t) s += static_cast<double>(X(i, t)) * static_cast<double>(X(j, t));
      H(i, j) = 2.0 * s / static_cast<double>(n);
    }
  return H;
}

double rel_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) { return (a - b).norm() / b.norm(); }

}  // namespace

TEST_CASE("hessian: running mean over uneven batches equals the one-shot float64 mean", "[hessian]") {
  const Eigen::MatrixXf X = lowbit_test::activations(300, 408, 11);
  const Eigen::MatrixXd ref = one_shot(X);
  lowbit::hessian H(300);
  Eigen::Index t = 0;
  for (Eigen::Index m : {7, 100, 1, 300}) {
    H.add_batch(Eigen::MatrixXf(X.middleCols(t, m)));
    t += m;
  }
  REQUIRE(t == X.cols());
  CHECK(H.samples() == 408.0);
  CHECK(rel_diff(H.matrix(), ref) < 1e-12);
  CHECK((H.matrix() - H.matrix().transpose()).norm() == 0.0);
}

TEST_CASE("hessian: layouts agree", "[hessian]") {
  const Eigen::MatrixXf X = lowbit_test::activations(64, 200, 5);
  lowbit::hessian a(64), b(64);
  a.add_batch(X);
  const Eigen::MatrixXf Xt = X.transpose();  // [tokens x in], column-major
  b.add_batch_tokens_major(Eigen::MatrixXf(Xt.topRows(120)));
  // A row-major raw buffer of the remaining 80 tokens.
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rest = Xt.bottomRows(80);
  b.add_batch_tokens_major(lowbit::row_major(rest.data(), 80, 64));
  CHECK(rel_diff(b.matrix(), a.matrix()) < 1e-12);
  CHECK(rel_diff(a.matrix(), one_shot(X)) < 1e-12);
}

TEST_CASE("hessian: sample weights give the reference's per-sequence mean", "[hessian]") {
  const Eigen::MatrixXf X1 = lowbit_test::gaussian(16, 30, 1), X2 = lowbit_test::gaussian(16, 50, 2);
  lowbit::hessian H(16);
  H.add_batch(X1, 1.0);  // one sequence each, as GPTQ's add_batch counts
  H.add_batch(X2, 1.0);
  const Eigen::MatrixXd expect =
      (X1.cast<double>() * X1.cast<double>().transpose() + X2.cast<double>() * X2.cast<double>().transpose());
  CHECK(rel_diff(H.matrix(), expect) < 1e-12);  // 2/2 · Σ
  CHECK(H.samples() == 2.0);
}

TEST_CASE("hessian: fp32 products stay within 1e-5 of float64", "[hessian]") {
  const Eigen::MatrixXf X = lowbit_test::activations(270, 1500, 9);
  lowbit::hessian H(270, lowbit::hessian_products::fp32);
  H.add_batch(X);
  CHECK(rel_diff(H.matrix(), one_shot(X)) < 1e-5);
}

TEST_CASE("hessian: the result does not depend on the thread count", "[hessian][threads]") {
  const Eigen::MatrixXf X = lowbit_test::activations(600, 300, 3);
  lowbit::set_num_threads(1);
  lowbit::hessian a(600);
  a.add_batch(X);
  lowbit::set_num_threads(3);
  lowbit::hessian b(600);
  b.add_batch(X);
  lowbit::set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
  CHECK(a.matrix() == b.matrix());
}

TEST_CASE("hessian: bad batches are rejected with lowbit::error", "[hessian][errors]") {
  lowbit::hessian H(8);
  Eigen::MatrixXf X = lowbit_test::gaussian(8, 10, 4);
  X(3, 7) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(H.add_batch(X), lowbit::error);
  X(3, 7) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(H.add_batch(X), lowbit::error);
  CHECK_THROWS_AS(H.add_batch(lowbit_test::gaussian(9, 10, 4)), lowbit::error);            // wrong in
  CHECK_THROWS_AS(H.add_batch_tokens_major(lowbit_test::gaussian(8, 10, 4)), lowbit::error);  // [tokens x in] = 8 x 10
  CHECK_THROWS_AS(H.add_batch(lowbit_test::gaussian(8, 10, 4), 0.0), lowbit::error);
  lowbit::hessian empty;
  CHECK_THROWS_AS(empty.add_batch(lowbit_test::gaussian(8, 10, 4)), lowbit::error);
  CHECK_THROWS_AS(lowbit::hessian(0), lowbit::error);
  CHECK(H.empty());  // nothing was added by the failed calls
}
