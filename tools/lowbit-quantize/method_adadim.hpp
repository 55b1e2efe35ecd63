#pragma once
// lowbit-quantize's AdaDim adapter over a base method (method_adadim_rtn.cpp,
// method_adadim_gptq.cpp: one translation unit per base, the two heaviest instantiations).
#include <type_traits>
#include <vector>

#include "lowbit-quantize/adapters.hpp"
#include "lowbit/adadim.hpp"
#include "lowbit/gptq.hpp"
#include "lowbit/rtn.hpp"

namespace lowbit::tools {

// ---- AdaDim over a base (RTN or GPTQ): each linear keeps the axis (oc or ic) whose result
// has the lower calibration error. As the reference (rtn_ada.py auto_dim_block), the error
// is measured on the BLOCK output: q/k/v on the attention output (float o_proj), gate/up on
// the MLP output (float down_proj), o and down on their own output; the block runs with the
// group's earlier linears already quantized ("the current block state"). These are the
// blocks AWQ inspects (awq_inspect_block) with one weight swapped for the candidate.
// method_options::adadim_block = false: every linear by its own output ‖WX − ŴX‖².
inline adadim_block adadim_inspect_block(const group_job& job, std::size_t i, const std::vector<Eigen::MatrixXf>& current) {
  awq_block block = awq_inspect_block(job);
  if (!block) return {};
  return [block = std::move(block), current, i](const Eigen::MatrixXf& W, const Eigen::MatrixXf& X) {
    std::vector<Eigen::MatrixXf> ws = current;
    ws[i] = W;
    return block(ws, X);
  };
}

template <template <class...> class Base>
method_fn adadim_adapter(const method_options& o) {
  return [o](const group_job& job) {
    constexpr bool needs_hessian = std::is_same_v<Base<bits<4>>, gptq<bits<4>>>;
    hessian H(needs_hessian ? job.X.rows() : 1);
    if constexpr (needs_hessian) H.add_batch(job.X);  // one Hessian for the group, on every window
    const Eigen::MatrixXf Xs = o.adadim_block ? search_windows(job, o.awq_windows) : Eigen::MatrixXf(job.X);
    std::vector<Eigen::MatrixXf> current = job.W;  // the group as it stands: earlier linears quantized
    std::vector<std::unique_ptr<linear>> out;
    for (std::size_t i = 0; i < job.W.size(); ++i) {
      adadim_options ao;
      if (o.adadim_block) ao.block = adadim_inspect_block(job, i, current);
      out.push_back(with_format(o, [&]<class B, class G>() {
        using method = adadim<Base<B, group<axis::oc, G::size>>>;
        if constexpr (needs_hessian) return make_linear(quantize<method>(job.W[i], Xs, ao, H), o);
        else return make_linear(quantize<method>(job.W[i], Xs, ao), o);
      }));
      current[i] = out.back()->weight();
    }
    return out;
  };
}


}  // namespace lowbit::tools
