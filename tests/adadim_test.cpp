// AdaDim: the axis chooser against independently computed errors on layers built so that each
// axis wins in turn, "never worse than its base", the adaptive packed result and its kernels.
#include <lowbit/adadim.hpp>
#include <lowbit/gptq.hpp>

#include <cmath>
#include <vector>

#include "lowbit_catch.hpp"
#include "test_data.hpp"

using namespace lowbit;

namespace {

// ‖(W − Ŵ) X‖² / (rows · tokens) in double: the default AdaDim criterion, written independently.
double output_mse(const Eigen::MatrixXf& W, const Eigen::MatrixXf& W_hat, const Eigen::MatrixXf& X) {
  return ((W.cast<double>() - W_hat.cast<double>()) * X.cast<double>()).squaredNorm() /
         static_cast<double>(W.rows() * X.cols());
}

// A layer whose weights have a few large *input* columns: a per-OC group containing one loses
// the resolution of its other 31 weights; per-IC groups keep those columns to themselves.
struct layer {
  Eigen::MatrixXf W, X;
};
const std::vector<Eigen::Index> big_cols{5, 77, 140, 201}, big_rows{3, 20, 40, 60, 71, 90};
layer input_outliers(std::uint32_t seed) {
  layer l{lowbit_test::gaussian(96, 256, seed, 0.02f), lowbit_test::gaussian(256, 256, seed + 1)};
  for (Eigen::Index c : big_cols) l.W.col(c) *= 8.0f;
  return l;
}
// A layer with a few large *output* rows: per-IC groups (G rows of one column) then mix them
// with ordinary rows, per-OC groups keep them apart.
layer output_outliers(std::uint32_t seed) {
  layer l{lowbit_test::gaussian(96, 256, seed, 0.02f), lowbit_test::gaussian(256, 256, seed + 1)};
  for (Eigen::Index r : big_rows) l.W.row(r) *= 8.0f;
  return l;
}

}  // namespace

TEMPLATE_TEST_CASE_SIG("adadim: each axis wins in turn and the chooser picks it", "", ((int B), B), 3, 4) {
  using A = adadim<rtn<bits<B>, group<oc, 32>>>;
  for (const bool ic_should_win : {true, false}) {
    const layer l = ic_should_win ? input_outliers(100 + B) : output_outliers(200 + B);
    const double e_oc = output_mse(l.W, quantize<rtn<bits<B>, group<oc, 32>>>(l.W).dequantize(), l.X);
    const double e_ic = output_mse(l.W, quantize<rtn<bits<B>, group<ic, 32>>>(l.W).dequantize(), l.X);
    INFO("bits " << B << ": error oc " << e_oc << ", ic " << e_ic);
    // The construction does what it claims, clearly.
    if (ic_should_win) CHECK(e_ic * 1.3 < e_oc);
    else CHECK(e_oc * 1.3 < e_ic);
    auto q = quantize<A>(l.W, l.X);
    CHECK(q.group_axis() == (ic_should_win ? ic : oc));
    CHECK(q.choice.chosen == q.group_axis());
    CHECK(q.choice.error_oc == Approx(e_oc).epsilon(1e-4));
    CHECK(q.choice.error_ic == Approx(e_ic).epsilon(1e-4));
    CHECK(q.report.notes.find(ic_should_win ? "axis=ic" : "axis=oc") != std::string::npos);
    CHECK(q.report.method == "adadim+rtn");
  }
}

TEST_CASE("adadim: the adaptive matrix is the chosen base matrix, and the kernels follow its axis") {
  const layer l = input_outliers(7);
  auto q = quantize<adadim<rtn<bits<3>, group<oc, 64>>>>(l.W, l.X);
  REQUIRE(q.group_axis() == ic);
  static_assert(decltype(q)::grouping::group_axis == axis::adaptive);
  const Eigen::MatrixXf base = quantize<rtn<bits<3>, group<ic, 64>>>(l.W).dequantize();
  CHECK(q.dequantize() == base);
  CHECK(q.bits_per_weight() == quantize<rtn<bits<3>, group<ic, 64>>>(l.W).bits_per_weight());
  std::vector<float> x(256), y(96);
  for (std::size_t j = 0; j < x.size(); ++j) x[j] = l.X(static_cast<Eigen::Index>(j), 3);
  q.gemv(x, y);
  const Eigen::VectorXd expect = base.cast<double>() * l.X.col(3).cast<double>();
  for (Eigen::Index i = 0; i < 96; ++i) CHECK(y[static_cast<std::size_t>(i)] == Approx(expect[i]).margin(1e-4));
}

TEST_CASE("adadim: never worse than its base on the calibration error") {
  // Generic layers (heavy-tailed weights, LLM-like activations) at several shapes and widths.
  for (std::uint32_t seed = 0; seed < 6; ++seed) {
    const Eigen::MatrixXf W = lowbit_test::heavy_tailed(64 + 16 * seed, 128, 300 + seed);
    const Eigen::MatrixXf X = lowbit_test::activations(128, 96, 400 + seed, static_cast<int>(seed));
    auto q = quantize<adadim<rtn<bits<3>, group<oc, 32>>>>(W, X);
    const double e = output_mse(W, q.dequantize(), X);
    const double e_base_oc = output_mse(W, quantize<rtn<bits<3>, group<oc, 32>>>(W).dequantize(), X);
    const double e_base_ic = output_mse(W, quantize<rtn<bits<3>, group<ic, 32>>>(W).dequantize(), X);
    INFO("seed " << seed << ": adadim " << e << ", oc " << e_base_oc << ", ic " << e_base_ic);
    CHECK(e <= e_base_oc * (1 + 1e-9));
    CHECK(e <= e_base_ic * (1 + 1e-9));
    CHECK(e == Approx(std::min(e_base_oc, e_base_ic)).epsilon(1e-9));
  }
}

TEST_CASE("adadim: the block callable decides, not the bare linear") {
  // On the large-row layer the bare linear prefers per-OC. A block that only passes the large
  // rows on counts only their errors, and there per-IC is better (each large row is the extreme
  // of its column groups): the block must flip the choice.
  const layer l = output_outliers(11);
  Eigen::MatrixXf mask = Eigen::MatrixXf::Zero(96, 96);
  for (Eigen::Index r : big_rows) mask(r, r) = 1.0f;
  adadim_options opt;
  opt.block = [&mask](const Eigen::MatrixXf& W, const Eigen::MatrixXf& X) { return Eigen::MatrixXf(mask * (W * X)); };
  const Eigen::MatrixXf Qoc = quantize<rtn<bits<3>, group<oc, 32>>>(l.W).dequantize();
  const Eigen::MatrixXf Qic = quantize<rtn<bits<3>, group<ic, 32>>>(l.W).dequantize();
  const double b_oc = output_mse(mask * l.W, mask * Qoc, l.X), b_ic = output_mse(mask * l.W, mask * Qic, l.X);
  INFO("block errors oc " << b_oc << ", ic " << b_ic);
  REQUIRE(b_ic * 1.3 < b_oc);
  REQUIRE(output_mse(l.W, Qoc, l.X) * 1.3 < output_mse(l.W, Qic, l.X));
  auto q = quantize<adadim<rtn<bits<3>, group<oc, 32>>>>(l.W, l.X, opt);
  CHECK(q.group_axis() == ic);
  CHECK(q.choice.error_oc == Approx(b_oc).epsilon(1e-3));
  CHECK(q.choice.error_ic == Approx(b_ic).epsilon(1e-3));
}

TEST_CASE("adadim: group<adaptive, G> and group<ic, G> in the base name the same method") {
  const layer l = output_outliers(13);
  auto a = quantize<adadim<rtn<bits<4>, group<adaptive, 32>>>>(l.W, l.X);
  auto b = quantize<adadim<rtn<bits<4>, group<ic, 32>>>>(l.W, l.X);
  auto c = quantize<adadim<rtn<group<oc, 32>, bits<4>, symmetric>>>(l.W, l.X);
  CHECK(a.group_axis() == oc);
  CHECK(a.dequantize() == b.dequantize());
  CHECK(c.group_axis() == oc);
  CHECK(!c.stats().has_zeros());
  // choose_with_rtn with an RTN base is the same decision.
  adadim_options opt;
  opt.choose_with_rtn = true;
  auto d = quantize<adadim<rtn<bits<4>, group<oc, 32>>>>(l.W, l.X, opt);
  CHECK(d.choice.by_rtn);
  CHECK(d.dequantize() == a.dequantize());
}

TEST_CASE("adadim: bad inputs are rejected with lowbit::error") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(16, 32, 1);
  using A = adadim<rtn<bits<4>, group<oc, 16>>>;
  CHECK_THROWS_AS(quantize<A>(W, Eigen::MatrixXf::Ones(33, 8)), lowbit::error);
  CHECK_THROWS_AS(quantize<A>(W, Eigen::MatrixXf(32, 0)), lowbit::error);
  Eigen::MatrixXf X = Eigen::MatrixXf::Ones(32, 8);
  X(0, 0) = INFINITY;
  CHECK_THROWS_AS(quantize<A>(W, X), lowbit::error);
}

// ---- AdaDim-GPTQ ----

TEST_CASE("adadim<gptq>: GPTQ on both axes, the lower calibration error is kept") {
  for (const bool ic_should_win : {true, false}) {
    const layer l = ic_should_win ? input_outliers(500) : output_outliers(600);
    hessian H(256);
    H.add_batch(l.X);
    auto g_oc = quantize<gptq<bits<3>, group<oc, 32>>>(l.W, H);
    auto g_ic = quantize<gptq<bits<3>, group<ic, 32>>>(l.W, H);
    const double e_oc = output_mse(l.W, g_oc.dequantize(), l.X), e_ic = output_mse(l.W, g_ic.dequantize(), l.X);
    INFO("gptq errors oc " << e_oc << ", ic " << e_ic);
    // No Hessian given: adadim builds the one of X, as the test did.
    auto q = quantize<adadim<gptq<bits<3>, group<oc, 32>>>>(l.W, l.X);
    CHECK(q.choice.chosen == (e_ic < e_oc ? ic : oc));
    CHECK(q.group_axis() == (ic_should_win ? ic : oc));
    CHECK(q.choice.error_oc == Approx(e_oc).epsilon(1e-4));
    CHECK(q.choice.error_ic == Approx(e_ic).epsilon(1e-4));
    CHECK(q.dequantize() == (ic_should_win ? g_ic.dequantize() : g_oc.dequantize()));
    CHECK(q.report.method == "adadim+gptq");
    CHECK(output_mse(l.W, q.dequantize(), l.X) <= std::min(e_oc, e_ic) * (1 + 1e-9));
    // A Hessian and options given explicitly go to GPTQ unchanged.
    gptq_options go;
    go.act_order = true;
    auto q2 = quantize<adadim<gptq<bits<3>, group<oc, 32>>>>(l.W, l.X, adadim_options{}, H, go);
    auto ref = ic_should_win ? quantize<gptq<bits<3>, group<ic, 32>>>(l.W, H, go).dequantize()
                             : quantize<gptq<bits<3>, group<oc, 32>>>(l.W, H, go).dequantize();
    CHECK(q2.group_axis() == (ic_should_win ? ic : oc));
    CHECK(q2.dequantize() == ref);
  }
}

TEST_CASE("adadim<gptq>: choose_with_rtn decides with RTN, then runs GPTQ once (gptq_ada.py)") {
  const layer l = input_outliers(700);
  adadim_options opt;
  opt.choose_with_rtn = true;
  auto q = quantize<adadim<gptq<bits<3>, group<oc, 32>>>>(l.W, l.X, opt);
  const double r_oc = output_mse(l.W, quantize<rtn<bits<3>, group<oc, 32>>>(l.W).dequantize(), l.X);
  const double r_ic = output_mse(l.W, quantize<rtn<bits<3>, group<ic, 32>>>(l.W).dequantize(), l.X);
  CHECK(q.choice.by_rtn);
  CHECK(q.choice.error_oc == Approx(r_oc).epsilon(1e-4));
  CHECK(q.choice.error_ic == Approx(r_ic).epsilon(1e-4));
  CHECK(q.group_axis() == (r_ic < r_oc ? ic : oc));
  CHECK(q.report.notes.find("chosen by rtn") != std::string::npos);
}
