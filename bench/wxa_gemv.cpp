// W x A integer GEMV (RPTQ's payoff) against float-activation GEMVs on the same shapes,
// in the same process: y = W_hat · Q_A(x) with both operands integer codes (wxa_matrix),
// per-cluster static activation scales (32 k-means clusters of channel ranges).
//
// CSV (the columns of bench/gemv):
//   kernel,rows,cols,m,bits,layout,isa,threads,median_us,gbps,ceiling_gbps,frac_of_ceiling,
//   speedup_vs_fp32,speedup_vs_fp16
// gbps counts every byte the weight format stores (codes with padding + per-segment stats);
// ceiling_gbps is a streaming read over a buffer larger than the last-level cache with the
// same threads; the speedups are against an fp32 Eigen GEMV and an fp16 (F16C) GEMV of the
// same shape measured in this run. layout says the activation format (a8-clustered32 = 8-bit
// activation codes, 32 clusters; -g128 = weights from a packed RTN matrix with groups of 128;
// a-fp32 = float activations; a8-block = lowbit::gemv's own int8 activations, per block).
//
// Usage: wxa_gemv [--threads 1,2] [--reps 30] [--mib 512] [--quick]
//   --mib: size of the ceiling buffer and of the rotated weight copies (> last-level cache)
#include <lowbit/rptq.hpp>
#include <lowbit/rtn.hpp>

#include "support/measure.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using idx = lowbit::index;

using lowbit::bench::median_us;

#if defined(__x86_64__)
__attribute__((target("avx2"))) std::uint64_t stream_sum(const std::uint64_t* p, idx n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  idx i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) std::uint64_t t[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  std::uint64_t s = t[0] + t[1] + t[2] + t[3];
  for (; i < n; ++i) s += p[i];
  return s;
}
#else
std::uint64_t stream_sum(const std::uint64_t* p, idx n) {
  std::uint64_t s = 0;
  for (idx i = 0; i < n; ++i) s += p[i];
  return s;
}
#endif

// Read bandwidth ceiling: an AVX2 streaming sum over a buffer larger than the last-level
// cache, split over the same threads as the kernels (GB/s).
double read_ceiling_gbps(std::size_t bytes) {
  std::vector<std::uint64_t> buf(bytes / sizeof(std::uint64_t), 1);
  std::vector<std::uint64_t> partial(1024, 0);
  const idx n = static_cast<idx>(buf.size());
  const double us = median_us(5, [&] {
    lowbit::parallel_for(n, 1 << 16, [&](idx b, idx e) {
      partial[static_cast<std::size_t>(b / (1 << 16)) % partial.size()] += stream_sum(buf.data() + b, e - b);
    });
  });
  if (partial[0] == 42) std::printf("#\n");  // keep the sums alive
  return static_cast<double>(bytes) / (us * 1e3);
}

// Median time of run(copy) cycling through enough copies of the weights that together
// exceed `rotate_bytes`, so every call streams its weights from memory, not from a cache
// that holds one copy (server L3s hold a whole 4096 x 4096 4-bit layer).
template <class Make, class Run>
double rotating_us(int reps, double bytes_one, double rotate_bytes, Make make, Run run) {
  const int copies = std::max(1, static_cast<int>(std::ceil(rotate_bytes / bytes_one)));
  std::vector<decltype(make())> pool;
  for (int i = 0; i < copies; ++i) pool.push_back(make());
  int k = 0;
  return median_us(std::max(reps, copies), [&] { run(pool[static_cast<std::size_t>(k++ % copies)]); });
}

#if defined(__x86_64__)
// fp16 weights x fp32 activations (the usual fp16 decode baseline), 8 rows' worth of FMAs.
__attribute__((target("avx2,fma,f16c"))) float dot_fp16(const std::uint16_t* w, const float* x, idx n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  idx j = 0;
  for (; j + 16 <= n; j += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j))), _mm256_loadu_ps(x + j), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j + 8))), _mm256_loadu_ps(x + j + 8), acc1);
  }
  acc0 = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float r = _mm_cvtss_f32(s);
  for (; j < n; ++j) r += _cvtsh_ss(w[j]) * x[j];
  return r;
}
#endif

struct row_out {
  std::string kernel, layout, isa;
  int bits;
  double us, bytes;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<unsigned> threads_list{1, 2};
  int reps = 30;
  bool quick = false;
  double mib = 512;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads_list.clear();
      for (const char* p = argv[++i]; *p;) {
        threads_list.push_back(static_cast<unsigned>(std::strtoul(p, const_cast<char**>(&p), 10)));
        if (*p == ',') ++p;
      }
    } else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--mib") && i + 1 < argc) {
      mib = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--threads 1,2] [--reps N] [--mib M] [--quick]\n", argv[0]);
      return 2;
    }
  }
  std::printf("kernel,rows,cols,m,bits,layout,isa,threads,median_us,gbps,ceiling_gbps,frac_of_ceiling,speedup_vs_fp32,speedup_vs_fp16\n");
  const std::vector<std::pair<idx, idx>> shapes = quick ? std::vector<std::pair<idx, idx>>{{1024, 1024}}
                                                            : std::vector<std::pair<idx, idx>>{{4096, 4096}, {11008, 4096}};
  for (auto [rows, cols] : shapes) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> W(rows, cols);
    for (idx i = 0; i < W.size(); ++i) W.data()[i] = 0.02f * nd(rng);
    // Calibration: channel c scaled by a log-uniform factor (LLM-like channel ranges).
    std::vector<float> chan_scale(static_cast<std::size_t>(cols));
    std::uniform_real_distribution<float> lu(std::log(0.05f), std::log(20.0f));
    for (auto& s : chan_scale) s = std::exp(lu(rng));
    Eigen::MatrixXf X(64, cols);
    for (idx t = 0; t < X.rows(); ++t)
      for (idx c = 0; c < cols; ++c) X(t, c) = chan_scale[static_cast<std::size_t>(c)] * nd(rng);
    lowbit::rptq::channel_ranges ranges(cols);
    ranges.observe(X);
    const auto order = lowbit::rptq::cluster_channels(ranges, {32, 1, {}});
    const Eigen::MatrixXf Wr = lowbit::rptq::permute_columns(lowbit::to_view(W), order);
    std::vector<float> x(static_cast<std::size_t>(cols)), y(static_cast<std::size_t>(rows));
    for (idx c = 0; c < cols; ++c) x[static_cast<std::size_t>(c)] = X(3, order.perm[static_cast<std::size_t>(c)]);

    // Weight variants (all from the reordered W).
    struct variant {
      std::string layout;
      int wbits;
      lowbit::wxa_matrix m;
    };
    std::vector<variant> variants;
    auto grid = [&](int ab) { return lowbit::rptq::activation_grid(ranges, order, ab); };
    variants.push_back({"a8-clustered32", 4, lowbit::wxa_matrix::quantize(lowbit::to_view(Wr), 4, grid(8))});
    variants.push_back({"a8-clustered32", 8, lowbit::wxa_matrix::quantize(lowbit::to_view(Wr), 8, grid(8))});
    variants.push_back({"a4-clustered32", 4, lowbit::wxa_matrix::quantize(lowbit::to_view(Wr), 4, grid(4))});
    variants.push_back({"a3-clustered32", 3, lowbit::wxa_matrix::quantize(lowbit::to_view(Wr), 3, grid(3))});
    using namespace lowbit;
    const auto pm4 = quantize<rtn<bits<4>, group<oc, 128>>>(Wr);
    variants.push_back({"a8-clustered32-g128", 4, wxa_matrix::from_packed(pm4, grid(8))});

    // Baselines' storage.
    std::vector<std::uint16_t> W16(static_cast<std::size_t>(W.size()));
    for (idx i = 0; i < W.size(); ++i) W16[static_cast<std::size_t>(i)] = lowbit::half(W.data()[i]).bits;

    for (unsigned T : threads_list) {
      lowbit::set_num_threads(T);
      const double rot = mib * 1048576.0;
      const double ceiling = read_ceiling_gbps(static_cast<std::size_t>(rot));
      std::vector<row_out> out;
      const double us32 = rotating_us(reps, 4.0 * static_cast<double>(W.size()), rot, [&] { return W; }, [&](const auto& Wc) {
        lowbit::parallel_for(rows, 256, [&](idx b, idx e) {
          Eigen::Map<Eigen::VectorXf>(y.data() + b, e - b).noalias() =
              Wc.middleRows(b, e - b) * Eigen::Map<const Eigen::VectorXf>(x.data(), cols);
        });
      });
      out.push_back({"fp32_eigen", "a-fp32", "eigen", 32, us32, 4.0 * static_cast<double>(W.size())});
      double us16 = us32;
#if defined(__x86_64__)
      if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        us16 = rotating_us(reps, 2.0 * static_cast<double>(W.size()), rot, [&] { return W16; }, [&](const auto& Wc) {
          lowbit::parallel_for(rows, 256, [&](idx b, idx e) {
            for (idx r = b; r < e; ++r)
              y[static_cast<std::size_t>(r)] = dot_fp16(Wc.data() + r * cols, x.data(), cols);
          });
        });
        out.push_back({"fp16_f16c", "a-fp32", "avx2", 16, us16, 2.0 * static_cast<double>(W.size())});
      }
#endif
      // The float-activation low-bit GEMV of kernel/gemv.hpp on the same 4-bit g128 weights.
      const double usq = rotating_us(std::max(3, reps / 5), static_cast<double>(pm4.stored_bytes()), rot,
                                     [&] { return pm4; }, [&](const auto& m) { lowbit::gemv(m, x, y); });
      out.push_back({"lowbit_gemv", "a-fp32-g128", "dispatch", 4, usq, static_cast<double>(pm4.stored_bytes())});
      // ... and with its int8 activations (quantized per block once per call, ggml-style).
      lowbit::gemm_options int8_act;
      int8_act.act = lowbit::activations::int8;
      const double usq8 = rotating_us(std::max(3, reps / 5), static_cast<double>(pm4.stored_bytes()), rot,
                                      [&] { return pm4; }, [&](const auto& m) { lowbit::gemv(m, x, y, int8_act); });
      out.push_back({"lowbit_gemv", "a8-block-g128", "dispatch", 4, usq8, static_cast<double>(pm4.stored_bytes())});
      for (const auto& v : variants)
        for (lowbit::kernel::cpu::isa isa : lowbit::available_int8_isas()) {
          if (isa == lowbit::kernel::cpu::isa::generic && rows > 4096) continue;  // slow; one shape is enough
          const bool scalar = isa == lowbit::kernel::cpu::isa::generic;  // compute-bound: no rotation needed
          const double us = rotating_us(scalar ? 3 : reps, static_cast<double>(v.m.stored_bytes()), scalar ? 0.0 : rot,
                                        [&] { return v.m; }, [&](const auto& m) { m.gemv(x, y, isa); });
          out.push_back({"wxa_gemv", v.layout, std::string(lowbit::int8_isa_name(isa)), v.wbits, us,
                         static_cast<double>(v.m.stored_bytes())});
        }
      for (const auto& o : out) {
        const double gbps = o.bytes / (o.us * 1e3);
        std::printf("%s,%td,%td,1,%d,%s,%s,%u,%.1f,%.2f,%.2f,%.3f,%.2f,%.2f\n", o.kernel.c_str(), rows, cols, o.bits,
                    o.layout.c_str(), o.isa.c_str(), T, o.us, gbps, ceiling, gbps / ceiling, us32 / o.us, us16 / o.us);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
