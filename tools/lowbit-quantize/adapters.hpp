#pragma once
// What the method adapters (method_*.cpp) share: their declarations, for the registry
// (methods.cpp), and the helpers several use: the Hessian of a job, the calibration windows
// of the block-output searches, and the block around a group of linears.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lowbit-quantize/formats.hpp"
#include "lowbit/awq.hpp"
#include "lowbit/method/hessian.hpp"

namespace lowbit::tools {

method_fn rtn_adapter(const method_options& o);
method_fn gptq_adapter(const method_options& o);
method_fn awq_adapter(const method_options& o);
method_fn awq_gptq_adapter(const method_options& o);
method_fn owq_adapter(const method_options& o);
method_fn spqr_adapter(const method_options& o);
method_fn adadim_rtn_adapter(const method_options& o);
method_fn adadim_gptq_adapter(const method_options& o);

// GPTQ-family methods: one Hessian H = 2 X Xᵀ / n per input (q/k/v share it).
inline hessian job_hessian(const group_job& job) {
  hessian H(job.X.rows());
  H.add_batch(job.X);
  return H;
}

// Layer dumps for offline checks against a float64 reference (scripts/reference/): with
// LOWBIT_DUMP_DIR=dir, the GPTQ and AWQ adapters write, for the blocks listed in
// LOWBIT_DUMP_BLOCKS (comma-separated, default "0"), the group's calibration inputs
// X [in x tokens] (dir/blk<l>.<tap>.X.npy), each linear's float weights (blk<l>.<slot>.W.npy)
// and the weights it multiplies by after quantization (blk<l>.<slot>.Q.npy), as .npy float32.
// X is what the method saw: the sequential pass's inputs, earlier linears already quantized.
inline bool dump_requested(index block) {
  const char* dir = std::getenv("LOWBIT_DUMP_DIR");
  if (dir == nullptr || *dir == '\0') return false;
  const char* env = std::getenv("LOWBIT_DUMP_BLOCKS");
  std::stringstream ss(env != nullptr && *env != '\0' ? env : "0");
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty() && std::atoll(item.c_str()) == block) return true;
  return false;
}
inline void write_npy(const std::string& path, const Eigen::MatrixXf& M) {
  std::string header = "{'descr': '<f4', 'fortran_order': True, 'shape': (" + std::to_string(M.rows()) + ", " +
                       std::to_string(M.cols()) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  detail::require(static_cast<bool>(f), "LOWBIT_DUMP_DIR: cannot write ", path);
  const unsigned short len = static_cast<unsigned short>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.put(static_cast<char>(len & 0xff));
  f.put(static_cast<char>(len >> 8));
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(M.data()), static_cast<std::streamsize>(M.size() * sizeof(float)));
}
inline void maybe_dump_job(const group_job& job, const std::vector<std::unique_ptr<linear>>& out) {
  if (!dump_requested(job.block_index)) return;
  static const char* taps[] = {"attn_in", "attn_out", "ffn_in", "ffn_act"};
  const std::string base = std::string(std::getenv("LOWBIT_DUMP_DIR")) + "/blk" + std::to_string(job.block_index) + ".";
  write_npy(base + taps[static_cast<int>(job.input)] + ".X.npy", job.X);
  for (std::size_t i = 0; i < job.slots.size() && i < out.size(); ++i) {
    write_npy(base + slot_name(job.slots[i]) + ".W.npy", job.W[i]);
    write_npy(base + slot_name(job.slots[i]) + ".Q.npy", out[i]->weight());
  }
}

// The first n_windows calibration windows of the job (block-output searches re-run a whole
// attention or MLP per candidate, so they see fewer tokens than the Hessian does).
inline Eigen::MatrixXf search_windows(const group_job& job, index n_windows) {
  const index n = std::min(job.X.cols(), std::max<index>(1, n_windows) * job.window);
  return job.X.leftCols(n);
}

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

}  // namespace lowbit::tools
