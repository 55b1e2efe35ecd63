// expect: a method's template arguments must be policies
#include <lowbit/rtn.hpp>
int main() {
  Eigen::MatrixXf W(4, 4);
  auto q = lowbit::quantize<lowbit::rtn<lowbit::bits<4>, int>>(W);
  (void)q;
}
