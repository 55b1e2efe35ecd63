// lowbit-quantize's OWQ adapter and the reference's weak-column count.
#include <cmath>

#include "lowbit-quantize/adapters.hpp"
#include "lowbit/owq.hpp"

namespace lowbit::tools {

// ---- OWQ: GPTQ with fp16 weak columns. The number of weak columns per linear follows the
// reference's main.py from its nominal --target_bit t (owq_options::weak_columns):
//   r = 12 / (16 − b) · (t − b) / n_layers,  k = round(in_features · r · ratio), rounded up to even,
// with n_layers = 7 linears per LLaMA block and ratio 1 for q/k/v/o, 0.375 for gate/up/down
// (model_config.json; both from model/recipe.hpp). The reference counts only codes and fp16 columns, so its "3.01" is a
// recipe, not an exact size: the report gives the exact average of the packed format. (An
// exact per-matrix budget, owq_options::target_bits, leaves a 576-wide model no column at
// 3.01: one fp16 column of a 576 × 576 matrix already costs 0.023 bits.) The grid is the
// reference's "mse" tuning (owq_method: mse_range_zero<>, the 2.4-norm joint range × zero-point
// grid), its default with --target_bit.
index owq_reference_weak_columns(slot s, index in_features, int b, double target) {
  const double r = 12.0 / (16.0 - b) * (target - b) / static_cast<double>(linears_per_block);
  index k = static_cast<index>(std::llround(static_cast<double>(in_features) * r * recipe_of(s).owq_ratio));
  if (k % 2) ++k;
  return std::min(k, ((in_features - 1) / 2) * 2);  // leave at least one quantized column
}

method_fn owq_adapter(const method_options& o) {
  detail::require(o.target_bits == 0.0 || (o.target_bits >= o.bits && o.target_bits < 16.0), "--method owq: --target-bits ",
                  o.target_bits, " must lie in [--bits, 16) (the reference's 3.01 / 4.01; default bits + 0.01)");
  return [o](const group_job& job) {
    const hessian H = job_hessian(job);
    std::vector<std::unique_ptr<linear>> out;
    for (std::size_t i = 0; i < job.W.size(); ++i)
      out.push_back(with_format(o, [&]<class B, class G>() {
        owq_options oo;
        oo.weak_columns = owq_reference_weak_columns(job.slots[i], job.W[i].cols(), o.bits, owq_target(o));
        return make_linear(quantize<owq_method<B, G>>(job.W[i], H, oo), o);
      }));
    return out;
  };
}

}  // namespace lowbit::tools
