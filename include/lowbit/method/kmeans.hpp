#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Deterministic k-means (Lloyd's algorithm with greedy k-means++ seeding), used by RPTQ to
// cluster activation channels by their (max, min) ranges.
//
// RPTQ (Yuan et al. 2023, `reorder_utils.py`) calls sklearn's KMeans(n_init=10,
// random_state=0): greedy k-means++ seeding (2 + floor(ln k) candidate centres per step,
// keep the one that lowers the potential most), Lloyd iterations, best inertia of 10 runs.
// We do the same with our own random stream, so results are reproducible bit for bit on
// every platform (std:: distributions are implementation-defined; mt19937_64's output is
// not) but are not sklearn's exact labels.
//
// Determinism: every init n draws from its own stream seeded by (seed, n), runs to
// convergence sequentially, and the best inertia wins (ties: the lower init index).
// Inits run in parallel_for, each writing only its own slot, so the result does not
// depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_view.hpp"
#include "lowbit/core/parallel.hpp"

namespace lowbit::inline LOWBIT_ABI {

struct kmeans_options {
  int n_init = 10;            // independent seedings; the lowest inertia is kept (sklearn's n_init)
  int max_iter = 300;         // Lloyd iterations per init (sklearn's default); converged runs stop earlier
  std::uint64_t seed = 0;     // the fixed seed (RPTQ uses random_state=0)
};

struct kmeans_result {
  std::vector<std::int32_t> labels;  // cluster of each point, in [0, k)
  std::vector<double> centers;       // [k x dims] row-major
  double inertia = 0.0;              // sum of squared distances of points to their centre
  int iterations = 0;                // Lloyd iterations of the winning init
  bool converged = false;            // the winning init stopped because no label changed
  index k = 0, dims = 0;
  double center(index c, index d) const { return centers[static_cast<std::size_t>(c * dims + d)]; }
};

namespace detail {

// Uniform double in [0, 1) from the top 53 bits: the same on every platform.
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

inline double squared_distance(const double* a, const double* b, index dims) {
  double s = 0.0;
  for (index d = 0; d < dims; ++d) {
    const double t = a[d] - b[d];
    s += t * t;
  }
  return s;
}

struct kmeans_run {
  std::vector<std::int32_t> labels;
  std::vector<double> centers;
  double inertia = std::numeric_limits<double>::infinity();
  int iterations = 0;
  bool converged = false;
};

// Greedy k-means++ (Arthur & Vassilvitskii 2007; sklearn's `_kmeans_plusplus`): the first
// centre uniformly, each next one the best of `trials` candidates drawn with probability
// proportional to D(x)^2.
inline std::vector<double> kmeanspp_seed(const std::vector<double>& X, index n, index dims, index k,
                                         std::mt19937_64& rng) {
  std::vector<double> C(static_cast<std::size_t>(k * dims));
  const index trials = 2 + static_cast<index>(std::log(static_cast<double>(k)));
  auto point = [&](index i) { return X.data() + i * dims; };
  const index first = std::min<index>(n - 1, static_cast<index>(uniform01(rng) * static_cast<double>(n)));
  std::copy(point(first), point(first) + dims, C.begin());
  std::vector<double> closest(static_cast<std::size_t>(n)), cand(static_cast<std::size_t>(n)),
      best_cand(static_cast<std::size_t>(n)), cumsum(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) closest[static_cast<std::size_t>(i)] = squared_distance(point(i), point(first), dims);
  for (index c = 1; c < k; ++c) {
    double run = 0.0;
    for (index i = 0; i < n; ++i) cumsum[static_cast<std::size_t>(i)] = run += closest[static_cast<std::size_t>(i)];
    index best = -1;
    double best_pot = std::numeric_limits<double>::infinity();
    for (index t = 0; t < trials; ++t) {
      index pick;
      if (run > 0.0) {
        const double r = uniform01(rng) * run;
        pick = std::upper_bound(cumsum.begin(), cumsum.end(), r) - cumsum.begin();
        pick = std::min(pick, n - 1);
      } else {
        // Every point already coincides with a centre (fewer distinct points than k):
        // any choice is as good; take them in order so the result stays deterministic.
        pick = c % n;
      }
      double pot = 0.0;
      for (index i = 0; i < n; ++i)
        pot += cand[static_cast<std::size_t>(i)] =
            std::min(closest[static_cast<std::size_t>(i)], squared_distance(point(i), point(pick), dims));
      if (pot < best_pot) {
        best_pot = pot;
        best = pick;
        best_cand.swap(cand);
      }
    }
    closest.swap(best_cand);
    std::copy(point(best), point(best) + dims, C.begin() + c * dims);
  }
  return C;
}

// Lloyd iterations until no label changes (or max_iter). An empty cluster takes the point
// farthest from its centre (the lowest index among equals), as sklearn relocates them.
inline kmeans_run lloyd(const std::vector<double>& X, index n, index dims, index k, std::vector<double> C,
                        int max_iter) {
  kmeans_run run;
  run.labels.assign(static_cast<std::size_t>(n), -1);
  std::vector<double> dist(static_cast<std::size_t>(n));
  std::vector<double> sums(static_cast<std::size_t>(k * dims));
  std::vector<index> counts(static_cast<std::size_t>(k));
  auto point = [&](index i) { return X.data() + i * dims; };
  for (int it = 0; it < max_iter; ++it) {
    bool changed = false;
    for (index i = 0; i < n; ++i) {
      std::int32_t best = 0;
      double bd = std::numeric_limits<double>::infinity();
      for (index c = 0; c < k; ++c) {
        const double d = squared_distance(point(i), C.data() + c * dims, dims);
        if (d < bd) {
          bd = d;
          best = static_cast<std::int32_t>(c);
        }
      }
      dist[static_cast<std::size_t>(i)] = bd;
      if (run.labels[static_cast<std::size_t>(i)] != best) changed = true;
      run.labels[static_cast<std::size_t>(i)] = best;
    }
    run.iterations = it + 1;
    if (!changed) {
      run.converged = true;
      break;
    }
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (index i = 0; i < n; ++i) {
      const index c = run.labels[static_cast<std::size_t>(i)];
      ++counts[static_cast<std::size_t>(c)];
      for (index d = 0; d < dims; ++d) sums[static_cast<std::size_t>(c * dims + d)] += point(i)[d];
    }
    for (index c = 0; c < k; ++c) {
      if (counts[static_cast<std::size_t>(c)] == 0) {
        const index far = std::max_element(dist.begin(), dist.end()) - dist.begin();
        const index from = run.labels[static_cast<std::size_t>(far)];
        // Move the far point into the empty cluster (its old cluster keeps >= 1 member
        // unless it had only this one, in which case its centre simply moves along).
        --counts[static_cast<std::size_t>(from)];
        for (index d = 0; d < dims; ++d) sums[static_cast<std::size_t>(from * dims + d)] -= point(far)[d];
        counts[static_cast<std::size_t>(c)] = 1;
        for (index d = 0; d < dims; ++d) sums[static_cast<std::size_t>(c * dims + d)] = point(far)[d];
        run.labels[static_cast<std::size_t>(far)] = static_cast<std::int32_t>(c);
        dist[static_cast<std::size_t>(far)] = 0.0;
      }
    }
    for (index c = 0; c < k; ++c)
      if (counts[static_cast<std::size_t>(c)] > 0)
        for (index d = 0; d < dims; ++d)
          C[static_cast<std::size_t>(c * dims + d)] =
              sums[static_cast<std::size_t>(c * dims + d)] / static_cast<double>(counts[static_cast<std::size_t>(c)]);
  }
  run.inertia = 0.0;
  for (index i = 0; i < n; ++i)
    run.inertia += squared_distance(point(i), C.data() + run.labels[static_cast<std::size_t>(i)] * dims, dims);
  run.centers = std::move(C);
  return run;
}

}  // namespace detail

// Clusters the rows of `points` ([n x dims]) into k clusters.
inline kmeans_result kmeans(matrix_view<const float> points, index k, const kmeans_options& opt = {}) {
  require_nonempty(points, "kmeans: points");
  require_finite(points, "kmeans: points");
  const index n = points.rows, dims = points.cols;
  detail::require(k >= 1, "kmeans: k = ", k, " must be >= 1");
  detail::require(k <= n, "kmeans: k = ", k, " exceeds the number of points (", n, ")");
  detail::require(opt.n_init >= 1, "kmeans: n_init = ", opt.n_init, " must be >= 1");
  detail::require(opt.max_iter >= 1, "kmeans: max_iter = ", opt.max_iter, " must be >= 1");

  std::vector<double> X(static_cast<std::size_t>(n * dims));
  for (index i = 0; i < n; ++i)
    for (index d = 0; d < dims; ++d) X[static_cast<std::size_t>(i * dims + d)] = points(i, d);

  std::vector<detail::kmeans_run> runs(static_cast<std::size_t>(opt.n_init));
  parallel_for(opt.n_init, 1, [&](index b, index e) {
    for (index r = b; r < e; ++r) {
      // One stream per init: independent of which thread runs it.
      std::seed_seq seq{static_cast<std::uint32_t>(opt.seed), static_cast<std::uint32_t>(opt.seed >> 32),
                        static_cast<std::uint32_t>(r)};
      std::mt19937_64 rng(seq);
      runs[static_cast<std::size_t>(r)] =
          detail::lloyd(X, n, dims, k, detail::kmeanspp_seed(X, n, dims, k, rng), opt.max_iter);
    }
  });
  std::size_t best = 0;
  for (std::size_t r = 1; r < runs.size(); ++r)
    if (runs[r].inertia < runs[best].inertia) best = r;
  kmeans_result res;
  res.labels = std::move(runs[best].labels);
  res.centers = std::move(runs[best].centers);
  res.inertia = runs[best].inertia;
  res.iterations = runs[best].iterations;
  res.converged = runs[best].converged;
  res.k = k;
  res.dims = dims;
  return res;
}

}  // namespace lowbit
