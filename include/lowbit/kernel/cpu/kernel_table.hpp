#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The ISA boundary. Everything type-dependent (policies, stats storage, outlier stores,
// threading) stays in the generic driver (kernel/cpu/gemv_cpu.hpp); what crosses into an
// ISA-specific kernel is plain pointers and sizes, so one compiled kernel set per ISA serves
// every packed_matrix type, including stats storages added later (they are decoded to float
// by the driver through the stats table's `decode`).
#include <cstddef>
#include <cstdint>

#include "lowbit/kernel/cpu/isa.hpp"

// Outside the ABI tag (core/abi.hpp): these plain structs are the interface between TUs
// compiled for different ISAs (the lowbit_kernels library), so every TU must name them alike.
namespace lowbit::kernel_interface {

using index = std::ptrdiff_t;

// Codes are packed in blocks of 32 (format/bitpack.hpp); a "segment" is 16 codes, the
// smallest group the kernels scale in registers.
inline constexpr int segment_codes = 16;

// y[i * ldy + r] = sum_c w(r, c) x_i[c] over the low-bit part of `rows` consecutive rows,
// with fp32 activations, where
//   s == nullptr:  w = q                         (per-IC: the scales are folded into x)
//   c != nullptr:  w = s[g] * q + c[g],          g = segment >> seg_shift, per row r the
//                  stats of row r start at r * ld_stats  (per-OC: c = -scale * zero); the
//                  segment after a row's last group may be looked up (finite, times 0);
//   c == nullptr:  w = s[g] * q, groups of whole blocks (seg_shift >= 1): the caller
//                  subtracts sum_g s_g z_g sum_{c in g} x_c (per-OC, groups >= 32 codes).
// x_i = x + i * ldx holds blocks * 32 floats (zero beyond the quantized columns).
struct f32_rows_args {
  int bits = 4;
  const std::uint8_t* codes = nullptr;
  std::size_t row_bytes = 0;
  index rows = 0;
  index blocks = 0;
  const float* x = nullptr;
  index ldx = 0;
  index m = 1;
  const float* s = nullptr;
  const float* c = nullptr;
  index ld_stats = 0;
  int seg_shift = 0;
  float* y = nullptr;
  index ldy = 0;
};

// The int8-activation path (ggml's idea: quantize x once per call, then integer dot products).
// x_i is x̂_i = xscale[i * ldxs + xb] * xq[i * ldxq + c], in x-blocks of (32 << xblock_shift)
// codes. The kernel returns, per row, sum over x-blocks xb of
//   f(xb) * sum_{c in xb} q_c * xq_c,  f(xb) = xscale(xb) * (s ? s[xb >> group_shift] : 1),
// the stats of row r starting at r * ld_stats; the driver subtracts the zero-point term.
struct i8_rows_args {
  int bits = 4;
  const std::uint8_t* codes = nullptr;
  std::size_t row_bytes = 0;
  index rows = 0;
  index blocks = 0;
  const std::int8_t* xq = nullptr;
  index ldxq = 0;
  const float* xscale = nullptr;
  index ldxs = 0;
  index m = 1;
  int xblock_shift = 0;
  const float* s = nullptr;
  index ld_stats = 0;
  int group_shift = 0;
  float* y = nullptr;
  index ldy = 0;
};

struct kernel_table {
  isa id = isa::generic;
  void (*f32_rows)(const f32_rows_args&) = nullptr;
  // sum_j half(w[j]) * x[j]: OWQ's dense fp16 columns and the fp16 GEMV baseline.
  float (*dot_f16)(const std::uint16_t* w, const float* x, index n) = nullptr;
  // sum_j half(values[j]) * x[cols[j]]: one CSR row of SpQR outliers.
  float (*sparse_dot)(const std::uint16_t* values, const std::uint16_t* cols, index n, const float* x) = nullptr;
  // out[j] = half(in[j]): fp16 stats tables, decoded once per row block.
  void (*f16_to_f32)(const std::uint16_t* in, float* out, index n) = nullptr;
  // int8 path; i8_bits is a bit mask of the widths it handles (bit b set: b bits).
  void (*i8_rows)(const i8_rows_args&) = nullptr;
  unsigned i8_bits = 0;
};

}  // namespace lowbit::kernel_interface

namespace lowbit::inline LOWBIT_ABI::kernel::cpu {
using kernel_interface::f32_rows_args;
using kernel_interface::i8_rows_args;
using kernel_interface::index;
using kernel_interface::kernel_table;
using kernel_interface::segment_codes;
}  // namespace lowbit::kernel::cpu
