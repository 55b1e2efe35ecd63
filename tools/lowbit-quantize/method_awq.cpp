// lowbit-quantize's AWQ adapters: AWQ over RTN (the paper) and AWQ over GPTQ (a composition).
#include <type_traits>

#include "lowbit-quantize/adapters.hpp"
#include "lowbit/awq.hpp"
#include "lowbit/gptq.hpp"

namespace lowbit::tools {

namespace {
// ---- AWQ: one scale vector per group of linears sharing an input (awq<...>::quantize_group), on the block
// that awq_inspect_block (adapters.hpp) builds around the group. The base quantizes the scaled
// weights: RTN (awq<B, G>), or GPTQ (awq<gptq<B, G>>) with the Hessian of the scaled inputs
// (awq.hpp's run_calibrated: H of X·diag(1/s), the inputs the scaled layer sees). ----
template <bool OverGptq>
method_fn awq_adapter_over(const method_options& o, const char* name) {
  detail::require(o.group_axis == axis::oc, "--method ", name, " needs --axis oc: AWQ scales input channels, and per-IC groups "
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
        using method = std::conditional_t<OverGptq, awq<gptq<B, G>>, awq<B, G>>;
        auto run = [&](auto&&... base_args) {
          return o.awq_stats_all ? method::quantize_group(ls, Xs, job.X, ao, base_args...)
                                 : method::quantize_group(ls, Xs, ao, base_args...);
        };
        gptq_options go;
        go.act_order = o.act_order;
        auto g = [&] {
          if constexpr (OverGptq) return run(go);
          else return run();
        }();
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
}  // namespace

method_fn awq_adapter(const method_options& o) { return awq_adapter_over<false>(o, "awq"); }
method_fn awq_gptq_adapter(const method_options& o) { return awq_adapter_over<true>(o, "awq-gptq"); }

}  // namespace lowbit::tools
