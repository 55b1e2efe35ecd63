// CRC-32C against published check values (RFC 3720 appendix B.4, the CRC catalogue).
#include <lowbit/io/checksum.hpp>

#include <random>
#include <vector>

#include "lowbit_catch.hpp"

using namespace lowbit::io;

namespace {
std::vector<std::byte> filled(std::size_t n, auto f) {
  std::vector<std::byte> b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(f(i));
  return b;
}
}  // namespace

TEST_CASE("crc32c: the catalogue check value and RFC 3720 B.4's 32-byte vectors") {
  CHECK(crc32c(std::string_view("123456789")) == 0xE3069283u);
  CHECK(crc32c(std::string_view("")) == 0x00000000u);
  CHECK(crc32c(filled(32, [](std::size_t) { return 0x00; })) == 0x8A9136AAu);
  CHECK(crc32c(filled(32, [](std::size_t) { return 0xFF; })) == 0x62A8AB43u);
  CHECK(crc32c(filled(32, [](std::size_t i) { return i; })) == 0x46DD794Eu);
  CHECK(crc32c(filled(32, [](std::size_t i) { return 31 - i; })) == 0x113FDB5Cu);
  CHECK(crc32c_hex(0xE3069283u) == "e3069283");
  CHECK(crc32c_hex(0x0000000Au) == "0000000a");
}

TEST_CASE("crc32c: incremental updates, the portable and the compiled path agree on every split") {
  std::mt19937 rng(3);
  std::vector<std::byte> data(1000);
  for (auto& b : data) b = static_cast<std::byte>(rng());
  const std::uint32_t whole = crc32c(data);
  CHECK(crc32c_portable(data) == whole);
  for (std::size_t cut = 0; cut <= data.size(); cut += 37) {
    crc32c_state s;
    s.update(std::span(data).first(cut));
    s.update(std::span(data).subspan(cut));
    REQUIRE(s.value() == whole);
  }
  for (std::size_t n = 0; n < 40; ++n)
    REQUIRE(crc32c(std::span(data).first(n)) == crc32c_portable(std::span(data).first(n)));
  // Any single flipped bit changes the checksum (CRC property).
  for (std::size_t bit = 0; bit < 8 * 64; ++bit) {
    auto copy = data;
    copy[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    REQUIRE(crc32c(copy) != whole);
  }
}
