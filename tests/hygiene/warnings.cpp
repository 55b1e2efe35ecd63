// Compiled by tests/hygiene.cmake with -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror
// (Eigen and xsimd as system includes), by g++ and clang: an engine that builds with strict
// warnings must be able to include lowbit and instantiate each method and the CPU GEMV.
#include <lowbit/adadim.hpp>
#include <lowbit/awq.hpp>
#include <lowbit/backend.hpp>
#include <lowbit/gptq.hpp>
#include <lowbit/owq.hpp>
#include <lowbit/rtn.hpp>
#include <lowbit/spqr.hpp>

#include <vector>

int main() {
  using namespace lowbit;
  const Eigen::MatrixXf W = Eigen::MatrixXf::Random(64, 128);
  const Eigen::MatrixXf X = Eigen::MatrixXf::Random(128, 256);
  hessian H(128);
  H.add_batch(X);
  const auto r = quantize<rtn<bits<3>, group<ic, 32>, mse_clip<>>>(W);
  const auto g = quantize<gptq<bits<4>, group<oc, 32>, symmetric>>(W, H);
  const auto a = quantize<awq<bits<4>, group<oc, 64>>>(W, X);
  const auto o = quantize<owq<bits<3>, group<oc, 32>>>(W, H, owq_options{});
  const auto s = quantize<spqr<bits<3>>>(W, H);
  const auto d = quantize<adadim<rtn<bits<2>, group<oc, 32>>>>(W, X);
  std::vector<float> x(128, 0.5f), y(64);
  gemv(r.packed(), x, y);
  gemv(g.packed(), x, y);
  gemv(o.packed(), x, y);
  return static_cast<int>(y[0] + a.packed().bits_per_weight() + s.packed().bits_per_weight() +
                          d.packed().bits_per_weight()) == 12345;
}
