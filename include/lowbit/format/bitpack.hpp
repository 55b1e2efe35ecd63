#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Bit packing of weight codes, at run-time widths: whole rows of codes to blocks of 32 in
// the layouts of format/bit_layout.hpp (the one definition of each width's bytes). A block of
// b-bit codes takes exactly 4*b bytes (3 bits stay 3 bits: no padding to 4). A row of `n`
// codes takes ceil(n/32) blocks; the padding codes of the last block are 0.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "lowbit/core/error.hpp"
#include "lowbit/format/bit_layout.hpp"

namespace lowbit::inline LOWBIT_ABI {

inline constexpr std::size_t bytes_per_block(int bits) { return static_cast<std::size_t>(4 * bits); }

inline constexpr std::size_t packed_row_bytes(std::ptrdiff_t n_codes, int bits) {
  return static_cast<std::size_t>((n_codes + codes_per_block - 1) / codes_per_block) * bytes_per_block(bits);
}

// Packs one block of 32 codes (each < 2^bits) into 4*bits bytes.
inline void pack_block(const std::uint8_t* codes, std::uint8_t* out, int bits) {
  if (!visit_bit_width(bits, [&](auto b) { bit_layout<b()>::pack(codes, out); }))
    detail::fail("pack_block: unsupported bit width ", bits, " (expected ", supported_bit_widths_text, ")");
}

// Inverse of pack_block: 4*bits bytes → 32 codes.
inline void unpack_block(const std::uint8_t* in, std::uint8_t* codes, int bits) {
  if (!visit_bit_width(bits, [&](auto b) { bit_layout<b()>::unpack(in, codes); }))
    detail::fail("unpack_block: unsupported bit width ", bits, " (expected ", supported_bit_widths_text, ")");
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
  const std::uint8_t* block = row + static_cast<std::size_t>(j / codes_per_block) * bytes_per_block(bits);
  const int w = static_cast<int>(j % codes_per_block);
  std::uint8_t code = 0;
  if (!visit_bit_width(bits, [&](auto b) { code = bit_layout<b()>::code_at(block, w); }))
    detail::fail("packed_code_at: unsupported bit width ", bits, " (expected ", supported_bit_widths_text, ")");
  return code;
}

}  // namespace lowbit
