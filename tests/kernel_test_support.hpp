#pragma once
// Random packed matrices for the kernel tests: codes, stats and outliers drawn directly (not
// through a quantizer), so every code value, zero point and outlier pattern occurs.
#include <lowbit/format/packed_matrix.hpp>

#include <algorithm>
#include <random>
#include <vector>

namespace lowbit_test {

template <class PM>
PM random_packed(lowbit::index rows, lowbit::index cols, lowbit::axis ax, std::uint32_t seed) {
  using namespace lowbit;
  std::mt19937 rng(seed);
  std::vector<std::int32_t> weak;
  if constexpr (std::is_same_v<typename PM::outlier_policy, dense_columns>) {
    std::vector<std::int32_t> all(static_cast<std::size_t>(cols));
    for (lowbit::index c = 0; c < cols; ++c) all[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(c);
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(static_cast<std::size_t>(std::min<lowbit::index>(cols - 1, std::max<lowbit::index>(1, cols / 20))));
    weak = all;
  }
  PM W(rows, cols, ax, weak);
  std::uniform_int_distribution<int> code(0, PM::max_code);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(W.quantized_cols()));
  for (lowbit::index r = 0; r < rows; ++r) {
    for (auto& q : row) q = static_cast<std::uint8_t>(code(rng));
    W.set_row_codes(r, row);
  }
  std::uniform_real_distribution<float> sc(0.01f, 0.1f);
  for (lowbit::index i = 0; i < W.stat_rows() * W.stat_cols(); ++i)
    W.stats().set(i, grid_params{sc(rng), static_cast<float>(code(rng))});
  std::normal_distribution<float> n(0.0f, 0.5f);
  if constexpr (std::is_same_v<typename PM::outlier_policy, dense_columns>) {
    for (auto& v : W.outliers().values) v = half(n(rng));
  }
  if constexpr (std::is_same_v<typename PM::outlier_policy, sparse_outliers>) {
    auto& o = W.outliers();
    std::bernoulli_distribution pick(0.06);
    o.row_ptr.assign(1, 0u);
    for (lowbit::index r = 0; r < rows; ++r) {
      for (lowbit::index c = 0; c < cols; ++c)
        if (pick(rng)) {
          o.col.push_back(static_cast<std::uint16_t>(c));
          o.values.push_back(half(n(rng)));
        }
      o.row_ptr.push_back(static_cast<std::uint32_t>(o.col.size()));
    }
  }
  return W;
}

// sum_c |scale| (maxq + |zero|) |x_c| (+ |outlier| |x|) per row and activation vector: the size
// of the terms a float kernel adds, which bounds its rounding error.
template <class PM>
std::vector<double> magnitude(const PM& W, const std::vector<float>& X, lowbit::index m) {
  using namespace lowbit;
  std::vector<double> out(static_cast<std::size_t>(m * W.rows()), 0.0);
  const auto map = W.quantized_column_map();
  const Eigen::MatrixXf D = W.dequantize();
  for (lowbit::index i = 0; i < m; ++i)
    for (lowbit::index r = 0; r < W.rows(); ++r) {
      double s = 0.0;
      for (lowbit::index qc = 0; qc < W.quantized_cols(); ++qc) {
        const grid_params p = W.params(r, qc);
        s += std::abs(p.scale) * (PM::max_code + std::abs(p.zero)) * std::abs(X[static_cast<std::size_t>(i * W.cols() + map[static_cast<std::size_t>(qc)])]);
      }
      for (lowbit::index c = 0; c < W.cols(); ++c) s += std::abs(D(r, c)) * std::abs(X[static_cast<std::size_t>(i * W.cols() + c)]);
      out[static_cast<std::size_t>(i * W.rows() + r)] = s;
    }
  return out;
}

}  // namespace lowbit_test
