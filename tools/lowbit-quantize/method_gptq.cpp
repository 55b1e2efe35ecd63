// lowbit-quantize's GPTQ adapter.
#include "lowbit-quantize/adapters.hpp"
#include "lowbit/gptq.hpp"

namespace lowbit::tools {

// ---- GPTQ: one Hessian per input (job_hessian), default gptq_options (percdamp 0.01,
// blocksize 128, no act-order unless --act-order), as the paper's per-layer setting. ----
method_fn gptq_adapter(const method_options& o) {
  return [o](const group_job& job) {
    const hessian H = job_hessian(job);
    gptq_options go;
    go.act_order = o.act_order;
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_format(o, [&]<class B, class G>() { return make_linear(quantize<gptq<B, G>>(W, H, go), o); }));
    maybe_dump_job(job, out);
    return out;
  };
}

}  // namespace lowbit::tools
