// AdaDim on three layers: for each, quantize per-OC and per-IC (3-bit, groups of 128) and keep
// the layout with the lower output error on calibration tokens. Prints the choice, the two
// errors, and checks the adaptive matrix runs through the ordinary gemv.
#include <lowbit/adadim.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

Eigen::MatrixXf gaussian(Eigen::Index rows, Eigen::Index cols, unsigned seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, sigma);
  Eigen::MatrixXf m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = n(rng);
  return m;
}

void run(const char* name, const Eigen::MatrixXf& W, const Eigen::MatrixXf& X) {
  using namespace lowbit;
  auto q = quantize<adadim<rtn<bits<3>, group<oc, 128>>>>(W, X);
  // The adaptive matrix runs through the same kernels; they read q.group_axis() at run time.
  std::vector<float> x(static_cast<std::size_t>(W.cols())), y(static_cast<std::size_t>(W.rows()));
  for (Eigen::Index j = 0; j < W.cols(); ++j) x[static_cast<std::size_t>(j)] = X(j, 0);
  q.gemv(x, y);
  const Eigen::VectorXf ref = q.dequantize() * X.col(0);
  double diff = 0;
  for (Eigen::Index i = 0; i < W.rows(); ++i) diff = std::max(diff, std::abs(double(y[static_cast<std::size_t>(i)]) - ref[i]));
  std::printf("%-28s chose %s   error oc %.3e   ic %.3e   %.3f bits/weight   gemv max diff %.1e\n", name,
              axis_name(q.choice.chosen), q.choice.error_oc, q.choice.error_ic, q.bits_per_weight(), diff);
}

}  // namespace

int main() {
  const Eigen::Index out = 512, in = 512, tokens = 256;
  const Eigen::MatrixXf X = gaussian(in, tokens, 1, 1.0f);

  Eigen::MatrixXf plain = gaussian(out, in, 2, 0.02f);
  run("plain gaussian", plain, X);

  Eigen::MatrixXf cols = plain;  // a few large input columns: per-OC groups containing one suffer
  for (Eigen::Index c = 7; c < in; c += 61) cols.col(c) *= 8.0f;
  run("large input columns", cols, X);

  Eigen::MatrixXf rows = plain;  // a few large output rows: per-IC groups containing one suffer
  for (Eigen::Index r = 5; r < out; r += 37) rows.row(r) *= 8.0f;
  run("large output rows", rows, X);
  return 0;
}
