#pragma once
// Hugging Face checkpoint folders in: config.json + model.safetensors (or the shards listed by
// model.safetensors.index.json) + tokenizer.json, for the Llama runner of model/llama.hpp.
//
//   architectures   LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM
//   weights         F32, F16, BF16 tensors, memory-mapped; each tensor is converted to float
//                   when it is loaded (load_block: one block at a time)
//   config          GQA (num_key_value_heads), head_dim, rope_theta, rms_norm_eps,
//                   tie_word_embeddings, attention_bias (q/k/v/o biases), Qwen2's q/k/v biases,
//                   Qwen3's q_norm / k_norm, rope_scaling "linear" and "llama3", Mistral's
//                   sliding_window (windows longer than it are refused at run time)
//   refused         by name, before any weight is read: other architectures, other dtypes,
//                   missing / unexpected / mis-shaped tensors, pre-quantized checkpoints
//                   (quantization_config), other RoPE scalings (dynamic, yarn, longrope, ...),
//                   partial rotary, mlp_bias, activations other than silu, Qwen's
//                   use_sliding_window, pytorch_model.bin, tokenizers bpe_tokenizer lacks.
//
// RoPE layout: Hugging Face's Llama / Qwen attention rotates the pairs (i, i + head_dim/2) of
// each head (rotate_half); the runner rotates adjacent pairs (2i, 2i+1), the layout
// llama.cpp's converter produces by permuting the q / k rows. The loader applies that same
// row permutation (to q_proj, k_proj, their biases and Qwen3's q_norm / k_norm weights), so
// both formats run through one RoPE and give the same numbers.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"
#include "common/bpe_tokenizer.hpp"
#include "lowbit/io/json.hpp"
#include "lowbit/io/safetensors.hpp"
#include "model/llama.hpp"

namespace lowbit::tools {

// A folder with a config.json: what --model DIR is taken as.
inline bool is_hf_folder(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec) && std::filesystem::is_regular_file(p / "config.json", ec);
}

// Hugging Face's row r of a q / k projection of n_heads heads of hd rows (pair i of a head is
// rows i and i + hd/2) is the runner's row hf_rope_order(n_heads, hd)[r] (rows 2i and 2i + 1):
// llama.cpp's permute. The loader applies it, the exporter (lowbit-quantize/hf_export.cpp)
// inverts it.
inline std::vector<index> hf_rope_order(index n_heads, index hd) {
  std::vector<index> order(static_cast<std::size_t>(n_heads * hd));
  for (index h = 0; h < n_heads; ++h)
    for (index j = 0; j < 2; ++j)
      for (index i = 0; i < hd / 2; ++i) order[static_cast<std::size_t>(h * hd + j * (hd / 2) + i)] = h * hd + 2 * i + j;
  return order;
}

class hf_checkpoint {
 public:
  enum class family { llama, mistral, qwen2, qwen3 };

  // Reads config.json, the shard index and every shard's header (mapped, not read), and checks
  // that every tensor the model needs is there with its shape and a float dtype, and that
  // nothing unexpected is: all before a weight is converted.
  static hf_checkpoint open(const std::filesystem::path& dir) {
    hf_checkpoint c;
    c.dir_ = dir;
    c.name_ = "Hugging Face folder '" + dir.string() + "'";
    detail::require(std::filesystem::is_directory(dir), c.name_, ": not a directory");
    c.read_config();
    c.open_shards();
    c.check_tensors();
    return c;
  }

  const llama_config& config() const { return cfg_; }
  family arch() const { return family_; }
  const std::string& architecture() const { return architecture_; }  // e.g. "LlamaForCausalLM"
  bool tied() const { return tied_; }  // the LM head is the embedding matrix
  const std::filesystem::path& dir() const { return dir_; }
  const std::vector<std::string>& shard_files() const { return shard_names_; }
  const std::string& torch_dtype() const { return torch_dtype_; }  // config.json's, informative

  // One block, its tensors converted from the mapped shards now.
  llama_block load_block(index l) const {
    detail::require(l >= 0 && l < cfg_.n_layer, name_, ": block ", l, " of ", cfg_.n_layer);
    const std::string p = "model.layers." + std::to_string(l) + ".";
    llama_block b;
    b.attn_norm = vector(p + "input_layernorm.weight");
    b.ffn_norm = vector(p + "post_attention_layernorm.weight");
    for (const linear_recipe& r : block_linears) {
      Eigen::MatrixXf W = matrix(hf_tensor_name(l, r.s, "weight"));
      if (r.rope_rows) W = rope_rows(W, heads_of(r.rows));
      b.at(r.s) = std::make_unique<dense_linear>(std::move(W));
    }
    if (qkv_bias_) {
      b.q_bias = rope_rows(Eigen::MatrixXf(vector(p + "self_attn.q_proj.bias")), cfg_.n_head);
      b.k_bias = rope_rows(Eigen::MatrixXf(vector(p + "self_attn.k_proj.bias")), cfg_.n_head_kv);
      b.v_bias = vector(p + "self_attn.v_proj.bias");
    }
    if (o_bias_) b.o_bias = vector(p + "self_attn.o_proj.bias");
    if (qk_norm_) {
      b.q_norm = rope_rows(Eigen::MatrixXf(vector(p + "self_attn.q_norm.weight")), 1);
      b.k_norm = rope_rows(Eigen::MatrixXf(vector(p + "self_attn.k_norm.weight")), 1);
    }
    return b;
  }

  // The whole float model (what the runner holds today), block by block.
  llama_model load_model() const {
    llama_model m;
    m.cfg = cfg_;
    m.tok_embd = matrix("model.embed_tokens.weight");
    for (index l = 0; l < cfg_.n_layer; ++l) m.blocks.push_back(load_block(l));
    m.output_norm = vector("model.norm.weight");
    if (tied_) m.output = std::make_unique<dense_linear>(m.tok_embd);
    else m.output = std::make_unique<dense_linear>(matrix("lm_head.weight"));
    return m;
  }

  // tokenizer.json, with config.json's bos / eos ids.
  io::bpe_tokenizer load_tokenizer() const {
    const auto path = dir_ / "tokenizer.json";
    if (!std::filesystem::is_regular_file(path))
      detail::fail(name_, ": no tokenizer.json",
                   std::filesystem::exists(dir_ / "tokenizer.model") ? " (tokenizer.model, SentencePiece, is not supported)" : "");
    return io::bpe_tokenizer::from_tokenizer_json(read_file(path), name_ + ": tokenizer.json", bos_, eos_);
  }

  // A tensor as float, checked finite (shape and dtype were checked by open()).
  Eigen::MatrixXf matrix(const std::string& name) const {
    const auto f = where(name);
    Eigen::MatrixXf W = shards_[f].load_matrix(name);
    require_finite(name, W);
    return W;
  }
  Eigen::VectorXf vector(const std::string& name) const {
    const auto f = where(name);
    const auto v = shards_[f].load_vector(name);
    Eigen::VectorXf out = Eigen::Map<const Eigen::VectorXf>(v.data(), static_cast<index>(v.size()));
    require_finite(name, out);
    return out;
  }

  // The heads a row width of the recipe (model/recipe.hpp) is made of: the RoPE permutation
  // runs per head, so a rope_rows linear's rows must be whole heads.
  index heads_of(width w) const {
    if (w == width::q_heads) return cfg_.n_head;
    if (w == width::kv_heads) return cfg_.n_head_kv;
    detail::fail(name_, ": the recipe marks a linear whose rows are not attention heads as rope_rows");
  }
  // Rows of a [n_heads·hd × cols] q / k projection from Hugging Face's order to the runner's
  // (hf_rope_order).
  Eigen::MatrixXf rope_rows(const Eigen::MatrixXf& W, index n_heads) const {
    const index hd = cfg_.head_dim();
    detail::require(W.rows() == n_heads * hd, name_, ": RoPE row permutation of ", W.rows(), " rows for ", n_heads,
                    " heads of ", hd);
    const std::vector<index> order = hf_rope_order(n_heads, hd);
    Eigen::MatrixXf out(W.rows(), W.cols());
    for (index r = 0; r < W.rows(); ++r) out.row(order[static_cast<std::size_t>(r)]) = W.row(r);
    return out;
  }

 private:
  static std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    detail::require(static_cast<bool>(in), "cannot read '", p.string(), "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void require_finite(const std::string& name, const Eigen::MatrixXf& M) const {
    if (M.allFinite()) return;
    for (index c = 0; c < M.cols(); ++c)
      for (index r = 0; r < M.rows(); ++r)
        detail::require(std::isfinite(M(r, c)), name_, ": tensor '", name, "' element (", r, ", ", c, ") is ", M(r, c),
                        "; expected a finite number");
  }

  // ---- config.json
  void read_config() {
    const std::string where = name_ + ": config.json";
    io::json_value cfg;
    detail::with_context([&] { cfg = io::parse_json(read_file(dir_ / "config.json")); }, where, ": ");
    detail::require(cfg.is_object(), where, ": not a JSON object");
    auto fail = [&](auto&&... a) { detail::fail(where, ": ", a...); };
    auto find = [&](std::string_view k) -> const io::json_value* {
      const io::json_value* v = cfg.find(k);
      return v == nullptr || v->is_null() ? nullptr : v;
    };
    auto uint_of = [&](std::string_view k, std::optional<std::uint64_t> dflt = {}) -> index {
      const io::json_value* v = find(k);
      if (v == nullptr) {
        if (!dflt) fail("'", k, "' is missing");
        return static_cast<index>(*dflt);
      }
      if (!v->is_u64() || v->as_u64() == 0 || v->as_u64() > (1ull << 31)) fail("'", k, "' is not a positive integer");
      return static_cast<index>(v->as_u64());
    };
    auto num_of = [&](std::string_view k, double dflt) {
      const io::json_value* v = find(k);
      if (v == nullptr) return dflt;
      if (!v->is_number() || !std::isfinite(v->as_double()) || v->as_double() <= 0)
        fail("'", k, "' is not a finite positive number");
      return v->as_double();
    };
    auto str_of = [&](std::string_view k) -> std::string {
      const io::json_value* v = find(k);
      if (v == nullptr) return {};
      if (!v->is_string()) fail("'", k, "' is not a string");
      return v->as_string();
    };
    auto bool_of = [&](std::string_view k, bool dflt) {
      const io::json_value* v = find(k);
      if (v == nullptr) return dflt;
      if (!v->is_bool()) fail("'", k, "' is not a boolean");
      return v->as_bool();
    };

    // Architecture: "architectures"[0], else model_type.
    const std::string model_type = str_of("model_type");
    if (const auto* a = find("architectures")) {
      if (!a->is_array() || a->items().size() != 1 || !a->items()[0].is_string())
        fail("'architectures' must list one architecture");
      architecture_ = a->items()[0].as_string();
    }
    static const std::pair<const char*, family> known[] = {{"LlamaForCausalLM", family::llama},
                                                            {"MistralForCausalLM", family::mistral},
                                                            {"Qwen2ForCausalLM", family::qwen2},
                                                            {"Qwen3ForCausalLM", family::qwen3}};
    static const std::pair<const char*, const char*> types[] = {
        {"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"}};
    if (architecture_.empty())
      for (const auto& [t, a] : types)
        if (model_type == t) architecture_ = a;
    bool found = false;
    for (const auto& [a, f] : known)
      if (architecture_ == a) family_ = f, found = true;
    if (!found)
      fail("architecture '", architecture_.empty() ? model_type : architecture_,
           "' is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");

    if (const auto* q = find("quantization_config")) {
      const io::json_value* m = q->is_object() ? q->find("quant_method") : nullptr;
      fail("the checkpoint is already quantized (quantization_config",
           m != nullptr && m->is_string() ? ": " + m->as_string() : std::string(), "); lowbit reads float checkpoints");
    }
    const std::string act = str_of("hidden_act").empty() ? str_of("hidden_activation") : str_of("hidden_act");
    if (!act.empty() && act != "silu") fail("hidden_act '", act, "' is not supported (silu: SwiGLU)");
    if (bool_of("mlp_bias", false)) fail("mlp_bias is not supported");
    if (const auto* prf = find("partial_rotary_factor"); prf != nullptr && (!prf->is_number() || prf->as_double() != 1.0))
      fail("partial_rotary_factor ", prf->is_number() ? prf->as_double() : -1.0, " is not supported (full RoPE only)");
    torch_dtype_ = str_of("torch_dtype");

    cfg_.n_embd = uint_of("hidden_size");
    cfg_.n_ff = uint_of("intermediate_size");
    cfg_.n_layer = uint_of("num_hidden_layers");
    cfg_.n_head = uint_of("num_attention_heads");
    cfg_.n_head_kv = uint_of("num_key_value_heads", static_cast<std::uint64_t>(cfg_.n_head));
    cfg_.n_vocab = uint_of("vocab_size");
    cfg_.n_ctx_train = uint_of("max_position_embeddings", std::uint64_t{0});
    cfg_.rms_eps = num_of("rms_norm_eps", 1e-6);
    cfg_.rope_base = num_of("rope_theta", 10000.0);
    if (find("head_dim") != nullptr) {
      const index hd = uint_of("head_dim");
      if (hd * cfg_.n_head != cfg_.n_embd) cfg_.head_dim_override = hd;
    }
    cfg_.validate();
    // Every head dimension would be accepted by the runner; the q/k projections' shapes say
    // whether config and tensors agree (checked in check_tensors).

    // RoPE scaling.
    if (const auto* rs = find("rope_scaling")) {
      if (!rs->is_object()) fail("'rope_scaling' is not an object");
      std::string t;
      for (const char* k : {"rope_type", "type"})
        if (const auto* v = rs->find(k); v != nullptr && v->is_string() && t.empty()) t = v->as_string();
      auto rnum = [&](std::string_view k) {
        const auto* v = rs->find(k);
        if (v == nullptr || !v->is_number() || !std::isfinite(v->as_double()) || v->as_double() <= 0)
          fail("rope_scaling '", t, "' needs a finite positive '", k, "'");
        return v->as_double();
      };
      const index hd = cfg_.head_dim();
      std::vector<double> inv(static_cast<std::size_t>(hd / 2));
      for (index i = 0; i < hd / 2; ++i)
        inv[static_cast<std::size_t>(i)] = std::pow(cfg_.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
      if (t == "default" || t.empty()) {
        // no scaling
      } else if (t == "linear") {  // positions divided by factor
        const double f = rnum("factor");
        for (auto& x : inv) x /= f;
        cfg_.rope_inv_freq = inv;
      } else if (t == "llama3") {  // Llama 3.1: low frequencies / factor, a smooth ramp between
        const double f = rnum("factor"), lo = rnum("low_freq_factor"), hi = rnum("high_freq_factor"),
                     old = rnum("original_max_position_embeddings");
        if (!(hi > lo)) fail("rope_scaling llama3: high_freq_factor must exceed low_freq_factor");
        const double lo_wav = old / lo, hi_wav = old / hi;
        for (auto& x : inv) {
          const double wav = 2.0 * std::numbers::pi / x;
          if (wav > lo_wav) x /= f;
          else if (wav >= hi_wav) {
            const double s = (old / wav - lo) / (hi - lo);
            x = (1.0 - s) * x / f + s * x;
          }
        }
        cfg_.rope_inv_freq = inv;
      } else {
        fail("rope_scaling '", t, "' is not supported (linear, llama3, or none)");
      }
    }
    // Sliding-window attention.
    if (family_ == family::mistral) {
      if (const auto* sw = find("sliding_window")) {
        if (!sw->is_u64() || sw->as_u64() == 0) fail("'sliding_window' is not a positive integer");
        cfg_.sliding_window = static_cast<index>(std::min<std::uint64_t>(sw->as_u64(), 1ull << 40));
      }
    } else if (bool_of("use_sliding_window", false)) {
      fail("use_sliding_window (sliding-window attention on some layers) is not supported");
    }

    // Which optional tensors the architecture has.
    const bool attention_bias = bool_of("attention_bias", false);
    qkv_bias_ = family_ == family::qwen2 || attention_bias;
    o_bias_ = family_ != family::qwen2 && attention_bias;
    qk_norm_ = family_ == family::qwen3;
    tied_ = bool_of("tie_word_embeddings", false);  // transformers' default for these four
    for (const char* k : {"bos_token_id", "eos_token_id"}) {
      const io::json_value* v = find(k);
      if (v != nullptr && v->is_array()) v = v->items().empty() ? nullptr : &v->items()[0];  // Llama 3: a list
      if (v == nullptr) continue;
      if (!v->is_u64() || v->as_u64() >= static_cast<std::uint64_t>(cfg_.n_vocab))
        fail("'", k, "' is not a token id below vocab_size ", cfg_.n_vocab);
      (std::string_view(k) == "bos_token_id" ? bos_ : eos_) = static_cast<io::bpe_tokenizer::token_id>(v->as_u64());
    }
  }

  // ---- shards
  void open_shards() {
    const auto single = dir_ / "model.safetensors", index_path = dir_ / "model.safetensors.index.json";
    std::map<std::string, std::string> weight_map;  // tensor → shard file, from the index
    if (std::filesystem::is_regular_file(single)) {
      shard_names_.push_back("model.safetensors");
    } else if (std::filesystem::is_regular_file(index_path)) {
      const std::string where = name_ + ": model.safetensors.index.json";
      io::json_value idx;
      detail::with_context([&] { idx = io::parse_json(read_file(index_path)); }, where, ": ");
      const io::json_value* wm = idx.is_object() ? idx.find("weight_map") : nullptr;
      detail::require(wm != nullptr && wm->is_object(), where, ": no 'weight_map' object");
      std::set<std::string> files;
      for (std::size_t i = 0; i < wm->keys().size(); ++i) {
        const auto& v = wm->values()[i];
        detail::require(v.is_string(), where, ": weight_map['", wm->keys()[i], "'] is not a file name");
        const std::string& f = v.as_string();
        detail::require(!f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos &&
                            f.find('\\') == std::string::npos,
                        where, ": weight_map['", wm->keys()[i], "'] = '", f, "' is not a file name in the folder");
        weight_map.emplace(wm->keys()[i], f);
        if (files.insert(f).second) shard_names_.push_back(f);
      }
      detail::require(!shard_names_.empty(), where, ": weight_map is empty");
      std::vector<std::string> missing;
      for (const auto& f : shard_names_)
        if (!std::filesystem::is_regular_file(dir_ / f)) missing.push_back(f);
      detail::require(missing.empty(), where, ": shard file(s) missing: ", join(missing));
    } else {
      std::string hint;
      for (const char* f : {"pytorch_model.bin", "pytorch_model.bin.index.json", "model.bin"})
        if (std::filesystem::exists(dir_ / f)) hint = std::string(" (found ") + f + ": PyTorch pickles are not read; convert to safetensors)";
      detail::fail(name_, ": no model.safetensors or model.safetensors.index.json", hint);
    }
    for (std::size_t s = 0; s < shard_names_.size(); ++s) {
      shards_.push_back(io::safetensors_file::open((dir_ / shard_names_[s]).string()));
      for (const auto& t : shards_.back().tensors()) {
        const auto [it, fresh] = tensors_.emplace(t.name, s);
        detail::require(fresh, name_, ": tensor '", t.name, "' is in both ", shard_names_[it->second], " and ",
                        shard_names_[s]);
        if (!weight_map.empty()) {
          const auto w = weight_map.find(t.name);
          detail::require(w != weight_map.end(), name_, ": tensor '", t.name, "' of ", shard_names_[s],
                          " is not in model.safetensors.index.json");
          detail::require(w->second == shard_names_[s], name_, ": model.safetensors.index.json puts '", t.name, "' in ",
                          w->second, ", but it is in ", shard_names_[s]);
        }
      }
    }
    for (const auto& [t, f] : weight_map)
      detail::require(tensors_.count(t) != 0, name_, ": model.safetensors.index.json lists '", t, "' in ", f,
                      ", which has no such tensor");
  }

  static std::string join(const std::vector<std::string>& v, std::size_t most = 8) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < most; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > most) s += ", ... (" + std::to_string(v.size()) + " in all)";
    return s;
  }

  // Every expected tensor present, shaped and typed as the config says; nothing else there.
  void check_tensors() {
    const index d = cfg_.n_embd, hd = cfg_.head_dim(), q = cfg_.n_head * hd, kv = cfg_.n_head_kv * hd;
    std::vector<std::pair<std::string, std::vector<index>>> want;
    want.push_back({"model.embed_tokens.weight", {cfg_.n_vocab, d}});
    for (index l = 0; l < cfg_.n_layer; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      want.push_back({p + "input_layernorm.weight", {d}});
      want.push_back({p + "post_attention_layernorm.weight", {d}});
      for (const linear_recipe& r : block_linears)
        want.push_back({hf_tensor_name(l, r.s, "weight"), {width_of(cfg_, r.rows), width_of(cfg_, r.cols)}});
      if (qkv_bias_) {
        want.push_back({p + "self_attn.q_proj.bias", {q}});
        want.push_back({p + "self_attn.k_proj.bias", {kv}});
        want.push_back({p + "self_attn.v_proj.bias", {kv}});
      }
      if (o_bias_) want.push_back({p + "self_attn.o_proj.bias", {d}});
      if (qk_norm_) {
        want.push_back({p + "self_attn.q_norm.weight", {hd}});
        want.push_back({p + "self_attn.k_norm.weight", {hd}});
      }
    }
    want.push_back({"model.norm.weight", {d}});
    if (!tied_) want.push_back({"lm_head.weight", {cfg_.n_vocab, d}});

    std::vector<std::string> missing, bad;
    std::set<std::string> expected;
    for (const auto& [name, shape] : want) {
      expected.insert(name);
      const auto it = tensors_.find(name);
      if (it == tensors_.end()) {
        missing.push_back(name);
        continue;
      }
      const auto& info = *shards_[it->second].find(name);
      std::vector<index> got(info.shape.begin(), info.shape.end());
      if (got != shape) bad.push_back(name + " is " + shape_text(got) + ", expected " + shape_text(shape));
      else if (info.dtype != io::st_dtype::f32 && info.dtype != io::st_dtype::f16 && info.dtype != io::st_dtype::bf16)
        bad.push_back(name + " has dtype " + std::string(io::traits(info.dtype).name) + " (F32, F16 or BF16 are read)");
    }
    detail::require(missing.empty(), name_, ": ", architecture_, " tensor(s) missing: ", join(missing));
    detail::require(bad.empty(), name_, ": ", join(bad, 4));
    std::vector<std::string> extra;
    for (const auto& [name, where] : tensors_) {
      if (expected.count(name) != 0) continue;
      if (name.ends_with(".rotary_emb.inv_freq")) continue;  // older checkpoints store RoPE's buffer
      if (tied_ && name == "lm_head.weight") continue;       // tied: transformers ignores the copy
      extra.push_back(name);
    }
    detail::require(extra.empty(), name_, ": tensor(s) the ", architecture_, " runner does not use: ", join(extra),
                    " (a variant this loader does not implement?)");
  }

  static std::string shape_text(const std::vector<index>& s) {
    std::string t = "[";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
  }

  std::size_t where(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) detail::fail(name_, ": no tensor '", name, "'");
    return it->second;
  }

  std::filesystem::path dir_;
  std::string name_, architecture_, torch_dtype_;
  family family_ = family::llama;
  llama_config cfg_;
  bool tied_ = false, qkv_bias_ = false, o_bias_ = false, qk_norm_ = false;
  std::optional<io::bpe_tokenizer::token_id> bos_, eos_;
  std::vector<std::string> shard_names_;
  std::vector<io::safetensors_file> shards_;
  std::map<std::string, std::size_t, std::less<>> tensors_;  // tensor name → its shard in shards_
};

// lowbit-quantize --model DIR: the float model and its tokenizer from a Hugging Face folder.
struct hf_model {
  llama_model model;
  io::bpe_tokenizer tokenizer;
};
inline hf_model load_hf_model(const std::filesystem::path& dir) {
  const auto c = hf_checkpoint::open(dir);
  return {c.load_model(), c.load_tokenizer()};
}

}  // namespace lowbit::tools
