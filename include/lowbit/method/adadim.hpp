#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// AdaDim: adaptive group dimension (Heo et al., "Rethinking Channel Dimensions to Isolate
// Outliers for Low-bit Weight Quantization of Large Language Models", ICLR 2024; code
// johnheo/adadim-llm).
//
// Activation outliers live in a few *input* channels. Per-OC groups (G input columns of one
// row) mix such a channel's column with ordinary ones; per-IC groups (G output rows of one
// column) give it scales of its own. Neither layout wins everywhere, so for each linear AdaDim
// quantizes both ways with the same base method, bits and group size and keeps the one with
// the lower output error on calibration data (paper §4, `rtn_ada.py auto_dim_block`). The
// choice is recorded in the packed matrix (group<adaptive, G>) and read by the kernels at run
// time.
//   adadim<rtn<bits<3>, group<oc, 128>>>    RTN-ada (the group's axis is replaced; its size is kept)
//   adadim<gptq<bits<3>, group<oc, 128>>>   GPTQ-ada (both axes run GPTQ; see docs/adadim.md)
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <functional>
#include <sstream>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit/method/awq.hpp"  // activation inputs and block-output errors (shared with AWQ)
#include "lowbit/method/rtn.hpp"

namespace lowbit::inline LOWBIT_ABI {

// The block whose output decides the axis: given a candidate (dequantized) weight of the
// linear and the calibration input X [in x tokens], return the block output. The reference
// uses the attention output for q/k/v, the MLP output for gate/up and the linear itself for
// o/down (the default: W X).
using adadim_block = std::function<Eigen::MatrixXf(const Eigen::MatrixXf& W, const Eigen::MatrixXf& X)>;

struct adadim_options {
  adadim_block block;  // empty: the linear itself, error ‖W X − Ŵ X‖² / (rows · tokens)
  // Choose the axis with RTN on the base's grid and run the base only on that axis (what
  // gptq_ada.py does: cheaper, but the choice is not the base's own). Off: run the base on
  // both axes and compare its own results, so AdaDim is never worse than its base.
  bool choose_with_rtn = false;
};

// Which axis a linear chose and the two calibration errors it compared.
struct adadim_choice {
  axis chosen = axis::oc;
  double error_oc = 0.0;
  double error_ic = 0.0;
  bool by_rtn = false;  // the errors are RTN's (adadim_options::choose_with_rtn)
};

template <class Q>
struct adadim_quantized : Q {
  adadim_choice choice;
  adadim_quantized() = default;
  adadim_quantized(Q q, adadim_choice c) : Q(std::move(q)), choice(c) {}
};

template <class... Policies> struct awq;

namespace detail {

template <class P, class G>
using replace_group_t = std::conditional_t<GroupPolicy<P>, G, P>;

// Method<P...> with its group policy replaced by G (or G appended when it has none). Only
// names the type: a method that rejects group<adaptive, N> is never instantiated with it.
template <template <class...> class Method, class G, class... P>
using with_group_t = std::conditional_t<(GroupPolicy<P> || ...), Method<replace_group_t<P, G>...>, Method<P..., G>>;

template <class... P> struct group_size_of { static constexpr int value = 128; };  // policy_set's default
template <class P, class... Ps>
struct group_size_of<P, Ps...> {
  static constexpr int value = [] {
    if constexpr (GroupPolicy<P>) return P::size;
    else return group_size_of<Ps...>::value;
  }();
};

// The same packed matrix with the axis recorded at run time.
template <class Dst, class Src>
Dst with_runtime_axis(const Src& q) {
  std::vector<std::int32_t> weak(q.weak_columns().begin(), q.weak_columns().end());
  Dst d(q.rows(), q.cols(), q.group_axis(), std::move(weak));
  detail::require(d.codes().size() == q.codes().size() && d.group_size() == q.group_size(),
                  "adadim: internal layout mismatch between the fixed and the adaptive packed matrix");
  std::copy(q.codes().begin(), q.codes().end(), d.codes().begin());
  d.stats() = q.stats();
  d.outliers() = q.outliers();
  return d;
}

}  // namespace detail

template <class Base>
struct adadim {
  static_assert(!std::is_same_v<Base, Base>, "lowbit::adadim<Base>: Base must be a method such as rtn<...> or gptq<...>");
};

template <template <class...> class Method, class... P>
struct adadim<Method<P...>> {
  static_assert(!std::is_same_v<Method<P...>, awq<P...>>,
                "lowbit::adadim<awq<...>>: AdaDim and AWQ do not compose (AdaDim paper, App. A.2): per-IC groups "
                "quantize each input column on its own, so AWQ's per-column scale cancels out");
  static constexpr int group_size = detail::group_size_of<P...>::value;
  using oc_method = detail::with_group_t<Method, group<axis::oc, group_size>, P...>;
  using ic_method = detail::with_group_t<Method, group<axis::ic, group_size>, P...>;
  using fixed_packed = typename oc_method::packed_type;
  using packed_type = packed_matrix<typename fixed_packed::bit_width, group<axis::adaptive, group_size>,
                                    typename fixed_packed::outlier_policy, typename fixed_packed::stats_policy,
                                    typename fixed_packed::zero_point_policy>;
  // The chooser of choose_with_rtn: RTN on the same grid, no outlier store.
  template <axis A>
  using rtn_on = rtn<typename fixed_packed::bit_width, group<A, group_size>, typename fixed_packed::stats_policy,
                     typename fixed_packed::zero_point_policy>;

  // Calibration error of a candidate Ŵ: the mean squared difference of the block outputs.
  static double calibration_error(const Eigen::MatrixXf& W, const Eigen::MatrixXf& W_hat, const Eigen::MatrixXf& X,
                                  const adadim_options& opt, const Eigen::MatrixXf* reference = nullptr) {
    if (!opt.block)  // ‖(W − Ŵ) X‖²: one product instead of two
      return ((W - W_hat) * X).cast<double>().squaredNorm() / static_cast<double>(W.rows() * X.cols());
    return detail::mean_squared_difference(reference ? *reference : opt.block(W, X), opt.block(W_hat, X));
  }

  // lowbit::quantize<adadim<Base>>(W, X [, options, base args...]); X is [in x tokens].
  template <detail::ActivationInput M, class... BaseArgs>
  static auto run(matrix_view<const float> W, const M& X, const adadim_options& opt = {}, BaseArgs&&... base_args) {
    const auto t0 = std::chrono::steady_clock::now();
    require_valid_weights(W);
    const Eigen::MatrixXf Xm = detail::activation_matrix(X);
    detail::require(Xm.rows() == W.cols, "adadim: X has ", Xm.rows(), " rows, expected W's ", W.cols,
                    " input columns");
    detail::require(Xm.cols() > 0, "adadim: X has no tokens");
    require_finite(to_view(Xm), "calibration activations X");
    const Eigen::MatrixXf Wf = detail::copy_matrix(W);
    Eigen::MatrixXf reference;
    if (opt.block) reference = opt.block(Wf, Xm);

    adadim_choice choice;
    choice.by_rtn = opt.choose_with_rtn;
    using result_type = quantized<packed_type>;
    result_type result;
    if (opt.choose_with_rtn) {
      choice.error_oc = calibration_error(Wf, rtn_on<axis::oc>::run(W).dequantize(), Xm, opt, &reference);
      choice.error_ic = calibration_error(Wf, rtn_on<axis::ic>::run(W).dequantize(), Xm, opt, &reference);
      choice.chosen = choice.error_ic < choice.error_oc ? axis::ic : axis::oc;
      result = choice.chosen == axis::ic ? adopt(detail::run_calibrated<ic_method>(W, Xm, base_args...))
                                             : adopt(detail::run_calibrated<oc_method>(W, Xm, base_args...));
    } else {
      // A base that needs a Hessian and was given none gets the one of X (GPTQ-ada's).
      auto q_oc = detail::run_calibrated<oc_method>(W, Xm, base_args...);
      auto q_ic = detail::run_calibrated<ic_method>(W, Xm, base_args...);
      choice.error_oc = calibration_error(Wf, q_oc.dequantize(), Xm, opt, &reference);
      choice.error_ic = calibration_error(Wf, q_ic.dequantize(), Xm, opt, &reference);
      // Ties keep per-OC, the usual layout (the reference's argmin over ['oc', 'ic']).
      choice.chosen = choice.error_ic < choice.error_oc ? axis::ic : axis::oc;
      result = choice.chosen == axis::ic ? adopt(std::move(q_ic)) : adopt(std::move(q_oc));
    }
    std::ostringstream notes;
    notes << "adadim axis=" << axis_name(choice.chosen) << " error_oc=" << choice.error_oc
          << " error_ic=" << choice.error_ic << (choice.by_rtn ? " (chosen by rtn)" : "");
    if (!result.report.notes.empty()) notes << "; " << result.report.notes;
    result.report.notes = notes.str();
    result.report.method = "adadim+" + result.report.method;
    result.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return adadim_quantized<result_type>(std::move(result), choice);
  }

 private:
  template <class Q>
  static quantized<packed_type> adopt(Q q) {
    return quantized<packed_type>(detail::with_runtime_axis<packed_type>(q.packed()), std::move(q.report));
  }
};

}  // namespace lowbit
