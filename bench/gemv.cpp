// bench/gemv: decode-time matrix-vector speed, judged against the machine's own memory
// bandwidth, measured in the same process (performance.md):
//   read_*        streaming sums over a buffer >= 4x the last-level cache, all threads, four
//                 loops (support/measure.hpp); the ceiling every fraction uses is the best of
//                 them and of the dense kernels (eigen_fp32, fp16) measured in the same run,
//                 so frac_of_ceiling <= 1 by construction (rows print at the end);
//   eigen_fp32    Eigen GEMV/GEMM on fp32 weights, rows split over the same threads;
//   fp16          fp16 weights, F16C conversion + FMA (lowbit's dot_f16 kernel);
//   lowbit        packed_matrix GEMV/GEMM, fp32 activations (the default path);
//   lowbit_int8   the same with activations quantized to int8 once per call.
// gbps counts every byte the weight format stores (codes, stats, outliers). Every operand
// is cycled through copies spanning 4x the LLC, so no call finds its weights in cache.
//
//   gemv [--csv] [--quick] [--bits 2,3,4,8] [--layout oc,ic,oc+dense,oc+sparse] [--m 1,4,16]
//        [--shape 4096x4096,...] [--kernel lowbit,lowbit_int8,fp16,eigen_fp32] [--threads N]
//        [--isa generic|avx2|avx512|avx512_vnni] [--reps N]
#include <lowbit/kernel/gemv.hpp>

#include "support/args.hpp"
#include "support/measure.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace lowbit;
namespace cpu = lowbit::kernel::cpu;
using idx = lowbit::index;
using lowbit::bench::llc_bytes;
using lowbit::bench::median_us;
using lowbit::bench::read_ceiling_gbps;

namespace {

struct options {
  bool csv = false, quick = false;
  std::vector<int> bits = {2, 3, 4, 8};
  std::vector<std::string> layouts = {"oc", "ic", "oc+dense", "oc+sparse"};
  std::vector<idx> ms = {1, 4, 16};
  std::vector<std::pair<idx, idx>> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
  std::vector<std::string> kernels = {"eigen_fp32", "fp16", "lowbit", "lowbit_int8"};
  unsigned threads = 0;
  int reps = 0;
  std::string isa;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "gemv: %s\nusage: gemv [--csv] [--quick] [--bits 2,3,4,8] [--layout oc,ic,oc+dense,oc+sparse]\n"
               "            [--m 1,4,16] [--shape RxC,...] [--kernel eigen_fp32,fp16,lowbit,lowbit_int8]\n"
               "            [--threads N] [--isa generic|avx2|avx512|avx512_vnni] [--reps N]\n",
               msg);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  bool shapes_given = false, m_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--csv") o.csv = true;
    else if (a == "--quick") o.quick = true;
    else if (a == "--bits") { o.bits.clear(); for (auto& t : lowbit::bench::split_list(value())) o.bits.push_back(std::stoi(t)); }
    else if (a == "--layout") o.layouts = lowbit::bench::split_list(value());
    else if (a == "--kernel") o.kernels = lowbit::bench::split_list(value());
    else if (a == "--m") { o.ms.clear(); m_given = true; for (auto& t : lowbit::bench::split_list(value())) o.ms.push_back(std::stol(t)); }
    else if (a == "--shape") {
      std::string error;
      const auto shapes = lowbit::bench::parse_shapes(value(), error);
      if (!error.empty()) usage(error.c_str());
      o.shapes.assign(shapes.begin(), shapes.end());
      shapes_given = true;
    } else if (a == "--threads") o.threads = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--reps") o.reps = std::stoi(value());
    else if (a == "--isa") o.isa = value();
    else if (a == "--help" || a == "-h") usage("help");
    else usage(("unknown option " + a).c_str());
  }
  for (int b : o.bits)
    if (b != 2 && b != 3 && b != 4 && b != 8) usage("--bits takes 2, 3, 4, 8");
  if (o.quick) {
    if (!shapes_given) o.shapes = {{4096, 4096}, {11008, 4096}};
    if (!m_given) o.ms = {1, 16};
  }
  if (o.reps == 0) o.reps = o.quick ? 7 : 25;
  return o;
}

struct row {
  std::string kernel;
  idx rows, cols, m;
  int bits;
  std::string layout, isa;
  unsigned threads;
  double us, gbps, ceiling, fp32_us, fp16_us;
};

// Rows are kept and printed at the end, against the final ceiling: the best read loop or,
// if faster, the best dense kernel (eigen_fp32, fp16) of the whole run.
std::vector<row>& measured() {
  static std::vector<row> rows;
  return rows;
}
void print_row(const row& r, bool csv);
void print(const row& r, bool csv) {
  measured().push_back(r);
  if (!csv) std::fprintf(stderr, "  measured %s %td x %td m=%td %d-bit %s\n", r.kernel.c_str(), r.rows, r.cols, r.m, r.bits,
                         r.layout.c_str());
}
void print_row(const row& r, bool csv) {
  const double frac = r.gbps / r.ceiling;
  const double s32 = r.fp32_us > 0 ? r.fp32_us / r.us : 0.0, s16 = r.fp16_us > 0 ? r.fp16_us / r.us : 0.0;
  if (csv) {
    std::printf("%s,%td,%td,%td,%d,%s,%s,%u,%.1f,%.2f,%.2f,%.3f,%.2f,%.2f\n", r.kernel.c_str(), r.rows, r.cols, r.m,
                r.bits, r.layout.c_str(), r.isa.c_str(), r.threads, r.us, r.gbps, r.ceiling, frac, s32, s16);
  } else {
    std::printf("%-12s %6td x %-6td m=%-3td %2d-bit %-16s %-12s %2u thr %10.1f us %7.2f GB/s %5.1f%% of ceiling"
                "  x%-5.2f vs fp32  x%-5.2f vs fp16\n",
                r.kernel.c_str(), r.rows, r.cols, r.m, r.bits, r.layout.c_str(), r.isa.c_str(), r.threads, r.us,
                r.gbps, 100.0 * frac, s32, s16);
  }
  std::fflush(stdout);
}

bool wants(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

// Random codes and stats: every byte pattern is a valid packed block, and speed does not
// depend on the values.
template <class PM>
PM make_packed(idx rows, idx cols, axis ax, const std::string& extra, idx& k_out, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> weak;
  if constexpr (std::is_same_v<typename PM::outlier_policy, dense_columns>) {
    k_out = std::max<idx>(1, cols / 100);  // OWQ keeps ~1 % of the columns in fp16
    for (idx j = 0; j < k_out; ++j) weak.push_back(static_cast<std::int32_t>(j * (cols / k_out)));
  }
  PM W(rows, cols, ax, weak);
  auto codes = W.codes();
  for (std::size_t i = 0; i + 8 <= codes.size(); i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(codes.data() + i, &v, 8);
  }
  std::uniform_real_distribution<float> sc(0.001f, 0.01f);
  for (idx i = 0; i < W.stat_rows() * W.stat_cols(); ++i) W.stats().set(i, grid_params{sc(rng), 7.0f});
  if constexpr (std::is_same_v<typename PM::outlier_policy, dense_columns>) {
    for (auto& v : W.outliers().values) v = half(0.01f);
  }
  if constexpr (std::is_same_v<typename PM::outlier_policy, sparse_outliers>) {
    const double density = std::stod(extra) / 100.0;  // percent
    std::bernoulli_distribution pick(density);
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
  }
  return W;
}

struct baseline {
  double fp32_us = 0, fp16_us = 0;
};

template <int B, class O>
void bench_lowbit(const options& o, idx rows, idx cols, axis ax, const std::string& layout, const std::string& extra,
                  double ceiling, const std::vector<baseline>& base, const std::vector<float>& X) {
  using PM = packed_matrix<bits<B>, group<adaptive, 128>, O>;
  idx k = 0;
  const PM W0 = make_packed<PM>(rows, cols, ax, extra, k, 1234u + B);
  // Copies spanning 4x the LLC, one per call in turn: every call reads its weights from memory.
  const std::vector<PM> Ws(lowbit::bench::cache_cold_copies(W0.stored_bytes()), W0);
  std::size_t call = 0;
  std::string name = layout;
  if constexpr (std::is_same_v<O, dense_columns>) name = "oc+dense" + std::to_string(k);
  if constexpr (std::is_same_v<O, sparse_outliers>) name = "oc+sparse" + extra + "%";
  const std::string isa(cpu::isa_name(cpu::active_table().id));
  std::vector<float> Y(static_cast<std::size_t>(16 * rows)), Y32(Y.size());
  for (std::size_t mi = 0; mi < o.ms.size(); ++mi) {
    const idx m = o.ms[mi];
    for (const char* kern : {"lowbit", "lowbit_int8"}) {
      if (!wants(o.kernels, kern)) continue;
      const bool int8 = std::strcmp(kern, "lowbit_int8") == 0;
      const gemm_options opt{int8 ? activations::int8 : activations::fp32, nullptr};
      const double us = median_us(o.reps, [&] {
        kernel::cpu::gemm(Ws[call++ % Ws.size()], X.data(), Y.data(), m, opt);
      });
      const double gbps = static_cast<double>(W0.stored_bytes()) / us / 1e3;
      print({kern, rows, cols, m, B, name, isa, num_threads(), us, gbps, ceiling, base[mi].fp32_us, base[mi].fp16_us},
            o.csv);
      if (!int8 || o.csv) continue;
      // What int8 activations cost in accuracy: ||y_int8 - y_fp32|| / ||y_fp32|| on Gaussian x.
      kernel::cpu::gemm(Ws[(call - 1) % Ws.size()], X.data(), Y32.data(), m, gemm_options{});
      double num = 0, den = 0;
      for (std::size_t i = 0; i < static_cast<std::size_t>(m * rows); ++i) {
        num += (static_cast<double>(Y[i]) - Y32[i]) * (static_cast<double>(Y[i]) - Y32[i]);
        den += static_cast<double>(Y32[i]) * Y32[i];
      }
      std::printf("%-12s   int8 activations: relative L2 error of y vs the fp32 path %.2e\n", "", std::sqrt(num / den));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  if (o.threads) set_num_threads(o.threads);
  if (!o.isa.empty()) {
    bool found = false;
    for (int i = 0; i < cpu::isa_count; ++i)
      if (cpu::isa_name(static_cast<cpu::isa>(i)) == o.isa) {
        cpu::set_max_isa(static_cast<cpu::isa>(i));
        found = true;
      }
    if (!found) usage("--isa takes generic, avx2, avx512 or avx512_vnni");
  }
  const std::string isa(cpu::isa_name(cpu::active_table().id));
  const unsigned thr = num_threads();
  if (o.csv) {
    std::printf("kernel,rows,cols,m,bits,layout,isa,threads,median_us,gbps,ceiling_gbps,frac_of_ceiling,speedup_vs_fp32,speedup_vs_fp16\n");
  } else {
    std::printf("# bench/gemv: lowbit kernels on %s (detected %s), %u threads, Eigen %d.%d.%d (%s), LLC %zu MiB\n",
                isa.c_str(), std::string(cpu::isa_name(cpu::detect_isa())).c_str(), thr, EIGEN_WORLD_VERSION,
                EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, Eigen::SimdInstructionSetsInUse(), llc_bytes() >> 20);
  }
  lowbit::bench::read_ceiling rc = lowbit::bench::measure_read_ceiling(o.quick ? 5 : 11);
  const double ceiling = rc.best_gbps;  // provisional: raised below by faster dense kernels
  for (const auto& l : rc.loops)
    print({std::string("read_") + l.name, 0, 0, 0, 0, "stream", "scalar", thr, l.us, l.gbps, ceiling, 0, 0}, o.csv);
  const cpu::kernel_table& K = cpu::active_table();
  for (const auto& [rows, cols] : o.shapes) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> X(static_cast<std::size_t>(16 * cols));
    for (auto& v : X) v = nd(rng);
    std::vector<float> Y(static_cast<std::size_t>(16 * rows));
    std::vector<baseline> base(o.ms.size());
    // fp32 Eigen: rows split over the same pool; each task runs Eigen's GEMV/GEMM on its rows.
    if (wants(o.kernels, "eigen_fp32")) {
      using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      const std::vector<row_major> Wfs(lowbit::bench::cache_cold_copies(4 * static_cast<std::size_t>(rows * cols)),
                                       row_major::Random(rows, cols));
      std::size_t call = 0;
      for (std::size_t mi = 0; mi < o.ms.size(); ++mi) {
        const idx m = o.ms[mi];
        Eigen::Map<const Eigen::MatrixXf> Xm(X.data(), cols, m);  // column i = activation i
        Eigen::Map<Eigen::MatrixXf> Ym(Y.data(), rows, m);
        base[mi].fp32_us = median_us(o.reps, [&] {
          const row_major& Wf = Wfs[call++ % Wfs.size()];
          parallel_for(rows, 64, [&](idx a, idx b) { Ym.middleRows(a, b - a).noalias() = Wf.middleRows(a, b - a) * Xm; });
        });
        const double gbps = 4.0 * static_cast<double>(rows * cols) / base[mi].fp32_us / 1e3;
        print({"eigen_fp32", rows, cols, m, 32, "dense", "eigen", thr, base[mi].fp32_us, gbps, ceiling, base[mi].fp32_us,
               0},
              o.csv);
      }
    }
    // fp16 weights: one row at a time through the dot_f16 kernel (vcvtph2ps + FMA).
    if (wants(o.kernels, "fp16")) {
      // As many copies as keep the calls cache-cold (a 4096 x 4096 fp16 matrix is 32 MiB).
      const std::size_t n = static_cast<std::size_t>(rows * cols);
      const std::size_t copies = lowbit::bench::cache_cold_copies(2 * n);
      std::vector<std::uint16_t> Wh(copies * n);
      for (std::size_t i = 0; i < Wh.size(); ++i) Wh[i] = half(nd(rng) * 0.01f).bits;
      std::size_t call = 0;
      for (std::size_t mi = 0; mi < o.ms.size(); ++mi) {
        const idx m = o.ms[mi];
        base[mi].fp16_us = median_us(o.reps, [&] {
          const std::uint16_t* w = Wh.data() + (call++ % copies) * n;
          parallel_for(rows, 64, [&](idx a, idx b) {
            for (idx r = a; r < b; ++r)
              for (idx i = 0; i < m; ++i) Y[static_cast<std::size_t>(i * rows + r)] = K.dot_f16(w + r * cols, X.data() + i * cols, cols);
          });
        });
        const double gbps = 2.0 * static_cast<double>(rows * cols) / base[mi].fp16_us / 1e3;
        print({"fp16", rows, cols, m, 16, "dense", isa, thr, base[mi].fp16_us, gbps, ceiling, base[mi].fp32_us,
               base[mi].fp16_us},
              o.csv);
      }
    }
    for (int b : o.bits)
      for (const std::string& layout : o.layouts) {
        const axis ax = layout.rfind("ic", 0) == 0 ? axis::ic : axis::oc;
        auto run = [&]<int B>() {
          if (layout == "oc" || layout == "ic")
            bench_lowbit<B, no_outliers>(o, rows, cols, ax, layout, "", ceiling, base, X);
          else if (layout == "oc+dense")
            bench_lowbit<B, dense_columns>(o, rows, cols, ax, layout, "", ceiling, base, X);
          else if (layout == "oc+sparse")
            for (const char* d : {"0.5", "1", "2"}) bench_lowbit<B, sparse_outliers>(o, rows, cols, ax, layout, d, ceiling, base, X);
          else
            usage("--layout takes oc, ic, oc+dense, oc+sparse");
        };
        // Outlier stores are measured at 4 bits (their cost on top of the common format).
        if (layout.find('+') != std::string::npos && b != 4) continue;
        switch (b) {
          case 2: run.template operator()<2>(); break;
          case 3: run.template operator()<3>(); break;
          case 4: run.template operator()<4>(); break;
          default: run.template operator()<8>(); break;
        }
      }
  }
  // The final ceiling for every row, then the table.
  for (const row& r : measured())
    if (r.kernel == "eigen_fp32" || r.kernel == "fp16") rc.raise(r.gbps, r.kernel + " " + std::to_string(r.rows) + "x" + std::to_string(r.cols));
  if (!o.csv) std::printf("# read ceiling %.2f GB/s, set by %s (best of the read loops and of the dense kernels of this run)\n",
                          rc.best_gbps, rc.best_name.c_str());
  for (row r : measured()) {
    r.ceiling = rc.best_gbps;
    print_row(r, o.csv);
  }
  return 0;
}
