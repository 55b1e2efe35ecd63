// GPTQ: the optimised blocked loop against a plain float64 column loop written here from the
// paper's equations; output error against RTN on correlated inputs with outlier channels;
// act-order + static groups in natural order; thread-count independence; bad inputs.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

#include "lowbit/gptq.hpp"
#include "lowbit_catch.hpp"
#include "test_data.hpp"

namespace {

using lowbit::axis;

struct reference_result {
  Eigen::MatrixXd Q;  // the stored (dequantized) weights, natural order
  double loss = 0.0;
};

// Plain GPTQ, unblocked, float64: U from an explicit inverse and Cholesky (as the reference
// code: cholesky_inverse then cholesky(upper)), every update applied to all later columns
// at once. G = 0: per channel. Quantization uses the library's grid with the packed type's
// storage rounding (the shared quantizer, tested in rtn_test).
template <class PM, class Search = lowbit::minmax>
reference_result reference_gptq(const Eigen::MatrixXf& W0, const Eigen::MatrixXd& H0, bool act_order,
                                bool static_groups, double percdamp = 0.01) {
  const Eigen::Index rows = W0.rows(), n = W0.cols();
  const axis ax = PM::grouping::group_axis;
  const Eigen::Index G = PM::grouping::size == 0 ? (ax == axis::oc ? n : rows) : PM::grouping::size;
  const lowbit::grid_spec spec = lowbit::grid_spec_for<PM>();
  const int maxq = spec.maxq();
  Eigen::MatrixXd H = H0;
  Eigen::MatrixXf Wnat = W0;
  for (Eigen::Index j = 0; j < n; ++j)
    if (H(j, j) == 0.0) {
      H(j, j) = 1.0;
      Wnat.col(j).setZero();
    }
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (act_order) std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return H(a, a) > H(b, b); });
  Eigen::MatrixXd Wp(rows, n), Hp(n, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    Wp.col(i) = Wnat.col(order[static_cast<std::size_t>(i)]).cast<double>();
    for (Eigen::Index j = 0; j < n; ++j) Hp(i, j) = H(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  Hp.diagonal().array() += percdamp * Hp.diagonal().mean();
  const Eigen::MatrixXd Hinv = Hp.inverse();
  const Eigen::MatrixXd U = Hinv.llt().matrixU();

  auto fit = [&](std::vector<float> g) { return lowbit::fit_group<Search>({g.data(), static_cast<lowbit::index>(g.size()), 1}, spec); };
  // Static stats: per (row, group) or (row group, column) from the dead-zeroed original weights.
  const bool oc_static = ax == axis::oc && (static_groups || G >= n || act_order);
  const bool ic_static = ax == axis::ic && static_groups;
  Eigen::Matrix<lowbit::grid_params, Eigen::Dynamic, Eigen::Dynamic> stats(rows, n);  // per weight
  if (oc_static)
    for (Eigen::Index r = 0; r < rows; ++r)
      for (Eigen::Index c0 = 0; c0 < n; c0 += G) {
        std::vector<float> g;
        for (Eigen::Index c = c0; c < std::min(n, c0 + G); ++c) g.push_back(Wnat(r, c));
        const auto p = fit(g);
        for (Eigen::Index c = c0; c < std::min(n, c0 + G); ++c) stats(r, c) = p;
      }
  if (ic_static)
    for (Eigen::Index c = 0; c < n; ++c)
      for (Eigen::Index r0 = 0; r0 < rows; r0 += G) {
        std::vector<float> g;
        for (Eigen::Index r = r0; r < std::min(rows, r0 + G); ++r) g.push_back(Wnat(r, c));
        const auto p = fit(g);
        for (Eigen::Index r = r0; r < std::min(rows, r0 + G); ++r) stats(r, c) = p;
      }

  reference_result out;
  out.Q.resize(rows, n);
  for (Eigen::Index pos = 0; pos < n; ++pos) {
    const Eigen::Index col = order[static_cast<std::size_t>(pos)];
    if (ax == axis::oc && !oc_static && pos % G == 0)
      for (Eigen::Index r = 0; r < rows; ++r) {
        std::vector<float> g;
        for (Eigen::Index c = pos; c < std::min(n, pos + G); ++c) g.push_back(static_cast<float>(Wp(r, c)));
        const auto p = fit(g);
        for (Eigen::Index c = pos; c < std::min(n, pos + G); ++c) stats(r, c) = p;
      }
    if (ax == axis::ic && !ic_static)
      for (Eigen::Index r0 = 0; r0 < rows; r0 += G) {
        std::vector<float> g;
        for (Eigen::Index r = r0; r < std::min(rows, r0 + G); ++r) g.push_back(static_cast<float>(Wp(r, pos)));
        const auto p = fit(g);
        for (Eigen::Index r = r0; r < std::min(rows, r0 + G); ++r) stats(r, col) = p;
      }
    const double d = U(pos, pos);
    Eigen::VectorXd e(rows);
    for (Eigen::Index r = 0; r < rows; ++r) {
      const lowbit::grid_params p = stats(r, col);
      const double q = lowbit::decode(lowbit::encode(static_cast<float>(Wp(r, pos)), p, maxq), p);
      out.Q(r, col) = q;
      e(r) = (Wp(r, pos) - q) / d;
      out.loss += 0.5 * e(r) * e(r);
    }
    for (Eigen::Index k = pos + 1; k < n; ++k) Wp.col(k) -= e * U(pos, k);
  }
  return out;
}

Eigen::MatrixXd hessian_of(const Eigen::MatrixXf& X) {
  lowbit::hessian H(X.rows());
  H.add_batch(X);
  return H.matrix();
}

double output_error(const Eigen::MatrixXf& W, const Eigen::MatrixXd& W_hat, const Eigen::MatrixXf& X) {
  return ((W.cast<double>() - W_hat) * X.cast<double>()).squaredNorm();
}

// Share of entries equal to the reference within tol (a rounding tie decided differently by
// fp32 vs fp64 arithmetic changes one code and, through the updates, a few later ones).
double agreement(const Eigen::MatrixXf& a, const Eigen::MatrixXd& b, double tol = 1e-4) {
  Eigen::Index same = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (std::abs(static_cast<double>(a.data()[i]) - b.data()[i]) <= tol * (1.0 + std::abs(b.data()[i]))) ++same;
  return static_cast<double>(same) / static_cast<double>(a.size());
}

template <class Method>
void check_against_reference(const Eigen::MatrixXf& W, const Eigen::MatrixXd& H, const lowbit::gptq_options& opt) {
  const auto q = lowbit::quantize<Method>(W, H, opt);
  using PM = typename Method::packed_type;
  const auto ref = reference_gptq<PM, typename Method::policies::search>(W, H, opt.act_order, opt.static_groups, opt.percdamp);
  INFO("loss " << q.report.loss << " vs reference " << ref.loss << "; " << q.report.notes);
  CHECK(agreement(q.dequantize(), ref.Q) >= 0.999);
  CHECK(std::abs(q.report.loss - ref.loss) <= 1e-4 * ref.loss);
}

}  // namespace

TEST_CASE("gptq: the blocked loop agrees with a plain float64 column loop", "[gptq][reference]") {
  using namespace lowbit;
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(48, 160, 21);
  const Eigen::MatrixXd H = hessian_of(lowbit_test::activations(160, 600, 22));
  gptq_options small_blocks;
  small_blocks.blocksize = 32;  // several lazy updates, groups inside and across blocks
  SECTION("4 bits per channel") { check_against_reference<gptq<bits<4>, group<oc, per_channel>>>(W, H, {}); }
  SECTION("3 bits, groups of 32, blocks of 32") { check_against_reference<gptq<bits<3>, group<oc, 32>>>(W, H, small_blocks); }
  SECTION("4 bits, groups of 16 inside blocks of 128") { check_against_reference<gptq<bits<4>, group<oc, 16>>>(W, H, {}); }
  SECTION("symmetric, fp32 stats, mse clip") {
    check_against_reference<gptq<bits<4>, group<oc, 32>, symmetric, fp32_stats, mse_clip<>>>(W, H, small_blocks);
  }
  SECTION("per-IC groups of 16 (AdaDim-GPTQ), act order") {
    gptq_options o;
    o.act_order = true;
    o.blocksize = 64;
    check_against_reference<gptq<bits<3>, group<ic, 16>>>(W, H, o);
  }
  SECTION("act order + static groups") {
    gptq_options o;
    o.act_order = true;
    o.static_groups = true;
    o.blocksize = 32;
    check_against_reference<gptq<bits<4>, group<oc, 32>>>(W, H, o);
  }
  SECTION("percdamp 1.0 (SpQR's recipe)") {
    gptq_options o;
    o.percdamp = 1.0;
    check_against_reference<gptq<bits<2>, group<oc, 32>>>(W, H, o);
  }
}

TEST_CASE("gptq: lower output error than RTN on correlated inputs with outlier channels", "[gptq]") {
  using namespace lowbit;
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(64, 128, 31);
  const Eigen::MatrixXf X = lowbit_test::activations(128, 2048, 32);
  hessian H(128);
  H.add_batch(X);
  for (int act = 0; act < 2; ++act) {
    gptq_options o;
    o.act_order = act == 1;
    const auto g3 = quantize<gptq<bits<3>, group<oc, per_channel>>>(W, H, o);
    const auto r3 = quantize<rtn<bits<3>, group<oc, per_channel>>>(W);
    const double eg = output_error(W, g3.dequantize().cast<double>(), X);
    const double er = output_error(W, r3.dequantize().cast<double>(), X);
    INFO("act_order " << act << ": gptq " << eg << " rtn " << er);
    CHECK(eg < 0.2 * er);
    const auto g4 = quantize<gptq<bits<4>, group<oc, 32>>>(W, H, o);
    const auto r4 = quantize<rtn<bits<4>, group<oc, 32>>>(W);
    CHECK(output_error(W, g4.dequantize().cast<double>(), X) < 0.2 * output_error(W, r4.dequantize().cast<double>(), X));
    const auto gi = quantize<gptq<bits<3>, group<ic, 16>>>(W, H, o);
    const auto ri = quantize<rtn<bits<3>, group<ic, 16>>>(W);
    CHECK(output_error(W, gi.dequantize().cast<double>(), X) < 0.2 * output_error(W, ri.dequantize().cast<double>(), X));
  }
}

TEST_CASE("gptq: act order + static groups stores natural-order groups", "[gptq][act_order]") {
  using namespace lowbit;
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(24, 96, 41);
  const Eigen::MatrixXd H = hessian_of(lowbit_test::activations(96, 500, 42));
  using M = gptq<bits<4>, group<oc, 32>>;
  gptq_options o;
  o.act_order = true;
  o.static_groups = true;
  o.blocksize = 16;
  const auto q = quantize<M>(W, H, o);
  // Every stored group's stats are the RTN fit of that natural-order group of the original W.
  const auto r = quantize<rtn<bits<4>, group<oc, 32>>>(W);
  for (lowbit::index row = 0; row < 24; ++row)
    for (lowbit::index c = 0; c < 96; c += 32) {
      CHECK(q.params(row, c).scale == r.params(row, c).scale);
      CHECK(q.params(row, c).zero == r.params(row, c).zero);
    }
  // Dequantizing the packed form gives the float64 reference loop's stored weights.
  const auto ref = reference_gptq<M::packed_type>(W, H, true, true);
  CHECK(agreement(q.dequantize(), ref.Q) >= 0.999);
  // Act order without static_groups uses the same static stats (natural-order storage).
  o.static_groups = false;
  const auto q2 = quantize<M>(W, H, o);
  CHECK(q2.dequantize() == q.dequantize());
  CHECK(q2.report.notes.find("static groups") != std::string::npos);
}

TEST_CASE("gptq: results do not depend on the thread count", "[gptq][threads]") {
  using namespace lowbit;
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(1100, 300, 51);
  const Eigen::MatrixXd H = hessian_of(lowbit_test::activations(300, 400, 52));
  auto run = [&](unsigned threads) {
    set_num_threads(threads);
    gptq_options o;
    o.act_order = true;
    return std::make_pair(quantize<gptq<bits<3>, group<oc, 64>, mse_clip<>>>(W, H, o),
                          quantize<gptq<bits<4>, group<ic, 128>>>(W, H, o));
  };
  const auto a = run(1), b = run(3);
  set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
  CHECK(std::equal(a.first.codes().begin(), a.first.codes().end(), b.first.codes().begin()));
  CHECK(a.first.dequantize() == b.first.dequantize());
  CHECK(a.first.report.loss == b.first.report.loss);
  CHECK(std::equal(a.second.codes().begin(), a.second.codes().end(), b.second.codes().begin()));
  CHECK(a.second.dequantize() == b.second.dequantize());
}

TEST_CASE("gptq: dead inputs are zeroed, and the report is filled", "[gptq]") {
  using namespace lowbit;
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(16, 64, 61);
  Eigen::MatrixXf X = lowbit_test::activations(64, 300, 62);
  X.row(5).setZero();
  X.row(40).setZero();
  hessian H(64);
  H.add_batch(X);
  int calls = 0;
  gptq_options o;
  o.blocksize = 16;
  o.progress = [&](lowbit::index done, lowbit::index total) {
    ++calls;
    CHECK(total == 64);
    CHECK(done == 16 * calls);
  };
  const auto q = quantize<gptq<bits<4>, group<oc, 32>>>(W, H, o);
  const Eigen::MatrixXf D = q.dequantize();
  CHECK(D.col(5).isZero(0.0f));
  CHECK(D.col(40).isZero(0.0f));
  CHECK(calls == 4);
  CHECK(q.report.method == "gptq");
  CHECK(q.report.loss > 0.0);
  CHECK(q.report.notes.find("dead_columns=2") != std::string::npos);
  CHECK(q.report.bits_per_weight == q.bits_per_weight());
}

TEST_CASE("gptq: bad inputs throw lowbit::error", "[gptq][errors]") {
  using namespace lowbit;
  using M = gptq<bits<4>, group<oc, 16>>;
  const Eigen::MatrixXf W = lowbit_test::gaussian(8, 32, 71);
  const Eigen::MatrixXd H = hessian_of(lowbit_test::gaussian(32, 100, 72));
  Eigen::MatrixXf Wn = W;
  Wn(2, 3) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(quantize<M>(Wn, H), error);
  Eigen::MatrixXd Hn = H;
  Hn(4, 9) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(quantize<M>(W, Hn), error);
  CHECK_THROWS_AS(quantize<M>(W, Eigen::MatrixXd(H.topLeftCorner(31, 31))), error);  // size mismatch
  CHECK_THROWS_AS(quantize<M>(W, hessian(32)), error);                               // no batches
  Eigen::MatrixXd Hneg = H;
  Hneg(3, 3) = -1.0;
  CHECK_THROWS_AS(quantize<M>(W, Hneg), error);
  Eigen::MatrixXd Hasym = H;
  Hasym(1, 2) += 10.0;
  CHECK_THROWS_AS(quantize<M>(W, Hasym), error);
  // Not positive definite even at percdamp 1.0: I − 5 v vᵀ has eigenvalue −4.
  const Eigen::VectorXd v = Eigen::VectorXd::Constant(32, 1.0 / std::sqrt(32.0));
  const Eigen::MatrixXd Hindef = Eigen::MatrixXd::Identity(32, 32) - 5.0 * v * v.transpose();
  try {
    (void)quantize<M>(W, Hindef);
    FAIL("expected lowbit::error");
  } catch (const error& e) {
    CHECK(std::string(e.what()).find("not positive definite") != std::string::npos);
  }
  // An indefinite H that damping can repair is repaired, and the report says so.
  const Eigen::MatrixXd Hfix = Eigen::MatrixXd::Identity(32, 32) - 1.05 * v * v.transpose();
  const auto q = quantize<M>(W, Hfix);
  CHECK(q.report.notes.find("raised") != std::string::npos);
  gptq_options bad;
  bad.blocksize = 0;
  CHECK_THROWS_AS(quantize<M>(W, H, bad), error);
  bad.blocksize = 128;
  bad.percdamp = -0.1;
  CHECK_THROWS_AS(quantize<M>(W, H, bad), error);
}

TEST_CASE("gptq engine: a caller's column order replaces act order", "[gptq][engine]") {
  using namespace lowbit;
  using PM = gptq<bits<4>, group<oc, 16>>::packed_type;
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(20, 64, 81);
  const Eigen::MatrixXd H = hessian_of(lowbit_test::activations(64, 300, 82));
  auto run = [&](bool act, std::vector<lowbit::index> order) {
    gptq_options o;
    o.act_order = act;
    Eigen::MatrixXf Wn;
    auto p = detail::gptq_prepare(to_view(W), H, {}, o, "test", &Wn, order);
    PM pm(20, 64);
    rtn_fill<minmax>(to_view(Wn), pm);  // static stats
    detail::gptq_grid_hook<PM, minmax> hook(pm, p, true);
    const double loss = detail::gptq_run(p, hook, o);
    hook.store_codes();
    return std::make_pair(pm.dequantize(), loss);
  };
  std::vector<lowbit::index> by_diag(64);
  std::iota(by_diag.begin(), by_diag.end(), 0);
  std::stable_sort(by_diag.begin(), by_diag.end(), [&](lowbit::index a, lowbit::index b) { return H(a, a) > H(b, b); });
  const auto a = run(true, {}), b = run(false, by_diag);
  CHECK(a.first == b.first);
  CHECK(a.second == b.second);
  std::vector<lowbit::index> bad = by_diag;
  bad[3] = bad[4];
  CHECK_THROWS_AS(run(false, bad), error);
  const std::vector<lowbit::index> short_order(by_diag.begin(), by_diag.end() - 1);
  CHECK_THROWS_AS(run(false, short_order), error);
}
