#pragma once
// Segmented integer dot products: for each output row r and each segment s (a contiguous
// run of input columns sharing one weight scale AND one activation scale),
//     dot[r, s] = sum_{j in s} w[r, j] * a[j]      (exact, int32)
// with unsigned weight codes w (u8 bytes, or 4-bit nibbles) and signed activation codes a
// (s8). The scales are applied afterwards by the caller (wxa_matrix), in one shared order,
// so every ISA path gives bit-identical integers and therefore bit-identical floats.
//
// Layout (built by wxa_matrix): every segment starts at a multiple of `segment_align` (32)
// columns and is zero-padded to a multiple of it in both weights and activations, so the
// SIMD loops need no tails. Nibble format: in each block of 32 weights (16 bytes), byte j
// holds w_j in its low nibble and w_{j+16} in its high nibble, so one shift and one mask
// give the 32 weights in natural order.
//
// Exactness: vpdpbusd sums four u8 x s8 products into int32 without saturation. vpmaddubsw
// (AVX2) sums two products into a SATURATING int16: exact only when 2 * max|w| * max|a| <=
// 32767, true for 4-bit weights with any activations and 8-bit weights with <= 7-bit
// activations; W8A8 on AVX2 widens to int16 and uses vpmaddwd instead.
#include <cstddef>
#include <cstdint>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/kernel/cpu/int8/isa.hpp"

#if LOWBIT_INT8_X86
#include <immintrin.h>
#endif

namespace lowbit::kernel::int8 {

inline constexpr index segment_align = 32;

struct dot_args {
  const std::uint8_t* codes = nullptr;  // row r starts at codes + r * row_bytes
  std::size_t row_bytes = 0;
  bool nibbles = false;                 // 4-bit nibble weights (else one u8 per weight)
  bool maddubs_exact = true;            // 2 * max|w| * max|a| <= 32767 (AVX2 may use vpmaddubsw)
  const index* seg_begin = nullptr;     // padded column where each segment starts; nseg + 1 entries
  index nseg = 0;
  const std::int8_t* act = nullptr;     // padded activation codes
};

// Weight code of padded column j in a row (the scalar reference's view of the layout).
inline int weight_code(const std::uint8_t* row, index j, bool nibbles) {
  if (!nibbles) return row[j];
  const index block = j / 32, k = j % 32;
  const std::uint8_t b = row[block * 16 + (k & 15)];
  return k < 16 ? (b & 0x0F) : (b >> 4);
}

// Scalar reference: out[(r - r0) * nseg + s].
inline void dot_rows_scalar(const dot_args& A, index r0, index r1, std::int32_t* out) {
  for (index r = r0; r < r1; ++r) {
    const std::uint8_t* row = A.codes + static_cast<std::size_t>(r) * A.row_bytes;
    for (index s = 0; s < A.nseg; ++s) {
      std::int32_t acc = 0;
      for (index j = A.seg_begin[s]; j < A.seg_begin[s + 1]; ++j) acc += weight_code(row, j, A.nibbles) * A.act[j];
      *out++ = acc;
    }
  }
}

#if LOWBIT_INT8_X86

__attribute__((target("avx2"))) inline std::int32_t hsum_epi32_avx2(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// 32 nibble weights (one 16-byte block) as 32 u8 in natural order.
__attribute__((target("avx2"))) inline __m256i unpack_nibbles32(const std::uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

__attribute__((target("avx2"))) inline void dot_rows_avx2(const dot_args& A, index r0, index r1, std::int32_t* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (index r = r0; r < r1; ++r) {
    const std::uint8_t* row = A.codes + static_cast<std::size_t>(r) * A.row_bytes;
    for (index s = 0; s < A.nseg; ++s) {
      __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
      const index b = A.seg_begin[s], e = A.seg_begin[s + 1];
      if (A.nibbles) {
        index j = b;
        for (; j + 64 <= e; j += 64) {
          const __m256i w0 = unpack_nibbles32(row + j / 2), w1 = unpack_nibbles32(row + j / 2 + 16);
          const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A.act + j));
          const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A.act + j + 32));
          acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(w0, a0), ones));
          acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_maddubs_epi16(w1, a1), ones));
        }
        if (j < e) {
          const __m256i w0 = unpack_nibbles32(row + j / 2);
          const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A.act + j));
          acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(w0, a0), ones));
        }
      } else if (A.maddubs_exact) {
        for (index j = b; j < e; j += 32) {
          const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j));
          const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A.act + j));
          acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(w0, a0), ones));
        }
      } else {
        // W8A8: u8 x s8 pairs can exceed int16; widen to int16 and let vpmaddwd sum in int32.
        for (index j = b; j < e; j += 32) {
          const __m128i* wp = reinterpret_cast<const __m128i*>(row + j);
          const __m128i* ap = reinterpret_cast<const __m128i*>(A.act + j);
          acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(wp)),
                                                          _mm256_cvtepi8_epi16(_mm_loadu_si128(ap))));
          acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(wp + 1)),
                                                          _mm256_cvtepi8_epi16(_mm_loadu_si128(ap + 1))));
        }
      }
      *out++ = hsum_epi32_avx2(_mm256_add_epi32(acc0, acc1));
    }
  }
}

#define LOWBIT_VNNI_TARGET __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))

LOWBIT_VNNI_TARGET inline void dot_rows_vnni(const dot_args& A, index r0, index r1, std::int32_t* out) {
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m512i zero = _mm512_setzero_si512();
  for (index r = r0; r < r1; ++r) {
    const std::uint8_t* row = A.codes + static_cast<std::size_t>(r) * A.row_bytes;
    for (index s = 0; s < A.nseg; ++s) {
      __m512i acc = _mm512_setzero_si512();
      __m256i acc_half = _mm256_setzero_si256();
      const index b = A.seg_begin[s], e = A.seg_begin[s + 1];
      index j = b;
      if (A.nibbles) {
        for (; j + 64 <= e; j += 64) {
          // Two 16-byte blocks b0, b1 -> [b0 lo | b1 lo | b0 hi | b1 hi] -> reorder the
          // 128-bit lanes to [b0 lo | b0 hi | b1 lo | b1 hi] = 64 weights in natural order.
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j / 2));
          __m512i w = _mm512_maskz_inserti64x4(0xFF, _mm512_maskz_inserti64x4(0xFF, zero, v, 0), _mm256_srli_epi16(v, 4), 1);
          w = _mm512_and_si512(w, mask);
          w = _mm512_maskz_shuffle_i64x2(0xFF, w, w, _MM_SHUFFLE(3, 1, 2, 0));
          acc = _mm512_dpbusd_epi32(acc, w, _mm512_loadu_si512(A.act + j));
        }
        if (j < e) {
          acc_half = _mm256_dpbusd_epi32(acc_half, unpack_nibbles32(row + j / 2),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A.act + j)));
        }
      } else {
        for (; j + 64 <= e; j += 64)
          acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(row + j), _mm512_loadu_si512(A.act + j));
        if (j < e)
          acc_half = _mm256_dpbusd_epi32(acc_half, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j)),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A.act + j)));
      }
      // (maskz forms: the plain extract/insert intrinsics use _mm*_undefined_*, which GCC 12
      // reports as maybe-uninitialized under -Wall -Werror.)
      const __m256i folded = _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xF, acc, 0),
                                              _mm512_maskz_extracti64x4_epi64(0xF, acc, 1));
      *out++ = hsum_epi32_avx2(_mm256_add_epi32(folded, acc_half));
    }
  }
}

#endif  // LOWBIT_INT8_X86

// Dispatch to one (already resolved, available) path.
inline void dot_rows(int8_isa isa, const dot_args& A, index r0, index r1, std::int32_t* out) {
#if LOWBIT_INT8_X86
  if (isa == int8_isa::avx512_vnni) return dot_rows_vnni(A, r0, r1, out);
  if (isa == int8_isa::avx2) return dot_rows_avx2(A, r0, r1, out);
#endif
  (void)isa;
  dot_rows_scalar(A, r0, r1, out);
}

}  // namespace lowbit::kernel::int8
