// libFuzzer target: the lowbit file reader on arbitrary bytes. Checksums are skipped on most
// inputs (a random mutation almost never keeps a CRC-32C valid, so the fuzzer would never get
// past it) and enforced on the rest; either way every input must end in a lowbit::error or in
// matrices that dequantize to finite weights.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "lowbit/io/lowbit_format.hpp"

namespace {
// A violated property (not a parser error): report and abort, so libFuzzer or the driver
// keeps the input.
[[noreturn]] inline void property_failed(int line) {
  std::fprintf(stderr, "%s:%d: fuzz property violated\n", __FILE__, line);
  std::abort();
}
using namespace lowbit;
using p3 = packed_matrix<bits<3>, group<oc, 32>>;
using p4s = packed_matrix<bits<4>, group<adaptive, 32>, no_outliers, fp16_stats, symmetric>;
using p4sp = packed_matrix<bits<4>, group<oc, 32>, sparse_outliers>;
using p3dc = packed_matrix<bits<3>, group<oc, 16>, dense_columns>;
using p8 = packed_matrix<bits<8>, group<ic, per_channel>, no_outliers, fp32_stats>;
using p2 = packed_matrix<bits<2>, group<oc, 16>>;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool verify = size % 7 == 0;
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    const auto f = io::lowbit_file::from_memory(std::move(bytes), "fuzz input", verify);
    for (const auto& m : f.matrices()) {
      if (m.rows * m.cols > (1 << 20)) continue;
      try {
        io::dispatch_packed<p3, p4s, p4sp, p3dc, p8, p2>(f, m.name, [](const auto& pm) {
          const Eigen::MatrixXf d = pm.dequantize();
          if (!d.allFinite()) property_failed(__LINE__);  // a loaded matrix must never hold NaN/Inf
        });
      } catch (const lowbit::error&) {
      }
    }
    for (const auto& t : f.tensors()) (void)f.load_tensor(t);
  } catch (const lowbit::error&) {
  }
  return 0;
}
