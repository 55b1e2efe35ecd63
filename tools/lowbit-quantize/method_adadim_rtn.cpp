// lowbit-quantize's AdaDim over RTN (method_adadim.hpp).
#include "lowbit-quantize/method_adadim.hpp"

namespace lowbit::tools {

method_fn adadim_rtn_adapter(const method_options& o) { return adadim_adapter<rtn>(o); }

}  // namespace lowbit::tools
