#pragma once
// A Llama-architecture decoder (Llama 1/2/3, SmolLM, TinyLlama: RMSNorm, RoPE, grouped-query
// attention, SwiGLU) on the CPU with Eigen: enough to run a real model, capture the
// calibration inputs of every linear, and swap any linear for a lowbit-quantized one.
//
// Activations are [features × tokens], column-major: one token per column. That is the
// library's calibration convention (X is [in × n_tokens], algorithms.md) and exactly the
// row-major [m × cols] layout lowbit::gemm takes, so a batch of tokens goes to any linear
// without a copy. A batch holds `n_windows` independent windows of `T` consecutive tokens
// each (columns w·T … w·T + T − 1); attention never crosses a window boundary and RoPE
// positions restart at 0 in every window. Everything is processed a whole window (or many
// windows) at a time, so every linear is one GEMM.
//
// Threading: linears split the token columns over lowbit::parallel_for, attention splits
// (window, head) pairs. A caller that parallelises over windows itself gets the inner loops
// run inline (lowbit's pool runs nested loops on the calling thread).
#include <Eigen/Dense>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/interop_autoawq.hpp"
#include "lowbit/io/lowbit_format.hpp"
#include "lowbit/kernel/gemv.hpp"
#include "model/recipe.hpp"

namespace lowbit::tools {

using act = Eigen::MatrixXf;  // activations [features × tokens]

// Y = W X with the token columns split over the thread pool (Eigen alone is single-threaded
// without OpenMP, and a header-only library must not force -fopenmp on anyone).
inline void parallel_matmul(const Eigen::MatrixXf& W, const act& X, act& Y) {
  detail::require(W.cols() == X.rows(), "matmul: W is ", W.rows(), " x ", W.cols(), ", X has ", X.rows(), " rows");
  Y.resize(W.rows(), X.cols());
  parallel_for(X.cols(), 16, [&](index b, index e) { Y.middleCols(b, e - b).noalias() = W * X.middleCols(b, e - b); });
}

// ---------------------------------------------------------------- linear layers
// y = W x for a batch of token columns. A linear is float (Eigen) or lowbit-quantized; the
// model does not care which.
class linear {
 public:
  virtual ~linear() = default;
  virtual index rows() const = 0;  // output features
  virtual index cols() const = 0;  // input features
  virtual void apply(const act& X, act& Y) const = 0;
  // The float matrix this layer multiplies by (dequantized for quantized layers).
  virtual Eigen::MatrixXf weight() const = 0;
  // Storage, counted exactly: 32 for float, the packed format's bits_per_weight() otherwise.
  virtual double bits_per_weight() const = 0;
  virtual bool quantized() const = 0;
  // What the method reported about this layer (chosen axis, AWQ's α, ...).
  virtual std::string notes() const { return {}; }
  // Stores the layer in a lowbit model file under `name` (lowbit-quantize --out): quantized
  // layers write their packed matrix and what else they need to load back bit-exactly.
  virtual void save(io::lowbit_writer& w, const std::string& name) const {
    (void)w;
    detail::fail("linear '", name, "' is not quantized: a lowbit model file stores quantized linears only");
  }
  // AWQ's per-input-channel multiplier (the layer computes W · (scaling ⊙ x)); empty if none.
  // An exporter folds it into whatever produces the input (a norm, or the rows of a linear).
  virtual Eigen::VectorXf input_scaling() const { return {}; }
  // The layer as a GPTQ layer with true zero points (io::gptq_checkpoint::v2) for
  // lowbit-quantize --export gptq|awq: output row r is the layer's row row_order[r], and each
  // source row's scales are multiplied by row_scale[row] (empty: unchanged), which reorders and
  // rescales rows exactly (they have their own codes and scales). An error names why the
  // layer's format has no GPTQ/AWQ equivalent.
  virtual io::gptq_tensors to_gptq_rows(std::span<const index> row_order, const Eigen::VectorXf& row_scale,
                                        const std::string& name) const {
    (void)row_order;
    (void)row_scale;
    detail::fail(name, quantized() ? " is in a format with no GPTQ/AWQ equivalent" : " is not quantized",
                 ": GPTQ/AWQ checkpoints hold plain per-group grids (--method rtn, gptq, awq or awq-gptq)");
  }
  std::size_t stored_bytes() const {
    return static_cast<std::size_t>(std::llround(bits_per_weight() * static_cast<double>(rows() * cols()) / 8.0));
  }
};

class dense_linear final : public linear {
 public:
  explicit dense_linear(Eigen::MatrixXf W) : W_(std::move(W)) {}
  index rows() const override { return W_.rows(); }
  index cols() const override { return W_.cols(); }
  void apply(const act& X, act& Y) const override { parallel_matmul(W_, X, Y); }
  Eigen::MatrixXf weight() const override { return W_; }
  double bits_per_weight() const override { return 32.0; }
  bool quantized() const override { return false; }
  const Eigen::MatrixXf& matrix() const { return W_; }

 private:
  Eigen::MatrixXf W_;
};

// How a quantized linear multiplies.
//   kernel:      lowbit::gemm on the packed codes (what an engine runs for short batches);
//   dequantized: the packed matrix expanded to float once, then Eigen GEMM. Numerically the
//                same model (the dequantized weights ARE the model), and much faster for
//                the long, GEMM-shaped windows of perplexity evaluation and calibration.
enum class quantized_path { kernel, dequantized };

// The packed_matrix a linear's type holds: PM itself, or the matrix inside what quantize
// returns (quantized<PM> derives from it and hands it out as packed()).
template <class T>
struct bare_packed {
  using type = T;
};
template <class T>
  requires requires(const T& t) { t.packed(); }
struct bare_packed<T> {
  using type = std::remove_cvref_t<decltype(std::declval<const T&>().packed())>;
};

// A lowbit packed matrix as a linear layer. `input_scale` (optional, one per input channel)
// multiplies x before the packed matrix: AWQ's per-channel scaling W·diag(s) stored
// quantized, with diag(1/s) applied to the input (what folding 1/s into the previous op
// does, kept explicit here so every linear stays self-contained).
template <PackedMatrix PM>
class packed_linear final : public linear {
 public:
  packed_linear(PM pm, quantized_path path, Eigen::VectorXf input_scale = {}, std::string notes = {})
      : pm_(std::move(pm)), path_(path), input_scale_(std::move(input_scale)), notes_(std::move(notes)) {
    detail::require(input_scale_.size() == 0 || input_scale_.size() == pm_.cols(), "packed_linear: input_scale has ",
                    input_scale_.size(), " entries, expected ", pm_.cols());
    if (path_ == quantized_path::dequantized) deq_ = pm_.dequantize();
  }
  index rows() const override { return pm_.rows(); }
  index cols() const override { return pm_.cols(); }
  void apply(const act& X, act& Y) const override {
    const act* in = &X;
    act scaled;
    if (input_scale_.size() != 0) {
      scaled = input_scale_.asDiagonal() * X;
      in = &scaled;
    }
    if (path_ == quantized_path::dequantized) {
      parallel_matmul(deq_, *in, Y);
      return;
    }
    detail::require(in->rows() == pm_.cols(), "packed_linear: input has ", in->rows(), " features, expected ", pm_.cols());
    Y.resize(pm_.rows(), in->cols());
    // Column-major [features × m] is row-major [m × features]: lowbit::gemm's layout.
    parallel_for(in->cols(), 4, [&](index b, index e) {
      lowbit::gemm(pm_, std::span<const float>(in->data() + b * in->rows(), static_cast<std::size_t>((e - b) * in->rows())),
                   std::span<float>(Y.data() + b * Y.rows(), static_cast<std::size_t>((e - b) * Y.rows())), e - b);
    });
  }
  Eigen::MatrixXf weight() const override {
    Eigen::MatrixXf W = path_ == quantized_path::dequantized ? deq_ : pm_.dequantize();
    if (input_scale_.size() != 0) W = W * input_scale_.asDiagonal();
    return W;
  }
  // The input scale is folded into the previous op in a deployed model: not counted.
  double bits_per_weight() const override { return pm_.bits_per_weight(); }
  bool quantized() const override { return true; }
  std::string notes() const override {
    if constexpr (requires { pm_.report.notes; }) return notes_.empty() ? pm_.report.notes : notes_;
    else return notes_;
  }
  // The packed matrix under `name`; AWQ's input scale as the float tensor "<name>.input_scale".
  void save(io::lowbit_writer& w, const std::string& name) const override {
    w.add(name, pm_);
    if (input_scale_.size() != 0) w.add_tensor(name + ".input_scale", Eigen::MatrixXf(input_scale_));
  }
  const PM& packed() const { return pm_; }
  const Eigen::VectorXf& input_scale() const { return input_scale_; }
  Eigen::VectorXf input_scaling() const override { return input_scale_; }
  io::gptq_tensors to_gptq_rows(std::span<const index> row_order, const Eigen::VectorXf& row_scale,
                                const std::string& name) const override {
    if constexpr (!std::is_same_v<typename PM::outlier_policy, no_outliers> || PM::stats_policy::second_level) {
      (void)row_order;
      (void)row_scale;
      detail::fail(name, " keeps ", PM::stats_policy::second_level ? "quantized (SpQR) statistics" : "an outlier store",
                   ", which GPTQ/AWQ checkpoints cannot hold (--method rtn, gptq, awq or awq-gptq)");
    } else {
      const index R = pm_.rows(), C = pm_.cols();
      detail::require(pm_.group_axis() == axis::oc, name, " groups along ", axis_name(pm_.group_axis()),
                      ": GPTQ/AWQ checkpoints group along the input dimension (--axis oc)");
      detail::require(static_cast<index>(row_order.size()) == R && (row_scale.size() == 0 || row_scale.size() == R), name,
                      ": row order of ", row_order.size(), " and row scale of ", row_scale.size(), " for ", R, " rows");
      typename bare_packed<PM>::type p(R, C, axis::oc);
      const index G = pm_.group_size(), groups = pm_.stat_cols();
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(C));
      for (index r = 0; r < R; ++r) {
        const index src = row_order[static_cast<std::size_t>(r)];
        detail::require(src >= 0 && src < R, name, ": row order names row ", src, " of ", R);
        pm_.unpack_row_codes(src, codes);
        p.set_row_codes(r, codes);
        for (index g = 0; g < groups; ++g) {
          grid_params gp = pm_.params(src, g * G);
          if (row_scale.size() != 0) gp.scale *= row_scale(src);
          p.stats().set(p.stat_index(r, g * G), gp);
        }
      }
      return detail::with_context([&] { return io::to_gptq(p, io::gptq_checkpoint::v2); }, name, ": ");
    }
  }

 private:
  PM pm_;
  quantized_path path_;
  Eigen::VectorXf input_scale_;
  std::string notes_;  // the method's report notes (chosen axis, outliers, ...)
  Eigen::MatrixXf deq_;
};

// ---------------------------------------------------------------- the model
struct llama_config {
  index n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, n_vocab = 0, n_ctx_train = 0;
  double rope_base = 10000.0;
  double rms_eps = 1e-5;
  // Optional, set by loaders of checkpoints that need them (tools/model/hf_checkpoint.hpp);
  // the defaults are the plain Llama model from_gguf reads.
  index head_dim_override = 0;        // > 0: head width when it is not n_embd / n_head (Qwen3)
  std::vector<double> rope_inv_freq;  // head_dim / 2 angles per position (scaled RoPE); empty: base^(−2i/hd)
  index sliding_window = 0;           // > 0: windows longer than this are refused (Mistral v0.1)
  index head_dim() const { return head_dim_override > 0 ? head_dim_override : n_embd / n_head; }
  void validate() const {
    detail::require(n_layer > 0 && n_embd > 0 && n_ff > 0 && n_vocab > 0, "llama_config: layer count, widths and vocabulary must be positive");
    detail::require(n_head > 0 && n_embd % n_head == 0, "llama_config: n_embd ", n_embd, " must be a multiple of n_head ", n_head);
    detail::require(head_dim() % 2 == 0, "llama_config: head dimension ", head_dim(), " must be even for RoPE");
    detail::require(n_head_kv > 0 && n_head % n_head_kv == 0, "llama_config: n_head ", n_head,
                    " must be a multiple of n_head_kv ", n_head_kv, " (grouped-query attention)");
    detail::require(std::isfinite(rope_base) && rope_base > 0 && std::isfinite(rms_eps) && rms_eps > 0,
                    "llama_config: rope base ", rope_base, " and RMS epsilon ", rms_eps, " must be finite and positive");
  }
};

// The size of one of a linear's widths (model/recipe.hpp) in this model.
inline index width_of(const llama_config& c, width w) {
  switch (w) {
    case width::embd: return c.n_embd;
    case width::q_heads: return c.n_head * c.head_dim();
    case width::kv_heads: return c.n_head_kv * c.head_dim();
    case width::ff: return c.n_ff;
  }
  return 0;
}

struct llama_block {
  Eigen::VectorXf attn_norm, ffn_norm;
  // Optional (empty when the checkpoint has none): biases added after the q, k, v, o linears
  // (Qwen2; Llama's attention_bias), and Qwen3's RMSNorm of every q / k head (weights of
  // head_dim entries, shared by the heads) before RoPE. Kept out of the linears, so a
  // quantized linear replaces W only.
  Eigen::VectorXf q_bias, k_bias, v_bias, o_bias, q_norm, k_norm;
  std::unique_ptr<linear> lin[linears_per_block];
  linear& operator[](slot s) const { return *lin[static_cast<int>(s)]; }
  std::unique_ptr<linear>& at(slot s) { return lin[static_cast<int>(s)]; }
};

using tap_hook = std::function<void(tap, const act& X, llama_block& blk)>;

class llama_model {
 public:
  llama_config cfg;
  Eigen::MatrixXf tok_embd;  // [vocab × n_embd]: row t is token t's embedding
  std::vector<llama_block> blocks;
  Eigen::VectorXf output_norm;
  std::unique_ptr<linear> output;  // [vocab × n_embd]; a copy of tok_embd when tied

  // Loads a GGUF file of the llama architecture; every weight is dequantized to float.
  // Every tensor read must be finite and so must the RoPE base and RMS epsilon: one NaN or
  // Inf (embedding, norm, linear, head) would make every perplexity NaN without an error.
  static llama_model from_gguf(const io::gguf_file& f) {
    const std::string arch = f.has("general.architecture") ? f.get_string("general.architecture") : "llama";
    detail::require(arch == "llama", f.name(), ": architecture '", arch, "' is not supported (expected llama)");
    llama_model m;
    auto key = [&](const char* k) { return "llama." + std::string(k); };
    m.cfg.n_layer = static_cast<index>(f.get_uint(key("block_count")));
    m.cfg.n_embd = static_cast<index>(f.get_uint(key("embedding_length")));
    m.cfg.n_ff = static_cast<index>(f.get_uint(key("feed_forward_length")));
    m.cfg.n_head = static_cast<index>(f.get_uint(key("attention.head_count")));
    m.cfg.n_head_kv = f.has(key("attention.head_count_kv")) ? static_cast<index>(f.get_uint(key("attention.head_count_kv"))) : m.cfg.n_head;
    m.cfg.n_ctx_train = f.has(key("context_length")) ? static_cast<index>(f.get_uint(key("context_length"))) : 0;
    auto positive = [&](const std::string& k, double& out) {
      if (!f.has(k)) return;
      out = f.get_float(k);
      detail::require(std::isfinite(out) && out > 0, f.name(), ": ", k, " is ", out, "; expected a finite positive number");
    };
    positive(key("rope.freq_base"), m.cfg.rope_base);
    positive(key("attention.layer_norm_rms_epsilon"), m.cfg.rms_eps);
    auto matrix = [&](const std::string& name) {
      Eigen::MatrixXf W = f.load_matrix(name);
      require_finite(f, name, W);
      return W;
    };
    m.tok_embd = matrix("token_embd.weight");
    m.cfg.n_vocab = m.tok_embd.rows();
    m.cfg.validate();
    auto vec = [&](const std::string& name, index n) {
      const auto v = f.load_vector(name);
      detail::require(static_cast<index>(v.size()) == n, f.name(), ": ", name, " has ", v.size(), " entries, expected ", n);
      Eigen::VectorXf out = Eigen::Map<const Eigen::VectorXf>(v.data(), n);
      require_finite(f, name, out);
      return out;
    };
    const index d = m.cfg.n_embd;
    for (index l = 0; l < m.cfg.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      llama_block b;
      b.attn_norm = vec(p + "attn_norm.weight", d);
      b.ffn_norm = vec(p + "ffn_norm.weight", d);
      for (slot s : all_slots) {
        const std::string name = p + slot_name(s) + ".weight";
        Eigen::MatrixXf W = matrix(name);
        const index rows = width_of(m.cfg, recipe_of(s).rows), cols = width_of(m.cfg, recipe_of(s).cols);
        detail::require(W.rows() == rows && W.cols() == cols, f.name(), ": ", name, " is ", W.rows(), " x ", W.cols(),
                        ", expected ", rows, " x ", cols);
        b.at(s) = std::make_unique<dense_linear>(std::move(W));
      }
      m.blocks.push_back(std::move(b));
    }
    m.output_norm = vec("output_norm.weight", d);
    if (f.find("output.weight") != nullptr) m.output = std::make_unique<dense_linear>(matrix("output.weight"));
    else m.output = std::make_unique<dense_linear>(m.tok_embd);  // tied embeddings (SmolLM2)
    detail::require(m.output->rows() == m.cfg.n_vocab && m.output->cols() == d, f.name(), ": output.weight is ",
                    m.output->rows(), " x ", m.output->cols(), ", expected ", m.cfg.n_vocab, " x ", d);
    return m;
  }

  // Fails naming the tensor and the first NaN / Inf element (row, column) of M.
  static void require_finite(const io::gguf_file& f, const std::string& name, const Eigen::MatrixXf& M) {
    if (M.allFinite()) return;
    for (index c = 0; c < M.cols(); ++c)
      for (index r = 0; r < M.rows(); ++r)
        detail::require(std::isfinite(M(r, c)), f.name(), ": tensor '", name, "' element (", r, ", ", c, ") is ", M(r, c),
                        "; expected a finite number");
  }

  // ---- the forward pass, piece by piece ----
  act embed(std::span<const std::int32_t> tokens) const {
    act h(cfg.n_embd, static_cast<index>(tokens.size()));
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      detail::require(tokens[t] >= 0 && tokens[t] < cfg.n_vocab, "llama: token id ", tokens[t], " at position ", t,
                      " is outside the vocabulary [0, ", cfg.n_vocab, ")");
      h.col(static_cast<index>(t)) = tok_embd.row(tokens[t]).transpose();
    }
    return h;
  }

  // RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x²) + eps) ⊙ w, per token.
  act rms_norm(const act& x, const Eigen::VectorXf& w) const {
    act y(x.rows(), x.cols());
    parallel_for(x.cols(), 64, [&](index b, index e) {
      for (index t = b; t < e; ++t) {
        const double ms = static_cast<double>(x.col(t).squaredNorm()) / static_cast<double>(x.rows());
        const float inv = static_cast<float>(1.0 / std::sqrt(ms + cfg.rms_eps));
        y.col(t) = (x.col(t) * inv).cwiseProduct(w);
      }
    });
    return y;
  }

  // RMSNorm of every head_dim slice of every column (Qwen3's q_norm / k_norm), in place.
  void head_rms_norm(act& x, const Eigen::VectorXf& w) const {
    const index hd = cfg.head_dim();
    detail::require(w.size() == hd && x.rows() % hd == 0, "llama: head norm of ", w.size(), " entries on ", x.rows(),
                    " rows, head dimension ", hd);
    parallel_for(x.cols(), 64, [&](index b, index e) {
      for (index t = b; t < e; ++t)
        for (index r = 0; r < x.rows(); r += hd) {
          auto s = x.col(t).segment(r, hd);
          const double ms = static_cast<double>(s.squaredNorm()) / static_cast<double>(hd);
          s = (s * static_cast<float>(1.0 / std::sqrt(ms + cfg.rms_eps))).cwiseProduct(w);
        }
    });
  }

  // RoPE (Su et al. 2021) on rows [0, n_heads·head_dim) of x, positions restarting every T
  // columns. llama.cpp's GGUF conversion permutes the Q/K rows of HF Llama checkpoints so
  // that the rotated pairs are adjacent: pair i of a head is (2i, 2i+1), angle
  // pos · base^(−2i/head_dim) ("normal" RoPE, ggml's LLAMA rope type).
  void rope(act& x, index n_heads, index T) const {
    const index hd = cfg.head_dim();
    detail::require(cfg.rope_inv_freq.empty() || static_cast<index>(cfg.rope_inv_freq.size()) == hd / 2, "llama: ",
                    cfg.rope_inv_freq.size(), " RoPE frequencies for head dimension ", hd);
    std::vector<float> cs(static_cast<std::size_t>(T * hd / 2)), sn(cs.size());
    for (index p = 0; p < T; ++p)
      for (index i = 0; i < hd / 2; ++i) {
        const double a = static_cast<double>(p) * (cfg.rope_inv_freq.empty()
                                                        ? std::pow(cfg.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(hd))
                                                        : cfg.rope_inv_freq[static_cast<std::size_t>(i)]);
        cs[static_cast<std::size_t>(p * hd / 2 + i)] = static_cast<float>(std::cos(a));
        sn[static_cast<std::size_t>(p * hd / 2 + i)] = static_cast<float>(std::sin(a));
      }
    parallel_for(x.cols(), 64, [&](index b, index e) {
      for (index t = b; t < e; ++t) {
        const index p = t % T;
        float* col = x.col(t).data();
        for (index h = 0; h < n_heads; ++h)
          for (index i = 0; i < hd / 2; ++i) {
            const float c = cs[static_cast<std::size_t>(p * hd / 2 + i)], s = sn[static_cast<std::size_t>(p * hd / 2 + i)];
            float& x0 = col[h * hd + 2 * i];
            float& x1 = col[h * hd + 2 * i + 1];
            const float a0 = x0, a1 = x1;
            x0 = a0 * c - a1 * s;
            x1 = a0 * s + a1 * c;
          }
      }
    });
  }

  // Causal grouped-query attention (Ainslie et al. 2023): query head h reads key/value head
  // h / (n_head / n_head_kv). q [n_head·hd × N], k, v [n_head_kv·hd × N], N = n_windows·T.
  act attention(const act& q, const act& k, const act& v, index T) const {
    const index hd = cfg.head_dim(), n_win = q.cols() / T, group = cfg.n_head / cfg.n_head_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    act out(q.rows(), q.cols());
    parallel_for(n_win * cfg.n_head, 1, [&](index b, index e) {
      Eigen::MatrixXf S;
      for (index job = b; job < e; ++job) {
        const index w = job / cfg.n_head, h = job % cfg.n_head, g = h / group;
        const auto Q = q.block(h * hd, w * T, hd, T);
        const auto K = k.block(g * hd, w * T, hd, T);
        const auto V = v.block(g * hd, w * T, hd, T);
        S.noalias() = (K.transpose() * Q) * scale;  // S(i, j): key i, query j
        for (index j = 0; j < T; ++j) {             // softmax over keys i <= j
          auto col = S.col(j).head(j + 1);
          const float mx = col.maxCoeff();
          col = (col.array() - mx).exp();
          col /= col.sum();
          S.col(j).tail(T - j - 1).setZero();
        }
        out.block(h * hd, w * T, hd, T).noalias() = V * S;
      }
    });
    return out;
  }

  // One transformer block on h [n_embd × n_windows·T] (in place). `hook` (optional) sees
  // the input of each group of linears before they run and may replace them.
  void block_forward(llama_block& blk, act& h, index T, const tap_hook& hook = {}) const {
    detail::require(T > 0 && h.cols() % T == 0, "llama: ", h.cols(), " tokens is not a whole number of windows of ", T);
    detail::require(cfg.sliding_window == 0 || T <= cfg.sliding_window, "llama: windows of ", T,
                    " tokens exceed the model's sliding attention window of ", cfg.sliding_window,
                    " (not implemented: use a shorter context)");
    act x = rms_norm(h, blk.attn_norm), q, k, v, y;
    if (hook) hook(tap::attn_in, x, blk);
    blk[slot::q].apply(x, q);
    blk[slot::k].apply(x, k);
    blk[slot::v].apply(x, v);
    if (blk.q_bias.size() != 0) q.colwise() += blk.q_bias;
    if (blk.k_bias.size() != 0) k.colwise() += blk.k_bias;
    if (blk.v_bias.size() != 0) v.colwise() += blk.v_bias;
    if (blk.q_norm.size() != 0) head_rms_norm(q, blk.q_norm);
    if (blk.k_norm.size() != 0) head_rms_norm(k, blk.k_norm);
    rope(q, cfg.n_head, T);
    rope(k, cfg.n_head_kv, T);
    const act a = attention(q, k, v, T);
    if (hook) hook(tap::attn_out, a, blk);
    blk[slot::o].apply(a, y);
    if (blk.o_bias.size() != 0) y.colwise() += blk.o_bias;
    h += y;
    x = rms_norm(h, blk.ffn_norm);
    if (hook) hook(tap::ffn_in, x, blk);
    act g, u;
    blk[slot::gate].apply(x, g);
    blk[slot::up].apply(x, u);
    // SwiGLU (Shazeer 2020): silu(gate) ⊙ up.
    g = (g.array() / (1.0f + (-g.array()).exp())) * u.array();
    if (hook) hook(tap::ffn_act, g, blk);
    blk[slot::down].apply(g, y);
    h += y;
  }

  // Final norm and LM head: logits [vocab × tokens].
  act logits(const act& h) const {
    act y;
    output->apply(rms_norm(h, output_norm), y);
    return y;
  }

  // Logits of every position of windows of T tokens (tokens.size() a multiple of T).
  act forward(std::span<const std::int32_t> tokens, index T) {
    act h = embed(tokens);
    for (auto& b : blocks) block_forward(b, h, T);
    return logits(h);
  }

  // Counts over the quantizable linears (the blocks'; embeddings and head stay float, as in
  // the papers).
  std::size_t block_weight_count() const {
    std::size_t n = 0;
    for (const auto& b : blocks)
      for (slot s : all_slots) n += static_cast<std::size_t>(b[s].rows() * b[s].cols());
    return n;
  }
};

}  // namespace lowbit::tools
