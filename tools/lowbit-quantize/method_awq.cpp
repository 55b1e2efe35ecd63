// lowbit-quantize's AWQ adapter.
#include "lowbit-quantize/adapters.hpp"
#include "lowbit/awq.hpp"

namespace lowbit::tools {

// ---- AWQ: one scale vector per group of linears sharing an input (awq<B, G>::quantize_group), on the block
// that awq_inspect_block (adapters.hpp) builds around the group. ----
method_fn awq_adapter(const method_options& o) {
  detail::require(o.group_axis == axis::oc, "--method awq needs --axis oc: AWQ scales input channels, and per-IC groups "
                                            "quantize each input column on its own, so the scale cancels");
  return [o](const group_job& job) {
    return with_format(o, [&]<class B, class G>() {
      std::vector<std::unique_ptr<linear>> out;
      if constexpr (G::group_axis == axis::oc) {
        // Hugging Face names (model/recipe.hpp): awq_options::no_clip_names skips the clip search for q_/k_.
        std::vector<awq_linear> ls;
        for (std::size_t i = 0; i < job.slots.size(); ++i) ls.emplace_back(recipe_of(job.slots[i]).hf, job.W[i]);
        awq_options ao;
        ao.block = awq_inspect_block(job);
        if (job.input == tap::attn_out && job.model.cfg.n_head_kv != job.model.cfg.n_head) ao.alpha = 0.0f;
        const Eigen::MatrixXf Xs = search_windows(job, o.awq_windows);
        auto g = o.awq_stats_all ? awq<B, G>::quantize_group(ls, Xs, job.X, ao) : awq<B, G>::quantize_group(ls, Xs, ao);
        for (auto& q : g.linears) {
          Eigen::VectorXf inv = q.input_scales.cwiseInverse();
          out.push_back(make_linear(std::move(q), o, std::move(inv)));
        }
      }
      maybe_dump_job(job, out);
      return out;
    });
  };
}

}  // namespace lowbit::tools
