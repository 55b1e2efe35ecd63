#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// quantized<PM>: what lowbit::quantize returns: the packed matrix itself (so q.gemv(x, y),
// q.dequantize(), q.bits_per_weight() work on it) plus a report of how it was made.
#include <string>
#include <utility>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/kernel/gemv.hpp"

namespace lowbit::inline LOWBIT_ABI {

struct quant_report {
  std::string method;       // "rtn", "gptq", ...
  double seconds = 0.0;     // wall time of the quantization
  double loss = 0.0;        // the method's own objective (GPTQ: sum (w - q)^2 / U_jj^2 / 2); 0 for RTN
  double bits_per_weight = 0.0;
  std::string notes;        // method-specific facts (chosen axis, outlier rate, ...)
};

template <PackedMatrix PM>
struct quantized : PM {
  using packed_type = PM;  // what io::save_packed / io::load_packed<PM> store and read back
  quant_report report;
  quantized() = default;
  quantized(PM m, quant_report r) : PM(std::move(m)), report(std::move(r)) {
    report.bits_per_weight = PM::bits_per_weight();
  }
  void gemv(std::span<const float> x, std::span<float> y) const { lowbit::gemv(packed(), x, y); }
  void gemm(std::span<const float> X, std::span<float> Y, index m) const { lowbit::gemm(packed(), X, Y, m); }
  const PM& packed() const { return *this; }
  PM& packed() { return *this; }
};

// lowbit::quantize<Method>(W, args...): every method is a policy type with a static run().
//   quantize<rtn<bits<4>, group<oc, 128>>>(W)
//   quantize<gptq<bits<3>, group<ic, 128>>>(W, H, options)
template <class Method, MatrixInput M, class... Args>
auto quantize(const M& W, Args&&... args) {
  return Method::run(to_view(W), std::forward<Args>(args)...);
}

}  // namespace lowbit
