// libFuzzer target: GGUF tensors imported into packed matrices (Q4_0 / Q8_0 / Q4_1 into the
// matching lowbit types) and exported back. Every input must end in a lowbit::error or a
// matrix whose dequantization equals the GGUF reader's own (Q4_0, Q8_0: bit for bit).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "lowbit/io/interop_gguf.hpp"

namespace {
// A violated property (not a parser error): report and abort, so libFuzzer or the driver
// keeps the input.
[[noreturn]] inline void property_failed(int line) {
  std::fprintf(stderr, "%s:%d: fuzz property violated\n", __FILE__, line);
  std::abort();
}
using namespace lowbit;
using namespace lowbit::io;

template <class PM>
void try_import(const gguf_file& f, const gguf_tensor_info& t, bool exact) {
  try {
    const PM pm = from_gguf<PM>(f, t.name);
    const Eigen::MatrixXf d = pm.dequantize();
    if (!d.allFinite()) property_failed(__LINE__);
    if (exact && !(d == f.load_matrix(t.name))) property_failed(__LINE__);
    const auto blocks = to_gguf_blocks(pm, t.type);
    if (exact && blocks.size() != f.tensor_bytes(t).size()) property_failed(__LINE__);
  } catch (const lowbit::error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    const auto f = gguf_file::from_memory(std::move(bytes));
    for (const auto& t : f.tensors()) {
      if (t.n_elements() > (1u << 18)) continue;
      try_import<packed_matrix<bits<4>, group<oc, 32>, no_outliers, fp16_stats, symmetric>>(f, t, true);
      try_import<packed_matrix<bits<4>, group<oc, 64>, no_outliers, fp32_stats, symmetric>>(f, t, true);
      try_import<packed_matrix<bits<8>, group<oc, 32>, no_outliers, fp16_stats, symmetric>>(f, t, true);
      try_import<packed_matrix<bits<4>, group<oc, 32>>>(f, t, false);
    }
  } catch (const lowbit::error&) {
  }
  return 0;
}
