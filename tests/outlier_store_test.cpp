// A researcher's own outlier store, written outside the library (issue #16/#17: policies
// carry their behaviour). `wide_sparse_outliers` is SpQR's CSR with uint32 column indices,
// for matrices wider than sparse_outliers' 65536 columns (a 128k-vocabulary output head).
// It is one tag plus one outlier_store<> specialization; packed_matrix's dequantize,
// bits_per_weight, the CPU GEMV (every ISA path) and the float64 reference kernel then use it
// without a line changed in the library. Checked against a float64 computation by hand.
#include <lowbit/kernel/cpu/reference.hpp>
#include <lowbit/kernel/gemv.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string_view>
#include <vector>

#include "lowbit_catch.hpp"

struct wide_sparse_outliers {
  static constexpr const char* name = "wide_sparse_outliers";
  static constexpr bool is_outlier_store = true;
};

template <>
struct lowbit::outlier_store<wide_sparse_outliers> {
  static constexpr const char* name = wide_sparse_outliers::name;
  static constexpr bool keeps_columns = false, keeps_entries = true;
  std::vector<std::uint32_t> row_ptr, col;
  std::vector<float> values;  // fp32: this store trades bytes for exactness

  void init(index rows, index, std::vector<std::int32_t> weak) {
    detail::require(weak.empty(), "wide_sparse_outliers keeps no weak columns");
    row_ptr.assign(static_cast<std::size_t>(rows) + 1, 0u);
  }
  std::span<const std::int32_t> weak_columns() const { return {}; }
  index sparse_entries() const { return static_cast<index>(col.size()); }
  template <class F>
  void for_each_in_row(index r, F&& f) const {
    for (auto k = row_ptr[static_cast<std::size_t>(r)]; k < row_ptr[static_cast<std::size_t>(r) + 1]; ++k)
      f(static_cast<index>(col[k]), values[k]);
  }
  std::size_t stored_bytes() const { return 4 * (row_ptr.size() + col.size() + values.size()); }
  template <class K>
  void add_products(const K&, const float* X, const float*, index m, index cols, index r0, index r1, index rows,
                    float* Y) const {
    for (index r = r0; r < r1; ++r)
      for (index i = 0; i < m; ++i)
        for_each_in_row(r, [&](index c, float v) { Y[i * rows + r] += v * X[i * cols + c]; });
  }
};

namespace {
using namespace lowbit;
using idx = lowbit::index;  // <strings.h> has an index() too
using wide = packed_matrix<bits<3>, group<oc, 64>, wide_sparse_outliers>;

wide random_wide(idx rows, idx cols, std::mt19937& rng) {
  wide W(rows, cols);
  std::uniform_int_distribution<int> code(0, wide::max_code);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(cols));
  for (idx r = 0; r < rows; ++r) {
    for (auto& q : row) q = static_cast<std::uint8_t>(code(rng));
    W.set_row_codes(r, row);
  }
  std::uniform_real_distribution<float> sc(0.01f, 0.1f);
  for (idx i = 0; i < W.stats().size(); ++i) W.stats().set(i, grid_params{sc(rng), static_cast<float>(code(rng))});
  auto& o = W.outliers();
  std::uniform_int_distribution<std::uint32_t> where(0, static_cast<std::uint32_t>(cols - 1));
  std::normal_distribution<float> v(0.0f, 2.0f);
  for (idx r = 0; r < rows; ++r) {
    std::vector<std::uint32_t> cs{static_cast<std::uint32_t>(cols - 1), 65536u, 70001u, where(rng)};
    std::sort(cs.begin(), cs.end());
    cs.erase(std::unique(cs.begin(), cs.end()), cs.end());
    for (auto c : cs) {
      o.col.push_back(c);
      o.values.push_back(v(rng));
    }
    o.row_ptr[static_cast<std::size_t>(r) + 1] = static_cast<std::uint32_t>(o.col.size());
  }
  return W;
}
}  // namespace

TEST_CASE("outlier store: a user's store beyond 65536 columns works through dequantize, bits and every GEMV path") {
  const idx rows = 5, cols = 80000;  // wider than sparse_outliers' uint16 indices reach
  CHECK_THROWS_WITH((packed_matrix<bits<3>, group<oc, 64>, sparse_outliers>(rows, cols)),
                    Catch::Contains("exceed 65536"));
  std::mt19937 rng(7);
  const wide W = random_wide(rows, cols, rng);
  const auto& o = W.outliers();

  // Dequantize: the low-bit grid (decoded here by hand, in float64) plus the stored values.
  const Eigen::MatrixXf D = W.dequantize();
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(cols));
  std::vector<double> x(static_cast<std::size_t>(cols));
  std::normal_distribution<double> nx(0.0, 1.0);
  for (auto& v : x) v = nx(rng);
  std::vector<double> y_ref(static_cast<std::size_t>(rows), 0.0), mag(static_cast<std::size_t>(rows), 0.0);
  double max_err = 0.0;
  for (idx r = 0; r < rows; ++r) {
    W.unpack_row_codes(r, codes);
    std::vector<double> w(static_cast<std::size_t>(cols));
    for (idx c = 0; c < cols; ++c) {
      const grid_params p = W.params(r, c);
      w[static_cast<std::size_t>(c)] = double(p.scale) * (double(codes[static_cast<std::size_t>(c)]) - double(p.zero));
    }
    for (auto k = o.row_ptr[static_cast<std::size_t>(r)]; k < o.row_ptr[static_cast<std::size_t>(r) + 1]; ++k)
      w[o.col[k]] += double(o.values[k]);
    for (idx c = 0; c < cols; ++c) {
      max_err = std::max(max_err, std::abs(double(D(r, c)) - w[static_cast<std::size_t>(c)]));
      y_ref[static_cast<std::size_t>(r)] += w[static_cast<std::size_t>(c)] * x[static_cast<std::size_t>(c)];
      mag[static_cast<std::size_t>(r)] += std::abs(w[static_cast<std::size_t>(c)] * x[static_cast<std::size_t>(c)]);
    }
  }
  CHECK(max_err < 1e-5);
  // The outliers really sit beyond column 65535 (row 0: 65536, 70001, 79999 and one random).
  CHECK(std::count(o.col.begin(), o.col.begin() + o.row_ptr[1], 65536u) == 1);
  CHECK(std::count(o.col.begin(), o.col.begin() + o.row_ptr[1], 79999u) == 1);

  // Every stored byte is counted.
  const std::size_t store_bytes = 4 * (o.row_ptr.size() + o.col.size() + o.values.size());
  CHECK(W.stored_bytes() == W.codes().size() + W.stats().stored_bytes() + store_bytes);
  CHECK(W.bits_per_weight() == Approx(8.0 * double(W.stored_bytes()) / double(rows * cols)));

  // GEMV: the float64 reference kernel, the dispatched CPU kernel and every ISA table.
  std::vector<float> xf(x.begin(), x.end()), y(static_cast<std::size_t>(rows));
  auto check = [&](std::string_view what) {
    for (idx r = 0; r < rows; ++r) {
      INFO(what << " row " << r);
      CHECK(std::abs(double(y[static_cast<std::size_t>(r)]) - y_ref[static_cast<std::size_t>(r)]) <=
            1e-5 * mag[static_cast<std::size_t>(r)] + 1e-4);
    }
  };
  kernel::reference::gemv(W, std::span<const float>(xf), std::span<float>(y));
  check("reference");
  for (const kernel::cpu::kernel_table* K : kernel::cpu::runnable_tables())
    for (activations a : {activations::fp32, activations::int8}) {
      std::fill(y.begin(), y.end(), -1.0f);
      kernel::cpu::gemm_options opt;
      opt.table = K;
      opt.act = a;
      gemm(W, xf, y, 1, opt);
      if (a == activations::fp32) check(kernel::cpu::isa_name(K->id));
      else {
        // int8 activations: the store's fp32 term is exact, the low-bit part carries x's rounding.
        for (idx r = 0; r < rows; ++r)
          CHECK(std::abs(double(y[static_cast<std::size_t>(r)]) - y_ref[static_cast<std::size_t>(r)]) <=
                2e-2 * mag[static_cast<std::size_t>(r)]);
      }
    }
}

TEST_CASE("outlier store: the built-in stores name themselves and say what they keep") {
  STATIC_REQUIRE(std::string_view(outlier_store<no_outliers>::name) == "no_outliers");
  STATIC_REQUIRE(outlier_store<dense_columns>::keeps_columns);
  STATIC_REQUIRE(!outlier_store<dense_columns>::keeps_entries);
  STATIC_REQUIRE(outlier_store<sparse_outliers>::keeps_entries);
  STATIC_REQUIRE(OutlierStorage<outlier_store<wide_sparse_outliers>>);
  CHECK(known_outlier_stores::names() == "no_outliers, dense_columns, sparse_outliers");
  bool seen = false;
  CHECK(known_outlier_stores::visit("sparse_outliers", [&]<class O>() { seen = std::is_same_v<O, sparse_outliers>; }));
  CHECK(seen);
  CHECK_FALSE(known_outlier_stores::visit("wide_sparse_outliers", []<class>() {}));
}
