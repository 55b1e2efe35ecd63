#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// CUDA kernels on a device_packed_matrix: Y = X · Ŵᵀ for m activation rows (GEMV at m = 1,
// small-batch GEMM up to 16 rows per launch, larger m in chunks of 16), and dequantize().
// fp16 activations and outputs, fp32 accumulation.
//
// Why tensor cores even at m = 1: decode is memory-bound, so the weight bytes decide the
// time; but at m = 16 the same bytes feed 16x the multiply-adds, more than the CUDA cores
// can issue in the time the bytes take to arrive. mma.sync.m16n8k16 does the products of 16
// rows x 16 columns x 8 batch rows in one instruction, so m = 1..8 costs the same as m = 1
// and m = 16 adds one mma per step (Marlin's observation, anchors.md A3).
//
// Work split. A block of 8 warps owns one band of 16 output rows; warp w takes the k-tiles
// w, w + 8, ... (so the block streams consecutive 4 KiB of codes per step), keeps an fp32
// accumulator fragment, adds its share of the OWQ dense columns and SpQR sparse outliers,
// and the 8 partial sums are added in a fixed order through shared memory: the result is
// deterministic (no atomics), unlike the split-K GEMV kernels of vLLM.
//
// Dequantization in registers: the 0x6400 trick ORs a code into the mantissa of fp16 1024
// with one LOP3 (a byte permute for 8 bits); one fma with power-of-two constants gives the
// code exactly (the bit position of the code folded in, so no shift per pair), then
// w = fma(code, s, b) with the per-group fp16 scale s and bias b = -zero * s
// (device_packed_matrix.cuh).
//
// Two main loops: the register pipeline (default; codes loaded with 16-byte evict-first
// loads straight into registers, one group of tiles at a time at m <= 8, two groups double
// buffered at m > 8) and, opt-in on sm_90, a bulk-copy (TMA) pipeline through shared memory.
// Both add every warp's tiles in the same order, so they give bitwise the same output.
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "lowbit/kernel/cuda/device_packed_matrix.cuh"

namespace lowbit::inline LOWBIT_ABI::kernel::cuda {

inline constexpr int max_batch = 16;  // activation rows per launch (two mma n-tiles of 8)

// Which main loop gemm runs. automatic = registers: the register pipeline, measured fastest
// on the H100. bulk_copy: the sm_90 bulk-copy (TMA) pipeline, 20-30 % slower at m = 1 there
// (its consumer warps are latency-bound, docs/cuda.md); kept because it is tested bitwise
// equal to the register path and is the base for a warp-specialised kernel.
enum class gemm_path { automatic, registers, bulk_copy };
struct gemm_config {
  gemm_path path = gemm_path::automatic;
  int max_blocks = 0;  // bulk path: cap on the persistent grid (0: as many as fit); tests use
                       // small caps so that one block streams several row bands
};

namespace detail_kernels {

inline constexpr int warps = 8;   // split-K ways inside a block (one warp per k-tile stream)

struct gemm_params {
  const std::uint8_t* codes;
  const __half2* oc_stats;
  const __half* ic_scale;
  const __half* ic_bias;
  const __half* x;       // activations of the low-bit columns: [m x ldx]
  const __half* x_full;  // logical activations (outliers): [m x ldx_full]
  const __half* xT;      // m > 8 with outliers: the same transposed, [ldx_full][16], else null
  __half* y;             // [m x ldy]
  int m, ldx, ldx_full, ldy, rows, qcols, nkt, stat_cols, ld_ic, vec_x;
  int group_shift;  // log2 of the group size; 30 for per-channel groups (every index maps to group 0)
  int nweak;
  const std::int32_t* weak_cols;
  const __half* weak_vals;
  const std::uint32_t* row_ptr;
  const std::uint16_t* sp_col;
  const __half* sp_val;
};

__device__ __forceinline__ __half2 as_half2(std::uint32_t u) {
  __half2 h;
  std::memcpy(&h, &u, sizeof h);
  return h;
}
__device__ __forceinline__ std::uint32_t as_u32(__half2 h) {
  std::uint32_t u;
  std::memcpy(&u, &h, sizeof u);
  return u;
}

// A lane's codes of one tile: 4 * Bits bytes = Bits 32-bit words.
template <int Bits>
struct lane_codes {
  std::uint32_t w[Bits];
};

// Tiles per load group of the register pipeline and whether two groups are in flight.
// Measured on the H100 (docs/cuda.md), m <= 8, one group at a time: what decides is blocks
// per SM (their warps hide the DRAM latency), so groups stay small. 4 tiles (48 registers,
// five blocks per SM) only for 4-bit per-OC groups; 2 tiles for 4-bit per-IC and 8-bit, 4 for
// 3 and 2 bits (40 registers, six blocks per SM: 3-bit 8-20 % and 2-bit per-IC 13-25 %
// faster than 8 tiles; 8 tiles for 4 bits: 74 registers, three blocks, 25-38 % slower).
// Double buffering at m <= 8 cost 2-6 % (fewer blocks). At m = 9..16 the second mma n-tile
// lengthens the decode of a group, and two half-size groups double buffered are 4-19 % faster.
template <int Bits, int NT>
inline constexpr bool double_buffered = NT == 2;
template <int Bits, int NT, stats_mode Mode>
inline constexpr int unroll = NT == 2 ? (Bits == 8 ? 1 : Bits == 4 ? 2 : 4)
                                      : (Bits == 4 && Mode == stats_mode::oc_wide ? 4 : Bits == 8 || Bits == 4 ? 2 : 4);

// Streaming loads (evict-first: every code byte is read exactly once per call).
template <int Bits>
__device__ __forceinline__ void load_codes(lane_codes<Bits>& c, const std::uint8_t* tile, int lane) {
  if constexpr (Bits == 4) {
    const uint4 v = __ldcs(reinterpret_cast<const uint4*>(tile) + lane);
    c.w[0] = v.x, c.w[1] = v.y, c.w[2] = v.z, c.w[3] = v.w;
  } else if constexpr (Bits == 8) {
    const uint4 a = __ldcs(reinterpret_cast<const uint4*>(tile) + 2 * lane);
    const uint4 b = __ldcs(reinterpret_cast<const uint4*>(tile) + 2 * lane + 1);
    c.w[0] = a.x, c.w[1] = a.y, c.w[2] = a.z, c.w[3] = a.w;
    c.w[4] = b.x, c.w[5] = b.y, c.w[6] = b.z, c.w[7] = b.w;
  } else {
    const uint2 v = __ldcs(reinterpret_cast<const uint2*>(tile) + lane);
    c.w[0] = v.x, c.w[1] = v.y;
    if constexpr (Bits == 3) c.w[2] = __ldcs(reinterpret_cast<const unsigned*>(tile + 256) + lane);
  }
}

// fp16 pair bits of +2^E and -2^E (normal range), for the magic-number constants.
template <int E>
inline constexpr std::uint32_t half2_pow2 = (static_cast<std::uint32_t>(15 + E) << 10) | (static_cast<std::uint32_t>(15 + E) << 26);
template <int E>
inline constexpr std::uint32_t half2_neg_pow2 = half2_pow2<E> | 0x80008000u;

// x holds fp16 (1024 + 2^B c0, 1024 + 2^B c1) (codes OR-ed into the mantissa of 1024 at bit
// B): one fma with 2^-B and -1024 * 2^-B gives (c0, c1) exactly (x * 2^-B = 2^(10-B) + c is
// representable, so the single rounding of the fma is exact).
template <int B>
__device__ __forceinline__ __half2 magic_to_code(std::uint32_t x) {
  if constexpr (B == 0) return __hsub2(as_half2(x), as_half2(0x64006400u));
  else return __hfma2(as_half2(x), as_half2(half2_pow2<-B>), as_half2(half2_neg_pow2<10 - B>));
}

// The two codes of pair p at k-step t as exact fp16 values (layout.cuh has the bit positions):
// one LOP3 per pair ((w & mask) | 0x6400 for 2/4 bits, (lo & mask) | (hi & mask') | 0x6400 ->
// two for 3 bits), one shift or rotate shared by four pairs, one fma.
template <int Bits, int T, int P>
__device__ __forceinline__ __half2 pair_code(const lane_codes<Bits>& c) {
  if constexpr (Bits == 4) {
    const std::uint32_t w = P < 2 ? c.w[T] : c.w[T] >> 8;
    return magic_to_code<4 * (P % 2)>((w & (0x000F000Fu << (4 * (P % 2)))) | 0x64006400u);
  } else if constexpr (Bits == 2) {
    const std::uint32_t w = T % 2 ? c.w[T / 2] >> 8 : c.w[T / 2];
    return magic_to_code<2 * P>((w & (0x00030003u << (2 * P))) | 0x64006400u);
  } else if constexpr (Bits == 3) {
    const std::uint32_t w = T % 2 ? c.w[T / 2] >> 8 : c.w[T / 2];
    constexpr int rot = (T & 1) + 8 * (T >> 1);
    const std::uint32_t hi = rot ? __funnelshift_r(c.w[2], c.w[2], rot) : c.w[2];
    return magic_to_code<2 * P>((w & (0x00030003u << (2 * P))) | (hi & (0x00040004u << (2 * P))) | 0x64006400u);
  } else {
    return magic_to_code<0>(__byte_perm(c.w[2 * T + P / 2], 0x64646464u, P % 2 ? 0x4342u : 0x4140u));
  }
}

__device__ __forceinline__ void mma_16816(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The 16 consecutive activations [cb, cb + 16) of batch row n, as 8 words of half pairs.
__device__ __forceinline__ void load_x(std::uint32_t (&xw)[8], const gemm_params& P, int n, int cb) {
  const __half* src = P.x + static_cast<std::size_t>(n) * P.ldx + cb;
  if (P.vec_x && cb + 16 <= P.qcols) {
    const uint4 a = __ldg(reinterpret_cast<const uint4*>(src));
    const uint4 b = __ldg(reinterpret_cast<const uint4*>(src) + 1);
    xw[0] = a.x, xw[1] = a.y, xw[2] = a.z, xw[3] = a.w, xw[4] = b.x, xw[5] = b.y, xw[6] = b.z, xw[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const __half lo = cb + 2 * i < P.qcols ? src[2 * i] : __float2half(0.0f);
      const __half hi = cb + 2 * i + 1 < P.qcols ? src[2 * i + 1] : __float2half(0.0f);
      xw[i] = as_u32(__halves2half2(lo, hi));
    }
  }
}

// The non-code operands of one tile for one lane: activations and the wide modes' stats.
// Fetched one tile ahead (they come from L1/L2), so their latency hides behind the mma.
template <int NT, stats_mode Mode>
struct tile_operands {
  std::uint32_t xw[NT][8];
  __half2 s_row[2], b_row[2];        // oc_wide: rows g, g + 8
  std::uint32_t s_col[8], b_col[8];  // ic_wide: columns cb .. cb + 15
};

template <int NT, stats_mode Mode>
__device__ __forceinline__ void fetch_operands(tile_operands<NT, Mode>& o, const gemm_params& P, int kt, int row0, int g,
                                               int qi) {
  const int cb = kt * tile_cols + 16 * qi;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) load_x(o.xw[nt], P, min(nt * 8 + g, P.m - 1), cb);
  if constexpr (Mode == stats_mode::oc_wide) {
    const int grp = min(cb >> P.group_shift, P.stat_cols - 1);
    const __half2* band = P.oc_stats + (static_cast<std::size_t>(row0 / tile_rows) * P.stat_cols + grp) * tile_rows;
    const __half2 a = __ldg(band + g);
    const __half2 b = __ldg(band + g + 8);
    o.s_row[0] = __low2half2(a), o.b_row[0] = __high2half2(a);
    o.s_row[1] = __low2half2(b), o.b_row[1] = __high2half2(b);
  } else if constexpr (Mode == stats_mode::ic_wide) {
    const std::size_t off = static_cast<std::size_t>((row0 - g) >> P.group_shift) * P.ld_ic + cb;
    const uint4* ps = reinterpret_cast<const uint4*>(P.ic_scale + off);
    const uint4* pb = reinterpret_cast<const uint4*>(P.ic_bias + off);
    const uint4 s0 = __ldg(ps), s1 = __ldg(ps + 1), b0 = __ldg(pb), b1 = __ldg(pb + 1);
    o.s_col[0] = s0.x, o.s_col[1] = s0.y, o.s_col[2] = s0.z, o.s_col[3] = s0.w;
    o.s_col[4] = s1.x, o.s_col[5] = s1.y, o.s_col[6] = s1.z, o.s_col[7] = s1.w;
    o.b_col[0] = b0.x, o.b_col[1] = b0.y, o.b_col[2] = b0.z, o.b_col[3] = b0.w;
    o.b_col[4] = b1.x, o.b_col[5] = b1.y, o.b_col[6] = b1.z, o.b_col[7] = b1.w;
  }
}

// One weight pair (t, p) as fp16: code - 1024 is exact, then one fma with the group's (s, b).
template <int Bits, int NT, stats_mode Mode, int T, int Pp>
__device__ __forceinline__ std::uint32_t weight_pair(const lane_codes<Bits>& c, const tile_operands<NT, Mode>& o,
                                                     const gemm_params& P, int cb, int row0) {
  const __half2 q = pair_code<Bits, T, Pp>(c);
  __half2 s, b;
  if constexpr (Mode == stats_mode::oc_wide) {
    s = o.s_row[Pp % 2], b = o.b_row[Pp % 2];
  } else if constexpr (Mode == stats_mode::ic_wide) {
    s = as_half2(o.s_col[2 * T + Pp / 2]), b = as_half2(o.b_col[2 * T + Pp / 2]);
  } else if constexpr (Mode == stats_mode::oc_narrow) {
    const int col = cb + 4 * T + 2 * (Pp / 2);
    const int grp = min(col >> P.group_shift, P.stat_cols - 1);
    const __half2 sb = __ldg(P.oc_stats + (static_cast<std::size_t>(row0 / tile_rows) * P.stat_cols + grp) * tile_rows +
                             row0 % tile_rows + 8 * (Pp % 2));
    s = __low2half2(sb), b = __high2half2(sb);
  } else {
    const int col = cb + 4 * T + 2 * (Pp / 2);
    const std::size_t off = static_cast<std::size_t>((row0 + 8 * (Pp % 2)) >> P.group_shift) * P.ld_ic + col;
    s = __ldg(reinterpret_cast<const __half2*>(P.ic_scale + off));
    b = __ldg(reinterpret_cast<const __half2*>(P.ic_bias + off));
  }
  return as_u32(__hfma2(q, s, b));
}

template <int Bits, int NT, stats_mode Mode, int T>
__device__ __forceinline__ void mma_step(float (&acc)[NT][4], const lane_codes<Bits>& c, const tile_operands<NT, Mode>& o,
                                         const gemm_params& P, int cb, int row0) {
  const std::uint32_t a[4] = {weight_pair<Bits, NT, Mode, T, 0>(c, o, P, cb, row0),
                              weight_pair<Bits, NT, Mode, T, 1>(c, o, P, cb, row0),
                              weight_pair<Bits, NT, Mode, T, 2>(c, o, P, cb, row0),
                              weight_pair<Bits, NT, Mode, T, 3>(c, o, P, cb, row0)};
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) mma_16816(acc[nt], a, o.xw[nt][2 * T], o.xw[nt][2 * T + 1]);
}

// One 16 x 64 tile: dequantize the lane's 32 weights and run 4 k-steps x NT mma.
template <int Bits, int NT, stats_mode Mode>
__device__ __forceinline__ void tile_mma(float (&acc)[NT][4], const lane_codes<Bits>& c, const tile_operands<NT, Mode>& o,
                                         const gemm_params& P, int kt, int row0, int qi) {
  const int cb = kt * tile_cols + 16 * qi;
  mma_step<Bits, NT, Mode, 0>(acc, c, o, P, cb, row0);
  mma_step<Bits, NT, Mode, 1>(acc, c, o, P, cb, row0);
  mma_step<Bits, NT, Mode, 2>(acc, c, o, P, cb, row0);
  mma_step<Bits, NT, Mode, 3>(acc, c, o, P, cb, row0);
}

// The activations an outlier at column col meets in this lane's accumulators:
// out[nt][h] = x[nt * 8 + 2 qi + h][col]. At m > 8 they come from the transposed copy xT
// ([cols][16], one 32-byte sector per column, two 4-byte loads per lane) instead of one
// 2-byte gather per batch row from rows `cols` apart (32 sectors per warp-wide load: the
// cause of the slow SpQR/OWQ outliers at m = 16).
template <int NT>
__device__ __forceinline__ void outlier_activations(float (&out)[NT][2], const gemm_params& P, int col, int qi) {
  if (P.xT != nullptr) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const __half2 v = *reinterpret_cast<const __half2*>(P.xT + static_cast<std::size_t>(col) * max_batch + nt * 8 + 2 * qi);
      out[nt][0] = __low2float(v), out[nt][1] = __high2float(v);
    }
  } else {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        out[nt][h] = __half2float(P.x_full[static_cast<std::size_t>(min(nt * 8 + 2 * qi + h, P.m - 1)) * P.ldx_full + col]);
  }
}

// acc[nt][2 rr + h] belongs to row row0 + 8 rr and batch row nt * 8 + 2 qi + h.
// m <= 8: one gather per outlier and batch row, one entry at a time (this loop's few
// registers keep the main loop at five blocks per SM).
template <int NT>
__device__ __forceinline__ void add_outliers_gather(float (&acc)[NT][4], const gemm_params& P, int row0, int qi, int warp) {
  if (P.nweak > 0) {
    for (int j = warp; j < P.nweak; j += warps) {
      const int col = P.weak_cols[j];
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        const int row = row0 + 8 * rr;
        if (row >= P.rows) continue;
        const float v = __half2float(P.weak_vals[static_cast<std::size_t>(row) * P.nweak + j]);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int n = min(nt * 8 + 2 * qi + h, P.m - 1);
            acc[nt][2 * rr + h] += v * __half2float(P.x_full[static_cast<std::size_t>(n) * P.ldx_full + col]);
          }
      }
    }
  }
  if (P.row_ptr != nullptr) {
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int row = row0 + 8 * rr;
      if (row >= P.rows) continue;
      const std::uint32_t end = P.row_ptr[row + 1];
      for (std::uint32_t e = P.row_ptr[row] + static_cast<std::uint32_t>(warp); e < end; e += warps) {
        const float v = __half2float(P.sp_val[e]);
        const int col = P.sp_col[e];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int n = min(nt * 8 + 2 * qi + h, P.m - 1);
            acc[nt][2 * rr + h] += v * __half2float(P.x_full[static_cast<std::size_t>(n) * P.ldx_full + col]);
          }
      }
    }
  }
}

// m > 8: activations from the transposed copy, four sparse entries per step.
template <int NT>
__device__ __forceinline__ void add_outliers_transposed(float (&acc)[NT][4], const gemm_params& P, int row0, int qi, int warp) {
  if (P.nweak > 0) {
    for (int j = warp; j < P.nweak; j += warps) {
      float xv[NT][2];
      outlier_activations<NT>(xv, P, P.weak_cols[j], qi);
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        const int row = row0 + 8 * rr;
        if (row >= P.rows) continue;
        const float v = __half2float(P.weak_vals[static_cast<std::size_t>(row) * P.nweak + j]);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int h = 0; h < 2; ++h) acc[nt][2 * rr + h] += v * xv[nt][h];
      }
    }
  }
  if (P.row_ptr != nullptr) {
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int row = row0 + 8 * rr;
      if (row >= P.rows) continue;
      const std::uint32_t end = P.row_ptr[row + 1];
      // Four entries per step with every load issued before the first add, so the gathers
      // overlap instead of one round trip per entry. Adds stay in entry order (deterministic).
      constexpr int E = 4;
      for (std::uint32_t e0 = P.row_ptr[row] + static_cast<std::uint32_t>(warp); e0 < end; e0 += E * warps) {
        float v[E], xv[E][NT][2];
#pragma unroll
        for (int k = 0; k < E; ++k) {
          const std::uint32_t e = e0 + static_cast<std::uint32_t>(k * warps);
          const bool ok = e < end;
          v[k] = ok ? __half2float(P.sp_val[e]) : 0.0f;
          outlier_activations<NT>(xv[k], P, ok ? P.sp_col[e] : 0, qi);
        }
#pragma unroll
        for (int k = 0; k < E; ++k)
          if (e0 + static_cast<std::uint32_t>(k * warps) < end)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
              for (int h = 0; h < 2; ++h) acc[nt][2 * rr + h] += v[k] * xv[k][nt][h];
      }
    }
  }
}

template <int NT>
__device__ __forceinline__ void add_outliers(float (&acc)[NT][4], const gemm_params& P, int row0, int qi, int warp) {
  if constexpr (NT == 1) add_outliers_gather<NT>(acc, P, row0, qi, warp);
  else add_outliers_transposed<NT>(acc, P, row0, qi, warp);
}

// The codes of tiles kt0, kt0 + 8, ..., kt0 + 8 (U - 1) of a row band (those that exist).
template <int Bits, int U>
__device__ __forceinline__ void load_group(lane_codes<Bits> (&c)[U], const std::uint8_t* band, int kt0, int nkt, int lane) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int kt = kt0 + u * warps;
    if (kt < nkt) load_codes<Bits>(c[u], band + static_cast<std::size_t>(kt) * tile_bytes(Bits), lane);
  }
}

// Decode and multiply those tiles, in increasing k (the order every main loop keeps, so all
// paths give bitwise the same sums).
template <int Bits, int NT, stats_mode Mode, int U>
__device__ __forceinline__ void mma_group(float (&acc)[NT][4], const lane_codes<Bits> (&c)[U], const gemm_params& P, int kt0,
                                          int row0, int g, int qi) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int kt = kt0 + u * warps;
    if (kt < P.nkt) {
      tile_operands<NT, Mode> ops;
      fetch_operands<NT, Mode>(ops, P, kt, row0, g, qi);
      tile_mma<Bits, NT, Mode>(acc, c[u], ops, P, kt, row0, qi);
    }
  }
}

template <int Bits, int NT, stats_mode Mode>
__global__ void __launch_bounds__(warps * 32, NT == 1 ? 0 : 4) gemm_kernel(const gemm_params P) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int g = lane >> 2, qi = lane & 3;
  const int rt = static_cast<int>(blockIdx.x);
  const int row0 = rt * tile_rows + g;
  constexpr int tb = tile_bytes(Bits);
  const std::uint8_t* band = P.codes + static_cast<std::size_t>(rt) * P.nkt * tb;

  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;

  constexpr int U = unroll<Bits, NT, Mode>;
  constexpr int step = warps * U;
  if constexpr (double_buffered<Bits, NT>) {
    // The codes of the next U tiles are in flight while the current U tiles are decoded.
    lane_codes<Bits> a[U], b[U];
    load_group<Bits, U>(a, band, warp, P.nkt, lane);
    for (int kt0 = warp; kt0 < P.nkt; kt0 += 2 * step) {
      load_group<Bits, U>(b, band, kt0 + step, P.nkt, lane);
      mma_group<Bits, NT, Mode, U>(acc, a, P, kt0, row0, g, qi);
      load_group<Bits, U>(a, band, kt0 + 2 * step, P.nkt, lane);
      mma_group<Bits, NT, Mode, U>(acc, b, P, kt0 + step, row0, g, qi);
    }
  } else {
    for (int kt0 = warp; kt0 < P.nkt; kt0 += step) {
      lane_codes<Bits> c[U];
      load_group<Bits, U>(c, band, kt0, P.nkt, lane);
      mma_group<Bits, NT, Mode, U>(acc, c, P, kt0, row0, g, qi);
    }
  }
  add_outliers<NT>(acc, P, row0, qi, warp);

  // Fixed-order reduction of the 8 warps' partial sums.
  __shared__ float red[warps][NT * 4][32];
#pragma unroll
  for (int i = 0; i < NT * 4; ++i) red[warp][i][lane] = acc[i / 4][i % 4];
  __syncthreads();
  for (int i = warp; i < NT * 4; i += warps) {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < warps; ++w) sum += red[w][i][lane];
    const int row = row0 + 8 * ((i % 4) / 2);
    const int n = (i / 4) * 8 + 2 * qi + (i % 2);
    if (row < P.rows && n < P.m) P.y[static_cast<std::size_t>(n) * P.ldy + row] = __float2half_rn(sum);
  }
}

// ---- sm_90: the bulk-copy pipeline -------------------------------------------------------
//
// Why it was built: the register pipeline above keeps only the few tiles a warp holds in
// registers in flight and waits a full DRAM latency per batch of tiles. Hopper's bulk copy engine (cp.async.bulk, the 1-D form of
// TMA) moves a whole stage of consecutive tiles into shared memory with one instruction and
// signals an mbarrier, so one producer thread keeps `stages` x 8 KiB per block in flight
// while the eight consumer warps decode (the warp-specialised producer/consumer pipeline of
// CUTLASS' Hopper GEMMs and FlashAttention-3). The grid is persistent: each block streams
// row band after row band through the same ring, so the pipeline never drains between bands
// and a short last wave still keeps the copies flowing. Each band's eight partial sums are
// added in the same fixed order as above: the result does not depend on the grid.
// Measured on the H100 it is 20-30 % SLOWER than the register pipeline at m = 1 (4 bits,
// 8192x28672: 60.4 vs 49.4 us): the copies keep up, but the consumer warps stall on the
// shared-memory and L1 loads of each short stage (ncu: ~44 % of stall cycles on L1TEX, DRAM
// under 50 %). More tiles per warp per stage and a second consumer group are the next
// steps; until then gemm_path::automatic takes the register pipeline.

template <int Bits>
struct bulk_shape {
  static constexpr int per_warp = Bits == 8 ? 1 : Bits == 2 ? 4 : 2;  // tiles of a warp per stage
  static constexpr int stage_tiles = warps * per_warp;                  // consecutive tiles
  static constexpr int stage_bytes = stage_tiles * tile_bytes(Bits);    // 8 KiB (3 bits: 6 KiB)
  static constexpr int stages = Bits == 3 ? 5 : 4;                      // ~32 KiB in flight per block
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ std::uint32_t smem_addr(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(std::uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(std::uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(std::uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}
// Waits until the phase of the given parity has completed.
__device__ __forceinline__ void mbar_wait(std::uint64_t* bar, unsigned parity) {
  std::uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
}
// One bulk copy global -> shared, completing `bytes` on the mbarrier; evict-first in L2
// (every code byte is read once per call).
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, std::uint64_t* bar, std::uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;\n" ::"r"(
          smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar)), "l"(policy)
      : "memory");
}
__device__ __forceinline__ std::uint64_t evict_first_policy() {
  std::uint64_t p;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(p));
  return p;
}
// Barrier of the consumer warps only (the producer warp runs ahead on its own).
__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, %0;\n" ::"r"(warps * 32) : "memory"); }
#endif

// A lane's codes of one tile, from the tile's copy in shared memory.
template <int Bits>
__device__ __forceinline__ void load_codes_shared(lane_codes<Bits>& c, const std::uint8_t* tile, int lane) {
  if constexpr (Bits == 4) {
    const uint4 v = reinterpret_cast<const uint4*>(tile)[lane];
    c.w[0] = v.x, c.w[1] = v.y, c.w[2] = v.z, c.w[3] = v.w;
  } else if constexpr (Bits == 8) {
    const uint4 a = reinterpret_cast<const uint4*>(tile)[2 * lane];
    const uint4 b = reinterpret_cast<const uint4*>(tile)[2 * lane + 1];
    c.w[0] = a.x, c.w[1] = a.y, c.w[2] = a.z, c.w[3] = a.w;
    c.w[4] = b.x, c.w[5] = b.y, c.w[6] = b.z, c.w[7] = b.w;
  } else {
    const uint2 v = reinterpret_cast<const uint2*>(tile)[lane];
    c.w[0] = v.x, c.w[1] = v.y;
    if constexpr (Bits == 3) c.w[2] = reinterpret_cast<const std::uint32_t*>(tile + 256)[lane];
  }
}

template <int Bits, int NT, stats_mode Mode>
__global__ void __launch_bounds__((warps + 1) * 32, 3) gemm_kernel_bulk(const gemm_params P) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using S = bulk_shape<Bits>;
  constexpr int tb = tile_bytes(Bits);
  __shared__ alignas(128) std::uint8_t ring[S::stages][S::stage_bytes];
  __shared__ alignas(8) std::uint64_t full[S::stages], empty[S::stages];
  __shared__ float red[warps][NT * 4][32];
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int bands = (P.rows + tile_rows - 1) / tile_rows;
  const int nst = (P.nkt + S::stage_tiles - 1) / S::stage_tiles;  // stages per band
  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < S::stages; ++s) mbar_init(&full[s], 1), mbar_init(&empty[s], warps);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warp == warps) {  // producer: one thread issues every copy of this block
    if (lane == 0) {
      const std::uint64_t policy = evict_first_policy();
      unsigned it = 0;
      for (int rt = static_cast<int>(blockIdx.x); rt < bands; rt += static_cast<int>(gridDim.x)) {
        const std::uint8_t* band = P.codes + static_cast<std::size_t>(rt) * P.nkt * tb;
        for (int s = 0; s < nst; ++s, ++it) {
          const unsigned slot = it % S::stages;
          if (it >= S::stages) mbar_wait(&empty[slot], (it / S::stages - 1) & 1u);
          const unsigned bytes = static_cast<unsigned>(min(S::stage_tiles, P.nkt - s * S::stage_tiles) * tb);
          mbar_arrive_expect_tx(&full[slot], bytes);
          bulk_copy(ring[slot], band + static_cast<std::size_t>(s) * S::stage_bytes, bytes, &full[slot], policy);
        }
      }
    }
    return;
  }

  const int g = lane >> 2, qi = lane & 3;
  unsigned it = 0;
  for (int rt = static_cast<int>(blockIdx.x); rt < bands; rt += static_cast<int>(gridDim.x)) {
    const int row0 = rt * tile_rows + g;
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
    for (int s = 0; s < nst; ++s, ++it) {
      const unsigned slot = it % S::stages;
      // Warp w takes tiles w, w + 8, ... of the stage (the register kernel's order). Their
      // activations and stats (L1/L2 hits) are fetched before waiting for the codes, so
      // that latency overlaps the copy instead of following it.
      tile_operands<NT, Mode> ops[S::per_warp];
#pragma unroll
      for (int u = 0; u < S::per_warp; ++u) {
        const int kt = s * S::stage_tiles + u * warps + warp;
        if (kt < P.nkt) fetch_operands<NT, Mode>(ops[u], P, kt, row0, g, qi);
      }
      mbar_wait(&full[slot], (it / S::stages) & 1u);
      lane_codes<Bits> c[S::per_warp];
#pragma unroll
      for (int u = 0; u < S::per_warp; ++u) {
        const int j = u * warps + warp;
        if (s * S::stage_tiles + j < P.nkt) load_codes_shared<Bits>(c[u], ring[slot] + j * tb, lane);
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(&empty[slot]);  // the codes are in registers: the slot may refill
#pragma unroll
      for (int u = 0; u < S::per_warp; ++u) {
        const int kt = s * S::stage_tiles + u * warps + warp;
        if (kt < P.nkt) tile_mma<Bits, NT, Mode>(acc, c[u], ops[u], P, kt, row0, qi);
      }
    }
    add_outliers<NT>(acc, P, row0, qi, warp);

#pragma unroll
    for (int i = 0; i < NT * 4; ++i) red[warp][i][lane] = acc[i / 4][i % 4];
    consumer_sync();
    for (int i = warp; i < NT * 4; i += warps) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < warps; ++w) sum += red[w][i][lane];
      const int row = row0 + 8 * ((i % 4) / 2);
      const int n = (i / 4) * 8 + 2 * qi + (i % 2);
      if (row < P.rows && n < P.m) P.y[static_cast<std::size_t>(n) * P.ldy + row] = __float2half_rn(sum);
    }
    consumer_sync();  // red is rewritten by the next band
  }
#else
  (void)P;
  __trap();  // never launched: the host takes this path only for sm_90 machine code
#endif
}

// OWQ: the low-bit part's activations, compacted (and zero-padded to ld columns).
template <class H>
__global__ void gather_columns_kernel(const H* __restrict__ x, int ldx_full, const std::int32_t* __restrict__ map,
                                      int qcols, int ld, int m, H* __restrict__ out) {
  const std::size_t total = static_cast<std::size_t>(m) * ld;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const int n = static_cast<int>(i / static_cast<std::size_t>(ld));
    const int qc = static_cast<int>(i % static_cast<std::size_t>(ld));
    out[i] = qc < qcols ? x[static_cast<std::size_t>(n) * ldx_full + map[qc]] : H(0.0f);
  }
}

// Outliers at m > 8: the activations transposed to [cols][16] (batch rows >= m zero).
template <class H>
__global__ void transpose_activations_kernel(const H* __restrict__ x, int cols, int m, H* __restrict__ xT) {
  const std::size_t total = static_cast<std::size_t>(cols) * max_batch;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i / max_batch), n = static_cast<int>(i % max_batch);
    xT[i] = n < m ? x[static_cast<std::size_t>(n) * cols + c] : H(0.0f);
  }
}

// Weak columns into a dequantized matrix; sparse outliers added (one thread per row, so
// repeated entries of a row would still add in order).
template <class H>
__global__ void scatter_weak_kernel(const std::int32_t* cols, const H* vals, int k, int rows, H* out, int ld_out) {
  const std::size_t total = static_cast<std::size_t>(rows) * k;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t r = i / static_cast<std::size_t>(k);
    out[r * ld_out + cols[i % static_cast<std::size_t>(k)]] = vals[i];
  }
}
template <class H>
__global__ void add_sparse_kernel(const std::uint32_t* row_ptr, const std::uint16_t* col, const H* val, int rows, H* out,
                                  int ld_out) {
  for (int r = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); r < rows; r += static_cast<int>(gridDim.x * blockDim.x))
    for (std::uint32_t e = row_ptr[r]; e < row_ptr[r + 1]; ++e) {
      H& o = out[static_cast<std::size_t>(r) * ld_out + col[e]];
      o = __float2half_rn(__half2float(o) + __half2float(val[e]));
    }
}

template <int Bits>
__global__ void dequantize_kernel(const std::uint8_t* codes, const __half2* oc_stats, const __half* ic_scale,
                                  const __half* ic_bias, const std::int32_t* map, int is_oc, int rows, int qcols,
                                  int nkt, int group, int stat_cols, int ld_ic, __half* out, int ld_out) {
  const std::size_t total = static_cast<std::size_t>(rows) * qcols;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const int r = static_cast<int>(i / static_cast<std::size_t>(qcols));
    const int qc = static_cast<int>(i % static_cast<std::size_t>(qcols));
    const std::uint8_t* tile = codes + (static_cast<std::size_t>(r / tile_rows) * nkt + qc / tile_cols) * tile_bytes(Bits);
    const unsigned code = get_code(tile, Bits, r % tile_rows, qc % tile_cols);
    __half s, b;
    if (is_oc) {
      const __half2 sb = oc_stats[(static_cast<std::size_t>(r / tile_rows) * stat_cols + min(qc / group, stat_cols - 1)) *
                                      tile_rows + r % tile_rows];
      s = __low2half(sb), b = __high2half(sb);
    } else {
      const std::size_t off = static_cast<std::size_t>(r / group) * ld_ic + qc;
      s = ic_scale[off], b = ic_bias[off];
    }
    const int col = map != nullptr ? map[qc] : qc;
    out[static_cast<std::size_t>(r) * ld_out + col] = __hfma(__uint2half_rn(code), s, b);
  }
}


inline int grid_for(std::size_t work, int threads) {
  const std::size_t blocks = (work + threads - 1) / threads;
  return static_cast<int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

// Which kernels the current device runs as sm_90 machine code (the bulk path needs it; PTX
// compiled for compute_80 runs the register path), and how many bulk blocks fit per SM.
// Cached per device and template instance (the answers never change for a device).
struct bulk_info {
  bool usable = false;
  int blocks_per_sm = 0;
};

template <int Bits, int NT, stats_mode Mode>
bulk_info query_bulk(int dev) {
  constexpr int max_devices = 64;
  static std::atomic<int> cache[max_devices] = {};  // 0 unknown, else 1 + 2 * blocks_per_sm + usable
  if (dev >= 0 && dev < max_devices) {
    const int v = cache[dev].load(std::memory_order_relaxed);
    if (v != 0) return {((v - 1) & 1) != 0, (v - 1) >> 1};
  }
  bulk_info info;
  cudaFuncAttributes a{};
  if (cudaFuncGetAttributes(&a, gemm_kernel_bulk<Bits, NT, Mode>) == cudaSuccess && a.ptxVersion >= 90) {
    LOWBIT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&info.blocks_per_sm, gemm_kernel_bulk<Bits, NT, Mode>,
                                                                    (warps + 1) * 32, 0));
    info.usable = info.blocks_per_sm > 0;
  } else {
    (void)cudaGetLastError();
  }
  if (dev >= 0 && dev < max_devices) cache[dev].store(1 + 2 * info.blocks_per_sm + (info.usable ? 1 : 0));
  return info;
}

template <int Bits, int NT, stats_mode Mode>
void launch_mode(const gemm_params& P, int bands, const gemm_config& cfg, cudaStream_t stream) {
  if (cfg.path == gemm_path::bulk_copy) {
    int dev = 0, sms = 0;
    LOWBIT_CUDA_CHECK(cudaGetDevice(&dev));
    const bulk_info info = query_bulk<Bits, NT, Mode>(dev);
    if (info.usable) {
      LOWBIT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
      int blocks = std::min(bands, sms * info.blocks_per_sm);
      if (cfg.max_blocks > 0) blocks = std::min(blocks, cfg.max_blocks);
      gemm_kernel_bulk<Bits, NT, Mode><<<blocks, (warps + 1) * 32, 0, stream>>>(P);
      check_launch("lowbit::kernel::cuda::gemm_kernel_bulk");
      return;
    }
    lowbit::detail::fail("cuda::gemm: gemm_path::bulk_copy needs sm_90 machine code (an H100/H200 and a build for sm_90a)");
  }
  gemm_kernel<Bits, NT, Mode><<<bands, warps * 32, 0, stream>>>(P);
  check_launch("lowbit::kernel::cuda::gemm_kernel");
}

template <int Bits, int NT>
void launch_gemm(stats_mode mode, const gemm_params& P, int bands, const gemm_config& cfg, cudaStream_t stream) {
  switch (mode) {
    case stats_mode::oc_wide: launch_mode<Bits, NT, stats_mode::oc_wide>(P, bands, cfg, stream); break;
    case stats_mode::ic_wide: launch_mode<Bits, NT, stats_mode::ic_wide>(P, bands, cfg, stream); break;
    case stats_mode::oc_narrow: launch_mode<Bits, NT, stats_mode::oc_narrow>(P, bands, cfg, stream); break;
    case stats_mode::ic_narrow: launch_mode<Bits, NT, stats_mode::ic_narrow>(P, bands, cfg, stream); break;
  }
}

template <int Bits>
void launch_gemm_bits(int nt, stats_mode mode, const gemm_params& P, int bands, const gemm_config& cfg, cudaStream_t stream) {
  if (nt == 1) launch_gemm<Bits, 1>(mode, P, bands, cfg, stream);
  else launch_gemm<Bits, 2>(mode, P, bands, cfg, stream);
}

}  // namespace detail_kernels

// Y = X · Ŵᵀ: X is [m x cols], Y is [m x rows], both fp16 row-major in device memory.
// Asynchronous on `stream` (launch errors are reported at once, execution errors at the
// caller's next checked synchronisation). OWQ matrices use a stream-ordered scratch buffer.
inline void gemm(const device_packed_matrix& W, const __half* X, __half* Y, index m, cudaStream_t stream = nullptr,
                 const gemm_config& cfg = {}) {
  using namespace detail_kernels;
  lowbit::detail::require(m >= 1, "cuda::gemm: batch size m = ", m, " must be >= 1");
  lowbit::detail::require(W.bits() != 0, "cuda::gemm: the device matrix is empty (use upload())");
  lowbit::detail::require(X != nullptr && Y != nullptr, "cuda::gemm: X and Y must be device pointers, got null");
  const bool owq = W.weak_count() > 0;
  const index ld_gather = W.padded_cols();
  __half* scratch = nullptr;
  if (owq)
    LOWBIT_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&scratch),
                                      static_cast<std::size_t>(std::min<index>(m, max_batch) * ld_gather) * sizeof(__half), stream));
  const bool transpose = m > 8 && (owq || W.sparse_count() > 0);
  __half* xT = nullptr;
  if (transpose)
    LOWBIT_CUDA_CHECK(
        cudaMallocAsync(reinterpret_cast<void**>(&xT), static_cast<std::size_t>(W.cols() * max_batch) * sizeof(__half), stream));
  for (index m0 = 0; m0 < m; m0 += max_batch) {
    const int mc = static_cast<int>(std::min<index>(max_batch, m - m0));
    gemm_params P{};
    P.codes = W.codes().data();
    P.oc_stats = W.oc_stats().data();
    P.ic_scale = W.ic_scale().data();
    P.ic_bias = W.ic_bias().data();
    P.x_full = X + m0 * W.cols();
    P.ldx_full = static_cast<int>(W.cols());
    P.xT = nullptr;
    if (transpose && mc > 8) {
      transpose_activations_kernel<__half><<<grid_for(static_cast<std::size_t>(W.cols() * max_batch), 256), 256, 0, stream>>>(
          P.x_full, P.ldx_full, mc, xT);
      check_launch("lowbit::kernel::cuda::transpose_activations_kernel");
      P.xT = xT;
    }
    if (owq) {
      gather_columns_kernel<__half><<<grid_for(static_cast<std::size_t>(mc * ld_gather), 256), 256, 0, stream>>>(
          P.x_full, P.ldx_full, W.column_map().data(), static_cast<int>(W.quantized_cols()), static_cast<int>(ld_gather), mc,
          scratch);
      check_launch("lowbit::kernel::cuda::gather_columns_kernel");
      P.x = scratch;
      P.ldx = static_cast<int>(ld_gather);
    } else {
      P.x = P.x_full;
      P.ldx = P.ldx_full;
    }
    P.vec_x = (P.ldx % 8 == 0 && reinterpret_cast<std::uintptr_t>(P.x) % 16 == 0) ? 1 : 0;
    P.y = Y + m0 * W.rows();
    P.ldy = static_cast<int>(W.rows());
    P.m = mc;
    P.rows = static_cast<int>(W.rows());
    P.qcols = static_cast<int>(W.quantized_cols());
    P.nkt = static_cast<int>(W.k_tiles());
    {
      // Power-of-two groups index by shift; a per-channel group (any size) covers the whole
      // axis, so every real row/column maps to group 0 (padding rows are never written back).
      const index gsz = W.group_size();
      const index extent = W.group_axis() == axis::oc ? W.quantized_cols() : W.rows();
      int shift = 0;
      while ((index{1} << shift) < gsz) ++shift;
      P.group_shift = (gsz >= extent || (index{1} << shift) != gsz) ? 30 : shift;
    }
    P.stat_cols = static_cast<int>(W.stat_cols());
    P.ld_ic = static_cast<int>(W.padded_cols());
    P.nweak = static_cast<int>(W.weak_count());
    P.weak_cols = W.weak_columns().data();
    P.weak_vals = W.weak_values().data();
    P.row_ptr = W.sparse_count() > 0 ? W.sparse_row_ptr().data() : nullptr;
    P.sp_col = W.sparse_columns().data();
    P.sp_val = W.sparse_values().data();
    const int nt = mc <= 8 ? 1 : 2;
    const int bands = static_cast<int>(W.row_tiles());
    switch (W.bits()) {
      case 2: launch_gemm_bits<2>(nt, W.mode(), P, bands, cfg, stream); break;
      case 3: launch_gemm_bits<3>(nt, W.mode(), P, bands, cfg, stream); break;
      case 4: launch_gemm_bits<4>(nt, W.mode(), P, bands, cfg, stream); break;
      default: launch_gemm_bits<8>(nt, W.mode(), P, bands, cfg, stream); break;
    }
  }
  if (owq) LOWBIT_CUDA_CHECK(cudaFreeAsync(scratch, stream));
  if (transpose) LOWBIT_CUDA_CHECK(cudaFreeAsync(xT, stream));
}

// y = Ŵ x (m = 1).
inline void gemv(const device_packed_matrix& W, const __half* x, __half* y, cudaStream_t stream = nullptr) {
  gemm(W, x, y, 1, stream);
}

// The fp16 matrix [rows x cols] (row-major) the device form stands for: the dense fallback
// for large batches (dequantize once, then a cuBLAS GEMM), and the layout's test oracle.
inline void dequantize(const device_packed_matrix& W, __half* out, cudaStream_t stream = nullptr) {
  using namespace detail_kernels;
  lowbit::detail::require(W.bits() != 0, "cuda::dequantize: the device matrix is empty (use upload())");
  const std::size_t n = static_cast<std::size_t>(W.rows() * W.quantized_cols());
  const int blocks = grid_for(n, 256);
  const int is_oc = W.group_axis() == axis::oc ? 1 : 0;
  const int rows = static_cast<int>(W.rows()), qcols = static_cast<int>(W.quantized_cols());
  const int ld = static_cast<int>(W.cols());
  const std::int32_t* map = W.weak_count() > 0 ? W.column_map().data() : nullptr;
#define LOWBIT_DQ(B)                                                                                                    \
  dequantize_kernel<B><<<blocks, 256, 0, stream>>>(W.codes().data(), W.oc_stats().data(), W.ic_scale().data(),          \
                                                   W.ic_bias().data(), map, is_oc, rows, qcols,                        \
                                                   static_cast<int>(W.k_tiles()), static_cast<int>(W.group_size()),    \
                                                   static_cast<int>(W.stat_cols()), static_cast<int>(W.padded_cols()), \
                                                   out, ld)
  switch (W.bits()) {
    case 2: LOWBIT_DQ(2); break;
    case 3: LOWBIT_DQ(3); break;
    case 4: LOWBIT_DQ(4); break;
    default: LOWBIT_DQ(8); break;
  }
#undef LOWBIT_DQ
  check_launch("lowbit::kernel::cuda::dequantize_kernel");
  if (W.weak_count() > 0) {
    scatter_weak_kernel<__half><<<grid_for(static_cast<std::size_t>(rows * W.weak_count()), 256), 256, 0, stream>>>(
        W.weak_columns().data(), W.weak_values().data(), static_cast<int>(W.weak_count()), rows, out, ld);
    check_launch("lowbit::kernel::cuda::scatter_weak_kernel");
  }
  if (W.sparse_count() > 0) {
    add_sparse_kernel<__half><<<grid_for(static_cast<std::size_t>(rows), 128), 128, 0, stream>>>(
        W.sparse_row_ptr().data(), W.sparse_columns().data(), W.sparse_values().data(), rows, out, ld);
    check_launch("lowbit::kernel::cuda::add_sparse_kernel");
  }
}

}  // namespace lowbit::kernel::cuda
