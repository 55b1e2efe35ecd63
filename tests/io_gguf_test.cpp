// GGUF reader and writer: every supported block format against hand-computed values, the
// metadata type system, and hostile inputs (every truncation, corrupted fields, crafted counts).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "io_test_support.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_writer.hpp"
#include "lowbit_catch.hpp"

using lowbit::io::gguf_file;
using lowbit::io::gguf_type;
using lowbit::io::gguf_writer;

namespace {

std::byte B(int v) { return static_cast<std::byte>(v & 0xFF); }

void put_u16(std::vector<std::byte>& b, std::size_t at, std::uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

// Reads back one tensor written raw and returns its floats.
std::vector<float> roundtrip(gguf_type type, std::uint64_t n, std::vector<std::byte> data) {
  gguf_writer w;
  w.add_tensor("t", {n}, type, std::move(data));
  auto f = gguf_file::from_memory(w.bytes());
  REQUIRE(f.find("t") != nullptr);
  CHECK(f.find("t")->type == type);
  return f.load_vector("t");
}

}  // namespace

TEST_CASE("gguf: plain scalar types decode exactly", "[io][gguf]") {
  SECTION("F32") {
    const float v[3] = {1.5f, -0.0f, 3.25e-7f};
    std::vector<std::byte> d(12);
    std::memcpy(d.data(), v, 12);
    auto y = roundtrip(gguf_type::f32, 3, d);
    CHECK(y == std::vector<float>{1.5f, -0.0f, 3.25e-7f});
  }
  SECTION("F16: 0x3E00 = 1.5, 0xC080 = -2.25, 0x7BFF = 65504, 0x0001 = 2^-24") {
    std::vector<std::byte> d(8);
    put_u16(d, 0, 0x3E00);
    put_u16(d, 2, 0xC080);
    put_u16(d, 4, 0x7BFF);
    put_u16(d, 6, 0x0001);
    auto y = roundtrip(gguf_type::f16, 4, d);
    CHECK(y == std::vector<float>{1.5f, -2.25f, 65504.0f, std::ldexp(1.0f, -24)});
  }
  SECTION("BF16: the upper 16 bits of a float") {
    std::vector<std::byte> d(4);
    put_u16(d, 0, 0x3FC0);  // 1.5
    put_u16(d, 2, 0xC060);  // -3.5
    CHECK(roundtrip(gguf_type::bf16, 2, d) == std::vector<float>{1.5f, -3.5f});
  }
  SECTION("writer rounds BF16 to nearest even") {
    const std::vector<float> x = {1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -8), -2.0f};
    gguf_writer w;
    w.add_vector("t", x, gguf_type::bf16);
    auto y = gguf_file::from_memory(w.bytes()).load_vector("t");
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even mantissa (1.0);
    // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to 1 + 2^-6.
    CHECK(y == std::vector<float>{1.0f, 1.0f + std::ldexp(1.0f, -6), -2.0f});
  }
}

TEST_CASE("gguf: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 blocks against hand-computed values", "[io][gguf]") {
  SECTION("Q8_0: d = 0.5, q_j = j - 16") {
    std::vector<std::byte> d(34);
    put_u16(d, 0, 0x3800);  // 0.5
    for (int j = 0; j < 32; ++j) d[2 + j] = B(j - 16);
    auto y = roundtrip(gguf_type::q8_0, 32, d);
    for (int j = 0; j < 32; ++j) CHECK(y[j] == 0.5f * float(j - 16));
  }
  SECTION("Q4_0: d = 0.25; low nibbles are weights 0..15, high nibbles 16..31, value (q-8)d") {
    std::vector<std::byte> d(18);
    put_u16(d, 0, 0x3400);  // 0.25
    for (int j = 0; j < 16; ++j) d[2 + j] = B(j | ((15 - j) << 4));
    auto y = roundtrip(gguf_type::q4_0, 32, d);
    for (int j = 0; j < 16; ++j) {
      CHECK(y[j] == 0.25f * float(j - 8));
      CHECK(y[j + 16] == 0.25f * float(15 - j - 8));
    }
    CHECK(y[0] == -2.0f);
    CHECK(y[16] == 1.75f);
  }
  SECTION("Q4_1: d = 0.5, m = -1, value q·d + m") {
    std::vector<std::byte> d(20);
    put_u16(d, 0, 0x3800);
    put_u16(d, 2, 0xBC00);  // -1
    for (int j = 0; j < 16; ++j) d[4 + j] = B(j | (3 << 4));
    auto y = roundtrip(gguf_type::q4_1, 32, d);
    for (int j = 0; j < 16; ++j) {
      CHECK(y[j] == 0.5f * float(j) - 1.0f);
      CHECK(y[j + 16] == 0.5f);  // 3·0.5 − 1
    }
  }
  SECTION("Q5_0: bit j of qh is the fifth bit of weight j, value (q-16)d") {
    std::vector<std::byte> d(22);
    put_u16(d, 0, 0x3C00);  // 1.0
    const std::uint32_t qh = 0x80010001u;  // weights 0, 16 and 31 have the high bit
    std::memcpy(d.data() + 2, &qh, 4);
    for (int j = 0; j < 16; ++j) d[6 + j] = B(0x21);  // low nibble 1, high nibble 2
    auto y = roundtrip(gguf_type::q5_0, 32, d);
    CHECK(y[0] == 1.0f);    // (1 + 16) − 16
    CHECK(y[1] == -15.0f);  // 1 − 16
    CHECK(y[16] == 2.0f);   // (2 + 16) − 16
    CHECK(y[17] == -14.0f);
    CHECK(y[31] == 2.0f);
  }
  SECTION("Q5_1: d = 0.5, m = 2, value q·d + m") {
    std::vector<std::byte> d(24);
    put_u16(d, 0, 0x3800);
    put_u16(d, 2, 0x4000);  // 2.0
    const std::uint32_t qh = 0x00000002u;  // weight 1
    std::memcpy(d.data() + 4, &qh, 4);
    for (int j = 0; j < 16; ++j) d[8 + j] = B(0xF3);
    auto y = roundtrip(gguf_type::q5_1, 32, d);
    CHECK(y[0] == 3.5f);                      // 3·0.5 + 2
    CHECK(y[1] == 0.5f * 19.0f + 2.0f);       // (3 + 16)·0.5 + 2
    CHECK(y[16] == 0.5f * 15.0f + 2.0f);
  }
}

TEST_CASE("gguf: K-quant super-blocks (Q6_K, Q4_K)", "[io][gguf]") {
  SECTION("Q6_K hand-picked weights") {
    std::vector<std::byte> d(210);
    // ql[0] = 0x21: weight 0 takes low nibble 1, weight 64 the high nibble 2.
    d[0] = B(0x21);
    d[32] = B(0x43);  // ql[32]: weight 32 low nibble 3, weight 96 high nibble 4
    d[128] = B(0b11100100);  // qh[0]: bit pairs 0 (w0), 1 (w32), 2 (w64), 3 (w96)
    d[192 + 0] = B(2);       // scale of weights 0..15
    d[192 + 2] = B(3);       // 32..47
    d[192 + 4] = B(-1);      // 64..79
    d[192 + 6] = B(4);       // 96..111
    d[192 + 8] = B(5);       // second half, weights 128..143
    d[64] = B(0x0F);         // ql[64]: first byte of the second half → weight 128 low nibble 15
    put_u16(d, 208, 0x3800);  // d = 0.5
    auto y = roundtrip(gguf_type::q6_k, 256, d);
    CHECK(y[0] == 0.5f * 2 * float((1 | (0 << 4)) - 32));   // -31
    CHECK(y[32] == 0.5f * 3 * float((3 | (1 << 4)) - 32));  // 19 - 32 = -13 → -19.5
    CHECK(y[64] == 0.5f * -1 * float((2 | (2 << 4)) - 32)); // 34 - 32 = 2 → -1
    CHECK(y[96] == 0.5f * 4 * float((4 | (3 << 4)) - 32));  // 52 - 32 = 20 → 40
    CHECK(y[128] == 0.5f * 5 * float(15 - 32));
    CHECK(y[1] == 0.5f * 2 * -32.0f);
    CHECK(y[200] == 0.0f);  // scale 0
  }
  SECTION("Q6_K random block against an element-wise restatement of the layout") {
    std::mt19937 rng(7);
    std::vector<std::byte> d(210);
    for (auto& b : d) b = B(int(rng()));
    put_u16(d, 208, 0x2E66);  // a small positive d
    auto y = roundtrip(gguf_type::q6_k, 256, d);
    const float dd = lowbit::half_bits_to_float(0x2E66);
    for (int i = 0; i < 256; ++i) {
      const int h = i / 128, k = i % 128, g = k / 32, l = k % 32;
      const int ql = int(d[size_t(h * 64 + l + (g & 1) * 32)]);
      const int low = g >= 2 ? ql >> 4 : ql & 15;
      const int high = (int(d[size_t(128 + h * 32 + l)]) >> (2 * g)) & 3;
      const int sc = int(static_cast<std::int8_t>(d[size_t(192 + h * 8 + l / 16 + 2 * g)]));
      CHECK(y[size_t(i)] == dd * float(sc) * float((low | (high << 4)) - 32));
    }
  }
  SECTION("Q4_K: 6-bit scales and mins, value d·sc·q − dmin·m") {
    std::vector<std::byte> d(144);
    put_u16(d, 0, 0x3800);  // d = 0.5
    put_u16(d, 2, 0x3C00);  // dmin = 1
    // scales[12]: sub-block 0: sc = 3, m = 1 (bytes 0 and 4); sub-block 5 (j ≥ 4):
    // sc = (s[9] & 15) | (s[1] >> 6) << 4, m = (s[9] >> 4) | (s[5] >> 6) << 4.
    d[4 + 0] = B(3);
    d[4 + 4] = B(1);
    d[4 + 1] = B(0b01000000);  // sub-block 1: sc = 0 (low 6 bits), sub-block 5's sc high bits = 1
    d[4 + 5] = B(0b10000000);  // sub-block 1: m = 0, sub-block 5's m high bits = 2
    d[4 + 9] = B(0x72);        // sub-block 5: sc low = 2, m low = 7
    d[16 + 0] = B(0x5A);       // byte 0 of sub-block pair 0: w0 = 0xA, w32 = 0x5
    d[16 + 64] = B(0x90);      // pair 2 (sub-blocks 4, 5): w128 = 0, w160 = 9
    auto y = roundtrip(gguf_type::q4_k, 256, d);
    CHECK(y[0] == 0.5f * 3 * 10 - 1.0f * 1);
    CHECK(y[1] == -1.0f);                       // q = 0
    CHECK(y[32] == 0.0f);                       // sub-block 1: sc = 0, m = 0
    CHECK(y[160] == 0.5f * 18 * 9 - 1.0f * 39); // sc = 2 | 1 << 4 = 18, m = 7 | 2 << 4 = 39
    CHECK(y[161] == -39.0f);
  }
}

// Every block format against an independent implementation: random blocks dequantized by
// the `gguf` Python package (numpy), recorded by tests/data/gguf_blocks/make_blocks.py. The
// reader must give the same float32 values, bit for bit (both compute d·sc in float32 first,
// then one multiply and one subtract per weight, so no rounding can differ).
TEST_CASE("gguf: every block format matches the gguf Python package on random blocks", "[io][gguf]") {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "data" / "gguf_blocks" / "blocks.tsv";
  std::ifstream in(path);
  REQUIRE(in.good());
  std::set<std::string> seen;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string name, hex, floats;
    std::uint32_t id = 0;
    std::uint64_t n = 0;
    REQUIRE(std::getline(row, name, '\t'));
    row >> id >> n;
    row.ignore(1);
    REQUIRE(std::getline(row, hex, '\t'));
    REQUIRE(std::getline(row, floats));
    INFO(name);
    const auto type = static_cast<gguf_type>(id);
    REQUIRE(lowbit::io::type_name(type) == name);
    REQUIRE(hex.size() % 2 == 0);
    std::vector<std::byte> data(hex.size() / 2);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = B(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    std::vector<float> expected;
    std::istringstream fs(floats);
    for (std::string v; fs >> v;) expected.push_back(std::strtof(v.c_str(), nullptr));
    REQUIRE(expected.size() == n);
    const auto y = roundtrip(type, n, data);
    REQUIRE(y.size() == n);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (y[i] != expected[i] && mismatches++ < 5) FAIL_CHECK("weight " << i << ": " << y[i] << " != " << expected[i]);
    CHECK(mismatches == 0);
    seen.insert(name);
  }
  CHECK(seen == std::set<std::string>{"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                      "Q6_K"});
}

TEST_CASE("gguf: writer's reference quantizers stay within half a step (Q4_0: one step)", "[io][gguf]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Eigen::MatrixXf w(5, 64);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = nd(rng);
  for (auto type : {gguf_type::q8_0, gguf_type::q4_0, gguf_type::q4_1, gguf_type::f16, gguf_type::f32}) {
    gguf_writer wr;
    wr.add_matrix("w", w, type);
    auto f = gguf_file::from_memory(wr.bytes());
    const auto& t = *f.find("w");
    REQUIRE(t.dims == std::vector<std::uint64_t>{64, 5});  // ne0 = columns
    auto back = f.load_matrix("w");
    REQUIRE(back.rows() == 5);
    REQUIRE(back.cols() == 64);
    for (Eigen::Index r = 0; r < 5; ++r)
      for (Eigen::Index b = 0; b < 2; ++b) {
        auto blk = w.row(r).segment(32 * b, 32);
        const float range = blk.maxCoeff() - blk.minCoeff(), amax = blk.cwiseAbs().maxCoeff();
        float step = 0;
        if (type == gguf_type::q8_0) step = amax / 127;
        // Q4_0 maps the extreme of one sign to code 0, so the other side ends at 7/8 of it
        // and may clip by up to a full step.
        if (type == gguf_type::q4_0) step = 2 * amax / 8;
        if (type == gguf_type::q4_1) step = range / 15;
        if (type == gguf_type::f16) step = amax * 1e-3f;
        const float err = (back.row(r).segment(32 * b, 32) - blk).cwiseAbs().maxCoeff();
        INFO(lowbit::io::type_name(type) << " row " << r << " block " << b);
        CHECK(err <= 0.5f * step * 1.01f + 1e-3f * amax * (type != gguf_type::f32));
      }
  }
}

TEST_CASE("gguf: metadata types and getters", "[io][gguf]") {
  gguf_writer w(64);
  w.set_string("s", "héllo");
  w.set_u32("u", 4000000000u);
  w.set_i32("neg", -5);
  w.set_i32("pos", 7);
  w.set_u64("big", 1ull << 63);
  w.set_f32("f", 0.25f);
  w.set_f64("d", 1e-300);
  w.set_bool("b", true);
  w.set_string_array("sa", {"a", "", "ccc"});
  const std::int32_t ia[] = {-1, 2, 3};
  w.set_i32_array("ia", ia);
  const float fa[] = {0.5f, -1.0f};
  w.set_f32_array("fa", fa);
  w.add_vector("v", std::vector<float>{1, 2, 3});
  auto f = gguf_file::from_memory(w.bytes());
  CHECK(f.alignment() == 64);
  CHECK(f.data_offset() % 64 == 0);
  CHECK(f.find("v")->offset == f.data_offset());
  CHECK(f.get_string("s") == "héllo");
  CHECK(f.get_uint("u") == 4000000000u);
  CHECK(f.get_uint("pos") == 7);
  CHECK(f.get_uint("big") == (1ull << 63));
  CHECK_THROWS_AS(f.get_uint("neg"), lowbit::error);
  CHECK_THROWS_WITH(f.get_uint("neg"), Catch::Contains("must not be negative"));
  CHECK(f.get_float("f") == 0.25);
  CHECK(f.get_float("d") == 1e-300);
  CHECK(f.get_float("pos") == 7.0);
  CHECK(f.get_bool("b"));
  CHECK(f.get_string_array("sa") == std::vector<std::string>{"a", "", "ccc"});
  CHECK(f.get_int_array("ia") == std::vector<std::int64_t>{-1, 2, 3});
  CHECK(f.get_float_array("fa") == std::vector<float>{0.5f, -1.0f});
  CHECK(f.get_float_array("ia") == std::vector<float>{-1, 2, 3});
  CHECK(f.has("s"));
  CHECK_FALSE(f.has("missing"));
  CHECK_THROWS_WITH(f.get_string("missing"), Catch::Contains("'missing' is missing"));
  CHECK_THROWS_WITH(f.get_string("u"), Catch::Contains("has type u32, expected a string"));
  CHECK_THROWS_WITH(f.get_uint("sa"), Catch::Contains("expected a single value"));
  CHECK_THROWS_WITH(f.get_string_array("s"), Catch::Contains("expected an array"));
  CHECK_THROWS_AS(f.get_int_array("sa"), lowbit::error);
  CHECK_THROWS_AS(f.get_uint("b"), lowbit::error);
  CHECK(f.find("nope") == nullptr);
  CHECK_THROWS_WITH(f.load_matrix("nope"), Catch::Contains("no tensor named 'nope'"));
}

namespace {

// A small file exercising every section: metadata of several types, arrays, tensors of
// several types (so truncation hits every kind of field).
std::vector<std::byte> sample_file() {
  gguf_writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab"});
  const float fa[] = {1, 2};
  w.set_f32_array("x", fa);
  std::vector<float> v(64);
  for (int i = 0; i < 64; ++i) v[size_t(i)] = float(i) / 7.0f - 3.0f;
  w.add_vector("norm", std::span<const float>(v.data(), 8));
  w.add_tensor("q", {64}, gguf_type::q4_1, lowbit::io::quantize_blocks(gguf_type::q4_1, v));
  w.add_tensor("e", {32, 2}, gguf_type::q8_0, lowbit::io::quantize_blocks(gguf_type::q8_0, v));
  return w.bytes();
}

}  // namespace

TEST_CASE("gguf: every truncation of a valid file is a clear error", "[io][gguf][hostile]") {
  const auto full = sample_file();
  const auto f = gguf_file::from_memory(full);
  std::uint64_t data_end = 0;
  for (const auto& t : f.tensors()) data_end = std::max(data_end, t.offset + t.n_bytes);
  REQUIRE(data_end <= full.size());
  for (std::size_t n = 0; n < full.size(); ++n) {
    std::vector<std::byte> cut(full.begin(), full.begin() + std::ptrdiff_t(n));
    INFO("truncated to " << n << " of " << full.size() << " bytes");
    if (n < data_end) {
      CHECK_THROWS_AS(gguf_file::from_memory(cut), lowbit::error);
    } else {  // only trailing padding is missing: still a complete file
      CHECK_NOTHROW(gguf_file::from_memory(cut).load_vector("e"));
    }
  }
  CHECK_THROWS_WITH(gguf_file::from_memory(std::vector<std::byte>(full.begin(), full.begin() + 30)),
                    Catch::Contains("truncated"));
}

TEST_CASE("gguf: corrupting any header byte gives a valid file or a lowbit::error, never a crash",
          "[io][gguf][hostile]") {
  const auto full = sample_file();
  const auto header_end = gguf_file::from_memory(full).data_offset();
  for (std::size_t i = 0; i < header_end; ++i)
    for (int x : {0xFF, 0x80, 0x01}) {
      auto bad = full;
      bad[i] ^= B(x);
      try {
        auto f = gguf_file::from_memory(bad);
        for (const auto& t : f.tensors()) {
          if (lowbit::io::type_traits(t.type)->dequantizable) (void)f.load_vector(t.name);
        }
      } catch (const lowbit::error&) {
      }
    }
  SUCCEED("no crash; sanitizers check memory safety");
}

namespace {

struct raw {
  std::vector<std::byte> b;
  void u32(std::uint32_t v) { put(&v, 4); }
  void u64(std::uint64_t v) { put(&v, 8); }
  void str(std::string_view s) {
    u64(s.size());
    put(s.data(), s.size());
  }
  void put(const void* p, std::size_t n) {
    const auto* c = static_cast<const std::byte*>(p);
    b.insert(b.end(), c, c + n);
  }
  void header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
    u32(0x46554747u);
    u32(version);
    u64(n_tensors);
    u64(n_kv);
  }
  void tensor(std::string_view name, std::vector<std::uint64_t> dims, std::uint32_t type, std::uint64_t off) {
    str(name);
    u32(std::uint32_t(dims.size()));
    for (auto d : dims) u64(d);
    u32(type);
    u64(off);
  }
  raw& pad_to(std::size_t n) {
    b.resize(std::max(b.size(), n));
    return *this;
  }
};

std::string error_of(std::vector<std::byte> bytes) {
  try {
    gguf_file::from_memory(std::move(bytes));
  } catch (const lowbit::error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("gguf: crafted inconsistent files name the problem", "[io][gguf][hostile]") {
  using Catch::Contains;
  {
    raw r;
    r.put("GGML", 4);
    r.pad_to(64);
    CHECK_THAT(error_of(r.b), Contains("not a GGUF file"));
  }
  {
    raw r;
    r.header(0, 0, 1);
    CHECK_THAT(error_of(r.b), Contains("version 1 is not supported"));
  }
  {
    raw r;
    r.header(0, 1ull << 60);
    CHECK_THAT(error_of(r.b), Contains("metadata count"));
  }
  {
    raw r;
    r.header(1ull << 40, 0);
    CHECK_THAT(error_of(r.b), Contains("tensor count"));
  }
  {
    raw r;
    r.header(0, 1);
    r.u64(~0ull);  // key length 2^64 - 1
    r.pad_to(200);
    CHECK_THAT(error_of(r.b), Contains("truncated while reading a metadata key"));
  }
  {
    raw r;
    r.header(0, 1);
    r.str("k");
    r.u32(9);
    r.u32(4);
    r.u64(1ull << 61);  // array of 2^61 u32
    r.pad_to(200);
    CHECK_THAT(error_of(r.b), Contains("claims 2305843009213693952 elements"));
  }
  {
    raw r;
    r.header(0, 1);
    r.str("k");
    r.u32(13);
    CHECK_THAT(error_of(r.b), Contains("unknown value type 13"));
  }
  {
    raw r;
    r.header(0, 1);
    r.str("k");
    r.u32(9);
    r.u32(9);
    r.u64(1);
    r.pad_to(100);
    CHECK_THAT(error_of(r.b), Contains("array of arrays"));
  }
  {
    raw r;
    r.header(0, 2);
    r.str("k");
    r.u32(4);
    r.u32(1);
    r.str("k");
    r.u32(4);
    r.u32(2);
    CHECK_THAT(error_of(r.b), Contains("duplicate metadata key 'k'"));
  }
  {
    raw r;
    r.header(0, 1);
    r.str("general.alignment");
    r.u32(4);
    r.u32(48);
    CHECK_THAT(error_of(r.b), Contains("power of two"));
  }
  {
    raw r;
    r.header(0, 1);
    r.str("b");
    r.u32(7);
    r.put("\x02", 1);
    CHECK_THAT(error_of(r.b), Contains("bool value 2"));
  }
  {
    raw r;
    r.header(1, 0);
    r.tensor("t", {1, 1, 1, 1, 1}, 0, 0);
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("has 5 dimensions"));
  }
  {
    raw r;
    r.header(1, 0);
    r.tensor("t", {1ull << 32, 1ull << 32}, 0, 0);
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("overflows"));
  }
  {
    raw r;
    r.header(1, 0);
    r.tensor("t", {1ull << 40, 1ull << 23}, 0, 0);
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("too many elements"));
  }
  {
    raw r;
    r.header(1, 0);
    r.tensor("t", {4}, 4, 0);  // retired Q4_2
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("unknown ggml type 4"));
  }
  {
    raw r;
    r.header(1, 0);
    r.tensor("t", {33}, 2, 0);
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("not a multiple of the Q4_0 block size 32"));
  }
  {
    raw r;
    r.header(1, 0);
    r.tensor("t", {4}, 0, 16);
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("not a multiple of the alignment"));
  }
  {
    raw r;
    r.header(1, 0);
    r.tensor("t", {1000}, 0, 0);  // 4000 bytes, file has less
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("extends past the end of the file"));
  }
  {
    raw r;
    r.header(1, 0);
    r.tensor("t", {4}, 0, ~0ull - 31);  // offset overflow
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("overflows"));
  }
  {
    raw r;
    r.header(2, 0);
    r.tensor("a", {16}, 0, 0);
    r.tensor("b", {16}, 0, 32);  // a spans 64 bytes: overlaps b
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("overlap"));
  }
  {
    raw r;
    r.header(2, 0);
    r.tensor("a", {8}, 0, 0);
    r.tensor("a", {8}, 0, 32);
    CHECK_THAT(error_of(r.pad_to(512).b), Contains("duplicate tensor name 'a'"));
  }
  {  // a consistent hand-made file parses, with the data section aligned to 32
    raw r;
    r.header(1, 0);
    r.tensor("ok", {2}, 0, 0);
    const auto hdr = r.b.size();
    r.pad_to((hdr + 31) / 32 * 32);
    const float v[2] = {4.0f, -1.0f};
    r.put(v, 8);
    auto f = gguf_file::from_memory(r.b);
    CHECK(f.data_offset() == (hdr + 31) / 32 * 32);
    CHECK(f.load_vector("ok") == std::vector<float>{4.0f, -1.0f});
  }
}

TEST_CASE("gguf: write to disk atomically and open through the file path", "[io][gguf]") {
  const auto dir = std::filesystem::temp_directory_path() / "lowbit_io_gguf_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "tiny.gguf").string();
  gguf_writer w;
  w.set_string("general.architecture", "llama");
  Eigen::MatrixXf m(2, 32);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = float(i);
  w.add_matrix("w", m, gguf_type::f32);
  w.write(path);
  auto f = gguf_file::open(path);
  CHECK(f.load_matrix("w") == m);
  CHECK(f.get_string("general.architecture") == "llama");
  for (const auto& e : std::filesystem::directory_iterator(dir))  // no temporary left behind
    CHECK(e.path().filename() == "tiny.gguf");
  CHECK_THROWS_WITH(gguf_file::open((dir / "absent.gguf").string()), Catch::Contains("cannot open"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("gguf: the real SmolLM2 file matches the gguf Python package", "[io][gguf][model]") {
  const auto path = lowbit_test::model_path();
  if (!std::filesystem::exists(path)) {
    WARN("SKIPPED: " << path << " not found; run scripts/fetch-assets (or set LOWBIT_ASSETS)");
    return;
  }
  auto f = gguf_file::open(path.string());
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.get_uint("llama.block_count") == 30);
  CHECK(f.get_uint("llama.embedding_length") == 576);
  CHECK(f.get_uint("llama.attention.head_count") == 9);
  CHECK(f.get_uint("llama.attention.head_count_kv") == 3);
  CHECK(f.get_float("llama.rope.freq_base") == 100000.0);
  CHECK(f.get_string("tokenizer.ggml.pre") == "smollm");
  CHECK(f.tensors().size() == 272);
  // Reference values: gguf 0.19 (GGUFReader + gguf.quants.dequantize), float64 sums.
  struct ref {
    const char* name;
    Eigen::Index rows, cols;
    double sum, sq, w12;
  };
  for (const ref& r : {ref{"token_embd.weight", 49152, 576, -15353.04449415207, 520415.71544763993, -0.0396728515625},
                       ref{"blk.0.ffn_down.weight", 576, 1536, 150.63577270507812, 33220.11995097203, 0.0145263671875},
                       ref{"blk.0.attn_q.weight", 576, 576, 59.22322082519531, 26749.573275085306, -0.19281005859375}}) {
    INFO(r.name);
    const auto w = f.load_matrix(r.name);
    REQUIRE(w.rows() == r.rows);
    REQUIRE(w.cols() == r.cols);
    CHECK(w(1, 2) == float(r.w12));
    CHECK(w.cast<double>().sum() == Approx(r.sum).epsilon(1e-9));
    CHECK(w.cast<double>().squaredNorm() == Approx(r.sq).epsilon(1e-9));
  }
}
