// bench/peer_ggml: lowbit's GEMV/GEMM against ggml's (llama.cpp's CPU kernels) in one process,
// on the same Gaussian weights, shapes and threads (issue #20; docs/performance.md, "Side by
// side with ggml"). Built only when LOWBIT_PEER_GGML names llama.cpp's ggml folder:
// `scripts/peer-llamacpp gemv` fetches it (pinned sdist, outside the repository) and runs this.
//
//   ggml          ggml_mul_mat, weights in a plain CPU buffer (what test-backend-ops times);
//   ggml_repack   the same weights in the CPU backend's CPU_REPACK buffer (interleaved 8-row
//                 blocks: what llama.cpp itself runs on an AVX2 machine for q4_0 and q4_K);
//   lowbit        packed_matrix GEMV/GEMM with fp32 activations (the exact path);
//   lowbit_int8   the same with activations quantized once per call to int8 blocks (as ggml
//                 quantizes its activations to q8_0 / q8_K inside every call).
// Every row times the whole product, fp32 x in, fp32 y out, on ggml's own persistent
// threadpool / lowbit's pool with the same thread count. Every operand is cycled through copies
// spanning 4x the LLC, so no call reads its weights from cache. gbps counts every byte the
// format stores; the ceiling is the best of bench/gemv's read loops, raised to any kernel of
// the run that read faster (so no fraction exceeds 1; rows print at the end). rel_err is
// ||y - W x|| / ||W x|| against the float64 product with the unquantized W: what the format
// (and, for int8 / ggml, the activation quantization) costs on this matrix.
//
//   peer_ggml [--csv] [--quick] [--shape 4096x4096,...] [--m 1,2,4,8] [--types q4_0,q4_K,q3_K]
//             [--bits 4,3,2] [--threads N] [--reps N]
#include <lowbit/kernel/gemv.hpp>
#include <lowbit/rtn.hpp>

#include "support/args.hpp"
#include "support/measure.hpp"

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>

#include <Eigen/Dense>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace lowbit;
using idx = lowbit::index;

namespace {

struct options {
  bool csv = false, quick = false;
  std::vector<std::pair<idx, idx>> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}, {14336, 4096}};
  std::vector<idx> ms = {1, 2, 4, 8};
  std::vector<std::string> types = {"q4_0", "q4_K", "q3_K"};
  std::vector<int> bits = {4, 3, 2};
  unsigned threads = 0;
  int reps = 0;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "peer_ggml: %s\nusage: peer_ggml [--csv] [--quick] [--shape RxC,...] [--m 1,2,4,8] [--types q4_0,q4_K,q3_K]\n"
               "                 [--bits 4,3,2] [--threads N] [--reps N]\n",
               msg.c_str());
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  bool shapes_given = false, m_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + a);
      return argv[++i];
    };
    if (a == "--csv") o.csv = true;
    else if (a == "--quick") o.quick = true;
    else if (a == "--types") o.types = lowbit::bench::split_list(value());
    else if (a == "--bits") { o.bits.clear(); for (auto& t : lowbit::bench::split_list(value())) o.bits.push_back(std::stoi(t)); }
    else if (a == "--m") { o.ms.clear(); m_given = true; for (auto& t : lowbit::bench::split_list(value())) o.ms.push_back(std::stol(t)); }
    else if (a == "--shape") {
      std::string error;
      const auto shapes = lowbit::bench::parse_shapes(value(), error);
      if (!error.empty()) usage(error);
      o.shapes.assign(shapes.begin(), shapes.end());
      shapes_given = true;
    } else if (a == "--threads") o.threads = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--reps") o.reps = std::stoi(value());
    else if (a == "--help" || a == "-h") usage("help");
    else usage("unknown option " + a);
  }
  for (int b : o.bits)
    if (b < 2 || b > 4) usage("--bits takes 2, 3, 4");
  for (idx m : o.ms)
    if (m < 1 || m > 16) usage("--m takes 1..16");
  for (auto [r, c] : o.shapes)
    if (r < 8 || c % 256 != 0) usage("shapes need >= 8 rows and columns a multiple of 256 (the K-quants' block)");
  if (o.quick) {
    if (!shapes_given) o.shapes = {{4096, 4096}, {4096, 11008}};
    if (!m_given) o.ms = {1, 8};
  }
  if (o.reps == 0) o.reps = o.quick ? 7 : 15;
  return o;
}

struct result {
  std::string kernel, type;
  idx rows, cols, m;
  double bpw, us, gbps, rel_err;
  double speedup = 0.0;  // ggml's fastest q4_K time at this shape and m / this row's
};

// ||y - W x|| / ||W x|| over all m columns, against the float64 product.
double relative_error(const Eigen::MatrixXd& exact, const std::vector<float>& Y, idx rows, idx m) {
  double num = 0, den = 0;
  for (idx i = 0; i < m; ++i)
    for (idx r = 0; r < rows; ++r) {
      const double e = exact(r, i), d = static_cast<double>(Y[static_cast<std::size_t>(i * rows + r)]) - e;
      num += d * d;
      den += e * e;
    }
  return std::sqrt(num / den);
}

ggml_type ggml_type_named(const std::string& name) {
  for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
    const char* n = ggml_type_name(static_cast<ggml_type>(t));
    if (n != nullptr && name == n && ggml_get_type_traits(static_cast<ggml_type>(t))->blck_size > 0) return static_cast<ggml_type>(t);
  }
  usage("--types: ggml has no type '" + name + "'");
}

// ggml's CPU backend with a persistent threadpool (as llama.cpp attaches one), and its
// repack buffer type where the build offers it.
struct ggml_cpu_peer {
  ggml_backend_t backend = nullptr;
  ggml_threadpool* pool = nullptr;
  ggml_backend_buffer_type_t repack = nullptr;

  explicit ggml_cpu_peer(int threads) {
    // ggml logs every repacked tensor at info level; keep its warnings and errors only.
    ggml_log_set([](ggml_log_level level, const char* text, void*) {
      if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
    }, nullptr);
    ggml_cpu_init();
    backend = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(backend, threads);
    ggml_threadpool_params p = ggml_threadpool_params_default(threads);
    pool = ggml_threadpool_new(&p);
    ggml_backend_cpu_set_threadpool(backend, pool);
    ggml_backend_dev_t dev = ggml_backend_get_device(backend);
    auto extra = reinterpret_cast<ggml_backend_dev_get_extra_bufts_t>(
        ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts"));
    if (extra != nullptr)
      for (ggml_backend_buffer_type_t* b = extra(dev); b != nullptr && *b != nullptr; ++b)
        if (std::strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) repack = *b;
  }
  ~ggml_cpu_peer() {
    ggml_backend_free(backend);
    ggml_threadpool_free(pool);
  }
  ggml_cpu_peer(const ggml_cpu_peer&) = delete;
  ggml_cpu_peer& operator=(const ggml_cpu_peer&) = delete;
};

// Times ggml_mul_mat(W, x) for one type, in a plain or a repack buffer. Returns false when
// the repack buffer does not take this type / shape (ggml leaves the tensor's extra empty).
bool bench_ggml(const options& o, ggml_cpu_peer& peer, ggml_type type, bool repacked, const Eigen::MatrixXf& W,
                const std::vector<float>& X, const std::vector<Eigen::MatrixXd>& exact, std::vector<result>& out) {
  const idx rows = W.rows(), cols = W.cols();
  // ggml's rows are W's rows: ne0 = cols (contiguous), ne1 = rows. Quantize from row-major floats.
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Wr = W;
  const std::size_t bytes = ggml_row_size(type, cols) * static_cast<std::size_t>(rows);
  std::vector<std::uint8_t> q(bytes);
  ggml_quantize_chunk(type, Wr.data(), q.data(), 0, rows, cols, nullptr);
  const std::size_t copies = lowbit::bench::cache_cold_copies(bytes);

  ggml_init_params wp{ggml_tensor_overhead() * (copies + 1), nullptr, true};
  ggml_context* wctx = ggml_init(wp);
  std::vector<ggml_tensor*> Ws;
  for (std::size_t c = 0; c < copies; ++c) Ws.push_back(ggml_new_tensor_2d(wctx, type, cols, rows));
  ggml_backend_buffer_type_t buft = repacked ? peer.repack : ggml_backend_cpu_buffer_type();
  ggml_backend_buffer_t wbuf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, buft);
  if (repacked && Ws[0]->extra == nullptr) {  // no repacked kernel for this type here
    ggml_backend_buffer_free(wbuf);
    ggml_free(wctx);
    return false;
  }
  for (ggml_tensor* t : Ws) ggml_backend_tensor_set(t, q.data(), 0, bytes);

  const std::string kernel = repacked ? "ggml_repack" : "ggml";
  for (std::size_t mi = 0; mi < o.ms.size(); ++mi) {
    const idx m = o.ms[mi];
    // One graph per weight copy, all reading the same x and writing their own y.
    const std::size_t graph_bytes = ggml_graph_overhead() * copies + ggml_tensor_overhead() * (2 * copies + 2);
    ggml_init_params gp{graph_bytes, nullptr, true};
    ggml_context* gctx = ggml_init(gp);
    ggml_tensor* x = ggml_new_tensor_2d(gctx, GGML_TYPE_F32, cols, m);
    std::vector<ggml_cgraph*> graphs;
    std::vector<ggml_tensor*> ys;
    for (std::size_t c = 0; c < copies; ++c) {
      ggml_tensor* y = ggml_mul_mat(gctx, Ws[c], x);
      ggml_cgraph* g = ggml_new_graph(gctx);
      ggml_build_forward_expand(g, y);
      graphs.push_back(g);
      ys.push_back(y);
    }
    ggml_backend_buffer_t gbuf = ggml_backend_alloc_ctx_tensors(gctx, peer.backend);
    ggml_backend_tensor_set(x, X.data(), 0, sizeof(float) * static_cast<std::size_t>(m * cols));
    std::size_t call = 0;
    std::size_t last = 0;
    const double us = lowbit::bench::median_us(o.reps, [&] {
      last = call++ % copies;
      ggml_backend_graph_compute(peer.backend, graphs[last]);
    });
    std::vector<float> Y(static_cast<std::size_t>(m * rows));
    ggml_backend_tensor_get(ys[last], Y.data(), 0, sizeof(float) * Y.size());
    out.push_back({kernel, ggml_type_name(type), rows, cols, m, 8.0 * static_cast<double>(bytes) / static_cast<double>(rows * cols),
                   us, static_cast<double>(bytes) / us / 1e3, relative_error(exact[mi], Y, rows, m)});
    ggml_backend_buffer_free(gbuf);
    ggml_free(gctx);
  }
  ggml_backend_buffer_free(wbuf);
  ggml_free(wctx);
  return true;
}

// lowbit's RTN B-bit, per-OC groups of 128, fp16 stats: the format bench/gemv times.
template <int B>
void bench_lowbit(const options& o, const Eigen::MatrixXf& W, const std::vector<float>& X,
                  const std::vector<Eigen::MatrixXd>& exact, std::vector<result>& out) {
  const idx rows = W.rows(), cols = W.cols();
  const auto q = quantize<rtn<bits<B>, group<oc, 128>>>(W);
  const auto& P = q.packed();
  using PM = std::remove_cvref_t<decltype(P)>;
  const std::vector<PM> Ps(lowbit::bench::cache_cold_copies(P.stored_bytes()), P);
  const std::string type = std::to_string(B) + "-bit g128";
  for (std::size_t mi = 0; mi < o.ms.size(); ++mi) {
    const idx m = o.ms[mi];
    for (const bool int8 : {false, true}) {
      const gemm_options opt{int8 ? activations::int8 : activations::fp32, nullptr};
      std::vector<float> Y(static_cast<std::size_t>(m * rows));
      std::size_t call = 0;
      const double us = lowbit::bench::median_us(o.reps, [&] {
        kernel::cpu::gemm(Ps[call++ % Ps.size()], X.data(), Y.data(), m, opt);
      });
      out.push_back({int8 ? "lowbit_int8" : "lowbit", type, rows, cols, m, P.bits_per_weight(), us,
                     static_cast<double>(P.stored_bytes()) / us / 1e3, relative_error(exact[mi], Y, rows, m)});
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  if (o.threads) set_num_threads(o.threads);
  const unsigned threads = num_threads();
  ggml_cpu_peer peer(static_cast<int>(threads));
  const std::string isa(kernel::cpu::isa_name(kernel::cpu::active_table().id));
  lowbit::bench::read_ceiling rc = lowbit::bench::measure_read_ceiling(o.quick ? 5 : 11);
  std::vector<result> all;
  for (const auto& [rows, cols] : o.shapes) {
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Eigen::MatrixXf W(rows, cols);
    for (idx c = 0; c < cols; ++c)
      for (idx r = 0; r < rows; ++r) W(r, c) = 0.02f * nd(rng);
    const idx mmax = *std::max_element(o.ms.begin(), o.ms.end());
    std::vector<float> X(static_cast<std::size_t>(mmax * cols));
    for (auto& v : X) v = nd(rng);
    std::vector<Eigen::MatrixXd> exact;
    for (idx m : o.ms) {
      const Eigen::Map<const Eigen::MatrixXf> Xm(X.data(), cols, m);
      exact.push_back(W.cast<double>() * Xm.cast<double>());
    }
    const std::size_t first = all.size();
    for (const std::string& t : o.types) {
      const ggml_type type = ggml_type_named(t);
      bench_ggml(o, peer, type, false, W, X, exact, all);
      if (peer.repack != nullptr) bench_ggml(o, peer, type, true, W, X, exact, all);
    }
    for (int b : o.bits) {
      if (b == 4) bench_lowbit<4>(o, W, X, exact, all);
      if (b == 3) bench_lowbit<3>(o, W, X, exact, all);
      if (b == 2) bench_lowbit<2>(o, W, X, exact, all);
    }
    std::map<idx, double> q4k;  // m -> ggml's fastest q4_K at this shape
    for (std::size_t k = first; k < all.size(); ++k)
      if (all[k].type == "q4_K" && (q4k.count(all[k].m) == 0 || all[k].us < q4k[all[k].m])) q4k[all[k].m] = all[k].us;
    for (std::size_t k = first; k < all.size(); ++k)
      if (q4k.count(all[k].m)) all[k].speedup = q4k[all[k].m] / all[k].us;
    if (!o.csv) std::fprintf(stderr, "peer_ggml: %td x %td done\n", rows, cols);
  }
  // The ceiling every fraction uses: the best read loop, raised to any kernel that read faster
  // in this run (a kernel faster than the read loops shows they underestimate the machine).
  for (const result& r : all) rc.raise(r.gbps, r.kernel + " " + r.type + " " + std::to_string(r.rows) + "x" + std::to_string(r.cols));
  std::printf("# bench/peer_ggml: %u threads; lowbit kernels %s; ggml %s (AVX2 %d, AVX512 %d, AVX512_VNNI %d), repack buffer %s;"
              " LLC %zu MiB; ceiling %.2f GB/s (set by %s)\n",
              threads, isa.c_str(), ggml_version(), ggml_cpu_has_avx2(), ggml_cpu_has_avx512(), ggml_cpu_has_avx512_vnni(),
              peer.repack ? "yes" : "no", lowbit::bench::llc_bytes() >> 20, rc.best_gbps, rc.best_name.c_str());
  for (const auto& l : rc.loops) std::printf("# read loop %-12s %7.2f GB/s\n", l.name, l.gbps);
  if (o.csv) std::printf("kernel,type,rows,cols,m,bits_per_weight,threads,median_us,gbps,frac_of_ceiling,speedup_vs_q4_K,rel_err\n");
  for (const result& r : all) {
    if (o.csv)
      std::printf("%s,%s,%td,%td,%td,%.4f,%u,%.1f,%.2f,%.3f,%.2f,%.3e\n", r.kernel.c_str(), r.type.c_str(), r.rows, r.cols, r.m,
                  r.bpw, threads, r.us, r.gbps, r.gbps / rc.best_gbps, r.speedup, r.rel_err);
    else
      std::printf("%-12s %-10s %6td x %-6td m=%-2td %6.3f b/w %2u thr %9.1f us %7.2f GB/s %5.1f%% of ceiling  %5.2fx q4_K"
                  "  rel.err %.2e\n",
                  r.kernel.c_str(), r.type.c_str(), r.rows, r.cols, r.m, r.bpw, threads, r.us, r.gbps,
                  100.0 * r.gbps / rc.best_gbps, r.speedup, r.rel_err);
  }
  return 0;
}
