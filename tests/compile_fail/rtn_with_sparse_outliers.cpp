// expect: lowbit::rtn fills no outlier store
#include <lowbit/rtn.hpp>
int main() {
  Eigen::MatrixXf W(4, 4);
  auto q = lowbit::quantize<lowbit::rtn<lowbit::bits<4>, lowbit::sparse_outliers>>(W);
  (void)q;
}
