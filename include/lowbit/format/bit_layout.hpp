#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// bit_layout<B>: the one definition of how 32 consecutive b-bit codes of a row sit in a block
// of 4·B bytes. It is the specification every backend follows: bitpack.hpp's pack/unpack and
// random access, and through them the packed matrix's decode, the float64 reference kernel and
// the generic CPU kernel, use it directly; the SIMD unpackers (kernel/cpu/kernels.hpp) and the
// CUDA repack (kernel/cuda/layout.cuh) are written per width and tested against that
// reference (kernel_gemv_test, cuda_test).
//
//   8 bits: byte i = code i.
//   4 bits: byte i (i < 16) = code i | code (i+16) << 4           (ggml's Q4_0 order: one
//           AND and one shift give two runs of 16 codes)
//   2 bits: byte i (i < 8)  = code i | code (i+8) << 2 | code (i+16) << 4 | code (i+24) << 6
//   3 bits: bytes 0..7 = the low two bits of the 32 codes in the 2-bit layout, then
//           bytes 8..11 = a little-endian 32-bit word whose bit j is bit 2 of code j
//           (bit planes 2+1: SIMD unpacks them with shifts and masks, no straddling).
//
// Members of each specialization: bits, block_bytes, planes (the plane widths, low first),
// pack(codes, out), unpack(in, codes), code_at(block, j). A new width is one specialization
// here plus its entry in policy/bits.hpp's supported_bit_widths; visit_bit_width then reaches
// it from every run-time width check.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "lowbit/policy/bits.hpp"

namespace lowbit::inline LOWBIT_ABI {

inline constexpr int codes_per_block = 32;

template <int B>
struct bit_layout;  // one specialization per entry of supported_bit_widths

template <>
struct bit_layout<8> {
  static constexpr int bits = 8;
  static constexpr std::size_t block_bytes = 32;
  static constexpr std::array<int, 1> planes{8};
  static void pack(const std::uint8_t* codes, std::uint8_t* out) { std::memcpy(out, codes, 32); }
  static void unpack(const std::uint8_t* in, std::uint8_t* codes) { std::memcpy(codes, in, 32); }
  static std::uint8_t code_at(const std::uint8_t* block, int j) { return block[j]; }
};

template <>
struct bit_layout<4> {
  static constexpr int bits = 4;
  static constexpr std::size_t block_bytes = 16;
  static constexpr std::array<int, 1> planes{4};
  static void pack(const std::uint8_t* codes, std::uint8_t* out) {
    for (int i = 0; i < 16; ++i) out[i] = static_cast<std::uint8_t>(codes[i] | (codes[i + 16] << 4));
  }
  static void unpack(const std::uint8_t* in, std::uint8_t* codes) {
    for (int i = 0; i < 16; ++i) {
      codes[i] = in[i] & 0xF;
      codes[i + 16] = static_cast<std::uint8_t>(in[i] >> 4);
    }
  }
  static std::uint8_t code_at(const std::uint8_t* block, int j) {
    return j < 16 ? (block[j] & 0xF) : static_cast<std::uint8_t>(block[j - 16] >> 4);
  }
};

template <>
struct bit_layout<2> {
  static constexpr int bits = 2;
  static constexpr std::size_t block_bytes = 8;
  static constexpr std::array<int, 1> planes{2};
  // Only the low two bits of each code are stored (bit_layout<3> reuses this for its low plane).
  static void pack(const std::uint8_t* codes, std::uint8_t* out) {
    for (int i = 0; i < 8; ++i)
      out[i] = static_cast<std::uint8_t>((codes[i] & 3) | ((codes[i + 8] & 3) << 2) | ((codes[i + 16] & 3) << 4) |
                                         ((codes[i + 24] & 3) << 6));
  }
  static void unpack(const std::uint8_t* in, std::uint8_t* codes) {
    for (int i = 0; i < 8; ++i)
      for (int k = 0; k < 4; ++k) codes[i + 8 * k] = (in[i] >> (2 * k)) & 3;
  }
  static std::uint8_t code_at(const std::uint8_t* block, int j) { return (block[j % 8] >> (2 * (j / 8))) & 3; }
};

template <>
struct bit_layout<3> {
  static constexpr int bits = 3;
  static constexpr std::size_t block_bytes = 12;
  static constexpr std::array<int, 2> planes{2, 1};  // bit_layout<2>'s 8 bytes, then a 32-bit word
  static void pack(const std::uint8_t* codes, std::uint8_t* out) {
    bit_layout<2>::pack(codes, out);
    std::uint32_t high = 0;
    for (int j = 0; j < 32; ++j) high |= static_cast<std::uint32_t>((codes[j] >> 2) & 1u) << j;
    for (int k = 0; k < 4; ++k) out[8 + k] = static_cast<std::uint8_t>(high >> (8 * k));
  }
  static void unpack(const std::uint8_t* in, std::uint8_t* codes) {
    bit_layout<2>::unpack(in, codes);
    for (int j = 0; j < 32; ++j) codes[j] |= static_cast<std::uint8_t>(((in[8 + j / 8] >> (j % 8)) & 1u) << 2);
  }
  static std::uint8_t code_at(const std::uint8_t* block, int j) {
    return static_cast<std::uint8_t>(bit_layout<2>::code_at(block, j) | (((block[8 + j / 8] >> (j % 8)) & 1u) << 2));
  }
};

namespace detail {
template <class F, std::size_t... I>
bool visit_bit_width_impl(int bits, F& f, std::index_sequence<I...>) {
  return ((bits == supported_bit_widths[I] ? (f(std::integral_constant<int, supported_bit_widths[I]>{}), true)
                                           : false) ||
          ...);
}
}  // namespace detail

// Calls f(std::integral_constant<int, B>{}) for the run-time width `bits` if it is one of
// supported_bit_widths; returns whether it was.
template <class F>
bool visit_bit_width(int bits, F&& f) {
  return detail::visit_bit_width_impl(bits, f, std::make_index_sequence<supported_bit_widths.size()>{});
}

// Every listed width has its layout, and each layout packs 32 codes into exactly 4·B bytes.
static_assert([] {
  bool ok = true;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((ok = ok && bit_layout<supported_bit_widths[I]>::block_bytes ==
                     static_cast<std::size_t>(4 * supported_bit_widths[I])),
     ...);
  }(std::make_index_sequence<supported_bit_widths.size()>{});
  return ok;
}());

}  // namespace lowbit
