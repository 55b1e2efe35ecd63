#pragma once
// The method registry of lowbit-quantize: method name → adapter. An adapter quantizes one
// group of linears that share an input (group_job: float weights, their calibration inputs
// X [in × tokens], the block around them) and returns the quantized linears. Each adapter
// is a few lines over the library's public API.
//
// Run-time options (bits, group size, axis) become compile-time policies through one
// dispatch table per family (with_format; with_spqr_format for SpQR's tiny groups), so the
// set of instantiated formats is in one place — and the loader of model files
// (model_file.hpp) reads exactly those formats back.
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/adadim.hpp"
#include "lowbit/awq.hpp"
#include "lowbit/gptq.hpp"
#include "lowbit/owq.hpp"
#include "lowbit/rtn.hpp"
#include "lowbit/spqr.hpp"
#include "model/sequential.hpp"

namespace lowbit::tools {

struct method_options {
  int bits = 4;
  int group = 128;  // 0 = per channel
  axis group_axis = axis::oc;
  // OWQ: the reference's nominal --target_bit (0 = bits + 0.01, the paper's 3.01 / 4.01).
  double target_bits = 0.0;
  double outlier_threshold = 0.2;  // SpQR's r in τ = r · mean_j(var(W[:, j]) / U_jj²)
  bool adadim_block = true;        // AdaDim compares block outputs (reference); false: the linear's own
  quantized_path path = quantized_path::dequantized;
  // Calibration windows the block-output searches run on (AWQ's scale search, AdaDim's
  // block-level axis choice): the attention / MLP is re-run for every candidate.
  index awq_windows = 8;
};

inline const std::vector<int>& supported_bits() {
  static const std::vector<int> v{2, 3, 4, 8};
  return v;
}
inline const std::vector<int>& supported_groups() {
  static const std::vector<int> v{0, 32, 64, 128, 256};
  return v;
}

template <class F>
auto with_bits(int b, F&& f) {
  switch (b) {
    case 2: return f.template operator()<bits<2>>();
    case 3: return f.template operator()<bits<3>>();
    case 4: return f.template operator()<bits<4>>();
    case 8: return f.template operator()<bits<8>>();
  }
  detail::fail("--bits ", b, " is not supported (expected 2, 3, 4 or 8)");
}

// Calls f.template operator()<bits<B>, group<A, G>>() for the run-time (B, G, A), A oc or ic
// (adaptive: the adapter builds group<adaptive, G::size> itself).
template <class F>
auto with_format(const method_options& o, F&& f) {
  return with_bits(o.bits, [&]<class Bits>() {
    auto with_axis = [&]<int G>() {
      if (o.group_axis == axis::ic) return f.template operator()<Bits, group<axis::ic, G>>();
      return f.template operator()<Bits, group<axis::oc, G>>();
    };
    switch (o.group) {
      case 32: return with_axis.template operator()<32>();
      case 128: return with_axis.template operator()<128>();
#if !defined(LOWBIT_TOOLS_FEW_FORMATS)  // unit tests instantiate two group sizes only (build time)
      case 0: return with_axis.template operator()<per_channel>();
      case 64: return with_axis.template operator()<64>();
      case 256: return with_axis.template operator()<256>();
#endif
    }
    detail::fail("--group ", o.group, " is not supported (expected 0 = per channel, 32, 64, 128 or 256)");
  });
}

// SpQR's formats: β₁ groups along the input columns of each row (oc only), 3-bit quantized
// stats over β₂ = 16 rows (spqr<>'s defaults). β₁ = 16 is the paper's recipe.
inline const std::vector<int>& supported_spqr_groups() {
  static const std::vector<int> v{16, 32, 64, 128};
  return v;
}
template <class F>
auto with_spqr_format(const method_options& o, F&& f) {
  detail::require(o.group_axis == axis::oc, "--method spqr needs --axis oc: SpQR's groups are beta1 consecutive input ",
                  "columns of one output row (per-IC groups are not supported)");
  return with_bits(o.bits, [&]<class Bits>() {
    switch (o.group) {
      case 16: return f.template operator()<spqr<Bits, group<axis::oc, 16>>>();
#if !defined(LOWBIT_TOOLS_FEW_FORMATS)
      case 32: return f.template operator()<spqr<Bits, group<axis::oc, 32>>>();
      case 64: return f.template operator()<spqr<Bits, group<axis::oc, 64>>>();
      case 128: return f.template operator()<spqr<Bits, group<axis::oc, 128>>>();
#endif
    }
    detail::fail("--method spqr: --group ", o.group, " is not supported (expected 16 = SpQR's beta1, its default, ",
                 "32, 64 or 128; SpQR has no per-channel mode)");
  });
}

template <PackedMatrix PM>
std::unique_ptr<linear> make_linear(PM pm, const method_options& o, Eigen::VectorXf input_scale = {}) {
  return std::make_unique<packed_linear<PM>>(std::move(pm), o.path, std::move(input_scale));
}

// A SpQR matrix (packed codes over act-order-permuted columns + the permutation) as a linear.
template <PackedMatrix PM>
class spqr_linear final : public linear {
 public:
  spqr_linear(spqr_matrix<PM> m, quantized_path path, std::string notes = {})
      : m_(std::move(m)), path_(path), notes_(std::move(notes)) {
    if (path_ == quantized_path::dequantized) deq_ = m_.dequantize();
  }
  index rows() const override { return m_.rows(); }
  index cols() const override { return m_.cols(); }
  void apply(const act& X, act& Y) const override {
    if (path_ == quantized_path::dequantized) {
      parallel_matmul(deq_, X, Y);
      return;
    }
    detail::require(X.rows() == m_.cols(), "spqr_linear: input has ", X.rows(), " features, expected ", m_.cols());
    Y.resize(m_.rows(), X.cols());
    parallel_for(X.cols(), 4, [&](index b, index e) {
      m_.gemm(std::span<const float>(X.data() + b * X.rows(), static_cast<std::size_t>((e - b) * X.rows())),
              std::span<float>(Y.data() + b * Y.rows(), static_cast<std::size_t>((e - b) * Y.rows())), e - b);
    });
  }
  Eigen::MatrixXf weight() const override { return path_ == quantized_path::dequantized ? deq_ : m_.dequantize(); }
  double bits_per_weight() const override { return m_.bits_per_weight(); }
  bool quantized() const override { return true; }
  std::string notes() const override { return notes_; }
  // The packed matrix under `name`, the permutation as the index tensor "<name>.perm".
  void save(io::lowbit_writer& w, const std::string& name) const override {
    w.add(name, m_.packed());
    const auto p = m_.permutation();
    if (!p.empty()) {
      const std::vector<std::int32_t> perm(p.begin(), p.end());
      w.add_indices(name + ".perm", perm);
    }
  }
  const spqr_matrix<PM>& matrix() const { return m_; }

 private:
  spqr_matrix<PM> m_;
  quantized_path path_;
  std::string notes_;
  Eigen::MatrixXf deq_;
};

struct method_entry {
  std::string description;
  bool available = false;
  std::string missing;  // why not available
  // Builds the adapter for these options (checks them first, so errors come before any work).
  std::function<method_fn(const method_options&)> make;
  // What --sweep runs it with: these axes (adaptive: the method chooses per linear), and,
  // when non-empty, these group sizes / only these of the sweep's bit widths.
  std::vector<axis> sweep_axes = {axis::oc, axis::ic};
  std::vector<int> sweep_groups = {};
  std::vector<int> sweep_bits_only = {};
};

// ---- RTN: round to nearest, min-max grid per group (no calibration data used) ----
inline method_fn rtn_adapter(const method_options& o) {
  return [o](const group_job& job) {
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_format(o, [&]<class B, class G>() {
        return make_linear(quantize<rtn<B, G>>(W), o);
      }));
    return out;
  };
}

// The first n_windows calibration windows of the job (block-output searches re-run a whole
// attention or MLP per candidate, so they see fewer tokens than the Hessian does).
inline Eigen::MatrixXf search_windows(const group_job& job, index n_windows) {
  const index n = std::min(job.X.cols(), std::max<index>(1, n_windows) * job.window);
  return job.X.leftCols(n);
}

// ---- AWQ: one scale vector per group of linears sharing an input (awq<B, G>::quantize_group) ----
// The block whose output the α search protects, as llm-awq's module2inspect: q/k/v → the
// attention with the block's float o_proj; gate/up → the whole MLP with the float down_proj;
// o and down → the linear itself (awq's default). The packed weights are W·diag(s); the
// linear feeds them x / s, which a deployed model folds into the producer (attention norm
// for q/k/v, MLP norm for gate/up, up_proj rows for down). o_proj's producer is v_proj, whose
// rows a GQA model shares across query heads, so — as llm-awq — o_proj gets no scaling there
// (α = 0), only the clip search.
inline awq_block awq_inspect_block(const group_job& job) {
  const llama_model& m = job.model;
  const index T = job.window;
  if (job.input == tap::attn_in) {
    const Eigen::MatrixXf Wo = job.block[slot::o].weight();
    return [&m, T, Wo](std::span<const Eigen::MatrixXf> W, const Eigen::MatrixXf& X) {
      act q, k, v, y;
      parallel_matmul(W[0], X, q);
      parallel_matmul(W[1], X, k);
      parallel_matmul(W[2], X, v);
      m.rope(q, m.cfg.n_head, T);
      m.rope(k, m.cfg.n_head_kv, T);
      parallel_matmul(Wo, m.attention(q, k, v, T), y);
      return y;
    };
  }
  if (job.input == tap::ffn_in) {
    const Eigen::MatrixXf Wd = job.block[slot::down].weight();
    return [Wd](std::span<const Eigen::MatrixXf> W, const Eigen::MatrixXf& X) {
      act g, u, y;
      parallel_matmul(W[0], X, g);
      parallel_matmul(W[1], X, u);
      g = (g.array() / (1.0f + (-g.array()).exp())) * u.array();
      parallel_matmul(Wd, g, y);
      return y;
    };
  }
  return {};
}

inline method_fn awq_adapter(const method_options& o) {
  detail::require(o.group_axis == axis::oc, "--method awq needs --axis oc: AWQ scales input channels, and per-IC groups "
                                            "quantize each input column on its own, so the scale cancels");
  return [o](const group_job& job) {
    return with_format(o, [&]<class B, class G>() {
      std::vector<std::unique_ptr<linear>> out;
      if constexpr (G::group_axis == axis::oc) {
        // Hugging Face names: awq_options::no_clip_names skips the clip search for q_/k_.
        static const char* hf[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
        std::vector<awq_linear> ls;
        for (std::size_t i = 0; i < job.slots.size(); ++i) ls.emplace_back(hf[static_cast<int>(job.slots[i])], job.W[i]);
        awq_options ao;
        ao.block = awq_inspect_block(job);
        if (job.input == tap::attn_out && job.model.cfg.n_head_kv != job.model.cfg.n_head) ao.alpha = 0.0f;
        auto g = awq<B, G>::quantize_group(ls, search_windows(job, o.awq_windows), ao);
        for (auto& q : g.linears) {
          Eigen::VectorXf inv = q.input_scales.cwiseInverse();
          out.push_back(make_linear(std::move(q), o, std::move(inv)));
        }
      }
      return out;
    });
  };
}

// ---- GPTQ: one Hessian H = 2 X Xᵀ / n per input (q/k/v share it), default gptq_options
// (percdamp 0.01, blocksize 128, no act-order), as the paper's per-layer setting. ----
inline hessian job_hessian(const group_job& job) {
  hessian H(job.X.rows());
  H.add_batch(job.X);
  return H;
}

inline method_fn gptq_adapter(const method_options& o) {
  return [o](const group_job& job) {
    const hessian H = job_hessian(job);
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_format(o, [&]<class B, class G>() { return make_linear(quantize<gptq<B, G>>(W, H), o); }));
    return out;
  };
}

// ---- AdaDim over a base (RTN or GPTQ): each linear keeps the axis (oc or ic) whose result
// has the lower calibration error. As the reference (rtn_ada.py auto_dim_block), the error
// is measured on the BLOCK output: q/k/v on the attention output (float o_proj), gate/up on
// the MLP output (float down_proj), o and down on their own output; the block runs with the
// group's earlier linears already quantized ("the current block state"). These are the
// blocks AWQ inspects (awq_inspect_block) with one weight swapped for the candidate.
// method_options::adadim_block = false: every linear by its own output ‖WX − ŴX‖².
inline adadim_block adadim_inspect_block(const group_job& job, std::size_t i, const std::vector<Eigen::MatrixXf>& current) {
  awq_block block = awq_inspect_block(job);
  if (!block) return {};
  return [block = std::move(block), current, i](const Eigen::MatrixXf& W, const Eigen::MatrixXf& X) {
    std::vector<Eigen::MatrixXf> ws = current;
    ws[i] = W;
    return block(ws, X);
  };
}

template <template <class...> class Base>
method_fn adadim_adapter(const method_options& o) {
  return [o](const group_job& job) {
    constexpr bool needs_hessian = std::is_same_v<Base<bits<4>>, gptq<bits<4>>>;
    hessian H(needs_hessian ? job.X.rows() : 1);
    if constexpr (needs_hessian) H.add_batch(job.X);  // one Hessian for the group, on every window
    const Eigen::MatrixXf Xs = o.adadim_block ? search_windows(job, o.awq_windows) : Eigen::MatrixXf(job.X);
    std::vector<Eigen::MatrixXf> current = job.W;  // the group as it stands: earlier linears quantized
    std::vector<std::unique_ptr<linear>> out;
    for (std::size_t i = 0; i < job.W.size(); ++i) {
      adadim_options ao;
      if (o.adadim_block) ao.block = adadim_inspect_block(job, i, current);
      out.push_back(with_format(o, [&]<class B, class G>() {
        using method = adadim<Base<B, group<axis::oc, G::size>>>;
        if constexpr (needs_hessian) return make_linear(quantize<method>(job.W[i], Xs, ao, H), o);
        else return make_linear(quantize<method>(job.W[i], Xs, ao), o);
      }));
      current[i] = out.back()->weight();
    }
    return out;
  };
}

// ---- OWQ: GPTQ with fp16 weak columns. The number of weak columns per linear follows the
// reference's main.py from its nominal --target_bit t (owq_options::weak_columns):
//   r = 12 / (16 − b) · (t − b) / n_layers,  k = round(in_features · r · ratio), rounded up to even,
// with n_layers = 7 linears per LLaMA block and ratio 1 for q/k/v/o, 0.375 for gate/up/down
// (model_config.json). The reference counts only codes and fp16 columns, so its "3.01" is a
// recipe, not an exact size: the report gives the exact average of the packed format. (An
// exact per-matrix budget, owq_options::target_bits, leaves a 576-wide model no column at
// 3.01: one fp16 column of a 576 × 576 matrix already costs 0.023 bits.) The grid is the
// reference's "mse" tuning (mse_clip<>: 2.4-norm range search), its default with --target_bit.
inline index owq_reference_weak_columns(slot s, index in_features, int b, double target) {
  const double r = 12.0 / (16.0 - b) * (target - b) / 7.0;
  const bool mlp = s == slot::gate || s == slot::up || s == slot::down;
  index k = static_cast<index>(std::llround(static_cast<double>(in_features) * r * (mlp ? 0.375 : 1.0)));
  if (k % 2) ++k;
  return std::min(k, ((in_features - 1) / 2) * 2);  // leave at least one quantized column
}

inline double owq_target(const method_options& o) { return o.target_bits > 0 ? o.target_bits : o.bits + 0.01; }

inline method_fn owq_adapter(const method_options& o) {
  detail::require(o.target_bits == 0.0 || (o.target_bits >= o.bits && o.target_bits < 16.0), "--method owq: --target-bits ",
                  o.target_bits, " must lie in [--bits, 16) (the reference's 3.01 / 4.01; default bits + 0.01)");
  return [o](const group_job& job) {
    const hessian H = job_hessian(job);
    std::vector<std::unique_ptr<linear>> out;
    for (std::size_t i = 0; i < job.W.size(); ++i)
      out.push_back(with_format(o, [&]<class B, class G>() {
        owq_options oo;
        oo.weak_columns = owq_reference_weak_columns(job.slots[i], job.W[i].cols(), o.bits, owq_target(o));
        return make_linear(quantize<owq<B, G, mse_clip<>>>(job.W[i], H, oo), o);
      }));
    return out;
  };
}

// ---- SpQR: GPTQ's loop in tiny groups (β₁ = --group, default 16) with 3-bit quantized stats
// over 16 rows and fp16 sparse outliers; the README recipe's percdamp 1.0 and act-order
// (spqr_options defaults). --outlier-threshold sets r (0.2 default; larger: fewer outliers). ----
inline method_fn spqr_adapter(const method_options& o) {
  with_spqr_format(o, []<class M>() { return 0; });  // --axis / --group checked before any work
  detail::require(o.target_bits == 0.0, "--method spqr: --target-bits is not supported (the size follows from --bits, ",
                  "--group and the outliers found); set --outlier-threshold (default 0.2) and read the exact average ",
                  "bits in the report");
  detail::require(std::isfinite(o.outlier_threshold) ? o.outlier_threshold >= 0.0 : o.outlier_threshold > 0.0,
                  "--outlier-threshold ", o.outlier_threshold, " must be >= 0 (inf: no outliers)");
  return [o](const group_job& job) {
    const hessian H = job_hessian(job);
    spqr_options so;
    so.outlier_threshold = o.outlier_threshold;
    std::vector<std::unique_ptr<linear>> out;
    for (const auto& W : job.W)
      out.push_back(with_spqr_format(o, [&]<class M>() -> std::unique_ptr<linear> {
        auto q = quantize<M>(W, H, so);
        std::string notes = q.report.notes;
        return std::make_unique<spqr_linear<typename M::packed_type>>(std::move(q), o.path, std::move(notes));
      }));
    return out;
  };
}

inline const std::map<std::string, method_entry>& method_registry() {
  static const std::map<std::string, method_entry> reg = [] {
    std::map<std::string, method_entry> r;
    r["rtn"] = {"round to nearest, min-max asymmetric grid per group", true, "", rtn_adapter};
    r["gptq"] = {"GPTQ (Frantar et al. 2022): OBS column-by-column with error feedback", true, "", gptq_adapter};
    r["owq"] = {"OWQ (Lee et al. 2024): GPTQ + fp16 weak columns (--target-bits, default bits + 0.01)", true, "",
                owq_adapter, {axis::oc}, {per_channel}, {3, 4}};
    r["awq"] = {"AWQ (Lin et al. 2024): activation-aware scaling + clip search, then RTN", true, "", awq_adapter, {axis::oc}};
    r["spqr"] = {"SpQR (Dettmers et al. 2023): beta1 = 16 groups, 3-bit stats, sparse fp16 outliers", true, "",
                 spqr_adapter, {axis::oc}, {16}};
    r["adadim-rtn"] = {"AdaDim over RTN: per-linear choice of the group axis (oc or ic) by block output", true, "",
                       adadim_adapter<rtn>, {axis::adaptive}};
    r["adadim-gptq"] = {"AdaDim over GPTQ: per-linear choice of the group axis (oc or ic) by block output", true, "",
                        adadim_adapter<gptq>, {axis::adaptive}};
    return r;
  }();
  return reg;
}

inline method_fn make_method(const std::string& name, const method_options& o) {
  const auto& reg = method_registry();
  auto it = reg.find(name);
  if (it == reg.end()) {
    std::string names;
    for (const auto& [n, e] : reg) names += (names.empty() ? "" : ", ") + n;
    detail::fail("--method '", name, "' is unknown (expected one of: ", names, ")");
  }
  detail::require(it->second.available, "--method ", name, " is not available: ", it->second.missing);
  // Validate the format up front (bits, group size); SpQR's adapter checks its own.
  if (name != "spqr") with_format(o, []<class B, class G>() { return 0; });
  return it->second.make(o);
}

}  // namespace lowbit::tools
