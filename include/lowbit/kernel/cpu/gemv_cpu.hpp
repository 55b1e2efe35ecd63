#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The CPU GEMV/GEMM driver: everything that depends on the packed type (group axis, stats
// storage, outlier store) is resolved here, once per call or per row block, and the inner
// loops run in an ISA kernel set (kernel_table) that only sees pointers.
//
//   per-OC groups:  y_r = sum_g s_g (sum_{c in g} q_c x_c - z_g X_g), X_g = sum_{c in g} x_c
//                   taken once per call: the kernel scales each group's partial sums once.
//                   16-code groups dequantize in registers instead (w = s q - s z); smaller
//                   ones fold the row's scales into x like a per-IC row group of one row.
//                   A tile of m <= 4 activation vectors shares one decode of a row.
//   per-IC groups:  for row group rg, xs[c] = x[c] s(rg, c) and bias = sum_c xs[c] z(rg, c)
//                   are computed once; every row of the group is then sum_c q_c xs[c] - bias
//                   (AdaDim's layout costs one pass over x per row group, not per weight).
//   dense_columns (OWQ): the low-bit part runs on x gathered to the quantized columns, then
//                   the [rows x k] fp16 weak columns are added against x at those columns.
//   sparse_outliers (SpQR): each row's CSR values are added, sum v_j x[col_j].
//   Stats are decoded to float once per block of rows (per-OC) or per row group (per-IC):
//   fp16/fp32 tables in bulk by the kernel set, any other StatsStorage (SpQR's second level)
//   through its table's `decode(begin, n, scale, zero, implicit_zero)`.
//
// Every output row is computed by one task with an operation order that does not depend on
// where the rows were split, so results are identical for any thread count.
//
// Optional int8 activations (ggml's Q8 idea): x is quantized once per call to int8 in blocks
// of up to 256 codes (absmax / 127); the row sums become integer dot products (vpdpbusd on
// VNNI). The result is exactly W_hat · x_hat for that x_hat, i.e. an activation rounding error
// of at most 1/254 of each block's largest |x| per element (see docs/performance.md).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/kernel/cpu/dispatch.hpp"

namespace lowbit::inline LOWBIT_ABI::kernel::cpu {

enum class activations { fp32, int8 };

struct gemm_options {
  activations act = activations::fp32;
  const kernel_table* table = nullptr;  // nullptr: active_table()
};

namespace detail {

inline constexpr index rows_per_step = 32;  // rows whose stats are decoded together

// The activations as the low-bit kernels read them: m rows of `padded` floats, the quantized
// columns in order, zero beyond them (the padding codes of the last block are 0, but 0 * NaN
// would not be).
struct packed_x {
  std::vector<float> own;
  const float* data = nullptr;
  index ld = 0;
};

template <PackedMatrix PM>
packed_x pack_activations(const PM& W, const float* X, index m, index padded) {
  packed_x p;
  const index qcols = W.quantized_cols(), cols = W.cols();
  if (qcols == cols && padded == cols) {
    p.data = X;
    p.ld = cols;
    return p;
  }
  p.own.assign(static_cast<std::size_t>(m * padded), 0.0f);
  if (qcols == cols) {
    for (index i = 0; i < m; ++i) std::copy(X + i * cols, X + (i + 1) * cols, p.own.begin() + i * padded);
  } else {
    const std::vector<index> map = W.quantized_column_map();
    for (index i = 0; i < m; ++i)
      for (index qc = 0; qc < qcols; ++qc) p.own[static_cast<std::size_t>(i * padded + qc)] = X[i * cols + map[static_cast<std::size_t>(qc)]];
  }
  p.data = p.own.data();
  p.ld = padded;
  return p;
}

// int8 activations: xq = round(x / d) per x-block, d = absmax / 127; the x-block sums of
// x_hat = d * xq feed the zero-point term.
struct quantized_x {
  std::vector<std::int8_t> q;
  std::vector<float> scale;  // [m x xblocks]
  index ldq = 0, lds = 0, xblock = 0;
};

inline void quantize_activations(const float* x, index ldx, index m, index padded, index xblock, quantized_x& out) {
  out.xblock = xblock;
  out.ldq = padded;
  out.lds = (padded + xblock - 1) / xblock;
  out.q.assign(static_cast<std::size_t>(m * padded), 0);
  out.scale.assign(static_cast<std::size_t>(m * out.lds), 0.0f);
  for (index i = 0; i < m; ++i)
    for (index b = 0; b < out.lds; ++b) {
      const index c0 = b * xblock, c1 = std::min(padded, c0 + xblock);
      float amax = 0.0f;
      for (index c = c0; c < c1; ++c) amax = std::max(amax, std::abs(x[i * ldx + c]));
      const float d = amax / 127.0f;
      out.scale[static_cast<std::size_t>(i * out.lds + b)] = d;
      if (d == 0.0f) continue;
      const float inv = 1.0f / d;
      for (index c = c0; c < c1; ++c)
        out.q[static_cast<std::size_t>(i * padded + c)] = static_cast<std::int8_t>(std::nearbyint(x[i * ldx + c] * inv));
    }
}

// Stats [begin, begin + n) as floats. fp16/fp32 tables are converted in bulk by the kernel
// set; any other storage (SpQR's quantized_stats) goes through its table's `decode`.
template <PackedMatrix PM>
void decode_stats(const PM& W, const kernel_table& K, index begin, index n, float* s, float* z) {
  using S = typename PM::stats_policy;
  const auto& t = W.stats();
  if constexpr (std::is_same_v<S, fp16_stats> || std::is_same_v<S, fp32_stats>) {
    auto convert = [&](auto span, float* out) {
      if constexpr (std::is_same_v<S, fp16_stats>) K.f16_to_f32(reinterpret_cast<const std::uint16_t*>(span.data()) + begin, out, n);
      else std::copy(span.begin() + begin, span.begin() + begin + n, out);
    };
    convert(t.scales(), s);
    if (t.has_zeros()) convert(t.zeros(), z);
    else std::fill(z, z + n, PM::implicit_zero);
  } else {
    t.decode(begin, n, s, z, PM::implicit_zero);
  }
}

inline int log2_exact(index v) { return std::countr_zero(static_cast<std::uint64_t>(v)); }

// Adds the outlier store's contribution to rows [r0, r1) of Y.
template <PackedMatrix PM>
void add_outliers(const PM& W, const kernel_table& K, const float* X, const std::vector<float>& xweak, index m,
                  index r0, index r1, float* Y) {
  W.outliers().add_products(K, X, xweak.data(), m, W.cols(), r0, r1, W.rows(), Y);
}

// X gathered to the weak columns, [m x k] (empty without them).
template <PackedMatrix PM>
std::vector<float> gather_weak(const PM& W, const float* X, index m) {
  const auto cols = W.weak_columns();
  const index k = static_cast<index>(cols.size());
  std::vector<float> xw(static_cast<std::size_t>(m * k));
  for (index i = 0; i < m; ++i)
    for (index j = 0; j < k; ++j) xw[static_cast<std::size_t>(i * k + j)] = X[i * W.cols() + cols[static_cast<std::size_t>(j)]];
  return xw;
}

// What a per-OC call computes once, before the rows are split over threads: the group sums
// of x (fp32 path), or the int8 activations and the group sums of x_hat (int8 path).
struct oc_plan {
  quantized_x qx;
  std::vector<double> xsum;  // [m x groups]
  index xblock = 0, xpg = 0;  // int8: codes per x-block, x-blocks per group
};

template <PackedMatrix PM>
oc_plan plan_oc(const PM& W, const packed_x& xp, index m, index blocks, bool int8) {
  oc_plan p;
  const index ng = W.stat_cols(), G = W.group_size(), qcols = W.quantized_cols(), padded = blocks * 32;
  p.xsum.assign(static_cast<std::size_t>(m * ng), 0.0);
  if (!int8) {
    for (index i = 0; i < m; ++i)
      for (index c = 0; c < qcols; ++c) p.xsum[static_cast<std::size_t>(i * ng + (ng == 1 ? 0 : c / G))] += xp.data[i * xp.ld + c];
    return p;
  }
  p.xblock = ng == 1 ? 256 : std::min<index>(G, 256);
  quantize_activations(xp.data, xp.ld, m, padded, p.xblock, p.qx);
  p.xpg = ng == 1 ? p.qx.lds : G / p.xblock;
  for (index i = 0; i < m; ++i)
    for (index xb = 0; xb < p.qx.lds; ++xb) {
      std::int32_t t = 0;
      for (index c = xb * p.xblock; c < std::min(padded, (xb + 1) * p.xblock); ++c) t += p.qx.q[static_cast<std::size_t>(i * padded + c)];
      p.xsum[static_cast<std::size_t>(i * ng + std::min(xb / p.xpg, ng - 1))] +=
          static_cast<double>(p.qx.scale[static_cast<std::size_t>(i * p.qx.lds + xb)]) * t;
    }
  return p;
}

// Per-IC (and per-OC groups smaller than a 16-code segment, as row groups of one row):
// fold the scales of a row group into x, subtract the zero-point bias.
template <PackedMatrix PM>
void run_folded(const PM& W, const kernel_table& K, const packed_x& xp, index m, index blocks, index r0, index r1,
                float* Y, bool per_row_oc) {
  const index rows = W.rows(), qcols = W.quantized_cols(), padded = blocks * 32;
  const index G = per_row_oc ? 1 : W.group_size();
  std::vector<float> s(static_cast<std::size_t>(per_row_oc ? W.stat_cols() : qcols)), z(s.size());
  std::vector<float> xs(static_cast<std::size_t>(m * padded), 0.0f), y(static_cast<std::size_t>(m * G));
  std::vector<double> bias(static_cast<std::size_t>(m));
  for (index g0 = r0 - r0 % G; g0 < r1; g0 += G) {
    const index a = std::max(g0, r0), b = std::min({g0 + G, r1, rows});
    decode_stats(W, K, W.stat_index(g0, 0), static_cast<index>(s.size()), s.data(), z.data());
    const index gs = per_row_oc ? W.group_size() : 1;  // quantized columns per stat
    for (index i = 0; i < m; ++i) {
      double bsum = 0.0;
      for (index qc = 0; qc < qcols; ++qc) {
        const std::size_t st = static_cast<std::size_t>(qc / gs);
        const float v = xp.data[i * xp.ld + qc] * s[st];
        xs[static_cast<std::size_t>(i * padded + qc)] = v;
        bsum += static_cast<double>(v) * z[st];
      }
      bias[static_cast<std::size_t>(i)] = bsum;
    }
    f32_rows_args args;
    args.bits = PM::bits;
    args.codes = W.row_codes(a);
    args.row_bytes = W.row_bytes();
    args.rows = b - a;
    args.blocks = blocks;
    args.x = xs.data();
    args.ldx = padded;
    args.m = m;
    args.y = y.data();
    args.ldy = G;
    K.f32_rows(args);
    for (index i = 0; i < m; ++i)
      for (index r = a; r < b; ++r)
        Y[i * rows + r] = static_cast<float>(static_cast<double>(y[static_cast<std::size_t>(i * G + (r - a))]) - bias[static_cast<std::size_t>(i)]);
  }
}

// y_ir -= sum_g s_rg z_rg X_ig for rows [a, b) (stats of those rows from index 0 of s, z; X
// the group sums of x, [m x ng]): the zero points of the grouped per-OC kernels, which sum
// q·x only. Four partial sums per row instead of one chain of ng dependent double adds
// (measured at 4096 x 4096, 1 thread, three interleaved runs each: int8 path m = 4 6 % faster,
// m = 1 unchanged within noise). The order depends on g only, so results stay the same for
// any thread count and ISA; one function for both the fp32 and the int8 driver.
inline void subtract_zero_point_terms(const float* s, const float* z, const double* xsum, index ng, index m, index a,
                                      index b, float* Y, index rows) {
  for (index r = a; r < b; ++r) {
    const float* sr = s + (r - a) * ng;
    const float* zr = z + (r - a) * ng;
    for (index i = 0; i < m; ++i) {
      const double* X = xsum + i * ng;
      double p[4] = {0.0, 0.0, 0.0, 0.0};
      index g = 0;
      for (; g + 4 <= ng; g += 4)
        for (int k = 0; k < 4; ++k) p[k] += static_cast<double>(sr[g + k]) * zr[g + k] * X[g + k];
      for (; g < ng; ++g) p[0] += static_cast<double>(sr[g]) * zr[g] * X[g];
      Y[i * rows + r] = static_cast<float>(static_cast<double>(Y[i * rows + r]) - ((p[0] + p[1]) + (p[2] + p[3])));
    }
  }
}

// Per-OC groups of >= 16 codes (or one group per row). Groups of whole 32-code blocks take
// the grouped kernel, y = sum_g s_g (sum_{c in g} q_c x_c - z_g X_g) with the group sums X_g
// of x taken once per call; 16-code groups dequantize in registers (w = s q - s z).
template <PackedMatrix PM>
void run_oc(const PM& W, const kernel_table& K, const packed_x& xp, const oc_plan& plan, index m, index blocks,
            index r0, index r1, float* Y) {
  const index rows = W.rows(), ng = W.stat_cols(), G = W.group_size();
  const int shift = ng == 1 ? 62 : log2_exact(G / segment_codes);
  const bool grouped = ng == 1 || G >= 32;
  const std::vector<double>& xsum = plan.xsum;
  // One spare entry: with 16-code groups the zero-padded tail segment of a row's last block
  // may look up the group after the row's last one (its codes and x are 0).
  std::vector<float> s(static_cast<std::size_t>(rows_per_step * ng + 1)), c(s.size()), z(s.size());
  for (index a = r0; a < r1; a += rows_per_step) {
    const index b = std::min(r1, a + rows_per_step);
    decode_stats(W, K, W.stat_index(a, 0), (b - a) * ng, s.data(), z.data());  // rows a..b are contiguous
    if (!grouped)
      for (std::size_t k = 0; k < static_cast<std::size_t>((b - a) * ng); ++k) c[k] = -s[k] * z[k];
    f32_rows_args args;
    args.bits = PM::bits;
    args.codes = W.row_codes(a);
    args.row_bytes = W.row_bytes();
    args.rows = b - a;
    args.blocks = blocks;
    args.x = xp.data;
    args.ldx = xp.ld;
    args.m = m;
    args.s = s.data();
    args.c = grouped ? nullptr : c.data();
    args.ld_stats = ng;
    args.seg_shift = shift;
    args.y = Y + a;
    args.ldy = rows;
    K.f32_rows(args);
    if (grouped) subtract_zero_point_terms(s.data(), z.data(), xsum.data(), ng, m, a, b, Y, rows);
  }
}

// int8 activations. Per-OC: x-blocks of min(G, 256) codes inside groups of G >= 32; per-IC:
// x_s = x * s(rg, .) is quantized per row group.
template <PackedMatrix PM>
void run_i8(const PM& W, const kernel_table& K, const packed_x& xp, const oc_plan& plan, index m, index blocks,
            index r0, index r1, float* Y) {
  const index rows = W.rows(), qcols = W.quantized_cols(), padded = blocks * 32;
  i8_rows_args args;
  args.bits = PM::bits;
  args.row_bytes = W.row_bytes();
  args.blocks = blocks;
  args.m = m;
  args.ldy = rows;
  quantized_x qx;
  if (W.group_axis() == axis::oc) {
    const index ng = W.stat_cols();
    const quantized_x& pq = plan.qx;
    const std::vector<double>& xsum = plan.xsum;  // zero-point term: group sums of x_hat
    std::vector<float> s(static_cast<std::size_t>(rows_per_step * ng)), z(s.size());
    args.xq = pq.q.data();
    args.ldxq = pq.ldq;
    args.xscale = pq.scale.data();
    args.ldxs = pq.lds;
    args.xblock_shift = log2_exact(plan.xblock / 32);
    args.s = s.data();
    args.ld_stats = ng;
    args.group_shift = ng == 1 ? 62 : log2_exact(plan.xpg);
    for (index a = r0; a < r1; a += rows_per_step) {
      const index b = std::min(r1, a + rows_per_step);
      decode_stats(W, K, W.stat_index(a, 0), (b - a) * ng, s.data(), z.data());
      args.codes = W.row_codes(a);
      args.rows = b - a;
      args.y = Y + a;
      K.i8_rows(args);
      subtract_zero_point_terms(s.data(), z.data(), xsum.data(), ng, m, a, b, Y, rows);
    }
    return;
  }
  // per-IC
  const index G = W.group_size();
  std::vector<float> s(static_cast<std::size_t>(qcols)), z(s.size()), xs(static_cast<std::size_t>(m * padded), 0.0f);
  std::vector<double> bias(static_cast<std::size_t>(m));
  args.ldy = rows;
  for (index g0 = r0 - r0 % G; g0 < r1; g0 += G) {
    const index a = std::max(g0, r0), b = std::min({g0 + G, r1, rows});
    decode_stats(W, K, W.stat_index(g0, 0), qcols, s.data(), z.data());
    for (index i = 0; i < m; ++i)
      for (index qc = 0; qc < qcols; ++qc)
        xs[static_cast<std::size_t>(i * padded + qc)] = xp.data[i * xp.ld + qc] * s[static_cast<std::size_t>(qc)];
    quantize_activations(xs.data(), padded, m, padded, 256, qx);
    for (index i = 0; i < m; ++i) {
      double bsum = 0.0;  // sum_c x_hat_s[c] z[c], on the rounded activations the kernel sees
      for (index qc = 0; qc < qcols; ++qc)
        bsum += static_cast<double>(qx.scale[static_cast<std::size_t>(i * qx.lds + qc / 256)]) *
                qx.q[static_cast<std::size_t>(i * padded + qc)] * z[static_cast<std::size_t>(qc)];
      bias[static_cast<std::size_t>(i)] = bsum;
    }
    args.codes = W.row_codes(a);
    args.rows = b - a;
    args.xq = qx.q.data();
    args.ldxq = qx.ldq;
    args.xscale = qx.scale.data();
    args.ldxs = qx.lds;
    args.xblock_shift = 3;
    args.s = nullptr;
    args.y = Y + a;
    K.i8_rows(args);
    for (index i = 0; i < m; ++i)
      for (index r = a; r < b; ++r)
        Y[i * rows + r] = static_cast<float>(static_cast<double>(Y[i * rows + r]) - bias[static_cast<std::size_t>(i)]);
  }
}

}  // namespace detail

// Y = X · W_hatᵀ: X is [m x cols], Y is [m x rows], row-major. Shapes are checked by the
// public front end (kernel/gemv.hpp).
template <PackedMatrix PM>
void gemm(const PM& W, const float* X, float* Y, index m, const gemm_options& opt = {}) {
  const kernel_table& K = opt.table ? *opt.table : active_table();
  const index rows = W.rows(), blocks = (W.quantized_cols() + 31) / 32;
  const detail::packed_x xp = detail::pack_activations(W, X, m, blocks * 32);
  const std::vector<float> xweak = detail::gather_weak(W, X, m);
  const bool oc = W.group_axis() == axis::oc;
  const bool oc_small_groups = oc && W.stat_cols() > 1 && W.group_size() < segment_codes;
  const bool int8 = opt.act == activations::int8 && K.i8_rows && (K.i8_bits >> PM::bits & 1u) &&
                    !(oc && W.stat_cols() > 1 && W.group_size() < 32);
  // Rows per task: enough work to amortise a task, aligned to per-IC row groups when small.
  index grain = std::max<index>(8, 65536 / std::max<index>(1, W.quantized_cols()));
  if (!oc && W.group_size() < rows) grain = std::max(grain, W.group_size());
  detail::oc_plan plan;
  if (oc && (int8 || (!oc_small_groups && (W.stat_cols() == 1 || W.group_size() >= 32))))
    plan = detail::plan_oc(W, xp, m, blocks, int8);
  parallel_for(rows, grain, [&](index r0, index r1) {
    if (int8) detail::run_i8(W, K, xp, plan, m, blocks, r0, r1, Y);
    else if (oc && !oc_small_groups) detail::run_oc(W, K, xp, plan, m, blocks, r0, r1, Y);
    else if (oc) {
      for (index r = r0; r < r1; ++r) detail::run_folded(W, K, xp, m, blocks, r, r + 1, Y, true);
    } else detail::run_folded(W, K, xp, m, blocks, r0, r1, Y, false);
    detail::add_outliers(W, K, X, xweak, m, r0, r1, Y);
  });
}

}  // namespace lowbit::kernel::cpu
