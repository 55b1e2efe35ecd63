// Storage: fp16 conversion, bit packing and the packed matrix's exact byte accounting.
#include <lowbit/format/packed_matrix.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <string>

#include "lowbit_catch.hpp"

using namespace lowbit;

TEST_CASE("half: portable conversion is exact for every half value and rounds to nearest even") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = detail::half_bits_to_float_portable(h);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(detail::half_bits_to_float_portable(detail::float_to_half_bits_portable(f))));
      continue;
    }
    REQUIRE(detail::float_to_half_bits_portable(f) == h);  // round trip of representable values
  }
  // Hand-worked cases: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 → even (1.0);
  // 1 + 3·2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9 → even (1 + 2^-9).
  CHECK(detail::float_to_half_bits_portable(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
  CHECK(detail::float_to_half_bits_portable(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(detail::float_to_half_bits_portable(65520.0f) == 0x7c00);  // rounds past max → Inf
  CHECK(detail::float_to_half_bits_portable(65519.0f) == 0x7bff);
  CHECK(detail::float_to_half_bits_portable(std::ldexp(1.0f, -25)) == 0x0000);  // tie → even (0)
  CHECK(detail::float_to_half_bits_portable(std::ldexp(1.5f, -25)) == 0x0001);
}

TEST_CASE("half: the hardware path (when compiled in) agrees with the portable one on random floats") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> u;
  for (int i = 0; i < 200000; ++i) {
    const float f = std::bit_cast<float>(u(rng));
    if (std::isnan(f)) continue;
    REQUIRE(float_to_half_bits(f) == detail::float_to_half_bits_portable(f));
  }
}

TEST_CASE("bitpack: pack → unpack is lossless for every width and awkward lengths") {
  std::mt19937 rng(1);
  for (int bits : {2, 3, 4, 8}) {
    for (int n : {1, 5, 31, 32, 33, 64, 100, 257}) {
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(n)), back(static_cast<std::size_t>(n));
      std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
      for (auto& c : codes) c = static_cast<std::uint8_t>(d(rng));
      std::vector<std::uint8_t> packed(packed_row_bytes(n, bits));
      pack_row(codes, packed, bits);
      unpack_row(packed, back, bits);
      REQUIRE(codes == back);
      // Dense: 32 codes take exactly 4*bits bytes (3 bits is not padded to 4).
      REQUIRE(packed.size() == static_cast<std::size_t>((n + 31) / 32 * 4 * bits));
    }
  }
}

TEST_CASE("bitpack: documented block layouts, hand-worked") {
  std::uint8_t codes[32];
  for (int i = 0; i < 32; ++i) codes[i] = static_cast<std::uint8_t>(i % 8);
  std::uint8_t out[32] = {};
  pack_block(codes, out, 3);
  // low planes: byte 0 = code0&3 | (code8&3)<<2 | (code16&3)<<4 | (code24&3)<<6 = 0
  CHECK(out[0] == 0x00);
  // byte 1 = 1 | 1<<2 | 1<<4 | 1<<6 = 0x55
  CHECK(out[1] == 0x55);
  // high plane: bit j set when code j >= 4, i.e. j%8 in 4..7 → 0xF0F0F0F0
  CHECK(out[8] == 0xF0);
  CHECK(out[11] == 0xF0);
  pack_block(codes, out, 4);
  CHECK(out[1] == (1 | (((17) % 8) << 4)));
  CHECK_THROWS_AS(pack_block(codes, out, 5), lowbit::error);
}

TEST_CASE("bit_layout: one layout per listed width, and every width check reads the same list") {
  CHECK(std::string(supported_bit_widths_text) == "2, 3, 4 or 8");
  std::mt19937 rng(3);
  for (const int b : supported_bit_widths) {
    CHECK(is_supported_bit_width(b));
    int visited = 0;
    std::uint8_t codes[32], packed[32] = {}, back[32] = {};
    std::uniform_int_distribution<int> d(0, (1 << b) - 1);
    for (auto& c : codes) c = static_cast<std::uint8_t>(d(rng));
    REQUIRE(visit_bit_width(b, [&](auto w) {
      ++visited;
      CHECK(w() == b);
      CHECK(bit_layout<w()>::block_bytes == static_cast<std::size_t>(4 * b));
      bit_layout<w()>::pack(codes, packed);
      bit_layout<w()>::unpack(packed, back);
      for (int j = 0; j < 32; ++j) CHECK(bit_layout<w()>::code_at(packed, j) == codes[j]);
    }));
    CHECK(visited == 1);
    CHECK(std::equal(codes, codes + 32, back));
    for (int j = 0; j < 32; ++j) CHECK(packed_code_at(packed, j, b) == codes[j]);
  }
  for (const int b : {-1, 0, 1, 5, 6, 7, 9, 16}) {
    CHECK_FALSE(is_supported_bit_width(b));
    CHECK_FALSE(visit_bit_width(b, [](auto) { FAIL("visited an unlisted width"); }));
    std::uint8_t codes[32] = {}, out[64] = {};
    CHECK_THROWS_WITH(pack_block(codes, out, b), Catch::Contains("expected 2, 3, 4 or 8"));
    CHECK_THROWS_WITH(unpack_block(out, codes, b), Catch::Contains("unsupported bit width"));
  }
}

TEST_CASE("packed_matrix: bits_per_weight counts every stored byte") {
  using PM = packed_matrix<bits<3>, group<oc, 128>>;
  PM m(64, 256);
  // codes: 64 rows × 8 blocks × 12 bytes; stats: 64 × 2 groups × (2 + 2) bytes
  CHECK(m.stored_bytes() == 64u * 8 * 12 + 64u * 2 * 4);
  CHECK(m.bits_per_weight() == Approx(3.0 + 32.0 / 128.0));
  using PMI = packed_matrix<bits<4>, group<ic, 64>, no_outliers, fp32_stats, symmetric>;
  PMI k(100, 40);  // rows not a multiple of the group: 2 row groups
  CHECK(k.stat_rows() == 2);
  CHECK(k.stat_cols() == 40);
  CHECK(k.stored_bytes() == 100u * 2 * 16 + 2u * 40 * 4);
  using PMO = packed_matrix<bits<4>, group<oc, 32>, dense_columns>;
  PMO o(8, 64, oc, {5, 1});
  CHECK(o.quantized_cols() == 62);
  CHECK(o.outliers().columns == std::vector<std::int32_t>{1, 5});
  CHECK(o.stored_bytes() == 8u * 2 * 16 + 8u * 2 * 4 + 2 * 4 + 8 * 2 * 2);
}

TEST_CASE("packed_matrix: shapes and weak columns are validated") {
  using PMO = packed_matrix<bits<4>, group<oc, 32>, dense_columns>;
  CHECK_THROWS_WITH(PMO(0, 4), Catch::Contains("empty"));
  CHECK_THROWS_WITH(PMO(4, 4, oc, {4}), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(PMO(4, 4, oc, {1, 1}), Catch::Contains("repeat"));
  using PM = packed_matrix<bits<4>, group<oc, 32>>;
  CHECK_THROWS_WITH(PM(4, 4, ic), Catch::Contains("differs"));
  CHECK_THROWS_WITH(PM(4, 4, oc, {1}), Catch::Contains("dense_columns"));
  using PMS = packed_matrix<bits<4>, group<oc, 32>, sparse_outliers>;
  CHECK_THROWS_WITH(PMS(2, 70000), Catch::Contains("65536"));
}
