// lowbit-quantize --export gptq|awq (hf_export.hpp): a quantized model as a Hugging Face
// GPTQ or AutoAWQ checkpoint folder, and that folder read back.
#include "lowbit-quantize/hf_export.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <vector>

#include "lowbit/io/atomic_file.hpp"
#include "lowbit/io/json.hpp"
#include "lowbit/io/safetensors.hpp"
#include "model/hf_checkpoint.hpp"

#include <unistd.h>

namespace lowbit::tools {

namespace {

using rowmajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::string module_prefix(index l, slot s) {
  const linear_recipe& r = recipe_of(s);
  return "model.layers." + std::to_string(l) + "." + r.hf_module + "." + r.hf;
}

// q / k rows go back to Hugging Face's order with model/hf_checkpoint.hpp's hf_rope_order.
std::vector<index> identity_order(index n) {
  std::vector<index> order(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  return order;
}
std::vector<index> row_order_of(const llama_config& c, slot s) {
  const index hd = c.head_dim();
  if (recipe_of(s).rope_rows) return hf_rope_order(s == slot::q ? c.n_head : c.n_head_kv, hd);
  return identity_order(width_of(c, recipe_of(s).rows));
}
Eigen::VectorXf reorder(const Eigen::VectorXf& v, const std::vector<index>& order) {
  Eigen::VectorXf out(static_cast<index>(order.size()));
  for (std::size_t r = 0; r < order.size(); ++r) out(static_cast<index>(r)) = v(order[r]);
  return out;
}
Eigen::VectorXf unorder(const Eigen::VectorXf& v, const std::vector<index>& order) {
  Eigen::VectorXf out(v.size());
  for (std::size_t r = 0; r < order.size(); ++r) out(order[r]) = v(static_cast<index>(r));
  return out;
}

std::vector<half> to_fp16(std::span<const float> v, const std::string& name) {
  std::vector<half> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    detail::require(std::isfinite(v[i]) && std::fabs(v[i]) <= half_max, "--export: tensor '", name, "' element ", i,
                    " is ", v[i], ", outside fp16's range (the checkpoint stores fp16)");
    out[i] = half(v[i]);
  }
  return out;
}
void add_fp16_vector(io::safetensors_writer& w, const std::string& name, const Eigen::VectorXf& v) {
  w.add<half>(name, {static_cast<std::uint64_t>(v.size())}, to_fp16(std::span<const float>(v.data(), static_cast<std::size_t>(v.size())), name));
}
void add_fp16_matrix(io::safetensors_writer& w, const std::string& name, const Eigen::MatrixXf& M) {
  const rowmajor R = M;
  w.add<half>(name, {static_cast<std::uint64_t>(M.rows()), static_cast<std::uint64_t>(M.cols())},
              to_fp16(std::span<const float>(R.data(), static_cast<std::size_t>(R.size())), name));
}

bool all_ones(const Eigen::VectorXf& v) { return (v.array() == 1.0f).all(); }

// The AWQ input scale of a tap's linears, which must agree (one vector per scaling group).
Eigen::VectorXf shared_input_scaling(const llama_block& b, tap t, index l) {
  const auto slots = tap_slots(t);
  const Eigen::VectorXf s = b[slots[0]].input_scaling();
  for (slot other : slots)
    detail::require(b[other].input_scaling().size() == s.size() && (s.size() == 0 || b[other].input_scaling() == s),
                    "--export: blk.", l, ".", slot_name(other), " has an input scale unlike blk.", l, ".", slot_name(slots[0]),
                    "'s; linears that read one input need one scale to fold into its producer");
  return s;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string quantization_config_json(const hf_export_options& o, io::gptq_checkpoint ck, bool sym) {
  const int gs = o.group == 0 ? -1 : o.group;
  if (o.format == int32_format::awq)
    return "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": " + std::to_string(gs) +
           ", \"zero_point\": true, \"version\": \"gemm\", \"modules_to_not_convert\": null}";
  return "{\"quant_method\": \"gptq\", \"bits\": " + std::to_string(o.bits) + ", \"group_size\": " + std::to_string(gs) +
         ", \"desc_act\": false, \"sym\": " + (sym ? "true" : "false") + ", \"true_sequential\": true, \"damp_percent\": 0.01" +
         ", \"checkpoint_format\": \"" + io::gptq_checkpoint_name(ck) + "\"}";
}

// config.json of a Llama model read from a GGUF (its llama.* keys and tokenizer ids).
std::string config_from_gguf(const io::gguf_file& g, const llama_config& c, bool tied, const std::string& qconfig) {
  auto opt_id = [&](const char* k) { return g.has(k) ? std::to_string(g.get_uint(k)) : std::string("null"); };
  std::ostringstream s;
  s << "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
    << "  \"hidden_size\": " << c.n_embd << ",\n  \"intermediate_size\": " << c.n_ff << ",\n"
    << "  \"num_hidden_layers\": " << c.n_layer << ",\n  \"num_attention_heads\": " << c.n_head << ",\n"
    << "  \"num_key_value_heads\": " << c.n_head_kv << ",\n  \"head_dim\": " << c.head_dim() << ",\n"
    << "  \"hidden_act\": \"silu\",\n  \"max_position_embeddings\": " << (c.n_ctx_train > 0 ? c.n_ctx_train : 2048) << ",\n"
    << "  \"rms_norm_eps\": " << number(c.rms_eps) << ",\n  \"rope_theta\": " << number(c.rope_base) << ",\n"
    << "  \"rope_scaling\": null,\n  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n  \"mlp_bias\": false,\n  \"pretraining_tp\": 1,\n"
    << "  \"tie_word_embeddings\": " << (tied ? "true" : "false") << ",\n  \"vocab_size\": " << c.n_vocab << ",\n"
    << "  \"bos_token_id\": " << opt_id("tokenizer.ggml.bos_token_id") << ",\n"
    << "  \"eos_token_id\": " << opt_id("tokenizer.ggml.eos_token_id") << ",\n";
  if (g.has("tokenizer.ggml.padding_token_id")) s << "  \"pad_token_id\": " << opt_id("tokenizer.ggml.padding_token_id") << ",\n";
  s << "  \"torch_dtype\": \"float16\",\n  \"use_cache\": true,\n  \"quantization_config\": " << qconfig << "\n}\n";
  return s.str();
}

// The source folder's config.json with "quantization_config" added before its closing brace.
std::string config_from_hf(const std::filesystem::path& dir, const std::string& qconfig) {
  std::ifstream f(dir / "config.json", std::ios::binary);
  detail::require(static_cast<bool>(f), "--export: cannot read ", (dir / "config.json").string());
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const io::json_value cfg = io::parse_json(text);
  detail::require(cfg.find("quantization_config") == nullptr, "--export: ", (dir / "config.json").string(),
                  " already has a quantization_config");
  const auto close = text.find_last_of('}');
  detail::require(close != std::string::npos, "--export: ", (dir / "config.json").string(), " is not a JSON object");
  const bool empty = cfg.size() == 0;
  std::size_t end = close;  // after the last member, before the whitespace that precedes '}'
  while (end > 0 && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  text.insert(end, std::string(empty ? "" : ",") + "\n  \"quantization_config\": " + qconfig);
  (void)io::parse_json(text);  // still one valid object
  return text;
}

// tokenizer.json and tokenizer_config.json of a GGUF's byte-level BPE tokenizer, as
// transformers' tokenizers library reads them (the layout scripts/make-hf-reference writes).
// A GGUF without tokenizer keys gives none (the folder then has no tokenizer files).
std::optional<std::pair<std::string, std::string>> tokenizer_from_gguf(const io::gguf_file& g, index max_positions) {
  if (!g.has("tokenizer.ggml.model") && !g.has("tokenizer.ggml.tokens")) return std::nullopt;
  detail::require(g.has("tokenizer.ggml.model") && g.get_string("tokenizer.ggml.model") == "gpt2",
                  "--export: the GGUF's tokenizer is not byte-level BPE (tokenizer.ggml.model = gpt2); only those are "
                  "written as tokenizer.json");
  const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
  const auto merges = g.has("tokenizer.ggml.merges") ? g.get_string_array("tokenizer.ggml.merges") : std::vector<std::string>{};
  std::vector<std::int64_t> types = g.has("tokenizer.ggml.token_type") ? g.get_int_array("tokenizer.ggml.token_type")
                                                                        : std::vector<std::int64_t>(tokens.size(), 1);
  detail::require(types.size() == tokens.size(), "--export: tokenizer.ggml.token_type has ", types.size(), " entries for ",
                  tokens.size(), " tokens");
  const std::string pre = g.has("tokenizer.ggml.pre") ? g.get_string("tokenizer.ggml.pre") : "gpt2";
  const std::string byte_level = R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})";
  std::string pre_tok;
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell")
    pre_tok = R"({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, )" + byte_level + "]}";
  else if (pre == "gpt2" || pre == "gpt-2")
    pre_tok = byte_level;
  else
    detail::fail("--export: the GGUF's pre-tokenizer '", pre, "' has no tokenizer.json equivalent here (smollm, starcoder, gpt2)");
  std::string j = "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [";
  bool first = true;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] != 3 && types[i] != 4) continue;  // control and user-defined tokens
    j += std::string(first ? "" : ", ") + "{\"id\": " + std::to_string(i) + ", \"content\": " + io::json_quote(tokens[i]) +
         ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": " + (types[i] != 3 ? "true" : "false") +
         ", \"special\": " + (types[i] == 3 ? "true" : "false") + "}";
    first = false;
  }
  const bool add_bos = g.has("tokenizer.ggml.add_bos_token") && g.get_bool("tokenizer.ggml.add_bos_token");
  const bool has_bos = g.has("tokenizer.ggml.bos_token_id"), has_eos = g.has("tokenizer.ggml.eos_token_id");
  auto token_at = [&](const char* key) {
    const auto id = g.get_uint(key);
    detail::require(id < tokens.size(), "--export: ", key, " = ", id, " is outside the vocabulary");
    return tokens[static_cast<std::size_t>(id)];
  };
  std::string post = R"({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})";
  if (add_bos && has_bos) {
    const std::string b = io::json_quote(token_at("tokenizer.ggml.bos_token_id"));
    const std::string id = std::to_string(g.get_uint("tokenizer.ggml.bos_token_id"));
    post = "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": " + b + ", \"type_id\": 0}}, "
           "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [{\"SpecialToken\": {\"id\": " + b + ", \"type_id\": 0}}, "
           "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], "
           "\"special_tokens\": {" + b + ": {\"id\": " + b + ", \"ids\": [" + id + "], \"tokens\": [" + b + "]}}}";
  }
  j += "], \"normalizer\": null, \"pre_tokenizer\": " + pre_tok + ", \"post_processor\": " + post +
       ", \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true}"
       ", \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null, "
       "\"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false, \"vocab\": {";
  for (std::size_t i = 0; i < tokens.size(); ++i) j += (i ? ", " : "") + io::json_quote(tokens[i]) + ": " + std::to_string(i);
  j += "}, \"merges\": [";
  for (std::size_t i = 0; i < merges.size(); ++i) j += (i ? ", " : "") + io::json_quote(merges[i]);
  j += "]}}\n";
  // Parsed back: valid JSON, and no token twice (the parser refuses duplicate keys).
  detail::with_context([&] { (void)io::parse_json(j, io::json_limits{.max_bytes = j.size() + 1}); },
                       "--export: the GGUF's vocabulary does not make a valid tokenizer.json: ");
  std::string c = "{\n  \"add_bos_token\": " + std::string(add_bos ? "true" : "false") +
                  ",\n  \"add_eos_token\": false,\n  \"clean_up_tokenization_spaces\": false,\n  \"model_max_length\": " +
                  std::to_string(max_positions) + ",\n  \"tokenizer_class\": \"GPT2Tokenizer\"";
  if (has_bos) c += ",\n  \"bos_token\": " + io::json_quote(token_at("tokenizer.ggml.bos_token_id"));
  if (has_eos) c += ",\n  \"eos_token\": " + io::json_quote(token_at("tokenizer.ggml.eos_token_id"));
  if (g.has("tokenizer.chat_template")) c += ",\n  \"chat_template\": " + io::json_quote(g.get_string("tokenizer.chat_template"));
  c += "\n}\n";
  return std::pair{j, c};
}

std::vector<std::byte> as_bytes(const std::string& s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// A folder next to `dir` that becomes `dir` only when complete; removed if anything fails.
class staging_folder {
 public:
  explicit staging_folder(const std::filesystem::path& dir) : final_(std::filesystem::absolute(dir)) {
    std::string tmpl = (final_.parent_path() / (final_.filename().string() + ".tmp-XXXXXX")).string();
    detail::require(::mkdtemp(tmpl.data()) != nullptr, "--export: cannot create a folder next to ", final_.string(), ": ",
                    std::strerror(errno));
    path_ = tmpl;
  }
  staging_folder(const staging_folder&) = delete;
  staging_folder& operator=(const staging_folder&) = delete;
  ~staging_folder() {
    std::error_code ec;
    if (!committed_) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  void write(const std::string& name, std::span<const std::byte> bytes) { io::write_file_atomic((path_ / name).string(), bytes); }
  void commit() {
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                            std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                            std::filesystem::perms::others_exec);
    detail::require(!std::filesystem::exists(final_), "--export: ", final_.string(), " appeared while the model was written");
    std::filesystem::rename(path_, final_);
    committed_ = true;
  }

 private:
  std::filesystem::path final_, path_;
  bool committed_ = false;
};

}  // namespace

void check_hf_export(const llama_model& m, const hf_export_options& o) {
  detail::require(is_supported_bit_width(o.bits), "--export ", int32_format_name(o.format), ": --bits ", o.bits, " is not ",
                  supported_bit_widths_text);
  detail::require(o.format != int32_format::awq || o.bits == 4,
                  "--export awq: AutoAWQ's GEMM layout holds 4-bit codes; use --bits 4 or --export gptq");
  for (slot s : all_slots) {
    const index out = width_of(m.cfg, recipe_of(s).rows), in = width_of(m.cfg, recipe_of(s).cols);
    if (o.format == int32_format::awq)
      detail::require(out % 8 == 0, "--export awq: ", recipe_of(s).hf, " has ", out, " outputs, not a multiple of 8");
    else
      detail::require(in * o.bits % 32 == 0 && out * o.bits % 32 == 0, "--export gptq: ", recipe_of(s).hf, " is ", out, " x ",
                      in, ", which does not fill whole int32 words at ", o.bits, " bits");
  }
  for (const auto& b : m.blocks)
    detail::require(b.q_norm.size() == 0 || b.q_norm.size() == m.cfg.head_dim(), "--export: q_norm of ", b.q_norm.size(),
                    " entries, expected head_dim ", m.cfg.head_dim());
}

void check_hf_export_source(const hf_export_source& src, const llama_model& m) {
  if (src.gguf != nullptr) (void)tokenizer_from_gguf(*src.gguf, m.cfg.n_ctx_train);
  else (void)config_from_hf(src.hf_dir, "{}");
}

hf_export_result write_hf_export(const hf_export_source& src, const llama_model& m, const hf_export_options& o,
                                 const std::string& dir, const std::map<std::string, std::string>& meta) {
  check_hf_export(m, o);
  detail::require(!std::filesystem::exists(std::filesystem::symlink_status(dir)), "--export: --out ", dir,
                  " exists; the export writes a new folder (remove it or choose another name)");
  const llama_config& c = m.cfg;
  hf_export_result res;

  // ---- every block linear as GPTQ tensors (true zeros), AWQ's input scales folded
  struct layer {
    std::string prefix;
    io::gptq_tensors t;
  };
  std::vector<layer> layers;
  std::vector<Eigen::VectorXf> attn_norm(static_cast<std::size_t>(c.n_layer)), ffn_norm(attn_norm), v_bias(attn_norm);
  for (index l = 0; l < c.n_layer; ++l) {
    const llama_block& b = m.blocks[static_cast<std::size_t>(l)];
    const auto L = static_cast<std::size_t>(l);
    attn_norm[L] = b.attn_norm;
    ffn_norm[L] = b.ffn_norm;
    v_bias[L] = b.v_bias;
    std::map<slot, Eigen::VectorXf> row_scale;  // the producer rows a consumer's scale folds into
    if (const Eigen::VectorXf s = shared_input_scaling(b, tap::attn_in, l); s.size() != 0) {
      attn_norm[L] = attn_norm[L].cwiseProduct(s);
      ++res.folded_scales;
    }
    if (const Eigen::VectorXf s = shared_input_scaling(b, tap::ffn_in, l); s.size() != 0) {
      ffn_norm[L] = ffn_norm[L].cwiseProduct(s);
      ++res.folded_scales;
    }
    if (const Eigen::VectorXf s = b[slot::o].input_scaling(); s.size() != 0 && !all_ones(s)) {
      // Attention output channel (h, d) is row (h / group, d) of v_proj: one row per channel only without GQA.
      detail::require(c.n_head == c.n_head_kv, "--export: blk.", l, ".attn_output has an input scale, which folds into "
                      "v_proj's rows only without grouped-query attention (", c.n_head, " query heads, ", c.n_head_kv, " kv heads)");
      row_scale[slot::v] = s;
      if (v_bias[L].size() != 0) v_bias[L] = v_bias[L].cwiseProduct(s);
      ++res.folded_scales;
    }
    if (const Eigen::VectorXf s = b[slot::down].input_scaling(); s.size() != 0) {
      row_scale[slot::up] = s;  // silu(gate) · (up ⊙ s): the product scales with up's rows
      ++res.folded_scales;
    }
    for (slot s : all_slots) {
      const std::string name = "blk." + std::to_string(l) + "." + slot_name(s);
      const auto it = row_scale.find(s);
      layers.push_back({module_prefix(l, s), b[s].to_gptq_rows(row_order_of(c, s), it == row_scale.end() ? Eigen::VectorXf() : it->second, name)});
    }
  }
  // ---- one checkpoint convention for the file
  res.checkpoint = io::gptq_checkpoint::v2;
  if (o.format == int32_format::gptq) {
    bool v1 = true;
    for (const auto& x : layers) v1 = v1 && io::min_true_zero(x.t, io::gptq_checkpoint::v2) >= 1;
    res.checkpoint = v1 ? io::gptq_checkpoint::v1 : io::gptq_checkpoint::v2;
  }
  const bool sym = !layers.empty() && layers.front().t.sym;

  // ---- model.safetensors
  io::safetensors_writer w;
  w.set_metadata("format", "pt");
  w.set_metadata("lowbit.export", int32_format_name(o.format));
  for (const auto& [k, v] : meta) w.set_metadata("lowbit." + k, v);
  add_fp16_matrix(w, "model.embed_tokens.weight", m.tok_embd);
  std::vector<io::awq_tensors> awq;
  for (index l = 0; l < c.n_layer; ++l) {
    const llama_block& b = m.blocks[static_cast<std::size_t>(l)];
    const auto L = static_cast<std::size_t>(l);
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add_fp16_vector(w, p + "input_layernorm.weight", attn_norm[L]);
    add_fp16_vector(w, p + "post_attention_layernorm.weight", ffn_norm[L]);
    const std::vector<index> q_rows = row_order_of(c, slot::q), k_rows = row_order_of(c, slot::k);
    if (b.q_bias.size() != 0) add_fp16_vector(w, p + "self_attn.q_proj.bias", reorder(b.q_bias, q_rows));
    if (b.k_bias.size() != 0) add_fp16_vector(w, p + "self_attn.k_proj.bias", reorder(b.k_bias, k_rows));
    if (v_bias[L].size() != 0) add_fp16_vector(w, p + "self_attn.v_proj.bias", v_bias[L]);
    if (b.o_bias.size() != 0) add_fp16_vector(w, p + "self_attn.o_proj.bias", b.o_bias);
    const std::vector<index> head_rows = hf_rope_order(1, c.head_dim());
    if (b.q_norm.size() != 0) add_fp16_vector(w, p + "self_attn.q_norm.weight", reorder(b.q_norm, head_rows));
    if (b.k_norm.size() != 0) add_fp16_vector(w, p + "self_attn.k_norm.weight", reorder(b.k_norm, head_rows));
    for (std::size_t i = 0; i < linears_per_block; ++i) {
      layer& x = layers[L * linears_per_block + i];
      if (o.format == int32_format::awq) {
        awq.push_back(io::awq_from_gptq(x.t, io::gptq_checkpoint::v2));
        io::add_awq(w, x.prefix, awq.back());
      } else {
        x.t = io::with_checkpoint(std::move(x.t), io::gptq_checkpoint::v2, res.checkpoint);
        io::add_gptq(w, x.prefix, x.t);
      }
    }
  }
  add_fp16_vector(w, "model.norm.weight", m.output_norm);
  const bool tied = m.output->weight() == m.tok_embd;
  if (!tied) add_fp16_matrix(w, "lm_head.weight", m.output->weight());
  const std::vector<std::byte> model_bytes = w.bytes();

  // ---- config, tokenizer
  const std::string qconfig = quantization_config_json(o, res.checkpoint, sym);
  std::vector<std::pair<std::string, std::vector<std::byte>>> files;
  if (src.gguf != nullptr) {
    files.emplace_back("config.json", as_bytes(config_from_gguf(*src.gguf, c, tied, qconfig)));
    if (auto tok = tokenizer_from_gguf(*src.gguf, c.n_ctx_train > 0 ? c.n_ctx_train : 2048)) {
      files.emplace_back("tokenizer.json", as_bytes(tok->first));
      files.emplace_back("tokenizer_config.json", as_bytes(tok->second));
    }
  } else {
    files.emplace_back("config.json", as_bytes(config_from_hf(src.hf_dir, qconfig)));
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"}) {
      const auto p = src.hf_dir / f;
      if (!std::filesystem::is_regular_file(p)) continue;
      std::ifstream in(p, std::ios::binary);
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      files.emplace_back(f, as_bytes(text));
    }
  }
  if (o.format == int32_format::gptq)
    files.emplace_back("quantize_config.json", as_bytes(qconfig + "\n"));

  // ---- write, read back from disk, compare, then move into place
  staging_folder stage(dir);
  stage.write("model.safetensors", model_bytes);
  for (const auto& [name, bytes] : files) stage.write(name, bytes);
  {
    const auto back = io::safetensors_file::open((stage.path() / "model.safetensors").string());
    const int gs = o.group == 0 ? -1 : o.group;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (o.format == int32_format::awq) {
        const auto t = io::read_awq(back, layers[i].prefix, gs);
        detail::require(t.qweight == awq[i].qweight && t.qzeros == awq[i].qzeros && t.scales == awq[i].scales,
                        "--export: ", layers[i].prefix, " reads back differently from what was written (please report this)");
      } else {
        const auto t = io::read_gptq(back, layers[i].prefix, o.bits, gs, sym);
        detail::require(t.qweight == layers[i].t.qweight && t.qzeros == layers[i].t.qzeros && t.scales == layers[i].t.scales &&
                            t.g_idx == layers[i].t.g_idx,
                        "--export: ", layers[i].prefix, " reads back differently from what was written (please report this)");
      }
    }
  }
  res.bytes = model_bytes.size();
  for (const auto& f : files) res.bytes += f.second.size();
  stage.commit();
  return res;
}

llama_model load_hf_export(const std::string& dir, const llama_model& base, const hf_export_options& o) {
  const auto f = io::safetensors_file::open((std::filesystem::path(dir) / "model.safetensors").string());
  const llama_config& c = base.cfg;
  const int gs = o.group == 0 ? -1 : o.group;
  // The settings the checkpoint's loaders read: config.json's quantization_config.
  io::gptq_checkpoint ck = io::gptq_checkpoint::v1;
  bool sym = false;
  {
    std::ifstream in(std::filesystem::path(dir) / "config.json", std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const io::json_value cfg = io::parse_json(text);
    const io::json_value* q = cfg.find("quantization_config");
    detail::require(q != nullptr && q->is_object(), dir, "/config.json has no quantization_config");
    if (const auto* v = q->find("checkpoint_format"); v != nullptr && v->as_string() == "gptq_v2") ck = io::gptq_checkpoint::v2;
    if (const auto* v = q->find("sym"); v != nullptr) sym = v->as_bool();
  }
  auto vec = [&](const std::string& name) {
    const auto v = f.load_vector(name);
    return Eigen::VectorXf(Eigen::Map<const Eigen::VectorXf>(v.data(), static_cast<index>(v.size())));
  };
  auto mat = [&](const std::string& name, index rows, index cols) {
    const auto v = f.load_vector(name);
    detail::require(static_cast<index>(v.size()) == rows * cols, dir, ": ", name, " has ", v.size(), " elements");
    return Eigen::MatrixXf(Eigen::Map<const rowmajor>(v.data(), rows, cols));
  };
  llama_model m;
  m.cfg = c;
  m.tok_embd = mat("model.embed_tokens.weight", c.n_vocab, c.n_embd);
  for (index l = 0; l < c.n_layer; ++l) {
    const llama_block& src = base.blocks[static_cast<std::size_t>(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    llama_block b;
    b.attn_norm = vec(p + "input_layernorm.weight");
    b.ffn_norm = vec(p + "post_attention_layernorm.weight");
    const std::vector<index> head_rows = hf_rope_order(1, c.head_dim());
    if (src.q_bias.size() != 0) b.q_bias = unorder(vec(p + "self_attn.q_proj.bias"), row_order_of(c, slot::q));
    if (src.k_bias.size() != 0) b.k_bias = unorder(vec(p + "self_attn.k_proj.bias"), row_order_of(c, slot::k));
    if (src.v_bias.size() != 0) b.v_bias = vec(p + "self_attn.v_proj.bias");
    if (src.o_bias.size() != 0) b.o_bias = vec(p + "self_attn.o_proj.bias");
    if (src.q_norm.size() != 0) b.q_norm = unorder(vec(p + "self_attn.q_norm.weight"), head_rows);
    if (src.k_norm.size() != 0) b.k_norm = unorder(vec(p + "self_attn.k_norm.weight"), head_rows);
    for (slot s : all_slots) {
      const std::string prefix = module_prefix(l, s);
      const index out = width_of(c, recipe_of(s).rows), in = width_of(c, recipe_of(s).cols);
      const std::vector<float> w = o.format == int32_format::awq ? io::dequantize(io::read_awq(f, prefix, gs))
                                                                 : io::dequantize(io::read_gptq(f, prefix, o.bits, gs, sym), ck);
      detail::require(static_cast<index>(w.size()) == out * in, dir, ": ", prefix, " is not ", out, " x ", in);
      const Eigen::MatrixXf hf = Eigen::Map<const rowmajor>(w.data(), out, in);
      const std::vector<index> order = row_order_of(c, s);
      Eigen::MatrixXf W(out, in);
      for (index r = 0; r < out; ++r) W.row(order[static_cast<std::size_t>(r)]) = hf.row(r);
      b.at(s) = std::make_unique<dense_linear>(std::move(W));
    }
    m.blocks.push_back(std::move(b));
  }
  m.output_norm = vec("model.norm.weight");
  if (f.find("lm_head.weight") != nullptr) m.output = std::make_unique<dense_linear>(mat("lm_head.weight", c.n_vocab, c.n_embd));
  else m.output = std::make_unique<dense_linear>(m.tok_embd);
  return m;
}

}  // namespace lowbit::tools
