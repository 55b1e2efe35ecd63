// Opt-in (ctest -L slow): the real SmolLM2-135M-Instruct model through the tools/ runner,
// tokenized by the project's BPE tokenizer, on the start of WikiText-2 test. Needs the assets
// of scripts/fetch-assets. The float model must have a perplexity an LLM of its size has on
// English prose (docs/results.md: 26.15 on 64 windows of 512 tokens), and 8-bit RTN must
// barely move it.
#include <filesystem>

#include "common/assets.hpp"
#include "lowbit_catch.hpp"
#include "lowbit-quantize/methods.hpp"
#include "lowbit-quantize/text.hpp"
#include "model/perplexity.hpp"
#include "model/sequential.hpp"

namespace lt = lowbit::tools;

TEST_CASE("real model: SmolLM2-135M perplexity on WikiText-2 test is sane", "[slow][llama]") {
  const auto model_path = lowbit::io::default_model_path();
  INFO("model " << model_path.string() << " (run scripts/fetch-assets)");
  REQUIRE(std::filesystem::exists(model_path));
  const std::string text = std::string(LOWBIT_SOURCE_DIR) + "/data/wikitext-2/test.txt";
  INFO("text " << text);
  REQUIRE(std::filesystem::exists(text));

  const auto file = lowbit::io::gguf_file::open(model_path.string());
  const auto ids = lt::load_tokens(file, text, "evaluation text");
  REQUIRE(ids.size() > 300000);  // WikiText-2 test is ~312k SmolLM2 tokens
  auto m = lt::llama_model::from_gguf(file);
  CHECK(m.cfg.n_layer == 30);
  CHECK(m.cfg.n_embd == 576);
  CHECK(m.cfg.n_head_kv == 3);
  const auto f = lt::perplexity(m, ids, 256, 2048, "float", false);
  CHECK(f.windows == 8);
  // A 135M model on WikiText: ~20-35 token-level at short contexts; a wrong RoPE layout or
  // tokenizer gives hundreds.
  CHECK(f.ppl > 12.0);
  CHECK(f.ppl < 45.0);

  // 8-bit RTN, sequential on 2 calibration windows: within 2 % of float.
  lt::method_options o;
  o.bits = 8;
  lt::sequential_options so;
  so.window = 256;
  so.progress = false;
  const std::vector<std::int32_t> calib(ids.begin() + 100000, ids.begin() + 100000 + 512);
  lt::quantize_sequential(m, calib, lt::make_method("rtn", o), so);
  const auto q = lt::perplexity(m, ids, 256, 2048, "rtn8", false);
  CHECK(q.ppl > f.ppl * 0.98);
  CHECK(q.ppl < f.ppl * 1.02);
}
