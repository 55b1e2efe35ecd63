#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// lowbit::half: IEEE 754 binary16 storage usable on the CPU without CUDA.
// Conversions use F16C when the translation unit is compiled with it (one instruction each);
// otherwise a portable bit-exact fallback (round to nearest even, subnormals, Inf/NaN kept).
#include <bit>
#include <cstdint>
#include <cstring>
#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace lowbit::inline LOWBIT_ABI {

namespace detail {

inline std::uint16_t float_to_half_bits_portable(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // Inf or NaN: keep NaN quiet and non-zero
    return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow → Inf
  if (abs < 0x38800000u) {  // result is subnormal or zero in half
    if (abs < 0x33000000u) return static_cast<std::uint16_t>(sign);  // below half of min subnormal
    const std::uint32_t exp = abs >> 23;
    const std::uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - exp;  // 14 + (112 - exp) + 0 ... aligns to 2^-24 units
    const std::uint32_t q = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    std::uint32_t r = q + ((rem > halfway || (rem == halfway && (q & 1u))) ? 1u : 0u);
    return static_cast<std::uint16_t>(sign | r);
  }
  // normal: rebias exponent (127 → 15) and round the 13 dropped mantissa bits to even
  std::uint32_t h = ((abs - 0x38000000u) >> 13);
  const std::uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

inline float half_bits_to_float_portable(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
      bits = sign | std::bit_cast<std::uint32_t>(v);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

}  // namespace detail

inline std::uint16_t float_to_half_bits(float f) {
#if defined(__F16C__)
  // The vector intrinsics, not _cvtss_sh: clang implements that one as a macro with a compound
  // literal, which -Wpedantic rejects.
  return static_cast<std::uint16_t>(_mm_cvtsi128_si32(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT)) & 0xffff);
#else
  return detail::float_to_half_bits_portable(f);
#endif
}

inline float half_bits_to_float(std::uint16_t h) {
#if defined(__F16C__)
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
#else
  return detail::half_bits_to_float_portable(h);
#endif
}

// A 2-byte storage type; arithmetic happens in float.
struct half {
  std::uint16_t bits = 0;
  half() = default;
  explicit half(float f) : bits(float_to_half_bits(f)) {}
  static half from_bits(std::uint16_t b) {
    half h;
    h.bits = b;
    return h;
  }
  explicit operator float() const { return half_bits_to_float(bits); }
  float to_float() const { return half_bits_to_float(bits); }
  friend bool operator==(half a, half b) { return a.bits == b.bits; }
};
static_assert(sizeof(half) == 2, "lowbit::half must be exactly 2 bytes");

// The largest finite half; stats beyond it cannot be stored in an fp16 table.
inline constexpr float half_max = 65504.0f;

}  // namespace lowbit
