// lowbit-quantize --export gptq|awq (tools/lowbit-quantize/hf_export.hpp) on a tiny random
// Llama model written as a real GGUF (tests/support/tiny_llama_gguf.hpp):
//   - RTN and GPTQ as GPTQ checkpoints (2, 3, 4, 8 bits; g32 and per channel): the folder,
//     read back by lowbit's reader and dequantized, is exactly the quantized model's weights
//     (q / k rows back from Hugging Face's RoPE order), the file says "gptq" (v1) when every
//     zero point is at least 1, config.json carries quantization_config and parses, tokenizer.json
//     parses and holds the GGUF's vocabulary;
//   - AWQ as an AutoAWQ checkpoint: the input scales folded into the norms and up_proj's rows
//     give the same model (logits within fp16 rounding of the in-memory model's);
//   - if python3 with numpy and safetensors is found (LOWBIT_PYTHON, else the assets venv of
//     scripts/fetch-assets --hf, else python3), scripts/reference/int32_checkpoint.py, written
//     from the published packing descriptions, decodes every layer to the same weights;
//   - refusals: a method with outliers, an existing --out, 3 bits for AWQ.
#include <Eigen/Dense>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "lowbit-quantize/hf_export.hpp"
#include "lowbit-quantize/methods.hpp"
#include "lowbit/io/json.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit_catch.hpp"
#include "model/llama.hpp"
#include "model/sequential.hpp"
#include "tiny_llama_gguf.hpp"

namespace lt = lowbit::tools;
namespace io = lowbit::io;
namespace fs = std::filesystem;
using idx = lowbit::index;

namespace {

using namespace lowbit_test::tiny_llama;

struct scratch {
  fs::path dir;
  scratch() {
    std::string t = (fs::temp_directory_path() / "lowbit-hf-export-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    dir = t;
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

lt::llama_model quantized_tiny(const io::gguf_file& in, const std::string& method, int bits, int group) {
  auto m = lt::llama_model::from_gguf(in);
  lt::method_options o;
  o.bits = bits;
  o.group = group;
  o.awq_windows = 2;
  lt::sequential_options so;
  so.window = 16;
  so.progress = false;
  so.float_inputs = lt::uses_float_inputs(method, o);
  (void)lt::quantize_sequential(m, random_tokens(16 * 6, 11), lt::make_method(method, o), so);
  return m;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Eigen::MatrixXf logits(lt::llama_model& m, const std::vector<std::int32_t>& ids) {
  return m.forward(ids, static_cast<idx>(ids.size()));
}

std::string python() {
  if (const char* p = std::getenv("LOWBIT_PYTHON"); p != nullptr && *p != '\0') return p;
  const fs::path venv = fs::path(LOWBIT_SOURCE_DIR) / "assets" / ".venv-hf" / "bin" / "python";
  if (fs::exists(venv)) return venv.string();
  return "python3";
}
bool python_available(const std::string& py) {
  return std::system((py + " -c 'import numpy, safetensors' > /dev/null 2>&1").c_str()) == 0;
}

// The weights the folder should decode to, in llama.cpp names, for int32_checkpoint.py --compare.
void write_expected(const lt::llama_model& m, const fs::path& path) {
  io::safetensors_writer w;
  for (idx l = 0; l < m.cfg.n_layer; ++l)
    for (lt::slot s : lt::all_slots)
      w.add_matrix("blk." + std::to_string(l) + "." + lt::slot_name(s) + ".weight",
                   m.blocks[static_cast<std::size_t>(l)][s].weight());
  w.write(path.string());
}

// int32_checkpoint.py decodes the folder to exactly `expected`'s weights.
void check_with_independent_decoder(const std::string& py, const fs::path& folder, const lt::llama_model& expected,
                                    const fs::path& scratch_dir) {
  const fs::path ref = scratch_dir / "expected.safetensors";
  write_expected(expected, ref);
  const std::string cmd = py + " " + (fs::path(LOWBIT_SOURCE_DIR) / "scripts/reference/int32_checkpoint.py").string() + " " +
                          folder.string() + " --compare " + ref.string();
  CHECK(std::system(cmd.c_str()) == 0);
}

}  // namespace

TEST_CASE("hf export: GPTQ folders read back as the quantized model's weights", "[tools][hf_export]") {
  const auto in_bytes = tiny_gguf(5);
  const auto in = io::gguf_file::from_memory(in_bytes, "tiny input");
  const std::string py = python();
  const bool have_py = python_available(py);
  if (!have_py) WARN(py << " with numpy and safetensors not found: the independent decoder check is skipped");
  struct row {
    const char* method;
    int bits, group;
  };
  for (const row r : {row{"rtn", 4, 32}, row{"rtn", 3, 32}, row{"gptq", 2, 32}, row{"gptq", 8, 128}, row{"gptq", 3, 128}}) {
    CAPTURE(r.method, r.bits, r.group);
    scratch t;
    const auto m = quantized_tiny(in, r.method, r.bits, r.group);
    const lt::hf_export_options o{lt::int32_format::gptq, r.bits, r.group};
    lt::hf_export_source src;
    src.gguf = &in;
    const fs::path out = t.dir / "model";
    const auto res = lt::write_hf_export(src, m, o, out.string(), {{"method", r.method}});
    REQUIRE(fs::is_directory(out));
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "quantize_config.json"})
      CHECK(fs::is_regular_file(out / f));
    // No staging folder left next to it.
    int entries = 0;
    for (const auto& e : fs::directory_iterator(t.dir)) entries += e.path().filename() != "model";
    CHECK(entries == 0);
    CHECK(res.folded_scales == 0);

    const io::json_value cfg = io::parse_json(read_text(out / "config.json"));
    const io::json_value* q = cfg.find("quantization_config");
    REQUIRE(q != nullptr);
    CHECK(q->find("quant_method")->as_string() == "gptq");
    CHECK(q->find("bits")->as_u64() == static_cast<std::uint64_t>(r.bits));
    CHECK(q->find("checkpoint_format")->as_string() == io::gptq_checkpoint_name(res.checkpoint));
    CHECK(cfg.find("num_key_value_heads")->as_u64() == static_cast<std::uint64_t>(n_head_kv));
    CHECK(cfg.find("tie_word_embeddings")->as_bool());  // the tiny GGUF has no output.weight
    const io::json_value tok = io::parse_json(read_text(out / "tokenizer.json"));
    CHECK(tok.find("model")->find("vocab")->size() == static_cast<std::size_t>(n_vocab));
    CHECK(tok.find("model")->find("vocab")->find("t7")->as_u64() == 7);

    // v1 unless a zero point is 0 (then v2, and the file must say so).
    const auto st = io::safetensors_file::open((out / "model.safetensors").string());
    const auto first = io::read_gptq(st, "model.layers.0.self_attn.q_proj", r.bits, r.group, false);
    CHECK(io::min_true_zero(first, res.checkpoint) >= (res.checkpoint == io::gptq_checkpoint::v1 ? 1 : 0));

    auto back = lt::load_hf_export(out.string(), m, o);
    for (idx l = 0; l < n_layer; ++l)
      for (lt::slot s : lt::all_slots) {
        CAPTURE(l, lt::slot_name(s));
        const Eigen::MatrixXf a = m.blocks[static_cast<std::size_t>(l)][s].weight();
        const Eigen::MatrixXf b = back.blocks[static_cast<std::size_t>(l)][s].weight();
        REQUIRE(a.rows() == b.rows());
        CHECK((a - b).cwiseAbs().maxCoeff() == 0.0f);
      }
    // Norms and the embedding are stored fp16: equal to fp16 rounding.
    CHECK((back.tok_embd - m.tok_embd).cwiseAbs().maxCoeff() <= 1e-3f * m.tok_embd.cwiseAbs().maxCoeff());
    CHECK(back.output->weight() == back.tok_embd);  // tied: no lm_head.weight in the file
    CHECK(st.find("lm_head.weight") == nullptr);
    if (have_py) check_with_independent_decoder(py, out, m, t.dir);
  }
}

TEST_CASE("hf export: AWQ folds its scales into norms and rows and keeps the model", "[tools][hf_export]") {
  const auto in_bytes = tiny_gguf(6);
  const auto in = io::gguf_file::from_memory(in_bytes, "tiny input");
  const std::string py = python();
  const bool have_py = python_available(py);
  for (const auto format : {lt::int32_format::awq, lt::int32_format::gptq}) {
    CAPTURE(lt::int32_format_name(format));
    scratch t;
    auto m = quantized_tiny(in, "awq", 4, 32);
    REQUIRE(m.blocks[0][lt::slot::q].input_scaling().size() == n_embd);
    const lt::hf_export_options o{format, 4, 32};
    lt::hf_export_source src;
    src.gguf = &in;
    const fs::path out = t.dir / "awq";
    const auto res = lt::write_hf_export(src, m, o, out.string(), {});
    // q/k/v → attention norm, gate/up → MLP norm, down → up rows (o: GQA here, its scale is all ones).
    CHECK(res.folded_scales == 3 * n_layer);
    const io::json_value cfg = io::parse_json(read_text(out / "config.json"));
    CHECK(cfg.find("quantization_config")->find("quant_method")->as_string() == lt::int32_format_name(format));
    auto back = lt::load_hf_export(out.string(), m, o);
    // The folded model is the same function: logits agree to fp16 rounding of norms and scales.
    const auto ids = random_tokens(24, 3);
    const Eigen::MatrixXf a = logits(m, ids), b = logits(back, ids);
    const double rel = static_cast<double>((a - b).norm() / a.norm());
    CAPTURE(rel);
    CHECK(rel < 2e-3);
    // Without the folding (norms left as they were) the model would be far off: the test can fail.
    CHECK((back.blocks[0].attn_norm - m.blocks[0].attn_norm).norm() > 1e-2f * m.blocks[0].attn_norm.norm());
    if (have_py) check_with_independent_decoder(py, out, back, t.dir);  // the same weights as lowbit's reader
  }
}

TEST_CASE("hf export: refusals name the problem and leave nothing behind", "[tools][hf_export]") {
  const auto in_bytes = tiny_gguf(7);
  const auto in = io::gguf_file::from_memory(in_bytes, "tiny input");
  scratch t;
  lt::hf_export_source src;
  src.gguf = &in;
  {
    lt::method_options o;
    o.bits = 4;
    o.group = 32;
    auto m = lt::llama_model::from_gguf(in);
    lt::sequential_options so;
    so.window = 16;
    so.progress = false;
    (void)lt::quantize_sequential(m, random_tokens(16 * 4, 2), lt::make_method("owq", o), so);
    REQUIRE_THROWS_WITH(lt::write_hf_export(src, m, {lt::int32_format::gptq, 4, 32}, (t.dir / "owq").string(), {}),
                        Catch::Contains("outlier store") && Catch::Contains("blk.0.attn_q"));
    CHECK_FALSE(fs::exists(t.dir / "owq"));
  }
  const auto m = quantized_tiny(in, "rtn", 3, 32);
  REQUIRE_THROWS_WITH(lt::check_hf_export(m, {lt::int32_format::awq, 3, 32}), Catch::Contains("4-bit codes"));
  fs::create_directory(t.dir / "taken");
  REQUIRE_THROWS_WITH(lt::write_hf_export(src, m, {lt::int32_format::gptq, 3, 32}, (t.dir / "taken").string(), {}),
                      Catch::Contains("exists"));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(t.dir)) entries += e.path().filename() != "taken";
  CHECK(entries == 0);
}

TEST_CASE("int32 layouts: AWQ from GPTQ, checkpoint conventions, dequantization", "[interop][hf_export]") {
  // A hand-worked 4-bit layer, 8 outputs x 32 inputs, one group: code (o + i) % 16, zero o + 1, scale 0.5 + o.
  io::gptq_tensors t;
  t.bits = 4;
  t.in_features = 32;
  t.out_features = 8;
  t.group_size = 32;
  t.qweight.assign(4 * 8, 0);
  t.qzeros.assign(1, 0);
  for (idx o = 0; o < 8; ++o) {
    for (idx i = 0; i < 32; ++i)
      t.qweight[static_cast<std::size_t>((i / 8) * 8 + o)] |= static_cast<std::int32_t>(((o + i) % 16) << (4 * (i % 8)));
    t.qzeros[0] |= static_cast<std::int32_t>((o + 1) << (4 * o));
    t.scales.push_back(lowbit::half(0.5f + static_cast<float>(o)));
  }
  t.g_idx.assign(32, 0);
  const auto w = io::dequantize(t, io::gptq_checkpoint::v2);
  for (idx o = 0; o < 8; ++o)
    for (idx i = 0; i < 32; ++i)
      REQUIRE(w[static_cast<std::size_t>(o * 32 + i)] == (0.5f + static_cast<float>(o)) * static_cast<float>((o + i) % 16 - (o + 1)));
  CHECK(io::min_true_zero(t, io::gptq_checkpoint::v2) == 1);
  const auto v1 = io::with_checkpoint(t, io::gptq_checkpoint::v2, io::gptq_checkpoint::v1);
  CHECK(v1.qzeros[0] == static_cast<std::int32_t>(0x76543210));
  CHECK(io::dequantize(v1, io::gptq_checkpoint::v1) == w);
  const auto a = io::awq_from_gptq(t, io::gptq_checkpoint::v2);
  CHECK(io::dequantize(a) == w);
  // AWQ's interleave: nibble j of the zero word holds output awq_order[j]; zero of output o is o + 1.
  for (int j = 0; j < 8; ++j) CHECK(((static_cast<std::uint32_t>(a.qzeros[0]) >> (4 * j)) & 0xFu) == static_cast<std::uint32_t>(io::awq_order[j] + 1));
  // A zero of 0 has no v1 encoding.
  auto z0 = t;
  z0.qzeros[0] &= ~0xF;
  CHECK(io::min_true_zero(z0, io::gptq_checkpoint::v2) == 0);
  REQUIRE_THROWS_WITH(io::with_checkpoint(z0, io::gptq_checkpoint::v2, io::gptq_checkpoint::v1), Catch::Contains("zero point 0"));
}
