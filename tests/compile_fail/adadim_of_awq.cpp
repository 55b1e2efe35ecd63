// expect: lowbit::adadim<awq<...>>: AdaDim and AWQ do not compose
#include <lowbit/adadim.hpp>
int main() {
  Eigen::MatrixXf W(4, 4), X(4, 8);
  auto q = lowbit::quantize<lowbit::adadim<lowbit::awq<lowbit::bits<4>>>>(W, X);
  (void)q;
}
