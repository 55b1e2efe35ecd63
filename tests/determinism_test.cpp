// The determinism contract (docs/architecture.md, "Threads and determinism"): every method's
// output — the stored bytes of the packed matrix, its dequantized weights, its reported loss
// — and every kernel's result is the same for 1, 2 or N threads of the built-in pool and for
// any host executor, because parallel_for's chunks depend only on the loop (core/parallel.hpp)
// and no chunk's arithmetic depends on another's.
#include <Eigen/Dense>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "lowbit/lowbit.hpp"
#include "lowbit/io/lowbit_format.hpp"
#include "lowbit_catch.hpp"
#include "test_data.hpp"

namespace {

using namespace lowbit;

// The ways lowbit's loops can be run.
struct run_mode {
  const char* name;
  std::function<void()> enter;
};

// A host executor that runs tasks backwards, each on a thread of its own (an engine's job
// system that gives no ordering guarantee).
void reversed_threads(std::ptrdiff_t tasks, const std::function<void(std::ptrdiff_t)>& fn) {
  std::vector<std::thread> ts;
  ts.reserve(static_cast<std::size_t>(tasks));
  for (std::ptrdiff_t t = tasks - 1; t >= 0; --t) ts.emplace_back([&fn, t] { fn(t); });
  for (auto& th : ts) th.join();
}
// A host executor that runs everything serially, interleaving from both ends.
void interleaved_serial(std::ptrdiff_t tasks, const std::function<void(std::ptrdiff_t)>& fn) {
  for (std::ptrdiff_t lo = 0, hi = tasks - 1; lo <= hi; ++lo, --hi) {
    fn(hi);
    if (lo != hi) fn(lo);
  }
}

std::vector<run_mode> modes() {
  return {
      {"1 thread", [] { set_executor({}); set_num_threads(1); }},
      {"2 threads", [] { set_executor({}); set_num_threads(2); }},
      {"7 threads", [] { set_executor({}); set_num_threads(7); }},
      {"host executor, reversed threads", [] { set_executor(reversed_threads); }},
      {"host executor, interleaved serial", [] { set_executor(interleaved_serial); }},
  };
}

struct restore_pool {
  ~restore_pool() {
    set_executor({});
    set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
  }
};

std::vector<char> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What must be identical: the .lowbit bytes of a packed matrix (codes, stats, outliers) when
// the type is one, its dequantized weights bit for bit, and the reported loss.
struct fingerprint {
  std::vector<char> bytes;
  Eigen::MatrixXf weights;
  double loss = 0.0;
  bool operator==(const fingerprint& o) const {
    return bytes == o.bytes && weights.rows() == o.weights.rows() && weights.cols() == o.weights.cols() &&
           std::memcmp(weights.data(), o.weights.data(), sizeof(float) * static_cast<std::size_t>(weights.size())) == 0 &&
           std::memcmp(&loss, &o.loss, sizeof loss) == 0;
  }
};

template <class Q>
fingerprint fingerprint_of(const Q& q) {
  fingerprint f;
  f.weights = q.dequantize();
  if constexpr (requires { q.report.loss; }) f.loss = q.report.loss;
  if constexpr (requires { q.packed(); }) {
    // The process id too: ctest runs the cases as parallel processes, and with address-space
    // randomisation off (the TSan run's setarch -R) their main threads have the same id, so a
    // name from the thread id alone made two processes write one file (a false mismatch).
    const auto path = std::filesystem::temp_directory_path() /
                      ("lowbit_determinism_" + std::to_string(::getpid()) + "_" +
                       std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + ".lowbit");
    io::save_packed(path.string(), q.packed());
    f.bytes = file_bytes(path);
    std::filesystem::remove(path);
  }
  return f;
}

// Runs make() under every mode and checks that all fingerprints equal the first.
template <class Make>
void same_under_every_mode(const char* what, Make&& make) {
  restore_pool restore;
  std::vector<fingerprint> got;
  const auto ms = modes();
  for (const auto& m : ms) {
    m.enter();
    got.push_back(fingerprint_of(make()));
  }
  for (std::size_t i = 1; i < got.size(); ++i) {
    INFO(what << ": " << ms[i].name << " vs " << ms[0].name);
    CHECK(got[i] == got[0]);
  }
}

const Eigen::MatrixXf& weights() {
  static const Eigen::MatrixXf W = lowbit_test::heavy_tailed(300, 256, 71);
  return W;
}
const Eigen::MatrixXf& calibration() {
  static const Eigen::MatrixXf X = lowbit_test::activations(256, 384, 72);
  return X;
}
hessian calibration_hessian() {
  hessian H(256);
  H.add_batch(calibration());
  return H;
}

}  // namespace

TEST_CASE("determinism: RTN (min/max and mse search, both axes)") {
  same_under_every_mode("rtn oc mse", [] { return quantize<rtn<bits<3>, group<oc, 64>, mse_clip<>>>(weights()); });
  same_under_every_mode("rtn ic", [] { return quantize<rtn<bits<4>, group<ic, 32>>>(weights()); });
}

TEST_CASE("determinism: GPTQ (dynamic groups, act-order, per-IC)") {
  same_under_every_mode("gptq oc", [] { return quantize<gptq<bits<3>, group<oc, 64>>>(weights(), calibration_hessian()); });
  same_under_every_mode("gptq act-order mse", [] {
    gptq_options o;
    o.act_order = true;
    return quantize<gptq<bits<3>, group<oc, 128>, mse_clip<>>>(weights(), calibration_hessian(), o);
  });
  same_under_every_mode("gptq ic", [] { return quantize<gptq<bits<4>, group<ic, 64>>>(weights(), calibration_hessian()); });
}

TEST_CASE("determinism: AWQ, and AWQ composed with GPTQ") {
  same_under_every_mode("awq", [] { return quantize<awq<bits<3>, group<oc, 64>>>(weights(), calibration()); });
  same_under_every_mode("awq+gptq", [] {
    return quantize<awq<gptq<bits<3>, group<oc, 64>>>>(weights(), calibration(), awq_options{}, gptq_options{});
  });
}

TEST_CASE("determinism: OWQ and SpQR") {
  same_under_every_mode("owq", [] {
    owq_options o;
    o.weak_columns = 8;
    return quantize<owq<bits<3>, group<oc, 128>>>(weights(), calibration_hessian(), o);
  });
  same_under_every_mode("spqr", [] {
    return quantize<spqr<bits<3>>>(weights(), calibration_hessian());
  });
}

TEST_CASE("determinism: AdaDim over GPTQ") {
  same_under_every_mode("adadim<gptq>", [] {
    return quantize<adadim<gptq<bits<3>, group<oc, 64>>>>(weights(), calibration());
  });
}

TEST_CASE("determinism: packed GEMV and GEMM results") {
  restore_pool restore;
  const auto q = quantize<rtn<bits<4>, group<oc, 64>>>(weights());
  const Eigen::MatrixXf X = lowbit_test::gaussian(256, 5, 73);
  std::vector<std::vector<float>> ys;
  for (const auto& m : modes()) {
    m.enter();
    std::vector<float> y(300), Y(300 * 5);
    q.gemv(std::span<const float>(X.data(), 256), y);
    q.gemm(std::span<const float>(X.data(), static_cast<std::size_t>(X.size())), Y, 5);
    y.insert(y.end(), Y.begin(), Y.end());
    ys.push_back(std::move(y));
  }
  for (std::size_t i = 1; i < ys.size(); ++i) CHECK(ys[i] == ys[0]);
}
