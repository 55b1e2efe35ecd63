// expect: bits<N> is given more than once
#include <lowbit/rtn.hpp>
int main() {
  Eigen::MatrixXf W(4, 4);
  auto q = lowbit::quantize<lowbit::rtn<lowbit::bits<4>, lowbit::bits<3>>>(W);
  (void)q;
}
