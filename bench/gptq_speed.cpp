// GPTQ (and AWQ, SpQR) speed on one layer against their FLOP floors.
//   gptq_speed [rows in [tokens [threads]]]     (default 4096 4096 1024, all threads)
// Work of one GPTQ run on W [rows x in]:
//   lazy block updates  Σ_blocks 2·rows·B·(in − end) ≈ rows·in²   (fp32 GEMM)
//   in-block updates    ≈ rows·in·B                                (fp32)
//   factor U            Cholesky in³/3 + triangular inverse in³/3   (fp64)
// The floor is that work at the machine's measured GEMM rate (a 1536³ Eigen GEMM on one
// thread, in CPU time, times the thread count): the time if every flop ran at GEMM speed on every core.
// AWQ (whole call, W and X [in x tokens]): the α grid's scale_grid products Q(W·s)·X and the
//   clip search's ≤ clip_max_shrink·clip_grid products on clip_tokens tokens, each
//   2·rows·in·tokens (fp32 GEMM); the fake quantizations are O(rows·in) each.
// SpQR (whole call, 3-bit, groups of 16, 3-bit stats, outliers): GPTQ's elimination work
//   (the same factor and column loop) is its floor; what it costs on top (per-group stat
//   fits, the outlier pass) shows in the ratio.
// The machine may be shared, so every phase also reports its process CPU time (all threads)
// against the one-core floor (flops / one-thread rate): that ratio does not depend on how
// many cores other jobs left us.
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "lowbit/awq.hpp"
#include "lowbit/gptq.hpp"
#include "lowbit/spqr.hpp"
#include "../tests/support/test_data.hpp"

namespace {

double cpu_now() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// flop/s of one thread, timed in process CPU time (only this thread runs), so that other
// jobs on the machine do not deflate it.
template <class T>
double gemm_rate() {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index n = 1536;
  const M A = M::Random(n, n), B = M::Random(n, n);
  M C = M::Zero(n, n);
  C.noalias() += A * B;  // warm-up
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const double c0 = cpu_now();
    C.noalias() += A * B;
    best = std::min(best, cpu_now() - c0);
  }
  if (C(0, 0) == 12345.0) std::printf(" ");
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / best;
}

}  // namespace

int main(int argc, char** argv) {
  const lowbit::index rows = argc > 1 ? std::atol(argv[1]) : 4096;
  const lowbit::index in = argc > 2 ? std::atol(argv[2]) : 4096;
  const lowbit::index tokens = argc > 3 ? std::atol(argv[3]) : 1024;
  const unsigned threads = argc > 4 ? static_cast<unsigned>(std::atoi(argv[4])) : std::max(1u, std::thread::hardware_concurrency());
  lowbit::set_num_threads(threads);
  std::printf("gptq_speed: W %td x %td, %td calibration tokens, %u threads (load: other jobs may share the cores)\n",
              rows, in, tokens, threads);

  const double rf = gemm_rate<float>(), rd = gemm_rate<double>();
  std::printf("one-thread Eigen GEMM rate (CPU time): fp32 %.1f GFLOP/s, fp64 %.1f GFLOP/s\n", rf * 1e-9, rd * 1e-9);

  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(rows, in, 1);
  const Eigen::MatrixXf X = lowbit_test::activations(in, tokens, 2);
  auto t0 = std::chrono::steady_clock::now();
  lowbit::hessian H(in, lowbit::hessian_products::fp32);
  H.add_batch(X);
  const double t_h = seconds_since(t0);
  std::printf("hessian (fp32 products, fp64 mean): %.3f s for %td tokens (%.1f GFLOP/s)\n", t_h, tokens,
              static_cast<double>(in) * static_cast<double>(in) * static_cast<double>(tokens) / t_h * 1e-9);

  // Phases separately: factor (prepare) and the column loop.
  lowbit::gptq_options opt;
  using M = lowbit::gptq<lowbit::bits<4>, lowbit::group<lowbit::oc, 128>>;
  using PM = M::packed_type;
  double c0 = cpu_now();
  t0 = std::chrono::steady_clock::now();
  const Eigen::MatrixXd Hc = lowbit::detail::checked_hessian(H.matrix(), in, "bench");
  Eigen::MatrixXf Wn;
  auto prob = lowbit::detail::gptq_prepare(lowbit::to_view(W), Hc, {}, opt, "bench", &Wn);
  const double t_prep = seconds_since(t0), c_prep = cpu_now() - c0;
  PM pm(rows, in);
  lowbit::detail::gptq_grid_hook<PM, lowbit::minmax> hook(pm, prob, false);
  c0 = cpu_now();
  t0 = std::chrono::steady_clock::now();
  const double loss = lowbit::detail::gptq_run(prob, hook, opt);
  const double t_loop = seconds_since(t0), c_loop = cpu_now() - c0;

  // The whole public call, as a user runs it.
  c0 = cpu_now();
  t0 = std::chrono::steady_clock::now();
  const auto q = lowbit::quantize<M>(W, H, opt);
  const double t_all = seconds_since(t0), c_all = cpu_now() - c0;

  const double r = static_cast<double>(rows), n = static_cast<double>(in), B = 128.0;
  double lazy = 0.0;
  for (double e = B; e < n; e += B) lazy += 2.0 * r * B * (n - e);
  const double inblock = r * n * B, factor = 2.0 * n * n * n / 3.0;
  const double floor_loop = (lazy + inblock) / (rf * threads), floor_factor = factor / (rd * threads);
  const double cpu_floor_factor = factor / rd, cpu_floor_loop = (lazy + inblock) / rf;
  std::printf("%-44s %9s %9s %6s | %9s %9s %6s\n", "phase", "wall s", "floor s", "x", "cpu s", "floor s", "x");
  auto row = [](const char* name, double t, double f, double c, double cf) {
    std::printf("%-44s %9.3f %9.3f %6.1f | %9.3f %9.3f %6.1f\n", name, t, f, t / f, c, cf, c / cf);
  };
  row("factor U (Cholesky + tri. inverse, fp64)", t_prep, floor_factor, c_prep, cpu_floor_factor);
  row("column loop (4-bit g128, blocks of 128)", t_loop, floor_loop, c_loop, cpu_floor_loop);
  row("quantize<gptq<bits<4>, group<oc,128>>> total", t_all, floor_loop + floor_factor, c_all,
      cpu_floor_loop + cpu_floor_factor);
  std::printf("loss %.4g, report %.3f s, %.4f bits/weight\n", loss, q.report.seconds, q.bits_per_weight());

  // AWQ and SpQR, whole public calls with their default options.
  const lowbit::awq_options ao;
  c0 = cpu_now();
  t0 = std::chrono::steady_clock::now();
  const auto qa = lowbit::quantize<lowbit::awq<lowbit::bits<4>, lowbit::group<lowbit::oc, 128>>>(W, X, ao);
  const double t_awq = seconds_since(t0), c_awq = cpu_now() - c0;
  const double clip_products = ao.clip ? std::floor(static_cast<double>(ao.clip_max_shrink) * ao.clip_grid) : 0.0;
  const double awq_flops = 2.0 * r * n *
                           (ao.scale_grid * static_cast<double>(tokens) +
                            clip_products * static_cast<double>(std::min<lowbit::index>(tokens, ao.clip_tokens)));
  row("quantize<awq<bits<4>, group<oc,128>>> total", t_awq, awq_flops / (rf * threads), c_awq, awq_flops / rf);
  c0 = cpu_now();
  t0 = std::chrono::steady_clock::now();
  const auto qs = lowbit::quantize<lowbit::spqr<lowbit::bits<3>>>(W, H);
  const double t_spqr = seconds_since(t0), c_spqr = cpu_now() - c0;
  row("quantize<spqr<bits<3>>> total (GPTQ floor)", t_spqr, floor_loop + floor_factor, c_spqr,
      cpu_floor_loop + cpu_floor_factor);
  std::printf("awq %.4f bits/weight; spqr %.4f bits/weight, %s\n", qa.bits_per_weight(), qs.bits_per_weight(),
              qs.report.notes.c_str());
  return 0;
}
