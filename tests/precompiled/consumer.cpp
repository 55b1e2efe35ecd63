// lowbit::precompiled's consumer: quantizes fixed matrices with the listed configurations and
// prints a hash of every stored byte, so the same source built with and without the library
// can be compared.
#include <lowbit/gptq.hpp>

#include <cstdint>
#include <cstdio>
#include <random>

namespace {
std::uint64_t fnv(const void* p, std::size_t n, std::uint64_t h) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}
template <class Method>
std::uint64_t run(const Eigen::MatrixXf& W, const lowbit::hessian& H, std::uint64_t h) {
  const auto q = lowbit::quantize<Method>(W, H);
  const auto& pm = q.packed();
  std::vector<float> x(static_cast<std::size_t>(W.cols()), 0.5f), y(static_cast<std::size_t>(W.rows()));
  q.gemv(x, y);
  h = fnv(y.data(), y.size() * sizeof(float), h);
  const Eigen::MatrixXf D = pm.dequantize();
  return fnv(D.data(), static_cast<std::size_t>(D.size()) * sizeof(float), h);
}
}  // namespace

int main() {
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0.0f, 1.0f);
  Eigen::MatrixXf W(48, 256), X(256, 300);
  for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = n(rng);
  for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = n(rng) * (i % 7 == 0 ? 8.0f : 1.0f);
  lowbit::hessian H(256);
  H.add_batch(X);
  using namespace lowbit;
  std::uint64_t h = fnv(H.matrix().data(), static_cast<std::size_t>(H.matrix().size()) * sizeof(double),
                        1469598103934665603ull);
  h = run<gptq<bits<4>, group<oc, 128>>>(W, H, h);
  h = run<gptq<bits<3>, group<oc, 128>>>(W, H, h);
  h = run<gptq<bits<4>, group<ic, 128>>>(W, H, h);
  h = run<gptq<bits<3>, group<ic, 128>>>(W, H, h);
  std::printf("%016llx\n", static_cast<unsigned long long>(h));
}
