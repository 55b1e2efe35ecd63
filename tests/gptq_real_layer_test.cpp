// GPTQ on a real layer: 64 rows of SmolLM2-135M block 0 attn_output with the Hessian of the
// calibration inputs it sees in lowbit-quantize's default protocol (tests/data/gptq_layer,
// made by make_layer.py from a LOWBIT_DUMP_DIR dump). Synthetic tests (gptq_test.cpp) have no
// outlier channels like these (H_jj up to 130x the mean) nor a row with weights of 2.3 on
// them; here a wrong update, a wrong group fit or a lazy-batch update applied twice (a task
// run twice by a racy pool) moves the output error far from the reference's.
//
// The reference is written here from IST-DASLab/gptq (gptq.py fasterquant, quant.py
// Quantizer), in float64, sharing nothing with lowbit but the fp16 rounding of the stored
// scales: H + 0.01·mean(diag H)·I, H⁻¹ by an explicit inverse, U = chol(H⁻¹) upper, blocks of
// 128 columns, at column i1+i with (i1+i) % 128 == 0 the per-row range [min(w,0), max(w,0)] of
// W[:, i1+i : i1+i+128], scale = range/maxq, zero = round(−min/scale), q = clamp(round(w/scale)
// + zero, 0, maxq). Its output error is checked against scripts/reference/gptq_ref.py (numpy,
// the numbers make_layer.py wrote to reference.tsv), then lowbit against it.
#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lowbit/gptq.hpp"
#include "lowbit/rtn.hpp"
#include "lowbit_catch.hpp"

namespace {

constexpr Eigen::Index rows = 64, cols = 576;

std::filesystem::path data_dir() { return std::filesystem::path(__FILE__).parent_path() / "data" / "gptq_layer"; }

std::vector<float> read_f32(const std::string& name, std::size_t n) {
  std::ifstream in(data_dir() / name, std::ios::binary);
  REQUIRE(in.good());
  std::vector<float> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  REQUIRE(static_cast<std::size_t>(in.gcount()) == n * sizeof(float));
  return v;
}

Eigen::MatrixXf layer_weights() {
  const auto v = read_f32("W.f32", static_cast<std::size_t>(rows * cols));
  Eigen::MatrixXf W(rows, cols);
  for (Eigen::Index r = 0; r < rows; ++r)
    for (Eigen::Index c = 0; c < cols; ++c) W(r, c) = v[static_cast<std::size_t>(r * cols + c)];
  return W;
}

Eigen::MatrixXd layer_hessian() {
  const auto v = read_f32("H.f32", static_cast<std::size_t>(cols * (cols + 1) / 2));
  Eigen::MatrixXd H(cols, cols);
  std::size_t k = 0;
  for (Eigen::Index i = 0; i < cols; ++i)
    for (Eigen::Index j = i; j < cols; ++j) H(i, j) = H(j, i) = v[k++];
  return H;
}

struct numpy_reference {
  double rel_error = 0, loss = 0, rtn_rel_error = 0;
};
numpy_reference numpy_numbers(int bits) {
  std::ifstream in(data_dir() / "reference.tsv");
  REQUIRE(in.good());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    int b = 0, g = 0;
    numpy_reference r;
    row >> b >> g >> r.rel_error >> r.loss >> r.rtn_rel_error;
    if (b == bits && g == 128) return r;
  }
  FAIL("reference.tsv has no row for " << bits << " bits, g128");
  return {};
}

double fp16(double v) { return static_cast<double>(lowbit::half(static_cast<float>(v)).to_float()); }

// tr(D H Dᵀ) / tr(W H Wᵀ), D = W − Q: ‖(W − Q) X‖² / ‖W X‖² (H ∝ X Xᵀ).
double rel_error(const Eigen::MatrixXf& W, const Eigen::MatrixXd& Q, const Eigen::MatrixXd& H) {
  const Eigen::MatrixXd Wd = W.cast<double>(), D = Wd - Q;
  return (D * H).cwiseProduct(D).sum() / (Wd * H).cwiseProduct(Wd).sum();
}

struct gptq_result {
  Eigen::MatrixXd Q;
  double loss = 0;
};

// IST-DASLab fasterquant, asymmetric min-max g128, blocksize 128, percdamp 0.01, float64.
gptq_result reference_gptq(const Eigen::MatrixXf& W0, Eigen::MatrixXd H, int bits) {
  const Eigen::Index n = W0.cols(), m = W0.rows(), B = 128, G = 128;
  const double maxq = std::pow(2.0, bits) - 1.0;
  Eigen::MatrixXd W = W0.cast<double>();
  for (Eigen::Index j = 0; j < n; ++j)
    if (H(j, j) == 0.0) {
      H(j, j) = 1.0;
      W.col(j).setZero();
    }
  H.diagonal().array() += 0.01 * H.diagonal().mean();
  const Eigen::MatrixXd Hinv = H.inverse();
  const Eigen::MatrixXd U = Hinv.llt().matrixU();
  Eigen::VectorXd scale(m), zero(m);
  gptq_result out;
  out.Q.resize(m, n);
  for (Eigen::Index i1 = 0; i1 < n; i1 += B) {
    const Eigen::Index i2 = std::min(i1 + B, n), nb = i2 - i1;
    Eigen::MatrixXd W1 = W.middleCols(i1, nb), Err1(m, nb);
    for (Eigen::Index i = 0; i < nb; ++i) {
      if ((i1 + i) % G == 0) {
        const Eigen::Index gn = std::min(G, n - (i1 + i));
        for (Eigen::Index r = 0; r < m; ++r) {
          double lo = std::min(0.0, W.row(r).segment(i1 + i, gn).minCoeff());
          double hi = std::max(0.0, W.row(r).segment(i1 + i, gn).maxCoeff());
          if (lo == 0.0 && hi == 0.0) lo = -1.0, hi = 1.0;
          scale(r) = fp16((hi - lo) / maxq);
          zero(r) = std::nearbyint(-lo / scale(r));
        }
      }
      const double d = U(i1 + i, i1 + i);
      for (Eigen::Index r = 0; r < m; ++r) {
        const double w = W1(r, i);
        const double q = scale(r) * (std::clamp(std::nearbyint(w / scale(r)) + zero(r), 0.0, maxq) - zero(r));
        out.Q(r, i1 + i) = q;
        out.loss += 0.5 * (w - q) * (w - q) / (d * d);
        Err1(r, i) = (w - q) / d;
      }
      W1.rightCols(nb - i) -= Err1.col(i) * U.block(i1 + i, i1 + i, 1, nb - i);
    }
    W.rightCols(n - i2) -= Err1 * U.block(i1, i2, nb, n - i2);
  }
  return out;
}

double agreement(const Eigen::MatrixXf& a, const Eigen::MatrixXd& b) {
  Eigen::Index same = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (std::abs(a.data()[i] - b.data()[i]) <= 1e-4 * (1.0 + std::abs(b.data()[i]))) ++same;
  return static_cast<double>(same) / static_cast<double>(a.size());
}

template <int Bits>
void check_layer() {
  using namespace lowbit;
  const Eigen::MatrixXf W = layer_weights();
  const Eigen::MatrixXd H = layer_hessian();
  const numpy_reference np = numpy_numbers(Bits);
  const gptq_result ref = reference_gptq(W, H, Bits);
  const double e_ref = rel_error(W, ref.Q, H);
  INFO(Bits << " bits: reference rel error " << e_ref << " (numpy " << np.rel_error << "), loss " << ref.loss
            << " (numpy " << np.loss << ")");
  // The in-test reference is the numpy one (two float64 codes; a rounding tie decided the
  // other way would move the error by far more than this).
  REQUIRE(std::abs(e_ref - np.rel_error) <= 1e-6 * np.rel_error);
  REQUIRE(std::abs(ref.loss - np.loss) <= 1e-6 * np.loss);
  const Eigen::MatrixXf Q_rtn = quantize<rtn<bits<Bits>, group<oc, 128>>>(W).dequantize();
  const double e_rtn = rel_error(W, Q_rtn.cast<double>(), H);
  CHECK(std::abs(e_rtn - np.rtn_rel_error) <= 1e-6 * np.rtn_rel_error);

  const unsigned hw = std::max(2u, std::thread::hardware_concurrency());
  for (unsigned threads : {1u, 2u, hw + 3}) {
    set_num_threads(threads);
    for (int rep = 0; rep < 3; ++rep) {
      const auto q = quantize<gptq<bits<Bits>, group<oc, 128>>>(W, H);
      const Eigen::MatrixXf Q = q.dequantize();  // NOLINT
      const double e = rel_error(W, Q.cast<double>(), H);
      INFO("threads " << threads << " run " << rep << ": lowbit rel error " << e << " loss " << q.report.loss);
      // Margins for another ISA's float rounding (a flipped tie moves a few later codes); one
      // lazy-batch tile applied twice gives agreement 0.60, error 1.46x, loss -46 %.
      CHECK(agreement(Q, ref.Q) >= 0.99);
      CHECK(e <= 1.03 * e_ref);
      CHECK(std::abs(q.report.loss - ref.loss) <= 1e-2 * ref.loss);
    }
  }
  set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
  // What GPTQ buys on this layer (numpy: 16x less output error than RTN at 3 bits, 80x at 4).
  CHECK(e_ref < 0.1 * e_rtn);
}

}  // namespace

TEST_CASE("gptq on a real layer (SmolLM2 blk.0 attn_output) matches a float64 reference, 3 bits g128",
          "[gptq][real_layer]") {
  check_layer<3>();
}

TEST_CASE("gptq on a real layer (SmolLM2 blk.0 attn_output) matches a float64 reference, 4 bits g128",
          "[gptq][real_layer]") {
  check_layer<4>();
}
