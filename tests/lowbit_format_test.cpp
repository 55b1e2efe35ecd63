// The lowbit file format: bit-exact round trips of every packed type, a whole model, atomic
// writes, and a clear lowbit::error for every truncation, byte flip and inconsistent claim.
#include <lowbit/io/lowbit_format.hpp>
#include <lowbit/rtn.hpp>

#include <filesystem>
#include <random>

#include "lowbit_catch.hpp"
#include "test_data.hpp"

using namespace lowbit;
using namespace lowbit::io;
using idx = lowbit::index;

namespace {

template <class PM>
void require_identical(const PM& a, const PM& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  REQUIRE(a.group_axis() == b.group_axis());
  REQUIRE(std::equal(a.codes().begin(), a.codes().end(), b.codes().begin(), b.codes().end()));
  auto same = [](auto x, auto y) {
    REQUIRE(x.size() == y.size());
    if (!x.empty()) REQUIRE(std::memcmp(x.data(), y.data(), x.size_bytes()) == 0);
  };
  if constexpr (PM::stats_policy::second_level) {
    same(a.stats().scale_codes(), b.stats().scale_codes());
    same(a.stats().zero_codes(), b.stats().zero_codes());
    same(a.stats().second_level(), b.stats().second_level());
  } else {
    same(a.stats().scales(), b.stats().scales());
    same(a.stats().zeros(), b.stats().zeros());
  }
  if constexpr (std::is_same_v<typename PM::outlier_policy, dense_columns>) {
    REQUIRE(a.outliers().columns == b.outliers().columns);
    same(std::span(a.outliers().values), std::span(b.outliers().values));
  }
  if constexpr (std::is_same_v<typename PM::outlier_policy, sparse_outliers>) {
    REQUIRE(a.outliers().row_ptr == b.outliers().row_ptr);
    REQUIRE(a.outliers().col == b.outliers().col);
    same(std::span(a.outliers().values), std::span(b.outliers().values));
  }
  const Eigen::MatrixXf da = a.dequantize(), db = b.dequantize();
  REQUIRE(std::memcmp(da.data(), db.data(), sizeof(float) * static_cast<std::size_t>(da.size())) == 0);
}

// Random codes and stats for any packed type (weak columns / sparse outliers included).
template <class PM>
PM random_packed(idx rows, idx cols, axis ax, std::uint32_t seed, std::vector<std::int32_t> weak = {}) {
  std::mt19937 rng(seed);
  PM pm(rows, cols, ax, weak);
  for (auto& b : pm.codes()) b = static_cast<std::uint8_t>(rng());
  std::uniform_real_distribution<float> u(0.01f, 2.0f);
  for (idx i = 0; i < static_cast<idx>(pm.stats().scales().size()); ++i)
    pm.stats().set(i, grid_params{u(rng), static_cast<float>(rng() % (PM::max_code + 1))});
  if constexpr (std::is_same_v<typename PM::outlier_policy, dense_columns>)
    for (auto& v : pm.outliers().values) v = half(u(rng) - 1.0f);
  if constexpr (std::is_same_v<typename PM::outlier_policy, sparse_outliers>) {
    auto& o = pm.outliers();
    for (idx r = 0; r < rows; ++r) {
      for (idx c = 0; c < cols; ++c)
        if (rng() % 17 == 0) {
          o.col.push_back(static_cast<std::uint16_t>(c));
          o.values.push_back(half(u(rng)));
        }
      o.row_ptr[static_cast<std::size_t>(r) + 1] = static_cast<std::uint32_t>(o.col.size());
    }
  }
  return pm;
}

template <class PM>
void round_trip(const PM& pm) {
  lowbit_writer w;
  w.add("m", pm);
  const auto bytes = w.bytes();
  const auto f = lowbit_file::from_memory(bytes);
  const PM back = f.load<PM>("m");
  require_identical(pm, back);
  // Saving what was loaded gives the very same bytes.
  lowbit_writer w2;
  w2.add("m", back);
  REQUIRE(w2.bytes() == bytes);
  CHECK(f.matrix("m").type_name() == packed_type_name<PM>());
}

std::vector<std::byte> small_file() {
  lowbit_writer w;
  w.add("q", random_packed<packed_matrix<bits<3>, group<oc, 32>>>(4, 40, axis::oc, 1));
  w.add("s", random_packed<packed_matrix<bits<4>, group<oc, 32>, sparse_outliers>>(3, 64, axis::oc, 2));
  w.add_tensor("norm", Eigen::MatrixXf::Constant(1, 5, 0.5f));
  w.set_metadata("method", "rtn");
  return w.bytes();
}

// Rewrites the header checksum after a test edited the header on purpose.
void reseal_header(std::vector<std::byte>& b) {
  std::uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  std::string h(reinterpret_cast<const char*>(b.data()) + 8, n);
  const auto at = h.find(lowbit_writer::header_crc_key) + lowbit_writer::header_crc_key.size();
  h.replace(at, 8, "00000000");
  h.replace(at, 8, crc32c_hex(crc32c(h)));
  std::memcpy(b.data() + 8, h.data(), n);
}
void replace_in_header(std::vector<std::byte>& b, std::string_view from, std::string_view to) {
  std::uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  std::string h(reinterpret_cast<const char*>(b.data()) + 8, n);
  const auto at = h.find(from);
  REQUIRE(at != std::string::npos);
  h.replace(at, from.size(), to);
  std::vector<std::byte> out(8 + h.size());
  n = h.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, h.data(), h.size());
  out.insert(out.end(), b.begin() + 8 + static_cast<std::ptrdiff_t>(n - to.size() + from.size()), b.end());
  b = std::move(out);
  reseal_header(b);
}

}  // namespace

TEST_CASE("lowbit file: every packed type loads back bit-exactly and re-saves to the same bytes") {
  round_trip(random_packed<packed_matrix<bits<2>, group<oc, 16>>>(5, 70, axis::oc, 1));
  round_trip(random_packed<packed_matrix<bits<3>, group<ic, 8>>>(19, 33, axis::ic, 2));
  round_trip(random_packed<packed_matrix<bits<4>, group<oc, per_channel>, no_outliers, fp16_stats, symmetric>>(7, 64, axis::oc, 3));
  round_trip(random_packed<packed_matrix<bits<8>, group<ic, per_channel>, no_outliers, fp32_stats>>(6, 9, axis::ic, 4));
  round_trip(random_packed<packed_matrix<bits<4>, group<adaptive, 32>>>(40, 50, axis::ic, 5));
  round_trip(random_packed<packed_matrix<bits<4>, group<adaptive, 32>>>(40, 50, axis::oc, 6));
  round_trip(random_packed<packed_matrix<bits<3>, group<oc, 16>, dense_columns>>(12, 48, axis::oc, 7, {3, 40, 17}));
  round_trip(random_packed<packed_matrix<bits<4>, group<ic, 4>, sparse_outliers>>(9, 21, axis::ic, 8));
  // A real quantizer's output, too.
  const auto q = quantize<rtn<bits<4>, group<oc, 64>>>(lowbit_test::gaussian(16, 200, 9));
  round_trip(q.packed());
}

TEST_CASE("lowbit file: a model (matrices, float tensors, metadata) that generic safetensors readers list") {
  using P3 = packed_matrix<bits<3>, group<oc, 32>>;
  using P4 = packed_matrix<bits<4>, group<adaptive, 32>, no_outliers, fp16_stats, symmetric>;
  const auto a = random_packed<P3>(8, 64, axis::oc, 11);
  const auto b = random_packed<P4>(16, 32, axis::ic, 12);
  const Eigen::MatrixXf norm = lowbit_test::gaussian(1, 64, 13), emb = lowbit_test::gaussian(10, 8, 14);
  lowbit_writer w;
  w.add("layers.0.attn.q_proj", a);
  w.add("layers.0.mlp.up_proj", b);
  w.add_tensor("layers.0.norm", norm);
  w.add_tensor("embed", emb, st_dtype::f16);
  w.set_metadata("method", "rtn");
  w.set_metadata("source", "test");
  const auto bytes = w.bytes();

  // Bytes 8.. are the magic, and a plain safetensors reader lists every part.
  REQUIRE(std::string_view(reinterpret_cast<const char*>(bytes.data()) + 8, lowbit_magic.size()) == lowbit_magic);
  const auto st = safetensors_file::from_memory(bytes);
  CHECK(st.find("layers.0.attn.q_proj.codes") != nullptr);
  CHECK(st.find("layers.0.attn.q_proj.zeros") != nullptr);
  CHECK(st.find("layers.0.mlp.up_proj.zeros") == nullptr);  // symmetric: no zeros stored
  CHECK(st.tensor("layers.0.attn.q_proj.codes").shape == std::vector<std::uint64_t>{8, 24});  // 64 codes at 3 bits
  CHECK(st.metadata("lowbit.format_version") == "1");

  const auto f = lowbit_file::from_memory(bytes);
  REQUIRE(f.matrices().size() == 2);
  const auto& ib = f.matrix("layers.0.mlp.up_proj");
  CHECK(ib.bits == 4);
  CHECK(ib.group_axis == axis::adaptive);
  CHECK(ib.chosen_axis == axis::ic);
  CHECK(ib.symmetric);
  CHECK(ib.rows == 16);
  CHECK(ib.type_name() == "packed_matrix<bits<4>, group<adaptive, 32>, no_outliers, fp16_stats, symmetric>");
  require_identical(f.load<P3>("layers.0.attn.q_proj"), a);
  require_identical(f.load<P4>("layers.0.mlp.up_proj"), b);
  auto floats = f.tensors();
  std::sort(floats.begin(), floats.end());
  CHECK(floats == std::vector<std::string>{"embed", "layers.0.norm"});
  CHECK(f.load_tensor("layers.0.norm") == norm);
  const Eigen::MatrixXf e = f.load_tensor("embed");
  for (idx i = 0; i < e.size(); ++i) REQUIRE(e.data()[i] == half(emb.data()[i]).to_float());
  CHECK(f.user_metadata() == std::map<std::string, std::string>{{"method", "rtn"}, {"source", "test"}});

  // Run-time dispatch picks the candidate that matches the file.
  int hits = 0;
  dispatch_packed<P4, P3>(f, "layers.0.attn.q_proj", [&](const auto& pm) {
    CHECK(std::is_same_v<std::remove_cvref_t<decltype(pm)>, P3>);
    ++hits;
  });
  CHECK(hits == 1);
  REQUIRE_THROWS_WITH((dispatch_packed<P4>(f, "layers.0.attn.q_proj", [](const auto&) {})),
                      Catch::Contains("bits<3>") && Catch::Contains("none of the 1 types"));
}

TEST_CASE("lowbit file: a type mismatch names both types, and unknown names list what the file holds") {
  const auto f = lowbit_file::from_memory(small_file());
  REQUIRE_THROWS_WITH((f.load<packed_matrix<bits<4>, group<oc, 32>>>("q")),
                      Catch::Contains("is a packed_matrix<bits<3>, group<oc, 32>, no_outliers, fp16_stats, asymmetric>") &&
                          Catch::Contains("asked for a packed_matrix<bits<4>, group<oc, 32>, no_outliers, fp16_stats, asymmetric>"));
  REQUIRE_THROWS_WITH((f.load<packed_matrix<bits<3>, group<oc, 64>>>("q")), Catch::Contains("group<oc, 64>"));
  REQUIRE_THROWS_WITH((f.load<packed_matrix<bits<3>, group<oc, 32>, no_outliers, fp32_stats>>("q")), Catch::Contains("fp32_stats"));
  REQUIRE_THROWS_WITH((f.load<packed_matrix<bits<3>, group<oc, 32>>>("nope")), Catch::Contains("the file holds: q, s"));
  REQUIRE_THROWS_WITH(f.load_tensor("q.codes"), Catch::Contains("no float tensor"));
}

TEST_CASE("lowbit file: every truncation and every flipped byte ends in a lowbit::error") {
  const auto good = small_file();
  REQUIRE_NOTHROW(lowbit_file::from_memory(good));
  for (std::size_t n = 0; n < good.size(); ++n) {
    std::vector<std::byte> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    REQUIRE_THROWS_AS(lowbit_file::from_memory(std::move(cut)), lowbit::error);
  }
  std::mt19937 rng(5);
  for (std::size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] ^= static_cast<std::byte>(1 + rng() % 255);
    REQUIRE_THROWS_AS(lowbit_file::from_memory(std::move(bad)), lowbit::error);
  }
  // Messages say what is wrong.
  auto flipped = good;
  flipped[flipped.size() - 3] ^= std::byte{1};
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(flipped), Catch::Contains("checksum mismatch") && Catch::Contains("corrupt"));
  auto header_flip = good;
  header_flip[60] ^= std::byte{4};
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(header_flip), Catch::Contains("header checksum mismatch"));
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(std::vector<std::byte>(good.begin(), good.end() - 1)), Catch::Contains("lowbit buffer"));
}

TEST_CASE("lowbit file: unsupported bit widths, versions and inconsistent descriptors are refused by name") {
  auto five = small_file();
  replace_in_header(five, "bits=3;", "bits=5;");
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(five), Catch::Contains("bits=5 is not a bit width lowbit packs"));
  auto v2 = small_file();
  replace_in_header(v2, R"("lowbit.format_version":"1")", R"("lowbit.format_version":"2")");
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(v2), Catch::Contains("format version 2"));
  auto rows = small_file();
  replace_in_header(rows, "rows=4;", "rows=5;");
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(rows), Catch::Contains("'q.codes' has the wrong shape"));
  auto ax = small_file();
  replace_in_header(ax, "group_axis=oc;group=32;axis=oc", "group_axis=oc;group=32;axis=ic");
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(ax), Catch::Contains("contradicts"));
  auto qs = small_file();
  replace_in_header(qs, "stats=fp16_stats;outliers=no_outliers", "stats=quantized_stats<3, 16>;outliers=no_outliers");
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(qs), Catch::Contains("tensor 'q.scale_codes' is missing"));
  auto qs5 = small_file();
  replace_in_header(qs5, "stats=fp16_stats;outliers=no_outliers", "stats=quantized_stats<5, 16>;outliers=no_outliers");
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(qs5), Catch::Contains("stats=quantized_stats<5, 16> is not"));

  // A plain safetensors file is not taken for a lowbit file.
  safetensors_writer plain;
  plain.add_matrix("w", Eigen::MatrixXf::Ones(2, 2));
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(plain.bytes()), Catch::Contains("not a lowbit file"));

  // Sealed, well-formed, but a NaN scale: refused on load, never dequantized into NaNs.
  auto pm = random_packed<packed_matrix<bits<4>, group<oc, 32>>>(2, 32, axis::oc, 3);
  pm.stats().scales()[1] = half(std::numeric_limits<float>::quiet_NaN());
  lowbit_writer w;
  w.add("m", pm);
  const auto f = lowbit_file::from_memory(w.bytes());
  REQUIRE_THROWS_WITH((f.load<packed_matrix<bits<4>, group<oc, 32>>>("m")), Catch::Contains("'m.scales' element 1"));
  // Sparse outliers whose column lies outside the matrix.
  auto sp = random_packed<packed_matrix<bits<4>, group<oc, 32>, sparse_outliers>>(3, 40, axis::oc, 4);
  REQUIRE(!sp.outliers().col.empty());
  sp.outliers().col[0] = 40;
  lowbit_writer ws;
  ws.add("s", sp);
  REQUIRE_THROWS_WITH((lowbit_file::from_memory(ws.bytes()).load<packed_matrix<bits<4>, group<oc, 32>, sparse_outliers>>("s")),
                      Catch::Contains("outlier column 40"));
}

TEST_CASE("lowbit file: writes are atomic, and a failed write leaves the destination and no temporary") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lowbit_format_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto count = [&] { return std::distance(fs::directory_iterator(dir), fs::directory_iterator{}); };
  const auto pm = random_packed<packed_matrix<bits<4>, group<oc, 32>>>(8, 64, axis::oc, 21);
  const std::string path = (dir / "model.lowbit").string();
  save_packed(path, pm);
  require_identical(load_packed<packed_matrix<bits<4>, group<oc, 32>>>(path), pm);
  CHECK(count() == 1);
  // Overwrite keeps exactly one file with the new content.
  const auto pm2 = random_packed<packed_matrix<bits<4>, group<oc, 32>>>(8, 64, axis::oc, 22);
  save_packed(path, pm2);
  require_identical(load_packed<packed_matrix<bits<4>, group<oc, 32>>>(path), pm2);
  CHECK(count() == 1);
  // The destination is a directory: rename fails, nothing is left behind, nothing changes.
  fs::create_directories(dir / "taken" / "inner");
  REQUIRE_THROWS_AS(save_packed((dir / "taken").string(), pm), lowbit::error);
  CHECK(fs::is_directory(dir / "taken" / "inner"));
  CHECK(count() == 2);
  REQUIRE_THROWS_AS(save_packed((dir / "missing" / "x.lowbit").string(), pm), lowbit::error);
  CHECK(count() == 2);
  REQUIRE_THROWS_WITH((load_packed<packed_matrix<bits<4>, group<oc, 32>>>((dir / "absent.lowbit").string())),
                      Catch::Contains("absent.lowbit"));
  fs::remove_all(dir);
}

TEST_CASE("lowbit file: with checksums off, damaged files still end in a lowbit::error or a valid matrix") {
  const auto good = small_file();
  std::mt19937 rng(9);
  int loaded = 0, refused = 0;
  for (int trial = 0; trial < 600; ++trial) {  // the lowbit_file fuzz target goes further
    auto bad = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] ^= static_cast<std::byte>(1 + rng() % 255);
    try {
      const auto f = lowbit_file::from_memory(std::move(bad), "damaged", false);
      for (const auto& m : f.matrices()) {
        dispatch_packed<packed_matrix<bits<3>, group<oc, 32>>, packed_matrix<bits<4>, group<oc, 32>, sparse_outliers>>(
            f, m.name, [&](const auto& pm) {
              const Eigen::MatrixXf d = pm.dequantize();
              REQUIRE(d.allFinite());
            });
      }
      for (const auto& t : f.tensors()) (void)f.load_tensor(t);
      ++loaded;
    } catch (const lowbit::error&) {
      ++refused;
    }
  }
  CHECK(loaded > 0);  // flips in tensor data pass unnoticed without checksums ...
  CHECK(refused > 0);  // ... flips in the structure do not
}

TEST_CASE("lowbit file: finite stats that decode beyond float's range are refused (found by fuzzing)") {
  using P = packed_matrix<bits<8>, group<ic, per_channel>, no_outliers, fp32_stats>;
  auto pm = random_packed<P>(3, 5, axis::ic, 1);
  pm.stats().set(3, grid_params{1.4e36f, 7e22f});
  lowbit_writer w;
  w.add("e", pm);
  REQUIRE_THROWS_WITH(lowbit_file::from_memory(w.bytes()).load<P>("e"), Catch::Contains("stats entry 3") && Catch::Contains("beyond the float range"));
}

#if __has_include(<lowbit/format/quantized_stats_table.hpp>)
TEST_CASE("lowbit file: SpQR matrices (quantized_stats + sparse outliers) load back bit-exactly") {
  using P = packed_matrix<bits<3>, group<oc, 16>, sparse_outliers, quantized_stats<3, 16>>;
  std::mt19937 rng(41);
  P pm(40, 64, axis::oc);
  for (auto& b : pm.codes()) b = static_cast<std::uint8_t>(rng());
  std::uniform_real_distribution<float> u(0.01f, 1.0f), z(0.0f, 7.0f);
  for (idx sc = 0; sc < pm.stat_cols(); ++sc) {
    std::vector<float> s(static_cast<std::size_t>(pm.stat_rows())), zz(s.size());
    for (auto& v : s) v = u(rng);
    for (auto& v : zz) v = z(rng);
    pm.stats().set_column(sc, s, zz);
  }
  auto& o = pm.outliers();
  for (idx r = 0; r < 40; ++r) {
    if (r % 3 == 0) {
      o.col.push_back(static_cast<std::uint16_t>((7 * r) % 64));
      o.values.push_back(half(0.25f * static_cast<float>(r)));
    }
    o.row_ptr[static_cast<std::size_t>(r) + 1] = static_cast<std::uint32_t>(o.col.size());
  }
  round_trip(pm);
  lowbit_writer w;
  w.add("spqr", pm);
  const auto f = lowbit_file::from_memory(w.bytes());
  CHECK(f.matrix("spqr").stats == "quantized_stats<3, 16>");
  CHECK(f.container().tensor("spqr.stats_grids").shape == std::vector<std::uint64_t>{4, 3, 4});  // 4 stat cols, ceil(40/16) groups
  REQUIRE_THROWS_WITH((f.load<packed_matrix<bits<3>, group<oc, 16>, sparse_outliers, quantized_stats<3, 8>>>("spqr")),
                      Catch::Contains("quantized_stats<3, 8>"));
}
#endif
