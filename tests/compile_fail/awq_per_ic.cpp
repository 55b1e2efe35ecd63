// expect: lowbit::awq: AWQ scales input channels, which only helps per-OC groups
#include <lowbit/awq.hpp>
int main() {
  Eigen::MatrixXf W(4, 4), X(4, 8);
  auto q = lowbit::quantize<lowbit::awq<lowbit::bits<4>, lowbit::group<lowbit::ic, 32>>>(W, X);
  (void)q;
}
