// Hugging Face folders in (tools/model/hf_checkpoint.hpp): tiny random models written here
// with lowbit's own safetensors writer, in Hugging Face's naming and RoPE layout.
//  * Llama: the loader gives exactly the logits of the same model read from a GGUF (q / k
//    rows permuted as llama.cpp's converter does), F32 / BF16 / F16, one file or shards,
//    tied or untied head;
//  * Llama, Qwen2 (q/k/v biases), Qwen3 (q_norm / k_norm, head_dim != hidden / heads), Llama 3
//    RoPE scaling: logits match an independent float64 forward written in Hugging Face's own
//    convention (rotate_half RoPE on the unpermuted tensors, per-head norms before RoPE);
//  * every refusal names what it refuses; tokenizer.json tokenizes as the GGUF arrays do.
//  * --export gptq from such a folder gives Hugging Face's own layout back (the last case).
#include <Eigen/Dense>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "lowbit/io/gguf_writer.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit-quantize/hf_export.hpp"
#include "lowbit-quantize/methods.hpp"
#include "lowbit/io/json.hpp"
#include "lowbit_catch.hpp"
#include "model/hf_checkpoint.hpp"
#include "model/sequential.hpp"
#include "model/llama.hpp"
#include "test_data.hpp"

namespace lt = lowbit::tools;
namespace fs = std::filesystem;
using lowbit::io::st_dtype;

namespace {

struct spec {
  std::string arch = "LlamaForCausalLM";
  int n_layer = 2, n_embd = 32, n_head = 4, n_head_kv = 2, n_ff = 48, n_vocab = 64, head_dim = 0;  // 0: n_embd / n_head
  bool tied = false, qkv_bias = false, qk_norm = false;
  std::string rope_scaling;  // JSON object text, empty: none
  int hd() const { return head_dim > 0 ? head_dim : n_embd / n_head; }
};

// Random weights under Hugging Face's tensor names, in Hugging Face's layout.
using tensors = std::map<std::string, Eigen::MatrixXf>;
tensors random_hf(const spec& s, std::uint32_t seed = 7) {
  tensors t;
  std::uint32_t k = seed * 1000;
  const int d = s.n_embd, q = s.n_head * s.hd(), kv = s.n_head_kv * s.hd();
  auto mat = [&](int r, int c) { return lowbit_test::gaussian(r, c, ++k, 1.0f / std::sqrt(static_cast<float>(c))); };
  auto norm = [&](int n) { return Eigen::MatrixXf(Eigen::MatrixXf::Ones(n, 1) + lowbit_test::gaussian(n, 1, ++k, 0.1f)); };
  t["model.embed_tokens.weight"] = lowbit_test::gaussian(s.n_vocab, d, ++k);
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t[p + "input_layernorm.weight"] = norm(d);
    t[p + "post_attention_layernorm.weight"] = norm(d);
    t[p + "self_attn.q_proj.weight"] = mat(q, d);
    t[p + "self_attn.k_proj.weight"] = mat(kv, d);
    t[p + "self_attn.v_proj.weight"] = mat(kv, d);
    t[p + "self_attn.o_proj.weight"] = mat(d, q);
    t[p + "mlp.gate_proj.weight"] = mat(s.n_ff, d);
    t[p + "mlp.up_proj.weight"] = mat(s.n_ff, d);
    t[p + "mlp.down_proj.weight"] = mat(d, s.n_ff);
    if (s.qkv_bias) {
      t[p + "self_attn.q_proj.bias"] = lowbit_test::gaussian(q, 1, ++k, 0.5f);
      t[p + "self_attn.k_proj.bias"] = lowbit_test::gaussian(kv, 1, ++k, 0.5f);
      t[p + "self_attn.v_proj.bias"] = lowbit_test::gaussian(kv, 1, ++k, 0.5f);
    }
    if (s.qk_norm) {
      t[p + "self_attn.q_norm.weight"] = norm(s.hd());
      t[p + "self_attn.k_norm.weight"] = norm(s.hd());
    }
  }
  t["model.norm.weight"] = norm(d);
  if (!s.tied) t["lm_head.weight"] = mat(s.n_vocab, d);
  return t;
}

// What a dtype stores of each value (the reference model is built from the rounded weights).
tensors rounded(tensors t, st_dtype dt) {
  for (auto& [n, m] : t)
    for (Eigen::Index i = 0; i < m.size(); ++i) {
      float& x = m.data()[i];
      if (dt == st_dtype::bf16) x = lowbit::io::detail::bf16_to_float(lowbit::io::detail::float_to_bf16(x));
      else if (dt == st_dtype::f16) x = lowbit::half_bits_to_float(lowbit::float_to_half_bits(x));
    }
  return t;
}

const char* model_type(const std::string& arch) {
  if (arch == "Qwen2ForCausalLM") return "qwen2";
  if (arch == "Qwen3ForCausalLM") return "qwen3";
  if (arch == "MistralForCausalLM") return "mistral";
  return "llama";
}

std::string config_json(const spec& s, const std::string& extra = "") {
  std::string c = "{\n  \"architectures\": [\"" + s.arch + "\"],\n  \"model_type\": \"" + model_type(s.arch) + "\",\n";
  c += "  \"hidden_size\": " + std::to_string(s.n_embd) + ", \"intermediate_size\": " + std::to_string(s.n_ff) + ",\n";
  c += "  \"num_hidden_layers\": " + std::to_string(s.n_layer) + ", \"num_attention_heads\": " + std::to_string(s.n_head) + ",\n";
  c += "  \"num_key_value_heads\": " + std::to_string(s.n_head_kv) + ", \"head_dim\": " + std::to_string(s.hd()) + ",\n";
  c += "  \"vocab_size\": " + std::to_string(s.n_vocab) + ", \"max_position_embeddings\": 256,\n";
  // The float32 values the GGUF stores (1e-5f, 10000), written exactly.
  c += "  \"rms_norm_eps\": 9.999999747378752e-06, \"rope_theta\": 10000.0, \"hidden_act\": \"silu\",\n";
  c += std::string("  \"tie_word_embeddings\": ") + (s.tied ? "true" : "false") + ", \"torch_dtype\": \"bfloat16\",\n";
  if (!s.rope_scaling.empty()) c += "  \"rope_scaling\": " + s.rope_scaling + ",\n";
  c += extra;
  c += "  \"bos_token_id\": 1, \"eos_token_id\": 2\n}\n";
  return c;
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream o(p, std::ios::binary);
  o << s;
}

// A fresh folder under the build tree's temp dir.
fs::path fresh_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("lowbit_hf_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Writes config.json and the tensors (dtype `dt`) in `shards` files (+ index when > 1).
void write_folder(const fs::path& dir, const spec& s, const tensors& t, st_dtype dt, int shards,
                  const std::string& config_extra = "") {
  write_text(dir / "config.json", config_json(s, config_extra));
  std::vector<lowbit::io::safetensors_writer> w(static_cast<std::size_t>(shards));
  std::string map;
  int i = 0;
  const int n = static_cast<int>(t.size());
  for (const auto& [name, m] : t) {
    const int shard = i++ * shards / n;
    const std::string file = shards == 1 ? "model.safetensors"
                                         : "model-0000" + std::to_string(shard + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    auto& sw = w[static_cast<std::size_t>(shard)];
    if (name.ends_with("norm.weight") || name.ends_with(".bias"))  // 1-D tensors
      sw.add_floats(name, {static_cast<std::uint64_t>(m.rows())}, std::span<const float>(m.data(), static_cast<std::size_t>(m.rows())), dt);
    else sw.add_matrix(name, m, dt);
    map += std::string(map.empty() ? "" : ",\n") + "    \"" + name + "\": \"" + file + "\"";
  }
  for (int k = 0; k < shards; ++k) {
    const std::string file = shards == 1 ? "model.safetensors"
                                         : "model-0000" + std::to_string(k + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    w[static_cast<std::size_t>(k)].write((dir / file).string());
  }
  if (shards > 1) write_text(dir / "model.safetensors.index.json", "{\n  \"metadata\": {\"total_size\": 0},\n  \"weight_map\": {\n" + map + "\n  }\n}\n");
}

// llama.cpp's convert_hf_to_gguf permute(): HF row h·hd + j·hd/2 + i → GGUF row h·hd + 2i + j.
Eigen::MatrixXf to_gguf_rows(const Eigen::MatrixXf& W, int n_heads) {
  const int hd = static_cast<int>(W.rows()) / n_heads;
  Eigen::MatrixXf out(W.rows(), W.cols());
  for (int h = 0; h < n_heads; ++h)
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < hd / 2; ++i) out.row(h * hd + 2 * i + j) = W.row(h * hd + j * hd / 2 + i);
  return out;
}

// The same Llama model as a GGUF (F32, llama.* keys), the way llama.cpp would have converted it.
lt::llama_model via_gguf(const spec& s, const tensors& t) {
  lowbit::io::gguf_writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", static_cast<std::uint32_t>(s.n_layer));
  w.set_u32("llama.embedding_length", static_cast<std::uint32_t>(s.n_embd));
  w.set_u32("llama.feed_forward_length", static_cast<std::uint32_t>(s.n_ff));
  w.set_u32("llama.attention.head_count", static_cast<std::uint32_t>(s.n_head));
  w.set_u32("llama.attention.head_count_kv", static_cast<std::uint32_t>(s.n_head_kv));
  w.set_u32("llama.context_length", 256);
  w.set_f32("llama.rope.freq_base", 10000.0f);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  const auto F32 = lowbit::io::gguf_type::f32;
  auto vec = [&](const std::string& n) {
    const auto& m = t.at(n);
    return std::vector<float>(m.data(), m.data() + m.size());
  };
  w.add_matrix("token_embd.weight", t.at("model.embed_tokens.weight"), F32);
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".", g = "blk." + std::to_string(l) + ".";
    w.add_vector(g + "attn_norm.weight", vec(p + "input_layernorm.weight"));
    w.add_vector(g + "ffn_norm.weight", vec(p + "post_attention_layernorm.weight"));
    w.add_matrix(g + "attn_q.weight", to_gguf_rows(t.at(p + "self_attn.q_proj.weight"), s.n_head), F32);
    w.add_matrix(g + "attn_k.weight", to_gguf_rows(t.at(p + "self_attn.k_proj.weight"), s.n_head_kv), F32);
    w.add_matrix(g + "attn_v.weight", t.at(p + "self_attn.v_proj.weight"), F32);
    w.add_matrix(g + "attn_output.weight", t.at(p + "self_attn.o_proj.weight"), F32);
    w.add_matrix(g + "ffn_gate.weight", t.at(p + "mlp.gate_proj.weight"), F32);
    w.add_matrix(g + "ffn_up.weight", t.at(p + "mlp.up_proj.weight"), F32);
    w.add_matrix(g + "ffn_down.weight", t.at(p + "mlp.down_proj.weight"), F32);
  }
  w.add_vector("output_norm.weight", vec("model.norm.weight"));
  if (!s.tied) w.add_matrix("output.weight", t.at("lm_head.weight"), F32);
  return lt::llama_model::from_gguf(lowbit::io::gguf_file::from_memory(w.bytes(), "tiny gguf"));
}

// ---- the independent reference: Hugging Face's forward, float64, one window ----
using vecd = Eigen::VectorXd;
vecd rms(const vecd& x, const Eigen::MatrixXf& w, double eps) {
  return x.cwiseProduct(w.col(0).cast<double>()) / std::sqrt(x.squaredNorm() / static_cast<double>(x.size()) + eps);
}
std::vector<double> hf_inv_freq(const spec& s, double base) {
  const int hd = s.hd();
  std::vector<double> inv(static_cast<std::size_t>(hd / 2));
  for (int i = 0; i < hd / 2; ++i) inv[static_cast<std::size_t>(i)] = 1.0 / std::pow(base, 2.0 * i / hd);
  if (!s.rope_scaling.empty()) {  // the one scaling these tests use: llama3, factor 8, 1 / 4, original 64
    const double factor = 8, lo = 1, hi = 4, old = 64;
    for (auto& f : inv) {
      const double wav = 2 * std::numbers::pi / f;
      if (wav < old / hi) continue;
      if (wav > old / lo) f /= factor;
      else {
        const double sm = (old / wav - lo) / (hi - lo);
        f = (1 - sm) * f / factor + sm * f;
      }
    }
  }
  return inv;
}
// rotate_half RoPE: pairs (i, i + hd/2) of every head.
void rope_hf(vecd& x, int n_heads, int hd, int pos, const std::vector<double>& inv) {
  for (int h = 0; h < n_heads; ++h)
    for (int i = 0; i < hd / 2; ++i) {
      const double th = pos * inv[static_cast<std::size_t>(i)];
      const double a = x(h * hd + i), b = x(h * hd + i + hd / 2);
      x(h * hd + i) = a * std::cos(th) - b * std::sin(th);
      x(h * hd + i + hd / 2) = b * std::cos(th) + a * std::sin(th);
    }
}
Eigen::MatrixXd hf_reference_logits(const spec& s, const tensors& t, const std::vector<std::int32_t>& tok) {
  const int T = static_cast<int>(tok.size()), hd = s.hd(), group = s.n_head / s.n_head_kv;
  const double eps = 9.999999747378752e-06;
  const auto inv = hf_inv_freq(s, 10000.0);
  auto W = [&](const std::string& n) { return t.at(n).cast<double>().eval(); };
  std::vector<vecd> h(static_cast<std::size_t>(T));
  for (int i = 0; i < T; ++i) h[static_cast<std::size_t>(i)] = t.at("model.embed_tokens.weight").row(tok[static_cast<std::size_t>(i)]).transpose().cast<double>();
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    std::vector<vecd> q(static_cast<std::size_t>(T)), k(q), v(q);
    for (int i = 0; i < T; ++i) {
      const auto u = static_cast<std::size_t>(i);
      const vecd x = rms(h[u], t.at(p + "input_layernorm.weight"), eps);
      q[u] = W(p + "self_attn.q_proj.weight") * x;
      k[u] = W(p + "self_attn.k_proj.weight") * x;
      v[u] = W(p + "self_attn.v_proj.weight") * x;
      if (s.qkv_bias) {
        q[u] += W(p + "self_attn.q_proj.bias");
        k[u] += W(p + "self_attn.k_proj.bias");
        v[u] += W(p + "self_attn.v_proj.bias");
      }
      if (s.qk_norm) {
        for (int hh = 0; hh < s.n_head; ++hh) q[u].segment(hh * hd, hd) = rms(q[u].segment(hh * hd, hd), t.at(p + "self_attn.q_norm.weight"), eps);
        for (int hh = 0; hh < s.n_head_kv; ++hh) k[u].segment(hh * hd, hd) = rms(k[u].segment(hh * hd, hd), t.at(p + "self_attn.k_norm.weight"), eps);
      }
      rope_hf(q[u], s.n_head, hd, i, inv);
      rope_hf(k[u], s.n_head_kv, hd, i, inv);
    }
    std::vector<vecd> nh(static_cast<std::size_t>(T));
    for (int j = 0; j < T; ++j) {
      vecd att = vecd::Zero(s.n_head * hd);
      for (int hh = 0; hh < s.n_head; ++hh) {
        const int g = hh / group;
        std::vector<double> sc(static_cast<std::size_t>(j + 1));
        double mx = -1e300, sum = 0;
        for (int i = 0; i <= j; ++i) {
          sc[static_cast<std::size_t>(i)] = q[static_cast<std::size_t>(j)].segment(hh * hd, hd).dot(k[static_cast<std::size_t>(i)].segment(g * hd, hd)) / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, sc[static_cast<std::size_t>(i)]);
        }
        for (auto& x : sc) sum += (x = std::exp(x - mx));
        for (int i = 0; i <= j; ++i) att.segment(hh * hd, hd) += sc[static_cast<std::size_t>(i)] / sum * v[static_cast<std::size_t>(i)].segment(g * hd, hd);
      }
      nh[static_cast<std::size_t>(j)] = h[static_cast<std::size_t>(j)] + W(p + "self_attn.o_proj.weight") * att;
      const vecd x = rms(nh[static_cast<std::size_t>(j)], t.at(p + "post_attention_layernorm.weight"), eps);
      const vecd gt = W(p + "mlp.gate_proj.weight") * x, up = W(p + "mlp.up_proj.weight") * x;
      const vecd a = (gt.array() / (1.0 + (-gt.array()).exp()) * up.array()).matrix();
      nh[static_cast<std::size_t>(j)] += W(p + "mlp.down_proj.weight") * a;
    }
    h = nh;
  }
  const Eigen::MatrixXd head = s.tied ? W("model.embed_tokens.weight") : W("lm_head.weight");
  Eigen::MatrixXd out(s.n_vocab, T);
  for (int i = 0; i < T; ++i) out.col(i) = head * rms(h[static_cast<std::size_t>(i)], t.at("model.norm.weight"), eps);
  return out;
}

std::vector<std::int32_t> tokens(int n, int vocab, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, vocab - 1);
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

std::string error_of(const fs::path& dir) {
  try {
    (void)lt::hf_checkpoint::open(dir).load_model();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("hf checkpoint: Llama folder gives the GGUF model's logits exactly", "[hf][llama]") {
  for (const bool tied : {false, true})
    for (const auto dt : {st_dtype::f32, st_dtype::bf16, st_dtype::f16})
      for (const int shards : {1, 3}) {
        spec s;
        s.tied = tied;
        const auto t = rounded(random_hf(s), dt);
        const auto dir = fresh_dir("llama");
        write_folder(dir, s, t, dt, shards);
        INFO("tied " << tied << ", dtype " << lowbit::io::traits(dt).name << ", shards " << shards);
        REQUIRE(lt::is_hf_folder(dir));
        const auto c = lt::hf_checkpoint::open(dir);
        CHECK(c.tied() == tied);
        CHECK(c.shard_files().size() == static_cast<std::size_t>(shards));
        auto hf = c.load_model();
        auto gg = via_gguf(s, t);
        const auto ids = tokens(2 * 12, s.n_vocab, 3);
        const lt::act a = hf.forward(ids, 12), b = gg.forward(ids, 12);
        CHECK((a - b).cwiseAbs().maxCoeff() == 0.0f);
      }
}

TEST_CASE("hf checkpoint: Llama / Qwen2 / Qwen3 / Llama 3 RoPE scaling match Hugging Face's forward", "[hf][llama]") {
  std::vector<std::pair<std::string, spec>> cases;
  cases.push_back({"llama", spec{}});
  spec q2;
  q2.arch = "Qwen2ForCausalLM";
  q2.qkv_bias = true;
  q2.tied = true;
  cases.push_back({"qwen2", q2});
  spec q3;
  q3.arch = "Qwen3ForCausalLM";
  q3.qk_norm = true;
  q3.head_dim = 16;  // != 32 / 4
  q3.n_head_kv = 1;
  cases.push_back({"qwen3", q3});
  spec l3;
  l3.rope_scaling = R"({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64})";
  cases.push_back({"llama3 rope", l3});
  spec mi;
  mi.arch = "MistralForCausalLM";
  cases.push_back({"mistral", mi});
  for (const auto& [label, s] : cases) {
    INFO(label);
    const auto t = random_hf(s, 11);
    const auto dir = fresh_dir("ref");
    write_folder(dir, s, t, st_dtype::f32, 2);
    auto m = lt::hf_checkpoint::open(dir).load_model();
    const auto ids = tokens(20, s.n_vocab, 5);
    const Eigen::MatrixXd got = m.forward(ids, 20).cast<double>();
    const Eigen::MatrixXd want = hf_reference_logits(s, t, ids);
    INFO("max |diff| " << (got - want).cwiseAbs().maxCoeff() << ", max |logit| " << want.cwiseAbs().maxCoeff());
    CHECK((got - want).cwiseAbs().maxCoeff() < 1e-4 * std::max(1.0, want.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("hf checkpoint: Mistral's sliding window refuses longer windows", "[hf][llama]") {
  spec s;
  s.arch = "MistralForCausalLM";
  const auto dir = fresh_dir("mistral");
  write_folder(dir, s, random_hf(s), st_dtype::bf16, 1, "  \"sliding_window\": 8,\n");
  auto m = lt::hf_checkpoint::open(dir).load_model();
  CHECK(m.cfg.sliding_window == 8);
  (void)m.forward(tokens(8, s.n_vocab, 1), 8);
  CHECK_THROWS_WITH(m.forward(tokens(16, s.n_vocab, 1), 16), Catch::Contains("sliding attention window of 8"));
}

TEST_CASE("hf checkpoint: clear errors name what is refused", "[hf][errors]") {
  spec s;
  const auto t = random_hf(s);
  const auto dir = fresh_dir("errors");
  auto fresh = [&](st_dtype dt = st_dtype::bf16, int shards = 2, const std::string& extra = "") {
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_folder(dir, s, t, dt, shards, extra);
  };
  SECTION("unsupported architecture") {
    fresh();
    spec g = s;
    g.arch = "GPTNeoXForCausalLM";
    write_text(dir / "config.json", config_json(g));
    CHECK_THAT(error_of(dir), Catch::Contains("architecture 'GPTNeoXForCausalLM' is not supported"));
  }
  SECTION("missing tensor") {
    auto t2 = t;
    t2.erase("model.layers.1.mlp.up_proj.weight");
    t2.erase("lm_head.weight");
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_folder(dir, s, t2, st_dtype::bf16, 1);
    const auto e = error_of(dir);
    CHECK_THAT(e, Catch::Contains("tensor(s) missing") && Catch::Contains("model.layers.1.mlp.up_proj.weight") &&
                      Catch::Contains("lm_head.weight"));
  }
  SECTION("wrong shape") {
    auto t2 = t;
    t2["model.layers.0.self_attn.k_proj.weight"] = Eigen::MatrixXf::Ones(8, 32);
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_folder(dir, s, t2, st_dtype::f32, 1);
    CHECK_THAT(error_of(dir), Catch::Contains("model.layers.0.self_attn.k_proj.weight is [8, 32], expected [16, 32]"));
  }
  SECTION("unsupported dtype") {
    fresh(st_dtype::f32, 1);
    // Rewrite one tensor as F64.
    auto f = lowbit::io::safetensors_file::open((dir / "model.safetensors").string());
    lowbit::io::safetensors_writer w;
    for (const auto& ti : f.tensors()) {
      if (ti.name == "model.norm.weight") {
        const auto v = f.load_vector(ti.name);
        std::vector<double> dv(v.begin(), v.end());
        w.add<double>(ti.name, ti.shape, std::span<const double>(dv));
      } else {
        const auto b = f.tensor_bytes(ti);
        w.add(ti.name, ti.dtype, ti.shape, std::vector<std::byte>(b.begin(), b.end()));
      }
    }
    w.write((dir / "model.safetensors").string());
    CHECK_THAT(error_of(dir), Catch::Contains("model.norm.weight has dtype F64"));
  }
  SECTION("truncated shard") {
    fresh(st_dtype::bf16, 2);
    const auto p = dir / "model-00002-of-00002.safetensors";
    fs::resize_file(p, fs::file_size(p) - 100);
    CHECK_THAT(error_of(dir), Catch::Contains("model-00002-of-00002.safetensors") && Catch::Contains("truncated"));
  }
  SECTION("missing shard") {
    fresh(st_dtype::bf16, 2);
    fs::remove(dir / "model-00001-of-00002.safetensors");
    CHECK_THAT(error_of(dir), Catch::Contains("shard file(s) missing: model-00001-of-00002.safetensors"));
  }
  SECTION("index names a file outside the folder") {
    fresh(st_dtype::bf16, 2);
    write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": "../x.safetensors"}})");
    CHECK_THAT(error_of(dir), Catch::Contains("is not a file name in the folder"));
  }
  SECTION("unknown tensor") {
    auto t2 = t;
    t2["model.layers.0.mlp.up_proj.bias"] = Eigen::MatrixXf::Ones(48, 1);
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_folder(dir, s, t2, st_dtype::f32, 1);
    CHECK_THAT(error_of(dir), Catch::Contains("does not use: model.layers.0.mlp.up_proj.bias"));
  }
  SECTION("rope scaling not implemented") {
    fresh(st_dtype::bf16, 1, "  \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0},\n");
    CHECK_THAT(error_of(dir), Catch::Contains("rope_scaling 'yarn' is not supported"));
  }
  SECTION("already quantized") {
    fresh(st_dtype::bf16, 1, "  \"quantization_config\": {\"quant_method\": \"gptq\"},\n");
    CHECK_THAT(error_of(dir), Catch::Contains("already quantized") && Catch::Contains("gptq"));
  }
  SECTION("no weights") {
    fresh(st_dtype::bf16, 1);
    fs::remove(dir / "model.safetensors");
    write_text(dir / "pytorch_model.bin", "x");
    CHECK_THAT(error_of(dir), Catch::Contains("no model.safetensors") && Catch::Contains("pytorch_model.bin"));
  }
  SECTION("non-finite weight") {
    auto t2 = t;
    t2["model.layers.1.self_attn.v_proj.weight"](3, 4) = std::numeric_limits<float>::infinity();
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_folder(dir, s, t2, st_dtype::bf16, 1);
    CHECK_THAT(error_of(dir), Catch::Contains("model.layers.1.self_attn.v_proj.weight' element (3, 4) is inf"));
  }
  fs::remove_all(dir);
}

// ---- tokenizer.json
namespace {
// A small byte-level vocabulary: the 256 byte characters, then merged tokens.
struct tiny_vocab {
  std::vector<std::string> tokens;
  std::vector<std::string> merges;
  std::vector<std::int32_t> types;
};
tiny_vocab make_vocab() {
  tiny_vocab v;
  const auto& b2c = lowbit::io::detail::byte_to_char();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    lowbit::io::detail::append_utf8(s, b2c[static_cast<std::size_t>(b)]);
    v.tokens.push_back(s);
  }
  for (const char* m : {"h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o", "Ġwo r", "Ġwor l", "Ġworl d"}) {
    v.merges.push_back(m);
    std::string a(m);
    a.erase(a.find(' '), 1);
    v.tokens.push_back(a);
  }
  v.tokens.push_back("<|im_start|>");
  v.types.assign(v.tokens.size(), 1);
  v.types.back() = lowbit::io::bpe_tokenizer::type_control;
  return v;
}
std::string tokenizer_json(const tiny_vocab& v, const std::string& pre, bool pair_merges = false) {
  std::string j = "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": " + std::to_string(v.tokens.size() - 1) +
                  ", \"content\": \"<|im_start|>\", \"special\": true}], \"normalizer\": null, \"pre_tokenizer\": " + pre +
                  ", \"post_processor\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                  "\"dropout\": null, \"byte_fallback\": false, \"vocab\": {";
  for (std::size_t i = 0; i + 1 < v.tokens.size(); ++i)
    j += (i ? ", " : "") + lowbit::io::json_quote(v.tokens[i]) + ": " + std::to_string(i);
  j += "}, \"merges\": [";
  for (std::size_t i = 0; i < v.merges.size(); ++i) {
    const auto sp = v.merges[i].find(' ');
    j += (i ? ", " : "");
    if (pair_merges) {  // appended piece by piece: g++ 12's -Wrestrict misfires on a + chain here
      j += '[';
      j += lowbit::io::json_quote(v.merges[i].substr(0, sp));
      j += ", ";
      j += lowbit::io::json_quote(v.merges[i].substr(sp + 1));
      j += ']';
    } else {
      j += lowbit::io::json_quote(v.merges[i]);
    }
  }
  return j + "]}}";
}
const char* smollm_pre = R"({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]})";
}  // namespace

TEST_CASE("hf tokenizer.json: same ids as the tokenizer built from the same arrays", "[hf][tokenizer]") {
  const auto v = make_vocab();
  const std::string text = "hello world, hello 2024 world<|im_start|>hello";
  for (const bool pairs : {false, true}) {
    const auto tok = lowbit::io::bpe_tokenizer::from_tokenizer_json(tokenizer_json(v, smollm_pre, pairs), "t.json", 1, 2);
    const lowbit::io::bpe_tokenizer ref(v.tokens, v.merges, v.types, lowbit::io::pre_tokenizer::smollm);
    CHECK(tok.pre() == lowbit::io::pre_tokenizer::smollm);
    CHECK(tok.encode(text) == ref.encode(text));
    CHECK(tok.encode(text, true) == ref.encode(text, true));
    CHECK(tok.encode("hello").size() == 1);
    CHECK(tok.bos() == 1);
    CHECK(tok.eos() == 2);
    CHECK_FALSE(tok.add_bos());
  }
  const auto gpt2 = lowbit::io::bpe_tokenizer::from_tokenizer_json(
      tokenizer_json(v, R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})"));
  CHECK(gpt2.pre() == lowbit::io::pre_tokenizer::gpt2);
}

TEST_CASE("hf tokenizer.json: pre-tokenizers and models it does not implement are refused", "[hf][tokenizer]") {
  const auto v = make_vocab();
  using lowbit::io::bpe_tokenizer;
  CHECK_THROWS_WITH(bpe_tokenizer::from_tokenizer_json(tokenizer_json(v, R"({"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated"})")),
                    Catch::Contains("pre_tokenizer 'Split with regex \\p{N}{1,3}' is not supported"));
  std::string j = tokenizer_json(v, smollm_pre);
  j.replace(j.find("\"normalizer\": null"), 18, "\"normalizer\": {\"type\": \"NFC\"}");
  CHECK_THROWS_WITH(bpe_tokenizer::from_tokenizer_json(j), Catch::Contains("normalizer 'NFC' is not supported"));
  j = tokenizer_json(v, smollm_pre);
  j.replace(j.find("\"type\": \"BPE\""), 13, "\"type\": \"Unigram\"");
  CHECK_THROWS_WITH(bpe_tokenizer::from_tokenizer_json(j), Catch::Contains("model type 'Unigram' is not supported"));
}

TEST_CASE("hf checkpoint: the folder's tokenizer.json with config.json's bos / eos", "[hf][tokenizer]") {
  spec s;
  s.n_vocab = 266;
  const auto dir = fresh_dir("tok");
  write_folder(dir, s, random_hf(s), st_dtype::bf16, 1);
  CHECK_THAT(error_of(dir), Catch::Contains("(no error)"));
  CHECK_THROWS_WITH(lt::load_hf_model(dir), Catch::Contains("no tokenizer.json"));
  write_text(dir / "tokenizer.json", tokenizer_json(make_vocab(), smollm_pre));
  const auto m = lt::load_hf_model(dir);
  CHECK(m.tokenizer.vocab_size() == 266);
  CHECK(m.tokenizer.bos() == 1);
  CHECK(m.tokenizer.eos() == 2);
  fs::remove_all(dir.parent_path());
}

// ---------------------------------------------------------------- export back to Hugging Face
// lowbit-quantize --export gptq from a Hugging Face folder (tools/lowbit-quantize/hf_export.hpp):
// what comes out is in Hugging Face's own layout again, checked against the source folder's
// tensors by name (not by lowbit's reader, whose un-permutation could mirror a wrong one):
// biases and q/k norms equal to fp16 rounding, every quantized linear within its 4-bit error
// of the source matrix (a row permutation gone wrong is ~1.4x the norm), the architecture and
// config kept with quantization_config added, and the folder runs as the quantized model.
TEST_CASE("hf export: a Qwen2 / Qwen3 folder goes out in Hugging Face's own order", "[hf][hf_export]") {
  for (const std::string arch : {"Qwen2ForCausalLM", "Qwen3ForCausalLM", "LlamaForCausalLM"}) {
    CAPTURE(arch);
    spec s;
    s.arch = arch;
    s.qkv_bias = arch == "Qwen2ForCausalLM";
    s.qk_norm = arch == "Qwen3ForCausalLM";
    s.tied = arch == "LlamaForCausalLM";
    const fs::path dir = fresh_dir("export_src_" + arch);
    const tensors src = random_hf(s, 41);
    write_folder(dir, s, src, st_dtype::f32, 1);
    auto m = lt::hf_checkpoint::open(dir).load_model();
    lt::method_options o;
    o.bits = 4;
    o.group = 32;
    lt::sequential_options so;
    so.window = 16;
    so.progress = false;
    (void)lt::quantize_sequential(m, tokens(16 * 4, s.n_vocab, 5), lt::make_method("rtn", o), so);

    const fs::path out = fresh_dir("export_out_" + arch) / "q";
    lt::hf_export_source from;
    from.hf_dir = dir;
    const lt::hf_export_options ho{lt::int32_format::gptq, 4, 32};
    lt::check_hf_export_source(from, m);
    (void)lt::write_hf_export(from, m, ho, out.string(), {});

    std::ifstream cf(out / "config.json", std::ios::binary);
    const auto cfg = lowbit::io::parse_json(std::string((std::istreambuf_iterator<char>(cf)), std::istreambuf_iterator<char>()));
    CHECK(cfg.find("architectures")->items()[0].as_string() == arch);
    CHECK(cfg.find("quantization_config")->find("bits")->as_u64() == 4);
    const auto f = lowbit::io::safetensors_file::open((out / "model.safetensors").string());
    for (const auto& [name, M] : src) {
      CAPTURE(name);
      if (name.ends_with(".bias") || name.ends_with("norm.weight")) {
        const auto v = f.load_vector(name);
        REQUIRE(static_cast<Eigen::Index>(v.size()) == M.rows());
        for (Eigen::Index i = 0; i < M.rows(); ++i) CHECK(std::fabs(v[static_cast<std::size_t>(i)] - M(i, 0)) <= 1e-3f * (1.0f + std::fabs(M(i, 0))));
      } else if (name.ends_with("_proj.weight")) {
        const std::string prefix = name.substr(0, name.size() - std::string(".weight").size());
        const auto w = lowbit::io::dequantize(lowbit::io::read_gptq(f, prefix, 4, 32, false), lowbit::io::gptq_checkpoint::v1);
        const Eigen::MatrixXf Q = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(w.data(), M.rows(), M.cols());
        CHECK((Q - M).norm() < 0.15f * M.norm());
      } else {
        CHECK(f.find(name) != nullptr);  // embedding, final norm, untied head
      }
    }
    CHECK((f.find("lm_head.weight") == nullptr) == s.tied);
    auto back = lt::load_hf_export(out.string(), m, ho);
    const auto ids = tokens(12, s.n_vocab, 9);
    const Eigen::MatrixXf a = m.forward(ids, 12), b = back.forward(ids, 12);
    CHECK((a - b).norm() < 2e-3f * a.norm());
  }
}
