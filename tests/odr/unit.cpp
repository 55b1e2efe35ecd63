// The translation unit of tests/odr.cmake: compiled with the baseline flags and again with
// -mavx2 -mfma -mf16c (the symbol check), each copy exporting one entry point (ODR_ENTRY). It
// quantizes fixed matrices with several methods and runs the packed GEMV.
#include <lowbit/lowbit.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

// A tiny deterministic generator (no <random>: identical in every TU and library build).
float next_value(std::uint32_t& s) {
  s = s * 1664525u + 1013904223u;
  const float u = static_cast<float>(s >> 8) / static_cast<float>(1u << 24);  // [0, 1)
  return (u - 0.5f) * (1.0f + 3.0f * u * u * u);                             // skewed tails
}

Eigen::MatrixXf make(Eigen::Index rows, Eigen::Index cols, std::uint32_t seed) {
  Eigen::MatrixXf m(rows, cols);
  for (Eigen::Index c = 0; c < cols; ++c)
    for (Eigen::Index r = 0; r < rows; ++r) m(r, c) = next_value(seed);
  return m;
}

// FNV-1a over the bytes of floats: what each result prints.
std::uint64_t digest(const float* p, std::size_t n, std::uint64_t h = 1469598103934665603ull) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

}  // namespace

extern "C" std::uint64_t ODR_ENTRY() {
  using namespace lowbit;
  const Eigen::MatrixXf W = make(64, 128, 1);
  const Eigen::MatrixXf X = make(128, 96, 2);
  hessian H(128);
  H.add_batch(X);
  const auto r = quantize<rtn<bits<4>, group<oc, 32>, mse_clip<>>>(W);
  const auto g = quantize<gptq<bits<3>, group<oc, 64>>>(W, H);
  const auto a = quantize<awq<bits<4>, group<oc, 64>>>(W, X);
  std::vector<float> x(128), y(64);
  for (int i = 0; i < 128; ++i) x[static_cast<std::size_t>(i)] = X(i, 0);
  std::uint64_t h = 1469598103934665603ull;
  for (const Eigen::MatrixXf& D : {r.dequantize(), g.dequantize(), a.dequantize()})
    h = digest(D.data(), static_cast<std::size_t>(D.size()), h);
  r.gemv(x, y);
  h = digest(y.data(), y.size(), h);
  g.gemv(x, y);
  h = digest(y.data(), y.size(), h);
  return h;
}
