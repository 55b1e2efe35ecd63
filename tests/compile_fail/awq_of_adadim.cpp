// expect: lowbit::awq<adadim<...>>: AdaDim and AWQ do not compose
#include <lowbit/adadim.hpp>
int main() {
  Eigen::MatrixXf W(4, 4), X(4, 8);
  auto q = lowbit::quantize<lowbit::awq<lowbit::adadim<lowbit::rtn<lowbit::bits<4>>>>>(W, X);
  (void)q;
}
