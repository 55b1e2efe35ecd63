// make_packed_linear (formats.hpp) for every packed format the tool writes: RTN's (also GPTQ's and
// AWQ's), OWQ's and AdaDim's, on both group axes: the one copy of packed_linear<PM> that the
// method adapters and the model-file reader share.
#include "lowbit-quantize/formats.hpp"
#include "lowbit/adadim.hpp"
#include "lowbit/owq.hpp"

namespace lowbit::tools {

template <PackedMatrix PM>
std::unique_ptr<linear> make_packed_linear(PM pm, const method_options& o, Eigen::VectorXf input_scale,
                                           std::string notes) {
  return std::make_unique<packed_linear<PM>>(std::move(pm), o.path, std::move(input_scale), std::move(notes));
}

#define LOWBIT_TOOLS_MAKE_LINEAR(...) /* the packed type, commas and all */ \
  template std::unique_ptr<linear> make_packed_linear(__VA_ARGS__, const method_options&, Eigen::VectorXf, std::string);
#define LOWBIT_TOOLS_INSTANTIATE(B, S)                                                             \
  LOWBIT_TOOLS_MAKE_LINEAR(rtn<bits<B>, group<axis::oc, S>>::packed_type)                         \
  LOWBIT_TOOLS_MAKE_LINEAR(rtn<bits<B>, group<axis::ic, S>>::packed_type)                         \
  LOWBIT_TOOLS_MAKE_LINEAR(owq_method<bits<B>, group<axis::oc, S>>::packed_type)             \
  LOWBIT_TOOLS_MAKE_LINEAR(owq_method<bits<B>, group<axis::ic, S>>::packed_type)             \
  LOWBIT_TOOLS_MAKE_LINEAR(adadim<rtn<bits<B>, group<axis::oc, S>>>::packed_type)
LOWBIT_TOOLS_FOR_EACH_FORMAT(LOWBIT_TOOLS_INSTANTIATE)
#undef LOWBIT_TOOLS_INSTANTIATE
#undef LOWBIT_TOOLS_MAKE_LINEAR

}  // namespace lowbit::tools
