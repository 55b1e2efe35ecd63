// safetensors reader/writer and the strict JSON parser under them: round trips of every
// dtype, hand-written headers, every truncation, crafted inconsistent headers, atomic save.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "io_test_support.hpp"
#include "lowbit/io/json.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit_catch.hpp"

using lowbit::io::parse_json;
using lowbit::io::safetensors_file;
using lowbit::io::safetensors_writer;
using lowbit::io::st_dtype;

namespace {

std::vector<std::byte> file_with_header(std::string header, std::size_t data_bytes, std::uint64_t claimed = 0) {
  std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0});
  const std::uint64_t n = claimed ? claimed : header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

std::string error_of(std::vector<std::byte> bytes) {
  try {
    safetensors_file::from_memory(std::move(bytes));
  } catch (const lowbit::error& e) {
    return e.what();
  }
  return "no error";
}

std::string json_error(std::string_view text) {
  try {
    parse_json(text);
  } catch (const lowbit::error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("json: values, escapes and exact integers", "[io][json]") {
  auto v = parse_json(R"( {"a": [1, -2.5, 3e2, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00",
                          "big": 18446744073709551615, "deep": {"k": {}}, "e": []} )");
  REQUIRE(v.is_object());
  CHECK(v.keys() == std::vector<std::string>{"a", "s", "big", "deep", "e"});
  const auto& a = v.find("a")->items();
  REQUIRE(a.size() == 6);
  CHECK(a[0].as_u64() == 1);
  CHECK(a[1].as_double() == -2.5);
  CHECK(a[2].as_double() == 300.0);
  CHECK_FALSE(a[2].is_u64());  // an exponent makes it a non-integer literal
  CHECK(a[3].as_bool());
  CHECK_FALSE(a[4].as_bool());
  CHECK(a[5].is_null());
  CHECK(v.find("s")->as_string() == "x\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(v.find("big")->as_u64() == 18446744073709551615ull);
  CHECK(v.find("deep")->find("k")->size() == 0);
  CHECK(v.find("missing") == nullptr);
  CHECK(parse_json("1e-400").as_double() == 0.0);
  CHECK(std::isinf(parse_json("-1e400").as_double()));
  CHECK_FALSE(parse_json("18446744073709551616").is_u64());  // 2^64: kept only as a double
  CHECK(parse_json(lowbit::io::json_quote("a\"b\\c\n\x01")).as_string() == "a\"b\\c\n\x01");
}

TEST_CASE("json: strictness and bounds", "[io][json][hostile]") {
  using Catch::Contains;
  CHECK_THAT(json_error(""), Contains("unexpected end"));
  CHECK_THAT(json_error("{\"a\":1,}"), Contains("expected a string key"));
  CHECK_THAT(json_error("[1,]"), Contains("unexpected character"));
  CHECK_THAT(json_error("{\"a\":1,\"a\":2}"), Contains("duplicate key"));
  CHECK_THAT(json_error("01"), Contains("leading zero"));
  CHECK_THAT(json_error("1."), Contains("digit expected"));
  CHECK_THAT(json_error("-"), Contains("invalid number"));
  CHECK_THAT(json_error("NaN"), Contains("unexpected character"));
  CHECK_THAT(json_error("tru"), Contains("invalid literal"));
  CHECK_THAT(json_error("\"abc"), Contains("unterminated string"));
  CHECK_THAT(json_error("\"a\tb\""), Contains("control character"));
  CHECK_THAT(json_error("\"\\x\""), Contains("invalid escape"));
  CHECK_THAT(json_error("\"\\u12zz\""), Contains("hex digit"));
  CHECK_THAT(json_error("\"\\u12\""), Contains("truncated"));
  CHECK_THAT(json_error("\"\\ud800\""), Contains("unpaired surrogate"));
  CHECK_THAT(json_error("\"\\udc00\""), Contains("unpaired surrogate"));
  CHECK_THAT(json_error("\"\xC0\xAF\""), Contains("invalid UTF-8"));          // overlong '/'
  CHECK_THAT(json_error("\"\xED\xA0\x80\""), Contains("invalid UTF-8"));      // encoded surrogate
  CHECK_THAT(json_error("\"\xE2\x82\""), Contains("UTF-8"));                  // truncated sequence
  CHECK_THAT(json_error("{} x"), Contains("after the document"));
  CHECK_THAT(json_error(std::string(100, '[') + std::string(100, ']')), Contains("nesting deeper"));
  CHECK(parse_json(std::string(60, '[') + std::string(60, ']')).is_array());
  CHECK_THAT(json_error(std::string_view("\"\0\"", 3)), Contains("control character"));
  lowbit::io::json_limits small;
  small.max_bytes = 4;
  CHECK_THROWS_WITH(parse_json("[1,2,3]", small), Contains("exceeds the limit"));
}

TEST_CASE("safetensors: round trip of every dtype and the metadata", "[io][safetensors]") {
  safetensors_writer w;
  w.set_metadata("format", "lowbit");
  w.set_metadata("policy", "rtn<bits<3>, group<ic,128>> \"quoted\" é");
  Eigen::MatrixXf m(3, 5);
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) m(i, j) = float(10 * i + j) * 0.5f - 3.0f;  // exact in F16 / BF16
  w.add_matrix("m32", m);
  w.add_matrix("m16", m, st_dtype::f16);
  w.add_matrix("mbf", m, st_dtype::bf16);
  const std::vector<std::uint8_t> codes = {0, 7, 255};
  w.add<std::uint8_t>("codes", {3}, codes);
  const std::vector<std::int32_t> idx = {-1, 2, 1 << 30};
  w.add<std::int32_t>("idx", {3, 1}, idx);
  const std::vector<std::int64_t> i64 = {-5, 1ll << 40};
  w.add<std::int64_t>("i64", {2}, i64);
  const std::vector<double> f64 = {0.1, -2.0};
  w.add<double>("f64", {2}, f64);
  const std::vector<lowbit::half> h = {lowbit::half(1.5f), lowbit::half(-0.25f)};
  w.add<lowbit::half>("h", {2}, h);
  w.add<float>("empty", {0, 4}, std::span<const float>{});
  const float scalar = 42.0f;
  w.add<float>("scalar", {}, std::span<const float>(&scalar, 1));

  const auto bytes = w.bytes();
  std::uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  CHECK(header_len % 8 == 0);  // tensors start 8-byte aligned

  auto f = safetensors_file::from_memory(bytes);
  CHECK(f.metadata("format") == "lowbit");
  CHECK(f.metadata("policy") == "rtn<bits<3>, group<ic,128>> \"quoted\" é");
  CHECK(f.metadata().size() == 2);
  CHECK_THROWS_WITH(f.metadata("nope"), Catch::Contains("no key 'nope'"));
  CHECK(f.load_matrix("m32") == m);
  CHECK(f.load_matrix("m16") == m);
  CHECK(f.load_matrix("mbf") == m);
  CHECK(f.tensor("m16").shape == std::vector<std::uint64_t>{3, 5});
  CHECK(f.tensor("m16").dtype == st_dtype::f16);
  CHECK(f.load<std::uint8_t>("codes") == codes);
  CHECK(f.load<std::int32_t>("idx") == idx);
  CHECK(f.load<std::int64_t>("i64") == i64);
  CHECK(f.load<double>("f64") == f64);
  CHECK(f.load<lowbit::half>("h") == h);
  CHECK(f.load_vector("codes") == std::vector<float>{0, 7, 255});
  CHECK(f.load_vector("idx") == std::vector<float>{-1, 2, float(1 << 30)});
  CHECK(f.load_vector("h") == std::vector<float>{1.5f, -0.25f});
  CHECK(f.load_matrix("empty").size() == 0);
  CHECK(f.load_vector("scalar") == std::vector<float>{42.0f});
  CHECK_THROWS_WITH(f.load<float>("codes"), Catch::Contains("has dtype U8, expected F32"));
  CHECK_THROWS_WITH(f.load_vector("nope"), Catch::Contains("no tensor named 'nope'"));
}

TEST_CASE("safetensors: BF16 and F16 conversions round to nearest even", "[io][safetensors]") {
  safetensors_writer w;
  const std::vector<float> v = {1.0f + std::ldexp(1.0f, -8), 1.0f + std::ldexp(1.0f, -11), 70000.0f};
  w.add_floats("b", {3}, v, st_dtype::bf16);
  w.add_floats("h", {3}, v, st_dtype::f16);
  auto f = safetensors_file::from_memory(w.bytes());
  const auto b = f.load_vector("b"), h = f.load_vector("h");
  CHECK(b[0] == 1.0f);                            // tie → even
  CHECK(b[1] == 1.0f);
  CHECK(b[2] == 70144.0f);                        // bf16 keeps 8 bits: 70000 → 70144
  CHECK(h[0] == 1.0f + std::ldexp(1.0f, -8));     // exact in fp16 (10-bit mantissa)
  CHECK(h[1] == 1.0f);                            // tie → even
  CHECK(std::isinf(h[2]));                        // beyond fp16's range
}

TEST_CASE("safetensors: a hand-written file in the reference layout", "[io][safetensors]") {
  // Two F32 tensors exactly as the reference implementation lays them out.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
      R"("a":{"dtype":"I8","shape":[2,2],"data_offsets":[0,4]},"pad":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})";
  auto bytes = file_with_header(header, 16);
  const float b[2] = {2.5f, -1.0f};
  const std::int8_t a[4] = {-128, 127, 0, 5};
  std::memcpy(bytes.data() + 8 + header.size(), a, 4);
  std::memcpy(bytes.data() + 8 + header.size() + 8, b, 8);
  auto f = safetensors_file::from_memory(bytes);
  CHECK(f.metadata("format") == "pt");
  CHECK(f.load_vector("b") == std::vector<float>{2.5f, -1.0f});
  Eigen::MatrixXf am(2, 2);
  am << -128, 127, 0, 5;
  CHECK(f.load_matrix("a") == am);  // row-major [rows, cols]
  CHECK(f.tensors().size() == 3);
}

TEST_CASE("safetensors: every truncation is a clear error", "[io][safetensors][hostile]") {
  safetensors_writer w;
  w.set_metadata("k", "v");
  const std::vector<float> v = {1, 2, 3, 4, 5};
  w.add<float>("x", {5}, v);
  const std::vector<std::uint8_t> c = {1, 2, 3};
  w.add<std::uint8_t>("c", {3}, c);
  const auto full = w.bytes();
  for (std::size_t n = 0; n < full.size(); ++n) {
    INFO("truncated to " << n << " of " << full.size());
    CHECK_THROWS_AS(safetensors_file::from_memory(std::vector<std::byte>(full.begin(), full.begin() + std::ptrdiff_t(n))),
                    lowbit::error);
  }
  CHECK_NOTHROW(safetensors_file::from_memory(full));
  // Any single corrupted byte: a valid file or a lowbit::error, never a crash.
  for (std::size_t i = 0; i < full.size(); ++i)
    for (int x : {0xFF, 0x20, 0x01}) {
      auto bad = full;
      bad[i] ^= std::byte(x);
      try {
        auto f = safetensors_file::from_memory(bad);
        for (const auto& t : f.tensors()) (void)f.load_vector(t.name);
      } catch (const lowbit::error&) {
      }
    }
}

TEST_CASE("safetensors: crafted inconsistent headers name the problem", "[io][safetensors][hostile]") {
  using Catch::Contains;
  auto t = [](std::string body, std::size_t data = 8) { return error_of(file_with_header(body, data)); };
  CHECK_THAT(error_of(file_with_header("{}", 0, 1ull << 40)), Contains("exceeds the limit"));
  CHECK_THAT(error_of(file_with_header("{}", 0, 1000)), Contains("truncated while reading the JSON header"));
  CHECK_THAT(error_of({}), Contains("truncated while reading the header length"));
  CHECK_THAT(t("[]"), Contains("not a JSON object"));
  CHECK_THAT(t("{"), Contains("invalid header"));
  CHECK_THAT(t(R"({"__metadata__":{"a":1}})", 0), Contains("is not a string"));
  CHECK_THAT(t(R"({"__metadata__":[]})", 0), Contains("must be an object"));
  CHECK_THAT(t(R"({"x":1})"), Contains("is not an object"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[2]}})"), Contains("exactly dtype, shape and data_offsets"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})"), Contains("exactly"));
  CHECK_THAT(t(R"({"x":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})"), Contains("unknown dtype 'Q4'"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})"), Contains("non-negative"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})"), Contains("non-negative"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})"), Contains("shape is not an array"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})"),
             Contains("overflows"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})"), Contains("[begin, end]"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})"), Contains("outside the data buffer"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}})"), Contains("truncated file?"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})"), Contains("need 12"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"), Contains("gap or overlap"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"),
             Contains("gap or overlap"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})"), Contains("cover 4 bytes of the 8-byte"));
  CHECK_THAT(t(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"),
             Contains("duplicate key"));
  CHECK(t(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}    )") == "no error");  // padding is allowed
}

TEST_CASE("safetensors: writer validation and atomic save", "[io][safetensors]") {
  safetensors_writer w;
  CHECK_THROWS_WITH(w.add("__metadata__", st_dtype::u8, {1}, std::vector<std::byte>(1)), Catch::Contains("reserved"));
  CHECK_THROWS_WITH(w.add("x", st_dtype::f32, {2}, std::vector<std::byte>(4)), Catch::Contains("expected 8"));
  CHECK_THROWS_WITH(w.set_metadata("k", "\xFF"), Catch::Contains("not valid UTF-8"));
  w.add("x", st_dtype::u8, {1}, std::vector<std::byte>(1));
  CHECK_THROWS_WITH(w.add("x", st_dtype::u8, {1}, std::vector<std::byte>(1)), Catch::Contains("duplicate tensor"));
  CHECK_THROWS_WITH(w.add_floats("y", {1}, std::vector<float>{1.0f}, st_dtype::i32), Catch::Contains("F32, F16 or BF16"));

  const auto dir = std::filesystem::temp_directory_path() / "lowbit_io_safetensors_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "m.safetensors").string();
  w.set_metadata("version", "1");
  w.write(path);
  w.set_metadata("version", "2");
  w.write(path);  // replaces the file in one step
  auto f = safetensors_file::open(path);
  CHECK(f.metadata("version") == "2");
  for (const auto& e : std::filesystem::directory_iterator(dir)) CHECK(e.path().filename() == "m.safetensors");
  CHECK_THROWS_WITH(w.write((dir / "no/such/dir/x.safetensors").string()), Catch::Contains("temporary file"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("safetensors: the real all-MiniLM-L6-v2 file", "[io][safetensors][model]") {
  const auto path = lowbit_test::assets() / "all-MiniLM-L6-v2" / "model.safetensors";
  if (!std::filesystem::exists(path)) {
    WARN("SKIPPED: " << path << " not found; run scripts/fetch-assets --minilm");
    return;
  }
  auto f = safetensors_file::open(path.string());
  CHECK(f.tensors().size() == 104);  // 103 F32 + the I64 position ids
  CHECK(f.metadata("format") == "pt");
  const auto& emb = f.tensor("embeddings.word_embeddings.weight");
  CHECK(emb.shape == std::vector<std::uint64_t>{30522, 384});
  const auto q = f.load_matrix("encoder.layer.0.attention.self.query.weight");
  CHECK(q.rows() == 384);
  CHECK(q.cols() == 384);
  CHECK(q.allFinite());
  const auto pos = f.load<std::int64_t>("embeddings.position_ids");
  REQUIRE(pos.size() == 512);
  for (std::size_t i = 0; i < pos.size(); ++i) CHECK(pos[i] == std::int64_t(i));
}
