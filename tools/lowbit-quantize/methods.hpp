#pragma once
// The method registry of lowbit-quantize: method name → adapter. An adapter quantizes one
// group of linears that share an input (group_job: float weights, their calibration inputs
// X [in × tokens], the block around them) and returns the quantized linears. Each adapter
// is a few lines over the library's public API (method_<name>.cpp).
//
// This header is the registry's interface only. The adapters instantiate every (method,
// bits, group, axis) the tool accepts (formats.hpp), which is most of the tool's build: they
// live in one translation unit per method family, compiled once into the lowbit_quantize_core
// library that the tool and its tests link (and two cores build them side by side).
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/sequential.hpp"

namespace lowbit::tools {

struct method_options {
  int bits = 4;
  int group = 128;  // 0 = per channel
  axis group_axis = axis::oc;
  // OWQ: the reference's nominal --target_bit (0 = bits + 0.01, the paper's 3.01 / 4.01).
  double target_bits = 0.0;
  double outlier_threshold = 0.2;  // SpQR's r in τ = r · mean_j(var(W[:, j]) / U_jj²)
  bool adadim_block = true;        // AdaDim compares block outputs (reference); false: the linear's own
  quantized_path path = quantized_path::dequantized;
  // Calibration windows the block-output searches run on (AWQ's scale search, AdaDim's
  // block-level axis choice): the attention / MLP is re-run for every candidate.
  index awq_windows = 8;
  // AWQ's s_x = mean |x| and its clip sample: over every calibration window (llm-awq's
  // input_feat; default) or only the awq_windows the α search runs on (lowbit before 2026-12-03).
  bool awq_stats_all = true;
  // AWQ's inputs: the float model's activations (llm-awq; default) or the quantized upstream's.
  bool awq_float_inputs = true;
  // GPTQ's desc_act: columns by descending H_jj; grouped per-OC matrices then use static
  // groups (stats from the original weights), as GPTQ's --act-order --static-groups.
  bool act_order = false;
};

inline const std::vector<int>& supported_bits() {
  static const std::vector<int> v(supported_bit_widths.begin(), supported_bit_widths.end());
  return v;
}
inline const std::vector<int>& supported_groups() {
  static const std::vector<int> v{0, 32, 64, 128, 256};
  return v;
}
// SpQR's β₁ (groups of consecutive input columns of one row); 16 is the paper's recipe.
inline const std::vector<int>& supported_spqr_groups() {
  static const std::vector<int> v{16, 32, 64, 128};
  return v;
}

struct method_entry {
  std::string description;
  bool available = false;
  std::string missing;  // why not available
  // Builds the adapter for these options (checks them first, so errors come before any work).
  std::function<method_fn(const method_options&)> make;
  // What --sweep runs it with: these axes (adaptive: the method chooses per linear), and,
  // when non-empty, these group sizes / only these of the sweep's bit widths.
  std::vector<axis> sweep_axes = {axis::oc, axis::ic};
  std::vector<int> sweep_groups = {};
  std::vector<int> sweep_bits_only = {};
};

const std::map<std::string, method_entry>& method_registry();

// The adapter of method `name` for these options; a readable error for an unknown or
// unavailable method or an unsupported format, before any work.
method_fn make_method(const std::string& name, const method_options& o);

// Whether the method reads calibration activations. RTN does not: the tool then runs no
// calibration forward passes for it (only the held-out windows of the layer-error report).
inline bool uses_calibration(const std::string& method) { return method != "rtn"; }
// Whether the sequential pass feeds the method the float model's activations (AWQ, as
// llm-awq) instead of the quantized upstream's (GPTQ and the methods built on it).
inline bool uses_float_inputs(const std::string& method, const method_options& o) {
  return (method == "awq" || method == "awq-gptq") && o.awq_float_inputs;
}

// OWQ's weak-column count per linear, the reference's main.py rule for its nominal
// --target_bit t (method_owq.cpp explains it).
index owq_reference_weak_columns(slot s, index in_features, int b, double target);
inline double owq_target(const method_options& o) { return o.target_bits > 0 ? o.target_bits : o.bits + 0.01; }

}  // namespace lowbit::tools
