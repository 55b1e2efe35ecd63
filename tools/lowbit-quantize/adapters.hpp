#pragma once
// What the method adapters (method_*.cpp) share: their declarations, for the registry
// (methods.cpp), and the helpers several use: the Hessian of a job, the calibration windows
// of the block-output searches, and the block around a group of linears.
#include <vector>

#include "lowbit-quantize/formats.hpp"
#include "lowbit/awq.hpp"
#include "lowbit/method/hessian.hpp"

namespace lowbit::tools {

method_fn rtn_adapter(const method_options& o);
method_fn gptq_adapter(const method_options& o);
method_fn awq_adapter(const method_options& o);
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
