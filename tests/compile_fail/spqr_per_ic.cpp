// expect: SpQR's tiny groups run along the input columns
#include <lowbit/spqr.hpp>
int main() {
  Eigen::MatrixXf W(16, 16);
  Eigen::MatrixXf H = Eigen::MatrixXf::Identity(16, 16);
  auto q = lowbit::quantize<lowbit::spqr<lowbit::bits<3>, lowbit::group<lowbit::ic, 16>>>(W, H);
  (void)q;
}
