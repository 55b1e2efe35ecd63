// A user of the installed package: quantize, run, compare with the dequantized matrix.
#include <lowbit/rtn.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  Eigen::MatrixXf W = Eigen::MatrixXf::Random(64, 256);
  auto q = lowbit::quantize<lowbit::rtn<lowbit::bits<4>, lowbit::group<lowbit::oc, 64>>>(W);
  std::vector<float> x(256, 0.5f), y(64);
  q.gemv(x, y);
  Eigen::VectorXf ref = q.dequantize() * Eigen::VectorXf::Constant(256, 0.5f);
  for (int i = 0; i < 64; ++i)
    if (std::abs(ref[i] - y[static_cast<std::size_t>(i)]) > 1e-3f) return 1;
  std::printf("consumer ok: %.3f bits/weight\n", q.bits_per_weight());
  return 0;
}
