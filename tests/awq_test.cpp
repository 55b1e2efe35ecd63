// AWQ: calibration statistics, the α search and the clip search against brute force, folding
// invariance, α = 0 = RTN, and the headline property (beats RTN on outlier activations).
#include <lowbit/awq.hpp>
#include <lowbit/gptq.hpp>
#include <lowbit/owq.hpp>

#include <cmath>
#include <vector>

#include "lowbit_catch.hpp"
#include "test_data.hpp"

using namespace lowbit;

namespace {

// Output error of a weight matrix that expects x / s (s = 1: a plain quantized matrix), in double.
double output_error(const Eigen::MatrixXf& W, const Eigen::MatrixXf& W_hat_scaled, const Eigen::VectorXf& s,
                    const Eigen::MatrixXf& X) {
  const Eigen::MatrixXd Wd = W.cast<double>();
  const Eigen::MatrixXd Wq = W_hat_scaled.cast<double>() * s.cast<double>().cwiseInverse().asDiagonal();
  return ((Wd - Wq) * X.cast<double>()).squaredNorm() / static_cast<double>(W.rows() * X.cols());
}

// Independent fake quantization of one per-OC group in double (the spec's formula, fp16 scale).
Eigen::VectorXd ref_fake_quant(const Eigen::VectorXd& w, int b) {
  double lo = std::min(w.minCoeff(), 0.0), hi = std::max(w.maxCoeff(), 0.0);
  if (lo == 0 && hi == 0) { lo = -1; hi = 1; }
  const int maxq = (1 << b) - 1;
  const double scale = half(static_cast<float>((hi - lo) / maxq)).to_float();
  const double zero = std::nearbyint(-lo / scale);
  Eigen::VectorXd q(w.size());
  for (Eigen::Index i = 0; i < w.size(); ++i)
    q[i] = scale * (std::clamp(std::nearbyint(w[i] / scale) + zero, 0.0, static_cast<double>(maxq)) - zero);
  return q;
}

Eigen::MatrixXd ref_rtn(const Eigen::MatrixXd& W, int b, Eigen::Index G) {
  Eigen::MatrixXd Q(W.rows(), W.cols());
  for (Eigen::Index r = 0; r < W.rows(); ++r)
    for (Eigen::Index c = 0; c < W.cols(); c += G) {
      const Eigen::Index n = std::min(G, W.cols() - c);
      Q.row(r).segment(c, n) = ref_fake_quant(W.row(r).segment(c, n).transpose(), b).transpose();
    }
  return Q;
}

}  // namespace

TEST_CASE("awq: calibration statistics do not depend on the batch split") {
  const Eigen::MatrixXf X = lowbit_test::activations(24, 301, 7);
  awq_calibration one(24, 40), many(24, 40);
  one.add_batch(X);
  for (Eigen::Index t = 0; t < X.cols();) {
    const Eigen::Index n = std::min<Eigen::Index>(1 + t % 37, X.cols() - t);
    many.add_batch(Eigen::MatrixXf(X.middleCols(t, n)));
    t += n;
  }
  CHECK(one.tokens_seen() == 301);
  CHECK(one.mean_abs() == many.mean_abs());  // bitwise
  CHECK(one.tokens() == many.tokens());
  // s_x against a float64 mean, and the sample is an evenly strided subset of the stream.
  const Eigen::VectorXd ref = X.cast<double>().cwiseAbs().rowwise().mean();
  CHECK((one.mean_abs().cast<double>() - ref).cwiseAbs().maxCoeff() < 1e-6 * ref.maxCoeff());
  const Eigen::MatrixXf S = one.tokens();
  REQUIRE(S.cols() <= 40);
  REQUIRE(S.cols() >= 20);
  Eigen::Index stride = 1;
  while (stride < X.cols() && X.col(stride) != S.col(1)) ++stride;
  INFO("stride " << stride);
  CHECK(S.cols() == (X.cols() + stride - 1) / stride);  // every multiple of the stride is kept
  for (Eigen::Index k = 0; k < S.cols(); ++k) CHECK(S.col(k) == X.col(k * stride));
}

TEST_CASE("awq: input scales follow s_x^alpha, clamped and normalised by sqrt(max*min)") {
  Eigen::VectorXf sx(4);
  sx << 4.0f, 1.0f, 0.0f, 16.0f;
  CHECK(awq_input_scales(sx, 0.0f) == Eigen::VectorXf::Ones(4));
  const Eigen::VectorXf s = awq_input_scales(sx, 0.5f);
  // s_x^0.5 = (2, 1, 1e-4 (clamped), 4); max*min = 4e-4, sqrt = 0.02.
  CHECK(s[0] == Approx(2.0 / 0.02));
  CHECK(s[1] == Approx(1.0 / 0.02));
  CHECK(s[2] == Approx(1e-4 / 0.02));
  CHECK(s[3] == Approx(4.0 / 0.02));
  CHECK(s.maxCoeff() * s.minCoeff() == Approx(1.0));
  CHECK_THROWS_AS(awq_input_scales(Eigen::VectorXf::Constant(3, -1.0f), 0.5f), lowbit::error);
}

TEST_CASE("awq: alpha = 0 without clipping is plain RTN, code for code") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(40, 200, 1);
  const Eigen::MatrixXf X = lowbit_test::activations(200, 64, 2);
  awq_options opt;
  opt.alpha = 0.0f;
  opt.clip = false;
  auto a = quantize<awq<bits<3>, group<oc, 64>>>(W, X, opt);
  auto r = quantize<rtn<bits<3>, group<oc, 64>>>(W);
  CHECK(a.input_scales == Eigen::VectorXf::Ones(200));
  CHECK(std::equal(a.codes().begin(), a.codes().end(), r.codes().begin(), r.codes().end()));
  CHECK(a.dequantize() == r.dequantize());
  CHECK(a.clip_limits.size() == 0);
}

TEST_CASE("awq: the scale search picks the alpha with the lowest independently computed loss") {
  // 256 tokens >= 128 channels: the loss through the Gram matrix H; 96 < 128: through the
  // products with X (output_error). Both must be the reference's mean_t ||(W - W_hat) x_t||^2.
  for (const Eigen::Index tokens : {Eigen::Index{256}, Eigen::Index{96}}) {
    INFO("tokens = " << tokens);
    const Eigen::MatrixXf W1 = lowbit_test::heavy_tailed(32, 128, 3), W2 = lowbit_test::heavy_tailed(16, 128, 4);
    const Eigen::MatrixXf X = lowbit_test::activations(128, tokens, 5);
    const std::vector<awq_linear> linears{{"gate", W1}, {"up", W2}};
    const awq_scales found = awq<bits<3>, group<oc, 64>>::search_scales(linears, X);
    REQUIRE(found.losses.size() == 20);
    const Eigen::VectorXd sx = X.cast<double>().cwiseAbs().rowwise().mean();
    std::vector<double> losses;
    for (int i = 0; i < 20; ++i) {
      // s from the formula in double, then the weights rounded in float as the library stores them.
      Eigen::VectorXd s = sx.array().pow(i / 20.0).max(1e-4).matrix();
      s /= std::sqrt(s.maxCoeff() * s.minCoeff());
      const Eigen::VectorXf sf = s.cast<float>();
      double loss = 0;
      for (const Eigen::MatrixXf* W : {&W1, &W2}) {
        const Eigen::MatrixXd Wq = ref_rtn((*W * sf.asDiagonal()).cast<double>(), 3, 64) * s.cwiseInverse().asDiagonal();
        loss += ((W->cast<double>() - Wq) * X.cast<double>()).squaredNorm();
      }
      losses.push_back(loss / static_cast<double>((W1.rows() + W2.rows()) * X.cols()));
      CHECK(found.losses[static_cast<std::size_t>(i)] == Approx(losses.back()).epsilon(1e-3));
    }
    const auto best = std::min_element(losses.begin(), losses.end()) - losses.begin();
    // The library's choice is the reference's argmin, or within float noise of it.
    CHECK(found.loss <= losses[static_cast<std::size_t>(best)] * (1 + 1e-3));
    CHECK(found.loss < losses[0]);  // scaling helps on outlier channels
    CHECK(found.alpha > 0.0f);
  }
}

TEST_CASE("awq: the block callable defines the loss (MLP gate/up block)") {
  const Eigen::MatrixXf Wg = lowbit_test::heavy_tailed(24, 128, 6), Wu = lowbit_test::heavy_tailed(24, 128, 7);
  const Eigen::MatrixXf X = lowbit_test::activations(128, 128, 8);
  awq_options opt;
  int calls = 0;
  opt.block = [&calls](std::span<const Eigen::MatrixXf> w, const Eigen::MatrixXf& x) {
    ++calls;
    const Eigen::ArrayXXf g = (w[0] * x).array(), u = (w[1] * x).array();
    return Eigen::MatrixXf((g / (1.0f + (-g).exp()) * u).matrix());  // SiLU(gate) * up
  };
  const std::vector<awq_linear> linears{{"gate", Wg}, {"up", Wu}};
  const awq_scales found = awq<bits<4>, group<oc, 128>>::search_scales(linears, X, opt);
  CHECK(calls == 21);  // the float reference + 20 candidates
  // The reported loss is the MSE of the block output at the chosen scales.
  const Eigen::VectorXf& s = found.s;
  std::vector<Eigen::MatrixXf> q;
  for (const Eigen::MatrixXf* W : {&Wg, &Wu})
    q.push_back((ref_rtn((*W * s.asDiagonal()).cast<double>(), 4, 128) * s.cast<double>().cwiseInverse().asDiagonal()).cast<float>());
  const std::vector<Eigen::MatrixXf> f{Wg, Wu};
  const double loss = (opt.block(f, X) - opt.block(q, X)).cast<double>().squaredNorm() / (24.0 * 128.0);
  CHECK(found.loss == Approx(loss).epsilon(1e-2));
  CHECK(found.loss <= found.losses[0]);
}

TEST_CASE("awq: the clip search picks the brute-force best shrink per group") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(12, 96, 9);
  const Eigen::MatrixXf X = lowbit_test::activations(96, 1100, 10);  // 1100 tokens: stride 2 -> 550 sampled
  const Eigen::MatrixXf L = awq<bits<3>, group<oc, 32>>::search_clip(W, X);
  REQUIRE(L.rows() == 12);
  REQUIRE(L.cols() == 3);
  Eigen::MatrixXd Xs(96, 550);
  for (Eigen::Index k = 0; k < 550; ++k) Xs.col(k) = X.col(2 * k).cast<double>();
  int strictly_better = 0;
  for (Eigen::Index r = 0; r < 12; ++r)
    for (Eigen::Index g = 0; g < 3; ++g) {
      const Eigen::VectorXd w = W.row(r).segment(32 * g, 32).transpose().cast<double>();
      const double m = w.cwiseAbs().maxCoeff();
      std::vector<double> err;
      for (int i = 0; i < 10; ++i) {
        const double lim = static_cast<float>(m) * (1.0f - static_cast<float>(i) / 20.0f);
        const Eigen::VectorXd wc = w.cwiseMax(-lim).cwiseMin(lim);
        err.push_back((Xs.middleRows(32 * g, 32).transpose() * (ref_fake_quant(wc, 3) - w)).squaredNorm());
      }
      const double chosen = L(r, g);
      const int i = static_cast<int>(std::lround((1.0 - chosen / m) * 20.0));
      REQUIRE(i >= 0);
      REQUIRE(i < 10);
      CHECK(err[static_cast<std::size_t>(i)] <= *std::min_element(err.begin(), err.end()) * (1 + 1e-4));
      if (i > 0) ++strictly_better;
    }
  CHECK(strictly_better > 0);  // clipping does something on heavy-tailed weights
}

TEST_CASE("awq: folding into a norm and into a preceding linear leaves the float block unchanged") {
  const Eigen::Index d = 64, h = 96;
  const Eigen::MatrixXf X = lowbit_test::activations(d, 50, 11);
  Eigen::VectorXf gamma = Eigen::VectorXf::Random(d).array() + 1.5f, beta = Eigen::VectorXf::Random(d);
  Eigen::MatrixXf Wq = lowbit_test::gaussian(h, d, 12, 0.1f), Wv = lowbit_test::gaussian(h, d, 13, 0.1f);
  Eigen::MatrixXf Wo = lowbit_test::gaussian(d, h, 14, 0.1f);
  // norm -> (q, v); v -> o
  auto block = [&](const Eigen::VectorXf& g, const Eigen::VectorXf& b, const Eigen::MatrixXf& q, const Eigen::MatrixXf& v,
                   const Eigen::MatrixXf& o) {
    const Eigen::MatrixXf n = (g.asDiagonal() * X).colwise() + b;
    Eigen::MatrixXf out(h + d, X.cols());
    out << q * n, o * (v * n);
    return out;
  };
  const Eigen::MatrixXf before = block(gamma, beta, Wq, Wv, Wo);
  const Eigen::VectorXf s1 = awq_input_scales(X.cwiseAbs().rowwise().mean(), 0.6f);
  const Eigen::VectorXf s2 = awq_input_scales(Eigen::VectorXf::Random(h).cwiseAbs(), 0.8f);
  fold_scales_into_norm(gamma, beta, s1);
  scale_input_channels(Wq, s1);
  scale_input_channels(Wv, s1);
  fold_scales_into_linear(Wv, s2);
  scale_input_channels(Wo, s2);
  const Eigen::MatrixXf after = block(gamma, beta, Wq, Wv, Wo);
  CHECK((after - before).cwiseAbs().maxCoeff() <= 1e-5f * before.cwiseAbs().maxCoeff());
  CHECK_THROWS_AS(fold_scales_into_norm(gamma, Eigen::VectorXf::Ones(3)), lowbit::error);
}

TEMPLATE_TEST_CASE_SIG("awq: beats RTN on inputs with large-magnitude channels", "", ((int B), B), 3, 4) {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(128, 256, 20 + B);
  const Eigen::MatrixXf X = lowbit_test::activations(256, 1024, 30 + B);
  const Eigen::MatrixXf calib = X.leftCols(512), held_out = X.rightCols(512);
  auto a = quantize<awq<bits<B>, group<oc, 128>>>(W, calib);
  auto r = quantize<rtn<bits<B>, group<oc, 128>>>(W);
  const Eigen::VectorXf ones = Eigen::VectorXf::Ones(256);
  const double e_awq = output_error(W, a.dequantize(), a.input_scales, held_out);
  const double e_rtn = output_error(W, r.dequantize(), ones, held_out);
  INFO("bits " << B << ": awq " << e_awq << " (alpha " << a.alpha << "), rtn " << e_rtn);
  CHECK(e_awq < 0.9 * e_rtn);
  // gemv_unfolded computes W_hat·diag(1/s)·x, the unscaled layer.
  std::vector<float> x(256), y(128);
  for (Eigen::Index j = 0; j < 256; ++j) x[static_cast<std::size_t>(j)] = held_out(j, 0);
  a.gemv_unfolded(x, y);
  const Eigen::VectorXf expect = a.dequantize() * (held_out.col(0).array() / a.input_scales.array()).matrix();
  for (Eigen::Index i = 0; i < 128; ++i) CHECK(y[static_cast<std::size_t>(i)] == Approx(expect[i]).margin(1e-3));
}

TEST_CASE("awq: a group shares one scale vector, and q/k are not clipped by default") {
  const Eigen::MatrixXf Wq = lowbit_test::heavy_tailed(32, 128, 40), Wk = lowbit_test::heavy_tailed(32, 128, 41),
                        Wv = lowbit_test::heavy_tailed(32, 128, 42);
  const Eigen::MatrixXf X = lowbit_test::activations(128, 256, 43);
  const std::vector<awq_linear> qkv{{"q_proj", Wq}, {"k_proj", Wk}, {"v_proj", Wv}};
  auto g = awq<bits<4>, group<oc, 64>>::quantize_group(qkv, X);
  REQUIRE(g.linears.size() == 3);
  CHECK(g.linears[0].clip_limits.size() == 0);
  CHECK(g.linears[1].clip_limits.size() == 0);
  CHECK(g.linears[2].clip_limits.rows() == 32);
  for (const auto& l : g.linears) CHECK(l.input_scales == g.scales.s);
  CHECK(g.linears[2].report.method == "awq+rtn");
  // q is W·diag(s) quantized with RTN exactly (no clip).
  Eigen::MatrixXf Ws = Wq;
  scale_input_channels(Ws, g.scales.s);
  CHECK(g.linears[0].dequantize() == quantize<rtn<bits<4>, group<oc, 64>>>(Ws).dequantize());
  // A calibration object gives the same result as the matrix it accumulated.
  awq_calibration calib(128);
  calib.add_batch(X.leftCols(100));
  calib.add_batch(X.rightCols(156));
  auto g2 = awq<bits<4>, group<oc, 64>>::quantize_group(qkv, calib);
  CHECK(g2.scales.alpha == g.scales.alpha);
  CHECK(g2.linears[2].dequantize() == g.linears[2].dequantize());
}

TEST_CASE("awq: the search tokens and the statistics tokens can differ (llm-awq's split)") {
  const Eigen::MatrixXf Wu = lowbit_test::heavy_tailed(32, 128, 50), Wg = lowbit_test::heavy_tailed(32, 128, 51);
  Eigen::MatrixXf X = lowbit_test::activations(128, 512, 52);
  X.row(7).rightCols(256) *= 40.0f;  // channel 7 is large only outside the search tokens
  const std::vector<awq_linear> mlp{{"gate_proj", Wg}, {"up_proj", Wu}};
  using A = awq<bits<3>, group<oc, 32>>;
  // X_search = X_all is the two-argument call, bit for bit.
  const auto same = A::quantize_group(mlp, X, X, awq_options{});
  const auto ref = A::quantize_group(mlp, X, awq_options{});
  CHECK(same.scales.s == ref.scales.s);
  CHECK(same.linears[1].dequantize() == ref.linears[1].dequantize());
  // s_x comes from every token: the scales are awq_input_scales(mean |X_all|, α), with α
  // searched on the first 256 tokens only.
  const Eigen::MatrixXf Xs = X.leftCols(256);
  const auto split = A::quantize_group(mlp, Xs, X, awq_options{});
  const Eigen::VectorXf sx = X.cwiseAbs().rowwise().mean();
  CHECK(split.scales.s.isApprox(awq_input_scales(sx, split.scales.alpha), 1e-6f));
  // and the losses are the search tokens' own: the same α grid as a search on Xs with that s_x.
  const auto on_search = A::search_scales(mlp, Xs);
  REQUIRE(on_search.losses.size() == split.scales.losses.size());
  CHECK(split.scales.losses.front() == Approx(on_search.losses.front()));  // α = 0: s = 1 either way
  CHECK_THROWS_WITH(A::quantize_group(mlp, Xs.topRows(64), X, awq_options{}), Catch::Contains("channels"));
}

TEST_CASE("awq: bad inputs are rejected with lowbit::error") {
  const Eigen::MatrixXf W = lowbit_test::gaussian(8, 32, 50);
  using A = awq<bits<4>, group<oc, 32>>;
  CHECK_THROWS_AS(quantize<A>(W, Eigen::MatrixXf::Ones(31, 10)), lowbit::error);
  awq_options bad;
  bad.scale_grid = 0;
  CHECK_THROWS_AS(quantize<A>(W, Eigen::MatrixXf::Ones(32, 10), bad), lowbit::error);
  Eigen::MatrixXf Xn = Eigen::MatrixXf::Ones(32, 10);
  Xn(3, 4) = std::nanf("");
  awq_calibration c(32);
  CHECK_THROWS_AS(c.add_batch(Xn), lowbit::error);
  CHECK_THROWS_AS(awq_calibration(32).mean_abs(), lowbit::error);
}

// ---- compositions: AWQ scaling, then GPTQ / OWQ on the scaled layer ----

TEST_CASE("awq<gptq>: alpha = 0 without clipping is GPTQ on the Hessian of X") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(48, 128, 60);
  const Eigen::MatrixXf X = lowbit_test::activations(128, 256, 61);
  awq_options opt;
  opt.alpha = 0.0f;
  opt.clip = false;
  auto a = quantize<awq<gptq<bits<3>, group<oc, 64>>>>(W, X, opt);
  hessian H(128);
  H.add_batch(X);
  auto g = quantize<gptq<bits<3>, group<oc, 64>>>(W, H);
  CHECK(std::equal(a.codes().begin(), a.codes().end(), g.codes().begin(), g.codes().end()));
  CHECK(a.dequantize() == g.dequantize());
  CHECK(a.report.method == "awq+gptq");
}

TEST_CASE("awq<gptq>: the Hessian of the scaled layer is diag(1/s) H diag(1/s)") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(48, 128, 62);
  const Eigen::MatrixXf X = lowbit_test::activations(128, 512, 63);
  const Eigen::MatrixXd H = 2.0 * X.cast<double>() * X.cast<double>().transpose() / 512.0;
  const gptq_options gopt;
  auto a = quantize<awq<gptq<bits<3>, group<oc, 64>>>>(W, X, awq_options{}, H, gopt);
  REQUIRE(a.alpha > 0.0f);
  // The same layer built by hand: W·diag(s), clipped with the reported limits, and the
  // Hessian of the inputs x / s written element by element.
  Eigen::MatrixXf Wc = W * a.input_scales.asDiagonal();
  for (Eigen::Index r = 0; r < Wc.rows(); ++r)
    for (Eigen::Index c = 0; c < Wc.cols(); ++c)
      Wc(r, c) = std::clamp(Wc(r, c), -a.clip_limits(r, c / 64), a.clip_limits(r, c / 64));
  Eigen::MatrixXd Hs(128, 128);
  for (Eigen::Index i = 0; i < 128; ++i)
    for (Eigen::Index j = 0; j < 128; ++j) Hs(i, j) = H(i, j) / (double(a.input_scales[i]) * a.input_scales[j]);
  auto g = quantize<gptq<bits<3>, group<oc, 64>>>(Wc, Hs, gopt);
  std::size_t same = 0;
  for (std::size_t i = 0; i < g.codes().size(); ++i) same += a.codes()[i] == g.codes()[i];
  CHECK(static_cast<double>(same) >= 0.99 * static_cast<double>(g.codes().size()));
  CHECK(a.report.loss == Approx(g.report.loss).epsilon(1e-3));
}

TEST_CASE("awq<gptq> and awq<owq>: scaling composes with error feedback and weak columns") {
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(64, 256, 64);
  const Eigen::MatrixXf X = lowbit_test::activations(256, 768, 65);
  const Eigen::MatrixXf calib = X.leftCols(384), held_out = X.rightCols(384);
  const Eigen::VectorXf ones = Eigen::VectorXf::Ones(256);
  hessian H(256);
  H.add_batch(calib);
  auto awq_rtn = quantize<awq<bits<3>, group<oc, 128>>>(W, calib);
  auto awq_gptq = quantize<awq<gptq<bits<3>, group<oc, 128>>>>(W, calib, awq_options{}, gptq_options{});
  auto plain_gptq = quantize<gptq<bits<3>, group<oc, 128>>>(W, H);
  owq_options oo;
  oo.weak_columns = 4;
  auto awq_owq = quantize<awq<owq<bits<3>, group<oc, 128>>>>(W, calib, awq_options{}, oo);
  const double e_awq_rtn = output_error(W, awq_rtn.dequantize(), awq_rtn.input_scales, held_out);
  const double e_awq_gptq = output_error(W, awq_gptq.dequantize(), awq_gptq.input_scales, held_out);
  const double e_gptq = output_error(W, plain_gptq.dequantize(), ones, held_out);
  const double e_awq_owq = output_error(W, awq_owq.dequantize(), awq_owq.input_scales, held_out);
  INFO("held-out output MSE: awq+rtn " << e_awq_rtn << ", awq+gptq " << e_awq_gptq << ", gptq " << e_gptq
                                       << ", awq+owq " << e_awq_owq);
  CHECK(awq_owq.weak_count() == 4);
  CHECK(awq_owq.report.method == "awq+owq");
  CHECK(e_awq_gptq < e_awq_rtn);
  CHECK(e_awq_gptq < e_gptq);  // the paper's AWQ+GPTQ: the two are complementary
  CHECK(e_awq_owq < e_awq_gptq);
  // alpha = 0, no clip: OWQ itself, code for code.
  awq_options off;
  off.alpha = 0.0f;
  off.clip = false;
  auto a0 = quantize<awq<owq<bits<3>, group<oc, 128>>>>(W, calib, off, oo);
  auto o = quantize<owq<bits<3>, group<oc, 128>>>(W, H, oo);
  CHECK(std::equal(a0.codes().begin(), a0.codes().end(), o.codes().begin(), o.codes().end()));
  CHECK(a0.dequantize() == o.dequantize());
}
