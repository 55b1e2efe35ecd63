#pragma once
// The method registry of lowbit-quantize: method name → adapter. An adapter quantizes one
// group of linears that share an input (group_job: float weights, their calibration inputs
// X [in × tokens], the block around them) and returns the quantized linears. Each adapter
// is a few lines over the library's public API; a method whose header has not landed yet is
// listed as unavailable with the reason.
//
// Run-time options (bits, group size, axis) become compile-time policies through one
// dispatch table (with_format), so the set of instantiated formats is in one place.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/rtn.hpp"
#include "model/sequential.hpp"

#if __has_include("lowbit/gptq.hpp")
#include "lowbit/gptq.hpp"
#define LOWBIT_TOOLS_HAVE_GPTQ 1
#endif

namespace lowbit::tools {

struct method_options {
  int bits = 4;
  int group = 128;  // 0 = per channel
  axis group_axis = axis::oc;
  double target_bits = 0.0;  // OWQ / SpQR budget (0 = the method's default)
  quantized_path path = quantized_path::dequantized;
};

inline const std::vector<int>& supported_bits() {
  static const std::vector<int> v{2, 3, 4, 8};
  return v;
}
inline const std::vector<int>& supported_groups() {
  static const std::vector<int> v{0, 32, 64, 128, 256};
  return v;
}

// Calls f.template operator()<bits<B>, group<A, G>>() for the run-time (B, G, A).
template <class F>
auto with_format(const method_options& o, F&& f) {
  auto with_group = [&]<class Bits>() {
    auto with_axis = [&]<int G>() {
      if (o.group_axis == axis::ic) return f.template operator()<Bits, group<axis::ic, G>>();
      return f.template operator()<Bits, group<axis::oc, G>>();
    };
    switch (o.group) {
      case 0: return with_axis.template operator()<per_channel>();
      case 32: return with_axis.template operator()<32>();
      case 64: return with_axis.template operator()<64>();
      case 128: return with_axis.template operator()<128>();
      case 256: return with_axis.template operator()<256>();
    }
    detail::fail("--group ", o.group, " is not supported (expected 0 = per channel, 32, 64, 128 or 256)");
  };
  switch (o.bits) {
    case 2: return with_group.template operator()<bits<2>>();
    case 3: return with_group.template operator()<bits<3>>();
    case 4: return with_group.template operator()<bits<4>>();
    case 8: return with_group.template operator()<bits<8>>();
  }
  detail::fail("--bits ", o.bits, " is not supported (expected 2, 3, 4 or 8)");
}

template <PackedMatrix PM>
std::unique_ptr<linear> make_linear(PM pm, const method_options& o, Eigen::VectorXf input_scale = {}) {
  return std::make_unique<packed_linear<PM>>(std::move(pm), o.path, std::move(input_scale));
}

struct method_entry {
  std::string description;
  bool available = false;
  std::string missing;  // why not available
  // Builds the adapter for these options (checks them first, so errors come before any work).
  std::function<method_fn(const method_options&)> make;
};

// ---- RTN: round to nearest, min-max grid per group (no calibration data used) ----
inline method_fn rtn_adapter(const method_options& o) {
  return [o](const group_job& job) {
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_format(o, [&]<class B, class G>() {
        return make_linear(quantize<rtn<B, G>>(W), o);
      }));
    return out;
  };
}

// ---- GPTQ / OWQ (lowbit/gptq.hpp, lowbit/owq.hpp) ----
// TODO(gptq): wire when include/lowbit/gptq.hpp lands: H = lowbit::hessian of job.X
// (2 X Xᵀ / n), quantize<gptq<B, G>>(W, H, options), one H per group (q/k/v share it).
// ---- AWQ (lowbit/awq.hpp): per-group scale search over job.X, input_scale = 1/s ----
// ---- AdaDim (lowbit/adadim.hpp): adadim<rtn<...>> / adadim<gptq<...>> choose the axis ----
// ---- SpQR (lowbit/spqr.hpp): --target-bits picks the outlier threshold ----

inline const std::map<std::string, method_entry>& method_registry() {
  static const std::map<std::string, method_entry> reg = [] {
    std::map<std::string, method_entry> r;
    r["rtn"] = {"round to nearest, min-max asymmetric grid per group", true, "", rtn_adapter};
    auto pending = [](const char* what, const char* header) {
      return method_entry{what, false, std::string("its header ") + header + " has not landed in this build yet", {}};
    };
    r["gptq"] = pending("GPTQ (Frantar et al. 2022): OBS column-by-column with error feedback", "lowbit/gptq.hpp");
    r["owq"] = pending("OWQ (Lee et al. 2024): GPTQ + fp16 weak columns", "lowbit/owq.hpp");
    r["awq"] = pending("AWQ (Lin et al. 2024): activation-aware scaling + clip search, then RTN", "lowbit/awq.hpp");
    r["spqr"] = pending("SpQR (Dettmers et al. 2023): tiny groups, quantized stats, sparse outliers", "lowbit/spqr.hpp");
    r["adadim-rtn"] = pending("AdaDim over RTN: per-matrix choice of the group axis", "lowbit/adadim.hpp");
    r["adadim-gptq"] = pending("AdaDim over GPTQ", "lowbit/adadim.hpp");
    return r;
  }();
  return reg;
}

inline method_fn make_method(const std::string& name, const method_options& o) {
  const auto& reg = method_registry();
  auto it = reg.find(name);
  if (it == reg.end()) {
    std::string names;
    for (const auto& [n, e] : reg) names += (names.empty() ? "" : ", ") + n;
    detail::fail("--method '", name, "' is unknown (expected one of: ", names, ")");
  }
  detail::require(it->second.available, "--method ", name, " is not available: ", it->second.missing);
  // Validate the format up front (bits, group size).
  with_format(o, []<class B, class G>() { return 0; });
  return it->second.make(o);
}

}  // namespace lowbit::tools
