// expect: a method's template arguments must be policies
// A type with only the old member flag is not a search: it has no fit() for lowbit to call.
#include <lowbit/rtn.hpp>
struct my_search {
  static constexpr bool searches = true;
};
int main() {
  Eigen::MatrixXf W(4, 4);
  auto q = lowbit::quantize<lowbit::rtn<lowbit::bits<4>, my_search>>(W);
  (void)q;
}
