#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Weak column tuning (WCT, OWQ paper §4.3): adapt an OWQ layer to a task by training only its
// fp16 weak columns; the low-bit codes and stats stay frozen (bitwise).
//
// For y = Ŵ x = W_low x + W_weak x[weak], the gradient of any loss L(Y) of the layer output
// Y = Ŵ X ([rows x tokens]) with respect to the weak columns is
//   ∂L/∂W_weak = ∂L/∂Y · X[weak, :]ᵀ          ([rows x k]; OWQ's QuantMatMul backward)
// The tuner runs full-batch Adam (Kingma & Ba 2015) on an fp32 master copy of the weak
// columns and writes them back to the fp16 store after the last step. The frozen part W_low X
// is computed once. Deterministic: no sampling.
//   tune_weak_columns(q, X, Y_target, wct_options{.steps = 200, .lr = 1e-3})
//   tune_weak_columns(q, X, loss, options)  with loss(Y, dL_dY) -> L  (a user objective)
#include <Eigen/Core>
#include <cmath>
#include <functional>
#include <type_traits>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/format/packed_matrix.hpp"

namespace lowbit::inline LOWBIT_ABI {

struct wct_options {
  int steps = 200;
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam's defaults
};

struct wct_report {
  double initial_loss = 0.0;  // before tuning
  double final_loss = 0.0;    // after, with the weak columns as stored (fp16)
  int steps = 0;
};

// A user objective: given the layer output Y [rows x tokens], return L and write ∂L/∂Y.
using wct_loss = std::function<double(const Eigen::MatrixXf& Y, Eigen::MatrixXf& dL_dY)>;

namespace detail {

template <class PM>
void require_weak_columns(const PM& q, const Eigen::MatrixXf& X, const char* who) {
  static_assert(std::is_same_v<typename PM::outlier_policy, dense_columns>,
                "lowbit weak column tuning needs an OWQ result (dense_columns store): quantize with owq<...>");
  require(q.weak_count() > 0, who, ": the matrix has no weak columns to tune");
  require(X.rows() == q.cols(), who, ": X has ", X.rows(), " rows, expected the layer's ", q.cols(), " inputs");
  require(X.cols() > 0, who, ": X has no tokens");
  require(X.allFinite(), who, ": X has non-finite values");
}

// X[weak, :] ([k x tokens]).
template <class PM>
Eigen::MatrixXf gather_weak_rows(const PM& q, const Eigen::MatrixXf& X) {
  const auto& cols = q.outliers().columns;
  Eigen::MatrixXf Xw(static_cast<index>(cols.size()), X.cols());
  for (std::size_t j = 0; j < cols.size(); ++j) Xw.row(static_cast<index>(j)) = X.row(cols[j]);
  return Xw;
}

template <class PM>
Eigen::MatrixXf weak_matrix(const PM& q) {
  const index k = q.weak_count();
  Eigen::MatrixXf Ww(q.rows(), k);
  for (index r = 0; r < q.rows(); ++r)
    for (index j = 0; j < k; ++j) Ww(r, j) = q.outliers().value(r, j);
  return Ww;
}

}  // namespace detail

// ∂L/∂W_weak = ∂L/∂Y · X[weak, :]ᵀ for an OWQ matrix q, inputs X [in x tokens] and the
// output gradient dL_dY [rows x tokens]. Column j of the result belongs to
// q.outliers().columns[j].
template <class PM>
Eigen::MatrixXf weak_column_gradient(const PM& q, const Eigen::MatrixXf& X, const Eigen::MatrixXf& dL_dY) {
  detail::require_weak_columns(q, X, "weak_column_gradient");
  detail::require(dL_dY.rows() == q.rows() && dL_dY.cols() == X.cols(), "weak_column_gradient: dL_dY is ",
                  dL_dY.rows(), " x ", dL_dY.cols(), ", expected ", q.rows(), " x ", X.cols());
  return dL_dY * detail::gather_weak_rows(q, X).transpose();
}

// Tunes q's weak columns to minimise loss(Ŵ X). Only q.outliers().values change.
template <class PM>
wct_report tune_weak_columns(PM& q, const Eigen::MatrixXf& X, const wct_loss& loss, const wct_options& opt = {}) {
  detail::require_weak_columns(q, X, "tune_weak_columns");
  detail::require(static_cast<bool>(loss), "tune_weak_columns: the loss callable is empty");
  detail::require(opt.steps >= 0 && opt.lr > 0.0 && opt.beta1 >= 0.0 && opt.beta1 < 1.0 && opt.beta2 >= 0.0 &&
                      opt.beta2 < 1.0 && opt.eps > 0.0,
                  "tune_weak_columns: options need steps >= 0, lr > 0, beta1/beta2 in [0, 1), eps > 0");
  const index k = q.weak_count();
  const Eigen::MatrixXf Xw = detail::gather_weak_rows(q, X);
  // The frozen part: the low-bit weights with the weak columns zeroed.
  Eigen::MatrixXf W_low = q.dequantize();
  for (index j = 0; j < k; ++j) W_low.col(q.outliers().columns[static_cast<std::size_t>(j)]).setZero();
  const Eigen::MatrixXf Y_low = W_low * X;

  Eigen::MatrixXf Ww = detail::weak_matrix(q);  // fp32 master copy
  Eigen::MatrixXf m = Eigen::MatrixXf::Zero(q.rows(), k), v = m, dY(q.rows(), X.cols()), Y(q.rows(), X.cols());
  auto evaluate = [&](const Eigen::MatrixXf& weak) {
    Y.noalias() = Y_low + weak * Xw;
    dY.setZero();
    const double L = loss(Y, dY);
    detail::require(std::isfinite(L), "tune_weak_columns: the loss returned ", L);
    detail::require(dY.rows() == Y.rows() && dY.cols() == Y.cols(), "tune_weak_columns: the loss resized dL_dY");
    return L;
  };
  wct_report rep;
  rep.initial_loss = evaluate(Ww);
  double b1t = 1.0, b2t = 1.0;
  for (int t = 1; t <= opt.steps; ++t) {
    if (t > 1) evaluate(Ww);
    const Eigen::MatrixXf g = dY * Xw.transpose();
    b1t *= opt.beta1;
    b2t *= opt.beta2;
    const float b1 = static_cast<float>(opt.beta1), b2 = static_cast<float>(opt.beta2);
    m = b1 * m + (1.0f - b1) * g;
    v = b2 * v + (1.0f - b2) * g.cwiseProduct(g);
    const float step = static_cast<float>(opt.lr / (1.0 - b1t));
    const float vcorr = static_cast<float>(1.0 / (1.0 - b2t));
    Ww.array() -= step * m.array() / ((v.array() * vcorr).sqrt() + static_cast<float>(opt.eps));
    rep.steps = t;
  }
  auto& values = q.outliers().values;
  for (index r = 0; r < q.rows(); ++r)
    for (index j = 0; j < k; ++j) values[static_cast<std::size_t>(r * k + j)] = half(Ww(r, j));
  rep.final_loss = evaluate(detail::weak_matrix(q));
  return rep;
}

// The layer's output error against targets: L = ‖Ŵ X − Y_target‖² / (rows · tokens).
template <class PM>
wct_report tune_weak_columns(PM& q, const Eigen::MatrixXf& X, const Eigen::MatrixXf& Y_target,
                             const wct_options& opt = {}) {
  detail::require(Y_target.rows() == q.rows() && Y_target.cols() == X.cols(), "tune_weak_columns: Y_target is ",
                  Y_target.rows(), " x ", Y_target.cols(), ", expected ", q.rows(), " x ", X.cols());
  detail::require(Y_target.allFinite(), "tune_weak_columns: Y_target has non-finite values");
  const double scale = 1.0 / (static_cast<double>(Y_target.rows()) * static_cast<double>(Y_target.cols()));
  const wct_loss mse = [&](const Eigen::MatrixXf& Y, Eigen::MatrixXf& dY) {
    dY = (Y - Y_target) * static_cast<float>(2.0 * scale);
    return (Y - Y_target).cast<double>().squaredNorm() * scale;
  };
  return tune_weak_columns(q, X, mse, opt);
}

}  // namespace lowbit
