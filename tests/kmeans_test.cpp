// Deterministic k-means (method/kmeans.hpp): hand-worked clusters, reproducibility (twice,
// and with 1 or 2 threads), the local optimum property, and errors on bad input.
#include <lowbit/method/kmeans.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "lowbit_catch.hpp"

using idx = lowbit::index;

namespace {

// Points scattered around `centres` (each row one centre), `per` points each, interleaved.
std::vector<float> blobs(const std::vector<std::vector<float>>& centres, int per, float spread, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-spread, spread);
  std::vector<float> pts;
  for (int i = 0; i < per; ++i)
    for (const auto& c : centres)
      for (float v : c) pts.push_back(v + u(rng));
  return pts;
}

}  // namespace

TEST_CASE("kmeans: hand-worked example with three obvious clusters") {
  // (max, min) points: three tight groups; the answer is clear without any algorithm.
  const std::vector<float> pts = {
      1.0f, -1.0f,  1.2f, -0.8f,  0.8f, -1.2f,    // group A around (1, -1)
      10.0f, -10.0f, 10.0f, -9.0f,                // group B around (10, -9.5)
      3.0f, 2.0f,  3.0f, 2.0f,  3.0f, 2.0f, 3.0f, 2.0f,  // group C: four identical points (3, 2)
  };
  const auto km = lowbit::kmeans(lowbit::row_major(pts.data(), 9, 2), 3);
  const auto& l = km.labels;
  REQUIRE(l.size() == 9);
  CHECK((l[0] == l[1] && l[1] == l[2]));
  CHECK(l[3] == l[4]);
  CHECK((l[5] == l[6] && l[6] == l[7] && l[7] == l[8]));
  CHECK(std::set<int>{l[0], l[3], l[5]}.size() == 3);
  CHECK(km.converged);
  // Centres are the group means; the inertia is worked out by hand:
  // A: mean (1, -1): 0 + (0.04 + 0.04) + (0.04 + 0.04) = 0.16;  B: mean (10, -9.5): 0.25 + 0.25;  C: 0.
  CHECK(km.center(l[0], 0) == Approx(1.0).margin(1e-6));
  CHECK(km.center(l[0], 1) == Approx(-1.0).margin(1e-6));
  CHECK(km.center(l[3], 1) == Approx(-9.5).margin(1e-6));
  CHECK(km.center(l[5], 0) == Approx(3.0).margin(1e-6));
  CHECK(km.inertia == Approx(0.66).margin(1e-5));
}

TEST_CASE("kmeans: deterministic, and independent of the thread count") {
  const auto pts = blobs({{0, 0}, {5, 1}, {1, 7}, {9, 9}, {4, -6}}, 60, 2.5f, 11);
  const auto v = lowbit::row_major(pts.data(), static_cast<idx>(pts.size() / 2), 2);
  lowbit::set_num_threads(2);
  const auto a = lowbit::kmeans(v, 5);
  const auto b = lowbit::kmeans(v, 5);
  lowbit::set_num_threads(1);
  const auto c = lowbit::kmeans(v, 5);
  lowbit::set_num_threads(2);
  CHECK(a.labels == b.labels);
  CHECK(a.labels == c.labels);
  CHECK(a.centers == c.centers);
  CHECK(a.inertia == c.inertia);
  // Another seed is allowed to differ but must reach an equally good or similar optimum.
  lowbit::kmeans_options o;
  o.seed = 12345;
  const auto d = lowbit::kmeans(v, 5, o);
  CHECK(d.inertia <= 1.5 * a.inertia);
}

TEST_CASE("kmeans: converged result is a Lloyd fixed point and beats a single init") {
  const auto pts = blobs({{0, 0}, {3, 3}, {6, 0}, {3, -3}}, 40, 2.0f, 5);
  const idx n = static_cast<idx>(pts.size() / 2);
  const auto km = lowbit::kmeans(lowbit::row_major(pts.data(), n, 2), 4);
  REQUIRE(km.converged);
  // Every point is nearest to its own centre, and each centre is its members' mean.
  std::vector<double> sum(8, 0.0), cnt(4, 0.0);
  double inertia = 0.0;
  for (idx i = 0; i < n; ++i) {
    const int own = km.labels[static_cast<std::size_t>(i)];
    auto d2 = [&](int c) {
      const double dx = pts[static_cast<std::size_t>(2 * i)] - km.center(c, 0), dy = pts[static_cast<std::size_t>(2 * i + 1)] - km.center(c, 1);
      return dx * dx + dy * dy;
    };
    for (int c = 0; c < 4; ++c) CHECK(d2(own) <= d2(c) + 1e-12);
    inertia += d2(own);
    sum[static_cast<std::size_t>(2 * own)] += pts[static_cast<std::size_t>(2 * i)];
    sum[static_cast<std::size_t>(2 * own + 1)] += pts[static_cast<std::size_t>(2 * i + 1)];
    cnt[static_cast<std::size_t>(own)] += 1.0;
  }
  for (int c = 0; c < 4; ++c) {
    REQUIRE(cnt[static_cast<std::size_t>(c)] > 0);
    CHECK(km.center(c, 0) == Approx(sum[static_cast<std::size_t>(2 * c)] / cnt[static_cast<std::size_t>(c)]).margin(1e-9));
  }
  CHECK(km.inertia == Approx(inertia).epsilon(1e-12));
  lowbit::kmeans_options one;
  one.n_init = 1;
  for (std::uint64_t s = 0; s < 5; ++s) {
    one.seed = s;
    CHECK(km.inertia <= lowbit::kmeans(lowbit::row_major(pts.data(), n, 2), 4, one).inertia + 1e-9);
  }
}

TEST_CASE("kmeans: k equal to the number of points, and duplicate points") {
  const std::vector<float> pts = {1, 1, 1, 1, 2, 2, 5, 5};
  const auto km = lowbit::kmeans(lowbit::row_major(pts.data(), 4, 2), 4);
  CHECK(km.inertia == 0.0);
  // Two identical points and three clusters: some cluster holds both copies, no crash.
  const auto k3 = lowbit::kmeans(lowbit::row_major(pts.data(), 4, 2), 3);
  CHECK(k3.inertia == 0.0);
  CHECK(k3.labels[0] == k3.labels[1]);
}

TEST_CASE("kmeans: bad input throws lowbit::error") {
  std::vector<float> pts = {0, 0, 1, 1, 2, 2};
  const auto v = lowbit::row_major(pts.data(), 3, 2);
  CHECK_THROWS_AS(lowbit::kmeans(v, 0), lowbit::error);
  CHECK_THROWS_AS(lowbit::kmeans(v, 4), lowbit::error);
  lowbit::kmeans_options o;
  o.n_init = 0;
  CHECK_THROWS_AS(lowbit::kmeans(v, 2, o), lowbit::error);
  pts[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(lowbit::kmeans(v, 2), lowbit::error);
}
