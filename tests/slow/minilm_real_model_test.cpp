// all-MiniLM-L6-v2 (scripts/fetch-assets --minilm): lowbit's WordPiece tokenizer and float32
// BERT encoder (tools/minilm) against a float64 NumPy implementation of the model
// (tests/data/minilm/make_embeddings.py) on real sentences, one of them truncated at 256 ids.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/assets.hpp"
#include "lowbit_catch.hpp"
#include "minilm/bert.hpp"
#include "minilm/wordpiece.hpp"

using namespace lowbit::minilm;

TEST_CASE("minilm real model: embeddings match the float64 NumPy reference", "[minilm][model][slow]") {
  const auto dir = lowbit::io::assets_dir() / "all-MiniLM-L6-v2";
  if (!std::filesystem::exists(dir / "model.safetensors") || !std::filesystem::exists(dir / "vocab.txt")) {
    WARN("SKIPPED: " << dir << " incomplete; run scripts/fetch-assets --minilm (or set LOWBIT_ASSETS)");
    return;
  }
  const auto tok = wordpiece_tokenizer::from_file(dir / "vocab.txt");
  const auto model = bert_model::load(dir / "model.safetensors");
  CHECK(model.cfg.layers == 6);
  CHECK(model.cfg.hidden == 384);
  CHECK(model.cfg.heads == 12);
  CHECK(model.cfg.intermediate == 1536);
  std::ifstream in(std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "minilm" / "embeddings.tsv");
  REQUIRE(in.good());
  batch b;
  std::vector<Eigen::VectorXd> want;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    REQUIRE(t2 != std::string::npos);
    std::vector<std::int32_t> ids;
    std::istringstream is(line.substr(t1 + 1, t2 - t1 - 1));
    for (std::int32_t id; is >> id;) ids.push_back(id);
    INFO("text: " << line.substr(0, t1));
    CHECK(tok.encode(line.substr(0, t1), 256) == ids);
    std::istringstream es(line.substr(t2 + 1));
    std::vector<double> e;
    for (double v; es >> v;) e.push_back(v);
    REQUIRE(e.size() == 384);
    want.emplace_back(Eigen::Map<Eigen::VectorXd>(e.data(), 384));
    b.add(ids);
  }
  REQUIRE(b.sentences() >= 6);
  const act e = model.embed_sentences(b);
  for (Eigen::Index s = 0; s < b.sentences(); ++s) {
    const Eigen::VectorXd got = e.col(s).cast<double>();
    INFO("sentence " << s << ": max |diff| " << (got - want[static_cast<std::size_t>(s)]).cwiseAbs().maxCoeff());
    CHECK((got - want[static_cast<std::size_t>(s)]).cwiseAbs().maxCoeff() < 1e-5);
    CHECK(got.normalized().dot(want[static_cast<std::size_t>(s)].normalized()) > 1.0 - 1e-9);  // cosine
  }
}
