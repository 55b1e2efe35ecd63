// A user of the installed package: quantize, run, compare with the dequantized matrix.
#include <lowbit/backend.hpp>
#include <lowbit/rtn.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

int main() {
  Eigen::MatrixXf W = Eigen::MatrixXf::Random(64, 256);
  auto q = lowbit::quantize<lowbit::rtn<lowbit::bits<4>, lowbit::group<lowbit::oc, 64>>>(W);
  std::vector<float> x(256, 0.5f), y(64);
  q.gemv(x, y);
  Eigen::VectorXf ref = q.dequantize() * Eigen::VectorXf::Constant(256, 0.5f);
  for (int i = 0; i < 64; ++i)
    if (std::abs(ref[i] - y[static_cast<std::size_t>(i)]) > 1e-3f) return 1;
  std::printf("consumer ok: %.3f bits/weight, CPU kernel set %s\n", q.bits_per_weight(),
              std::string(lowbit::backend_traits<lowbit::cpu_simd>::isa()).c_str());
  return 0;
}
