// A researcher's own ScaleSearch, combined with lowbit's methods like a built-in one.
//
// `cubic_clip` searches each group's clip ratio by brute force and keeps the one with the
// least Σ|w − q(w)|³: a heavier penalty on large errors than mse_clip's squared error. The
// policy is a plain struct with a name, a `searches` flag and fit(); the ScaleSearch concept
// checks it, and every method (here RTN and GPTQ) calls it for every group it fits.
#include <lowbit/gptq.hpp>
#include <lowbit/rtn.hpp>

#include <cmath>
#include <cstdio>
#include <random>

struct cubic_clip {
  static constexpr const char* name = "cubic_clip";
  static constexpr bool searches = true;  // a search: lowbit spreads the groups over threads
  static lowbit::grid_params fit(lowbit::weight_run w, const lowbit::grid_spec& spec) {
    const auto [lo, hi] = lowbit::range_with_zero(w);  // the building blocks of core/grid_types.hpp
    lowbit::grid_params best = lowbit::grid_for_range(lo, hi, spec);
    double best_err = error(w, best, spec.maxq());
    for (int step = 1; step < 40; ++step) {
      const float shrink = 1.0f - 0.0125f * static_cast<float>(step);  // ratios 0.9875 .. 0.5125
      const lowbit::grid_params p = lowbit::grid_for_range(shrink * lo, shrink * hi, spec);
      const double e = error(w, p, spec.maxq());
      if (e < best_err) {
        best_err = e;
        best = p;
      }
    }
    return best;
  }
  static double error(lowbit::weight_run w, lowbit::grid_params p, int maxq) {
    double e = 0.0;
    for (lowbit::index i = 0; i < w.size; ++i) e += std::pow(std::abs(w[i] - lowbit::fake_quantize(w[i], p, maxq)), 3.0);
    return e;
  }
};
static_assert(lowbit::ScaleSearch<cubic_clip>, "cubic_clip must model ScaleSearch");

namespace {

Eigen::MatrixXf heavy_tailed(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  Eigen::MatrixXf W(rows, cols);
  for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = 0.02f * t(rng);
  return W;
}

// ‖(W − Q)X‖² / ‖WX‖²: the output error GPTQ minimises.
double output_error(const Eigen::MatrixXf& W, const Eigen::MatrixXf& D, const Eigen::MatrixXf& X) {
  return ((W - D) * X).squaredNorm() / (W * X).squaredNorm();
}

}  // namespace

int main() {
  using namespace lowbit;
  const Eigen::MatrixXf W = heavy_tailed(512, 1024, 1);
  const Eigen::MatrixXf X = heavy_tailed(1024, 2048, 2) * 50.0f;
  hessian H(W.cols());
  H.add_batch(X);
  std::printf("3-bit, per-OC groups of 128, output error ||(W - Q) X||^2 / ||W X||^2:\n");
  const auto row = [&](const char* what, const auto& q) {
    std::printf("  %-34s %.4e  (%s)\n", what, output_error(W, q.dequantize(), X), q.report.method.c_str());
  };
  row("rtn  minmax", quantize<rtn<bits<3>, group<oc, 128>>>(W));
  row("rtn  mse_clip", quantize<rtn<bits<3>, group<oc, 128>, mse_clip<>>>(W));
  row("rtn  cubic_clip (user search)", quantize<rtn<bits<3>, group<oc, 128>, cubic_clip>>(W));
  row("gptq minmax", quantize<gptq<bits<3>, group<oc, 128>>>(W, H));
  row("gptq cubic_clip (user search)", quantize<gptq<bits<3>, group<oc, 128>, cubic_clip>>(W, H));
  return 0;
}
