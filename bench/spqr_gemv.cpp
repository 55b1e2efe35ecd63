// bench/spqr_gemv: CPU GEMV/GEMM speed of the SpQR format (3-bit codes, β₁ = 16 groups,
// 3-bit quantized stats in 16-row second-level groups, fp16 CSR outliers, act-order
// permutation of x), with bench/gemv's CSV columns and the same kind of baselines measured in
// the same process:
//   read_ceiling  streaming sum over a buffer >= 4x the last-level cache, all threads;
//   eigen_fp32    Eigen GEMV on fp32 weights, rows split over the same threads;
//   fp16          fp16 weights through lowbit's dot_f16 kernel;
//   lowbit        3-bit g16 per-OC with fp16 stats (the same codes, one-level stats), layout oc16;
//   spqr          spqr_matrix::gemm: gather x by the permutation, low-bit part with the stats
//                 decoded from the second level, plus the CSR part, at 0 / 0.5 / 1 / 2 % outliers
//                 (layout spqr+sparse<d>%); the cost of the sparse part is the difference to 0 %.
// gbps counts every byte the format stores (codes, both stat levels, CSR, permutation).
// Matrices are synthetic (random codes, stats and outlier positions): speed does not depend
// on the values, and quantizing a 11008 x 4096 layer with SpQR is not what is measured here.
//
//   spqr_gemv [--csv] [--quick] [--m 1,4] [--threads N] [--reps N]
#include <lowbit/spqr.hpp>

#include "support/measure.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace lowbit;
namespace cpu = lowbit::kernel::cpu;
using idx = lowbit::index;
using lowbit::bench::median_us;
using lowbit::bench::read_ceiling_gbps;

namespace {

using spqr_pm = spqr<bits<3>>::packed_type;
using plain_pm = packed_matrix<bits<3>, group<oc, 16>>;

struct row {
  std::string kernel;
  idx rows, cols, m;
  int bits;
  std::string layout, isa;
  double us, gbps, ceiling, fp32_us, fp16_us;
};

void print(const row& r, bool csv) {
  const double frac = r.gbps / r.ceiling;
  const double s32 = r.fp32_us > 0 ? r.fp32_us / r.us : 0.0, s16 = r.fp16_us > 0 ? r.fp16_us / r.us : 0.0;
  const unsigned thr = num_threads();
  if (csv)
    std::printf("%s,%td,%td,%td,%d,%s,%s,%u,%.1f,%.2f,%.2f,%.3f,%.2f,%.2f\n", r.kernel.c_str(), r.rows, r.cols, r.m,
                r.bits, r.layout.c_str(), r.isa.c_str(), thr, r.us, r.gbps, r.ceiling, frac, s32, s16);
  else
    std::printf("%-12s %6td x %-6td m=%-3td %2d-bit %-18s %-12s %2u thr %10.1f us %7.2f GB/s %5.1f%% of ceiling"
                "  x%-5.2f vs fp32  x%-5.2f vs fp16\n",
                r.kernel.c_str(), r.rows, r.cols, r.m, r.bits, r.layout.c_str(), r.isa.c_str(), thr, r.us, r.gbps,
                100.0 * frac, s32, s16);
  std::fflush(stdout);
}

void random_codes(std::span<std::uint8_t> codes, std::mt19937_64& rng) {
  for (std::size_t i = 0; i + 8 <= codes.size(); i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(codes.data() + i, &v, 8);
  }
}

// A SpQR matrix with random codes, two-level stats fitted to random first-level stats, a
// random permutation and `percent` % outliers at random positions.
spqr_matrix<spqr_pm> make_spqr(idx rows, idx cols, double percent, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  spqr_pm W(rows, cols);
  random_codes(W.codes(), rng);
  std::uniform_real_distribution<float> sc(0.001f, 0.01f), ze(0.0f, 7.0f);
  std::vector<float> s(static_cast<std::size_t>(rows)), z(s.size());
  for (idx c = 0; c < W.stat_cols(); ++c) {
    for (std::size_t r = 0; r < s.size(); ++r) s[r] = sc(rng), z[r] = ze(rng);
    W.stats().set_column(c, s, z);
  }
  std::bernoulli_distribution pick(percent / 100.0);
  auto& o = W.outliers();
  o.row_ptr.assign(1, 0u);
  for (idx r = 0; r < rows; ++r) {
    for (idx c = 0; c < cols; ++c)
      if (pick(rng)) {
        o.col.push_back(static_cast<std::uint16_t>(c));
        o.values.push_back(half(0.05f));
      }
    o.row_ptr.push_back(static_cast<std::uint32_t>(o.col.size()));
  }
  std::vector<std::uint16_t> perm(static_cast<std::size_t>(cols));
  std::iota(perm.begin(), perm.end(), std::uint16_t{0});
  std::shuffle(perm.begin(), perm.end(), rng);
  return spqr_matrix<spqr_pm>(std::move(W), std::move(perm));
}

}  // namespace

int main(int argc, char** argv) {
  bool csv = false, quick = false;
  int reps = 0;
  std::vector<idx> ms = {1, 4};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--csv") csv = true;
    else if (a == "--quick") quick = true;
    else if (a == "--threads" && i + 1 < argc) set_num_threads(static_cast<unsigned>(std::stoul(argv[++i])));
    else if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else if (a == "--m" && i + 1 < argc) {
      ms.clear();
      std::string s = argv[++i];
      for (std::size_t p = 0; p < s.size();) {
        const std::size_t q = s.find(',', p);
        ms.push_back(std::stol(s.substr(p, q - p)));
        p = q == std::string::npos ? s.size() : q + 1;
      }
    } else {
      std::fprintf(stderr, "usage: spqr_gemv [--csv] [--quick] [--m 1,4] [--threads N] [--reps N]\n");
      return 2;
    }
  }
  if (reps == 0) reps = quick ? 7 : 25;
  const std::string isa(cpu::isa_name(cpu::active_table().id));
  if (csv)
    std::printf("kernel,rows,cols,m,bits,layout,isa,threads,median_us,gbps,ceiling_gbps,frac_of_ceiling,speedup_vs_fp32,speedup_vs_fp16\n");
  else
    std::printf("# bench/spqr_gemv: lowbit kernels on %s, %u threads\n", isa.c_str(), num_threads());
  double ceil_us = 0;
  const double ceiling = read_ceiling_gbps(quick ? 5 : 11, ceil_us);
  print({"read_ceiling", 0, 0, 0, 0, "stream", "scalar", ceil_us, ceiling, ceiling, 0, 0}, csv);
  const cpu::kernel_table& K = cpu::active_table();
  const std::vector<std::pair<idx, idx>> shapes = {{4096, 4096}, {11008, 4096}};
  for (const auto& [rows, cols] : shapes) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const idx mmax = *std::max_element(ms.begin(), ms.end());
    std::vector<float> X(static_cast<std::size_t>(mmax * cols)), Y(static_cast<std::size_t>(mmax * rows));
    for (auto& v : X) v = nd(rng);
    std::vector<double> fp32_us(ms.size()), fp16_us(ms.size());
    {
      Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Wf =
          Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Random(rows, cols);
      for (std::size_t mi = 0; mi < ms.size(); ++mi) {
        Eigen::Map<const Eigen::MatrixXf> Xm(X.data(), cols, ms[mi]);
        Eigen::Map<Eigen::MatrixXf> Ym(Y.data(), rows, ms[mi]);
        fp32_us[mi] = median_us(reps, [&] {
          parallel_for(rows, 64, [&](idx a, idx b) { Ym.middleRows(a, b - a).noalias() = Wf.middleRows(a, b - a) * Xm; });
        });
        print({"eigen_fp32", rows, cols, ms[mi], 32, "dense", "eigen", fp32_us[mi],
               4.0 * double(rows * cols) / fp32_us[mi] / 1e3, ceiling, fp32_us[mi], 0},
              csv);
      }
    }
    {
      std::vector<std::uint16_t> Wh(static_cast<std::size_t>(rows * cols));
      for (auto& v : Wh) v = half(nd(rng) * 0.01f).bits;
      for (std::size_t mi = 0; mi < ms.size(); ++mi) {
        const idx m = ms[mi];
        fp16_us[mi] = median_us(reps, [&] {
          parallel_for(rows, 64, [&](idx a, idx b) {
            for (idx r = a; r < b; ++r)
              for (idx i = 0; i < m; ++i)
                Y[static_cast<std::size_t>(i * rows + r)] = K.dot_f16(Wh.data() + r * cols, X.data() + i * cols, cols);
          });
        });
        print({"fp16", rows, cols, m, 16, "dense", isa, fp16_us[mi], 2.0 * double(rows * cols) / fp16_us[mi] / 1e3,
               ceiling, fp32_us[mi], fp16_us[mi]},
              csv);
      }
    }
    {
      std::mt19937_64 r64(11);
      plain_pm P(rows, cols);
      random_codes(P.codes(), r64);
      std::uniform_real_distribution<float> sc(0.001f, 0.01f);
      for (idx i = 0; i < P.stat_rows() * P.stat_cols(); ++i) P.stats().set(i, grid_params{sc(r64), 3.5f});
      for (std::size_t mi = 0; mi < ms.size(); ++mi) {
        const idx m = ms[mi];
        const double us = median_us(reps, [&] { lowbit::gemm(P, std::span<const float>(X.data(), static_cast<std::size_t>(m * cols)), std::span<float>(Y.data(), static_cast<std::size_t>(m * rows)), m); });
        print({"lowbit", rows, cols, m, 3, "oc16", isa, us, double(P.stored_bytes()) / us / 1e3, ceiling, fp32_us[mi],
               fp16_us[mi]},
              csv);
      }
    }
    for (const double pct : {0.0, 0.5, 1.0, 2.0}) {
      const auto S = make_spqr(rows, cols, pct, 99u);
      char layout[64];
      std::snprintf(layout, sizeof layout, "spqr+sparse%g%%", pct);
      for (std::size_t mi = 0; mi < ms.size(); ++mi) {
        const idx m = ms[mi];
        const double us = median_us(reps, [&] {
          S.gemm(std::span<const float>(X.data(), static_cast<std::size_t>(m * cols)),
                 std::span<float>(Y.data(), static_cast<std::size_t>(m * rows)), m);
        });
        print({"spqr", rows, cols, m, 3, layout, isa, us, double(S.stored_bytes()) / us / 1e3, ceiling, fp32_us[mi],
               fp16_us[mi]},
              csv);
        if (!csv)
          std::printf("%-12s   %.4f bits/weight, %td outliers (%.2f%%)\n", "", S.bits_per_weight(), S.outlier_count(),
                      100.0 * S.outlier_rate());
      }
    }
  }
  return 0;
}
