#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// AWQ: activation-aware weight quantization (Lin et al., "AWQ: Activation-aware Weight
// Quantization for LLM Compression and Acceleration", MLSys 2024; code mit-han-lab/llm-awq).
//
// The idea (paper §3.2): a few input channels carry activations far larger than the rest, and
// their weights matter most. Scaling those weight columns up by s > 1 before quantizing (and
// the activations down by 1/s, folded into the producer so inference costs nothing) shrinks
// their relative rounding error. Per group of linears that share one input:
//   1. s_x[j] = mean over tokens |x_j|                           (awq_calibration)
//   2. for α = i/20, i = 0…19: s = max(s_x^α, 1e-4) / sqrt(max·min); quantize W·diag(s) with
//      RTN, divide back by s, and measure the MSE of the block output against float;
//      keep the best α                                             (search_scales)
//   3. fold 1/s into the producer; store W·diag(s)                (fold_scales_into_*)
//   4. auto-clip: per output group, shrink max|w| by 1 − i/20, i = 0…9, keep the shrink with
//      the lowest output error over ~512 sampled tokens (not for q/k) (search_clip)
//   5. quantize the scaled, clipped weights with the base method (RTN by default; GPTQ and
//      OWQ compose: they then see the Hessian of the scaled inputs).
// Exact reference details are in docs/awq.md.
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/method/hessian.hpp"
#include "lowbit/method/rtn.hpp"

namespace lowbit::inline LOWBIT_ABI {

// ---------------------------------------------------------------------------------------
// Calibration statistics
// ---------------------------------------------------------------------------------------

// awq_calibration: the running statistics AWQ needs from calibration batches X [in x tokens]:
// s_x = mean |x| per input channel, and a deterministic token sample on which the searches
// measure the output error. |x| is summed in double token by token in stream order, so the
// result does not depend on how the tokens were split into batches. The sample keeps every
// `stride`-th token of the stream; when it would exceed `max_tokens` the stride doubles and
// every other kept token is dropped, so it stays an evenly strided sample of everything seen,
// again independent of the batch split.
class awq_calibration {
 public:
  explicit awq_calibration(index channels, index max_tokens = 4096)
      : sum_abs_(channels > 0 ? channels : 0), max_tokens_(max_tokens) {
    detail::require(channels > 0, "awq_calibration: channels = ", channels, "; expected >= 1");
    detail::require(max_tokens >= 1, "awq_calibration: max_tokens = ", max_tokens, "; expected >= 1");
    sum_abs_.setZero();
  }

  template <MatrixInput M>
  void add_batch(const M& X) {
    add_batch(to_view(X));
  }
  void add_batch(matrix_view<const float> X) {
    detail::require(X.rows == channels(), "awq_calibration::add_batch: X has ", X.rows,
                    " rows (channels), expected ", channels());
    require_finite(X, "calibration activations X");
    for (index t = 0; t < X.cols; ++t, ++seen_) {
      for (index c = 0; c < X.rows; ++c) sum_abs_[c] += std::abs(static_cast<double>(X(c, t)));
      if (seen_ % stride_ != 0) continue;
      if (kept_ == max_tokens_) compact();
      if (seen_ % stride_ != 0) continue;
      if (kept_ == sample_.cols()) sample_.conservativeResize(channels(), std::max<index>(16, std::min(2 * kept_, max_tokens_)));
      for (index c = 0; c < X.rows; ++c) sample_(c, kept_) = X(c, t);
      ++kept_;
    }
  }

  index channels() const { return sum_abs_.size(); }
  index tokens_seen() const { return seen_; }
  // s_x: mean |x| per input channel over every token seen.
  Eigen::VectorXf mean_abs() const {
    detail::require(seen_ > 0, "awq_calibration: no calibration tokens were added");
    return (sum_abs_ / static_cast<double>(seen_)).cast<float>();
  }
  // The kept token sample [channels x kept].
  Eigen::MatrixXf tokens() const { return sample_.leftCols(kept_); }

 private:
  void compact() {
    // Keep tokens whose stream index is a multiple of the doubled stride: those are the even
    // positions of the current sample.
    index w = 0;
    for (index k = 0; k < kept_; k += 2) sample_.col(w++) = sample_.col(k);
    kept_ = w;
    stride_ *= 2;
  }

  Eigen::VectorXd sum_abs_;
  Eigen::MatrixXf sample_;
  index max_tokens_ = 0, kept_ = 0, seen_ = 0, stride_ = 1;
};

// ---------------------------------------------------------------------------------------
// Options, inputs, results
// ---------------------------------------------------------------------------------------

// The block whose output AWQ protects: given the weights of the linears in the group (in the
// order they were passed) and the input X [in x tokens], return the block output (any shape,
// the same for every call). An engine passes its attention or MLP here; the default is the
// linears' outputs stacked, [sum of rows x tokens].
using awq_block = std::function<Eigen::MatrixXf(std::span<const Eigen::MatrixXf> weights, const Eigen::MatrixXf& X)>;

struct awq_options {
  // Scale search (llm-awq auto_scale.py): α = i / scale_grid for i = 0 … scale_grid − 1
  // (α = 1 is never tried), s = max(s_x^α, min_scale) normalised by sqrt(max(s)·min(s)).
  int scale_grid = 20;
  float min_scale = 1e-4f;
  std::optional<float> alpha;  // use this α instead of searching (ablations; α = 0 is plain RTN)
  awq_block block;             // empty: the linears' stacked outputs
  // Clip search (llm-awq auto_clip.py): shrink 1 − i / clip_grid for i < clip_max_shrink·clip_grid.
  bool clip = true;
  int clip_grid = 20;
  float clip_max_shrink = 0.5f;
  index clip_tokens = 512;  // tokens X[:, ::max(1, n / clip_tokens)] as in the reference
  // Linears whose name contains one of these are not clipped: "due to qk bmm, it is hard to
  // clip precisely" (llm-awq). A linear without a name is clipped.
  std::vector<std::string> no_clip_names = {"q_", "k_", "query", "key", "Wqkv"};
};

// One linear of a group that shares an input: its weights [out x in] and a name (used only to
// decide whether it is clipped; see awq_options::no_clip_names).
struct awq_linear {
  std::string name;
  matrix_view<const float> W;
  awq_linear(std::string n, matrix_view<const float> w) : name(std::move(n)), W(w) {}
  template <MatrixInput M>
  awq_linear(std::string n, const M& w) : name(std::move(n)), W(to_view(w)) {}
};

// What the scale search found.
struct awq_scales {
  Eigen::VectorXf s;           // per input channel: store W·diag(s), fold 1/s into the producer
  float alpha = 0.0f;          // the chosen exponent
  double loss = 0.0;           // block-output MSE at the chosen α
  std::vector<double> losses;  // the loss of every α tried, in grid order
};

namespace detail {

inline Eigen::MatrixXf copy_matrix(matrix_view<const float> v) {
  Eigen::MatrixXf m(v.rows, v.cols);
  for (index c = 0; c < v.cols; ++c)
    for (index r = 0; r < v.rows; ++r) m(r, c) = v(r, c);
  return m;
}

// Calibration activations arrive as any matrix_view / Eigen object (expressions included).
template <class M>
concept ActivationInput = MatrixInput<M> || std::is_base_of_v<Eigen::MatrixBase<M>, M>;
template <ActivationInput M>
Eigen::MatrixXf activation_matrix(const M& X) {
  if constexpr (MatrixInput<M>) return copy_matrix(to_view(X));
  else return X.template cast<float>();
}

inline double mean_squared_difference(const Eigen::MatrixXf& a, const Eigen::MatrixXf& b) {
  detail::require(a.rows() == b.rows() && a.cols() == b.cols(), "awq: the block returned a ", b.rows(), " x ",
                  b.cols(), " output for quantized weights but ", a.rows(), " x ", a.cols(), " for float ones");
  return (a - b).cast<double>().squaredNorm() / static_cast<double>(a.size());
}

// The scale search's losses go over rows in fixed chunks of 256 (parallel_for splits by n and
// grain only, so the chunks, and with them Eigen's blocking, do not depend on the thread
// count): Eigen packs all of H once per chunk, and 16-row chunks spent about a quarter of a
// 4096-column search packing H (128 MB each time) while running its 24-row fp64 micro-kernel
// two thirds full.
inline constexpr index awq_error_rows = 256;

// Σ_r term_r over `rows` rows: chunk(r0, r1, t) writes the terms of rows [r0, r1) to t[0..),
// chunks of awq_error_rows in parallel; the terms are summed in row order afterwards, so the
// result does not depend on the thread count.
template <class Chunk>
double sum_of_row_terms(index rows, Chunk&& chunk) {
  std::vector<double> term(static_cast<std::size_t>(rows));
  parallel_for(rows, awq_error_rows, [&](index r0, index r1) { chunk(r0, r1, term.data() + r0); });
  double sum = 0.0;
  for (const double v : term) sum += v;
  return sum;
}

// Σ_r e_r H e_rᵀ over the rows of E, in fp64. E may be an Eigen expression (W − Q): its rows
// are evaluated chunk by chunk. (A template, as the clip search below: their fp64 GEMMs are
// instantiated only in a TU that runs AWQ; issue #16.)
template <class Derived>
double quadratic_error(const Eigen::MatrixBase<Derived>& E, const Eigen::MatrixXd& H) {
  return sum_of_row_terms(E.rows(), [&](index r0, index r1, double* t) {
    const Eigen::MatrixXd Ed = E.middleRows(r0, r1 - r0).template cast<double>();
    const Eigen::MatrixXd EH = Ed * H;
    for (index r = 0; r < r1 - r0; ++r) t[r] = EH.row(r).dot(Ed.row(r));
  });
}

// Σ_r ‖e_r X‖² over the rows of E (X [in x tokens]): the same quantity as quadratic_error with
// H = 2/n · X Xᵀ, times n/2, without forming H; fp32 products, fp64 sums. Cheaper than the Gram form when the tokens are fewer than the input
// channels (2·rows·in·n flops against 2·rows·in²).
template <class Derived>
double output_error(const Eigen::MatrixBase<Derived>& E, const Eigen::MatrixXf& X) {
  return sum_of_row_terms(E.rows(), [&](index r0, index r1, double* t) {
    const Eigen::MatrixXf EX = E.middleRows(r0, r1 - r0) * X;
    for (index r = 0; r < r1 - r0; ++r) t[r] = EX.row(r).template cast<double>().squaredNorm();
  });
}

inline bool name_matches(const std::string& name, const std::vector<std::string>& patterns) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return !p.empty() && name.find(p) != std::string::npos; });
}

inline void require_awq_options(const awq_options& o) {
  detail::require(o.scale_grid >= 1, "awq_options: scale_grid = ", o.scale_grid, "; expected >= 1");
  detail::require(o.min_scale > 0.0f, "awq_options: min_scale = ", o.min_scale, "; expected > 0");
  detail::require(!o.alpha || (*o.alpha >= 0.0f && *o.alpha <= 1.0f), "awq_options: alpha = ",
                  o.alpha.value_or(0.0f), "; expected in [0, 1]");
  detail::require(o.clip_grid >= 1, "awq_options: clip_grid = ", o.clip_grid, "; expected >= 1");
  detail::require(o.clip_max_shrink > 0.0f && o.clip_max_shrink <= 1.0f, "awq_options: clip_max_shrink = ",
                  o.clip_max_shrink, "; expected in (0, 1]");
  detail::require(o.clip_tokens >= 1, "awq_options: clip_tokens = ", o.clip_tokens, "; expected >= 1");
}

}  // namespace detail

// s = max(s_x^α, min_scale), normalised so that max(s)·min(s) = 1 (llm-awq auto_scale.py).
// α = 0 gives s = 1 exactly.
inline Eigen::VectorXf awq_input_scales(const Eigen::VectorXf& s_x, float alpha, float min_scale = 1e-4f) {
  detail::require(s_x.size() > 0, "awq_input_scales: s_x is empty");
  Eigen::VectorXf s(s_x.size());
  for (index j = 0; j < s.size(); ++j) {
    detail::require(std::isfinite(s_x[j]) && s_x[j] >= 0.0f, "awq_input_scales: s_x[", j, "] = ", s_x[j],
                    "; expected a finite mean |x| >= 0");
    s[j] = std::max(std::pow(s_x[j], alpha), min_scale);
  }
  // The product in double: max·min of extreme statistics can overflow float (llm-awq #96).
  const double norm = std::sqrt(static_cast<double>(s.maxCoeff()) * static_cast<double>(s.minCoeff()));
  return (s.cast<double>() / norm).cast<float>();
}

// ---------------------------------------------------------------------------------------
// Folding (llm-awq apply_scale): the float function of the model is unchanged.
// ---------------------------------------------------------------------------------------

// Consumer side: W[:, j] *= s_j. These are the weights AWQ stores.
inline void scale_input_channels(matrix_view<float> W, const Eigen::VectorXf& s) {
  detail::require(W.cols == s.size(), "scale_input_channels: W has ", W.cols, " columns, s has ", s.size(), " entries");
  for (index r = 0; r < W.rows; ++r)
    for (index c = 0; c < W.cols; ++c) W(r, c) *= s[c];
}
template <class M>
  requires detail::EigenDirectAccess<M>
void scale_input_channels(M& W, const Eigen::VectorXf& s) {
  scale_input_channels(to_mutable_view(W), s);
}

// Producer = a norm (scale_ln_fcs): its weight (and bias) are divided by s, so the norm
// already outputs x / s.
inline void fold_scales_into_norm(Eigen::Ref<Eigen::VectorXf> weight, const Eigen::VectorXf& s) {
  detail::require(weight.size() == s.size(), "fold_scales_into_norm: the norm weight has ", weight.size(),
                  " entries, s has ", s.size());
  weight.array() /= s.array();
}
inline void fold_scales_into_norm(Eigen::Ref<Eigen::VectorXf> weight, Eigen::Ref<Eigen::VectorXf> bias,
                                  const Eigen::VectorXf& s) {
  fold_scales_into_norm(weight, s);
  detail::require(bias.size() == s.size(), "fold_scales_into_norm: the norm bias has ", bias.size(),
                  " entries, s has ", s.size());
  bias.array() /= s.array();
}

// Producer = a linear (scale_fc_fc, e.g. v -> o, up -> down): its LAST s.size() output rows
// (and bias entries) are divided by s, which also handles a fused qkv producer whose last
// rows are v.
inline void fold_scales_into_linear(matrix_view<float> W_prev, const Eigen::VectorXf& s) {
  detail::require(W_prev.rows >= s.size(), "fold_scales_into_linear: the producer has ", W_prev.rows,
                  " output rows, fewer than the ", s.size(), " scales");
  const index first = W_prev.rows - s.size();
  for (index r = first; r < W_prev.rows; ++r)
    for (index c = 0; c < W_prev.cols; ++c) W_prev(r, c) /= s[r - first];
}
template <class M>
  requires detail::EigenDirectAccess<M>
void fold_scales_into_linear(M& W_prev, const Eigen::VectorXf& s) {
  fold_scales_into_linear(to_mutable_view(W_prev), s);
}
template <class M>
  requires detail::EigenDirectAccess<M>
void fold_scales_into_linear(M& W_prev, Eigen::Ref<Eigen::VectorXf> bias, const Eigen::VectorXf& s) {
  fold_scales_into_linear(to_mutable_view(W_prev), s);
  detail::require(bias.size() >= s.size(), "fold_scales_into_linear: the producer bias has ", bias.size(),
                  " entries, fewer than the ", s.size(), " scales");
  bias.tail(s.size()).array() /= s.array();
}

// ---------------------------------------------------------------------------------------
// The searches, for any fake quantizer Q(W) -> W_hat (the method policy below supplies RTN)
// ---------------------------------------------------------------------------------------

// Step 2: the α grid search over a group of linears sharing the input X [in x tokens].
template <class FakeQuant>
awq_scales search_awq_scales(std::span<const awq_linear> linears, const Eigen::MatrixXf& X,
                             const Eigen::VectorXf& s_x, const awq_options& opt, FakeQuant&& fake_quant) {
  detail::require_awq_options(opt);
  detail::require(!linears.empty(), "awq::search_scales: the group has no linears");
  detail::require(s_x.size() == X.rows(), "awq::search_scales: s_x has ", s_x.size(), " entries, X has ", X.rows(),
                  " rows (input channels)");
  detail::require(X.cols() > 0, "awq::search_scales: X has no tokens");
  require_finite(to_view(X), "calibration activations X");
  std::vector<Eigen::MatrixXf> W;
  W.reserve(linears.size());
  for (const auto& l : linears) {
    detail::require(l.W.cols == X.rows(), "awq::search_scales: linear '", l.name, "' has ", l.W.cols,
                    " input columns, X has ", X.rows(), " rows");
    require_valid_weights(l.W);
    W.push_back(detail::copy_matrix(l.W));
  }
  // The default block (the stacked outputs) needs no forward pass per candidate: with
  // H = 2/n · X Xᵀ, mean_t ‖(W − Ŵ) x_t‖² = tr((W − Ŵ) H (W − Ŵ)ᵀ) / 2, so one Gram matrix
  // replaces 20 products with all n tokens when n >= in (the usual calibration). With fewer
  // tokens than input channels the products with X are the cheaper way to the same value
  // (output_error; 2·rows·in·n flops per candidate instead of 2·rows·in²).
  const bool stacked = !opt.block;
  const bool gram = stacked && X.cols() >= X.rows();
  hessian H;
  Eigen::MatrixXf reference;
  index total_rows = 0;
  for (const auto& w : W) total_rows += w.rows();
  if (gram) {
    H = hessian(X.rows());
    H.add_batch(X);
  } else if (!stacked) {
    reference = opt.block(W, X);
  }

  std::vector<float> alphas;
  if (opt.alpha) alphas.push_back(*opt.alpha);
  else
    for (int i = 0; i < opt.scale_grid; ++i) alphas.push_back(static_cast<float>(i) / static_cast<float>(opt.scale_grid));

  awq_scales best;
  best.loss = std::numeric_limits<double>::infinity();
  std::vector<Eigen::MatrixXf> Wq(W.size());
  for (const float alpha : alphas) {
    const Eigen::VectorXf s = awq_input_scales(s_x, alpha, opt.min_scale);
    const Eigen::VectorXf inv = s.cwiseInverse();
    for (std::size_t k = 0; k < W.size(); ++k) {
      const Eigen::MatrixXf Ws = W[k] * s.asDiagonal();
      Wq[k] = fake_quant(Ws) * inv.asDiagonal();
    }
    double loss = 0.0;
    if (gram) {
      for (std::size_t k = 0; k < W.size(); ++k) loss += detail::quadratic_error(W[k] - Wq[k], H.matrix());
      loss /= 2.0 * static_cast<double>(total_rows);
    } else if (stacked) {
      for (std::size_t k = 0; k < W.size(); ++k) loss += detail::output_error(W[k] - Wq[k], X);
      loss /= static_cast<double>(X.cols()) * static_cast<double>(total_rows);
    } else {
      loss = detail::mean_squared_difference(reference, opt.block(Wq, X));
    }
    best.losses.push_back(loss);
    // Strictly lower, as llm-awq: ties keep the smaller α. A non-finite loss never wins.
    if (loss < best.loss) {
      best.loss = loss;
      best.alpha = alpha;
      best.s = s;
    }
  }
  if (best.s.size() == 0) {  // every loss was NaN/Inf (a broken block): fall back to s = 1
    best.s = Eigen::VectorXf::Ones(X.rows());
    best.alpha = 0.0f;
  }
  return best;
}

// The evenly strided token sample of the clip search: X[:, ::max(1, n / n_sample)].
inline Eigen::MatrixXf awq_clip_sample(const Eigen::MatrixXf& X, index n_sample) {
  const index step = std::max<index>(1, X.cols() / n_sample);
  const index n = (X.cols() + step - 1) / step;
  Eigen::MatrixXf S(X.rows(), n);
  for (index k = 0; k < n; ++k) S.col(k) = X.col(k * step);
  return S;
}

// Step 4: per output group (G consecutive input columns of one row), the clip limit m·(1 − i/grid)
// minimising ‖x_g·(Q(clamp(w_g, ±limit)) − w_g)‖² over the sampled tokens, where Q is the
// min-max grid `spec` (symmetric clip, asymmetric quantization, as llm-awq). Returns the limits
// [rows x groups]; X_scaled are the layer's (scaled) inputs [in x tokens].
template <class Derived>
Eigen::MatrixXf search_awq_clip(const Eigen::MatrixBase<Derived>& W, const Eigen::MatrixXf& X_scaled, index G,
                                const grid_spec& spec, const awq_options& opt) {
  detail::require_awq_options(opt);
  detail::require(W.cols() == X_scaled.rows(), "awq::search_clip: W has ", W.cols(), " columns, X has ",
                  X_scaled.rows(), " rows");
  detail::require(G >= 1, "awq::search_clip: group size ", G, "; expected >= 1");
  const Eigen::MatrixXf XT = awq_clip_sample(X_scaled, opt.clip_tokens).transpose();  // [tokens x in]
  const index groups = (W.cols() + G - 1) / G;
  const int steps = std::max(1, static_cast<int>(opt.clip_max_shrink * static_cast<float>(opt.clip_grid)));
  const int maxq = spec.maxq();
  Eigen::MatrixXf limits(W.rows(), groups);
  parallel_for(W.rows(), 4, [&](index r0, index r1) {
    Eigen::MatrixXf D;
    Eigen::VectorXf wc;
    for (index r = r0; r < r1; ++r)
      for (index g = 0; g < groups; ++g) {
        const index c0 = g * G, n = std::min(G, W.cols() - c0);
        const Eigen::VectorXf w = W.row(r).segment(c0, n).transpose();
        const float m = w.cwiseAbs().maxCoeff();
        D.resize(n, steps);
        for (int i = 0; i < steps; ++i) {
          const float limit = m * (1.0f - static_cast<float>(i) / static_cast<float>(opt.clip_grid));
          wc = w.cwiseMax(-limit).cwiseMin(limit);
          const grid_params p = grid_for_range(wc.minCoeff(), wc.maxCoeff(), spec);
          for (index k = 0; k < n; ++k) D(k, i) = fake_quantize(wc[k], p, maxq) - w[k];
        }
        // Output error of each candidate on the sampled tokens: one small GEMM.
        const Eigen::VectorXd err = (XT.middleCols(c0, n) * D).cast<double>().colwise().squaredNorm().transpose();
        int best = 0;
        for (int i = 1; i < steps; ++i)
          if (err[i] < err[best]) best = i;
        limits(r, g) = m * (1.0f - static_cast<float>(best) / static_cast<float>(opt.clip_grid));
      }
  });
  return limits;
}

// W = clamp(W, −limit, +limit) per (row, group) (llm-awq apply_clip).
inline void apply_awq_clip(Eigen::MatrixXf& W, const Eigen::MatrixXf& limits, index G) {
  detail::require(limits.rows() == W.rows() && limits.cols() == (W.cols() + G - 1) / G,
                  "apply_awq_clip: the limits table is ", limits.rows(), " x ", limits.cols(), ", expected ", W.rows(),
                  " x ", (W.cols() + G - 1) / G);
  for (index c = 0; c < W.cols(); ++c)
    for (index r = 0; r < W.rows(); ++r) W(r, c) = std::clamp(W(r, c), -limits(r, c / G), limits(r, c / G));
}

// ---------------------------------------------------------------------------------------
// The method policy
// ---------------------------------------------------------------------------------------

template <class Base> struct adadim;
template <class... Policies> struct awq;

namespace detail {
template <class T> struct is_adadim : std::false_type {};
template <class B> struct is_adadim<adadim<B>> : std::true_type {};
template <class T> struct is_awq : std::false_type {};
template <class... P> struct is_awq<awq<P...>> : std::true_type {};

// awq<policies...> quantizes with rtn<policies...>; awq<Method> with that method.
template <class... P> struct awq_base { using type = rtn<P...>; };
template <class M>
  requires(!Policy<M>)
struct awq_base<M> { using type = M; };

// A layer Hessian as a base method takes it: a lowbit::hessian or an Eigen [in x in] matrix.
template <class T>
concept HessianArg = std::same_as<std::remove_cvref_t<T>, hessian> ||
                     std::is_base_of_v<Eigen::MatrixBase<std::remove_cvref_t<T>>, std::remove_cvref_t<T>>;
template <class... A> struct first_is_hessian : std::false_type {};
template <class A0, class... A> struct first_is_hessian<A0, A...> : std::bool_constant<HessianArg<A0>> {};
template <class> inline constexpr bool dependent_false = false;

inline Eigen::MatrixXd hessian_as_double(const hessian& H) {
  detail::require(!H.empty(), "awq: the hessian has no batches; add calibration activations with add_batch");
  return H.matrix();
}
template <class D>
Eigen::MatrixXd hessian_as_double(const Eigen::MatrixBase<D>& H) {
  return H.template cast<double>();
}

// Runs Method on W with `args`. A method that needs a Hessian (GPTQ, OWQ) and was given none
// gets the one of the calibration inputs X [in x tokens] (lowbit::hessian, 2/n · X Xᵀ).
template <class Method, class... Args>
auto run_calibrated(matrix_view<const float> W, const Eigen::MatrixXf& X, Args&&... args) {
  if constexpr (requires { Method::run(W, std::forward<Args>(args)...); }) {
    return Method::run(W, std::forward<Args>(args)...);
  } else if constexpr (requires(const hessian& h) { Method::run(W, h, std::forward<Args>(args)...); }) {
    hessian h(X.rows());
    h.add_batch(X);
    return Method::run(W, h, std::forward<Args>(args)...);
  } else {
    static_assert(dependent_false<Method>,
                  "lowbit: the base method's run(W, ...) accepts neither these arguments nor a Hessian before them");
  }
}

// How AWQ runs its base on the scaled weights W·diag(s). The layer now sees x / s, so a Hessian
// given for the original inputs becomes diag(1/s) H diag(1/s); without one, the base gets the
// Hessian of the scaled calibration inputs.
template <class Base>
struct awq_base_runner {
  template <class... Args>
  static auto run(matrix_view<const float> W_scaled, const Eigen::VectorXf& s, const Eigen::MatrixXf& X_scaled,
                  Args&&... args) {
    if constexpr (first_is_hessian<Args...>::value) return run_rescaled(W_scaled, s, std::forward<Args>(args)...);
    else return run_calibrated<Base>(W_scaled, X_scaled, std::forward<Args>(args)...);
  }

 private:
  template <class H, class... Rest>
  static auto run_rescaled(matrix_view<const float> W_scaled, const Eigen::VectorXf& s, const H& H_in, Rest&&... rest) {
    const Eigen::MatrixXd Hd = hessian_as_double(H_in);
    detail::require(Hd.rows() == s.size() && Hd.cols() == s.size(), "awq: H is ", Hd.rows(), " x ", Hd.cols(),
                    ", expected ", s.size(), " x ", s.size(), " (the layer's input channels)");
    const Eigen::VectorXd inv = s.cast<double>().cwiseInverse();
    const Eigen::MatrixXd Hs = inv.asDiagonal() * Hd * inv.asDiagonal();
    return Base::run(W_scaled, Hs, std::forward<Rest>(rest)...);
  }
};
}  // namespace detail

// The result of AWQ on one linear: the base method's quantized matrix of W·diag(s) (clipped),
// plus the scales the caller folds into the producer.
template <class Q>
struct awq_quantized : Q {
  Eigen::VectorXf input_scales;  // s: the packed weights are W·diag(s); feed them x / s
  float alpha = 0.0f;
  Eigen::MatrixXf clip_limits;  // per (row, group) clip limit in the scaled domain; empty if not clipped
  awq_quantized() = default;
  awq_quantized(Q q, Eigen::VectorXf s, float a, Eigen::MatrixXf clip)
      : Q(std::move(q)), input_scales(std::move(s)), alpha(a), clip_limits(std::move(clip)) {}
  // y = W_hat · diag(1/s) · x, for a linear whose producer was not folded.
  void gemv_unfolded(std::span<const float> x, std::span<float> y) const {
    detail::require(static_cast<index>(x.size()) == input_scales.size(), "awq gemv_unfolded: x has ", x.size(),
                    " entries, expected ", input_scales.size());
    std::vector<float> xs(x.size());
    for (std::size_t j = 0; j < x.size(); ++j) xs[j] = x[j] / input_scales[static_cast<index>(j)];
    this->gemv(xs, y);
  }
};

// A group of linears quantized together: one scale vector for all of them.
template <class Q>
struct awq_group_result {
  awq_scales scales;
  std::vector<awq_quantized<Q>> linears;  // in the order given
};

// awq<bits<4>, group<oc, 128>>            AWQ + RTN (the paper's setting; zero point, g128 by default)
// awq<gptq<bits<3>, group<oc, 128>>>      AWQ scaling, then GPTQ on the scaled weights
// awq<owq<...>>                           AWQ scaling, then OWQ's weak columns + GPTQ
template <class... Policies>
struct awq {
  static_assert(!(detail::is_adadim<Policies>::value || ...),
                "lowbit::awq<adadim<...>>: AdaDim and AWQ do not compose (AdaDim paper, App. A.2): per-IC "
                "groups quantize each input column on its own, so AWQ's per-column scale cancels out");
  static_assert(!(detail::is_awq<Policies>::value || ...), "lowbit::awq<awq<...>>: AWQ is applied once");
  using base = typename detail::awq_base<Policies...>::type;
  using base_policies = typename base::policies;
  using packed_type = typename base::packed_type;  // what is stored: the base's packed matrix of W·diag(s)
  static_assert(base_policies::grouping::group_axis == axis::oc,
                "lowbit::awq: AWQ scales input channels, which only helps per-OC groups: per-IC (and adaptive) "
                "groups quantize each input column on its own, so the scale cancels; use group<oc, N>");
  // The quantizer of the searches: RTN on the base's grid (llm-awq searches with RTN even when
  // GPTQ follows), without outlier stores.
  using search_method = rtn<typename base_policies::bit_width, typename base_policies::grouping,
                            typename base_policies::zero_point, typename base_policies::stats>;
  using search_packed = typename search_method::packed_type;

  // Q(W): RTN fake quantization on the base's grid.
  static Eigen::MatrixXf fake_quantize(const Eigen::MatrixXf& W) {
    return search_method::run(to_view(W)).dequantize();
  }

  // Step 2 for a group of linears sharing X [in x tokens]; s_x defaults to mean |X| per row.
  static awq_scales search_scales(std::span<const awq_linear> linears, const Eigen::MatrixXf& X,
                                  const awq_options& opt = {}) {
    return search_awq_scales(linears, X, X.cwiseAbs().rowwise().mean(), opt, fake_quantize);
  }
  static awq_scales search_scales(std::span<const awq_linear> linears, const awq_calibration& calib,
                                  const awq_options& opt = {}) {
    return search_awq_scales(linears, calib.tokens(), calib.mean_abs(), opt, fake_quantize);
  }

  // Step 4 on already scaled weights and inputs: the clip limits per (row, group).
  static Eigen::MatrixXf search_clip(const Eigen::MatrixXf& W_scaled, const Eigen::MatrixXf& X_scaled,
                                     const awq_options& opt = {}) {
    return search_awq_clip(W_scaled, X_scaled, clip_group_size(W_scaled.cols()), grid_spec_for<search_packed>(), opt);
  }

  // Steps 1-5 for a group of linears sharing one input. The caller folds result.scales.s into
  // the producer (fold_scales_into_norm / fold_scales_into_linear). `base_args` go to the base
  // method (e.g. GPTQ's options).
  template <class... BaseArgs>
  static auto quantize_group(std::span<const awq_linear> linears, const Eigen::MatrixXf& X, const awq_options& opt = {},
                             BaseArgs&&... base_args) {
    const auto t0 = std::chrono::steady_clock::now();
    return finish_group(t0, linears, X, search_scales(linears, X, opt), opt, base_args...);
  }
  // The same with the reference's split of the tokens: s_x = mean |x|, the clip sample and the
  // base method's inputs come from every calibration token (X_all, as llm-awq's input_feat),
  // while the α search, which runs the block once per candidate, sees X_search (an engine's
  // subset of whole windows, to bound that cost). X_search = X_all is the overload above.
  template <class... BaseArgs>
  static auto quantize_group(std::span<const awq_linear> linears, const Eigen::MatrixXf& X_search,
                             const Eigen::MatrixXf& X_all, const awq_options& opt, BaseArgs&&... base_args) {
    detail::require(X_search.rows() == X_all.rows(), "awq::quantize_group: the search tokens have ", X_search.rows(),
                    " channels, the calibration tokens ", X_all.rows());
    detail::require(X_all.cols() > 0, "awq::quantize_group: X_all has no tokens");
    const auto t0 = std::chrono::steady_clock::now();
    return finish_group(t0, linears, X_all,
                        search_awq_scales(linears, X_search, X_all.cwiseAbs().rowwise().mean(), opt, fake_quantize),
                        opt, base_args...);
  }
  template <class... BaseArgs>
  static auto quantize_group(std::span<const awq_linear> linears, const awq_calibration& calib,
                             const awq_options& opt = {}, BaseArgs&&... base_args) {
    const auto t0 = std::chrono::steady_clock::now();
    return finish_group(t0, linears, calib.tokens(), search_scales(linears, calib, opt), opt, base_args...);
  }

  // lowbit::quantize<awq<...>>(W, X [, options, base args...]): one linear (its own block).
  template <detail::ActivationInput M, class... BaseArgs>
  static auto run(matrix_view<const float> W, const M& X, const awq_options& opt = {}, BaseArgs&&... base_args) {
    const awq_linear l("", W);
    return std::move(quantize_group(std::span<const awq_linear>(&l, 1), detail::activation_matrix(X), opt,
                                    base_args...)
                         .linears.front());
  }
  template <class... BaseArgs>
  static auto run(matrix_view<const float> W, const awq_calibration& calib, const awq_options& opt = {},
                  BaseArgs&&... base_args) {
    const awq_linear l("", W);
    return std::move(quantize_group(std::span<const awq_linear>(&l, 1), calib, opt, base_args...).linears.front());
  }

 private:
  static index clip_group_size(index cols) {
    return base_policies::grouping::size == per_channel ? cols : static_cast<index>(base_policies::grouping::size);
  }

  template <class... BaseArgs>
  static auto finish_group(std::chrono::steady_clock::time_point t0, std::span<const awq_linear> linears,
                           const Eigen::MatrixXf& X, awq_scales sc, const awq_options& opt, BaseArgs&... base_args) {
    const Eigen::MatrixXf Xs = sc.s.cwiseInverse().asDiagonal() * X;  // what the scaled linears see
    using Q = decltype(detail::awq_base_runner<base>::run(std::declval<matrix_view<const float>>(), sc.s, Xs,
                                                          base_args...));
    awq_group_result<Q> result;
    for (const auto& l : linears) {
      Eigen::MatrixXf W = detail::copy_matrix(l.W) * sc.s.asDiagonal();
      Eigen::MatrixXf limits;
      if (opt.clip && !detail::name_matches(l.name, opt.no_clip_names)) {
        limits = search_clip(W, Xs, opt);
        apply_awq_clip(W, limits, clip_group_size(W.cols()));
      }
      Q q = detail::awq_base_runner<base>::run(to_view(W), sc.s, Xs, base_args...);
      std::ostringstream notes;
      notes << "awq alpha=" << sc.alpha << " search_loss=" << sc.loss << " clipped=" << (limits.size() > 0 ? 1 : 0);
      if (!q.report.notes.empty()) notes << "; " << q.report.notes;
      q.report.notes = notes.str();
      q.report.method = "awq+" + q.report.method;
      // The search is shared by the group; each linear reports the time up to its own result.
      q.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      result.linears.emplace_back(std::move(q), sc.s, sc.alpha, std::move(limits));
    }
    result.scales = std::move(sc);
    return result;
  }
};

}  // namespace lowbit
