#pragma once
// Sequential, layer-by-layer quantization as GPTQ, AWQ, OWQ and SpQR do it: calibration
// windows run through the model block by block; inside a block each group of linears that
// reads one input (q/k/v ← attention norm, o ← attention output, gate/up ← MLP norm,
// down ← SwiGLU product) is quantized on the inputs it sees *with every earlier linear
// already quantized* ("true sequential" in the GPTQ code), and the block's outputs computed
// with the quantized linears feed the next block. Quantization error therefore propagates
// the way it does at inference, and every layer is calibrated on what it will really see.
//
// The method is a callback on one group of linears (method_fn): the tool's registry maps
// method names to such adapters.
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "model/llama.hpp"
#include "model/perplexity.hpp"

namespace lowbit::tools {

// One group of linears sharing an input, as a method sees it.
struct group_job {
  const llama_model& model;
  const llama_block& block;            // still holds the float linears of this group
  index block_index = 0;
  tap input = tap::attn_in;
  std::span<const slot> slots;         // the linears to quantize, in order
  std::vector<Eigen::MatrixXf> W;      // their float weights, W[i] for slots[i]
  act X;                               // calibration inputs [in × n_tokens]
  index window = 0;                    // tokens per calibration window (X is whole windows)
};

using method_fn = std::function<std::vector<std::unique_ptr<linear>>(const group_job&)>;

struct layer_report {
  std::string name;     // blk.3.attn_q
  index rows = 0, cols = 0;
  double rel_error = 0.0;  // ‖WX − ŴX‖² / ‖WX‖² on held-out calibration windows
  double bits = 0.0;       // bits per weight of the stored format
  std::size_t bytes = 0;
  double seconds = 0.0;    // this group's quantization time, split evenly over its linears
  std::string notes;       // the method's own report (chosen axis, α, ...)
};

struct sequential_options {
  index window = 512;         // tokens per calibration window
  index held_out_windows = 0; // trailing windows used only to measure layer errors
  bool progress = true;
  // Feed every group the float model's activations instead of the quantized upstream's:
  // the quantized linears are installed only after their block has run in float (llm-awq's
  // run_awq, which collects a block's inputs and the next block's from the float layer).
  // GPTQ, OWQ and SpQR calibrate on the quantized upstream (false, the default).
  bool float_inputs = false;
};

// ‖(W − Ŵ) X‖² / ‖W X‖², in float64.
inline double relative_output_error(const Eigen::MatrixXf& W, const Eigen::MatrixXf& What, const act& X) {
  act ref, diff;
  parallel_matmul(W, X, ref);
  const Eigen::MatrixXf D = W - What;
  parallel_matmul(D, X, diff);
  const double den = ref.cast<double>().squaredNorm();
  return den > 0 ? diff.cast<double>().squaredNorm() / den : 0.0;
}

// Quantizes every block linear of `m` in place. `calib` holds whole windows of
// opts.window tokens; the last opts.held_out_windows of them are run through the model but
// not shown to the method: layer errors are measured on them (on the calibration windows
// when there are none).
inline std::vector<layer_report> quantize_sequential(llama_model& m, std::span<const std::int32_t> calib,
                                                     const method_fn& method, const sequential_options& opts) {
  const index T = opts.window;
  detail::require(T >= 1 && static_cast<index>(calib.size()) % T == 0 && !calib.empty(), "quantize_sequential: ",
                  calib.size(), " calibration tokens is not a positive whole number of windows of ", T);
  const index n_win = static_cast<index>(calib.size()) / T;
  detail::require(opts.held_out_windows >= 0 && opts.held_out_windows < n_win, "quantize_sequential: ",
                  opts.held_out_windows, " held-out windows leave none of the ", n_win, " for calibration");
  const index n_fit = (n_win - opts.held_out_windows) * T;

  std::vector<layer_report> reports;
  progress_bar bar("quantize  ", m.cfg.n_layer, opts.progress);
  act h = m.embed(calib);
  for (index l = 0; l < m.cfg.n_layer; ++l) {
    llama_block& blk = m.blocks[static_cast<std::size_t>(l)];
    std::vector<std::pair<slot, std::unique_ptr<linear>>> pending;  // float_inputs: installed after the block
    const tap_hook hook = [&](tap where, const act& X, llama_block& b) {
      group_job job{m, b, l, where, tap_slots(where), {}, X.leftCols(n_fit), T};
      for (slot s : job.slots) job.W.push_back(b[s].weight());
      const auto t0 = std::chrono::steady_clock::now();
      auto out = method(job);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      detail::require(out.size() == job.slots.size(), "quantize_sequential: the method returned ", out.size(),
                      " linears for a group of ", job.slots.size());
      const act held = opts.held_out_windows > 0 ? act(X.rightCols(X.cols() - n_fit)) : act();
      for (std::size_t i = 0; i < out.size(); ++i) {
        const slot s = job.slots[i];
        detail::require(out[i] && out[i]->rows() == job.W[i].rows() && out[i]->cols() == job.W[i].cols(),
                        "quantize_sequential: the method returned a linear of the wrong shape for ", slot_name(s));
        layer_report r;
        r.name = "blk." + std::to_string(l) + "." + slot_name(s);
        r.rows = out[i]->rows();
        r.cols = out[i]->cols();
        r.rel_error = relative_output_error(job.W[i], out[i]->weight(), opts.held_out_windows > 0 ? held : job.X);
        r.bits = out[i]->bits_per_weight();
        r.bytes = out[i]->stored_bytes();
        r.seconds = sec / static_cast<double>(out.size());
        r.notes = out[i]->notes();
        reports.push_back(std::move(r));
        if (opts.float_inputs) pending.emplace_back(s, std::move(out[i]));
        else b.at(s) = std::move(out[i]);
      }
    };
    m.block_forward(blk, h, T, hook);
    for (auto& [s, q] : pending) blk.at(s) = std::move(q);
    bar.update(l + 1);
  }
  return reports;
}

}  // namespace lowbit::tools
