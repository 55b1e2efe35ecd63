// Interop layouts: GPTQ and AutoAWQ int32 packing against words built by hand from each
// format's published description, and lowbit ↔ interop round trips.
#include <lowbit/io/interop_autoawq.hpp>
#include <lowbit/rtn.hpp>

#include <cstring>
#include <random>

#include "lowbit_catch.hpp"
#include "test_data.hpp"

using namespace lowbit;
using namespace lowbit::io;
using idx = lowbit::index;

namespace {

// A matrix with chosen codes, scales and zeros, so the expected words can be written down.
template <class PM>
PM hand_matrix(idx rows, idx cols, int zero_offset = 1) {
  PM pm(rows, cols, axis::oc);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(cols));
  for (idx r = 0; r < rows; ++r) {
    for (idx c = 0; c < cols; ++c) row[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>((3 * r + c) % (PM::max_code + 1));
    pm.set_row_codes(r, row);
    for (idx g = 0; g < pm.stat_cols(); ++g) {
      const float z = static_cast<float>(zero_offset + (r + g) % PM::max_code);
      pm.stats().set(pm.stat_index(r, g * pm.group_size()), grid_params{0.5f + 0.25f * static_cast<float>(r) + static_cast<float>(g), z});
    }
  }
  return pm;
}

template <class PM>
int code_of(const PM& pm, idx r, idx c) {
  std::vector<std::uint8_t> row(static_cast<std::size_t>(pm.cols()));
  pm.unpack_row_codes(r, row);
  return row[static_cast<std::size_t>(c)];
}

template <class PM>
void require_same(const PM& a, const PM& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  REQUIRE(std::equal(a.codes().begin(), a.codes().end(), b.codes().begin(), b.codes().end()));
  REQUIRE(a.stats().scales().size() == b.stats().scales().size());
  for (std::size_t i = 0; i < a.stats().scales().size(); ++i) REQUIRE(a.stats().scales()[i] == b.stats().scales()[i]);
  REQUIRE(a.stats().zeros().size() == b.stats().zeros().size());
  for (std::size_t i = 0; i < a.stats().zeros().size(); ++i) REQUIRE(a.stats().zeros()[i] == b.stats().zeros()[i]);
}

using pm4 = packed_matrix<bits<4>, group<oc, 8>>;
using pm3 = packed_matrix<bits<3>, group<oc, 32>>;

}  // namespace

TEST_CASE("GPTQ 4-bit: qweight packs 8 input channels per word, nibble i % 8 (hand-built words)") {
  const auto pm = hand_matrix<pm4>(8, 16);
  const auto t = to_gptq(pm, gptq_checkpoint::v1);
  REQUIRE(t.qweight.size() == 2 * 8);  // [16 * 4 / 32, 8]
  REQUIRE(t.qzeros.size() == 2 * 1);   // [2 groups, 8 * 4 / 32]
  // Published rule: qweight[i / 8, o] |= q[o, i] << 4 (i % 8).
  for (idx k = 0; k < 2; ++k)
    for (idx o = 0; o < 8; ++o) {
      std::uint32_t w = 0;
      for (idx j = 0; j < 8; ++j) w |= static_cast<std::uint32_t>((3 * o + 8 * k + j) % 16) << (4 * j);
      REQUIRE(static_cast<std::uint32_t>(t.qweight[static_cast<std::size_t>(k * 8 + o)]) == w);
    }
  // Output 0's first word holds codes 0..7 in order: 0x76543210.
  CHECK(static_cast<std::uint32_t>(t.qweight[0]) == 0x76543210u);
  // v1 zeros: qzeros[g, o / 8] |= (z - 1) << 4 (o % 8); z = 1 + (o + g) % 15.
  for (idx g = 0; g < 2; ++g) {
    std::uint32_t w = 0;
    for (idx o = 0; o < 8; ++o) w |= static_cast<std::uint32_t>((o + g) % 15) << (4 * o);
    REQUIRE(static_cast<std::uint32_t>(t.qzeros[static_cast<std::size_t>(g)]) == w);
  }
  CHECK(static_cast<std::uint32_t>(t.qzeros[0]) == 0x76543210u);
  // scales [groups, out], g_idx = i / group_size.
  for (idx g = 0; g < 2; ++g)
    for (idx o = 0; o < 8; ++o)
      REQUIRE(t.scales[static_cast<std::size_t>(g * 8 + o)].to_float() == 0.5f + 0.25f * static_cast<float>(o) + static_cast<float>(g));
  for (idx i = 0; i < 16; ++i) REQUIRE(t.g_idx[static_cast<std::size_t>(i)] == i / 8);
  CHECK(t.group_size == 8);
  CHECK_FALSE(t.sym);
  CHECK(gptq_quantization_config(t, gptq_checkpoint::v1) ==
        R"({"quant_method":"gptq","bits":4,"group_size":8,"desc_act":false,"sym":false,"checkpoint_format":"gptq"})");

  // v2 stores the true zero; import of either gives back the same matrix bit for bit.
  const auto t2 = to_gptq(pm, gptq_checkpoint::v2);
  CHECK(static_cast<std::uint32_t>(t2.qzeros[0]) == 0x87654321u);
  require_same(from_gptq<pm4>(t, gptq_checkpoint::v1), pm);
  require_same(from_gptq<pm4>(t2, gptq_checkpoint::v2), pm);
}

TEST_CASE("GPTQ 3-bit: 32 codes in 3 words, codes 10 and 21 straddle (AutoGPTQ's pack loop, by hand)") {
  const auto pm = hand_matrix<pm3>(32, 64);
  const auto t = to_gptq(pm, gptq_checkpoint::v2);
  REQUIRE(t.qweight.size() == static_cast<std::size_t>(6 * 32));
  // AutoGPTQ's loop for one run of 32 codes q[0..31] into words row, row+1, row+2:
  //   w0 = q0..q9 at 3j, q10 << 30;  w1 = q10 >> 2, q11..q20 at 3(j-11)+1, q21 << 31;
  //   w2 = q21 >> 1, q22..q31 at 3(j-22)+2.
  auto pack32 = [](const int* q, std::uint32_t* w) {
    w[0] = w[1] = w[2] = 0;
    for (int j = 0; j < 10; ++j) w[0] |= static_cast<std::uint32_t>(q[j]) << (3 * j);
    w[0] |= static_cast<std::uint32_t>(q[10]) << 30;
    w[1] |= (static_cast<std::uint32_t>(q[10]) >> 2) & 1u;
    for (int j = 11; j < 21; ++j) w[1] |= static_cast<std::uint32_t>(q[j]) << (3 * (j - 11) + 1);
    w[1] |= static_cast<std::uint32_t>(q[21]) << 31;
    w[2] |= (static_cast<std::uint32_t>(q[21]) >> 1) & 3u;
    for (int j = 22; j < 32; ++j) w[2] |= static_cast<std::uint32_t>(q[j]) << (3 * (j - 22) + 2);
  };
  for (idx o = 0; o < 32; ++o)
    for (idx blk = 0; blk < 2; ++blk) {
      int q[32];
      for (int j = 0; j < 32; ++j) q[j] = static_cast<int>((3 * o + 32 * blk + j) % 8);
      std::uint32_t w[3];
      pack32(q, w);
      for (int k = 0; k < 3; ++k)
        REQUIRE(static_cast<std::uint32_t>(t.qweight[static_cast<std::size_t>((3 * blk + k) * 32 + o)]) == w[k]);
    }
  // qzeros pack the 32 outputs of a group the same way, along the output dimension.
  for (idx g = 0; g < 2; ++g) {
    int q[32];
    for (int o = 0; o < 32; ++o) q[o] = static_cast<int>(1 + (o + g) % 7);
    std::uint32_t w[3];
    pack32(q, w);
    for (int k = 0; k < 3; ++k) REQUIRE(static_cast<std::uint32_t>(t.qzeros[static_cast<std::size_t>(g * 3 + k)]) == w[k]);
  }
  require_same(from_gptq<pm3>(t, gptq_checkpoint::v2), pm);
}

TEST_CASE("AWQ GEMM: nibble j of word k holds output 8k + [0,2,4,6,1,3,5,7][j] (hand-built words)") {
  using pm = packed_matrix<bits<4>, group<oc, 16>>;
  pm m(16, 32, axis::oc);
  // Code of (o, i) = (o + i) % 16, so input 0's word for outputs 0..7 holds codes 0..7.
  std::vector<std::uint8_t> row(32);
  for (idx o = 0; o < 16; ++o) {
    for (idx i = 0; i < 32; ++i) row[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>((o + i) % 16);
    m.set_row_codes(o, row);
    for (idx g = 0; g < 2; ++g) m.stats().set(m.stat_index(o, g * 16), grid_params{0.125f * static_cast<float>(1 + o), static_cast<float>((o + 3 * g) % 16)});
  }
  const auto t = to_awq(m);
  REQUIRE(t.qweight.size() == 32 * 2);
  CHECK(static_cast<std::uint32_t>(t.qweight[0]) == 0x75316420u);  // nibbles hold outputs 0,2,4,6,1,3,5,7
  const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (idx i = 0; i < 32; ++i)
    for (idx k = 0; k < 2; ++k) {
      std::uint32_t w = 0;
      for (int j = 0; j < 8; ++j) w |= static_cast<std::uint32_t>((8 * k + order[j] + i) % 16) << (4 * j);
      REQUIRE(static_cast<std::uint32_t>(t.qweight[static_cast<std::size_t>(i * 2 + k)]) == w);
    }
  for (idx g = 0; g < 2; ++g)
    for (idx k = 0; k < 2; ++k) {
      std::uint32_t w = 0;
      for (int j = 0; j < 8; ++j) w |= static_cast<std::uint32_t>((8 * k + order[j] + 3 * g) % 16) << (4 * j);
      REQUIRE(static_cast<std::uint32_t>(t.qzeros[static_cast<std::size_t>(g * 2 + k)]) == w);  // true zeros, no -1
    }
  CHECK(awq_quantization_config(t) == R"({"quant_method":"awq","bits":4,"group_size":16,"zero_point":true,"version":"gemm"})");
  require_same(from_awq<pm>(t), m);
}

TEST_CASE("GPTQ/AWQ import dequantizes to scale * (q - zero) read straight from the tensors") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(32, 128, 11);
  using P = packed_matrix<bits<4>, group<oc, 32>>;
  const auto q = quantize<rtn<bits<4>, group<oc, 32>>>(W);
  const auto t = to_gptq(q.packed(), gptq_checkpoint::v2);
  const Eigen::MatrixXf D = from_gptq<P>(t, gptq_checkpoint::v2).dequantize();
  for (idx o = 0; o < 32; ++o)
    for (idx i = 0; i < 128; ++i) {
      const auto word = static_cast<std::uint32_t>(t.qweight[static_cast<std::size_t>((i / 8) * 32 + o)]);
      const float code = static_cast<float>((word >> (4 * (i % 8))) & 0xF);
      const auto zw = static_cast<std::uint32_t>(t.qzeros[static_cast<std::size_t>((i / 32) * 4 + o / 8)]);
      const float z = static_cast<float>((zw >> (4 * (o % 8))) & 0xF);
      const float s = t.scales[static_cast<std::size_t>((i / 32) * 32 + o)].to_float();
      REQUIRE(D(o, i) == s * (code - z));
    }
  REQUIRE(D == q.dequantize());
  // AWQ agrees with GPTQ on the same matrix.
  REQUIRE(from_awq<P>(to_awq(q.packed())).dequantize() == D);
}

TEST_CASE("GPTQ/AWQ: symmetric and per-channel matrices, fp32 stats, every bit width") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(64, 96, 5);
  auto check = [&]<class M>(M) {
    using P = typename M::packed_type;
    const auto q = quantize<M>(W);
    for (auto f : {gptq_checkpoint::v1, gptq_checkpoint::v2}) {
      if (!P::symmetric && f == gptq_checkpoint::v1) continue;  // RTN may produce zero 0
      const auto t = to_gptq(q.packed(), f);
      CHECK(t.sym == P::symmetric);
      if constexpr (std::is_same_v<typename P::stats_policy, fp16_stats>) {
        require_same(from_gptq<P>(t, f), q.packed());
      } else {  // GPTQ scales are fp16: fp32 stats round to the nearest fp16 (relative 2^-11)
        const Eigen::MatrixXf back = from_gptq<P>(t, f).dequantize(), orig = q.dequantize();
        REQUIRE(((back - orig).array().abs() <= orig.array().abs() * 0x1p-11f + 1e-7f).all());
      }
    }
  };
  check(rtn<bits<4>, group<oc, 32>, symmetric>{});
  check(rtn<bits<2>, group<oc, 32>>{});
  check(rtn<bits<8>, group<oc, per_channel>, symmetric>{});
  check(rtn<bits<4>, group<oc, 16>, fp32_stats, symmetric>{});
  const Eigen::MatrixXf W3 = lowbit_test::gaussian(64, 96, 6);
  const auto q3 = quantize<rtn<bits<3>, group<oc, per_channel>>>(W3);
  const auto t3 = to_gptq(q3.packed(), gptq_checkpoint::v2);
  CHECK(t3.group_size == -1);
  CHECK(t3.scales.size() == 64);
  require_same(from_gptq<std::remove_cvref_t<decltype(q3.packed())>>(t3, gptq_checkpoint::v2), q3.packed());
}

TEST_CASE("GPTQ/AWQ: what the layouts cannot hold is refused with a message naming it") {
  auto pm = hand_matrix<pm4>(8, 16, 0);  // zero point 0 at (0, 0)
  REQUIRE_THROWS_WITH(to_gptq(pm, gptq_checkpoint::v1), Catch::Contains("zero point 0") && Catch::Contains("v2"));
  const auto t = to_gptq(pm, gptq_checkpoint::v2);

  using ic_pm = packed_matrix<bits<4>, group<adaptive, 8>>;
  ic_pm icm(8, 16, axis::ic);
  REQUIRE_THROWS_WITH(to_gptq(icm), Catch::Contains("axis oc") && Catch::Contains("ic"));
  REQUIRE_THROWS_WITH(to_gptq(packed_matrix<bits<4>, group<oc, 8>>(4, 16)), Catch::Contains("out_features 4"));

  REQUIRE_THROWS_WITH((from_gptq<packed_matrix<bits<3>, group<oc, 8>>>(t, gptq_checkpoint::v2)),
                      Catch::Contains("4-bit") && Catch::Contains("bits<3>"));
  REQUIRE_THROWS_WITH((from_gptq<packed_matrix<bits<4>, group<oc, 16>>>(t, gptq_checkpoint::v2)),
                      Catch::Contains("group_size 8") && Catch::Contains("group<oc, 16>"));
  auto act_order = t;
  std::swap(act_order.g_idx[0], act_order.g_idx[15]);
  REQUIRE_THROWS_WITH(from_gptq<pm4>(act_order, gptq_checkpoint::v2), Catch::Contains("act-order"));
  auto short_q = t;
  short_q.qweight.pop_back();
  REQUIRE_THROWS_WITH(from_gptq<pm4>(short_q, gptq_checkpoint::v2), Catch::Contains("qweight has 15"));
  auto nan_scale = t;
  nan_scale.scales[3] = half(std::numeric_limits<float>::quiet_NaN());
  REQUIRE_THROWS_WITH(from_gptq<pm4>(nan_scale, gptq_checkpoint::v2), Catch::Contains("finite"));
  // An asymmetric checkpoint cannot become a symmetric matrix.
  REQUIRE_THROWS_WITH((from_gptq<packed_matrix<bits<4>, group<oc, 8>, no_outliers, fp16_stats, symmetric>>(t, gptq_checkpoint::v2)),
                      Catch::Contains("symmetric"));
  // v1 import adds the 1 back: a stored 0 is zero point 1, as the v1 kernels compute it.
  const auto v1 = from_gptq<pm4>(t, gptq_checkpoint::v1);
  CHECK(v1.params(0, 0).zero == 1.0f);
}

// ---------------------------------------------------------------- GGUF blocks

#include <lowbit/io/interop_gguf.hpp>

namespace {
template <class PM>
PM one_block_row(float scale, float zero, auto code) {
  PM pm(1, 32, axis::oc);
  std::vector<std::uint8_t> row(32);
  for (int j = 0; j < 32; ++j) row[static_cast<std::size_t>(j)] = static_cast<std::uint8_t>(code(j));
  pm.set_row_codes(0, row);
  pm.stats().set(0, grid_params{scale, zero});
  return pm;
}
std::vector<std::uint8_t> as_u8(const std::vector<std::byte>& b) {
  std::vector<std::uint8_t> v(b.size());
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}
using q4s = packed_matrix<bits<4>, group<oc, 32>, no_outliers, fp16_stats, symmetric>;
using q4a = packed_matrix<bits<4>, group<oc, 32>>;
using q8s = packed_matrix<bits<8>, group<oc, 32>, no_outliers, fp16_stats, symmetric>;
}  // namespace

TEST_CASE("GGUF export: Q4_0, Q4_1 and Q8_0 blocks byte by byte (ggml-common.h layouts, by hand)") {
  // Q4_0: fp16 d = 0.5 (0x3800, little-endian), byte j = q[j] | q[j+16] << 4.
  const auto b40 = as_u8(to_gguf_blocks(one_block_row<q4s>(0.5f, 8.0f, [](int j) { return (j * 5) % 16; }), gguf_type::q4_0));
  REQUIRE(b40.size() == 18);
  CHECK(b40[0] == 0x00);
  CHECK(b40[1] == 0x38);
  for (int j = 0; j < 16; ++j) REQUIRE(b40[static_cast<std::size_t>(2 + j)] == (((j * 5) % 16) | ((((j + 16) * 5) % 16) << 4)));
  // Q4_1: d = 0.5, m = -s z = -1.5 (0xBE00), then the same nibbles.
  const auto b41 = as_u8(to_gguf_blocks(one_block_row<q4a>(0.5f, 3.0f, [](int j) { return j % 16; }), gguf_type::q4_1));
  REQUIRE(b41.size() == 20);
  CHECK(b41[0] == 0x00);
  CHECK(b41[1] == 0x38);
  CHECK(b41[2] == 0x00);
  CHECK(b41[3] == 0xBE);
  for (int j = 0; j < 16; ++j) REQUIRE(b41[static_cast<std::size_t>(4 + j)] == (j | (j << 4)));
  // Q8_0: d = 0.25 (0x3400), int8 q = code - 128.
  const auto b80 = as_u8(to_gguf_blocks(one_block_row<q8s>(0.25f, 128.0f, [](int j) { return 128 + 4 * j - 64; }), gguf_type::q8_0));
  REQUIRE(b80.size() == 34);
  CHECK(b80[0] == 0x00);
  CHECK(b80[1] == 0x34);
  for (int j = 0; j < 32; ++j) REQUIRE(static_cast<std::int8_t>(b80[static_cast<std::size_t>(2 + j)]) == 4 * j - 64);
}

TEST_CASE("GGUF: a lowbit model written as Q4_0/Q8_0 reads back in llama.cpp's dequantization bit for bit") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(24, 256, 31);
  const auto q4 = quantize<rtn<bits<4>, group<oc, 128>, symmetric>>(W);
  const auto q8 = quantize<rtn<bits<8>, group<oc, 32>, symmetric>>(W);
  const auto qa = quantize<rtn<bits<4>, group<oc, 32>>>(W);
  gguf_writer w;
  w.set_u32("general.quantization_version", 2);
  add_packed(w, "blk.0.attn_q.weight", q4.packed(), gguf_type::q4_0);
  add_packed(w, "blk.0.attn_k.weight", q8.packed(), gguf_type::q8_0);
  add_packed(w, "blk.0.attn_v.weight", qa.packed(), gguf_type::q4_1);
  const auto f = gguf_file::from_memory(w.bytes());
  CHECK(f.tensor("blk.0.attn_q.weight").dims == std::vector<std::uint64_t>{256, 24});
  REQUIRE(f.load_matrix("blk.0.attn_q.weight") == q4.dequantize());
  REQUIRE(f.load_matrix("blk.0.attn_k.weight") == q8.dequantize());
  // Q4_1 rounds m = -s z to fp16: within half an fp16 ulp of s z per weight.
  const Eigen::MatrixXf v = f.load_matrix("blk.0.attn_v.weight"), vq = qa.dequantize();
  REQUIRE((v - vq).cwiseAbs().maxCoeff() <= 1e-3f * vq.cwiseAbs().maxCoeff());

  // Import gives the very same packed matrices back (groups of 128 = 4 blocks sharing d).
  require_same(from_gguf<std::remove_cvref_t<decltype(q4.packed())>>(f, "blk.0.attn_q.weight"), q4.packed());
  require_same(from_gguf<std::remove_cvref_t<decltype(q8.packed())>>(f, "blk.0.attn_k.weight"), q8.packed());
  const auto back = from_gguf<q4a>(f, "blk.0.attn_v.weight");
  REQUIRE(std::equal(back.codes().begin(), back.codes().end(), qa.codes().begin(), qa.codes().end()));
  REQUIRE((back.dequantize() - v).cwiseAbs().maxCoeff() <= 1e-3f * v.cwiseAbs().maxCoeff());
}

TEST_CASE("GGUF import: ggml-quantized Q4_0/Q8_0 (negative d included) become exact lowbit matrices") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(8, 96, 41);
  gguf_writer w;
  w.add_matrix("a", W, gguf_type::q4_0);
  w.add_matrix("b", W, gguf_type::q8_0);
  w.add_matrix("c", W, gguf_type::q4_1);
  w.add_matrix("f", W, gguf_type::f16);
  const auto f = gguf_file::from_memory(w.bytes());
  const auto a = from_gguf<q4s>(f, "a");
  bool negative = false;
  for (auto s : a.stats().scales()) negative |= s.to_float() < 0.0f;
  CHECK(negative);  // ggml's Q4_0 maps the signed extreme to code 0, so d < 0 happens
  REQUIRE(a.dequantize() == f.load_matrix("a"));
  REQUIRE(from_gguf<q8s>(f, "b").dequantize() == f.load_matrix("b"));
  const Eigen::MatrixXf c = from_gguf<packed_matrix<bits<4>, group<oc, 32>, no_outliers, fp32_stats>>(f, "c").dequantize();
  const Eigen::MatrixXf cref = f.load_matrix("c");
  REQUIRE((c - cref).cwiseAbs().maxCoeff() <= 1e-5f * cref.cwiseAbs().maxCoeff());

  REQUIRE_THROWS_WITH(from_gguf<q8s>(f, "a"), Catch::Contains("4-bit Q4_0") && Catch::Contains("bits<8>"));
  REQUIRE_THROWS_WITH(from_gguf<q4s>(f, "c"), Catch::Contains("asymmetric"));
  REQUIRE_THROWS_WITH(from_gguf<q4s>(f, "f"), Catch::Contains("F16"));
  REQUIRE_THROWS_WITH((from_gguf<packed_matrix<bits<4>, group<oc, 64>, no_outliers, fp16_stats, symmetric>>(f, "a")),
                      Catch::Contains("different scales"));
}

TEST_CASE("GGUF export: matrices without a block-exact form need an explicit requantize") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(8, 64, 51);
  const auto q3 = quantize<rtn<bits<3>, group<oc, 32>>>(W);
  REQUIRE_THROWS_WITH(to_gguf_blocks(q3.packed(), gguf_type::q4_0), Catch::Contains("requantize") && Catch::Contains("3"));
  const auto qic = quantize<rtn<bits<4>, group<ic, 32>, symmetric>>(W);
  REQUIRE_THROWS_WITH(to_gguf_blocks(qic.packed(), gguf_type::q4_0), Catch::Contains("axis oc"));
  const auto q16 = quantize<rtn<bits<4>, group<oc, 16>, symmetric>>(W);
  REQUIRE_THROWS_WITH(to_gguf_blocks(q16.packed(), gguf_type::q4_0), Catch::Contains("group size 16"));
  // Requantized Q8_0 of a 3-bit matrix: ggml's rounding of the dequantized weights.
  gguf_writer w;
  add_packed(w, "x", q3.packed(), gguf_type::q8_0, gguf_export::requantize);
  const auto f = gguf_file::from_memory(w.bytes());
  const Eigen::MatrixXf x = f.load_matrix("x"), d3 = q3.dequantize();
  REQUIRE((x - d3).cwiseAbs().maxCoeff() <= d3.cwiseAbs().maxCoeff() / 127.0f);
}

TEST_CASE("GPTQ/AWQ tensors in a safetensors checkpoint: written, listed, read back, checked") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(32, 64, 61);
  using P = packed_matrix<bits<4>, group<oc, 32>>;
  const auto q = quantize<rtn<bits<4>, group<oc, 32>>>(W);
  safetensors_writer w;
  add_gptq(w, "model.layers.0.self_attn.q_proj", to_gptq(q.packed(), gptq_checkpoint::v2));
  add_awq(w, "model.layers.0.self_attn.k_proj", to_awq(q.packed()));
  const auto f = safetensors_file::from_memory(w.bytes());
  CHECK(f.tensor("model.layers.0.self_attn.q_proj.qweight").shape == std::vector<std::uint64_t>{8, 32});
  CHECK(f.tensor("model.layers.0.self_attn.q_proj.qzeros").shape == std::vector<std::uint64_t>{2, 4});
  CHECK(f.tensor("model.layers.0.self_attn.k_proj.qweight").shape == std::vector<std::uint64_t>{64, 4});
  const auto g = read_gptq(f, "model.layers.0.self_attn.q_proj", 4, 32, false);
  require_same(from_gptq<P>(g, gptq_checkpoint::v2), q.packed());
  require_same(from_awq<P>(read_awq(f, "model.layers.0.self_attn.k_proj", 32)), q.packed());
  REQUIRE_THROWS_WITH(read_gptq(f, "model.layers.0.self_attn.q_proj", 4, 16, false), Catch::Contains("group_size 16"));
  REQUIRE_THROWS_WITH(read_gptq(f, "model.layers.0.self_attn.q_proj", 5, 32, false), Catch::Contains("bits=5"));
  REQUIRE_THROWS_WITH(read_awq(f, "model.layers.0.self_attn.q_proj", 32), Catch::Contains("scales' shape"));
  REQUIRE_THROWS_WITH(read_awq(f, "nope", 32), Catch::Contains("no tensor named 'nope.qweight'"));
}

TEST_CASE("GGUF import: a Q4_1 zero beyond fp16 is refused for fp16 stats, kept in fp32 (found by fuzzing)") {
  std::vector<std::byte> block(20, std::byte{0x11});
  const half d = half::from_bits(0x0001), m = half(60000.0f);  // d = 2^-24: -m/d = -1e12
  std::memcpy(block.data(), &d.bits, 2);
  std::memcpy(block.data() + 2, &m.bits, 2);
  gguf_writer w;
  w.add_tensor("t", {32, 1}, gguf_type::q4_1, block);
  const auto f = gguf_file::from_memory(w.bytes());
  REQUIRE_THROWS_WITH(from_gguf<q4a>(f, "t"), Catch::Contains("import into fp32_stats"));
  const auto pm = from_gguf<packed_matrix<bits<4>, group<oc, 32>, no_outliers, fp32_stats>>(f, "t");
  const Eigen::MatrixXf x = pm.dequantize(), ref = f.load_matrix("t");
  REQUIRE(x.allFinite());
  REQUIRE((x - ref).cwiseAbs().maxCoeff() <= 1e-2f);  // 60000 + 2^-24: float resolution there is 0.004
}

TEST_CASE("GGUF export: Q4_K keeps lowbit's codes and re-rounds scales and mins to 6 bits") {
  // Hand-picked stats that 6 bits hold exactly: s_j = (j + 56) / 64 (max 63/64 → d = 1/64),
  // s_j z_j = multiples of 1/8 with max 63/8 (→ dmin = 1/8); then llama.cpp's Q4_K dequantization
  // must give back lowbit's weights up to float rounding (z_j = m_j / s_j is a float quotient),
  // which checks every byte of the layout: a misplaced nibble or 6-bit field is off by >= 1/64.
  using P = packed_matrix<bits<4>, group<oc, 32>, no_outliers, fp32_stats>;
  P pm(2, 256, axis::oc);
  std::vector<std::uint8_t> row(256);
  for (idx r = 0; r < 2; ++r) {
    for (idx c = 0; c < 256; ++c) row[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>((7 * c + r) % 16);
    pm.set_row_codes(r, row);
    for (int j = 0; j < 8; ++j) {
      const float s = static_cast<float>(j + 56) / 64.0f;
      const float m = j == 7 - r ? 63.0f / 8.0f : static_cast<float>(5 * j + 1) / 8.0f;
      pm.stats().set(pm.stat_index(r, 32 * j), grid_params{s, m / s});
    }
  }
  REQUIRE_THROWS_WITH(to_gguf_blocks(pm, gguf_type::q4_k), Catch::Contains("requantize"));
  gguf_writer w;
  add_packed(w, "k", pm, gguf_type::q4_k, gguf_export::requantize);
  const auto f = gguf_file::from_memory(w.bytes());
  const Eigen::MatrixXf x = f.load_matrix("k"), ref = pm.dequantize();
  REQUIRE((x - ref).cwiseAbs().maxCoeff() <= 1e-5f);

  // A real RTN matrix: codes kept, the error is the 6-bit rounding of the stats.
  const Eigen::MatrixXf W = lowbit_test::gaussian(8, 512, 71);
  const auto q = quantize<rtn<bits<4>, group<oc, 32>>>(W);
  gguf_writer w2;
  add_packed(w2, "k", q.packed(), gguf_type::q4_k, gguf_export::requantize);
  const Eigen::MatrixXf y = gguf_file::from_memory(w2.bytes()).load_matrix("k"), yq = q.dequantize();
  const float step = (W.maxCoeff() - W.minCoeff()) / 15.0f;
  REQUIRE((y - yq).cwiseAbs().maxCoeff() <= 0.5f * step);
  REQUIRE((y - W).norm() <= 1.5f * (yq - W).norm());
  REQUIRE_THROWS_WITH(to_gguf_blocks(quantize<rtn<bits<4>, group<oc, 64>>>(W).packed(), gguf_type::q4_k, gguf_export::requantize),
                      Catch::Contains("group<oc, 32>"));
}
