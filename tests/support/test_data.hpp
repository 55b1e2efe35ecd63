#pragma once
// Shared generators for tests: deterministic random matrices with the structure that
// matters for quantization (heavy tails, outlier channels, correlated activations).
#include <Eigen/Dense>
#include <cstdint>
#include <random>

namespace lowbit_test {

inline Eigen::MatrixXf gaussian(Eigen::Index rows, Eigen::Index cols, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, sigma);
  Eigen::MatrixXf m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = n(rng);
  return m;
}

// Student-t-like heavy tails: a Gaussian divided by a random scale, as LLM weights look.
inline Eigen::MatrixXf heavy_tailed(Eigen::Index rows, Eigen::Index cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::chi_squared_distribution<float> chi(3.0f);
  Eigen::MatrixXf m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = 0.02f * n(rng) / std::sqrt(chi(rng) / 3.0f);
  return m;
}

// Calibration activations X [in x tokens]: correlated channels (a low-rank mix plus noise)
// and a few channels with 20-50x larger magnitude, like the outlier features of LLMs.
inline Eigen::MatrixXf activations(Eigen::Index in, Eigen::Index tokens, std::uint32_t seed,
                                   int outlier_channels = 4) {
  Eigen::MatrixXf mix = gaussian(in, 8, seed);
  Eigen::MatrixXf latent = gaussian(8, tokens, seed + 1);
  Eigen::MatrixXf X = mix * latent + 0.5f * gaussian(in, tokens, seed + 2);
  std::mt19937 rng(seed + 3);
  std::uniform_int_distribution<Eigen::Index> pick(0, in - 1);
  for (int k = 0; k < outlier_channels; ++k) X.row(pick(rng)) *= 20.0f + 10.0f * static_cast<float>(k % 4);
  return X;
}

}  // namespace lowbit_test
