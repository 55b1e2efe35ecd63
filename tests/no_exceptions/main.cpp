// An engine built with -fno-exceptions -fno-rtti (game engines, many embedded builds): every
// method header compiles, quantization and kernels run, and an error reaches the handler the
// application set (lowbit::set_error_handler) with lowbit's message, instead of a throw.
//   no_exceptions_consumer          quantize with every method, check against the
//                                   dequantized weights; exit 0
//   no_exceptions_consumer bad      quantize a matrix with a NaN: the handler prints the
//                                   message and ends the program with exit code 3
#include <lowbit/lowbit.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__cpp_exceptions) || LOWBIT_EXCEPTIONS
#error "this consumer must be compiled with -fno-exceptions"
#endif

namespace {

void engine_handler(const char* message) {
  std::printf("engine handler: %s\n", message);
  std::fflush(stdout);
  std::_Exit(3);  // the engine's own shutdown; returning would make lowbit abort
}

int check(const char* what, const Eigen::MatrixXf& W_hat, const Eigen::MatrixXf& W, float tol) {
  const float err = (W_hat - W).cwiseAbs().maxCoeff();
  std::printf("%-10s max |W - W_hat| = %.4f\n", what, static_cast<double>(err));
  return err <= tol ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lowbit;
  set_error_handler(engine_handler);
  Eigen::MatrixXf W = Eigen::MatrixXf::Random(64, 256) * 0.1f;
  if (argc > 1 && std::strcmp(argv[1], "bad") == 0) {
    W(3, 7) = std::numeric_limits<float>::quiet_NaN();
    (void)quantize<rtn<bits<4>, group<oc, 64>>>(W);
    std::printf("no error was reported\n");
    return 1;
  }
  const Eigen::MatrixXf X = Eigen::MatrixXf::Random(256, 300);
  hessian H(256);
  H.add_batch(X);
  int bad = 0;
  // Every method family, 4-bit: error bounded by about one quantization step (range/15).
  const float tol = 0.2f / 15.0f * 1.5f;
  const auto r = quantize<rtn<bits<4>, group<oc, 64>>>(W);
  bad += check("rtn", r.dequantize(), W, tol);
  bad += check("gptq", quantize<gptq<bits<4>, group<ic, 64>>>(W, H).dequantize(), W, 4 * tol);
  bad += check("awq", quantize<awq<bits<4>, group<oc, 64>>>(W, X).dequantize(), W, 4 * tol);
  owq_options oo;
  oo.weak_columns = 4;
  bad += check("owq", quantize<owq<bits<4>, group<oc, 64>>>(W, H, oo).dequantize(), W, 4 * tol);
  bad += check("spqr", quantize<spqr<bits<4>>>(W, H).dequantize(), W, 4 * tol);
  bad += check("adadim", quantize<adadim<rtn<bits<4>, group<oc, 64>>>>(W, X).dequantize(), W, tol);
  // The packed kernels.
  std::vector<float> x(256, 0.5f), y(64);
  r.gemv(x, y);
  const Eigen::VectorXf ref = r.dequantize() * Eigen::VectorXf::Constant(256, 0.5f);
  for (int i = 0; i < 64; ++i)
    if (std::abs(ref[i] - y[static_cast<std::size_t>(i)]) > 1e-3f) ++bad;
  std::printf(bad == 0 ? "no-exceptions consumer ok\n" : "no-exceptions consumer FAILED\n");
  return bad == 0 ? 0 : 1;
}
