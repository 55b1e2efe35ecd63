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

#include "lowbit/adadim.hpp"
#include "lowbit/awq.hpp"
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
  index awq_windows = 8;  // calibration windows AWQ's scale search runs its block on
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
      case 32: return with_axis.template operator()<32>();
      case 128: return with_axis.template operator()<128>();
#if !defined(LOWBIT_TOOLS_FEW_FORMATS)  // unit tests instantiate two group sizes only (build time)
      case 0: return with_axis.template operator()<per_channel>();
      case 64: return with_axis.template operator()<64>();
      case 256: return with_axis.template operator()<256>();
#endif
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
  // The group axes --sweep runs it with (adaptive: the method chooses per linear).
  std::vector<axis> sweep_axes = {axis::oc, axis::ic};
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

// ---- AWQ: one scale vector per group of linears sharing an input (awq<B, G>::quantize_group) ----
// The block whose output the α search protects, as llm-awq's module2inspect: q/k/v → the
// attention with the block's float o_proj; gate/up → the whole MLP with the float down_proj;
// o and down → the linear itself (awq's default). The packed weights are W·diag(s); the
// linear feeds them x / s, which a deployed model folds into the producer (attention norm
// for q/k/v, MLP norm for gate/up, up_proj rows for down). o_proj's producer is v_proj, whose
// rows a GQA model shares across query heads, so — as llm-awq — o_proj gets no scaling there
// (α = 0), only the clip search.
inline awq_block awq_inspect_block(const group_job& job) {
  const llama_model& m = job.model;
  const index T = job.window;
  if (job.input == tap::attn_in) {
    const Eigen::MatrixXf Wo = job.block[slot::o].weight();
    return [&m, T, Wo](std::span<const Eigen::MatrixXf> W, const Eigen::MatrixXf& X) {
      act q, k, v, y;
      parallel_matmul(W[0], X, q);
      parallel_matmul(W[1], X, k);
      parallel_matmul(W[2], X, v);
      m.rope(q, m.cfg.n_head, T);
      m.rope(k, m.cfg.n_head_kv, T);
      parallel_matmul(Wo, m.attention(q, k, v, T), y);
      return y;
    };
  }
  if (job.input == tap::ffn_in) {
    const Eigen::MatrixXf Wd = job.block[slot::down].weight();
    return [Wd](std::span<const Eigen::MatrixXf> W, const Eigen::MatrixXf& X) {
      act g, u, y;
      parallel_matmul(W[0], X, g);
      parallel_matmul(W[1], X, u);
      g = (g.array() / (1.0f + (-g.array()).exp())) * u.array();
      parallel_matmul(Wd, g, y);
      return y;
    };
  }
  return {};
}

inline method_fn awq_adapter(const method_options& o) {
  detail::require(o.group_axis == axis::oc, "--method awq needs --axis oc: AWQ scales input channels, and per-IC groups "
                                            "quantize each input column on its own, so the scale cancels");
  return [o](const group_job& job) {
    return with_format(o, [&]<class B, class G>() {
      std::vector<std::unique_ptr<linear>> out;
      if constexpr (G::group_axis == axis::oc) {
        // Hugging Face names: awq_options::no_clip_names skips the clip search for q_/k_.
        static const char* hf[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
        std::vector<awq_linear> ls;
        for (std::size_t i = 0; i < job.slots.size(); ++i) ls.emplace_back(hf[static_cast<int>(job.slots[i])], job.W[i]);
        awq_options ao;
        ao.block = awq_inspect_block(job);
        if (job.input == tap::attn_out && job.model.cfg.n_head_kv != job.model.cfg.n_head) ao.alpha = 0.0f;
        const index n = std::min(job.X.cols(), std::max<index>(1, o.awq_windows) * job.window);
        auto g = awq<B, G>::quantize_group(ls, Eigen::MatrixXf(job.X.leftCols(n)), ao);
        for (auto& q : g.linears) {
          Eigen::VectorXf inv = q.input_scales.cwiseInverse();
          out.push_back(make_linear(std::move(q), o, std::move(inv)));
        }
      }
      return out;
    });
  };
}

// ---- AdaDim over a base: each linear keeps the axis (oc or ic) with the lower output error
// ‖WX − ŴX‖² on its calibration inputs (adadim's default block: the linear itself). ----
template <template <class...> class Base>
method_fn adadim_adapter(const method_options& o) {
  return [o](const group_job& job) {
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_format(o, [&]<class B, class G>() {
        return make_linear(quantize<adadim<Base<B, group<axis::oc, G::size>>>>(W, job.X), o);
      }));
    return out;
  };
}

#if defined(LOWBIT_TOOLS_HAVE_GPTQ)
// ---- GPTQ: one Hessian H = 2 X Xᵀ / n per input (q/k/v share it), default gptq_options
// (percdamp 0.01, blocksize 128, no act-order), as the paper's per-layer setting. ----
inline method_fn gptq_adapter(const method_options& o) {
  return [o](const group_job& job) {
    hessian H(job.X.rows());
    H.add_batch(job.X);
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_format(o, [&]<class B, class G>() { return make_linear(quantize<gptq<B, G>>(W, H), o); }));
    return out;
  };
}
#endif

// ---- still to wire as their headers land ----
// owq (lowbit/owq.hpp): GPTQ + weak columns, --target-bits choosing their count;
// adadim-gptq = adadim_adapter<gptq>.
// spqr (lowbit/spqr.hpp): --target-bits picks the outlier threshold.

inline const std::map<std::string, method_entry>& method_registry() {
  static const std::map<std::string, method_entry> reg = [] {
    std::map<std::string, method_entry> r;
    r["rtn"] = {"round to nearest, min-max asymmetric grid per group", true, "", rtn_adapter};
    auto pending = [](const char* what, const char* header) {
      return method_entry{what, false, std::string("its header ") + header + " has not landed in this build yet", {}, {}};
    };
#if defined(LOWBIT_TOOLS_HAVE_GPTQ)
    r["gptq"] = {"GPTQ (Frantar et al. 2022): OBS column-by-column with error feedback", true, "", gptq_adapter};
#else
    r["gptq"] = pending("GPTQ (Frantar et al. 2022): OBS column-by-column with error feedback", "lowbit/gptq.hpp");
#endif
    r["owq"] = pending("OWQ (Lee et al. 2024): GPTQ + fp16 weak columns", "lowbit/owq.hpp");
    r["awq"] = {"AWQ (Lin et al. 2024): activation-aware scaling + clip search, then RTN", true, "", awq_adapter, {axis::oc}};
    r["spqr"] = pending("SpQR (Dettmers et al. 2023): tiny groups, quantized stats, sparse outliers", "lowbit/spqr.hpp");
    r["adadim-rtn"] = {"AdaDim over RTN: per-linear choice of the group axis (oc or ic)", true, "", adadim_adapter<rtn>, {axis::adaptive}};
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
