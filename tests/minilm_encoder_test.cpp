// BERT encoder (tools/minilm/bert.hpp) on a tiny random-weight BERT the test writes as a
// Hugging Face-named safetensors file: sentence embeddings against a float64 scalar
// reference written here from the BERT equations, plus properties (unit norm, sentences
// independent of their batch neighbours, the hook sees and may replace each group's linears).
// Sequential quantization and the sentence splitters of tools/minilm/fidelity.hpp.
// The real all-MiniLM-L6-v2 against a NumPy reference: tests/slow/minilm_real_model_test.cpp.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "lowbit/io/safetensors.hpp"
#include "lowbit_catch.hpp"
#include "minilm/bert.hpp"
#include "minilm/fidelity.hpp"

using namespace lowbit::minilm;
using Md = Eigen::MatrixXd;
using Vd = Eigen::VectorXd;

namespace {

constexpr int H = 8, HEADS = 2, I = 12, V = 20, P = 16, LAYERS = 2;

struct tiny_bert {
  std::map<std::string, Md> t;  // name → tensor (vectors as one column)
  std::filesystem::path path;

  explicit tiny_bert(const std::string& file, bool with_config) {
    std::mt19937 rng(7);
    std::normal_distribution<double> n(0.0, 0.5);
    auto rnd = [&](int r, int c) {
      Md m(r, c);
      for (auto& x : m.reshaped()) x = static_cast<float>(n(rng));  // float-representable values
      return m;
    };
    t["embeddings.word_embeddings.weight"] = rnd(V, H);
    t["embeddings.position_embeddings.weight"] = rnd(P, H);
    t["embeddings.token_type_embeddings.weight"] = rnd(2, H);
    t["embeddings.LayerNorm.weight"] = (rnd(H, 1).array() + 1.0).matrix();
    t["embeddings.LayerNorm.bias"] = rnd(H, 1);
    for (int l = 0; l < LAYERS; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      for (const char* s : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
        t[p + s + ".weight"] = rnd(H, H);
        t[p + s + ".bias"] = rnd(H, 1);
      }
      t[p + "intermediate.dense.weight"] = rnd(I, H);
      t[p + "intermediate.dense.bias"] = rnd(I, 1);
      t[p + "output.dense.weight"] = rnd(H, I);
      t[p + "output.dense.bias"] = rnd(H, 1);
      for (const char* s : {"attention.output.LayerNorm", "output.LayerNorm"}) {
        t[p + s + ".weight"] = (rnd(H, 1).array() + 1.0).matrix();
        t[p + s + ".bias"] = rnd(H, 1);
      }
    }
    lowbit::io::safetensors_writer w;
    w.set_metadata("format", "pt");
    for (const auto& [name, m] : t) {
      if (m.cols() == 1) {
        const std::vector<float> v(m.data(), m.data() + m.size());
        w.add<float>(name, {static_cast<std::uint64_t>(m.rows())}, v);
      } else {
        w.add_matrix(name, m.cast<float>());
      }
    }
    const auto dir = std::filesystem::temp_directory_path() / ("lowbit_minilm_test_" + file);
    std::filesystem::create_directories(dir);
    path = dir / "model.safetensors";
    w.write(path.string());
    if (with_config) std::ofstream(dir / "config.json") << "{\"num_attention_heads\": " << HEADS << ", \"layer_norm_eps\": 1e-12}";
  }

  // The BERT equations, float64, one sentence, token by token.
  Vd reference(const std::vector<std::int32_t>& ids) const {
    const int T = static_cast<int>(ids.size());
    auto ln = [](Vd x, const Md& g, const Md& b) {
      const double mu = x.mean();
      double var = 0;
      for (double v : x) var += (v - mu) * (v - mu);
      var /= static_cast<double>(x.size());
      for (int i = 0; i < x.size(); ++i) x(i) = (x(i) - mu) / std::sqrt(var + 1e-12) * g(i, 0) + b(i, 0);
      return x;
    };
    auto lin = [&](const std::string& n, const Vd& x) {
      const Md& W = t.at(n + ".weight");
      Vd y = t.at(n + ".bias").col(0);
      for (int r = 0; r < W.rows(); ++r)
        for (int c = 0; c < W.cols(); ++c) y(r) += W(r, c) * x(c);
      return y;
    };
    std::vector<Vd> h(T);
    for (int i = 0; i < T; ++i)
      h[i] = ln(Vd(t.at("embeddings.word_embeddings.weight").row(ids[i]).transpose() +
                   t.at("embeddings.position_embeddings.weight").row(i).transpose() +
                   t.at("embeddings.token_type_embeddings.weight").row(0).transpose()),
                t.at("embeddings.LayerNorm.weight"), t.at("embeddings.LayerNorm.bias"));
    const int d = H / HEADS;
    for (int l = 0; l < LAYERS; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      std::vector<Vd> q(T), k(T), v(T), next(T);
      for (int i = 0; i < T; ++i) {
        q[i] = lin(p + "attention.self.query", h[i]);
        k[i] = lin(p + "attention.self.key", h[i]);
        v[i] = lin(p + "attention.self.value", h[i]);
      }
      for (int i = 0; i < T; ++i) {
        Vd ctx = Vd::Zero(H);
        for (int hd = 0; hd < HEADS; ++hd) {
          std::vector<double> a(T);
          double mx = -1e300, sum = 0;
          for (int j = 0; j < T; ++j) {
            a[j] = 0;
            for (int c = hd * d; c < (hd + 1) * d; ++c) a[j] += q[i](c) * k[j](c);
            a[j] /= std::sqrt(static_cast<double>(d));
            mx = std::max(mx, a[j]);
          }
          for (int j = 0; j < T; ++j) sum += a[j] = std::exp(a[j] - mx);
          for (int j = 0; j < T; ++j)
            for (int c = hd * d; c < (hd + 1) * d; ++c) ctx(c) += a[j] / sum * v[j](c);
        }
        Vd x = ln(h[i] + lin(p + "attention.output.dense", ctx), t.at(p + "attention.output.LayerNorm.weight"),
                  t.at(p + "attention.output.LayerNorm.bias"));
        Vd u = lin(p + "intermediate.dense", x);
        for (auto& z : u) z = 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
        next[i] = ln(x + lin(p + "output.dense", u), t.at(p + "output.LayerNorm.weight"), t.at(p + "output.LayerNorm.bias"));
      }
      h = next;
    }
    Vd e = Vd::Zero(H);
    for (const auto& x : h) e += x / T;
    return e / e.norm();
  }
};

}  // namespace

TEST_CASE("minilm encoder: tiny random BERT matches a float64 scalar reference", "[minilm][encoder]") {
  const tiny_bert tb("ref", false);
  const auto m = bert_model::load(tb.path, HEADS);
  CHECK(m.cfg.hidden == H);
  CHECK(m.cfg.layers == LAYERS);
  CHECK(m.cfg.intermediate == I);
  CHECK(m.cfg.vocab == V);
  const std::vector<std::vector<std::int32_t>> sentences = {{1, 5, 7, 2}, {1, 2}, {1, 19, 3, 3, 3, 11, 0, 8, 2}, {4}};
  batch b;
  for (const auto& s : sentences) b.add(s);
  const act e = m.embed_sentences(b);
  REQUIRE(e.cols() == 4);
  for (std::size_t s = 0; s < sentences.size(); ++s) {
    const Vd want = tb.reference(sentences[s]);
    INFO("sentence " << s);
    CHECK((e.col(static_cast<Eigen::Index>(s)).cast<double>() - want).cwiseAbs().maxCoeff() < 2e-6);
    CHECK(e.col(static_cast<Eigen::Index>(s)).norm() == Approx(1.0f).epsilon(1e-6));
    batch one;  // a sentence's embedding does not depend on its batch neighbours
    one.add(sentences[s]);
    CHECK((m.embed_sentences(one).col(0) - e.col(static_cast<Eigen::Index>(s))).cwiseAbs().maxCoeff() < 1e-6f);
  }
  // Token order matters (position embeddings, no bag of words).
  batch swapped;
  swapped.add(std::vector<std::int32_t>{1, 7, 5, 2});
  CHECK((m.embed_sentences(swapped).col(0) - e.col(0)).norm() > 1e-3f);
  batch bad;
  bad.add(std::vector<std::int32_t>{1, V});
  CHECK_THROWS_AS(m.embed_sentences(bad), lowbit::error);
}

TEST_CASE("minilm encoder: heads from config.json, the hook sees every group's input", "[minilm][encoder]") {
  const tiny_bert tb("hook", true);
  auto m = bert_model::load(tb.path);  // heads = 0: config.json beside the weights
  CHECK(m.cfg.heads == HEADS);
  CHECK_THROWS_AS(bert_model::load(tb.path, 3), lowbit::error);  // 3 does not divide 8
  batch b;
  b.add(std::vector<std::int32_t>{1, 5, 7, 2});
  b.add(std::vector<std::int32_t>{1, 3, 2});
  const act want = m.encode(b);

  // Running the layers through encode_layer with a hook that only records gives the same
  // states; each group's input has the rows its linears expect and every token's column.
  act h = m.embed(b);
  std::vector<tap> seen;
  for (auto& L : m.layers)
    m.encode_layer(L, h, b, [&](tap t, const act& X, bert_layer& layer) {
      seen.push_back(t);
      CHECK(X.cols() == b.tokens());
      CHECK(X.rows() == layer[tap_slots(t)[0]].W.cols());
    });
  CHECK(seen.size() == 4 * LAYERS);
  CHECK(seen[0] == tap::qkv);
  CHECK(seen[3] == tap::down);
  CHECK((h - want).cwiseAbs().maxCoeff() == 0.0f);

  // A hook that zeroes the last layer's down projection (weights and bias) before it runs
  // changes the output to LayerNorm(a) of the attention half alone.
  act h2 = m.embed(b);
  for (auto& L : m.layers)
    m.encode_layer(L, h2, b, [&](tap t, const act&, bert_layer& layer) {
      if (t == tap::down && &layer == &m.layers.back()) {
        layer[slot::down].W.setZero();
        layer[slot::down].b.setZero();
      }
    });
  CHECK((h2 - want).norm() > 1e-3f);
  CHECK((m.encode(b) - h2).cwiseAbs().maxCoeff() < 1e-6f);  // the change stays in the model
}

TEST_CASE("minilm fidelity: sentence splitters", "[minilm][fidelity]") {
  const auto w = wikitext_sentences(
      " = Heading = \n The first sentence is here . A second one follows , with a comma . tiny . \n\n"
      " Last line without a final period and long enough\n");
  REQUIRE(w.size() == 3);
  CHECK(w[0] == "The first sentence is here .");
  CHECK(w[1] == "A second one follows , with a comma .");  // "tiny ." is under 20 characters
  CHECK(w[2] == "Last line without a final period and long enough");
  const auto p = prose_sentences(
      "CHAPTER I\n\nIt is a truth universally acknowledged, that a\nsingle man must be in want of a wife.\n"
      "\"Is it so,\" she asked him twice. Yes. Mr. Bennet made no answer at all!\n");
  REQUIRE(p.size() == 3);
  CHECK(p[0] == "It is a truth universally acknowledged, that a single man must be in want of a wife.");
  CHECK(p[1] == "\"Is it so,\" she asked him twice.");  // "Yes." has fewer than 4 words
  CHECK(p[2] == "Bennet made no answer at all!");       // a known limit: "Mr." ends a (dropped) sentence
  CHECK(spread({"a", "b", "c", "d"}, 2) == std::vector<std::string>{"a", "c"});
  CHECK(spread({"a", "b"}, 5).size() == 2);
}

TEST_CASE("minilm fidelity: sequential quantization sees the quantized model's inputs, errors on held-out",
          "[minilm][fidelity]") {
  const tiny_bert tb("seq", false);
  const auto fp32 = bert_model::load(tb.path, HEADS);
  batch calib;  // 3 calibration sentences, then 2 held out
  for (const auto& s : std::vector<std::vector<std::int32_t>>{{1, 5, 7, 2}, {1, 9, 2}, {1, 4, 4, 6, 2}, {1, 8, 3, 2}, {1, 2}})
    calib.add(s);
  const batch fit = first_sentences(calib, 3), held = [&] {
    batch b;
    b.add(std::vector<std::int32_t>{1, 8, 3, 2});
    b.add(std::vector<std::int32_t>{1, 2});
    return b;
  }();

  // A "quantizer" that adds a fixed perturbation: Ŵ = W + 0.01·sign pattern.
  auto perturb = [](const Eigen::MatrixXf& W) {
    Eigen::MatrixXf D(W.rows(), W.cols());
    for (Eigen::Index c = 0; c < W.cols(); ++c)
      for (Eigen::Index r = 0; r < W.rows(); ++r) D(r, c) = ((r * 7 + c * 3) % 5 < 2 ? 0.01f : -0.01f);
    return D;
  };
  std::vector<act> seen_qkv;
  const method_fn method = [&](const group_job& job) {
    if (job.input == tap::qkv) seen_qkv.push_back(job.X);
    CHECK(job.sentences.tokens() == fit.tokens());
    CHECK(job.X.cols() == fit.tokens());  // held-out columns are never shown to the method
    std::vector<quantized_linear> out;
    for (const auto& W : job.W) out.push_back({W + perturb(W), 3.5, "perturbed"});
    return out;
  };
  bert_model m = fp32;
  const auto reports = quantize_sequential(m, calib, 2, method);
  REQUIRE(reports.size() == 6 * LAYERS);
  CHECK(reports[0].name == "layer.0.attention.self.query");
  CHECK(reports[5].name == "layer.0.output.dense");
  CHECK(reports[0].bits == 3.5);
  REQUIRE(seen_qkv.size() == LAYERS);
  // Layer 0's q/k/v inputs are the embeddings of the calibration sentences.
  CHECK((seen_qkv[0] - fp32.embed(fit)).cwiseAbs().maxCoeff() < 1e-6f);
  // Layer 1's are layer 0's outputs WITH the perturbed (quantized) layer 0, not the float ones.
  act h = m.embed(fit);
  bert_model only0 = fp32;
  only0.layers[0] = m.layers[0];
  only0.encode_layer(only0.layers[0], h, fit, [](tap, const act&, bert_layer&) {});
  CHECK((seen_qkv[1] - h).cwiseAbs().maxCoeff() < 1e-5f);
  act hf = fp32.embed(fit);
  bert_model f2 = fp32;
  f2.encode_layer(f2.layers[0], hf, fit, [](tap, const act&, bert_layer&) {});
  CHECK((seen_qkv[1] - hf).cwiseAbs().maxCoeff() > 1e-4f);
  // The query's error is ‖D X‖² / ‖W X‖² on the held-out sentences' embeddings, in float64.
  const Eigen::MatrixXd Xh = fp32.embed(held).cast<double>();
  const Eigen::MatrixXd Wq = fp32.layers[0][slot::q].W.cast<double>();
  const Eigen::MatrixXd Dq = perturb(fp32.layers[0][slot::q].W).cast<double>();
  CHECK(reports[0].rel_error == Approx((Dq * Xh).squaredNorm() / (Wq * Xh).squaredNorm()).epsilon(1e-4));
  // The model now multiplies by Ŵ.
  CHECK((m.layers[1][slot::down].W - fp32.layers[1][slot::down].W - perturb(fp32.layers[1][slot::down].W))
            .cwiseAbs()
            .maxCoeff() < 1e-6f);
  // Identity "quantizer": zero errors and the float embeddings.
  bert_model same = fp32;
  const auto r0 = quantize_sequential(same, calib, 1, [](const group_job& job) {
    std::vector<quantized_linear> out;
    for (const auto& W : job.W) out.push_back({W, 32.0, ""});
    return out;
  });
  for (const auto& r : r0) CHECK(r.rel_error == 0.0);
  const auto cos = column_cosines(fp32.embed_sentences(calib), same.embed_sentences(calib));
  for (double c : cos) CHECK(c == Approx(1.0).epsilon(1e-12));
  CHECK_THROWS_AS(quantize_sequential(same, calib, 0, method), lowbit::error);  // no held-out sentence
}
