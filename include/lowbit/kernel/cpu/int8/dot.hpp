#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Segmented integer dot products: for each output row r and each segment s (a contiguous
// run of input columns sharing one weight scale AND one activation scale),
//     dot[r, s] = sum_{j in s} w[r, j] * a[j]      (exact, int32)
// with unsigned weight codes w (u8 bytes, or 4-bit nibbles) and signed activation codes a
// (s8). The scales are applied afterwards by the caller (wxa_matrix), in one shared order,
// so every ISA path gives bit-identical integers and therefore bit-identical floats.
//
// Layout (built by wxa_matrix): every segment starts at a multiple of `segment_align` (32)
// columns and is zero-padded to a multiple of it in both weights and activations, so the
// SIMD loops need no tails. Rows are stored in blocks of 4, interleaved per segment: block b
// holds, for each segment s in order, the 4 rows' bytes of s one after the other, so a
// kernel working on 4 rows reads ONE sequential stream (short per-row streams defeat the
// hardware prefetchers). With sb(s) / sl(s) the byte offset / length of segment s in a row,
// row r's segment s starts at codes + (r / 4) * 4 * row_bytes + 4 sb(s) + (r % 4) sl(s).
// Nibble format, inside a segment: each full block of 64 weights is 32 bytes, byte t holding
// w_t in its low nibble and w_{t+32} in its high nibble (one shift and one mask give 2 x 32
// weights in natural order: a zmm for vpdpbusd, or two ymm); a trailing block of 32 weights
// is 16 bytes, byte t holding w_t and w_{t+16}.
//
// Exactness: vpdpbusd sums four u8 x s8 products into int32 without saturation. vpmaddubsw
// (AVX2) sums two products into a SATURATING int16: exact only when 2 * max|w| * max|a| <=
// 32767, true for 4-bit weights with any activations and 8-bit weights with <= 7-bit
// activations; W8A8 on AVX2 widens to int16 and uses vpmaddwd instead. Partial sums are
// bounded by sum |w a| <= 65536 * 255 * 128 < 2^31 (wxa_matrix limits segments to 65536).
//
// Speed: rows are processed 4 at a time so each activation load and each horizontal
// reduction is shared by 4 rows (segments are short: ~128 columns for 32 clusters), and the
// per-(row, segment) results and stats are laid out in blocks of 4 rows,
//     element (r, s) of rows [r0, r1) (r0 a multiple of 4) at ((r - r0) / 4 * nseg + s) * 4 + (r - r0) % 4,
// so the scaling step (combine_rows) reads them as contiguous vectors.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/kernel/cpu/int8/isa.hpp"

#if LOWBIT_INT8_X86
#include <immintrin.h>
#endif
#if LOWBIT_INT8_NEON
#include <arm_neon.h>
#endif

namespace lowbit::inline LOWBIT_ABI::kernel::int8 {

inline constexpr index segment_align = 32;
inline constexpr index row_block = 4;

// Position of (row offset i from a block-aligned start, segment s) in the blocked layout.
inline index blocked(index i, index s, index nseg) { return ((i / row_block) * nseg + s) * row_block + i % row_block; }

struct dot_args {
  const std::uint8_t* codes = nullptr;  // blocks of 4 rows, interleaved per segment (above)
  std::size_t row_bytes = 0;
  bool nibbles = false;                 // 4-bit nibble weights (else one u8 per weight)
  bool maddubs_exact = true;            // 2 * max|w| * max|a| <= 32767 (AVX2 may use vpmaddubsw)
  const index* seg_begin = nullptr;     // padded column where each segment starts; nseg + 1 entries
  index nseg = 0;
  const std::int8_t* act = nullptr;     // padded activation codes

  index seg_byte(index col) const { return nibbles ? col / 2 : col; }
  // Start of row r's bytes of segment s.
  const std::uint8_t* segment(index r, index s) const {
    const index sb = seg_byte(seg_begin[s]), sl = seg_byte(seg_begin[s + 1]) - sb;
    return codes + static_cast<std::size_t>(r / row_block) * row_block * row_bytes +
           static_cast<std::size_t>(row_block * sb + (r % row_block) * sl);
  }
};

// Where weight o of a nibble segment of (padded) length len lives: byte and nibble.
struct nibble_slot {
  index byte;
  bool high;
};
inline nibble_slot nibble_position(index len, index o) {
  const index full = len / 64 * 64;
  if (o < full) return {(o / 64) * 32 + (o % 64 & 31), o % 64 >= 32};
  const index t = o - full;
  return {full / 2 + (t & 15), t >= 16};
}

// Weight code o of a segment (seg: its first byte in the row's block, len: padded length).
inline int weight_code(const std::uint8_t* seg, index len, index o, bool nibbles) {
  if (!nibbles) return seg[o];
  const nibble_slot p = nibble_position(len, o);
  return p.high ? (seg[p.byte] >> 4) : (seg[p.byte] & 0x0F);
}

// Scalar reference: dot of (r, s) to out[blocked(r - r0, s, nseg)].
inline void dot_rows_scalar(const dot_args& A, index r0, index r1, std::int32_t* out) {
  for (index r = r0; r < r1; ++r) {
    for (index s = 0; s < A.nseg; ++s) {
      std::int32_t acc = 0;
      const std::uint8_t* seg = A.segment(r, s);
      const index b = A.seg_begin[s], e = A.seg_begin[s + 1];
      for (index j = b; j < e; ++j) acc += weight_code(seg, e - b, j - b, A.nibbles) * A.act[j];
      out[blocked(r - r0, s, A.nseg)] = acc;
    }
  }
}

// The scaling step. Per (row, segment): weight scale s_w, weight zero z_w and
// k_w = n z_w - sum(w) (blocked layout); per segment: activation scale s_a, zero z_a and the
// call's code sum sum(a). The zero-point expansion
//     v = dot - z_a sum(w) - z_w sum(a) + n z_w z_a = dot - z_w sum(a) + z_a k_w
// is exact in double (integers below 2^53: |z_a| <= 2^22, codes <= 255, n <= 65536), and
//     y = sum_s fl(s_w s_a) · v
// is accumulated in double, one fused multiply-add per segment in segment order. Every path
// does exactly these roundings (the SIMD one with vfmadd on 4 rows, the scalar one with
// std::fma), so all paths return identical floats.
struct combine_args {
  const float* sw = nullptr;          // blocked, from the block of r0
  const std::int32_t* zw = nullptr;   // blocked
  const std::int32_t* kw = nullptr;   // blocked
  const float* sa = nullptr;          // per segment
  const double* za = nullptr;         // per segment
  const double* asum = nullptr;       // per segment, this call's activations
  index nseg = 0;
};

inline float combine_row_scalar(const combine_args& C, index i, const std::int32_t* dots) {
  double acc = 0.0;
  for (index s = 0; s < C.nseg; ++s) {
    const index k = blocked(i, s, C.nseg);
    const double v = static_cast<double>(dots[k]) - static_cast<double>(C.zw[k]) * C.asum[s] + C.za[s] * static_cast<double>(C.kw[k]);
    const float scale = C.sw[k] * C.sa[s];
    acc = std::fma(static_cast<double>(scale), v, acc);
  }
  return static_cast<float>(acc);
}

inline void combine_rows_scalar(const combine_args& C, index n, const std::int32_t* dots, float* y) {
  for (index i = 0; i < n; ++i) y[i] = combine_row_scalar(C, i, dots);
}

#if LOWBIT_INT8_X86

#define LOWBIT_AVX2_TARGET __attribute__((target("avx2")))
#define LOWBIT_VNNI_TARGET __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))

LOWBIT_AVX2_TARGET inline std::int32_t hsum_epi32_avx2(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Horizontal sums of R accumulators to out[0..R) (R = 4 shares one reduction tree).
template <int R>
LOWBIT_AVX2_TARGET inline void store_sums(const __m256i* acc, std::int32_t* out) {
  if constexpr (R == 4) {
    const __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1)));
  } else {
    for (int i = 0; i < R; ++i) out[i] = hsum_epi32_avx2(acc[i]);
  }
}

// 32 nibble weights of a trailing 16-byte block as 32 u8 in natural order.
LOWBIT_AVX2_TARGET inline __m256i unpack_nibbles32(const std::uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

LOWBIT_AVX2_TARGET inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// u8 x s8 products of 32 pairs, summed to 8 int32 (exact when maddubs cannot saturate).
LOWBIT_AVX2_TARGET inline __m256i dot32_maddubs(__m256i w, __m256i a) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
}

template <int R>
LOWBIT_AVX2_TARGET inline void dot_block_avx2(const dot_args& A, index r, std::int32_t* out) {
  const std::uint8_t* p[R];
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for (index s = 0; s < A.nseg; ++s) {
    __m256i acc[R];
    for (int i = 0; i < R; ++i) acc[i] = _mm256_setzero_si256();
    const index b = A.seg_begin[s], e = A.seg_begin[s + 1];
    for (int i = 0; i < R; ++i) p[i] = A.segment(r + i, s);
    if (A.nibbles) {
      const index full = b + (e - b) / 64 * 64;
      index j = b;
      for (; j < full; j += 64) {
        const __m256i a0 = load256(A.act + j), a1 = load256(A.act + j + 32);
        for (int i = 0; i < R; ++i) {
          const __m256i v = load256(p[i] + (j - b) / 2);
          acc[i] = _mm256_add_epi32(acc[i], _mm256_add_epi32(dot32_maddubs(_mm256_and_si256(v, mask), a0),
                                                             dot32_maddubs(_mm256_and_si256(_mm256_srli_epi16(v, 4), mask), a1)));
        }
      }
      if (j < e) {
        const __m256i a0 = load256(A.act + j);
        for (int i = 0; i < R; ++i) acc[i] = _mm256_add_epi32(acc[i], dot32_maddubs(unpack_nibbles32(p[i] + (j - b) / 2), a0));
      }
    } else if (A.maddubs_exact) {
      for (index j = b; j < e; j += 32) {
        const __m256i a0 = load256(A.act + j);
        for (int i = 0; i < R; ++i) acc[i] = _mm256_add_epi32(acc[i], dot32_maddubs(load256(p[i] + (j - b)), a0));
      }
    } else {
      // W8A8: u8 x s8 pairs can exceed int16; widen to int16 and let vpmaddwd sum in int32.
      for (index j = b; j < e; j += 16) {
        const __m256i a16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(A.act + j)));
        for (int i = 0; i < R; ++i)
          acc[i] = _mm256_add_epi32(
              acc[i], _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p[i] + (j - b)))), a16));
      }
    }
    store_sums<R>(acc, out + s * row_block);
  }
}

// 4 rows at a time; a trailing partial block goes through the scalar routine (same roundings).
__attribute__((target("avx2,fma"))) inline void combine_rows_avx2(const combine_args& C, index n, const std::int32_t* dots,
                                                                  float* y) {
  index i = 0;
  for (; i + row_block <= n; i += row_block) {
    __m256d acc = _mm256_setzero_pd();
    const index base = (i / row_block) * C.nseg * row_block;
    for (index s = 0; s < C.nseg; ++s) {
      const index k = base + s * row_block;
      const __m256d d = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(dots + k)));
      const __m256d zw = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(C.zw + k)));
      const __m256d kw = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(C.kw + k)));
      // Exact integer arithmetic in double: the order of these terms cannot change v.
      const __m256d v = _mm256_fmadd_pd(_mm256_set1_pd(C.za[s]), kw, _mm256_fnmadd_pd(zw, _mm256_set1_pd(C.asum[s]), d));
      const __m256d scale = _mm256_cvtps_pd(_mm_mul_ps(_mm_loadu_ps(C.sw + k), _mm_set1_ps(C.sa[s])));
      acc = _mm256_fmadd_pd(scale, v, acc);
    }
    _mm_storeu_ps(y + i, _mm256_cvtpd_ps(acc));
  }
  for (; i < n; ++i) y[i] = combine_row_scalar(C, i, dots);
}

LOWBIT_AVX2_TARGET inline void dot_rows_avx2(const dot_args& A, index r0, index r1, std::int32_t* out) {
  index r = r0;
  for (; r + row_block <= r1; r += row_block) dot_block_avx2<4>(A, r, out + blocked(r - r0, 0, A.nseg));
  for (; r < r1; ++r) dot_block_avx2<1>(A, r, out + blocked(r - r0, 0, A.nseg));
}

// (The maskz forms below: the plain 512-bit insert/extract intrinsics pass
// _mm512_undefined_*() through, which GCC 12 reports as maybe-uninitialized under -Werror.)
LOWBIT_VNNI_TARGET inline __m256i fold512(__m512i v) {
  return _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xF, v, 0), _mm512_maskz_extracti64x4_epi64(0xF, v, 1));
}

template <int R>
LOWBIT_VNNI_TARGET inline void dot_block_vnni(const dot_args& A, index r, std::int32_t* out) {
  const std::uint8_t* p[R];
  const __m512i mask = _mm512_set1_epi8(0x0F);
  for (index s = 0; s < A.nseg; ++s) {
    __m512i acc[R];
    __m256i half[R];
    for (int i = 0; i < R; ++i) {
      acc[i] = _mm512_setzero_si512();
      half[i] = _mm256_setzero_si256();
    }
    const index b = A.seg_begin[s], e = A.seg_begin[s + 1];
    for (int i = 0; i < R; ++i) p[i] = A.segment(r + i, s);
    const index full = b + (e - b) / 64 * 64;
    index j = b;
    if (A.nibbles) {
      for (; j < full; j += 64) {
        const __m512i a = _mm512_loadu_si512(A.act + j);
        for (int i = 0; i < R; ++i) {
          const __m256i v = load256(p[i] + (j - b) / 2);  // 64 weights: low nibbles w0..31, high w32..63
          const __m512i w = _mm512_and_si512(_mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1), mask);
          acc[i] = _mm512_dpbusd_epi32(acc[i], w, a);
        }
      }
      if (j < e) {
        const __m256i a = load256(A.act + j);
        for (int i = 0; i < R; ++i) half[i] = _mm256_dpbusd_epi32(half[i], unpack_nibbles32(p[i] + (j - b) / 2), a);
      }
    } else {
      for (; j < full; j += 64) {
        const __m512i a = _mm512_loadu_si512(A.act + j);
        for (int i = 0; i < R; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_loadu_si512(p[i] + (j - b)), a);
      }
      if (j < e) {
        const __m256i a = load256(A.act + j);
        for (int i = 0; i < R; ++i) half[i] = _mm256_dpbusd_epi32(half[i], load256(p[i] + (j - b)), a);
      }
    }
    for (int i = 0; i < R; ++i) half[i] = _mm256_add_epi32(half[i], fold512(acc[i]));
    store_sums<R>(half, out + s * row_block);
  }
}

LOWBIT_VNNI_TARGET inline void dot_rows_vnni(const dot_args& A, index r0, index r1, std::int32_t* out) {
  index r = r0;
  for (; r + row_block <= r1; r += row_block) dot_block_vnni<4>(A, r, out + blocked(r - r0, 0, A.nseg));
  for (; r < r1; ++r) dot_block_vnni<1>(A, r, out + blocked(r - r0, 0, A.nseg));
}

#endif  // LOWBIT_INT8_X86

#if LOWBIT_INT8_NEON
// ---- aarch64 ----
// neon: every product widened to int16 (u8 weight, s8 activation) and multiply-accumulated
// into int32 (smlal): exact for any codes. neon_dotprod: sdot on s8 x s8; nibble weights
// (<= 15) are s8 as they are, u8 weights go in as w - 128 (w ^ 0x80) and 128 * sum(a) is
// added back, the segment's sum(a) taken once (one sdot against ones) for all 4 rows. Both
// are exact, so every path returns the scalar path's integers, and combine_rows (scalar on
// arm: std::fma in double, the same roundings as every other path) the same floats.
#if defined(__clang__)
#define LOWBIT_DOTPROD_TARGET __attribute__((target("dotprod")))
#else
#define LOWBIT_DOTPROD_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))  // as arm_neon.h wraps vdotq
#endif

// acc += w[0..16) * a[0..16) (u8 x s8), widened.
inline int32x4_t mac16_neon(int32x4_t acc, uint8x16_t w, int16x8_t a_lo, int16x8_t a_hi) {
  const int16x8_t wl = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(w))), wh = vreinterpretq_s16_u16(vmovl_high_u8(w));
  acc = vmlal_s16(acc, vget_low_s16(wl), vget_low_s16(a_lo));
  acc = vmlal_high_s16(acc, wl, a_lo);
  acc = vmlal_s16(acc, vget_low_s16(wh), vget_low_s16(a_hi));
  return vmlal_high_s16(acc, wh, a_hi);
}

template <int R>
inline void dot_block_neon(const dot_args& A, index r, std::int32_t* out) {
  const std::uint8_t* p[R];
  const uint8x16_t mask = vdupq_n_u8(0x0F);
  auto mac = [](int32x4_t* acc, int i, uint8x16_t w, int8x16_t a) {
    acc[i] = mac16_neon(acc[i], w, vmovl_s8(vget_low_s8(a)), vmovl_high_s8(a));
  };
  for (index s = 0; s < A.nseg; ++s) {
    int32x4_t acc[R];
    for (int i = 0; i < R; ++i) acc[i] = vdupq_n_s32(0);
    const index b = A.seg_begin[s], e = A.seg_begin[s + 1];
    for (int i = 0; i < R; ++i) p[i] = A.segment(r + i, s);
    if (A.nibbles) {
      const index full = b + (e - b) / 64 * 64;
      index j = b;
      for (; j < full; j += 64) {
        const int8x16_t a0 = vld1q_s8(A.act + j), a1 = vld1q_s8(A.act + j + 16), a2 = vld1q_s8(A.act + j + 32),
                        a3 = vld1q_s8(A.act + j + 48);
        for (int i = 0; i < R; ++i) {
          const uint8x16_t v0 = vld1q_u8(p[i] + (j - b) / 2), v1 = vld1q_u8(p[i] + (j - b) / 2 + 16);
          mac(acc, i, vandq_u8(v0, mask), a0);
          mac(acc, i, vandq_u8(v1, mask), a1);
          mac(acc, i, vshrq_n_u8(v0, 4), a2);
          mac(acc, i, vshrq_n_u8(v1, 4), a3);
        }
      }
      if (j < e) {
        const int8x16_t a0 = vld1q_s8(A.act + j), a1 = vld1q_s8(A.act + j + 16);
        for (int i = 0; i < R; ++i) {
          const uint8x16_t v = vld1q_u8(p[i] + (j - b) / 2);
          mac(acc, i, vandq_u8(v, mask), a0);
          mac(acc, i, vshrq_n_u8(v, 4), a1);
        }
      }
    } else {
      for (index j = b; j < e; j += 16) {
        const int8x16_t a0 = vld1q_s8(A.act + j);
        for (int i = 0; i < R; ++i) mac(acc, i, vld1q_u8(p[i] + (j - b)), a0);
      }
    }
    for (int i = 0; i < R; ++i) out[s * row_block + i] = vaddvq_s32(acc[i]);
  }
}

inline void dot_rows_neon(const dot_args& A, index r0, index r1, std::int32_t* out) {
  index r = r0;
  for (; r + row_block <= r1; r += row_block) dot_block_neon<4>(A, r, out + blocked(r - r0, 0, A.nseg));
  for (; r < r1; ++r) dot_block_neon<1>(A, r, out + blocked(r - r0, 0, A.nseg));
}

template <int R>
LOWBIT_DOTPROD_TARGET inline void dot_block_dotprod(const dot_args& A, index r, std::int32_t* out) {
  const std::uint8_t* p[R];
  const uint8x16_t mask = vdupq_n_u8(0x0F), flip = vdupq_n_u8(0x80);
  const int8x16_t ones = vdupq_n_s8(1);
  for (index s = 0; s < A.nseg; ++s) {
    int32x4_t acc[R][2];
    for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = vdupq_n_s32(0);
    const index b = A.seg_begin[s], e = A.seg_begin[s + 1];
    for (int i = 0; i < R; ++i) p[i] = A.segment(r + i, s);
    std::int32_t bias = 0;
    if (A.nibbles) {
      const index full = b + (e - b) / 64 * 64;
      index j = b;
      for (; j < full; j += 64) {
        const int8x16_t a0 = vld1q_s8(A.act + j), a1 = vld1q_s8(A.act + j + 16), a2 = vld1q_s8(A.act + j + 32),
                        a3 = vld1q_s8(A.act + j + 48);
        for (int i = 0; i < R; ++i) {
          const uint8x16_t v0 = vld1q_u8(p[i] + (j - b) / 2), v1 = vld1q_u8(p[i] + (j - b) / 2 + 16);
          acc[i][0] = vdotq_s32(acc[i][0], vreinterpretq_s8_u8(vandq_u8(v0, mask)), a0);
          acc[i][1] = vdotq_s32(acc[i][1], vreinterpretq_s8_u8(vandq_u8(v1, mask)), a1);
          acc[i][0] = vdotq_s32(acc[i][0], vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), a2);
          acc[i][1] = vdotq_s32(acc[i][1], vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)), a3);
        }
      }
      if (j < e) {
        const int8x16_t a0 = vld1q_s8(A.act + j), a1 = vld1q_s8(A.act + j + 16);
        for (int i = 0; i < R; ++i) {
          const uint8x16_t v = vld1q_u8(p[i] + (j - b) / 2);
          acc[i][0] = vdotq_s32(acc[i][0], vreinterpretq_s8_u8(vandq_u8(v, mask)), a0);
          acc[i][1] = vdotq_s32(acc[i][1], vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), a1);
        }
      }
    } else {
      int32x4_t asum = vdupq_n_s32(0);
      for (index j = b; j < e; j += 32) {
        const int8x16_t a0 = vld1q_s8(A.act + j), a1 = vld1q_s8(A.act + j + 16);
        asum = vdotq_s32(vdotq_s32(asum, ones, a0), ones, a1);
        for (int i = 0; i < R; ++i) {
          acc[i][0] = vdotq_s32(acc[i][0], vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p[i] + (j - b)), flip)), a0);
          acc[i][1] = vdotq_s32(acc[i][1], vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p[i] + (j - b) + 16), flip)), a1);
        }
      }
      bias = 128 * vaddvq_s32(asum);
    }
    for (int i = 0; i < R; ++i) out[s * row_block + i] = vaddvq_s32(vaddq_s32(acc[i][0], acc[i][1])) + bias;
  }
}

LOWBIT_DOTPROD_TARGET inline void dot_rows_dotprod(const dot_args& A, index r0, index r1, std::int32_t* out) {
  index r = r0;
  for (; r + row_block <= r1; r += row_block) dot_block_dotprod<4>(A, r, out + blocked(r - r0, 0, A.nseg));
  for (; r < r1; ++r) dot_block_dotprod<1>(A, r, out + blocked(r - r0, 0, A.nseg));
}
#endif  // LOWBIT_INT8_NEON

// Dispatch to one (already resolved, available) path. r0 must be a multiple of row_block;
// out holds ceil((r1 - r0) / 4) * 4 * nseg entries.
inline void dot_rows(cpu::isa isa, const dot_args& A, index r0, index r1, std::int32_t* out) {
#if LOWBIT_INT8_X86
  if (isa == cpu::isa::avx512_vnni) return dot_rows_vnni(A, r0, r1, out);
  if (isa == cpu::isa::avx2) return dot_rows_avx2(A, r0, r1, out);
#endif
#if LOWBIT_INT8_NEON
  if (isa == cpu::isa::neon_dotprod) return dot_rows_dotprod(A, r0, r1, out);
  if (isa == cpu::isa::neon) return dot_rows_neon(A, r0, r1, out);
#endif
  (void)isa;
  dot_rows_scalar(A, r0, r1, out);
}

inline void combine_rows(cpu::isa isa, const combine_args& C, index n, const std::int32_t* dots, float* y) {
#if LOWBIT_INT8_X86
  if (isa == cpu::isa::avx2 || isa == cpu::isa::avx512_vnni) return combine_rows_avx2(C, n, dots, y);
#endif
  (void)isa;
  combine_rows_scalar(C, n, dots, y);
}

}  // namespace lowbit::kernel::int8
