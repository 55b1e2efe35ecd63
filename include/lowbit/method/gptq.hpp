#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// GPTQ / OPTQ (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training
// Quantization for Generative Pre-trained Transformers", ICLR 2023; code IST-DASLab/gptq).
//
// Columns of W are quantized one after the other; the error of each is spread over the
// columns not yet quantized, weighted by the inverse layer Hessian (Optimal Brain Surgeon
// with a fixed order, paper §3-4):
//   1. dead inputs (H_jj = 0): H_jj = 1, W[:, j] = 0;
//   2. act-order (optional): process columns by descending H_jj;
//   3. damping: H += λI, λ = percdamp · mean(diag H);
//   4. U = chol(H⁻¹)ᵀ, the upper Cholesky factor of the inverse (UᵀU = H⁻¹);
//   5. blocks of B columns; for column j of a block: q = Q(w_j), e = (w_j − q)/U_jj,
//      W[:, k] −= e·U_jk for the block's later columns; after the block, all later columns at
//      once: W[:, end:] −= E · U[block, end:] (the "lazy batch" update, a GEMM: the time);
//   6. loss Σ (w − q)² / U_jj² / 2 (what the reference prints as "error").
//
// ONE column loop serves every GPTQ descendant. It is detail::gptq_prepare + detail::gptq_run
// parameterised by a column hook:
//
//   struct my_hook {
//     // Called once per quantized column, in processing order (pos = 0, 1, ..., n_quant-1).
//     //   s.W        the working matrix [rows x cols], COLUMN-major, columns in processing
//     //              order (s.order[pos] is the natural column). Columns of the current block
//     //              [s.block_begin, s.block_end) hold every update so far; columns after the
//     //              block lack the current block's lazy update (as in the reference).
//     //   s.U        the [cols x cols] upper factor U in processing order (c.d = U(pos, pos)).
//     //   c.w        the current (error-compensated) column, rows entries.
//     // Write into q the value each weight is stored as (its dequantized code). The engine then
//     // propagates e = (w − q)/d. An element kept exactly (q[r] = w[r], SpQR's outliers)
//     // propagates no error by itself. Group statistics are the hook's business:
//     //   per-OC dynamic groups: at group starts fit stats on s.W's columns [pos, pos + G);
//     //   per-IC groups: fit the column's row groups from c.w (AdaDim-GPTQ);
//     //   static groups: fit everything before the loop from the original weights.
//     void quantize_column(const detail::gptq_state& s, const detail::gptq_column& c, std::span<float> q);
//   };
//
// Columns at positions [n_quant, cols) are never quantized: OWQ's weak columns are placed
// there (last) and absorb every update; after the loop s.W holds their compensated values.
// The loop is parallel over fixed row/column tiles (independent of the thread count, so
// results are too); hooks may call parallel_for themselves.
//
// Groups and act-order. lowbit stores groups in natural column order (no g_idx). With per-OC
// groups and act-order, the group statistics are therefore always computed up front from the
// (dead-zeroed) original weights: act_order implies static_groups for grouped per-OC matrices
// (the reports say so). Per-channel per-OC stats are fitted up front as the reference does
// (find_params on the whole W before the loop). Per-IC stats are fitted per column as it is
// processed, which works in any order. Groups larger than the block size see the later
// block's columns before that block's lazy update, exactly as the reference does.
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/detail/policy_set.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/method/hessian.hpp"
#include "lowbit/method/quantized.hpp"
#include "lowbit/method/rtn.hpp"

namespace lowbit::inline LOWBIT_ABI {

struct gptq_options {
  double percdamp = 0.01;    // λ = percdamp · mean(diag H) (SpQR's recipe uses 1.0)
  index blocksize = 128;     // columns per lazy batch update
  bool act_order = false;    // process columns by descending H_jj
  bool static_groups = false;  // group stats from the original weights (implied by act_order with per-OC groups)
  // If H + λI is not positive definite, λ is raised x10 while percdamp stays <= max_percdamp
  // (the report's notes say so); beyond it lowbit::error. Set it to percdamp to never raise.
  double max_percdamp = 1.0;
  std::function<void(index done, index total)> progress;  // after each block: columns done of n_quant
};

namespace detail {

// What a hook sees of the loop (see the header comment).
struct gptq_state {
  const Eigen::MatrixXf& W;         // [rows x cols] column-major, processing order
  const Eigen::MatrixXf& U;         // [cols x cols] upper factor of H⁻¹, processing order
  const std::vector<index>& order;  // order[pos] = natural column
  index n_quant;                    // positions [0, n_quant) are quantized
  index block_begin, block_end;
};
struct gptq_column {
  index pos;                   // processing position
  index col;                   // natural column
  float d;                     // U(pos, pos)
  std::span<const float> w;    // current column (rows entries)
};

template <class H>
concept GptqHook = requires(H& h, const gptq_state& s, const gptq_column& c, std::span<float> q) {
  h.quantize_column(s, c, q);
};

// The problem after steps 1-4.
struct gptq_problem {
  Eigen::MatrixXf W;         // working weights, column-major, processing order
  Eigen::MatrixXf U;         // upper factor of (H + λI)⁻¹, processing order
  std::vector<index> order;  // order[pos] = natural column
  std::vector<index> pos_of;  // pos_of[natural column] = position
  index n_quant = 0;
  index dead = 0;            // inputs with H_jj = 0
  double percdamp = 0.0;     // the damping actually used
  bool damping_raised = false;
};

// H as given (hessian, Eigen float/double), checked and symmetrised, in fp64.
inline Eigen::MatrixXd checked_hessian(const Eigen::MatrixXd& H, index cols, const char* who) {
  require(H.rows() == cols && H.cols() == cols, who, ": H is ", H.rows(), " x ", H.cols(), ", expected ", cols,
          " x ", cols, " (W's input columns)");
  double amax = 0.0;
  for (index j = 0; j < cols; ++j)
    for (index i = 0; i < cols; ++i) {
      const double v = H(i, j);
      if (!std::isfinite(v)) fail(who, ": H has a non-finite value (", v, ") at row ", i, ", column ", j);
      amax = std::max(amax, std::abs(v));
    }
  for (index j = 0; j < cols; ++j)
    require(H(j, j) >= 0.0, who, ": H(", j, ", ", j, ") = ", H(j, j),
            " is negative; H must be a Hessian 2/N · Σ x xᵀ (positive semi-definite)");
  double asym = 0.0;
  for (index j = 0; j < cols; ++j)
    for (index i = j + 1; i < cols; ++i) asym = std::max(asym, std::abs(H(i, j) - H(j, i)));
  require(asym <= 1e-4 * amax, who, ": H is not symmetric (max |H - Hᵀ| = ", asym, " vs max |H| = ", amax, ")");
  return 0.5 * (H + H.transpose());
}

template <class D>
Eigen::MatrixXd hessian_matrix(const Eigen::MatrixBase<D>& H) {
  return H.template cast<double>();
}
inline const Eigen::MatrixXd& hessian_matrix(const hessian& H) {
  require(!H.empty(), "gptq: the hessian has no batches; add calibration activations with add_batch");
  return H.matrix();
}

// Runs fn(begin, end) over fixed tiles of [0, n): the tiles, hence each element's arithmetic,
// do not depend on the thread count. Small work runs on the calling thread.
template <class Fn>
void for_tiles(index n, index tile, bool parallel, Fn&& fn) {
  const index tiles = (n + tile - 1) / tile;
  auto body = [&](index t0, index t1) {
    for (index t = t0; t < t1; ++t) fn(t * tile, std::min(n, (t + 1) * tile));
  };
  if (parallel && tiles > 1) parallel_for(tiles, 1, body);
  else body(0, tiles);
}

// In-place lower Cholesky A = L Lᵀ (L in A's lower triangle; the strict upper part is left
// as it was), or false if A is not positive definite. Blocked right-looking: per block of 128
// columns an Eigen LLT of the diagonal block, the panel solve and the trailing update
// A22 −= L21 L21ᵀ over fixed 256 x 256 lower tiles, each an Eigen GEMM on one parallel_for
// task (Eigen's own LLT runs on one core; results do not depend on the thread count).
//
// This function, inverse_upper_cholesky and gptq_prepare are templates on the scalar (always
// double in lowbit) so that Eigen's LLT, triangular solves and GEMMs are instantiated only in
// a TU that runs GPTQ, not in every TU that includes a method header (issue #16's compile
// cost; bench/compile_cost.sh measures it).
template <class Real>
bool cholesky_in_place(Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic>& A) {
  using Mat = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic>;
  const index n = A.rows();
  constexpr index nb = 128, tile = 256;
  for (index k0 = 0; k0 < n; k0 += nb) {
    const index kb = std::min(nb, n - k0), r0 = k0 + kb, rest = n - r0;
    const Mat D = A.block(k0, k0, kb, kb);
    Eigen::LLT<Mat> llt(D);
    if (llt.info() != Eigen::Success) return false;
    const Mat L11 = llt.matrixL();
    for (index i = 0; i < kb; ++i)
      if (!(L11(i, i) > 0.0) || !std::isfinite(L11(i, i))) return false;
    A.block(k0, k0, kb, kb).template triangularView<Eigen::Lower>() = L11;
    if (rest == 0) break;
    // Panel: L21 = A21 · L11⁻ᵀ, row tiles.
    for_tiles(rest, tile, rest * kb >= 32768, [&](index b, index e) {
      auto P = A.block(r0 + b, k0, e - b, kb);
      L11.transpose().template triangularView<Eigen::Upper>().template solveInPlace<Eigen::OnTheRight>(P);
    });
    // Trailing update of the lower triangle.
    const index nt = (rest + tile - 1) / tile;
    const index pairs = nt * (nt + 1) / 2;
    parallel_for(pairs, 1, [&](index p0, index p1) {
      for (index p = p0; p < p1; ++p) {
        index i = 0;
        while ((i + 1) * (i + 2) / 2 <= p) ++i;  // tile pair p = (i, j), j <= i
        const index j = p - i * (i + 1) / 2;
        const index i0 = r0 + i * tile, j0 = r0 + j * tile;
        const index ni = std::min(tile, n - i0), nj = std::min(tile, n - j0);
        A.block(i0, j0, ni, nj).noalias() -= A.block(i0, k0, ni, kb) * A.block(j0, k0, nj, kb).transpose();
      }
    });
  }
  return true;
}

// U with UᵀU = A⁻¹ (upper, positive diagonal), or false if A is not positive definite.
// With J the reversal permutation: J A J = L Lᵀ gives A⁻¹ = (J L⁻¹ J)ᵀ (J L⁻¹ J), and J L⁻¹ J
// is upper triangular, so U = J L⁻¹ J: one Cholesky and one triangular inverse (n³/3 each)
// instead of the reference's Cholesky, inverse and second Cholesky. fp64: the factor of a
// matrix whose condition reaches 1 + 100·n with 1% damping.
template <class Real>
bool inverse_upper_cholesky(const Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic>& A, Eigen::MatrixXf& U) {
  using Mat = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic>;
  const index n = A.rows();
  Mat L = A.reverse();  // J A J
  if (!cholesky_in_place(L)) return false;
  // L⁻¹ column block by column block (block j is zero above row j0): independent triangular
  // solves, one per task.
  constexpr index nb = 128;
  Mat Linv = Mat::Identity(n, n);
  const index blocks = (n + nb - 1) / nb;
  parallel_for(blocks, 1, [&](index b0, index b1) {
    for (index b = b0; b < b1; ++b) {
      const index j0 = b * nb, w = std::min(nb, n - j0);
      L.bottomRightCorner(n - j0, n - j0).template triangularView<Eigen::Lower>().solveInPlace(Linv.block(j0, j0, n - j0, w));
    }
  });
  U = Linv.reverse().template cast<float>();
  for (index i = 0; i < n; ++i)
    if (!std::isfinite(U(i, i)) || !(U(i, i) > 0.0f)) return false;
  return true;
}

// Steps 1-4. `kept` lists columns that are not quantized (OWQ weak columns), placed last in
// the given order. `W_natural` receives the dead-zeroed weights in natural order if non-null.
// `order` (optional) is a caller's processing order of the quantized columns (SpQR's
// Spearman permutation, RPTQ's clusters): a permutation of the columns not in `kept`; it
// replaces the natural / act-order choice.
template <class Real>
gptq_problem gptq_prepare(matrix_view<const float> W, Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic> H,
                          std::span<const index> kept, const gptq_options& opt, const char* who,
                          Eigen::MatrixXf* W_natural = nullptr, std::span<const index> order = {}) {
  using Mat = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic>;
  require(std::isfinite(opt.percdamp) && opt.percdamp >= 0.0, who, ": percdamp is ", opt.percdamp,
          "; expected a finite value >= 0 (default 0.01)");
  require(opt.blocksize >= 1, who, ": blocksize is ", opt.blocksize, "; expected >= 1 (default 128)");
  const index rows = W.rows, cols = W.cols;
  gptq_problem p;
  Eigen::MatrixXf Wn(rows, cols);
  parallel_for(cols, 64, [&](index c0, index c1) {
    for (index c = c0; c < c1; ++c)
      for (index r = 0; r < rows; ++r) Wn(r, c) = W(r, c);
  });
  // 1. dead inputs
  for (index j = 0; j < cols; ++j)
    if (H(j, j) == 0.0) {
      H(j, j) = 1.0;
      Wn.col(j).setZero();
      ++p.dead;
    }
  // 2. order: quantized columns (natural or by descending H_jj), then the kept ones.
  std::vector<char> is_kept(static_cast<std::size_t>(cols), 0);
  for (index k : kept) {
    require(k >= 0 && k < cols, who, ": kept column ", k, " is out of range [0, ", cols, ")");
    require(!is_kept[static_cast<std::size_t>(k)], who, ": kept column ", k, " is listed twice");
    is_kept[static_cast<std::size_t>(k)] = 1;
  }
  if (!order.empty()) {
    std::vector<char> seen(static_cast<std::size_t>(cols), 0);
    for (index j : order) {
      require(j >= 0 && j < cols && !is_kept[static_cast<std::size_t>(j)] && !seen[static_cast<std::size_t>(j)], who,
              ": the given order is not a permutation of the quantized columns (bad entry ", j, ")");
      seen[static_cast<std::size_t>(j)] = 1;
      p.order.push_back(j);
    }
    require(static_cast<index>(order.size()) + static_cast<index>(kept.size()) == cols, who, ": the given order has ",
            order.size(), " columns, expected ", cols - static_cast<index>(kept.size()));
  } else {
    for (index j = 0; j < cols; ++j)
      if (!is_kept[static_cast<std::size_t>(j)]) p.order.push_back(j);
  }
  if (opt.act_order && order.empty())
    std::stable_sort(p.order.begin(), p.order.end(), [&](index a, index b) { return H(a, a) > H(b, b); });
  p.n_quant = static_cast<index>(p.order.size());
  require(p.n_quant > 0, who, ": every column is kept; nothing to quantize");
  p.order.insert(p.order.end(), kept.begin(), kept.end());
  p.pos_of.assign(static_cast<std::size_t>(cols), 0);
  for (index pos = 0; pos < cols; ++pos) p.pos_of[static_cast<std::size_t>(p.order[static_cast<std::size_t>(pos)])] = pos;

  p.W.resize(rows, cols);
  Mat Hp(cols, cols);
  parallel_for(cols, 16, [&](index c0, index c1) {
    for (index c = c0; c < c1; ++c) {
      const index oc = p.order[static_cast<std::size_t>(c)];
      p.W.col(c) = Wn.col(oc);
      for (index r = 0; r < cols; ++r) Hp(r, c) = H(p.order[static_cast<std::size_t>(r)], oc);
    }
  });
  if (W_natural) *W_natural = std::move(Wn);
  // 3-4. damping and the factor, raising the damping if needed.
  const double mean_diag = Hp.diagonal().mean();
  double pd = opt.percdamp;
  for (;;) {
    Mat Hd = Hp;
    Hd.diagonal().array() += pd * mean_diag;
    if (inverse_upper_cholesky(Hd, p.U)) break;
    const double next = pd > 0.0 ? pd * 10.0 : 0.01;
    if (next > opt.max_percdamp * (1.0 + 1e-9))
      fail(who, ": H + λI is not positive definite at percdamp = ", pd,
           " (λ = percdamp · mean(diag H)); H must be a Hessian 2/N · Σ x xᵀ with enough calibration tokens, "
           "or raise gptq_options::max_percdamp (now ", opt.max_percdamp, ")");
    pd = next;
    p.damping_raised = true;
  }
  p.percdamp = pd;
  return p;
}

// Steps 5-6: the column loop. Returns the loss Σ (w − q)² / U_jj² / 2. On return p.W holds
// the stored values q at the quantized positions and the compensated weights at the kept ones.
template <GptqHook Hook>
double gptq_run(gptq_problem& p, Hook& hook, const gptq_options& opt) {
  const index rows = p.W.rows(), cols = p.W.cols(), nq = p.n_quant, B = opt.blocksize;
  constexpr index row_tile = 256, gemm_row_tile = 1024, gemm_col_tile = 256;
  Eigen::MatrixXf E(rows, std::min(B, nq));
  std::vector<float> q(static_cast<std::size_t>(rows));
  double loss = 0.0;
  for (index b0 = 0; b0 < nq; b0 += B) {
    const index b1 = std::min(b0 + B, nq), nb = b1 - b0;
    const gptq_state s{p.W, p.U, p.order, nq, b0, b1};
    for (index pos = b0; pos < b1; ++pos) {
      float* w = p.W.col(pos).data();
      const float d = p.U(pos, pos);
      hook.quantize_column(s, gptq_column{pos, p.order[static_cast<std::size_t>(pos)], d,
                                          std::span<const float>(w, static_cast<std::size_t>(rows))},
                           std::span<float>(q));
      const index rest = b1 - pos - 1;
      float* e = E.col(pos - b0).data();
      // Threads only for large steps: one dispatch per column costs a scheduler round trip,
      // which on a loaded machine outweighs ~1M multiply-adds (the GEMM below dominates).
      for_tiles(rows, row_tile, rows * (rest + 1) >= (index{1} << 20), [&](index r0, index r1) {
        for (index r = r0; r < r1; ++r) {
          e[r] = (w[r] - q[static_cast<std::size_t>(r)]) / d;
          w[r] = q[static_cast<std::size_t>(r)];
        }
        for (index k = pos + 1; k < b1; ++k) {
          const float u = p.U(pos, k);
          float* wk = p.W.col(k).data();
          for (index r = r0; r < r1; ++r) wk[r] -= e[r] * u;
        }
      });
    }
    for (index j = 0; j < nb; ++j)
      for (index r = 0; r < rows; ++r) loss += 0.5 * static_cast<double>(E(r, j)) * static_cast<double>(E(r, j));
    // Lazy batch update of every later column (kept columns included): fixed 2-D tiles.
    const index later = cols - b1;
    if (later > 0) {
      const index rt = (rows + gemm_row_tile - 1) / gemm_row_tile, ct = (later + gemm_col_tile - 1) / gemm_col_tile;
      parallel_for(rt * ct, 1, [&](index t0, index t1) {
        for (index t = t0; t < t1; ++t) {
          const index r0 = (t % rt) * gemm_row_tile, c0 = b1 + (t / rt) * gemm_col_tile;
          const index nr = std::min(gemm_row_tile, rows - r0), nc = std::min(gemm_col_tile, cols - c0);
          p.W.block(r0, c0, nr, nc).noalias() -= E.block(r0, 0, nr, nb) * p.U.block(b0, c0, nb, nc);
        }
      });
    }
    if (opt.progress) opt.progress(b1, nq);
  }
  return loss;
}

// The standard hook: lowbit's grid (grid.hpp) with the packed matrix's groups, filling the
// packed matrix's stats and a row-major code buffer [rows x quantized_cols].
template <PackedMatrix PM, class Search>
class gptq_grid_hook {
 public:
  // static_stats: the stats are already in pm (fitted up front); otherwise fitted in the loop.
  gptq_grid_hook(PM& pm, const gptq_problem& p, bool static_stats)
      : pm_(pm), spec_(grid_spec_for<PM>()), maxq_(spec_.maxq()), static_(static_stats),
        codes_(static_cast<std::size_t>(pm.rows() * pm.quantized_cols())) {
    const auto map = pm.quantized_column_map();
    qc_of_.assign(static_cast<std::size_t>(pm.cols()), -1);
    for (std::size_t qc = 0; qc < map.size(); ++qc) qc_of_[static_cast<std::size_t>(map[qc])] = static_cast<index>(qc);
    (void)p;
  }

  void quantize_column(const gptq_state& s, const gptq_column& c, std::span<float> q) {
    const index qc = qc_of_[static_cast<std::size_t>(c.col)];
    require(qc >= 0, "gptq: column ", c.col, " is a weak column but was scheduled for quantization");
    const index rows = pm_.rows(), qcols = pm_.quantized_cols(), G = pm_.group_size();
    const bool mse = Search::searches;
    if (pm_.group_axis() == axis::oc) {
      if (!static_ && qc % G == 0) {
        // Dynamic groups run only in natural order (act_order forces static stats), so the
        // group's columns are the positions [pos, pos + G) of the working matrix.
        require(c.pos == qc, "gptq: dynamic per-OC groups need the natural column order");
        const index n = std::min(G, s.n_quant - c.pos);
        parallel_for(rows, mse ? 8 : 128, [&](index r0, index r1) {
          for (index r = r0; r < r1; ++r)
            pm_.stats().set(pm_.stat_index(r, qc), fit_group<Search>({&s.W(r, c.pos), n, s.W.rows()}, spec_));
        });
      }
      for (index r = 0; r < rows; ++r) emit(r, qc, qcols, c.w[static_cast<std::size_t>(r)], pm_.params(r, qc), q);
    } else {
      const index groups = (rows + G - 1) / G;
      // The mse search is worth a parallel dispatch per column; min/max is not.
      parallel_for(groups, mse ? 1 : groups, [&](index g0, index g1) {
        for (index g = g0; g < g1; ++g) {
          const index r0 = g * G, n = std::min(G, rows - r0);
          if (!static_) pm_.stats().set(pm_.stat_index(r0, qc), fit_group<Search>({c.w.data() + r0, n, 1}, spec_));
          const grid_params gp = pm_.params(r0, qc);
          for (index r = r0; r < r0 + n; ++r) emit(r, qc, qcols, c.w[static_cast<std::size_t>(r)], gp, q);
        }
      });
    }
  }

  // Packs the collected codes into pm.
  void store_codes() {
    const index qcols = pm_.quantized_cols();
    parallel_for(pm_.rows(), 64, [&](index r0, index r1) {
      for (index r = r0; r < r1; ++r)
        pm_.set_row_codes(r, std::span<const std::uint8_t>(codes_.data() + r * qcols, static_cast<std::size_t>(qcols)));
    });
  }

 private:
  void emit(index r, index qc, index qcols, float w, grid_params gp, std::span<float> q) {
    const std::uint8_t code = encode(w, gp, maxq_);
    codes_[static_cast<std::size_t>(r * qcols + qc)] = code;
    q[static_cast<std::size_t>(r)] = decode(code, gp);
  }

  PM& pm_;
  grid_spec spec_;
  int maxq_;
  bool static_;
  std::vector<index> qc_of_;
  std::vector<std::uint8_t> codes_;
};

// GPTQ into packed type PM with scale search Search. `weak` (OWQ) lists the columns kept in
// fp16, in the order they are placed at the end; PM must have dense_columns then.
template <PackedMatrix PM, class Search>
quantized<PM> gptq_quantize(matrix_view<const float> W, const Eigen::MatrixXd& H_in, std::span<const index> weak,
                            const gptq_options& opt, const char* who) {
  const auto t0 = std::chrono::steady_clock::now();
  require_valid_weights(W);
  Eigen::MatrixXd H = checked_hessian(H_in, W.cols, who);
  Eigen::MatrixXf Wn;
  gptq_problem p = gptq_prepare(W, std::move(H), weak, opt, who, &Wn);

  std::vector<std::int32_t> weak_sorted(weak.begin(), weak.end());
  std::sort(weak_sorted.begin(), weak_sorted.end());
  PM pm(W.rows, W.cols, PM::grouping::group_axis, weak_sorted);
  const bool oc_axis = pm.group_axis() == axis::oc;
  const bool grouped = oc_axis ? pm.group_size() < pm.quantized_cols() : pm.group_size() < pm.rows();
  const bool act_forced_static = oc_axis && grouped && opt.act_order && !opt.static_groups;
  const bool static_stats = opt.static_groups || (oc_axis && (!grouped || opt.act_order));
  if (static_stats) {
    // Stats of every group from the dead-zeroed original weights of the quantized columns,
    // natural order: the RTN fit (one routine for both).
    using plain = packed_matrix<typename PM::bit_width, typename PM::grouping, no_outliers,
                                typename PM::stats_policy, typename PM::zero_point_policy>;
    const auto map = pm.quantized_column_map();
    Eigen::MatrixXf Wq(W.rows, static_cast<index>(map.size()));
    for (std::size_t qc = 0; qc < map.size(); ++qc) Wq.col(static_cast<index>(qc)) = Wn.col(map[qc]);
    plain tmp(W.rows, Wq.cols(), pm.group_axis());
    rtn_fill<Search>(to_view(Wq), tmp);
    pm.stats() = tmp.stats();
  }
  Wn.resize(0, 0);
  gptq_grid_hook<PM, Search> hook(pm, p, static_stats);
  const double loss = gptq_run(p, hook, opt);
  hook.store_codes();
  if constexpr (std::is_same_v<typename PM::outlier_policy, dense_columns>) {
    // Weak columns: their error-compensated values (not the originals), as OWQ stores them.
    auto& out = pm.outliers();
    const index k = out.count();
    for (index j = 0; j < k; ++j) {
      const index pos = p.pos_of[static_cast<std::size_t>(out.columns[static_cast<std::size_t>(j)])];
      for (index r = 0; r < W.rows; ++r) out.values[static_cast<std::size_t>(r * k + j)] = half(p.W(r, pos));
    }
  }
  quant_report rep;
  rep.method = who;
  rep.loss = loss;
  std::ostringstream notes;
  notes << "percdamp=" << p.percdamp << (p.damping_raised ? " (raised: H + λI was not positive definite)" : "")
        << " blocksize=" << opt.blocksize << " act_order=" << opt.act_order
        << " static_groups=" << (static_stats && grouped) << " dead_columns=" << p.dead;
  if (act_forced_static) notes << " (act_order with per-OC groups: static groups, natural-order storage)";
  rep.notes = notes.str();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return quantized<PM>(std::move(pm), std::move(rep));
}

}  // namespace detail

// gptq<bits<B>, group<axis, G>, [minmax | mse_clip<>], [symmetric], [fp16_stats | fp32_stats]>
//   lowbit::quantize<gptq<bits<4>, group<oc, 128>>>(W, H, gptq_options{.act_order = true})
// H: a lowbit::hessian or an Eigen [in x in] matrix (float or double).
template <class... Policies>
struct gptq {
  using policies = detail::policy_set<Policies...>;
  using packed_type = packed_matrix<typename policies::bit_width, typename policies::grouping,
                                    typename policies::outliers, typename policies::stats,
                                    typename policies::zero_point>;
  static_assert(!std::is_same_v<typename policies::outliers, sparse_outliers>,
                "lowbit::gptq<> fills no sparse outliers: SpQR chooses them inside the GPTQ loop; use "
                "spqr<...> (lowbit/spqr.hpp)");
  static_assert(!std::is_same_v<typename policies::outliers, dense_columns>,
                "lowbit::gptq<> fills no dense_columns: OWQ chooses the weak columns; use owq<...> (lowbit/owq.hpp)");
  static_assert(!policies::stats::second_level,
                "lowbit::gptq<>: quantized_stats<> need SpQR's two-level fit; use spqr<...> (lowbit/spqr.hpp)");
  static_assert(policies::grouping::group_axis != axis::adaptive,
                "lowbit::gptq<>: group<adaptive, N> is chosen by adadim<gptq<...>>; give gptq oc or ic");

  static quantized<packed_type> run(matrix_view<const float> W, const hessian& H, const gptq_options& opt = {}) {
    return detail::gptq_quantize<packed_type, typename policies::search>(W, detail::hessian_matrix(H), {}, opt, "gptq");
  }
  template <class D>
  static quantized<packed_type> run(matrix_view<const float> W, const Eigen::MatrixBase<D>& H,
                                    const gptq_options& opt = {}) {
    return detail::gptq_quantize<packed_type, typename policies::search>(W, detail::hessian_matrix(H), {}, opt, "gptq");
  }
};

// lowbit::precompiled (detail/precompiled.hpp): the listed configurations' whole GPTQ body.
#if defined(LOWBIT_PRECOMPILED_INSTANTIATION)
namespace detail {
#define LOWBIT_GPTQ_PRECOMPILED(B, A, G)                                                                  \
  LOWBIT_PRECOMPILED_INSTANTIATION quantized<gptq<bits<B>, group<A, G>>::packed_type>                    \
  gptq_quantize<gptq<bits<B>, group<A, G>>::packed_type, gptq<bits<B>, group<A, G>>::policies::search>(   \
      matrix_view<const float>, const Eigen::MatrixXd&, std::span<const index>, const gptq_options&, const char*);
LOWBIT_PRECOMPILED_CONFIGS(LOWBIT_GPTQ_PRECOMPILED)
#undef LOWBIT_GPTQ_PRECOMPILED
}  // namespace detail
#endif

}  // namespace lowbit
