#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// lowbit::hessian: the layer Hessian of the squared output error, H = 2/N · Σ_t x_t x_tᵀ
// ([in x in]), accumulated batch by batch as a running mean (GPTQ, Frantar et al. 2022, §3;
// the same accumulator feeds OWQ, SpQR, AdaDim-GPTQ and RPTQ's weights).
//
// Layout of a batch: add_batch(X) takes X as [in x tokens] (one token per COLUMN, the spec's
// convention); add_batch_tokens_major(X) takes [tokens x in] (one token per ROW, as an
// engine's activation buffer comes). Both accept Eigen matrices or matrix_view, any strides.
//
// Running mean: after batches of m_1, m_2, ... samples, H = 2/(Σ m) · Σ x xᵀ whatever the
// batch sizes, because each batch rescales the old mean by n/(n+m) before adding
// 2/(n+m) · X Xᵀ. A batch counts as its token count unless the caller gives another weight
// (the GPTQ reference counts sequences; the scale of H does not matter to GPTQ because its
// damping is relative to mean(diag H)).
//
// Precision: the mean is kept in fp64. Calibration sums 10⁵–10⁶ tokens whose activations
// span several orders of magnitude (outlier channels 20-100x the rest); an fp32 running sum
// that is rescaled every batch loses the small channels' low bits, and the Cholesky of
// H + λI that follows amplifies relative errors by up to cond(H) ~ 1 + 100·in (damping 1%).
// fp64 costs 2x in the product; hessian_products::fp32 keeps the fp64 mean but forms each
// batch's X Xᵀ in fp32 (chunks of at most 1024 tokens: relative error ~1e-6), 2x faster.
//
// Threads: X Xᵀ is tiled into fixed 256 x 256 tiles of the lower triangle, each an Eigen
// GEMM run by one parallel_for task, so the result does not depend on the thread count.
#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_view.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/detail/precompiled.hpp"

namespace lowbit::inline LOWBIT_ABI {

enum class hessian_products { fp64, fp32 };

class hessian {
 public:
  hessian() = default;
  explicit hessian(index in_features, hessian_products products = hessian_products::fp64)
      : H_(Eigen::MatrixXd::Zero(in_features, in_features)), products_(products) {
    detail::require(in_features > 0, "hessian: in_features is ", in_features, "; expected > 0");
  }

  // X: [in x tokens], one token per column. `samples` is what the batch counts for in the
  // mean (default: its token count; pass the number of sequences to match the reference).
  // X is a matrix_view or an Eigen matrix (MatrixInput).
  template <MatrixInput M>
  void add_batch(const M& X, double samples = -1.0) {
    accumulate(to_view(X), samples, "add_batch: X");
  }
  // X: [tokens x in], one token per row.
  template <MatrixInput M>
  void add_batch_tokens_major(const M& X, double samples = -1.0) {
    const matrix_view<const float> v = to_view(X);
    accumulate(matrix_view<const float>{v.data, v.cols, v.rows, v.col_stride, v.row_stride}, samples,
               "add_batch_tokens_major: X");
  }

  index size() const { return H_.rows(); }
  double samples() const { return n_; }
  bool empty() const { return n_ == 0.0; }
  // The symmetric [in x in] mean, fp64.
  const Eigen::MatrixXd& matrix() const { return H_; }

 private:
  static constexpr index tile = 256;
  static constexpr index token_chunk = 1024;

  // A template (on the view's element type, always const float) so that the Eigen GEMMs of
  // add_product are instantiated only in a TU that adds a batch: a TU that merely includes
  // the header does not pay ~1 s of compile time for them (issue #16, bench/compile_cost.sh).
  // Defined below the class, not inline, so that lowbit::precompiled can hold it
  // (detail/precompiled.hpp).
  template <class T>
  void accumulate(matrix_view<const T> X, double samples, const char* what);

  template <class T>
  void add_product(matrix_view<const float> X, index t0, index nt, double alpha) {
    using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
    const index in = X.rows;
    Mat Xc(in, nt);
    parallel_for(in, 64, [&](index r0, index r1) {
      for (index t = 0; t < nt; ++t)
        for (index r = r0; r < r1; ++r) Xc(r, t) = static_cast<T>(X(r, t0 + t));
    });
    // Lower-triangle tile pairs (i >= j), a fixed list: each tile is one task's GEMM.
    const index nb = (in + tile - 1) / tile;
    std::vector<std::pair<index, index>> tiles;
    for (index i = 0; i < nb; ++i)
      for (index j = 0; j <= i; ++j) tiles.emplace_back(i, j);
    parallel_for(static_cast<index>(tiles.size()), 1, [&](index b, index e) {
      for (index k = b; k < e; ++k) {
        const index i0 = tiles[static_cast<std::size_t>(k)].first * tile, j0 = tiles[static_cast<std::size_t>(k)].second * tile;
        const index ni = std::min(tile, in - i0), nj = std::min(tile, in - j0);
        const Mat P = Xc.middleRows(i0, ni) * Xc.middleRows(j0, nj).transpose();
        H_.block(i0, j0, ni, nj) += alpha * P.template cast<double>();
      }
    });
  }

  Eigen::MatrixXd H_;
  double n_ = 0.0;
  hessian_products products_ = hessian_products::fp64;
};

template <class T>
void hessian::accumulate(matrix_view<const T> X, double samples, const char* what) {
  static_assert(std::is_same_v<T, float>, "hessian: activations enter as float");
  detail::require(H_.rows() > 0, "hessian: default-constructed; construct it with hessian(in_features)");
  detail::require(X.rows == H_.rows(), what, " has ", X.rows, " input features, the Hessian is ", H_.rows(), " x ",
                  H_.rows());
  detail::require(X.cols > 0, what, " has no tokens");
  require_finite(X, what);
  const double m = samples < 0 ? static_cast<double>(X.cols) : samples;
  detail::require(m > 0.0, "hessian: samples is ", samples, "; expected > 0 (or -1 for the token count)");
  // H <- H · n/(n+m) + 2/(n+m) · X Xᵀ  (only the lower triangle is computed, then mirrored).
  const double total = n_ + m;
  H_ *= n_ / total;
  const double alpha = 2.0 / total;
  for (index t0 = 0; t0 < X.cols; t0 += token_chunk) {
    const index nt = std::min(token_chunk, X.cols - t0);
    if (products_ == hessian_products::fp64) add_product<double>(X, t0, nt, alpha);
    else add_product<float>(X, t0, nt, alpha);
  }
  H_.triangularView<Eigen::StrictlyUpper>() = H_.transpose();
  n_ = total;
}

#if defined(LOWBIT_PRECOMPILED_INSTANTIATION)
LOWBIT_PRECOMPILED_INSTANTIATION void hessian::accumulate<float>(matrix_view<const float>, double, const char*);
#endif

}  // namespace lowbit
