// Cross-ISA fingerprint (issue #21): the same RTN / GPTQ quantizations of the same
// deterministic matrices, saved as .lowbit files, and GEMM results of the packed matrices on
// the kernel set this machine runs. scripts/test --cross aarch64 runs `write` on the x86 build
// and on the aarch64 build (under qemu), then `compare`:
//   * the .lowbit files must be byte-identical (quantization is bit-identical across ISAs:
//     docs/performance.md, "Numeric contract");
//   * the methods' float64 losses are printed, identical or not (GPTQ's Eigen arithmetic is
//     not bit-identical between SSE2 and NEON; the codes and fp16 stats it produces are, here);
//   * the GEMM results must agree within 4e-6 * sum_c |w_hat(r, c) x_c| per entry: each ISA's
//     kernels are within 2e-6 of that magnitude of the float64 reference
//     (tests/kernel_gemv_test.cpp), int8 activations included (the same x_hat everywhere).
// The matrices come from integer hashing only (no <random> distributions, no libm): what is
// compared is lowbit's arithmetic, not two libms' log or cos.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lowbit/io/lowbit_format.hpp"
#include "lowbit/kernel/backend_traits.hpp"
#include "lowbit/lowbit.hpp"

namespace fs = std::filesystem;
using namespace lowbit;

namespace {

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// Uniform in [0, 1) with 24 bits: exact in float.
float unit(std::uint64_t& s) { return static_cast<float>(splitmix(s) >> 40) * (1.0f / 16777216.0f); }

// Heavy-ish tails without libm: a sum of uniforms, 1% of entries 8x larger.
Eigen::MatrixXf weights(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  Eigen::MatrixXf W(rows, cols);
  for (Eigen::Index i = 0; i < W.size(); ++i) {
    const float v = unit(seed) + unit(seed) + unit(seed) - 1.5f;
    W.data()[i] = 0.02f * v * (unit(seed) < 0.01f ? 8.0f : 1.0f);
  }
  return W;
}

// Calibration activations [in x tokens]: a rank-4 mix plus noise, 3 outlier channels.
Eigen::MatrixXf activations(Eigen::Index in, Eigen::Index tokens, std::uint64_t seed) {
  Eigen::MatrixXf X(in, tokens);
  std::vector<float> mix(static_cast<std::size_t>(in * 4)), lat(static_cast<std::size_t>(4 * tokens));
  for (auto& v : mix) v = unit(seed) - 0.5f;
  for (auto& v : lat) v = unit(seed) - 0.5f;
  for (Eigen::Index t = 0; t < tokens; ++t)
    for (Eigen::Index c = 0; c < in; ++c) {
      float v = 0.25f * (unit(seed) - 0.5f);
      for (int k = 0; k < 4; ++k) v += mix[static_cast<std::size_t>(c * 4 + k)] * lat[static_cast<std::size_t>(k * tokens + t)];
      X(c, t) = (c % 61 == 7 ? 24.0f : 1.0f) * v;
    }
  return X;
}

std::vector<char> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
template <class T>
void write_raw(const fs::path& p, const std::vector<T>& v) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}
template <class T>
std::vector<T> read_raw(const fs::path& p) {
  const std::vector<char> b = file_bytes(p);
  std::vector<T> v(b.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

std::string hex(const std::vector<double>& v) {
  char b[64];
  std::snprintf(b, sizeof b, "%a", v.empty() ? 0.0 : v[0]);
  return b;
}

constexpr lowbit::index batch = 3;

// name.lowbit, name.y32 (fp32 activations), name.y8 (int8 activations), name.mag (float64).
template <class PM>
void write_case(const fs::path& dir, const std::string& name, const PM& W, double loss = 0.0) {
  io::save_packed((dir / (name + ".lowbit")).string(), W);
  // The method's own float64 loss: a far more sensitive detector of arithmetic differences
  // than the bytes (codes and fp16 stats mask most last-bit differences).
  write_raw(dir / (name + ".loss"), std::vector<double>{loss});
  std::uint64_t seed = 0xC0FFEEull + name.size();
  std::vector<float> X(static_cast<std::size_t>(batch * W.cols()));
  for (auto& v : X) v = 2.0f * unit(seed) - 1.0f;
  std::vector<float> y(static_cast<std::size_t>(batch * W.rows()));
  gemm(W, X, y, batch);
  write_raw(dir / (name + ".y32"), y);
  gemm_options o;
  o.act = activations::int8;
  gemm(W, X, y, batch, o);
  write_raw(dir / (name + ".y8"), y);
  const Eigen::MatrixXf D = W.dequantize();
  std::vector<double> mag(y.size(), 0.0);
  for (lowbit::index i = 0; i < batch; ++i)
    for (lowbit::index r = 0; r < W.rows(); ++r)
      for (lowbit::index c = 0; c < W.cols(); ++c)
        mag[static_cast<std::size_t>(i * W.rows() + r)] +=
            std::abs(static_cast<double>(D(r, c))) * std::abs(static_cast<double>(X[static_cast<std::size_t>(i * W.cols() + c)]));
  write_raw(dir / (name + ".mag"), mag);
}

const char* const case_names[] = {"rtn_w4_oc128", "rtn_w3_oc64_mse", "rtn_w2_ic32", "rtn_w8_perchannel",
                                  "gptq_w3_oc64", "gptq_w4_ic64_actorder"};

int write_all(const fs::path& dir) {
  fs::create_directories(dir);
  const Eigen::MatrixXf W = weights(192, 320, 71);
  const Eigen::MatrixXf X = activations(320, 256, 72);
  hessian H(320);
  H.add_batch(X);
  write_case(dir, case_names[0], quantize<rtn<bits<4>, group<oc, 128>>>(W));
  write_case(dir, case_names[1], quantize<rtn<bits<3>, group<oc, 64>, mse_clip<>>>(W));
  write_case(dir, case_names[2], quantize<rtn<bits<2>, group<ic, 32>>>(W));
  write_case(dir, case_names[3], quantize<rtn<bits<8>, group<oc, per_channel>>>(W));
  const auto g3 = quantize<gptq<bits<3>, group<oc, 64>>>(W, H);
  write_case(dir, case_names[4], g3.packed(), g3.report.loss);
  gptq_options go;
  go.act_order = true;
  const auto g4 = quantize<gptq<bits<4>, group<ic, 64>>>(W, H, go);
  write_case(dir, case_names[5], g4.packed(), g4.report.loss);
  std::ofstream(dir / "isa.txt") << backend_traits<cpu_simd>::isa() << '\n';
  std::printf("cross_isa_fingerprint: wrote %zu cases to %s (kernels: %s)\n", std::size(case_names), dir.string().c_str(),
              std::string(backend_traits<cpu_simd>::isa()).c_str());
  return 0;
}

int compare(const fs::path& a, const fs::path& b) {
  const std::string isa_a = file_bytes(a / "isa.txt").empty() ? "?" : std::string(file_bytes(a / "isa.txt").data(), file_bytes(a / "isa.txt").size() - 1);
  const std::string isa_b = file_bytes(b / "isa.txt").empty() ? "?" : std::string(file_bytes(b / "isa.txt").data(), file_bytes(b / "isa.txt").size() - 1);
  std::printf("cross_isa_fingerprint: %s (%s) vs %s (%s)\n", a.string().c_str(), isa_a.c_str(), b.string().c_str(), isa_b.c_str());
  constexpr double bound = 4e-6;
  int failures = 0;
  for (const char* n : case_names) {
    const std::string name = n;
    const std::vector<char> fa = file_bytes(a / (name + ".lowbit")), fb = file_bytes(b / (name + ".lowbit"));
    std::size_t differing = fa.size() == fb.size() ? 0 : std::max(fa.size(), fb.size());
    if (fa.size() == fb.size())
      for (std::size_t i = 0; i < fa.size(); ++i) differing += fa[i] != fb[i];
    const bool same = !fa.empty() && differing == 0;
    const std::vector<double> mag = read_raw<double>(a / (name + ".mag"));
    double worst[2] = {0.0, 0.0};
    bool sizes_ok = true;
    const char* ext[2] = {".y32", ".y8"};
    for (int k = 0; k < 2; ++k) {
      const std::vector<float> ya = read_raw<float>(a / (name + ext[k])), yb = read_raw<float>(b / (name + ext[k]));
      if (ya.size() != yb.size() || ya.size() != mag.size() || ya.empty()) {
        sizes_ok = false;
        continue;
      }
      for (std::size_t i = 0; i < ya.size(); ++i)
        worst[k] = std::max(worst[k], std::abs(static_cast<double>(ya[i]) - yb[i]) / (mag[i] + 1e-30));
    }
    const std::vector<double> la = read_raw<double>(a / (name + ".loss")), lb = read_raw<double>(b / (name + ".loss"));
    const bool same_loss = la.size() == 1 && lb.size() == 1 && std::memcmp(la.data(), lb.data(), sizeof(double)) == 0;
    // The loss is reported, not required: GPTQ's float64 internals run through Eigen, whose
    // NEON pmadd is a fused vfmaq whatever -ffp-contract says, while x86-64's SSE2 pmadd
    // rounds the product first (docs/performance.md, "Numeric contract").
    const bool ok = same && sizes_ok && worst[0] <= bound && worst[1] <= bound;
    std::printf("  %-22s .lowbit %s (%zu bytes%s), loss %s; gemm fp32 %.2e, int8 %.2e of sum|w x| (bound %.0e)  %s\n", n,
                same ? "identical" : "DIFFERS", fa.size(),
                same ? "" : (", " + std::to_string(differing) + " differ").c_str(),
                !la.empty() && la[0] == 0.0 && same_loss ? "-"
                : same_loss                               ? "identical"
                                                          : ("differs (" + hex(la) + " vs " + hex(lb) + ")").c_str(),
                worst[0], worst[1], bound, ok ? "ok" : "FAIL");
    failures += !ok;
  }
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "write" && argc == 3) return write_all(argv[2]);
  if (mode == "compare" && argc == 4) return compare(argv[2], argv[3]);
  std::fprintf(stderr, "usage: cross_isa_fingerprint write DIR | compare DIR_A DIR_B\n");
  return 2;
}
