// GPTQ on one layer: accumulate the Hessian from calibration activations batch by batch,
// quantize with GPTQ and compare its output error on held-out inputs with RTN's.
#include <lowbit/gptq.hpp>
#include <lowbit/rtn.hpp>

#include <cstdio>
#include <random>

namespace {

Eigen::MatrixXf gaussian(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  Eigen::MatrixXf m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = n(rng);
  return m;
}

// Activations [in x tokens] like an LLM's: correlated channels and a few outlier channels.
Eigen::MatrixXf llm_activations(Eigen::Index in, Eigen::Index tokens) {
  Eigen::MatrixXf X = gaussian(in, 16, 1) * gaussian(16, tokens, 2) + 0.5f * gaussian(in, tokens, 3);
  for (Eigen::Index c : {7, 100, 333}) X.row(c) *= 30.0f;
  return X;
}

template <class Q>
double output_error(const Eigen::MatrixXf& W, const Q& q, const Eigen::MatrixXf& X) {
  return ((W - q.dequantize()) * X).squaredNorm() / (W * X).squaredNorm();
}

}  // namespace

int main() {
  using namespace lowbit;
  const Eigen::Index rows = 1024, in = 512;
  const Eigen::MatrixXf W = 0.02f * gaussian(rows, in, 4);
  const Eigen::MatrixXf X = llm_activations(in, 4096);
  const Eigen::MatrixXf X_calib = X.leftCols(2048), X_test = X.rightCols(2048);

  // H = 2/N Σ x xᵀ, batch by batch (here 16 batches of 128 tokens, one token per column).
  hessian H(in);
  for (Eigen::Index t = 0; t < X_calib.cols(); t += 128) H.add_batch(X_calib.middleCols(t, 128));

  gptq_options opt;
  opt.act_order = true;  // with per-OC groups: static groups, stored in natural order
  const auto g4 = quantize<gptq<bits<4>, group<oc, 128>>>(W, H, opt);
  const auto r4 = quantize<rtn<bits<4>, group<oc, 128>>>(W);
  const auto g3 = quantize<gptq<bits<3>, group<oc, 128>, mse_clip<>>>(W, H, opt);
  const auto r3 = quantize<rtn<bits<3>, group<oc, 128>, mse_clip<>>>(W);
  std::printf("relative output error on held-out tokens (%td x %td layer)\n", rows, in);
  std::printf("  4-bit g128: rtn %.2e   gptq %.2e   (%.3f bits/weight, %.2f s, loss %.4g)\n", output_error(W, r4, X_test),
              output_error(W, g4, X_test), g4.bits_per_weight(), g4.report.seconds, g4.report.loss);
  std::printf("  3-bit g128: rtn %.2e   gptq %.2e   (%.3f bits/weight)\n", output_error(W, r3, X_test),
              output_error(W, g3, X_test), g3.bits_per_weight());
  std::printf("  gptq notes: %s\n", g4.report.notes.c_str());
  return 0;
}
