// lowbit-quantize's RTN adapter.
#include "lowbit-quantize/adapters.hpp"
#include "lowbit/rtn.hpp"

namespace lowbit::tools {

// ---- RTN: round to nearest, min-max grid per group (no calibration data used) ----
method_fn rtn_adapter(const method_options& o) {
  return [o](const group_job& job) {
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_format(o, [&]<class B, class G>() {
        return make_linear(quantize<rtn<B, G>>(W), o);
      }));
    return out;
  };
}

}  // namespace lowbit::tools
