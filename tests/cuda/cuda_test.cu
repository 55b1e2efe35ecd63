// The CUDA backend against the CPU reference: repacking, dequantize and GEMV/GEMM for every
// bit width, both group axes (wide and narrow groups), fp16/fp32 stats, symmetric and
// asymmetric grids, OWQ dense columns and SpQR sparse outliers, on random data (codes,
// stats, outliers and activations drawn at random, never zeros). Outputs are poisoned with
// NaN before each launch, so an unwritten element fails. Without a CUDA device the GPU cases
// report that they were skipped and pass (CI has nvcc but no GPU; ctest label `gpu`).
#include <lowbit/kernel/cuda/backend.cuh>
#include <lowbit/format/quantized_stats_table.hpp>
#include <lowbit/kernel/cpu/reference.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_support.hpp"
#include "lowbit_catch.hpp"

using namespace lowbit;
namespace kc = lowbit::kernel::cuda;

namespace {

bool have_gpu() {
  static const bool ok = kc::device_available();
  if (!ok) WARN("no CUDA device: GPU checks skipped");
  return ok;
}

// The sm_90 bulk-copy pipeline runs where the device executes this build's sm_90a code.
bool bulk_path_available() {
  int dev = 0, major = 0;
  LOWBIT_CUDA_CHECK(cudaGetDevice(&dev));
  LOWBIT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  return major == 9;
}

std::uint16_t half_bits(__half h) {
  std::uint16_t b;
  std::memcpy(&b, &h, sizeof b);
  return b;
}
float to_float(__half h) { return half_bits_to_float(half_bits(h)); }

// Random fp16 activations in ±[0.1, 1] (never zero) and their exact float values.
void random_activations(lowbit::index n, std::uint32_t seed, std::vector<__half>& h, std::vector<float>& f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  std::bernoulli_distribution neg(0.5);
  h.resize(static_cast<std::size_t>(n));
  f.resize(static_cast<std::size_t>(n));
  for (lowbit::index i = 0; i < n; ++i) {
    const float v = (neg(rng) ? -1.0f : 1.0f) * mag(rng);
    h[static_cast<std::size_t>(i)] = __float2half_rn(v);
    f[static_cast<std::size_t>(i)] = to_float(h[static_cast<std::size_t>(i)]);
  }
}

// ‖out − ref‖ / ‖ref‖ over all entries; NaN (an unwritten output) makes it NaN.
double relative_error(const std::vector<__half>& out, const std::vector<float>& ref) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(to_float(out[i])) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

// fp16 keeps 11 significant bits: weights are rounded once (fp16 fma) and outputs once, so
// the relative error of a whole output sits near 2^-11 ≈ 4.9e-4; we allow 4x that.
constexpr double fp16_tolerance = 2e-3;

template <class PM>
void make_zeros_fractional(PM& W, std::uint32_t seed) {
  // fp32 tables can hold any zero (SpQR's second level decodes to such values).
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> frac(0.05f, 0.95f);
  for (lowbit::index i = 0; i < W.stat_rows() * W.stat_cols(); ++i) {
    grid_params p = W.stats().get(i, PM::implicit_zero);
    p.zero = std::min(p.zero + frac(rng), static_cast<float>(PM::max_code));
    W.stats().set(i, p);
  }
}

template <class PM>
void check_matrix(const PM& W, const std::string& name, std::uint32_t seed) {
  INFO(name << " rows " << W.rows() << " cols " << W.cols() << " bits " << PM::bits << " axis "
            << axis_name(W.group_axis()) << " group " << W.group_size());
  const kc::device_packed_matrix D = kc::upload(W);

  // 1. Repacking: every code read back from the device tiles equals the CPU code.
  {
    const std::vector<std::uint8_t> tiles = D.codes().to_host();
    std::vector<std::uint8_t> row(static_cast<std::size_t>(W.quantized_cols()));
    const std::size_t tb = static_cast<std::size_t>(kc::tile_bytes(PM::bits));
    std::size_t mismatches = 0;
    for (lowbit::index r = 0; r < W.rows(); ++r) {
      W.unpack_row_codes(r, row);
      for (lowbit::index qc = 0; qc < W.quantized_cols(); ++qc) {
        const std::uint8_t* tile = tiles.data() + static_cast<std::size_t>((r / kc::tile_rows) * D.k_tiles() + qc / kc::tile_cols) * tb;
        mismatches += kc::get_code(tile, PM::bits, static_cast<int>(r % kc::tile_rows), static_cast<int>(qc % kc::tile_cols)) !=
                      row[static_cast<std::size_t>(qc)];
      }
    }
    CHECK(mismatches == 0);
  }

  // 2. dequantize() against the CPU dequantize().
  {
    const Eigen::MatrixXf ref = W.dequantize();
    kc::device_buffer<__half> out(static_cast<std::size_t>(W.rows() * W.cols()));
    LOWBIT_CUDA_CHECK(cudaMemset(out.data(), 0xFF, out.bytes()));  // NaN poison
    kc::dequantize(D, out.data());
    LOWBIT_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<__half> h = out.to_host();
    std::vector<float> r(h.size());
    const double scale = ref.cwiseAbs().maxCoeff();
    std::size_t far = 0;  // entries off by more than 2 fp16 ulps of the matrix's largest weight
    for (lowbit::index i = 0; i < W.rows(); ++i)
      for (lowbit::index j = 0; j < W.cols(); ++j) {
        const std::size_t k = static_cast<std::size_t>(i * W.cols() + j);
        r[k] = ref(i, j);
        const float got = to_float(h[k]);
        far += !(std::abs(static_cast<double>(got) - r[k]) <= std::ldexp(scale, -10));  // NaN counts
      }
    CHECK(far == 0);
    CHECK(relative_error(h, r) < fp16_tolerance);
  }

  // 3. GEMV / GEMM at several batch sizes, against the float64 reference on the same fp16 inputs.
  for (lowbit::index m : {1, 3, 8, 9, 16, 21}) {
    INFO("m = " << m);
    std::vector<__half> xh;
    std::vector<float> xf;
    random_activations(m * W.cols(), seed + static_cast<std::uint32_t>(m), xh, xf);
    std::vector<float> ref(static_cast<std::size_t>(m * W.rows()));
    kernel::reference::gemm(W, xf, ref, m);
    kc::device_buffer<__half> x(xh);
    kc::device_buffer<__half> y(static_cast<std::size_t>(m * W.rows()));
    LOWBIT_CUDA_CHECK(cudaMemset(y.data(), 0xFF, y.bytes()));
    backend_traits<cuda>::gemm(D, x.data(), y.data(), m);
    LOWBIT_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<__half> out = y.to_host();
    const double err = relative_error(out, ref);
    INFO("relative error " << err);
    CHECK(err < fp16_tolerance);
    // Every main loop gives bitwise the same output as the default one, and a second launch
    // the same again: each warp adds its tiles in the same order on both paths, and the
    // split-K partial sums are added in a fixed order (no atomics), whatever the grid.
    std::vector<kc::gemm_config> configs{{kc::gemm_path::registers, 0}};
    if (bulk_path_available())
      for (int cap : {0, 1, 2}) configs.push_back({kc::gemm_path::bulk_copy, cap});
    for (const kc::gemm_config& cfg : configs) {
      INFO("path " << (cfg.path == kc::gemm_path::registers ? "registers" : "bulk_copy") << ", grid cap " << cfg.max_blocks);
      LOWBIT_CUDA_CHECK(cudaMemset(y.data(), 0xFF, y.bytes()));
      kc::gemm(D, x.data(), y.data(), m, nullptr, cfg);
      LOWBIT_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<__half> again = y.to_host();
      CHECK(std::memcmp(out.data(), again.data(), out.size() * sizeof(__half)) == 0);
    }
  }
}

template <class PM>
void check_config(const std::string& name, lowbit::index rows, lowbit::index cols, std::uint32_t seed, axis ax = PM::grouping::group_axis,
                  bool fractional_zeros = false) {
  if (!have_gpu()) return;
  PM W = lowbit_test::random_packed<PM>(rows, cols, ax, seed);
  if (fractional_zeros) make_zeros_fractional(W, seed + 99);
  check_matrix(W, name, seed);
}

template <int B>
void check_bits(std::uint32_t seed) {
  using oc128 = packed_matrix<bits<B>, group<oc, 128>>;
  using ic16 = packed_matrix<bits<B>, group<ic, 16>>;
  check_config<oc128>("oc g128", 100, 520, seed);     // ragged rows and columns, vector x loads
  check_config<oc128>("oc g128", 48, 197, seed + 1);  // odd columns: scalar x loads
  check_config<ic16>("ic g16", 72, 264, seed + 2);
}

}  // namespace

TEST_CASE("cuda layout: every code of a tile has its own bits (put/get round trip)") {
  std::mt19937 rng(1);
  for (int b : {2, 3, 4, 8}) {
    INFO("bits " << b);
    std::vector<std::uint8_t> tile(static_cast<std::size_t>(kc::tile_bytes(b)), 0);
    std::vector<unsigned> codes(kc::tile_rows * kc::tile_cols);
    std::uniform_int_distribution<unsigned> code(0, (1u << b) - 1u);
    for (int r = 0; r < kc::tile_rows; ++r)
      for (int c = 0; c < kc::tile_cols; ++c) {
        codes[static_cast<std::size_t>(r * kc::tile_cols + c)] = code(rng);
        kc::put_code(tile.data(), b, r, c, codes[static_cast<std::size_t>(r * kc::tile_cols + c)]);
      }
    int wrong = 0;
    for (int r = 0; r < kc::tile_rows; ++r)
      for (int c = 0; c < kc::tile_cols; ++c)
        wrong += kc::get_code(tile.data(), b, r, c) != codes[static_cast<std::size_t>(r * kc::tile_cols + c)];
    CHECK(wrong == 0);
    // All-ones codes fill every bit of the tile exactly once: the layout wastes no space.
    std::fill(tile.begin(), tile.end(), 0);
    for (int r = 0; r < kc::tile_rows; ++r)
      for (int c = 0; c < kc::tile_cols; ++c) kc::put_code(tile.data(), b, r, c, (1u << b) - 1u);
    CHECK(std::all_of(tile.begin(), tile.end(), [](std::uint8_t v) { return v == 0xFF; }));
  }
}

TEST_CASE("cuda backend: traits describe the device, or report none") {
  if (!have_gpu()) {
    CHECK_FALSE(backend_traits<cuda>::available());
    return;
  }
  CHECK(backend_traits<cuda>::available());
  CHECK(backend_traits<cuda>::isa().rfind("sm_", 0) == 0);
}

TEST_CASE("cuda gemm: 2-bit codes") { check_bits<2>(200); }
TEST_CASE("cuda gemm: 3-bit codes") { check_bits<3>(300); }
TEST_CASE("cuda gemm: 4-bit codes") { check_bits<4>(400); }
TEST_CASE("cuda gemm: 8-bit codes") { check_bits<8>(800); }

TEST_CASE("cuda gemm: narrow groups, per-channel groups, adaptive axis, symmetric and fp32 stats") {
  check_config<packed_matrix<bits<4>, group<oc, 8>>>("oc g8 (narrow)", 40, 136, 11);
  check_config<packed_matrix<bits<3>, group<ic, 4>, no_outliers, fp32_stats>>("ic g4 fp32 (narrow)", 37, 160, 12);
  check_config<packed_matrix<bits<4>, group<oc, per_channel>, no_outliers, fp16_stats, symmetric>>("oc per-channel sym", 64, 300, 13);
  check_config<packed_matrix<bits<4>, group<ic, per_channel>>>("ic per-channel", 90, 128, 14);
  check_config<packed_matrix<bits<2>, group<adaptive, 32>>>("adaptive as ic", 64, 256, 15, axis::ic);
  check_config<packed_matrix<bits<4>, group<oc, 64>, no_outliers, fp32_stats>>("oc g64 fp32 fractional zeros", 50, 256, 16,
                                                                              axis::oc, true);
}

TEST_CASE("cuda gemm: long rows wrap the bulk pipeline's ring many times (several bands per block)") {
  // 141 k-tiles per band: 9 stages of 16 tiles (4 bits), 5 of 32 (2 bits), 7 of 16 (3 bits),
  // more than the ring's 4-5 slots, so slots are refilled and barrier parities flip; grid
  // caps of 1 and 2 blocks (in check_matrix) stream every band through one ring.
  check_config<packed_matrix<bits<4>, group<oc, 128>>>("long oc g128", 40, 9000, 51);
  check_config<packed_matrix<bits<3>, group<ic, 16>>>("long ic g16", 24, 7000, 52);
  check_config<packed_matrix<bits<2>, group<oc, 64>>>("long oc g64", 20, 9000, 53);
}

TEST_CASE("cuda gemm: OWQ dense columns") {
  check_config<packed_matrix<bits<4>, group<oc, 64>, dense_columns>>("owq oc g64", 80, 400, 21);
  check_config<packed_matrix<bits<3>, group<ic, 32>, dense_columns>>("owq ic g32", 64, 333, 22);
}

TEST_CASE("cuda gemm: SpQR sparse outliers") {
  check_config<packed_matrix<bits<3>, group<oc, 16>, sparse_outliers>>("sparse oc g16", 70, 300, 31);
  check_config<packed_matrix<bits<4>, group<ic, 16>, sparse_outliers>>("sparse ic g16", 48, 256, 32);
}

TEST_CASE("cuda gemm: SpQR two-level stats (decoded at upload) with sparse outliers") {
  if (!have_gpu()) return;
  // Built directly: random codes, first-level scales/zeros quantized by the table's own
  // set_column (3-bit second level over 16 rows), 6 % random CSR outliers.
  using PM = packed_matrix<bits<3>, group<oc, 16>, sparse_outliers, quantized_stats<3, 16>>;
  const lowbit::index rows = 72, cols = 320;
  PM W(rows, cols);
  std::mt19937 rng(41);
  std::uniform_int_distribution<int> code(0, PM::max_code);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(W.quantized_cols()));
  for (lowbit::index r = 0; r < rows; ++r) {
    for (auto& q : row) q = static_cast<std::uint8_t>(code(rng));
    W.set_row_codes(r, row);
  }
  std::uniform_real_distribution<float> sc(0.01f, 0.1f), zr(0.0f, static_cast<float>(PM::max_code));
  std::vector<float> scales(static_cast<std::size_t>(W.stat_rows())), zeros(scales.size());
  for (lowbit::index c = 0; c < W.stat_cols(); ++c) {
    for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = sc(rng), zeros[i] = zr(rng);
    W.stats().set_column(c, scales, zeros);
  }
  std::normal_distribution<float> n(0.0f, 0.5f);
  std::bernoulli_distribution pick(0.06);
  auto& o = W.outliers();
  o.row_ptr.assign(1, 0u);
  for (lowbit::index r = 0; r < rows; ++r) {
    for (lowbit::index c = 0; c < cols; ++c)
      if (pick(rng)) {
        o.col.push_back(static_cast<std::uint16_t>(c));
        o.values.push_back(lowbit::half(n(rng)));
      }
    o.row_ptr.push_back(static_cast<std::uint32_t>(o.col.size()));
  }
  check_matrix(W, "spqr two-level stats", 42);
}
