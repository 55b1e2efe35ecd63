#pragma once
// A BERT encoder (Devlin et al. 2019) as all-MiniLM-L6-v2 uses it (Wang et al. 2020, MiniLM;
// Reimers & Gurevych 2019, Sentence-BERT), float32 on Eigen:
//
//   h⁰ = LayerNorm(word[id] + position[i] + token_type[0])
//   per layer:  a = LayerNorm(h + W_o · Attention(W_q h + b_q, W_k h + b_k, W_v h + b_v) + b_o)
//               h = LayerNorm(a + W_down · GELU(W_up a + b_up) + b_down)
//   sentence embedding = normalize(mean over the sentence's tokens of h^L)
//
// Attention is multi-head scaled dot-product, bidirectional (no causal mask); GELU is the
// exact erf form (Hugging Face "gelu"); LayerNorm uses the biased variance and ε = 1e-12.
// Activations are [hidden × tokens] column blocks, several sentences side by side: attention
// runs inside each sentence only, so no padding and no attention mask are needed, and mean
// pooling over the attention mask is the mean over the sentence's columns.
//
// The six linears of a layer are plain float matrices (y = W x + b). A quantizer replaces a
// W by its dequantized Ŵ (tools/minilm/fidelity.hpp); encode_layer's hook shows it each
// group of linears with the input it sees, which is how sequential quantization runs.
#include <Eigen/Core>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/io/json.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::minilm {

using index = Eigen::Index;
using act = Eigen::MatrixXf;  // [features × tokens]

struct bert_config {
  index vocab = 0, hidden = 0, layers = 0, heads = 0, intermediate = 0, max_positions = 0, type_vocab = 0;
  float eps = 1e-12f;
  index head_dim() const { return hidden / heads; }
};

struct bert_linear {
  Eigen::MatrixXf W;  // [out × in]
  Eigen::VectorXf b;  // [out]
};

// The linears of one layer, in the order they are used (and quantized).
enum class slot { q, k, v, attn_out, up, down };
inline constexpr std::array<slot, 6> all_slots{slot::q, slot::k, slot::v, slot::attn_out, slot::up, slot::down};
inline const char* slot_name(slot s) {
  switch (s) {
    case slot::q: return "attention.self.query";
    case slot::k: return "attention.self.key";
    case slot::v: return "attention.self.value";
    case slot::attn_out: return "attention.output.dense";
    case slot::up: return "intermediate.dense";
    case slot::down: return "output.dense";
  }
  return "?";
}

// Where a group of linears reads its input: q/k/v ← the layer input; attn_out ← the
// attention context; up ← the post-attention LayerNorm; down ← GELU(up).
enum class tap { qkv, attn_out, up, down };
inline std::span<const slot> tap_slots(tap t) {
  static constexpr slot qkv[] = {slot::q, slot::k, slot::v};
  static constexpr slot o[] = {slot::attn_out}, u[] = {slot::up}, d[] = {slot::down};
  switch (t) {
    case tap::qkv: return qkv;
    case tap::attn_out: return o;
    case tap::up: return u;
    case tap::down: return d;
  }
  return {};
}

struct bert_layer {
  std::array<bert_linear, 6> lin;
  Eigen::VectorXf ln_attn_g, ln_attn_b, ln_out_g, ln_out_b;
  bert_linear& operator[](slot s) { return lin[static_cast<std::size_t>(s)]; }
  const bert_linear& operator[](slot s) const { return lin[static_cast<std::size_t>(s)]; }
};

// Token columns of several sentences: sentence i is columns [begin[i], begin[i+1]).
struct batch {
  std::vector<std::int32_t> ids;
  std::vector<index> begin{0};
  void add(std::span<const std::int32_t> sentence) {
    ids.insert(ids.end(), sentence.begin(), sentence.end());
    begin.push_back(static_cast<index>(ids.size()));
  }
  index sentences() const { return static_cast<index>(begin.size()) - 1; }
  index tokens() const { return static_cast<index>(ids.size()); }
};

// Y = W X, token columns split over the thread pool.
inline void matmul(const Eigen::MatrixXf& W, const act& X, act& Y) {
  lowbit::detail::require(W.cols() == X.rows(), "matmul: W is ", W.rows(), " x ", W.cols(), ", X has ", X.rows(), " rows");
  Y.resize(W.rows(), X.cols());
  parallel_for(X.cols(), 64, [&](index b, index e) { Y.middleCols(b, e - b).noalias() = W * X.middleCols(b, e - b); });
}

inline void apply(const bert_linear& l, const act& X, act& Y) {
  matmul(l.W, X, Y);
  Y.colwise() += l.b;
}

// Each column normalized to zero mean and unit (biased) variance, then scaled and shifted.
inline void layer_norm(act& X, const Eigen::VectorXf& g, const Eigen::VectorXf& b, float eps) {
  parallel_for(X.cols(), 256, [&](index c0, index c1) {
    for (index c = c0; c < c1; ++c) {
      auto x = X.col(c);
      const float mean = x.mean();
      x.array() -= mean;
      const float var = x.squaredNorm() / static_cast<float>(x.size());
      x = (x.array() * (1.0f / std::sqrt(var + eps)) * g.array() + b.array()).matrix();
    }
  });
}

inline void gelu(act& X) {  // x Φ(x), Φ the standard normal CDF (Hendrycks & Gimpel 2016)
  X = X.unaryExpr([](float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); });
}

struct bert_model {
  bert_config cfg;
  Eigen::MatrixXf word, position, token_type;  // [hidden × vocab], [hidden × positions], [hidden × types]
  Eigen::VectorXf ln_emb_g, ln_emb_b;
  std::vector<bert_layer> layers;

  // Loads a Hugging Face BertModel safetensors file (names "embeddings.*", "encoder.layer.N.*",
  // with or without a "bert." prefix). The head count is not in the weights: heads > 0 gives
  // it, heads = 0 reads num_attention_heads (and layer_norm_eps) from config.json beside it.
  static bert_model load(const std::filesystem::path& path, index heads = 0) {
    const auto f = io::safetensors_file::open(path.string());
    const std::string pre = f.find("bert.embeddings.word_embeddings.weight") ? "bert." : "";
    bert_model m;
    float eps = 1e-12f;
    if (heads == 0) {
      const auto cfg_path = path.parent_path() / "config.json";
      std::ifstream in(cfg_path, std::ios::binary);
      lowbit::detail::require(in.good(), "bert_model::load: heads = 0 needs ", cfg_path.string(),
                              " (num_attention_heads); pass heads > 0 or run scripts/fetch-assets --minilm");
      std::stringstream ss;
      ss << in.rdbuf();
      const auto j = io::parse_json(ss.str());
      const auto* h = j.find("num_attention_heads");
      lowbit::detail::require(h != nullptr, "bert_model::load: ", cfg_path.string(), " has no num_attention_heads");
      heads = static_cast<index>(h->as_u64());
      if (const auto* e = j.find("layer_norm_eps")) eps = static_cast<float>(e->as_double());
    }
    auto mat = [&](const std::string& n) { return f.load_matrix(pre + n); };
    auto vec = [&](const std::string& n) {
      const auto v = f.load_vector(pre + n);
      return Eigen::VectorXf(Eigen::Map<const Eigen::VectorXf>(v.data(), static_cast<index>(v.size())));
    };
    m.word = mat("embeddings.word_embeddings.weight").transpose();
    m.position = mat("embeddings.position_embeddings.weight").transpose();
    m.token_type = mat("embeddings.token_type_embeddings.weight").transpose();
    m.ln_emb_g = vec("embeddings.LayerNorm.weight");
    m.ln_emb_b = vec("embeddings.LayerNorm.bias");
    auto& c = m.cfg;
    c.hidden = m.word.rows();
    c.vocab = m.word.cols();
    c.max_positions = m.position.cols();
    c.type_vocab = m.token_type.cols();
    c.heads = heads;
    c.eps = eps;
    lowbit::detail::require(heads > 0 && c.hidden % heads == 0, "bert_model::load: ", heads,
                            " heads do not divide the hidden size ", c.hidden);
    for (index l = 0; f.find(pre + "encoder.layer." + std::to_string(l) + ".attention.self.query.weight"); ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      bert_layer L;
      for (slot s : all_slots) {
        L[s].W = mat(p + slot_name(s) + ".weight");
        L[s].b = vec(p + slot_name(s) + ".bias");
      }
      L.ln_attn_g = vec(p + "attention.output.LayerNorm.weight");
      L.ln_attn_b = vec(p + "attention.output.LayerNorm.bias");
      L.ln_out_g = vec(p + "output.LayerNorm.weight");
      L.ln_out_b = vec(p + "output.LayerNorm.bias");
      m.layers.push_back(std::move(L));
    }
    c.layers = static_cast<index>(m.layers.size());
    lowbit::detail::require(c.layers > 0, "bert_model::load: ", path.string(), " has no encoder.layer.0 weights");
    c.intermediate = m.layers[0][slot::up].W.rows();
    for (const auto& L : m.layers) {
      const index H = c.hidden, I = c.intermediate;
      for (slot s : {slot::q, slot::k, slot::v, slot::attn_out})
        lowbit::detail::require(L[s].W.rows() == H && L[s].W.cols() == H && L[s].b.size() == H, "bert_model::load: ",
                                slot_name(s), " is not ", H, " x ", H);
      lowbit::detail::require(L[slot::up].W.rows() == I && L[slot::up].W.cols() == H && L[slot::down].W.rows() == H &&
                                  L[slot::down].W.cols() == I,
                              "bert_model::load: the feed-forward linears are not ", I, " x ", H, " and ", H, " x ", I);
    }
    return m;
  }

  // h⁰ for every token of the batch (position restarts at 0 for each sentence).
  act embed(const batch& b) const {
    act h(cfg.hidden, b.tokens());
    for (index s = 0; s < b.sentences(); ++s) {
      const index b0 = b.begin[static_cast<std::size_t>(s)], b1 = b.begin[static_cast<std::size_t>(s) + 1];
      lowbit::detail::require(b1 - b0 <= cfg.max_positions, "bert_model::embed: a sentence of ", b1 - b0,
                              " tokens exceeds the ", cfg.max_positions, " positions");
      for (index t = b0; t < b1; ++t) {
        const auto id = b.ids[static_cast<std::size_t>(t)];
        lowbit::detail::require(id >= 0 && id < cfg.vocab, "bert_model::embed: token id ", id, " is outside [0, ",
                                cfg.vocab, ")");
        h.col(t) = word.col(id) + position.col(t - b0) + token_type.col(0);
      }
    }
    layer_norm(h, ln_emb_g, ln_emb_b, cfg.eps);
    return h;
  }

  // softmax(K_hᵀ Q_h / √d) per head, inside each sentence: the attention context [hidden × tokens].
  act attention(const act& q, const act& k, const act& v, const batch& b) const {
    const index d = cfg.head_dim();
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    act ctx(cfg.hidden, q.cols());
    const index n = b.sentences() * cfg.heads;
    parallel_for(n, 1, [&](index j0, index j1) {
      Eigen::MatrixXf S;
      for (index j = j0; j < j1; ++j) {
        const index s = j / cfg.heads, h = j % cfg.heads;
        const index b0 = b.begin[static_cast<std::size_t>(s)], T = b.begin[static_cast<std::size_t>(s) + 1] - b0;
        S.noalias() = k.block(h * d, b0, d, T).transpose() * q.block(h * d, b0, d, T);  // [key × query]
        S *= scale;
        for (index c = 0; c < T; ++c) {
          auto col = S.col(c);
          col = (col.array() - col.maxCoeff()).exp().matrix();
          col /= col.sum();
        }
        ctx.block(h * d, b0, d, T).noalias() = v.block(h * d, b0, d, T) * S;
      }
    });
    return ctx;
  }

  // Called with each group of linears' input, before they are applied (they may be replaced).
  using layer_hook = std::function<void(tap, const act& X, bert_layer& layer)>;

  // One encoder layer on h, in place; hook (if any) sees each group's input first.
  void encode_layer(bert_layer& L, act& h, const batch& b, const layer_hook& hook) const {
    run_layer(L, h, b, [&](tap t, const act& X) { hook(t, X, L); });
  }

  // The last layer's token states [hidden × tokens].
  act encode(const batch& b) const {
    act h = embed(b);
    for (const auto& L : layers) run_layer(L, h, b, [](tap, const act&) {});
    return h;
  }

  // Sentence embeddings [hidden × sentences]: mean over each sentence's tokens, L2-normalized
  // (sentence-transformers' Pooling(mean) + Normalize).
  act embed_sentences(const batch& b) const { return mean_pool_normalize(encode(b), b); }

  static act mean_pool_normalize(const act& h, const batch& b) {
    act e(h.rows(), b.sentences());
    for (index s = 0; s < b.sentences(); ++s) {
      const index b0 = b.begin[static_cast<std::size_t>(s)], T = b.begin[static_cast<std::size_t>(s) + 1] - b0;
      lowbit::detail::require(T > 0, "mean pooling: sentence ", s, " has no tokens");
      e.col(s) = h.middleCols(b0, T).rowwise().mean();
      e.col(s) /= std::max(e.col(s).norm(), 1e-12f);  // torch.nn.functional.normalize's eps
    }
    return e;
  }

 private:
  // L is read after each `before` call, so a hook holding L by reference may replace linears.
  template <class Before>
  void run_layer(const bert_layer& L, act& h, const batch& b, Before&& before) const {
    before(tap::qkv, h);
    act q, k, v, y;
    apply(L[slot::q], h, q);
    apply(L[slot::k], h, k);
    apply(L[slot::v], h, v);
    const act ctx = attention(q, k, v, b);
    before(tap::attn_out, ctx);
    apply(L[slot::attn_out], ctx, y);
    h += y;
    layer_norm(h, L.ln_attn_g, L.ln_attn_b, cfg.eps);
    before(tap::up, h);
    act u;
    apply(L[slot::up], h, u);
    gelu(u);
    before(tap::down, u);
    apply(L[slot::down], u, y);
    h += y;
    layer_norm(h, L.ln_out_g, L.ln_out_b, cfg.eps);
  }
};

}  // namespace lowbit::minilm
