// RPTQ (method/rptq.hpp): channel range statistics, the k-means reorder (contiguous,
// deterministic, per head), per-cluster activation grids, folding the reorder into
// neighbouring layers (float network unchanged), and the payoff: clustered activation
// quantization beats per-tensor quantization on channel-varying activations.
#include <lowbit/rptq.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "lowbit_catch.hpp"
#include "test_data.hpp"

using idx = lowbit::index;
namespace rptq = lowbit::rptq;

namespace {

// Activations [tokens x channels] whose channel c has its own scale and offset: scales
// log-uniform over [0.05, 20] (LLM activations span orders of magnitude per channel).
// Values are bounded (uniform in shift ± scale) so that calibration sees each channel's
// real range and held-out tokens are not clipped by static ranges.
struct channel_profile {
  std::vector<float> scale, shift;
};
channel_profile make_profile(idx C, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(std::log(0.05f), std::log(20.0f)), s(-0.5f, 0.5f);
  channel_profile p;
  for (idx c = 0; c < C; ++c) {
    p.scale.push_back(std::exp(u(rng)));
    p.shift.push_back(p.scale.back() * s(rng));
  }
  return p;
}
Eigen::MatrixXf sample(const channel_profile& p, idx tokens, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> n(-1.0f, 1.0f);
  const idx C = static_cast<idx>(p.scale.size());
  Eigen::MatrixXf X(tokens, C);
  for (idx t = 0; t < tokens; ++t)
    for (idx c = 0; c < C; ++c)
      X(t, c) = p.shift[static_cast<std::size_t>(c)] + p.scale[static_cast<std::size_t>(c)] * n(rng);
  return X;
}

std::vector<float> row(const Eigen::MatrixXf& X, idx t) {
  std::vector<float> v(static_cast<std::size_t>(X.cols()));
  for (idx c = 0; c < X.cols(); ++c) v[static_cast<std::size_t>(c)] = X(t, c);
  return v;
}

std::vector<float> gather(const std::vector<float>& v, const rptq::channel_reorder& r) { return rptq::permute(v, r); }

// Relative output error of W · Q(x) against W · x over the tokens of X, with the reorder r
// and the grid g (W in original column order; the reorder is folded into its columns).
double output_error(const Eigen::MatrixXf& W, const Eigen::MatrixXf& X, const rptq::channel_reorder& r,
                    const lowbit::cluster_activation_grid& g) {
  const Eigen::MatrixXf Wr = rptq::permute_columns(lowbit::to_view(W), r);
  double num = 0, den = 0;
  for (idx t = 0; t < X.rows(); ++t) {
    const std::vector<float> x = row(X, t);
    const std::vector<float> xq = g.fake_quantize(gather(x, r));
    const Eigen::VectorXf y = W * Eigen::Map<const Eigen::VectorXf>(x.data(), static_cast<idx>(x.size()));
    const Eigen::VectorXf yq = Wr * Eigen::Map<const Eigen::VectorXf>(xq.data(), static_cast<idx>(xq.size()));
    num += (y - yq).squaredNorm();
    den += y.squaredNorm();
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("rptq: channel ranges over batches of any size, and EMA as in RPTQ") {
  Eigen::MatrixXf a(2, 3), b(1, 3), c(3, 3);
  a << 1, -2, 0,   //
      3, 5, 0.5;
  b << -1, 0, 9;
  c << 0, 0, 0,  //
      2, 1, 1,   //
      0.5, -7, 2;
  rptq::channel_ranges mm(3);
  mm.observe(a);
  mm.observe(b);
  mm.observe(c);
  CHECK(mm.batches() == 3);
  CHECK(std::vector<float>(mm.min().begin(), mm.min().end()) == std::vector<float>{-1, -7, 0});
  CHECK(std::vector<float>(mm.max().begin(), mm.max().end()) == std::vector<float>{3, 5, 9});
  // EMA (momentum 0.99): batch 1 initialises, then r = 0.99 r + 0.01 batch_range.
  rptq::channel_ranges ema(3, rptq::range_metric::ema);
  ema.observe(a);
  ema.observe(b);
  CHECK(ema.min()[0] == Approx(0.99 * 1 + 0.01 * -1));
  CHECK(ema.max()[2] == Approx(0.99 * 0.5 + 0.01 * 9));
  CHECK(ema.min()[1] == Approx(0.99 * -2 + 0.01 * 0));

  Eigen::MatrixXf bad = a;
  bad(1, 2) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(mm.observe(bad), lowbit::error);
  CHECK_THROWS_AS(mm.observe(Eigen::MatrixXf(Eigen::MatrixXf::Zero(2, 4))), lowbit::error);
  CHECK_THROWS_AS(rptq::channel_ranges(0), lowbit::error);
  rptq::channel_ranges none(3);
  CHECK_THROWS_AS(rptq::cluster_channels(none), lowbit::error);
}

TEST_CASE("rptq: the reorder is a permutation with contiguous clusters whose grid covers its members") {
  const idx C = 96;
  const auto prof = make_profile(C, 1);
  rptq::channel_ranges ranges(C);
  for (unsigned b = 0; b < 3; ++b) ranges.observe(sample(prof, 16 + 8 * b, 10 + b));
  rptq::reorder_options opt;
  opt.clusters = 8;
  const auto r = rptq::cluster_channels(ranges, opt);
  REQUIRE(r.channels() == C);
  CHECK(r.clusters() == 8);
  std::vector<std::int32_t> sorted = r.perm;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int32_t> iota(static_cast<std::size_t>(C));
  std::iota(iota.begin(), iota.end(), 0);
  CHECK(sorted == iota);
  const auto inv = r.inverse();
  for (idx i = 0; i < C; ++i) CHECK(inv[static_cast<std::size_t>(r.perm[static_cast<std::size_t>(i)])] == i);
  // Clusters are exactly k-means' clusters, contiguous: recompute the labels and check.
  std::vector<float> pts;
  for (idx c = 0; c < C; ++c) {
    pts.push_back(ranges.max()[static_cast<std::size_t>(c)]);
    pts.push_back(ranges.min()[static_cast<std::size_t>(c)]);
  }
  const auto km = lowbit::kmeans(lowbit::row_major(pts.data(), C, 2), 8);
  for (idx k = 0; k < r.clusters(); ++k) {
    const int label = km.labels[static_cast<std::size_t>(r.perm[static_cast<std::size_t>(r.offsets[static_cast<std::size_t>(k)])])];
    for (idx i = r.offsets[static_cast<std::size_t>(k)]; i < r.offsets[static_cast<std::size_t>(k) + 1]; ++i)
      CHECK(km.labels[static_cast<std::size_t>(r.perm[static_cast<std::size_t>(i)])] == label);
    // Channels keep their original order inside a cluster.
    for (idx i = r.offsets[static_cast<std::size_t>(k)] + 1; i < r.offsets[static_cast<std::size_t>(k) + 1]; ++i)
      CHECK(r.perm[static_cast<std::size_t>(i - 1)] < r.perm[static_cast<std::size_t>(i)]);
  }
  // Each cluster's grid represents its members' whole calibration range (to half a step).
  for (int bits : {8, 4, 3}) {
    const auto g = rptq::activation_grid(ranges, r, bits);
    REQUIRE(g.clusters() == r.clusters());
    for (idx k = 0; k < g.clusters(); ++k) {
      const auto p = g.params[static_cast<std::size_t>(k)];
      const float lo = p.scale * (0.0f - p.zero), hi = p.scale * (static_cast<float>(g.max_code()) - p.zero);
      for (idx i = g.offsets[static_cast<std::size_t>(k)]; i < g.offsets[static_cast<std::size_t>(k) + 1]; ++i) {
        const auto ch = static_cast<std::size_t>(r.perm[static_cast<std::size_t>(i)]);
        CHECK(ranges.min()[ch] >= lo - 0.5f * p.scale * 1.0001f);
        CHECK(ranges.max()[ch] <= hi + 0.5f * p.scale * 1.0001f);
      }
    }
  }
  // Deterministic: again, and with one thread.
  lowbit::set_num_threads(1);
  const auto r1 = rptq::cluster_channels(ranges, opt);
  lowbit::set_num_threads(2);
  const auto r2 = rptq::cluster_channels(ranges, opt);
  CHECK(r1.perm == r.perm);
  CHECK(r2.perm == r.perm);
  CHECK(r1.offsets == r.offsets);
}

TEST_CASE("rptq: per-head clustering never moves a channel out of its head") {
  const idx C = 64, heads = 4;
  rptq::channel_ranges ranges(C);
  ranges.observe(sample(make_profile(C, 3), 32, 4));
  rptq::reorder_options opt;
  opt.clusters = 4;
  opt.heads = heads;
  const auto r = rptq::cluster_channels(ranges, opt);
  CHECK(r.clusters() == heads * 4);
  for (idx i = 0; i < C; ++i) CHECK(r.perm[static_cast<std::size_t>(i)] / (C / heads) == i / (C / heads));
  opt.heads = 5;
  CHECK_THROWS_AS(rptq::cluster_channels(ranges, opt), lowbit::error);
}

TEST_CASE("rptq: bad cluster counts throw lowbit::error") {
  rptq::channel_ranges ranges(8);
  ranges.observe(sample(make_profile(8, 5), 4, 6));
  rptq::reorder_options opt;
  opt.clusters = 0;
  CHECK_THROWS_AS(rptq::cluster_channels(ranges, opt), lowbit::error);
  opt.clusters = 9;
  CHECK_THROWS_AS(rptq::cluster_channels(ranges, opt), lowbit::error);
  opt.clusters = 8;
  CHECK_NOTHROW(rptq::cluster_channels(ranges, opt));
  CHECK_THROWS_AS(rptq::activation_grid(ranges, rptq::channel_reorder::identity(7), 8), lowbit::error);
  CHECK_THROWS_AS(rptq::activation_grid(ranges, rptq::channel_reorder::identity(8), 1), lowbit::error);
}

TEST_CASE("rptq: folding the reorder leaves the float network unchanged (RMSNorm -> linear -> ReLU -> linear)") {
  const idx d = 48, h = 80, o = 16;
  const Eigen::MatrixXf X = sample(make_profile(d, 7), 6, 8);
  const Eigen::VectorXf g = Eigen::VectorXf::Random(d);
  const Eigen::MatrixXf W1 = lowbit_test::gaussian(h, d, 9), W2 = lowbit_test::gaussian(o, h, 10);
  const Eigen::VectorXf b1 = Eigen::VectorXf::Random(h);
  // R1-style reorder of the norm output (d channels), R5-style of the hidden (h channels).
  rptq::channel_ranges r_norm(d), r_hid(h);
  r_norm.observe(X);
  r_hid.observe(sample(make_profile(h, 11), 8, 12));
  const auto p1 = rptq::cluster_channels(r_norm, {6, 1, {}});
  const auto p2 = rptq::cluster_channels(r_hid, {8, 1, {}});
  REQUIRE(p1.perm != rptq::channel_reorder::identity(d).perm);

  // Folded parameters: norm weight gathered, W1 columns by p1 and rows (+ bias) by p2, W2 columns by p2.
  const std::vector<float> g_vec(g.data(), g.data() + d), b1_vec(b1.data(), b1.data() + h);
  const std::vector<float> g_p = rptq::permute(g_vec, p1), b1_p = rptq::permute(b1_vec, p2);
  const Eigen::MatrixXf W1_p = rptq::permute_rows(lowbit::to_view(Eigen::MatrixXf(rptq::permute_columns(lowbit::to_view(W1), p1))), p2);
  const Eigen::MatrixXf W2_p = rptq::permute_columns(lowbit::to_view(W2), p2);

  for (idx t = 0; t < X.rows(); ++t) {
    // Reference network, float64.
    const Eigen::VectorXd x = X.row(t).transpose().cast<double>();
    const double rms = std::sqrt(x.squaredNorm() / static_cast<double>(d) + 1e-6);
    const Eigen::VectorXd n = (x / rms).cwiseProduct(g.cast<double>());
    const Eigen::VectorXd hid = (W1.cast<double>() * n + b1.cast<double>()).cwiseMax(0.0);
    const Eigen::VectorXd y = W2.cast<double>() * hid;
    // Reordered network: the norm writes channel perm[i] to position i with the gathered
    // weight (RPTQ's ReorderLayerNorm); the rest needs no gather at all.
    Eigen::VectorXd n_p(d);
    for (idx i = 0; i < d; ++i) n_p(i) = x(p1.perm[static_cast<std::size_t>(i)]) / rms * g_p[static_cast<std::size_t>(i)];
    Eigen::VectorXd hid_p = W1_p.cast<double>() * n_p;
    for (idx i = 0; i < h; ++i) hid_p(i) = std::max(0.0, hid_p(i) + b1_p[static_cast<std::size_t>(i)]);
    const Eigen::VectorXd y_p = W2_p.cast<double>() * hid_p;
    CHECK((y - y_p).norm() <= 1e-12 * y.norm());
  }
  CHECK_THROWS_AS(rptq::permute_columns(lowbit::to_view(W2), p1), lowbit::error);
  CHECK_THROWS_AS(rptq::permute(b1_vec, p1), lowbit::error);
}

TEST_CASE("rptq: clustered activation quantization beats per-tensor on channel-varying activations") {
  const idx C = 256, O = 64;
  const auto prof = make_profile(C, 21);
  rptq::channel_ranges ranges(C);
  for (unsigned b = 0; b < 4; ++b) ranges.observe(sample(prof, 32, 100 + b));
  const Eigen::MatrixXf X_eval = sample(prof, 24, 999);  // held-out tokens
  const Eigen::MatrixXf W = lowbit_test::gaussian(O, C, 22);
  rptq::reorder_options opt;
  opt.clusters = 16;
  const auto r = rptq::cluster_channels(ranges, opt);
  const auto id = rptq::channel_reorder::identity(C);
  for (int bits : {8, 4, 3}) {
    const double e_cluster = output_error(W, X_eval, r, rptq::activation_grid(ranges, r, bits));
    const double e_tensor = output_error(W, X_eval, id, rptq::activation_grid(ranges, id, bits));
    INFO("A" << bits << ": clustered " << e_cluster << " vs per-tensor " << e_tensor);
    CHECK(e_cluster < 0.5 * e_tensor);
  }
  // Through the integer path (W8, so the weight error stays small): same conclusion.
  const Eigen::MatrixXf Wr = rptq::permute_columns(lowbit::to_view(W), r);
  const auto q_cluster = lowbit::wxa_matrix::quantize(lowbit::to_view(Wr), 8, rptq::activation_grid(ranges, r, 4));
  const auto q_tensor = lowbit::wxa_matrix::quantize(lowbit::to_view(W), 8, rptq::activation_grid(ranges, id, 4));
  double n_c = 0, n_t = 0, den = 0;
  for (idx t = 0; t < X_eval.rows(); ++t) {
    const std::vector<float> x = row(X_eval, t), xr = gather(x, r);
    const Eigen::VectorXf y = W * Eigen::Map<const Eigen::VectorXf>(x.data(), C);
    std::vector<float> yc(static_cast<std::size_t>(O)), yt(static_cast<std::size_t>(O));
    q_cluster.gemv(xr, yc);
    q_tensor.gemv(x, yt);
    n_c += (y - Eigen::Map<const Eigen::VectorXf>(yc.data(), O)).squaredNorm();
    n_t += (y - Eigen::Map<const Eigen::VectorXf>(yt.data(), O)).squaredNorm();
    den += y.squaredNorm();
  }
  INFO("W8A4 integer path: clustered " << std::sqrt(n_c / den) << " vs per-tensor " << std::sqrt(n_t / den));
  CHECK(n_c < 0.25 * n_t);
}

TEST_CASE("rptq: Hessian of the quantized inputs") {
  const idx C = 40;
  const auto prof = make_profile(C, 31);
  const Eigen::MatrixXf X = sample(prof, 50, 32);
  rptq::channel_ranges ranges(C);
  ranges.observe(X);
  const auto r = rptq::cluster_channels(ranges, {4, 1, {}});
  const auto g = rptq::activation_grid(ranges, r, 4);
  Eigen::MatrixXf Xr(X.rows(), C);
  for (idx c = 0; c < C; ++c) Xr.col(c) = X.col(r.perm[static_cast<std::size_t>(c)]);
  lowbit::hessian H(C);
  rptq::add_quantized_batch(H, lowbit::to_view(Eigen::MatrixXf(Xr.topRows(20))), g);
  rptq::add_quantized_batch(H, lowbit::to_view(Eigen::MatrixXf(Xr.bottomRows(30))), g);
  // Independent: H = 2/N sum_t x_hat x_hatᵀ, in double, with x_hat from the grid directly.
  Eigen::MatrixXd ref = Eigen::MatrixXd::Zero(C, C);
  for (idx t = 0; t < X.rows(); ++t) {
    const std::vector<float> xq = g.fake_quantize(row(Xr, t));
    const Eigen::VectorXd v = Eigen::Map<const Eigen::VectorXf>(xq.data(), C).cast<double>();
    ref += v * v.transpose();
  }
  ref *= 2.0 / static_cast<double>(X.rows());
  CHECK((H.matrix() - ref).norm() <= 1e-9 * ref.norm());
  // It is not the float Hessian (the inputs really are quantized) but close to it at 4 bits.
  const Eigen::MatrixXd Hf = (2.0 / static_cast<double>(X.rows())) * (Xr.cast<double>().transpose() * Xr.cast<double>());
  CHECK((H.matrix() - Hf).norm() > 0.0);
  CHECK((H.matrix() - Hf).norm() < 0.2 * Hf.norm());
}

TEST_CASE("rptq: GPTQ weights on the quantized-input Hessian beat RTN, per (row, cluster) scales") {
  // A linear layer whose inputs have correlated channels with varying ranges.
  const idx C = 128, O = 48, T = 512;
  const auto prof = make_profile(C, 41);
  Eigen::MatrixXf X = sample(prof, T, 42);
  const Eigen::MatrixXf mix = lowbit_test::gaussian(C, C, 43, 0.3f);
  X = X * (Eigen::MatrixXf::Identity(C, C) + mix);  // correlate channels (what GPTQ exploits)
  rptq::channel_ranges ranges(C);
  ranges.observe(X);
  const auto r = rptq::cluster_channels(ranges, {8, 1, {}});
  const auto g = rptq::activation_grid(ranges, r, 8);
  Eigen::MatrixXf Xr(T, C);
  for (idx c = 0; c < C; ++c) Xr.col(c) = X.col(r.perm[static_cast<std::size_t>(c)]);
  const Eigen::MatrixXf W = lowbit_test::gaussian(O, C, 44);
  const Eigen::MatrixXf Wr = rptq::permute_columns(lowbit::to_view(W), r);
  lowbit::hessian H(C);
  rptq::add_quantized_batch(H, lowbit::to_view(Xr), g);
  const auto q_rtn = rptq::rtn_weights(lowbit::to_view(Wr), 3, g);
  const auto q_gptq = rptq::gptq_weights(lowbit::to_view(Wr), 3, g, H);
  // Same stats (fitted once on the original weights), different codes.
  for (idx s = 0; s < q_gptq.segment_count(); ++s) CHECK(q_gptq.weight_params(5, s).scale == q_rtn.weight_params(5, s).scale);
  CHECK(q_gptq.segment_count() == r.clusters());
  // Output error of the integer path on the calibration tokens: W x vs W_hat Q_A(x).
  auto err = [&](const lowbit::wxa_matrix& q) {
    double num = 0, den = 0;
    std::vector<float> y(static_cast<std::size_t>(O));
    for (idx t = 0; t < T; t += 4) {
      const std::vector<float> x = row(Xr, t);
      q.gemv(x, y);
      const Eigen::VectorXf ref = Wr * Eigen::Map<const Eigen::VectorXf>(x.data(), C);
      num += (ref - Eigen::Map<const Eigen::VectorXf>(y.data(), O)).squaredNorm();
      den += ref.squaredNorm();
    }
    return std::sqrt(num / den);
  };
  const double e_rtn = err(q_rtn), e_gptq = err(q_gptq);
  INFO("W3A8 output error: RTN " << e_rtn << ", GPTQ " << e_gptq);
  CHECK(e_gptq < 0.8 * e_rtn);
  // The GPTQ matrix runs on the same exact integer path.
  std::vector<float> x = row(Xr, 1), y(static_cast<std::size_t>(O));
  q_gptq.gemv(x, y);
  const Eigen::VectorXf ref = q_gptq.dequantize() * Eigen::Map<const Eigen::VectorXf>(g.fake_quantize(x).data(), C);
  CHECK((ref - Eigen::Map<const Eigen::VectorXf>(y.data(), O)).norm() <= 1e-5 * ref.norm());
}
