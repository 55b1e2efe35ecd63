// SpQR on one linear layer: 3-bit codes in groups of 16 input columns, 3-bit quantized group
// statistics, fp16 sparse outliers, act-order. Prints the outlier rate, the exact average bits
// and the output error against 3-bit GPTQ with 32-column groups (4.0 bits), then runs the
// quantized layer through the CPU kernels.
//   spqr_layer [rows cols tokens]
#include <lowbit/gptq.hpp>
#include <lowbit/spqr.hpp>

#include <Eigen/Dense>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const Eigen::Index rows = argc > 1 ? std::stol(argv[1]) : 512, cols = argc > 2 ? std::stol(argv[2]) : 512,
                     tokens = argc > 3 ? std::stol(argv[3]) : 2048;
  std::mt19937 rng(0);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::chi_squared_distribution<float> chi(3.0f);
  // Heavy-tailed weights (LLM-like) and activations with a few large channels.
  Eigen::MatrixXf W(rows, cols), X(cols, tokens);
  for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = 0.02f * n(rng) / std::sqrt(chi(rng) / 3.0f);
  for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = n(rng);
  for (int k = 0; k < 4; ++k) X.row((k * 97) % cols) *= 30.0f;

  lowbit::hessian H(cols);
  H.add_batch(X);  // [in x tokens]

  auto err = [&](const Eigen::MatrixXf& Wq) { return ((W - Wq) * X).squaredNorm() / (W * X).squaredNorm(); };
  for (double r : {0.2, 1.0}) {
    lowbit::spqr_options opt;  // percdamp 1.0, act-order, β₁ = β₂ = 16, 3-bit stats (SpQR's recipe)
    opt.outlier_threshold = r;
    const auto q = lowbit::quantize<lowbit::spqr<lowbit::bits<3>>>(W, H, opt);
    std::printf("spqr  tau=%.1f  %.4f bits/weight  outliers %.2f%%  relative output error %.4e  (%.2f s)\n", r,
                q.bits_per_weight(), 100.0 * q.outlier_rate(), err(q.dequantize()), q.report.seconds);
    if (r == 0.2) {
      std::vector<float> x(static_cast<std::size_t>(cols), 1.0f), y(static_cast<std::size_t>(rows));
      q.gemv(x, y);  // gathers x by the permutation, then the packed kernels + CSR
      std::printf("      y[0] = %.5f (dequantized row sum %.5f)\n", y[0], q.dequantize().row(0).sum());
    }
  }
  lowbit::gptq_options g;
  g.act_order = true;
  const auto b = lowbit::quantize<lowbit::gptq<lowbit::bits<3>, lowbit::group<lowbit::oc, 32>>>(W, H, g);
  std::printf("gptq  3-bit g32  %.4f bits/weight  relative output error %.4e\n", b.bits_per_weight(), err(b.dequantize()));
  return 0;
}
