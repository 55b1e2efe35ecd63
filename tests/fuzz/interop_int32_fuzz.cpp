// libFuzzer target: GPTQ / AutoAWQ int32 layouts. The input is either a safetensors
// checkpoint (read_gptq / read_awq, then import) or raw tensors whose shapes and contents
// come from the bytes (import straight from the structs). Every input must end in a
// lowbit::error or a matrix that dequantizes to finite weights and exports back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "lowbit/io/interop_autoawq.hpp"

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
void check(const PM& pm) {
  if (!pm.dequantize().allFinite()) property_failed(__LINE__);
}

template <class PM>
void try_gptq(const gptq_tensors& t, gptq_checkpoint f) {
  try {
    const PM pm = from_gptq<PM>(t, f);
    check(pm);
    const gptq_tensors back = to_gptq(pm, gptq_checkpoint::v2);
    if (back.qweight != t.qweight) property_failed(__LINE__);  // codes survive the round trip
  } catch (const lowbit::error&) {
  }
}
template <class PM>
void try_awq(const awq_tensors& t) {
  try {
    const PM pm = from_awq<PM>(t);
    check(pm);
    if (to_awq(pm).qweight != t.qweight) property_failed(__LINE__);
  } catch (const lowbit::error&) {
  }
}

void all_gptq(const gptq_tensors& t) {
  for (auto f : {gptq_checkpoint::v1, gptq_checkpoint::v2}) {
    try_gptq<packed_matrix<bits<4>, group<oc, 32>>>(t, f);
    try_gptq<packed_matrix<bits<3>, group<oc, 32>>>(t, f);
    try_gptq<packed_matrix<bits<2>, group<oc, per_channel>>>(t, f);
    try_gptq<packed_matrix<bits<8>, group<oc, 16>, no_outliers, fp16_stats, symmetric>>(t, f);
  }
}

struct cursor {
  const std::uint8_t* p;
  std::size_t n;
  std::uint32_t u8() { return n ? (--n, *p++) : 0; }
  std::int32_t i32() {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= u8() << (8 * k);
    return static_cast<std::int32_t>(v);
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  cursor c{data + 1, size - 1};
  if (data[0] & 1) {  // a safetensors checkpoint
    std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data + 1), reinterpret_cast<const std::byte*>(data) + size);
    try {
      const auto f = safetensors_file::from_memory(std::move(bytes));
      const int nbits = (data[0] >> 1) & 7;
      const int gsize = (data[0] & 0x10) ? 32 : -1;
      for (const auto& t : f.tensors()) {
        if (!t.name.ends_with(".qweight")) continue;
        const auto prefix = t.name.substr(0, t.name.size() - 8);
        try {
          all_gptq(read_gptq(f, prefix, nbits, gsize, false));
        } catch (const lowbit::error&) {
        }
        try {
          const awq_tensors a = read_awq(f, prefix, gsize);
          try_awq<packed_matrix<bits<4>, group<oc, 32>>>(a);
          try_awq<packed_matrix<bits<4>, group<oc, per_channel>, no_outliers, fp32_stats>>(a);
        } catch (const lowbit::error&) {
        }
      }
    } catch (const lowbit::error&) {
    }
    return 0;
  }
  // Raw structs: small shapes from the bytes, contents from the rest (sizes may be wrong).
  gptq_tensors g;
  g.bits = static_cast<int>(c.u8() % 10);
  g.in_features = static_cast<lowbit::index>(c.u8() % 97);
  g.out_features = static_cast<lowbit::index>(c.u8() % 97);
  g.group_size = static_cast<int>(c.u8()) - 2;
  const std::size_t nw = c.u8(), nz = c.u8() % 32, ns = c.u8(), ng = c.u8() % 100;
  for (std::size_t i = 0; i < nw; ++i) g.qweight.push_back(c.i32());
  for (std::size_t i = 0; i < nz; ++i) g.qzeros.push_back(c.i32());
  for (std::size_t i = 0; i < ns; ++i) g.scales.push_back(half::from_bits(static_cast<std::uint16_t>(c.i32())));
  for (std::size_t i = 0; i < ng; ++i) g.g_idx.push_back(c.i32() % 8);
  all_gptq(g);
  awq_tensors a;
  a.in_features = g.in_features;
  a.out_features = g.out_features;
  a.group_size = g.group_size;
  a.qweight = g.qweight;
  a.qzeros = g.qzeros;
  a.scales = g.scales;
  try_awq<packed_matrix<bits<4>, group<oc, 32>>>(a);
  try_awq<packed_matrix<bits<4>, group<oc, 32>, no_outliers, fp16_stats, symmetric>>(a);
  return 0;
}
