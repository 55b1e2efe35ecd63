// Quantize one LLM-shaped matrix at 2/3/4/8 bits, per-OC and per-IC, and print what a user
// asks first: the reconstruction error, the exact bits per weight and the GEMV speed.
#include <lowbit/lowbit.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

namespace {

Eigen::MatrixXf llm_like_weights(Eigen::Index rows, Eigen::Index cols) {
  // Heavy-tailed entries (LLM weights are far from Gaussian) with a few salient columns.
  std::mt19937 rng(42);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::chi_squared_distribution<float> chi(3.0f);
  Eigen::MatrixXf W(rows, cols);
  for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = 0.02f * n(rng) / std::sqrt(chi(rng) / 3.0f);
  for (Eigen::Index c = 0; c < cols; c += 97) W.col(c) *= 8.0f;
  return W;
}

template <class Method>
void report(const char* name, const Eigen::MatrixXf& W) {
  auto q = lowbit::quantize<Method>(W);
  const Eigen::MatrixXf D = q.dequantize();
  const double rel = (W - D).squaredNorm() / W.squaredNorm();
  std::vector<float> x(static_cast<std::size_t>(W.cols()), 0.01f), y(static_cast<std::size_t>(W.rows()));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 13);
  q.gemv(x, y);  // warm-up
  const int reps = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) q.gemv(x, y);
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::printf("%-26s bits/weight %6.3f   rel. error %.2e   quantize %7.1f ms   gemv %8.1f us\n", name,
              q.bits_per_weight(), rel, 1e3 * q.report.seconds, us);
}

}  // namespace

int main() {
  using namespace lowbit;
  const Eigen::MatrixXf W = llm_like_weights(2048, 2048);
  std::printf("lowbit %s: a 2048 x 2048 heavy-tailed matrix\n", lowbit::version);
  report<rtn<bits<8>, group<oc, 128>>>("rtn 8-bit oc g128", W);
  report<rtn<bits<4>, group<oc, 128>>>("rtn 4-bit oc g128", W);
  report<rtn<bits<4>, group<ic, 128>>>("rtn 4-bit ic g128", W);
  report<rtn<bits<4>, group<oc, 128>, mse_clip<>>>("rtn 4-bit oc g128 mse-clip", W);
  report<rtn<bits<3>, group<oc, 128>>>("rtn 3-bit oc g128", W);
  report<rtn<bits<3>, group<oc, 128>, mse_clip<>>>("rtn 3-bit oc g128 mse-clip", W);
  report<rtn<bits<2>, group<oc, 32>, mse_clip<>>>("rtn 2-bit oc g32 mse-clip", W);
  return 0;
}
