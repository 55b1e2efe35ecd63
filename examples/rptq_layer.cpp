// RPTQ on one MLP block, end to end: RMSNorm -> fc1 -> ReLU -> fc2, with activations whose
// channels have very different ranges (as in LLMs).
//   1. calibrate per-channel (min, max) of the fc1 and fc2 inputs;
//   2. cluster the channels (k-means, 32 clusters) and fold the reorder into the norm weight,
//      fc1's columns and rows, and fc2's columns (no gather at run time);
//   3. quantize the weights with GPTQ on the Hessian of the QUANTIZED inputs, one scale per
//      (output row, input cluster), and run the block with integer codes on both sides (W4A8).
// It prints the block's output error for per-tensor vs clustered activations, RTN vs GPTQ
// weights, the bits per weight and the integer GEMV path that ran.
#include <lowbit/rptq.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

using idx = lowbit::index;
namespace rptq = lowbit::rptq;

struct block {
  Eigen::VectorXf norm_w;  // RMSNorm weight [d]
  Eigen::MatrixXf fc1;     // [h x d]
  Eigen::MatrixXf fc2;     // [d x h]
};

// Residual-stream tokens [tokens x d] with channel c scaled by a log-uniform factor.
Eigen::MatrixXf tokens(idx n, idx d, unsigned seed, const std::vector<float>& chan) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Eigen::MatrixXf X(n, d);
  for (idx t = 0; t < n; ++t)
    for (idx c = 0; c < d; ++c) X(t, c) = chan[static_cast<std::size_t>(c)] * nd(rng);
  return X;
}

// RMSNorm whose output is written in a reordered channel order (RPTQ's ReorderLayerNorm):
// out[i] = x[perm[i]] / rms(x) * w_perm[i].
std::vector<float> rms_norm(const float* x, idx d, const std::vector<float>& w, const std::vector<std::int32_t>* perm) {
  double ss = 0;
  for (idx c = 0; c < d; ++c) ss += static_cast<double>(x[c]) * x[c];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + 1e-6));
  std::vector<float> out(static_cast<std::size_t>(d));
  for (idx i = 0; i < d; ++i) out[static_cast<std::size_t>(i)] = x[perm ? (*perm)[static_cast<std::size_t>(i)] : i] * inv * w[static_cast<std::size_t>(i)];
  return out;
}

}  // namespace

int main() {
  const idx d = 512, h = 1376, n_calib = 2048, n_eval = 64;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> lu(std::log(0.02f), std::log(8.0f));
  std::vector<float> chan(static_cast<std::size_t>(d));
  for (auto& c : chan) c = std::exp(lu(rng));
  block B;
  B.norm_w = Eigen::VectorXf::Random(d).array().abs() * 3.0f + 0.1f;
  B.fc1 = Eigen::MatrixXf::Random(h, d) * 0.05f;
  B.fc2 = Eigen::MatrixXf::Random(d, h) * 0.05f;
  // Static ranges clip whatever calibration never saw: with too few calibration tokens the
  // narrow clusters clip held-out tokens and A8 gets WORSE than per-tensor (try n_calib = 256).
  const Eigen::MatrixXf Xc = tokens(n_calib, d, 2, chan), Xe = tokens(n_eval, d, 3, chan);
  const std::vector<float> norm_w(B.norm_w.data(), B.norm_w.data() + d);

  // Float forward that records the fc1 and fc2 inputs.
  auto forward = [&](const Eigen::MatrixXf& X, Eigen::MatrixXf& A1, Eigen::MatrixXf& A2, Eigen::MatrixXf& Y) {
    A1.resize(X.rows(), d);
    A2.resize(X.rows(), h);
    for (idx t = 0; t < X.rows(); ++t) {
      const Eigen::VectorXf xt = X.row(t).transpose();
      const auto a = rms_norm(xt.data(), d, norm_w, nullptr);
      A1.row(t) = Eigen::Map<const Eigen::VectorXf>(a.data(), d).transpose();
    }
    A2 = (A1 * B.fc1.transpose()).cwiseMax(0.0f);
    Y = A2 * B.fc2.transpose();
  };
  Eigen::MatrixXf A1c, A2c, Yc, A1e, A2e, Ye;
  forward(Xc, A1c, A2c, Yc);
  forward(Xe, A1e, A2e, Ye);

  // 1-2. ranges, reorders (R4: norm output; R5: fc2 input), folding.
  rptq::channel_ranges r1(d), r2(h);
  for (idx t0 = 0; t0 < n_calib; t0 += 256) {  // calibration batches
    r1.observe(Eigen::MatrixXf(A1c.middleRows(t0, 256)));
    r2.observe(Eigen::MatrixXf(A2c.middleRows(t0, 256)));
  }
  // RPTQ uses 32 clusters for 2048+ channels; a cluster pads to 32 columns in the integer
  // layout, so this small block uses 8 and 16.
  const auto p1 = rptq::cluster_channels(r1, {8, 1, {}});
  const auto p2 = rptq::cluster_channels(r2, {16, 1, {}});
  const std::vector<float> norm_w_p = rptq::permute(norm_w, p1);
  const Eigen::MatrixXf fc1_p = rptq::permute_rows(lowbit::to_view(Eigen::MatrixXf(rptq::permute_columns(lowbit::to_view(B.fc1), p1))), p2);
  const Eigen::MatrixXf fc2_p = rptq::permute_columns(lowbit::to_view(B.fc2), p2);

  auto reordered = [](const Eigen::MatrixXf& A, const rptq::channel_reorder& p) {
    Eigen::MatrixXf R(A.rows(), A.cols());
    for (idx c = 0; c < A.cols(); ++c) R.col(c) = A.col(p.perm[static_cast<std::size_t>(c)]);
    return R;
  };

  // 3. run the quantized block with given activation grids and weight method.
  auto run = [&](const rptq::channel_reorder& q1, const rptq::channel_reorder& q2, const Eigen::MatrixXf& W1,
                 const Eigen::MatrixXf& W2, const std::vector<float>& nw, bool gptq, int wbits, int abits, double* bpw) {
    const auto g1 = rptq::activation_grid(r1, q1, abits), g2 = rptq::activation_grid(r2, q2, abits);
    lowbit::wxa_matrix m1, m2;
    if (gptq) {
      lowbit::hessian H1(d), H2(h);
      rptq::add_quantized_batch(H1, lowbit::to_view(reordered(A1c, q1)), g1);
      rptq::add_quantized_batch(H2, lowbit::to_view(reordered(A2c, q2)), g2);
      m1 = rptq::gptq_weights(lowbit::to_view(W1), wbits, g1, H1);
      m2 = rptq::gptq_weights(lowbit::to_view(W2), wbits, g2, H2);
    } else {
      m1 = rptq::rtn_weights(lowbit::to_view(W1), wbits, g1);
      m2 = rptq::rtn_weights(lowbit::to_view(W2), wbits, g2);
    }
    *bpw = (m1.bits_per_weight() + m2.bits_per_weight()) / 2;
    double num = 0, den = 0;
    std::vector<float> hid(static_cast<std::size_t>(h)), y(static_cast<std::size_t>(d));
    for (idx t = 0; t < n_eval; ++t) {
      const Eigen::VectorXf xt = Xe.row(t).transpose();
      const auto a = rms_norm(xt.data(), d, nw, &q1.perm);  // the norm writes reordered channels
      m1.gemv(a, hid);
      for (float& v : hid) v = std::max(v, 0.0f);            // ReLU commutes with the reorder
      m2.gemv(hid, y);
      num += (Eigen::Map<const Eigen::VectorXf>(y.data(), d) - Ye.row(t).transpose()).squaredNorm();
      den += Ye.row(t).squaredNorm();
    }
    return std::sqrt(num / den);
  };
  const auto id1 = rptq::channel_reorder::identity(d), id2 = rptq::channel_reorder::identity(h);
  double bpw = 0;
  std::printf("RPTQ on an MLP block (d=%td, h=%td): relative output error on held-out tokens\n", d, h);
  std::printf("activations alone (W8 RTN weights):\n");
  for (int ab : {8, 4})
    std::printf("  A%d  per-tensor %.4f   clustered %.4f\n", ab, run(id1, id2, B.fc1, B.fc2, norm_w, false, 8, ab, &bpw),
                run(p1, p2, fc1_p, fc2_p, norm_w_p, false, 8, ab, &bpw));
  std::printf("weights (clustered A8 activations, one scale per (row, cluster)):\n");
  for (int wb : {4, 3}) {
    const double e_rtn = run(p1, p2, fc1_p, fc2_p, norm_w_p, false, wb, 8, &bpw);
    const auto t0 = std::chrono::steady_clock::now();
    const double e_gptq = run(p1, p2, fc1_p, fc2_p, norm_w_p, true, wb, 8, &bpw);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  W%dA8 RTN %.4f   GPTQ (quantized-input Hessian) %.4f   %.2f bits/weight stored, %.2f s\n", wb, e_rtn, e_gptq,
                bpw, sec);
  }
  std::printf("integer GEMV path on this CPU: %s\n", std::string(lowbit::int8_isa_name(lowbit::best_int8_isa())).c_str());
  return 0;
}
