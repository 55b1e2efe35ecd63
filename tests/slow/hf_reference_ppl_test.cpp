// Opt-in (ctest -L slow): the reference model as a Hugging Face folder, written by an
// independent converter (scripts/make-hf-reference: the PyPI gguf and safetensors packages;
// scripts/fetch-assets --hf), against the GGUF it came from. Skipped when
// assets/SmolLM2-135M-Instruct-hf is absent. tokenizer.json must give the GGUF tokenizer's ids
// on the whole of WikiText-2 test, and the float perplexity on the same windows must agree:
// to 1e-6 for F32 shards (the same weights: measured bit-identical), within bf16 / f16 rounding of the weights else.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/assets.hpp"
#include "common/bpe_tokenizer.hpp"
#include "lowbit_catch.hpp"
#include "model/hf_checkpoint.hpp"
#include "model/perplexity.hpp"

namespace lt = lowbit::tools;

TEST_CASE("hf reference: SmolLM2 HF folder = its GGUF (tokens and float perplexity)", "[slow][hf]") {
  const auto dir = lowbit::io::assets_dir() / "SmolLM2-135M-Instruct-hf";
  if (!lt::is_hf_folder(dir)) {
    WARN("SKIPPED: " << dir << " not found; run scripts/fetch-assets --hf (or set LOWBIT_ASSETS)");
    return;
  }
  const auto gguf_path = lowbit::io::default_model_path();
  REQUIRE(std::filesystem::exists(gguf_path));
  std::ifstream in(std::string(LOWBIT_SOURCE_DIR) + "/data/wikitext-2/test.txt", std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();

  const auto file = lowbit::io::gguf_file::open(gguf_path.string());
  const auto ids = lowbit::io::bpe_tokenizer::from_gguf(file).encode(text);
  const auto ckpt = lt::hf_checkpoint::open(dir);
  const auto tok = ckpt.load_tokenizer();
  CHECK(tok.vocab_size() == 49152);
  CHECK(tok.pre() == lowbit::io::pre_tokenizer::smollm);
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  CHECK(tok.encode(text) == ids);
  CHECK(ckpt.tied());
  CHECK(ckpt.architecture() == "LlamaForCausalLM");

  auto g = lt::llama_model::from_gguf(file);
  auto h = ckpt.load_model();
  CHECK(h.cfg.n_layer == g.cfg.n_layer);
  CHECK(h.cfg.n_head_kv == g.cfg.n_head_kv);
  CHECK(h.cfg.head_dim() == g.cfg.head_dim());
  CHECK(h.cfg.rope_base == g.cfg.rope_base);
  const auto pg = lt::perplexity(g, ids, 256, 2048, "gguf", false);
  const auto ph = lt::perplexity(h, ids, 256, 2048, "hf", false);
  CHECK(pg.windows == ph.windows);
  CHECK(pg.predictions == ph.predictions);
  const double rel = std::abs(ph.ppl - pg.ppl) / pg.ppl;
  std::printf("hf reference (%s shards %zu): GGUF ppl %.6f, HF ppl %.6f, relative difference %.2e (%td windows x %td)\n",
              ckpt.torch_dtype().c_str(), ckpt.shard_files().size(), pg.ppl, ph.ppl, rel, pg.windows, pg.context);
  if (ckpt.torch_dtype() == "float32") CHECK(rel < 1e-6);  // measured: 0 (the same float32 weights, eps and base)
  else CHECK(rel < 1e-2);  // bf16 keeps 8 bits of mantissa: ~0.4 % per weight, averaging out
}
