// AWQ on a two-linear block, as an engine would run it: RMSNorm(x)·γ feeds gate and up, the
// block output is SiLU(gate·h) ⊙ (up·h). AWQ searches one scale vector for gate and up on the
// block output, folds 1/s into γ (so inference needs no extra operation) and stores the scaled
// weights. Compared with plain RTN on held-out tokens at 3 and 4 bits.
#include <lowbit/awq.hpp>
#include <lowbit/rtn.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

using Eigen::MatrixXf;
using Eigen::VectorXf;

// Hidden states with a few channels far larger than the rest (LLM "outlier features").
MatrixXf hidden_states(Eigen::Index d, Eigen::Index tokens, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  MatrixXf X(d, tokens);
  for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = n(rng);
  for (Eigen::Index c = 3; c < d; c += d / 6) X.row(c) *= 30.0f;
  return X;
}

MatrixXf weights(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::chi_squared_distribution<float> chi(3.0f);
  MatrixXf W(rows, cols);
  for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = 0.02f * n(rng) / std::sqrt(chi(rng) / 3.0f);
  return W;
}

// RMSNorm without the weight, then the weight γ.
MatrixXf rms_norm(const MatrixXf& X, const VectorXf& gamma) {
  MatrixXf H = X;
  for (Eigen::Index t = 0; t < X.cols(); ++t) H.col(t) /= std::sqrt(X.col(t).squaredNorm() / X.rows() + 1e-6f);
  return gamma.asDiagonal() * H;
}

MatrixXf mlp(const MatrixXf& gate, const MatrixXf& up, const MatrixXf& H) {
  const Eigen::ArrayXXf g = (gate * H).array();
  return ((g / (1.0f + (-g).exp())) * (up * H).array()).matrix();
}

template <int B>
void compare(const MatrixXf& gate, const MatrixXf& up, const VectorXf& gamma, const MatrixXf& calib_x,
             const MatrixXf& test_x) {
  using namespace lowbit;
  const MatrixXf reference = mlp(gate, up, rms_norm(test_x, gamma));

  // RTN baseline.
  const MatrixXf g_rtn = quantize<rtn<bits<B>, group<oc, 128>>>(gate).dequantize();
  const MatrixXf u_rtn = quantize<rtn<bits<B>, group<oc, 128>>>(up).dequantize();
  const double e_rtn = (mlp(g_rtn, u_rtn, rms_norm(test_x, gamma)) - reference).squaredNorm() / reference.size();

  // AWQ: the linears' input is the norm output; the block is the MLP.
  awq_options opt;
  opt.block = [](std::span<const MatrixXf> w, const MatrixXf& H) { return mlp(w[0], w[1], H); };
  const std::vector<awq_linear> linears{{"gate_proj", gate}, {"up_proj", up}};
  auto result = awq<bits<B>, group<oc, 128>>::quantize_group(linears, rms_norm(calib_x, gamma), opt);
  VectorXf folded_gamma = gamma;
  fold_scales_into_norm(folded_gamma, result.scales.s);  // the norm now emits h / s

  // Inference: the folded norm feeds the stored (scaled, quantized) weights directly.
  const MatrixXf g_awq = result.linears[0].dequantize(), u_awq = result.linears[1].dequantize();
  const double e_awq = (mlp(g_awq, u_awq, rms_norm(test_x, folded_gamma)) - reference).squaredNorm() / reference.size();
  std::printf("%d-bit g128: block output MSE  rtn %.3e   awq %.3e  (%.1fx lower, alpha %.2f, %.0f ms)\n", B, e_rtn,
              e_awq, e_rtn / e_awq, result.scales.alpha, 1e3 * result.linears[1].report.seconds);
}

}  // namespace

int main() {
  const Eigen::Index d = 512, ffn = 1024;
  const MatrixXf gate = weights(ffn, d, 1), up = weights(ffn, d, 2);
  const VectorXf gamma = VectorXf::Constant(d, 1.0f) + 0.1f * VectorXf::Random(d);
  const MatrixXf x = hidden_states(d, 1024, 3);
  const MatrixXf calib_x = x.leftCols(512), test_x = x.rightCols(512);
  std::printf("MLP block: RMSNorm -> gate/up [%ld x %ld] -> SiLU(gate) * up; 512 calibration, 512 test tokens\n",
              static_cast<long>(ffn), static_cast<long>(d));
  compare<4>(gate, up, gamma, calib_x, test_x);
  compare<3>(gate, up, gamma, calib_x, test_x);
  return 0;
}
