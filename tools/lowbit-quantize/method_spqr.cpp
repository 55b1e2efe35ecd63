// lowbit-quantize's SpQR adapter.
#include <cmath>

#include "lowbit-quantize/adapters.hpp"
#include "lowbit/spqr.hpp"

namespace lowbit::tools {

// ---- SpQR: GPTQ's loop in tiny groups (β₁ = --group, default 16) with 3-bit quantized stats
// over 16 rows and fp16 sparse outliers; the README recipe's percdamp 1.0 and act-order
// (spqr_options defaults). --outlier-threshold sets r (0.2 default; larger: fewer outliers). ----
method_fn spqr_adapter(const method_options& o) {
  with_spqr_format(o, []<class M>() { return 0; });  // --axis / --group checked before any work
  detail::require(o.target_bits == 0.0, "--method spqr: --target-bits is not supported (the size follows from --bits, ",
                  "--group and the outliers found); set --outlier-threshold (default 0.2) and read the exact average ",
                  "bits in the report");
  detail::require(std::isfinite(o.outlier_threshold) ? o.outlier_threshold >= 0.0 : o.outlier_threshold > 0.0,
                  "--outlier-threshold ", o.outlier_threshold, " must be >= 0 (inf: no outliers)");
  return [o](const group_job& job) {
    const hessian H = job_hessian(job);
    spqr_options so;
    so.outlier_threshold = o.outlier_threshold;
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_spqr_format(o, [&]<class M>() -> std::unique_ptr<linear> {
        auto q = quantize<M>(W, H, so);
        std::string notes = q.report.notes;
        return std::make_unique<spqr_linear<typename M::packed_type>>(std::move(q), o.path, std::move(notes));
      }));
    return out;
  };
}

}  // namespace lowbit::tools
