// OWQ on one layer: 3-bit GPTQ plus a few fp16 weak columns chosen by sensitivity, at an
// exact bits budget; then weak column tuning towards a "task" version of the layer.
#include <lowbit/owq.hpp>

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

Eigen::MatrixXf llm_activations(Eigen::Index in, Eigen::Index tokens) {
  Eigen::MatrixXf X = gaussian(in, 16, 1) * gaussian(16, tokens, 2) + 0.5f * gaussian(in, tokens, 3);
  for (Eigen::Index c : {7, 100, 333}) X.row(c) *= 30.0f;  // outlier input channels
  return X;
}

double output_error(const Eigen::MatrixXf& W, const Eigen::MatrixXf& W_hat, const Eigen::MatrixXf& X) {
  return ((W - W_hat) * X).squaredNorm() / (W * X).squaredNorm();
}

}  // namespace

int main() {
  using namespace lowbit;
  const Eigen::Index rows = 1024, in = 512;
  const Eigen::MatrixXf W = 0.02f * gaussian(rows, in, 4);
  const Eigen::MatrixXf X = llm_activations(in, 4096);
  const Eigen::MatrixXf X_calib = X.leftCols(2048), X_test = X.rightCols(2048);
  hessian H(in);
  H.add_batch(X_calib);

  using gptq3 = gptq<bits<3>, group<oc, per_channel>, mse_clip<>>;
  using owq3 = owq<bits<3>, group<oc, per_channel>, mse_clip<>>;
  const auto g = quantize<gptq3>(W, H);
  owq_options opt;
  opt.extra_bits = 0.13;  // 0.13 bit above plain 3-bit codes + stats: 4 fp16 columns of 512
  auto q = quantize<owq3>(W, H, opt);
  std::printf("gptq 3-bit: %.4f bits/weight, held-out output error %.3e\n", g.bits_per_weight(),
              output_error(W, g.dequantize(), X_test));
  std::printf("owq  3-bit: %.4f bits/weight (%td weak columns), held-out output error %.3e\n", q.bits_per_weight(),
              q.weak_count(), output_error(W, q.dequantize(), X_test));

  // Weak column tuning: the layer should now compute W_task x; only the fp16 columns move.
  const Eigen::MatrixXf W_task = W + 0.002f * gaussian(rows, in, 5);
  wct_options t;
  t.steps = 200;
  t.lr = 1e-3;
  const double before = output_error(W_task, q.dequantize(), X_test);
  const wct_report rep = tune_weak_columns(q, X_calib, Eigen::MatrixXf(W_task * X_calib), t);
  std::printf("weak column tuning: train loss %.3e -> %.3e, held-out task error %.3e -> %.3e\n", rep.initial_loss,
              rep.final_loss, before, output_error(W_task, q.dequantize(), X_test));
  return 0;
}
