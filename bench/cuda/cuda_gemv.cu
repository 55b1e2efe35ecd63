// bench/cuda_gemv: decode-time GEMV/GEMM on the GPU, judged against the device's own copy
// bandwidth and against cuBLAS, all measured in the same process (performance.md, GPU):
//   copy_ceiling  cudaMemcpy device-to-device of 1 GiB, counting bytes read + written;
//   cublas_fp32   cublasSgemm on fp32 weights (speedup_vs_fp32 baseline);
//   cublas_fp16   cublasGemmEx, fp16 weights/activations/outputs, fp32 compute (the
//                 speedup_vs_fp16 baseline: cuBLAS picks its GEMV kernel at m = 1);
//   lowbit_cuda   backend_traits<cuda>::gemm on an uploaded packed matrix.
// gbps counts every byte the weight format stores (packed_matrix::stored_bytes(), as in
// bench/gemv). Each timed call uses the next of several weight copies whose total exceeds
// 3x the L2 cache, so no call finds its weights in L2. Timing: CUDA events around a batch of
// calls, the median over repetitions of the per-call mean.
//
//   cuda_gemv [--csv] [--quick] [--bits 2,3,4,8] [--layout oc,ic,oc+dense,oc+sparse]
//             [--m 1,4,16] [--shape 8192x8192,...] [--reps N] [--path auto,registers,bulk]
// --path picks gemm's main loop (gemm_config): auto (= registers), registers, bulk; the isa
// column then reads e.g. sm_90/bulk.
#include <cublas_v2.h>
#include <lowbit/kernel/cuda/backend.cuh>

#include "../support/args.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace kc = lowbit::kernel::cuda;
using idx = lowbit::index;
using lowbit::axis;

namespace {

void cublas_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) lowbit::detail::fail("cuBLAS call ", what, " failed with status ", static_cast<int>(s));
}
#define CUBLAS_CHECK(expr) cublas_check((expr), #expr)

struct options {
  bool csv = false, quick = false;
  std::vector<int> bits{2, 3, 4, 8};
  std::vector<std::string> layouts{"oc", "ic"};
  std::vector<idx> ms{1, 4, 16};
  std::vector<std::pair<idx, idx>> shapes{{4096, 4096}, {8192, 8192}, {8192, 28672}, {28672, 8192}};
  int reps = 21;
  std::vector<std::string> paths{"auto"};  // main loops to time: auto, registers, bulk
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "cuda_gemv: %s\nusage: cuda_gemv [--csv] [--quick] [--bits 2,3,4,8] [--layout oc,ic,oc+dense,oc+sparse]\n"
               "                 [--m 1,4,16] [--shape RxC,...] [--reps N] [--path auto,registers,bulk]\n",
               why.c_str());
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--csv") o.csv = true;
    else if (a == "--quick") o.quick = true, o.reps = 7;
    else if (a == "--bits") { o.bits.clear(); for (auto& t : lowbit::bench::split_list(value())) o.bits.push_back(std::stoi(t)); }
    else if (a == "--layout") o.layouts = lowbit::bench::split_list(value());
    else if (a == "--path") o.paths = lowbit::bench::split_list(value());
    else if (a == "--m") { o.ms.clear(); for (auto& t : lowbit::bench::split_list(value())) o.ms.push_back(std::stol(t)); }
    else if (a == "--shape") {
      std::string error;
      const auto shapes = lowbit::bench::parse_shapes(value(), error);
      if (!error.empty()) usage(error);
      o.shapes.assign(shapes.begin(), shapes.end());
    } else if (a == "--reps") o.reps = std::max(3, std::stoi(value()));
    else usage("unknown argument " + a);
  }
  for (idx m : o.ms)
    if (m < 1) usage("--m values must be >= 1");
  return o;
}

struct row {
  std::string kernel;
  idx rows, cols, m;
  int bits;
  std::string layout, isa;
  int threads;
  double us, gbps, ceiling, fp32_us, fp16_us;
};

void print(const row& r, bool csv) {
  const double frac = r.gbps / r.ceiling;
  const double s32 = r.fp32_us > 0 ? r.fp32_us / r.us : 0.0, s16 = r.fp16_us > 0 ? r.fp16_us / r.us : 0.0;
  if (csv)
    std::printf("%s,%td,%td,%td,%d,%s,%s,%d,%.1f,%.2f,%.2f,%.3f,%.2f,%.2f\n", r.kernel.c_str(), r.rows, r.cols, r.m, r.bits,
                r.layout.c_str(), r.isa.c_str(), r.threads, r.us, r.gbps, r.ceiling, frac, s32, s16);
  else
    std::printf("%-12s %6td x %-6td m=%-3td %2d-bit %-14s %-6s %4d SMs %9.1f us %8.1f GB/s %5.1f%% of ceiling"
                "  x%-5.2f vs fp32  x%-5.2f vs fp16\n",
                r.kernel.c_str(), r.rows, r.cols, r.m, r.bits, r.layout.c_str(), r.isa.c_str(), r.threads, r.us, r.gbps,
                100.0 * frac, s32, s16);
  std::fflush(stdout);
}

// Median over `reps` of the mean time of `batch` calls of fn(i), in microseconds.
template <class F>
double median_us(int reps, int batch, F&& fn) {
  cudaEvent_t a, b;
  LOWBIT_CUDA_CHECK(cudaEventCreate(&a));
  LOWBIT_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < batch; ++i) fn(i);  // warm-up (module load, cuBLAS heuristics)
  LOWBIT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    LOWBIT_CUDA_CHECK(cudaEventRecord(a));
    for (int i = 0; i < batch; ++i) fn(i);
    LOWBIT_CUDA_CHECK(cudaEventRecord(b));
    LOWBIT_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    LOWBIT_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(1e3 * ms / batch);
  }
  LOWBIT_CUDA_CHECK(cudaEventDestroy(a));
  LOWBIT_CUDA_CHECK(cudaEventDestroy(b));
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

int copies_for(std::size_t bytes, std::size_t l2) {
  return static_cast<int>(std::clamp<std::size_t>((3 * l2 + bytes - 1) / bytes, 2, 64));
}

// Random fp16 values N(0, sigma) (never all zero).
std::vector<__half> random_halves(std::size_t n, float sigma, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<__half> h(n);
  for (auto& v : h) v = __float2half_rn(nd(rng));
  return h;
}

// Random codes (every byte pattern is valid), stats and outliers: speed does not depend on them.
template <class PM>
PM make_packed(idx rows, idx cols, axis ax, double sparse_percent, idx& k_out, std::uint32_t seed) {
  using namespace lowbit;
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
    std::bernoulli_distribution pick(sparse_percent / 100.0);
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

struct context {
  options o;
  std::string isa;
  int sms = 0;
  std::size_t l2 = 0;
  double ceiling = 0;
  int batch = 0;
};

template <int B, class O>
void bench_lowbit(const context& ctx, idx rows, idx cols, axis ax, const std::string& layout, double sparse_percent,
                  const std::vector<double>& fp32_us, const std::vector<double>& fp16_us, const kc::device_buffer<__half>& X,
                  kc::device_buffer<__half>& Y) {
  using namespace lowbit;
  using PM = packed_matrix<bits<B>, group<adaptive, 128>, O>;
  idx k = 0;
  const PM W = make_packed<PM>(rows, cols, ax, sparse_percent, k, 1234u + B);
  std::string name = layout;
  if constexpr (std::is_same_v<O, dense_columns>) name = "oc+dense" + std::to_string(k);
  if constexpr (std::is_same_v<O, sparse_outliers>) {
    std::ostringstream s;
    s << "oc+sparse" << sparse_percent << "%";
    name = s.str();
  }
  std::vector<kc::device_packed_matrix> D;
  D.push_back(backend_traits<cuda>::upload(W));
  const int n = copies_for(D[0].device_bytes(), ctx.l2);
  for (int i = 1; i < n; ++i) D.push_back(backend_traits<cuda>::upload(W));
  for (const std::string& path : ctx.o.paths) {
    kc::gemm_config cfg;
    if (path == "registers") cfg.path = kc::gemm_path::registers;
    else if (path == "bulk") cfg.path = kc::gemm_path::bulk_copy;
    else if (path != "auto") usage("unknown --path " + path);
    const std::string isa = path == "auto" ? ctx.isa : ctx.isa + "/" + path;
    for (std::size_t mi = 0; mi < ctx.o.ms.size(); ++mi) {
      const idx m = ctx.o.ms[mi];
      const double us = median_us(ctx.o.reps, ctx.batch, [&](int i) {
        kc::gemm(D[static_cast<std::size_t>(i % n)], X.data(), Y.data(), m, nullptr, cfg);
      });
      const double gbps = static_cast<double>(W.stored_bytes()) / us / 1e3;
      print({"lowbit_cuda", rows, cols, m, B, name, isa, ctx.sms, us, gbps, ctx.ceiling, fp32_us[mi], fp16_us[mi]},
            ctx.o.csv);
    }
  }
}

}  // namespace

int main(int argc, char** argv) try {
  context ctx;
  ctx.o = parse(argc, argv);
  const options& o = ctx.o;
  if (!kc::device_available()) {
    std::printf("# cuda_gemv: no CUDA device, nothing to measure\n");
    return 0;
  }
  int dev = 0;
  LOWBIT_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  LOWBIT_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  ctx.isa = lowbit::backend_traits<lowbit::cuda>::isa();
  ctx.sms = prop.multiProcessorCount;
  ctx.l2 = static_cast<std::size_t>(prop.l2CacheSize);
  ctx.batch = o.quick ? 20 : 50;
  if (o.csv)
    std::printf("kernel,rows,cols,m,bits,layout,isa,threads,median_us,gbps,ceiling_gbps,frac_of_ceiling,speedup_vs_fp32,speedup_vs_fp16\n");
  else
    std::printf("# bench/cuda_gemv on %s (%s, %d SMs, L2 %zu MiB); threads column = SMs\n", prop.name, ctx.isa.c_str(),
                ctx.sms, ctx.l2 >> 20);

  // ---- device copy bandwidth: 1 GiB device-to-device, read + write bytes ----
  {
    const std::size_t bytes = std::size_t{1} << 30;
    kc::device_buffer<std::uint8_t> a(bytes), b(bytes);
    LOWBIT_CUDA_CHECK(cudaMemset(a.data(), 1, bytes));
    const double us = median_us(o.reps, 5, [&](int) {
      LOWBIT_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
    });
    ctx.ceiling = 2.0 * static_cast<double>(bytes) / us / 1e3;
    print({"copy_ceiling", 0, 0, 0, 0, "memcpy", ctx.isa, ctx.sms, us, ctx.ceiling, ctx.ceiling, 0, 0}, o.csv);
  }

  cublasHandle_t handle;
  CUBLAS_CHECK(cublasCreate(&handle));
  const idx max_m = *std::max_element(o.ms.begin(), o.ms.end());
  for (const auto& [rows, cols] : o.shapes) {
    const kc::device_buffer<__half> X(random_halves(static_cast<std::size_t>(max_m * cols), 1.0f, 7));
    kc::device_buffer<__half> Y(static_cast<std::size_t>(max_m * rows));
    std::vector<double> fp32_us(o.ms.size()), fp16_us(o.ms.size());
    // ---- cuBLAS baselines on dense weights (row-major W [rows x cols] = column-major Wᵀ) ----
    {
      const std::size_t n = static_cast<std::size_t>(rows * cols);
      const int copies = copies_for(n * sizeof(float), ctx.l2);
      std::vector<kc::device_buffer<float>> Wf;
      {
        std::vector<float> h(n);
        std::mt19937 rng(3);
        std::normal_distribution<float> nd(0.0f, 0.02f);
        for (auto& v : h) v = nd(rng);
        for (int i = 0; i < copies; ++i) Wf.emplace_back(h);
      }
      std::vector<float> xh(static_cast<std::size_t>(max_m * cols), 0.5f);
      const kc::device_buffer<float> Xf(xh);
      kc::device_buffer<float> Yf(static_cast<std::size_t>(max_m * rows));
      const float one = 1.0f, zero = 0.0f;
      for (std::size_t mi = 0; mi < o.ms.size(); ++mi) {
        const int m = static_cast<int>(o.ms[mi]);
        fp32_us[mi] = median_us(o.reps, ctx.batch, [&](int i) {
          CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), m, static_cast<int>(cols), &one,
                                   Wf[static_cast<std::size_t>(i % copies)].data(), static_cast<int>(cols), Xf.data(),
                                   static_cast<int>(cols), &zero, Yf.data(), static_cast<int>(rows)));
        });
        print({"cublas_fp32", rows, cols, m, 32, "dense", ctx.isa, ctx.sms, fp32_us[mi],
               4.0 * static_cast<double>(n) / fp32_us[mi] / 1e3, ctx.ceiling, fp32_us[mi], 0},
              o.csv);
      }
    }
    {
      const std::size_t n = static_cast<std::size_t>(rows * cols);
      const int copies = copies_for(n * sizeof(__half), ctx.l2);
      std::vector<kc::device_buffer<__half>> Wh;
      {
        const std::vector<__half> h = random_halves(n, 0.02f, 5);
        for (int i = 0; i < copies; ++i) Wh.emplace_back(h);
      }
      const float one = 1.0f, zero = 0.0f;
      for (std::size_t mi = 0; mi < o.ms.size(); ++mi) {
        const int m = static_cast<int>(o.ms[mi]);
        fp16_us[mi] = median_us(o.reps, ctx.batch, [&](int i) {
          CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), m, static_cast<int>(cols), &one,
                                    Wh[static_cast<std::size_t>(i % copies)].data(), CUDA_R_16F, static_cast<int>(cols),
                                    X.data(), CUDA_R_16F, static_cast<int>(cols), &zero, Y.data(), CUDA_R_16F,
                                    static_cast<int>(rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        });
        print({"cublas_fp16", rows, cols, m, 16, "dense", ctx.isa, ctx.sms, fp16_us[mi],
               2.0 * static_cast<double>(n) / fp16_us[mi] / 1e3, ctx.ceiling, fp32_us[mi], fp16_us[mi]},
              o.csv);
      }
    }
    for (int b : o.bits)
      for (const std::string& layout : o.layouts) {
        const axis ax = layout.rfind("ic", 0) == 0 ? axis::ic : axis::oc;
        auto run = [&]<int B>() {
          if (layout == "oc" || layout == "ic")
            bench_lowbit<B, lowbit::no_outliers>(ctx, rows, cols, ax, layout, 0, fp32_us, fp16_us, X, Y);
          else if (layout == "oc+dense")
            bench_lowbit<B, lowbit::dense_columns>(ctx, rows, cols, ax, layout, 0, fp32_us, fp16_us, X, Y);
          else if (layout == "oc+sparse")
            bench_lowbit<B, lowbit::sparse_outliers>(ctx, rows, cols, ax, layout, 1.0, fp32_us, fp16_us, X, Y);
          else
            usage("unknown layout " + layout);
        };
        switch (b) {
          case 2: run.template operator()<2>(); break;
          case 3: run.template operator()<3>(); break;
          case 4: run.template operator()<4>(); break;
          case 8: run.template operator()<8>(); break;
          default: usage("--bits takes 2, 3, 4 or 8");
        }
      }
  }
  CUBLAS_CHECK(cublasDestroy(handle));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "cuda_gemv: %s\n", e.what());
  return 1;
}
