// lowbit-quantize's model file (tools/lowbit-quantize/model_file.hpp) and its method adapters
// (methods.hpp) on a tiny random Llama model the test builds itself as a real GGUF file:
//   - one model quantized with every method the tool has (a different one per group of
//     linears, so every format the loader reads appears), written, loaded back: the file
//     re-serializes to identical bytes, every weight is identical and so are the logits;
//   - a file refuses to load onto another model;
//   - OWQ's weak-column count against the reference's worked example (seed-reference.md);
//   - AdaDim's block-level choice judges q/k/v on the attention output, against a float64
//     per-token attention written here.
#include <Eigen/Dense>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "lowbit/io/gguf_writer.hpp"
#include "lowbit_catch.hpp"
#include "lowbit-quantize/method_adadim.hpp"
#include "lowbit-quantize/methods.hpp"
#include "lowbit-quantize/model_file.hpp"
#include "model/llama.hpp"
#include "model/sequential.hpp"
#include "test_data.hpp"

namespace lt = lowbit::tools;
using idx = lowbit::index;

namespace {

constexpr int n_layer = 2, n_embd = 64, n_head = 4, n_head_kv = 2, n_ff = 96, n_vocab = 64;

// A GGUF image of a random Llama model (F32 tensors, tied head).
std::vector<std::byte> tiny_gguf(std::uint32_t seed) {
  lowbit::io::gguf_writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", n_layer);
  w.set_u32("llama.embedding_length", n_embd);
  w.set_u32("llama.feed_forward_length", n_ff);
  w.set_u32("llama.attention.head_count", n_head);
  w.set_u32("llama.attention.head_count_kv", n_head_kv);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  const auto F32 = lowbit::io::gguf_type::f32;
  const int kv = n_head_kv * (n_embd / n_head);
  std::uint32_t k = seed * 1000;
  auto norm = [&](int n) {
    Eigen::VectorXf v = Eigen::VectorXf::Ones(n) + lowbit_test::gaussian(n, 1, ++k, 0.1f);
    return std::vector<float>(v.data(), v.data() + n);
  };
  auto mat = [&](int r, int c) { return lowbit_test::gaussian(r, c, ++k, 1.0f / std::sqrt(static_cast<float>(c))); };
  w.add_matrix("token_embd.weight", lowbit_test::gaussian(n_vocab, n_embd, ++k), F32);
  for (int l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    w.add_vector(p + "attn_norm.weight", norm(n_embd));
    w.add_vector(p + "ffn_norm.weight", norm(n_embd));
    Eigen::MatrixXf q = mat(n_embd, n_embd);
    q.col(5) *= 8.0f;  // an outlier input channel: gives OWQ and SpQR something to find
    w.add_matrix(p + "attn_q.weight", q, F32);
    w.add_matrix(p + "attn_k.weight", mat(kv, n_embd), F32);
    w.add_matrix(p + "attn_v.weight", mat(kv, n_embd), F32);
    w.add_matrix(p + "attn_output.weight", mat(n_embd, n_embd), F32);
    w.add_matrix(p + "ffn_gate.weight", mat(n_ff, n_embd), F32);
    w.add_matrix(p + "ffn_up.weight", mat(n_ff, n_embd), F32);
    w.add_matrix(p + "ffn_down.weight", mat(n_embd, n_ff), F32);
  }
  w.add_vector("output_norm.weight", norm(n_embd));
  return w.bytes();
}

lt::llama_model tiny_model(std::uint32_t seed) {
  return lt::llama_model::from_gguf(lowbit::io::gguf_file::from_memory(tiny_gguf(seed), "tiny model"));
}

std::vector<std::int32_t> random_tokens(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, n_vocab - 1);
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = u(rng);
  return t;
}

lt::method_options opts(int bits, int group, lowbit::axis ax = lowbit::axis::oc) {
  lt::method_options o;
  o.bits = bits;
  o.group = group;
  o.group_axis = ax;
  o.awq_windows = 2;
  return o;
}

// Every method of the registry, one per group of linears (block, input tap).
lt::method_fn every_method() {
  auto owq = opts(3, 32);
  owq.target_bits = 3.5;  // the reference's formula gives q/k/v 4 weak columns of 64
  const lt::method_fn by_group[2][4] = {
      {lt::make_method("owq", owq), lt::make_method("awq", opts(4, 32)), lt::make_method("spqr", opts(3, 16)),
       lt::make_method("adadim-rtn", opts(3, 32, lowbit::axis::adaptive))},
      {lt::make_method("gptq", opts(4, 32, lowbit::axis::ic)), lt::make_method("rtn", opts(2, 128)),
       lt::make_method("adadim-gptq", opts(4, 32, lowbit::axis::adaptive)), lt::make_method("spqr", opts(4, 16))}};
  return [=](const lt::group_job& job) { return by_group[job.block_index][static_cast<int>(job.input)](job); };
}

constexpr idx T = 16;

lt::llama_model quantized_tiny_model(std::uint32_t seed) {
  auto m = tiny_model(seed);
  lt::sequential_options so;
  so.window = T;
  so.progress = false;
  lt::quantize_sequential(m, random_tokens(4 * T, 3), every_method(), so);
  return m;
}

struct temp_file {
  std::string path;
  explicit temp_file(const char* name) : path((std::filesystem::temp_directory_path() / name).string()) {}
  ~temp_file() { std::filesystem::remove(path); }
};

}  // namespace

TEST_CASE("model file: every method's linears load back bit-exactly and give identical logits", "[tools][model_file]") {
  const auto m = quantized_tiny_model(1);
  const std::map<std::string, std::string> meta{{"method", "mixed"}, {"source.model", "tiny"}};
  temp_file tmp("lowbit_tools_model_file_test.lowbit");
  const auto bytes = lt::save_model_file(m, meta, tmp.path);
  REQUIRE(std::filesystem::file_size(tmp.path) == bytes.size());

  const auto f = lowbit::io::lowbit_file::open(tmp.path);
  // Every format the tool writes is in this file.
  REQUIRE(f.matrices().size() == 14);
  const auto& q0 = f.matrix("blk.0.attn_q");
  CHECK(q0.outliers == "dense_columns");  // OWQ
  CHECK(q0.weak_columns == 4);
  CHECK(f.matrix("blk.0.ffn_gate").outliers == "sparse_outliers");  // SpQR
  CHECK(f.matrix("blk.0.ffn_gate").stats == "quantized_stats<3, 16>");
  CHECK(f.matrix("blk.0.ffn_down").group_axis == lowbit::axis::adaptive);  // AdaDim-RTN
  CHECK(f.matrix("blk.1.attn_q").group_axis == lowbit::axis::ic);          // GPTQ per-IC
  CHECK(f.matrix("blk.1.attn_output").bits == 2);                          // RTN
  const auto& idx_t = f.index_tensors();
  CHECK(std::find(idx_t.begin(), idx_t.end(), "blk.0.ffn_gate.perm") != idx_t.end());  // SpQR act-order
  const auto& fl = f.tensors();
  CHECK(std::find(fl.begin(), fl.end(), "blk.0.attn_output.input_scale") != fl.end());  // AWQ's 1/s
  CHECK(f.user_metadata().at("method") == "mixed");

  auto back = tiny_model(1);
  lt::load_model_file(back, f, lt::quantized_path::dequantized);
  // Bit-exact: the loaded model serializes to the same bytes (codes, stats, outliers,
  // permutations, scales, norms, metadata).
  CHECK(lt::model_writer(back, meta).bytes() == bytes);
  for (idx l = 0; l < n_layer; ++l)
    for (lt::slot s : lt::all_slots) {
      INFO(lt::linear_name(l, s));
      const auto& a = m.blocks[static_cast<std::size_t>(l)][s];
      const auto& b = back.blocks[static_cast<std::size_t>(l)][s];
      CHECK(b.quantized());
      CHECK(b.bits_per_weight() == a.bits_per_weight());
      CHECK((a.weight().array() == b.weight().array()).all());
    }
  const auto tokens = random_tokens(2 * T, 9);
  auto mm = quantized_tiny_model(1);  // forward() is non-const; same quantization, deterministic
  const Eigen::MatrixXf la = mm.forward(tokens, T), lb = back.forward(tokens, T);
  CHECK((la.array() == lb.array()).all());
  // And the quantized model is not the float one.
  auto fm = tiny_model(1);
  CHECK((fm.forward(tokens, T) - la).cwiseAbs().maxCoeff() > 1e-3f);

  // The packed-kernel path of the loaded model runs the same weights.
  auto bk = tiny_model(1);
  lt::load_model_file(bk, f, lt::quantized_path::kernel);
  const Eigen::MatrixXf lk = bk.forward(tokens, T);
  CHECK((lk - lb).cwiseAbs().maxCoeff() <= 1e-3f * lb.cwiseAbs().maxCoeff());
}

TEST_CASE("model file: a file does not load onto another model, nor a damaged one", "[tools][model_file]") {
  const auto m = quantized_tiny_model(1);
  temp_file tmp("lowbit_tools_model_file_test_2.lowbit");
  auto bytes = lt::save_model_file(m, {{"source.model", "tiny-1.gguf"}}, tmp.path);
  auto other = tiny_model(2);  // same shape, other weights
  CHECK_THROWS_WITH(lt::load_model_file(other, lowbit::io::lowbit_file::open(tmp.path), lt::quantized_path::dequantized),
                    Catch::Contains("does not belong to this model") && Catch::Contains("tiny-1.gguf"));
  bytes[bytes.size() - 3] ^= std::byte{0x10};  // a flipped bit in the last tensor
  CHECK_THROWS_WITH(lowbit::io::lowbit_file::from_memory(bytes, "damaged"), Catch::Contains("checksum mismatch"));
}

TEST_CASE("owq: weak columns per linear follow the reference's formula (LLaMA-7B worked example)", "[tools][owq]") {
  // seed-reference.md §2.3: LLaMA-7B (d = 4096, ffn = 11008), w3 at 3.01 → q, k, v, o = 6,
  // up = gate = 2, down = 6; the same counts at w4 / 4.01.
  for (int b : {3, 4}) {
    const double t = b + 0.01;
    CHECK(lt::owq_reference_weak_columns(lt::slot::q, 4096, b, t) == 6);
    CHECK(lt::owq_reference_weak_columns(lt::slot::o, 4096, b, t) == 6);
    CHECK(lt::owq_reference_weak_columns(lt::slot::gate, 4096, b, t) == 2);
    CHECK(lt::owq_reference_weak_columns(lt::slot::up, 4096, b, t) == 2);
    CHECK(lt::owq_reference_weak_columns(lt::slot::down, 11008, b, t) == 6);
  }
  // No more than leaves one column to quantize; zero budget, zero columns.
  CHECK(lt::owq_reference_weak_columns(lt::slot::q, 8, 3, 15.0) == 6);
  CHECK(lt::owq_reference_weak_columns(lt::slot::q, 4096, 3, 3.0) == 0);
}

TEST_CASE("option errors name the flag and what is expected", "[tools][cli]") {
  CHECK_THROWS_WITH(lt::make_method("spqr", opts(3, 16, lowbit::axis::ic)), Catch::Contains("--method spqr needs --axis oc"));
  CHECK_THROWS_WITH(lt::make_method("spqr", opts(3, 0)), Catch::Contains("SpQR has no per-channel mode"));
  auto o = opts(3, 16);
  o.target_bits = 3.5;
  CHECK_THROWS_WITH(lt::make_method("spqr", o), Catch::Contains("--target-bits is not supported"));
  o = opts(3, 32);
  o.target_bits = 2.5;
  CHECK_THROWS_WITH(lt::make_method("owq", o), Catch::Contains("must lie in [--bits, 16)"));
  CHECK_THROWS_WITH(lt::make_method("awq", opts(4, 32, lowbit::axis::ic)), Catch::Contains("--method awq needs --axis oc"));
  CHECK_THROWS_WITH(lt::make_method("awq-gptq", opts(4, 32, lowbit::axis::ic)),
                    Catch::Contains("--method awq-gptq needs --axis oc"));
}

TEST_CASE("awq-gptq: AWQ's scales, then GPTQ on the scaled weights (a composition of two methods)", "[tools][model_file]") {
  const auto run = [](const char* name) {
    auto m = tiny_model(5);
    lt::sequential_options so;
    so.window = T;
    so.progress = false;
    lt::quantize_sequential(m, random_tokens(4 * T, 3), lt::make_method(name, opts(3, 32)), so);
    return m;
  };
  const auto awq = run("awq"), gptq = run("gptq"), both = run("awq-gptq");
  for (const lt::slot s : lt::all_slots) {
    INFO("slot " << lt::slot_name(s));
    const Eigen::MatrixXf W_awq = awq.blocks[1][s].weight(), W_gptq = gptq.blocks[1][s].weight(),
                          W_both = both.blocks[1][s].weight();
    // Neither method alone: GPTQ's error feedback moved AWQ's codes, AWQ's scales moved GPTQ's.
    CHECK((W_both - W_awq).norm() > 0.0f);
    CHECK((W_both - W_gptq).norm() > 0.0f);
    CHECK(both.blocks[1][s].bits_per_weight() == awq.blocks[1][s].bits_per_weight());
  }
  // It round-trips through the model file like every other method's linears.
  temp_file tmp("lowbit_tools_awq_gptq_test.lowbit");
  lt::save_model_file(both, {{"method", "awq-gptq"}}, tmp.path);
  auto back = tiny_model(5);
  lt::load_model_file(back, lowbit::io::lowbit_file::open(tmp.path), lt::quantized_path::dequantized);
  for (const lt::slot s : lt::all_slots) CHECK((back.blocks[1][s].weight().array() == both.blocks[1][s].weight().array()).all());
}

namespace {
// float64, per token: o_proj · attention(rope(Wq x), rope(Wk x), Wv x) over windows of T.
Eigen::MatrixXd attention_block_ref(const lt::llama_model& m, const Eigen::MatrixXf& Wq, const Eigen::MatrixXf& Wk,
                                    const Eigen::MatrixXf& Wv, const Eigen::MatrixXf& Wo, const Eigen::MatrixXf& X) {
  const int hd = static_cast<int>(m.cfg.head_dim()), N = static_cast<int>(X.cols());
  auto rope = [&](Eigen::VectorXd& v, int heads, int pos) {
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const double th = pos / std::pow(m.cfg.rope_base, 2.0 * i / hd);
        const double a = v(h * hd + 2 * i), b = v(h * hd + 2 * i + 1);
        v(h * hd + 2 * i) = a * std::cos(th) - b * std::sin(th);
        v(h * hd + 2 * i + 1) = a * std::sin(th) + b * std::cos(th);
      }
  };
  std::vector<Eigen::VectorXd> q(N), k(N), v(N);
  for (int t = 0; t < N; ++t) {
    const Eigen::VectorXd x = X.col(t).cast<double>();
    q[t] = Wq.cast<double>() * x;
    k[t] = Wk.cast<double>() * x;
    v[t] = Wv.cast<double>() * x;
    rope(q[t], static_cast<int>(m.cfg.n_head), t % T);
    rope(k[t], static_cast<int>(m.cfg.n_head_kv), t % T);
  }
  Eigen::MatrixXd out(Wo.rows(), N);
  for (int t = 0; t < N; ++t) {
    Eigen::VectorXd att = Eigen::VectorXd::Zero(Wq.rows());
    const int w0 = t / T * T;
    for (int h = 0; h < m.cfg.n_head; ++h) {
      const int g = h / static_cast<int>(m.cfg.n_head / m.cfg.n_head_kv);
      std::vector<double> sc;
      double mx = -1e300, z = 0;
      for (int s = w0; s <= t; ++s) {
        sc.push_back(q[t].segment(h * hd, hd).dot(k[s].segment(g * hd, hd)) / std::sqrt(static_cast<double>(hd)));
        mx = std::max(mx, sc.back());
      }
      for (auto& e : sc) z += (e = std::exp(e - mx));
      for (int s = w0; s <= t; ++s) att.segment(h * hd, hd) += sc[static_cast<std::size_t>(s - w0)] / z * v[s].segment(g * hd, hd);
    }
    out.col(t) = Wo.cast<double>() * att;
  }
  return out;
}
}  // namespace

TEST_CASE("adadim: q/k/v are judged on the attention output, with the candidate in its own slot", "[tools][adadim]") {
  const auto m = tiny_model(4);
  const auto& blk = m.blocks[0];
  const Eigen::MatrixXf X = lowbit_test::gaussian(n_embd, 2 * T, 17);
  std::vector<Eigen::MatrixXf> current{blk[lt::slot::q].weight(), blk[lt::slot::k].weight(), blk[lt::slot::v].weight()};
  current[0] *= 0.5f;  // an "already quantized" earlier sibling: must be used as is
  static const lt::slot qkv[] = {lt::slot::q, lt::slot::k, lt::slot::v};
  const lt::group_job job{m, blk, 0, lt::tap::attn_in, qkv, current, X, T};
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("candidate in slot " << i);
    const auto block = lt::adadim_inspect_block(job, i, current);
    REQUIRE(block);
    const Eigen::MatrixXf cand = lowbit_test::gaussian(current[i].rows(), current[i].cols(), 30 + static_cast<std::uint32_t>(i), 0.1f);
    std::vector<Eigen::MatrixXf> w = current;
    w[i] = cand;
    const Eigen::MatrixXd ref = attention_block_ref(m, w[0], w[1], w[2], blk[lt::slot::o].weight(), X);
    const Eigen::MatrixXf got = block(cand, X);
    CHECK((got.cast<double>() - ref).cwiseAbs().maxCoeff() < 1e-4 * ref.cwiseAbs().maxCoeff());
  }
  // o and down are judged on their own output (adadim's default: no block).
  static const lt::slot o[] = {lt::slot::o};
  const lt::group_job jo{m, blk, 0, lt::tap::attn_out, o, {blk[lt::slot::o].weight()}, X, T};
  CHECK_FALSE(lt::adadim_inspect_block(jo, 0, jo.W));
}
