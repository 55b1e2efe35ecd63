#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// CRC-32C (Castagnoli): the checksum of the lowbit file format (header and every tensor).
//
// Why CRC-32C: it detects every burst error up to 32 bits and every odd number of flipped
// bits, it is the checksum of iSCSI (RFC 3720), ext4 and Btrfs, and x86 has an instruction for
// it (SSE4.2 `crc32`), so verifying a multi-GB model costs well under a second.
//   polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value 0xFFFFFFFF, reflected input
//   and output, final XOR 0xFFFFFFFF. Check value: crc32c("123456789") = 0xE3069283.
// The portable path is table-driven slicing-by-8 (eight 256-entry tables, 8 bytes a step);
// the hardware path runs when the translation unit is compiled with SSE4.2. Both give the
// same result for every input (tested).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace lowbit::inline LOWBIT_ABI::io {

namespace detail {

inline constexpr std::uint32_t crc32c_poly_reflected = 0x82F63B78u;

using crc32c_tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr crc32c_tables make_crc32c_tables() {
  crc32c_tables t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ crc32c_poly_reflected : c >> 1;
    t[0][i] = c;
  }
  // t[k][i]: the CRC of byte i followed by k zero bytes, so 8 bytes fold in one step.
  for (std::uint32_t i = 0; i < 256; ++i)
    for (int k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFFu];
  return t;
}

inline constexpr crc32c_tables crc32c_table = make_crc32c_tables();

// Raw update (no pre/post inversion) on the running register `c`.
inline std::uint32_t crc32c_update_portable(std::uint32_t c, const unsigned char* p, std::size_t n) {
  const auto& t = crc32c_table;
  while (n >= 8) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;  // little-endian host (the io readers assert it)
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFFu];
  return c;
}

#if defined(__SSE4_2__)
inline std::uint32_t crc32c_update_hw(std::uint32_t c, const unsigned char* p, std::size_t n) {
  std::uint64_t c64 = c;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c64);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

}  // namespace detail

// Incremental CRC-32C: crc32c c; c.update(a); c.update(b); c.value() == crc32c(a ++ b).
class crc32c_state {
 public:
  void update(std::span<const std::byte> bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
#if defined(__SSE4_2__)
    reg_ = detail::crc32c_update_hw(reg_, p, bytes.size());
#else
    reg_ = detail::crc32c_update_portable(reg_, p, bytes.size());
#endif
  }
  std::uint32_t value() const { return reg_ ^ 0xFFFFFFFFu; }

 private:
  std::uint32_t reg_ = 0xFFFFFFFFu;
};

inline std::uint32_t crc32c(std::span<const std::byte> bytes) {
  crc32c_state s;
  s.update(bytes);
  return s.value();
}
inline std::uint32_t crc32c(std::string_view s) {
  return crc32c(std::as_bytes(std::span<const char>(s.data(), s.size())));
}
// The table-driven path, whatever the compiler flags (tests compare it with the hardware path).
inline std::uint32_t crc32c_portable(std::span<const std::byte> bytes) {
  return detail::crc32c_update_portable(0xFFFFFFFFu, reinterpret_cast<const unsigned char*>(bytes.data()),
                                        bytes.size()) ^
         0xFFFFFFFFu;
}

// Fixed-width lower-case hex, the form checksums take in the file's JSON metadata.
inline std::string crc32c_hex(std::uint32_t v) {
  constexpr char digits[] = "0123456789abcdef";
  std::string s(8, '0');
  for (int i = 7; i >= 0; --i) {
    s[static_cast<std::size_t>(i)] = digits[v & 0xFu];
    v >>= 4;
  }
  return s;
}

}  // namespace lowbit::io
