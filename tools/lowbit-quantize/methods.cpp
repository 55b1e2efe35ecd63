// lowbit-quantize's method registry (methods.hpp): the names, descriptions and sweep settings
// of the adapters in method_*.cpp.
#include "lowbit-quantize/methods.hpp"

#include "lowbit-quantize/adapters.hpp"

namespace lowbit::tools {

const std::map<std::string, method_entry>& method_registry() {
  static const std::map<std::string, method_entry> reg = [] {
    std::map<std::string, method_entry> r;
    r["rtn"] = {"round to nearest, min-max asymmetric grid per group", true, "", rtn_adapter};
    r["gptq"] = {"GPTQ (Frantar et al. 2022): OBS column-by-column with error feedback", true, "", gptq_adapter};
    r["owq"] = {"OWQ (Lee et al. 2024): GPTQ + fp16 weak columns (--target-bits, default bits + 0.01)", true, "",
                owq_adapter, {axis::oc}, {per_channel}, {3, 4}};
    r["awq"] = {"AWQ (Lin et al. 2024): activation-aware scaling + clip search, then RTN", true, "", awq_adapter, {axis::oc}};
    r["awq-gptq"] = {"AWQ's scaling + clip search, then GPTQ on the scaled weights (a composition)", true, "",
                     awq_gptq_adapter, {axis::oc}};
    r["spqr"] = {"SpQR (Dettmers et al. 2023): beta1 = 16 groups, 3-bit stats, sparse fp16 outliers", true, "",
                 spqr_adapter, {axis::oc}, {16}};
    r["adadim-rtn"] = {"AdaDim over RTN: per-linear choice of the group axis (oc or ic) by block output", true, "",
                       adadim_rtn_adapter, {axis::adaptive}};
    r["adadim-gptq"] = {"AdaDim over GPTQ: per-linear choice of the group axis (oc or ic) by block output", true, "",
                        adadim_gptq_adapter, {axis::adaptive}};
    return r;
  }();
  return reg;
}

method_fn make_method(const std::string& name, const method_options& o) {
  const auto& reg = method_registry();
  auto it = reg.find(name);
  if (it == reg.end()) {
    std::string names;
    for (const auto& [n, e] : reg) names += (names.empty() ? "" : ", ") + n;
    detail::fail("--method '", name, "' is unknown (expected one of: ", names, ")");
  }
  detail::require(it->second.available, "--method ", name, " is not available: ", it->second.missing);
  // Validate the format up front (bits, group size); SpQR's adapter checks its own.
  if (name != "spqr") with_format(o, []<class B, class G>() { return 0; });
  return it->second.make(o);
}

}  // namespace lowbit::tools
