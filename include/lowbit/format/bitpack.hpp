#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Bit packing of weight codes. One layout for every backend's reference:
// codes are packed in blocks of 32 consecutive codes of one row; a block of b-bit codes
// takes exactly 4*b bytes (3 bits stay 3 bits: no padding to 4).
//   8 bits: byte i = code i.
//   4 bits: byte i (i < 16) = code i | code (i+16) << 4           (ggml's Q4_0 order: one
//           AND and one shift give two runs of 16 codes)
//   2 bits: byte i (i < 8)  = code i | code (i+8) << 2 | code (i+16) << 4 | code (i+24) << 6
//   3 bits: bytes 0..7 = the low two bits of the 32 codes in the 2-bit layout, then
//           bytes 8..11 = a little-endian 32-bit word whose bit j is bit 2 of code j
//           (bit planes 2+1: SIMD unpacks them with shifts and masks, no straddling).
// A row of `n` codes takes ceil(n/32) blocks; the padding codes of the last block are 0.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "lowbit/core/error.hpp"
#include "lowbit/policy/bits.hpp"

namespace lowbit::inline LOWBIT_ABI {

inline constexpr int codes_per_block = 32;

inline constexpr std::size_t bytes_per_block(int bits) { return static_cast<std::size_t>(4 * bits); }

inline constexpr std::size_t packed_row_bytes(std::ptrdiff_t n_codes, int bits) {
  return static_cast<std::size_t>((n_codes + codes_per_block - 1) / codes_per_block) * bytes_per_block(bits);
}

// Packs one block of 32 codes (each < 2^bits) into 4*bits bytes.
inline void pack_block(const std::uint8_t* codes, std::uint8_t* out, int bits) {
  switch (bits) {
    case 8:
      std::memcpy(out, codes, 32);
      return;
    case 4:
      for (int i = 0; i < 16; ++i) out[i] = static_cast<std::uint8_t>(codes[i] | (codes[i + 16] << 4));
      return;
    case 2:
      for (int i = 0; i < 8; ++i)
        out[i] = static_cast<std::uint8_t>(codes[i] | (codes[i + 8] << 2) | (codes[i + 16] << 4) |
                                           (codes[i + 24] << 6));
      return;
    case 3: {
      std::uint32_t high = 0;
      for (int i = 0; i < 8; ++i)
        out[i] = static_cast<std::uint8_t>((codes[i] & 3) | ((codes[i + 8] & 3) << 2) |
                                           ((codes[i + 16] & 3) << 4) | ((codes[i + 24] & 3) << 6));
      for (int j = 0; j < 32; ++j) high |= static_cast<std::uint32_t>((codes[j] >> 2) & 1u) << j;
      for (int k = 0; k < 4; ++k) out[8 + k] = static_cast<std::uint8_t>(high >> (8 * k));
      return;
    }
    default:
      detail::fail("pack_block: unsupported bit width ", bits, " (expected 2, 3, 4 or 8)");
  }
}

// Inverse of pack_block: 4*bits bytes → 32 codes.
inline void unpack_block(const std::uint8_t* in, std::uint8_t* codes, int bits) {
  switch (bits) {
    case 8:
      std::memcpy(codes, in, 32);
      return;
    case 4:
      for (int i = 0; i < 16; ++i) {
        codes[i] = in[i] & 0xF;
        codes[i + 16] = in[i] >> 4;
      }
      return;
    case 2:
    case 3: {
      for (int i = 0; i < 8; ++i) {
        codes[i] = in[i] & 3;
        codes[i + 8] = (in[i] >> 2) & 3;
        codes[i + 16] = (in[i] >> 4) & 3;
        codes[i + 24] = (in[i] >> 6) & 3;
      }
      if (bits == 3) {
        std::uint32_t high = 0;
        for (int k = 0; k < 4; ++k) high |= static_cast<std::uint32_t>(in[8 + k]) << (8 * k);
        for (int j = 0; j < 32; ++j) codes[j] |= static_cast<std::uint8_t>(((high >> j) & 1u) << 2);
      }
      return;
    }
    default:
      detail::fail("unpack_block: unsupported bit width ", bits, " (expected 2, 3, 4 or 8)");
  }
}

// Packs a row of n codes into packed_row_bytes(n, bits) bytes (the tail block zero-padded).
inline void pack_row(std::span<const std::uint8_t> codes, std::span<std::uint8_t> out, int bits) {
  const auto n = static_cast<std::ptrdiff_t>(codes.size());
  detail::require(out.size() >= packed_row_bytes(n, bits), "pack_row: output holds ", out.size(),
                  " bytes, the row needs ", packed_row_bytes(n, bits));
  std::uint8_t block[codes_per_block];
  const std::size_t bpb = bytes_per_block(bits);
  for (std::ptrdiff_t b = 0; b * codes_per_block < n; ++b) {
    const std::ptrdiff_t begin = b * codes_per_block;
    const std::ptrdiff_t len = std::min<std::ptrdiff_t>(codes_per_block, n - begin);
    std::memset(block, 0, sizeof block);
    std::memcpy(block, codes.data() + begin, static_cast<std::size_t>(len));
    pack_block(block, out.data() + static_cast<std::size_t>(b) * bpb, bits);
  }
}

inline void unpack_row(std::span<const std::uint8_t> packed, std::span<std::uint8_t> codes, int bits) {
  const auto n = static_cast<std::ptrdiff_t>(codes.size());
  detail::require(packed.size() >= packed_row_bytes(n, bits), "unpack_row: input holds ",
                  packed.size(), " bytes, ", n, " codes need ", packed_row_bytes(n, bits));
  std::uint8_t block[codes_per_block];
  const std::size_t bpb = bytes_per_block(bits);
  for (std::ptrdiff_t b = 0; b * codes_per_block < n; ++b) {
    const std::ptrdiff_t begin = b * codes_per_block;
    const std::ptrdiff_t len = std::min<std::ptrdiff_t>(codes_per_block, n - begin);
    unpack_block(packed.data() + static_cast<std::size_t>(b) * bpb, block, bits);
    std::memcpy(codes.data() + begin, block, static_cast<std::size_t>(len));
  }
}

// Reads code j of a packed row without unpacking its block (random access for small tables,
// e.g. SpQR's quantized statistics).
inline std::uint8_t packed_code_at(const std::uint8_t* row, std::ptrdiff_t j, int bits) {
  const std::uint8_t* b = row + static_cast<std::size_t>(j / codes_per_block) * bytes_per_block(bits);
  const int w = static_cast<int>(j % codes_per_block);
  switch (bits) {
    case 8:
      return b[w];
    case 4:
      return w < 16 ? (b[w] & 0xF) : (b[w - 16] >> 4);
    case 2:
    case 3: {
      std::uint8_t c = (b[w % 8] >> (2 * (w / 8))) & 3;
      if (bits == 3) c |= static_cast<std::uint8_t>(((b[8 + w / 8] >> (w % 8)) & 1u) << 2);
      return c;
    }
    default:
      detail::fail("packed_code_at: unsupported bit width ", bits, " (expected 2, 3, 4 or 8)");
  }
}

}  // namespace lowbit
