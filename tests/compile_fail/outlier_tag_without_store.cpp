// expect: the outlier store tag has no usable outlier_store<Tag> specialization
// A tag alone is not a store: packed_matrix needs its behaviour (format/outlier_store.hpp).
#include <lowbit/format/packed_matrix.hpp>
struct my_outliers {
  static constexpr const char* name = "my_outliers";
  static constexpr bool is_outlier_store = true;
};
int main() {
  lowbit::packed_matrix<lowbit::bits<4>, lowbit::group<lowbit::oc, 32>, my_outliers> W(4, 32);
  (void)W;
}
