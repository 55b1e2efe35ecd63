// expect: lowbit::gptq<> fills no sparse outliers
#include <lowbit/gptq.hpp>
int main() {
  Eigen::MatrixXf W(4, 4);
  Eigen::MatrixXd H = Eigen::MatrixXd::Identity(4, 4);
  auto q = lowbit::quantize<lowbit::gptq<lowbit::bits<4>, lowbit::sparse_outliers>>(W, H);
  (void)q;
}
