// The reader of every format lowbit-quantize writes (model_file.hpp's load_linear).
#include "lowbit-quantize/model_file.hpp"

#include <algorithm>

#include "lowbit-quantize/formats.hpp"
#include "lowbit/adadim.hpp"
#include "lowbit/owq.hpp"

namespace lowbit::tools {

namespace detail_model_file {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

// The linear stored under `name`, as one of the formats the tool writes (formats.hpp).
std::unique_ptr<linear> load_linear(const io::lowbit_file& f, const std::string& name, quantized_path path) {
  const io::packed_info& info = f.matrix(name);
  method_options o;
  o.bits = info.bits;
  o.group = info.group;
  o.group_axis = info.group_axis == axis::ic ? axis::ic : axis::oc;
  o.path = path;
  if (info.outliers == "sparse_outliers") {  // SpQR
    return with_spqr_format(o, [&]<class M>() -> std::unique_ptr<linear> {
      using PM = typename M::packed_type;
      std::vector<std::uint16_t> perm;
      if (contains(f.index_tensors(), name + ".perm")) {
        for (std::int32_t c : f.load_indices(name + ".perm")) {
          lowbit::detail::require(c >= 0 && c < 65536, "matrix '", name, "': permutation entry ", c, " is out of range");
          perm.push_back(static_cast<std::uint16_t>(c));
        }
      }
      return std::make_unique<spqr_linear<PM>>(spqr_matrix<PM>(f.load<PM>(name), std::move(perm)), path);
    });
  }
  Eigen::VectorXf scale;
  if (contains(f.tensors(), name + ".input_scale")) {
    const Eigen::MatrixXf s = f.load_tensor(name + ".input_scale");
    lowbit::detail::require(s.cols() == 1 && s.rows() == info.cols, "matrix '", name, "': input_scale is ", s.rows(), " x ",
                            s.cols(), ", expected ", info.cols, " x 1");
    scale = s.col(0);
  }
  return with_format(o, [&]<class B, class G>() -> std::unique_ptr<linear> {
    if (info.outliers == "dense_columns")  // OWQ
      return make_linear(f.load<typename owq_method<B, G>::packed_type>(name), o, scale);
    if (info.group_axis == axis::adaptive)  // AdaDim (over RTN or GPTQ: the same packed type)
      return make_linear(f.load<typename adadim<rtn<B, group<axis::oc, G::size>>>::packed_type>(name), o, scale);
    return make_linear(f.load<typename rtn<B, G>::packed_type>(name), o, scale);  // RTN, GPTQ, AWQ
  });
}

}  // namespace detail_model_file

}  // namespace lowbit::tools
