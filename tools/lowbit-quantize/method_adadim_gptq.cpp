// lowbit-quantize's AdaDim over GPTQ (method_adadim.hpp).
#include "lowbit-quantize/method_adadim.hpp"

namespace lowbit::tools {

method_fn adadim_gptq_adapter(const method_options& o) { return adadim_adapter<gptq>(o); }

}  // namespace lowbit::tools
