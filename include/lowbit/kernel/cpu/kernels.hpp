#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The ISA-specific inner loops behind kernel_table: decode 32-code blocks (format/bitpack.hpp)
// and dot them with fp32 or int8 activations, plus the fp16 dot products of the outlier
// stores. Written once; the ISA is the one this translation unit is compiled for:
//   * `generic`: portable C++ (always compiled);
//   * `native`:  AVX2+FMA+F16C or AVX-512 (F/BW/DQ/VL, + VNNI when enabled), or aarch64
//                NEON (+ the dot-product extension when enabled), the float arithmetic
//                through xsimd's batch<float, xsimd::default_arch> (one driver for both
//                architectures), the byte unpacking, fp16 conversions and int8 dot
//                products through intrinsics (xsimd 8.1 has no byte shuffles, vpdpbusd
//                or sdot).
//
// ODR safety (Highway's lesson): every function here lives in a namespace named after the
// ISA the TU is compiled for (LOWBIT_KERNEL_NS), and the only inline functions of other
// headers it calls are format/bit_layout.hpp's, whose names carry the TU's ISA too (the ABI
// tag of core/abi.hpp), so the linker can never hand an AVX-512 copy of a function to code
// that runs on an AVX2 machine when per-ISA TUs are linked together (lowbit_kernels).
#include <cstdint>
#include <cstring>

#include "lowbit/format/bit_layout.hpp"
#include "lowbit/kernel/cpu/kernel_table.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define LOWBIT_KERNEL_X86 1
#include <immintrin.h>
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define LOWBIT_KERNEL_AVX512 1
#if defined(__AVX512VNNI__)
#define LOWBIT_KERNEL_VNNI 1
#define LOWBIT_KERNEL_NS built_for_avx512_vnni
#else
#define LOWBIT_KERNEL_NS built_for_avx512
#endif
#else
#define LOWBIT_KERNEL_NS built_for_avx2
#endif
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define LOWBIT_KERNEL_NEON 1
#include <arm_neon.h>
#include <xsimd/xsimd.hpp>
#if defined(__ARM_FEATURE_DOTPROD)
#define LOWBIT_KERNEL_DOTPROD 1
#define LOWBIT_KERNEL_NS built_for_neon_dotprod
#else
#define LOWBIT_KERNEL_NS built_for_neon
#endif
#else
#define LOWBIT_KERNEL_NS built_for_generic
#endif

namespace lowbit::inline LOWBIT_ABI::kernel::cpu::LOWBIT_KERNEL_NS {

// ============================================================================================
// generic: plain C++, the portable fallback (and the second opinion the SIMD paths are
// tested against besides the float64 reference).
// ============================================================================================
namespace generic {

// One block of 32 codes → their values 0..2^b-1, in order: format/bit_layout.hpp's unpack
// itself (the spec; the kernels' callers have checked the width).
inline void decode_block(const std::uint8_t* p, int bits, std::uint8_t* q) {
  visit_bit_width(bits, [&](auto b) { bit_layout<b()>::unpack(p, q); });
}

// IEEE binary16 → float, branch-light (subnormals via an exact float multiply).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline void f32_rows(const f32_rows_args& a) {
  const std::size_t bpb = static_cast<std::size_t>(4 * a.bits);
  std::uint8_t q[32];
  for (index r = 0; r < a.rows; ++r) {
    const std::uint8_t* row = a.codes + static_cast<std::size_t>(r) * a.row_bytes;
    for (index i = 0; i < a.m; ++i) {
      const float* x = a.x + i * a.ldx;
      float acc = 0.0f;
      for (index b = 0; b < a.blocks; ++b) {
        decode_block(row + static_cast<std::size_t>(b) * bpb, a.bits, q);
        for (int j = 0; j < 32; ++j) {
          float w = static_cast<float>(q[j]);
          if (a.s) {
            const index g = (2 * b + j / segment_codes) >> a.seg_shift;
            w = a.c ? a.s[r * a.ld_stats + g] * w + a.c[r * a.ld_stats + g] : a.s[r * a.ld_stats + g] * w;
          }
          acc += w * x[32 * b + j];
        }
      }
      a.y[i * a.ldy + r] = acc;
    }
  }
}

inline float dot_f16(const std::uint16_t* w, const float* x, index n) {
  float acc = 0.0f;
  for (index j = 0; j < n; ++j) acc += half_to_float(w[j]) * x[j];
  return acc;
}

inline float sparse_dot(const std::uint16_t* v, const std::uint16_t* cols, index n, const float* x) {
  float acc = 0.0f;
  for (index j = 0; j < n; ++j) acc += half_to_float(v[j]) * x[cols[j]];
  return acc;
}

inline void f16_to_f32(const std::uint16_t* in, float* out, index n) {
  for (index j = 0; j < n; ++j) out[j] = half_to_float(in[j]);
}

inline void i8_rows(const i8_rows_args& a) {
  const std::size_t bpb = static_cast<std::size_t>(4 * a.bits);
  const index bpx = index{1} << a.xblock_shift;  // code blocks per x-block
  std::uint8_t q[32];
  for (index r = 0; r < a.rows; ++r) {
    const std::uint8_t* row = a.codes + static_cast<std::size_t>(r) * a.row_bytes;
    for (index i = 0; i < a.m; ++i) {
      float acc = 0.0f;
      for (index b0 = 0, xb = 0; b0 < a.blocks; b0 += bpx, ++xb) {
        std::int32_t dot = 0;
        for (index b = b0; b < b0 + bpx && b < a.blocks; ++b) {
          decode_block(row + static_cast<std::size_t>(b) * bpb, a.bits, q);
          const std::int8_t* xq = a.xq + i * a.ldxq + 32 * b;
          for (int j = 0; j < 32; ++j) dot += static_cast<std::int32_t>(q[j]) * xq[j];
        }
        float f = a.xscale[i * a.ldxs + xb];
        if (a.s) f *= a.s[r * a.ld_stats + (xb >> a.group_shift)];
        acc += f * static_cast<float>(dot);
      }
      a.y[i * a.ldy + r] = acc;
    }
  }
}

inline const kernel_table& table() {
  static const kernel_table t{isa::generic, &f32_rows, &dot_f16, &sparse_dot, &f16_to_f32, &i8_rows, 0x11Cu};
  return t;
}

}  // namespace generic

#if defined(LOWBIT_KERNEL_X86) || defined(LOWBIT_KERNEL_NEON)
// ============================================================================================
// native: AVX2 (8 float lanes), AVX-512 (16 float lanes) or NEON (4 float lanes)
// ============================================================================================
// GCC 12 reports the deliberately undefined upper lanes inside its own AVX-512 conversion
// intrinsics (_mm512_undefined_*) as (maybe-)uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
namespace native {

using arch = xsimd::default_arch;
using fbatch = xsimd::batch<float, arch>;
inline constexpr int lanes = static_cast<int>(fbatch::size);
inline constexpr int per_block = 32 / lanes;  // float batches per 32-code block

inline constexpr isa id() {
#if defined(LOWBIT_KERNEL_DOTPROD)
  return isa::neon_dotprod;
#elif defined(LOWBIT_KERNEL_NEON)
  return isa::neon;
#elif defined(LOWBIT_KERNEL_VNNI)
  return isa::avx512_vnni;
#elif defined(LOWBIT_KERNEL_AVX512)
  return isa::avx512;
#else
  return isa::avx2;
#endif
}

inline std::uint32_t load_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline std::uint64_t load_u64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

#if defined(LOWBIT_KERNEL_X86)
// 16 bits → 16 bytes, byte j = 4 if bit j is set (the third bit plane of 3-bit codes).
inline __m128i plane2_bytes(std::uint32_t bits16) {
#if defined(LOWBIT_KERNEL_AVX512)
  return _mm_maskz_mov_epi8(static_cast<__mmask16>(bits16), _mm_set1_epi8(4));
#else
  const __m128i t = _mm_shuffle_epi8(_mm_set1_epi16(static_cast<short>(bits16)),
                                     _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m128i sel = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(t, sel), sel), _mm_set1_epi8(4));
#endif
}

// A 32-code block as bytes: lo = codes 0..15, hi = codes 16..31 (bitpack.hpp's layouts are
// chosen so each takes one shift and one mask per 16 codes).
template <int Bits>
inline void block_bytes(const std::uint8_t* p, __m128i& lo, __m128i& hi) {
  if constexpr (Bits == 8) {
    lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
  } else if constexpr (Bits == 4) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i m = _mm_set1_epi8(0x0F);
    lo = _mm_and_si128(v, m);
    hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
  } else {
    const __m128i t = _mm_set1_epi64x(static_cast<long long>(load_u64(p)));
    const __m128i m = _mm_set1_epi8(3);
    lo = _mm_and_si128(_mm_srlv_epi64(t, _mm_set_epi64x(2, 0)), m);
    hi = _mm_and_si128(_mm_srlv_epi64(t, _mm_set_epi64x(6, 4)), m);
    if constexpr (Bits == 3) {
      const std::uint32_t h = load_u32(p + 8);
      lo = _mm_or_si128(lo, plane2_bytes(h & 0xFFFFu));
      hi = _mm_or_si128(hi, plane2_bytes(h >> 16));
    }
  }
}

template <int Bits>
inline void decode_f32(const std::uint8_t* p, fbatch* w) {
  __m128i lo, hi;
  block_bytes<Bits>(p, lo, hi);
#if defined(LOWBIT_KERNEL_AVX512)
  w[0] = fbatch(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)));
  w[1] = fbatch(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)));
#else
  w[0] = fbatch(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)));
  w[1] = fbatch(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))));
  w[2] = fbatch(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)));
  w[3] = fbatch(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))));
#endif
}

#endif  // LOWBIT_KERNEL_X86 (block decode)

#if defined(LOWBIT_KERNEL_NEON)
// 16 bits → 16 bytes, byte j = 4 if bit j is set (the third bit plane of 3-bit codes).
inline uint8x16_t plane2_bytes(std::uint32_t bits16) {
  const uint8x16_t t = vcombine_u8(vdup_n_u8(static_cast<std::uint8_t>(bits16)), vdup_n_u8(static_cast<std::uint8_t>(bits16 >> 8)));
  static constexpr std::uint8_t sel_bytes[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  return vandq_u8(vtstq_u8(t, vld1q_u8(sel_bytes)), vdupq_n_u8(4));
}

// A 32-code block as bytes: lo = codes 0..15, hi = codes 16..31 (bitpack.hpp's layouts).
template <int Bits>
inline void block_bytes(const std::uint8_t* p, uint8x16_t& lo, uint8x16_t& hi) {
  if constexpr (Bits == 8) {
    lo = vld1q_u8(p);
    hi = vld1q_u8(p + 16);
  } else if constexpr (Bits == 4) {
    const uint8x16_t v = vld1q_u8(p);
    lo = vandq_u8(v, vdupq_n_u8(0x0F));
    hi = vshrq_n_u8(v, 4);
  } else {
    // 2-bit planes: code i + 8k is bits 2k..2k+1 of byte i (i < 8).
    const uint8x8_t v = vld1_u8(p), m = vdup_n_u8(3);
    lo = vcombine_u8(vand_u8(v, m), vand_u8(vshr_n_u8(v, 2), m));
    hi = vcombine_u8(vand_u8(vshr_n_u8(v, 4), m), vshr_n_u8(v, 6));
    if constexpr (Bits == 3) {
      const std::uint32_t h = load_u32(p + 8);
      lo = vorrq_u8(lo, plane2_bytes(h & 0xFFFFu));
      hi = vorrq_u8(hi, plane2_bytes(h >> 16));
    }
  }
}

inline void bytes_f32(uint8x16_t v, fbatch* w) {
  const uint16x8_t l = vmovl_u8(vget_low_u8(v)), h = vmovl_high_u8(v);
  w[0] = fbatch(vcvtq_f32_u32(vmovl_u16(vget_low_u16(l))));
  w[1] = fbatch(vcvtq_f32_u32(vmovl_high_u16(l)));
  w[2] = fbatch(vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))));
  w[3] = fbatch(vcvtq_f32_u32(vmovl_high_u16(h)));
}

template <int Bits>
inline void decode_f32(const std::uint8_t* p, fbatch* w) {
  uint8x16_t lo, hi;
  block_bytes<Bits>(p, lo, hi);
  bytes_f32(lo, w);
  bytes_f32(hi, w + 4);
}
#endif  // LOWBIT_KERNEL_NEON

// How a kernel scales codes (f32_rows_args): not at all (per-IC), dequantized in registers
// per 16-code segment (w = s q + c), or per group of whole blocks (s applied to the group's
// partial sums: one FMA per group instead of one per segment).
enum class scaling { none, dequant, grouped };

// M activation vectors against one row. K blocks are unrolled into separate accumulators so
// a single vector (M = 1) still keeps 4-8 FMA chains in flight.
template <int Bits, int M, scaling Mode>
inline void row_f32(const std::uint8_t* row, const f32_rows_args& a, const float* s, const float* c,
                    const float* x, float* out) {
  constexpr int K = M == 1 ? 2 : 1;
  constexpr int NA = K * per_block;
  constexpr std::size_t bpb = 4 * Bits;
  fbatch acc[M][NA];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < NA; ++j) acc[i][j] = fbatch(0.0f);
  auto step = [&](fbatch (&dst)[M][NA], index b, int k) {
    fbatch w[per_block];
    decode_f32<Bits>(row + static_cast<std::size_t>(b) * bpb, w);
    if constexpr (Mode == scaling::dequant) {
      for (int j = 0; j < per_block; ++j) {
        const index g = (2 * b + (j * lanes) / segment_codes) >> a.seg_shift;
        w[j] = xsimd::fma(w[j], fbatch(s[g]), fbatch(c[g]));
      }
    }
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < per_block; ++j)
        dst[i][k * per_block + j] =
            xsimd::fma(w[j], fbatch::load_unaligned(x + i * a.ldx + 32 * b + j * lanes), dst[i][k * per_block + j]);
  };
  auto run = [&](fbatch (&dst)[M][NA], index b0, index b1) {
    index b = b0;
    for (; b + K <= b1; b += K)
      for (int k = 0; k < K; ++k) step(dst, b + k, k);
    for (; b < b1; ++b) step(dst, b, 0);
  };
  if constexpr (Mode == scaling::grouped) {
    const index bpg = index{1} << (a.seg_shift - 1);  // blocks per group (groups of >= 32 codes)
    for (index g0 = 0; g0 < a.blocks; g0 += bpg) {
      fbatch gacc[M][NA];
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < NA; ++j) gacc[i][j] = fbatch(0.0f);
      run(gacc, g0, a.blocks - g0 < bpg ? a.blocks : g0 + bpg);
      const fbatch sg(s[(2 * g0) >> a.seg_shift]);
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < NA; ++j) acc[i][j] = xsimd::fma(gacc[i][j], sg, acc[i][j]);
    }
  } else {
    run(acc, 0, a.blocks);
  }
  for (int i = 0; i < M; ++i) {
    fbatch t = acc[i][0];
    for (int j = 1; j < NA; ++j) t += acc[i][j];
    out[i] = xsimd::hadd(t);
  }
}

// Up to this many activation vectors share one decode of a row.
inline constexpr int m_tile = lanes == 16 ? 4 : 2;

template <int Bits, scaling Mode>
inline void f32_rows_t(const f32_rows_args& a) {
  constexpr bool Scaled = Mode != scaling::none;
  float out[m_tile];
  for (index r = 0; r < a.rows; ++r) {
    const std::uint8_t* row = a.codes + static_cast<std::size_t>(r) * a.row_bytes;
    const float* s = Scaled ? a.s + r * a.ld_stats : nullptr;
    const float* c = Mode == scaling::dequant ? a.c + r * a.ld_stats : nullptr;
    for (index i0 = 0; i0 < a.m; i0 += m_tile) {
      const index mt = a.m - i0 < m_tile ? a.m - i0 : m_tile;
      const float* x = a.x + i0 * a.ldx;
      switch (mt) {
        case 1: row_f32<Bits, 1, Mode>(row, a, s, c, x, out); break;
        case 2: row_f32<Bits, 2, Mode>(row, a, s, c, x, out); break;
#if defined(LOWBIT_KERNEL_AVX512)
        case 3: row_f32<Bits, 3, Mode>(row, a, s, c, x, out); break;
        default: row_f32<Bits, 4, Mode>(row, a, s, c, x, out); break;
#else
        default: break;
#endif
      }
      for (index i = 0; i < mt; ++i) a.y[(i0 + i) * a.ldy + r] = out[i];
    }
  }
}

template <int Bits>
inline void f32_rows_b(const f32_rows_args& a) {
  if (!a.s) f32_rows_t<Bits, scaling::none>(a);
  else if (a.c) f32_rows_t<Bits, scaling::dequant>(a);
  else f32_rows_t<Bits, scaling::grouped>(a);
}

inline void f32_rows(const f32_rows_args& a) {
  switch (a.bits) {
    case 2: f32_rows_b<2>(a); return;
    case 3: f32_rows_b<3>(a); return;
    case 4: f32_rows_b<4>(a); return;
    default: f32_rows_b<8>(a); return;
  }
}

#if defined(LOWBIT_KERNEL_X86)
inline float dot_f16(const std::uint16_t* w, const float* x, index n) {
  fbatch a0(0.0f), a1(0.0f);
  index j = 0;
#if defined(LOWBIT_KERNEL_AVX512)
  for (; j + 32 <= n; j += 32) {
    a0 = xsimd::fma(fbatch(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j)))),
                    fbatch::load_unaligned(x + j), a0);
    a1 = xsimd::fma(fbatch(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j + 16)))),
                    fbatch::load_unaligned(x + j + 16), a1);
  }
  for (; j < n; j += 16) {  // masked tail: never reads past n
    const __mmask16 k = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
    a0 = xsimd::fma(fbatch(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, w + j))), fbatch(_mm512_maskz_loadu_ps(k, x + j)), a0);
  }
  return xsimd::hadd(a0 + a1);
#else
  for (; j + 16 <= n; j += 16) {
    a0 = xsimd::fma(fbatch(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j)))),
                    fbatch::load_unaligned(x + j), a0);
    a1 = xsimd::fma(fbatch(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j + 8)))),
                    fbatch::load_unaligned(x + j + 8), a1);
  }
  float acc = xsimd::hadd(a0 + a1);
  for (; j < n; ++j) acc += _cvtsh_ss(w[j]) * x[j];
  return acc;
#endif
}

inline float sparse_dot(const std::uint16_t* v, const std::uint16_t* cols, index n, const float* x) {
  index j = 0;
#if defined(LOWBIT_KERNEL_AVX512)
  __m512 acc = _mm512_setzero_ps();
  for (; j < n; j += 16) {
    const __mmask16 k = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
    const __m512i idx = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, cols + j));
    const __m512 xv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, idx, x, 4);
    acc = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, v + j)), xv, acc);
  }
  return xsimd::hadd(fbatch(acc));
#else
  __m256 acc = _mm256_setzero_ps();
  for (; j + 8 <= n; j += 8) {
    const __m256i idx = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cols + j)));
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + j))),
                          _mm256_i32gather_ps(x, idx, 4), acc);
  }
  float r = xsimd::hadd(fbatch(acc));
  for (; j < n; ++j) r += _cvtsh_ss(v[j]) * x[cols[j]];
  return r;
#endif
}

inline void f16_to_f32(const std::uint16_t* in, float* out, index n) {
  index j = 0;
#if defined(LOWBIT_KERNEL_AVX512)
  for (; j < n; j += 16) {
    const __mmask16 k = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
    _mm512_mask_storeu_ps(out + j, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, in + j)));
  }
#else
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(out + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + j))));
  for (; j < n; ++j) out[j] = _cvtsh_ss(in[j]);
#endif
}

// ---- int8 activations: 32 u8 codes x 32 s8 activations per block, summed into int32 lanes ----
// VNNI: vpdpbusd adds four u8*s8 products per lane with no intermediate saturation.
// AVX2: vpmaddubsw (pairs into saturating int16) + vpmaddwd; exact while 2 * maxq * 127 <=
// 32767, i.e. for codes of up to 7 bits, so 8-bit codes take the fp32 path there.
inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if defined(LOWBIT_KERNEL_VNNI)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
#if defined(LOWBIT_KERNEL_VNNI)
inline constexpr unsigned i8_widths = 0x11Cu;  // 2, 3, 4, 8 bits
#else
inline constexpr unsigned i8_widths = 0x01Cu;  // 2, 3, 4 bits
#endif

template <int Bits>
inline __m256i block_u8x32(const std::uint8_t* p) {
  __m128i lo, hi;
  block_bytes<Bits>(p, lo, hi);
  return _mm256_set_m128i(hi, lo);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int Bits, int M>
inline void row_i8(const std::uint8_t* row, const i8_rows_args& a, const float* s, index i0, float* out) {
  constexpr int KI = M == 1 ? 4 : M == 2 ? 2 : 1;  // independent integer chains per vector
  constexpr std::size_t bpb = 4 * Bits;
  const index bpx = index{1} << a.xblock_shift;
  __m256 facc[M];
  for (int i = 0; i < M; ++i) facc[i] = _mm256_setzero_ps();
  for (index b0 = 0, xb = 0; b0 < a.blocks; b0 += bpx, ++xb) {
    const index b1 = b0 + bpx < a.blocks ? b0 + bpx : a.blocks;
    __m256i iacc[M][KI];
    for (int i = 0; i < M; ++i)
      for (int k = 0; k < KI; ++k) iacc[i][k] = _mm256_setzero_si256();
    index b = b0;
    for (; b + KI <= b1; b += KI)
      for (int k = 0; k < KI; ++k) {
        const __m256i q = block_u8x32<Bits>(row + static_cast<std::size_t>(b + k) * bpb);
        for (int i = 0; i < M; ++i)
          iacc[i][k] = dot_u8s8(iacc[i][k], q,
                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.xq + (i0 + i) * a.ldxq + 32 * (b + k))));
      }
    for (; b < b1; ++b) {
      const __m256i q = block_u8x32<Bits>(row + static_cast<std::size_t>(b) * bpb);
      for (int i = 0; i < M; ++i)
        iacc[i][0] = dot_u8s8(iacc[i][0], q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.xq + (i0 + i) * a.ldxq + 32 * b)));
    }
    const float sg = s ? s[xb >> a.group_shift] : 1.0f;
    for (int i = 0; i < M; ++i) {
      __m256i t = iacc[i][0];
      for (int k = 1; k < KI; ++k) t = _mm256_add_epi32(t, iacc[i][k]);
      facc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_set1_ps(a.xscale[(i0 + i) * a.ldxs + xb] * sg), facc[i]);
    }
  }
  for (int i = 0; i < M; ++i) out[i] = hsum(facc[i]);
}

#if defined(LOWBIT_KERNEL_AVX512)
// AVX-512: two blocks (64 codes) per instruction when an x-block spans >= 2 blocks.
inline __m512i dot_u8s8(__m512i acc, __m512i u, __m512i s) {
#if defined(LOWBIT_KERNEL_VNNI)
  return _mm512_dpbusd_epi32(acc, u, s);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

// Blocks p and p + 4*Bits as 64 bytes in natural code order.
template <int Bits>
inline __m512i block2_u8x64(const std::uint8_t* p) {
  constexpr std::size_t bpb = 4 * Bits;
  if constexpr (Bits == 8) {
    return _mm512_loadu_si512(p);
  } else if constexpr (Bits == 4) {
    const __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512i t = _mm512_shuffle_i64x2(v, v, 0x50);  // 128-bit lanes: block 0, block 0, block 1, block 1
    return _mm512_and_si512(_mm512_srlv_epi64(t, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), _mm512_set1_epi8(0x0F));
  } else {
    const __m128i low = _mm_set_epi64x(static_cast<long long>(load_u64(p + bpb)), static_cast<long long>(load_u64(p)));
    const __m512i t = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 0, 0, 0, 1, 1, 1, 1), _mm512_castsi128_si512(low));
    __m512i q = _mm512_and_si512(_mm512_srlv_epi64(t, _mm512_setr_epi64(0, 2, 4, 6, 0, 2, 4, 6)), _mm512_set1_epi8(3));
    if constexpr (Bits == 3) {
      const std::uint64_t h = load_u32(p + 8) | static_cast<std::uint64_t>(load_u32(p + bpb + 8)) << 32;
      q = _mm512_or_si512(q, _mm512_maskz_mov_epi8(h, _mm512_set1_epi8(4)));
    }
    return q;
  }
}

template <int Bits, int M>
inline void row_i8_512(const std::uint8_t* row, const i8_rows_args& a, const float* s, index i0, float* out) {
  constexpr int KI = M == 1 ? 2 : 1;
  constexpr std::size_t bpb = 4 * Bits;
  const index bpx = index{1} << a.xblock_shift;
  __m512 facc[M];
  for (int i = 0; i < M; ++i) facc[i] = _mm512_setzero_ps();
  auto xload = [&](int i, index b) {
    return _mm512_loadu_si512(a.xq + (i0 + i) * a.ldxq + 32 * b);
  };
  for (index b0 = 0, xb = 0; b0 < a.blocks; b0 += bpx, ++xb) {
    const index b1 = b0 + bpx < a.blocks ? b0 + bpx : a.blocks;
    __m512i iacc[M][KI];
    for (int i = 0; i < M; ++i)
      for (int k = 0; k < KI; ++k) iacc[i][k] = _mm512_setzero_si512();
    index b = b0;
    for (; b + 2 * KI <= b1; b += 2 * KI)
      for (int k = 0; k < KI; ++k) {
        const __m512i q = block2_u8x64<Bits>(row + static_cast<std::size_t>(b + 2 * k) * bpb);
        for (int i = 0; i < M; ++i) iacc[i][k] = dot_u8s8(iacc[i][k], q, xload(i, b + 2 * k));
      }
    for (; b + 2 <= b1; b += 2) {
      const __m512i q = block2_u8x64<Bits>(row + static_cast<std::size_t>(b) * bpb);
      for (int i = 0; i < M; ++i) iacc[i][0] = dot_u8s8(iacc[i][0], q, xload(i, b));
    }
    if (b < b1) {  // an odd last block: the upper 32 codes are zero
      const __m512i q = _mm512_zextsi256_si512(block_u8x32<Bits>(row + static_cast<std::size_t>(b) * bpb));
      for (int i = 0; i < M; ++i)
        iacc[i][0] = dot_u8s8(iacc[i][0], q,
                              _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.xq + (i0 + i) * a.ldxq + 32 * b))));
    }
    const float sg = s ? s[xb >> a.group_shift] : 1.0f;
    for (int i = 0; i < M; ++i) {
      __m512i t = iacc[i][0];
      for (int k = 1; k < KI; ++k) t = _mm512_add_epi32(t, iacc[i][k]);
      facc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_set1_ps(a.xscale[(i0 + i) * a.ldxs + xb] * sg), facc[i]);
    }
  }
  for (int i = 0; i < M; ++i) out[i] = _mm512_reduce_add_ps(facc[i]);
}
#endif

template <int Bits>
inline void i8_rows_t(const i8_rows_args& a) {
  constexpr int tile = 4;
  float out[tile];
  for (index r = 0; r < a.rows; ++r) {
    const std::uint8_t* row = a.codes + static_cast<std::size_t>(r) * a.row_bytes;
    const float* s = a.s ? a.s + r * a.ld_stats : nullptr;
    for (index i0 = 0; i0 < a.m; i0 += tile) {
      const index mt = a.m - i0 < tile ? a.m - i0 : tile;
#if defined(LOWBIT_KERNEL_AVX512)
      if (a.xblock_shift >= 1) {
        switch (mt) {
          case 1: row_i8_512<Bits, 1>(row, a, s, i0, out); break;
          case 2: row_i8_512<Bits, 2>(row, a, s, i0, out); break;
          case 3: row_i8_512<Bits, 3>(row, a, s, i0, out); break;
          default: row_i8_512<Bits, 4>(row, a, s, i0, out); break;
        }
        for (index i = 0; i < mt; ++i) a.y[(i0 + i) * a.ldy + r] = out[i];
        continue;
      }
#endif
      switch (mt) {
        case 1: row_i8<Bits, 1>(row, a, s, i0, out); break;
        case 2: row_i8<Bits, 2>(row, a, s, i0, out); break;
        case 3: row_i8<Bits, 3>(row, a, s, i0, out); break;
        default: row_i8<Bits, 4>(row, a, s, i0, out); break;
      }
      for (index i = 0; i < mt; ++i) a.y[(i0 + i) * a.ldy + r] = out[i];
    }
  }
}

inline void i8_rows(const i8_rows_args& a) {
  switch (a.bits) {
    case 2: i8_rows_t<2>(a); return;
    case 3: i8_rows_t<3>(a); return;
    case 4: i8_rows_t<4>(a); return;
    default: i8_rows_t<8>(a); return;
  }
}

#endif  // LOWBIT_KERNEL_X86 (fp16 and int8)

#if defined(LOWBIT_KERNEL_NEON)
// ---- fp16: ARMv8-A converts half <-> float in its base ISA (fcvtl) ----
inline float32x4_t half4(const std::uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

inline float dot_f16(const std::uint16_t* w, const float* x, index n) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
  index j = 0;
  for (; j + 16 <= n; j += 16) {
    a0 = vfmaq_f32(a0, half4(w + j), vld1q_f32(x + j));
    a1 = vfmaq_f32(a1, half4(w + j + 4), vld1q_f32(x + j + 4));
    a2 = vfmaq_f32(a2, half4(w + j + 8), vld1q_f32(x + j + 8));
    a3 = vfmaq_f32(a3, half4(w + j + 12), vld1q_f32(x + j + 12));
  }
  for (; j + 4 <= n; j += 4) a0 = vfmaq_f32(a0, half4(w + j), vld1q_f32(x + j));
  float acc = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  for (; j < n; ++j) acc += generic::half_to_float(w[j]) * x[j];
  return acc;
}

// No gather on NEON: four x values are loaded one by one into a vector.
inline float sparse_dot(const std::uint16_t* v, const std::uint16_t* cols, index n, const float* x) {
  float32x4_t acc = vdupq_n_f32(0.0f);
  index j = 0;
  for (; j + 4 <= n; j += 4) {
    float32x4_t xv = vdupq_n_f32(x[cols[j]]);
    xv = vsetq_lane_f32(x[cols[j + 1]], xv, 1);
    xv = vsetq_lane_f32(x[cols[j + 2]], xv, 2);
    xv = vsetq_lane_f32(x[cols[j + 3]], xv, 3);
    acc = vfmaq_f32(acc, half4(v + j), xv);
  }
  float r = vaddvq_f32(acc);
  for (; j < n; ++j) r += generic::half_to_float(v[j]) * x[cols[j]];
  return r;
}

inline void f16_to_f32(const std::uint16_t* in, float* out, index n) {
  index j = 0;
  for (; j + 4 <= n; j += 4) vst1q_f32(out + j, half4(in + j));
  for (; j < n; ++j) out[j] = generic::half_to_float(in[j]);
}

// ---- int8 activations: 32 u8 codes x 32 s8 activations per block, exact int32 sums ----
// dotprod: sdot sums four s8 x s8 products per int32 lane. Codes of up to 7 bits are s8 as
// they are; 8-bit codes go in as q - 128 (q ^ 0x80), and 128 * sum(x) is added back (the sum
// by one more sdot against ones). Plain NEON: smull (s8 x s8 -> s16, |q x| <= 128 * 128) and
// sadalp (pairs into int32), with the same q - 128 form for 8 bits. The integer sum of an
// x-block is reduced exactly and scaled as the generic kernel does (acc += f * float(dot),
// one rounding each), so this path returns the generic path's floats bit for bit.
inline constexpr unsigned i8_widths = 0x11Cu;  // 2, 3, 4, 8 bits

inline int32x4_t dot_s8x16(int32x4_t acc, int8x16_t q, int8x16_t x) {
#if defined(LOWBIT_KERNEL_DOTPROD)
  return vdotq_s32(acc, q, x);
#else
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(q), vget_low_s8(x)));
  return vpadalq_s16(acc, vmull_high_s8(q, x));
#endif
}

// sum(x) of 16 activations, accumulated per int32 lane.
inline int32x4_t sum_s8x16(int32x4_t acc, int8x16_t x) {
#if defined(LOWBIT_KERNEL_DOTPROD)
  return vdotq_s32(acc, vdupq_n_s8(1), x);
#else
  return vpadalq_s16(acc, vpaddlq_s8(x));
#endif
}

template <int Bits, int M>
inline void row_i8(const std::uint8_t* row, const i8_rows_args& a, const float* s, index i0, float* out) {
  constexpr std::size_t bpb = 4 * Bits;
  const index bpx = index{1} << a.xblock_shift;
  float facc[M];
  for (int i = 0; i < M; ++i) facc[i] = 0.0f;
  const int8x16_t flip = vdupq_n_s8(Bits == 8 ? -128 : 0);
  for (index b0 = 0, xb = 0; b0 < a.blocks; b0 += bpx, ++xb) {
    const index b1 = b0 + bpx < a.blocks ? b0 + bpx : a.blocks;
    int32x4_t iacc[M][2], xsum[M];
    for (int i = 0; i < M; ++i) iacc[i][0] = iacc[i][1] = xsum[i] = vdupq_n_s32(0);
    for (index b = b0; b < b1; ++b) {
      uint8x16_t lo, hi;
      block_bytes<Bits>(row + static_cast<std::size_t>(b) * bpb, lo, hi);
      const int8x16_t ql = veorq_s8(vreinterpretq_s8_u8(lo), flip), qh = veorq_s8(vreinterpretq_s8_u8(hi), flip);
      for (int i = 0; i < M; ++i) {
        const std::int8_t* xq = a.xq + (i0 + i) * a.ldxq + 32 * b;
        const int8x16_t xl = vld1q_s8(xq), xh = vld1q_s8(xq + 16);
        iacc[i][0] = dot_s8x16(iacc[i][0], ql, xl);
        iacc[i][1] = dot_s8x16(iacc[i][1], qh, xh);
        if constexpr (Bits == 8) xsum[i] = sum_s8x16(sum_s8x16(xsum[i], xl), xh);
      }
    }
    const float sg = s ? s[xb >> a.group_shift] : 1.0f;
    for (int i = 0; i < M; ++i) {
      std::int32_t dot = vaddvq_s32(vaddq_s32(iacc[i][0], iacc[i][1]));
      if constexpr (Bits == 8) dot += 128 * vaddvq_s32(xsum[i]);
      // As generic::i8_rows: f = xscale * s, then acc += f * dot (two roundings, no fma).
      float f = a.xscale[(i0 + i) * a.ldxs + xb];
      if (s) f *= sg;
      const float term = f * static_cast<float>(dot);
      facc[i] += term;
    }
  }
  for (int i = 0; i < M; ++i) out[i] = facc[i];
}

template <int Bits>
inline void i8_rows_t(const i8_rows_args& a) {
  constexpr int tile = 4;
  float out[tile];
  for (index r = 0; r < a.rows; ++r) {
    const std::uint8_t* row = a.codes + static_cast<std::size_t>(r) * a.row_bytes;
    const float* s = a.s ? a.s + r * a.ld_stats : nullptr;
    for (index i0 = 0; i0 < a.m; i0 += tile) {
      const index mt = a.m - i0 < tile ? a.m - i0 : tile;
      switch (mt) {
        case 1: row_i8<Bits, 1>(row, a, s, i0, out); break;
        case 2: row_i8<Bits, 2>(row, a, s, i0, out); break;
        case 3: row_i8<Bits, 3>(row, a, s, i0, out); break;
        default: row_i8<Bits, 4>(row, a, s, i0, out); break;
      }
      for (index i = 0; i < mt; ++i) a.y[(i0 + i) * a.ldy + r] = out[i];
    }
  }
}

inline void i8_rows(const i8_rows_args& a) {
  switch (a.bits) {
    case 2: i8_rows_t<2>(a); return;
    case 3: i8_rows_t<3>(a); return;
    case 4: i8_rows_t<4>(a); return;
    default: i8_rows_t<8>(a); return;
  }
}
#endif  // LOWBIT_KERNEL_NEON

inline const kernel_table& table() {
  static const kernel_table t{id(), &f32_rows, &dot_f16, &sparse_dot, &f16_to_f32, &i8_rows, i8_widths};
  return t;
}

}  // namespace native
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // LOWBIT_KERNEL_X86 || LOWBIT_KERNEL_NEON

// The best kernel set this TU's flags allow.
inline const kernel_table& compiled_table() {
#if defined(LOWBIT_KERNEL_X86) || defined(LOWBIT_KERNEL_NEON)
  return native::table();
#else
  return generic::table();
#endif
}

}  // namespace lowbit::kernel::cpu::LOWBIT_KERNEL_NS
