// lowbit-quantize --export gguf (gguf_export.hpp): RTN and GPTQ on llama.cpp's block grids, and
// the GGUF writer that copies everything else from the input file.
#include "lowbit-quantize/gguf_export.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "lowbit-quantize/adapters.hpp"
#include "lowbit/gptq.hpp"
#include "lowbit/io/gguf_writer.hpp"

namespace lowbit::tools {

namespace {

constexpr index block = 32;

struct type_row {
  io::gguf_type type;
  std::uint32_t ftype;  // llama.h LLAMA_FTYPE_MOSTLY_*
};
const type_row type_table[] = {
    {io::gguf_type::q4_0, 2}, {io::gguf_type::q4_1, 3}, {io::gguf_type::q5_0, 8},
    {io::gguf_type::q5_1, 9}, {io::gguf_type::q8_0, 7},
};

std::string upper(std::string_view s) {
  std::string u(s);
  for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

std::string supported_list() {
  std::string s;
  for (const auto& r : type_table) s += (s.empty() ? "" : ", ") + io::type_name(r.type);
  return s;
}

// One block type's grid as GPTQ sees it: d (and m) fitted from 32 weights by the type's own
// rule and rounded to fp16; codes 0..maxq; w = d (code − offset) + m.
struct block_grid {
  int maxq = 15;      // largest code
  int offset = 0;     // symmetric types: code of zero (8, 16; Q8_0 stores signed codes: 0)
  int qmin = 0;       // smallest code (Q8_0: −128)
  bool has_min = false;
  float divisor = 0;  // Q4_0 −8, Q5_0 −16, Q8_0 127 (of amax), Q4_1 15, Q5_1 31 (of max − min)
  bool signed_max = false;

  static block_grid of(io::gguf_type t) {
    switch (t) {
      case io::gguf_type::q4_0: return {15, 8, 0, false, -8.0f, true};
      case io::gguf_type::q5_0: return {31, 16, 0, false, -16.0f, true};
      case io::gguf_type::q4_1: return {15, 0, 0, true, 15.0f, false};
      case io::gguf_type::q5_1: return {31, 0, 0, true, 31.0f, false};
      case io::gguf_type::q8_0: return {127, 0, -128, false, 127.0f, false};
      default: detail::fail("GGUF export: no block grid for ", io::type_name(t), " (supported: ", supported_list(), ")");
    }
  }

  // The stored (fp16) d and m of n = 32 weights x[0], x[stride], ...
  void fit(const float* x, index stride, std::uint16_t& d, std::uint16_t& m) const {
    float dv = 0.0f, mv = 0.0f;
    if (has_min) {
      float mn = std::numeric_limits<float>::max(), mx = -std::numeric_limits<float>::max();
      for (index j = 0; j < block; ++j) {
        mn = std::min(mn, x[j * stride]);
        mx = std::max(mx, x[j * stride]);
      }
      dv = (mx - mn) / divisor;
      mv = mn;
    } else {
      float amax = 0.0f, sm = 0.0f;
      for (index j = 0; j < block; ++j)
        if (amax < std::fabs(x[j * stride])) {
          amax = std::fabs(x[j * stride]);
          sm = x[j * stride];
        }
      dv = (signed_max ? sm : amax) / divisor;
    }
    d = float_to_half_bits(dv);
    m = float_to_half_bits(mv);
  }
  // Like fit, but the d (and m) that minimise Σ_j wt_j (x_j − value_j)² on the stored (fp16)
  // grid among candidates: the type's rule, and scales from 0.8 to 1.1 times it (for types with
  // a min, ranges 0.7 to 1.1 times the block's at the same or a centred min), each refined twice by weighted least
  // squares for its codes (1 parameter, or d and m). The rule is a candidate, so under these
  // weights the result is never worse than fit's. Weights all zero: fit's result.
  void fit_weighted(const float* x, index stride, const float* wt, std::uint16_t& d, std::uint16_t& m) const {
    fit(x, stride, d, m);
    double wsum = 0.0;
    for (index j = 0; j < block; ++j) wsum += wt[j];
    if (!(wsum > 0.0)) return;
    double best = weighted_error(x, stride, wt, d, m);
    auto consider = [&](float dv, float mv) {
      for (int iter = 0; iter < 3; ++iter) {
        const std::uint16_t hd = float_to_half_bits(dv), hm = float_to_half_bits(has_min ? mv : 0.0f);
        const double e = weighted_error(x, stride, wt, hd, hm);
        if (e < best) {
          best = e;
          d = hd;
          m = hm;
        }
        if (iter == 2) break;
        // Weighted least squares of the value for the codes (dv, mv) give.
        double sl = 0, sll = 0, sx = 0, sxl = 0, sw = 0;
        for (index j = 0; j < block; ++j) {
          float v;
          const double l = static_cast<double>(encode(x[j * stride], half_bits_to_float(hd), half_bits_to_float(hm), v) - offset);
          const double w = wt[j], xv = x[j * stride];
          sw += w;
          sl += w * l;
          sll += w * l * l;
          sx += w * xv;
          sxl += w * xv * l;
        }
        if (has_min) {
          const double det = sll * sw - sl * sl;
          if (!(std::fabs(det) > 1e-30)) return;
          dv = static_cast<float>((sxl * sw - sx * sl) / det);
          mv = static_cast<float>((sll * sx - sl * sxl) / det);
        } else {
          if (!(sll > 0.0)) return;
          dv = static_cast<float>(sxl / sll);
        }
        if (!std::isfinite(dv) || !std::isfinite(mv) || std::fabs(dv) > half_max || std::fabs(mv) > half_max) return;
      }
    };
    const float d0 = half_bits_to_float(d), m0 = half_bits_to_float(m);
    if (has_min) {
      float mn = std::numeric_limits<float>::max(), mx = -std::numeric_limits<float>::max();
      for (index j = 0; j < block; ++j) {
        mn = std::min(mn, x[j * stride]);
        mx = std::max(mx, x[j * stride]);
      }
      // 1.1 down to 0.7 times the range: a wider range can put the codes on a coarser lattice
      // the weights already sit on (a Q4_1 source re-quantized to Q5_1: half its step).
      for (int i = -4; i <= 12; ++i) {
        const float f = 1.0f - 0.025f * static_cast<float>(i);
        consider((mx - mn) * f / divisor, mn);
        consider((mx - mn) * f / divisor, mn + 0.5f * (1.0f - f) * (mx - mn));
      }
    } else {
      for (int i = -10; i <= 5; ++i) consider(d0 * (1.0f + 0.02f * static_cast<float>(i)), m0);
    }
  }
  double weighted_error(const float* x, index stride, const float* wt, std::uint16_t hd, std::uint16_t hm) const {
    const float dv = half_bits_to_float(hd), mv = has_min ? half_bits_to_float(hm) : 0.0f;
    double e = 0.0;
    for (index j = 0; j < block; ++j) {
      float v;
      (void)encode(x[j * stride], dv, mv, v);
      const double r = static_cast<double>(x[j * stride]) - v;
      e += wt[j] * r * r;
    }
    return e;
  }
  // The nearest code of w on the stored grid, and its value.
  int encode(float w, float d, float m, float& value) const {
    int c;
    if (d == 0.0f || !std::isfinite(d)) {
      c = has_min ? 0 : offset;
    } else {
      const float t = std::nearbyint((w - m) / d) + static_cast<float>(offset);
      c = static_cast<int>(std::clamp(t, static_cast<float>(qmin), static_cast<float>(maxq)));
    }
    value = d * static_cast<float>(c - offset) + m;
    return c;
  }
};

// Packs 32 codes (already 0..maxq, or −128..127 for Q8_0) with fp16 d, m into t's block bytes.
void pack_block(io::gguf_type t, const int* c, std::uint16_t d, std::uint16_t m, std::byte* b) {
  std::memcpy(b, &d, 2);
  switch (t) {
    case io::gguf_type::q4_0:
    case io::gguf_type::q4_1: {
      std::byte* qs = b + (t == io::gguf_type::q4_1 ? 4 : 2);
      if (t == io::gguf_type::q4_1) std::memcpy(b + 2, &m, 2);
      for (int j = 0; j < 16; ++j) qs[j] = static_cast<std::byte>(c[j] | (c[j + 16] << 4));
      break;
    }
    case io::gguf_type::q5_0: io::detail::put_q5_codes(c, b + 2, b + 6); break;
    case io::gguf_type::q5_1:
      std::memcpy(b + 2, &m, 2);
      io::detail::put_q5_codes(c, b + 4, b + 8);
      break;
    case io::gguf_type::q8_0:
      for (int j = 0; j < 32; ++j) {
        const auto q = static_cast<std::int8_t>(c[j]);
        std::memcpy(b + 2 + j, &q, 1);
      }
      break;
    default: detail::fail("GGUF export: cannot pack ", io::type_name(t));
  }
}

// GPTQ's column hook whose groups are the type's blocks (dynamic per-OC groups of 32, fitted
// on the compensated weights when the loop reaches the block, as gptq_grid_hook does).
//   fit rule:   the type's own rule on the compensated weights (what RTN does, per block);
//   fit search: the weighted search (block_grid::fit_weighted) on the compensated weights,
//               weights 1 / U_jj² (GPTQ's cost of an error in column j);
//   fit weighted: the weighted search on the original weights before the loop, weights H_jj
//               (the importance llama-imatrix measures), the grid then fixed.
class block_grid_hook {
 public:
  block_grid_hook(io::gguf_type t, index rows, index cols, gguf_fit fit = gguf_fit::rule, const Eigen::MatrixXf* W0 = nullptr,
                  const Eigen::VectorXf* hdiag = nullptr)
      : grid_(block_grid::of(t)), fit_(fit), rows_(rows), cols_(cols), codes_(static_cast<std::size_t>(rows * cols)),
        d_(static_cast<std::size_t>(rows * (cols / block))), m_(d_.size()) {
    if (fit_ == gguf_fit::weighted) {
      detail::require(W0 != nullptr && hdiag != nullptr && hdiag->size() == cols, "GGUF export: the weighted fit needs W and diag(H)");
      const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = *W0;
      for (index r = 0; r < rows_; ++r)
        for (index k = 0; k < cols_ / block; ++k) {
          const std::size_t i = static_cast<std::size_t>(r * (cols_ / block) + k);
          grid_.fit_weighted(rm.data() + r * cols_ + k * block, 1, hdiag->data() + k * block, d_[i], m_[i]);
        }
    }
  }

  void quantize_column(const detail::gptq_state& s, const detail::gptq_column& c, std::span<float> q) {
    detail::require(c.pos == c.col, "GGUF export: GPTQ on block grids runs in natural column order");
    const index k = c.col / block;
    if (c.col % block == 0) {
      // The block lies inside the current lazy batch (blocksize is a multiple of 32), so all
      // its columns hold every update so far.
      detail::require(c.pos + block <= s.block_end, "GGUF export: GPTQ block size must be a multiple of 32");
      float wt[block];  // search: GPTQ's cost 1 / U_jj² of an error in each of the block's columns
      if (fit_ == gguf_fit::search)
        for (index j = 0; j < block; ++j) {
          const double u = s.U(c.pos + j, c.pos + j);
          wt[j] = u != 0.0 ? static_cast<float>(1.0 / (u * u)) : 0.0f;
        }
      if (fit_ != gguf_fit::weighted)
        for (index r = 0; r < rows_; ++r) {
          const std::size_t i = static_cast<std::size_t>(r * (cols_ / block) + k);
          if (fit_ == gguf_fit::search) grid_.fit_weighted(&s.W(r, c.pos), s.W.rows(), wt, d_[i], m_[i]);
          else grid_.fit(&s.W(r, c.pos), s.W.rows(), d_[i], m_[i]);
        }
    }
    encode_column(c.col, c.w.data(), q.data());
  }

  // Codes of column `col` (rows_ weights) on the blocks' stored grids; q (optional) gets their values.
  void encode_column(index col, const float* w, float* q) {
    const index k = col / block;
    for (index r = 0; r < rows_; ++r) {
      const std::size_t i = static_cast<std::size_t>(r * (cols_ / block) + k);
      const float d = half_bits_to_float(d_[i]), m = grid_.has_min ? half_bits_to_float(m_[i]) : 0.0f;
      float v;
      codes_[static_cast<std::size_t>(r * cols_ + col)] = grid_.encode(w[r], d, m, v);
      if (q != nullptr) q[r] = v;
    }
  }

  std::vector<std::byte> blocks(io::gguf_type t) const {
    const auto tr = *io::type_traits(t);
    const index nb = cols_ / block;
    std::vector<std::byte> out(static_cast<std::size_t>(rows_ * nb) * tr.bytes);
    for (index r = 0; r < rows_; ++r)
      for (index k = 0; k < nb; ++k) {
        const std::size_t i = static_cast<std::size_t>(r * nb + k);
        pack_block(t, codes_.data() + r * cols_ + k * block, d_[i], m_[i], out.data() + i * tr.bytes);
      }
    return out;
  }

 private:
  block_grid grid_;
  gguf_fit fit_;
  index rows_, cols_;
  std::vector<int> codes_;
  std::vector<std::uint16_t> d_, m_;
};

void require_type(io::gguf_type t) {
  const bool ok = std::any_of(std::begin(type_table), std::end(type_table), [&](const type_row& r) { return r.type == t; });
  detail::require(ok, "GGUF export: type ", io::type_name(t), " is not supported (", supported_list(), ")");
}

void require_shape(io::gguf_type t, index rows, index cols, const std::string& name) {
  require_type(t);
  detail::require(rows > 0 && cols > 0 && cols % block == 0, "GGUF export to ", io::type_name(t), ": ", name, " is ",
                  rows, " x ", cols, "; its rows of ", cols, " weights are not whole ", io::type_name(t),
                  " blocks of 32 (llama.cpp stores each row as blocks along the input dimension)");
}

std::string linear_name(index l, slot s) { return "blk." + std::to_string(l) + "." + slot_name(s) + ".weight"; }

}  // namespace

const std::vector<io::gguf_type>& gguf_export_types() {
  static const std::vector<io::gguf_type> v = [] {
    std::vector<io::gguf_type> r;
    for (const auto& t : type_table) r.push_back(t.type);
    return r;
  }();
  return v;
}

io::gguf_type parse_gguf_export_type(std::string_view name) {
  const std::string u = upper(name);
  for (const auto& r : type_table)
    if (io::type_name(r.type) == u) return r.type;
  static const char* later[] = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
                                "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "IQ4_NL", "IQ4_XS"};
  for (const char* k : later)
    if (u == k)
      detail::fail("--type ", name, ": GGUF export writes the 32-wide block types ", supported_list(),
                   "; K-quants and i-quants are not supported yet");
  detail::fail("--type '", name, "' is not a GGUF export type (expected one of: ", supported_list(), ")");
}

std::uint32_t gguf_file_type(io::gguf_type t) {
  for (const auto& r : type_table)
    if (r.type == t) return r.ftype;
  detail::fail("GGUF export: no llama_ftype for ", io::type_name(t));
}

void check_gguf_export(const llama_model& m, const gguf_export_options& o) {
  detail::require(o.method == "rtn" || o.method == "gptq", "--export gguf: --method ", o.method,
                  " cannot write GGUF blocks (rtn: llama.cpp's reference rounding; gptq: GPTQ on the type's block grid)");
  require_type(o.type);
  detail::require(o.blocksize >= block && o.blocksize % block == 0, "--export gguf: GPTQ block size ", o.blocksize,
                  " must be a positive multiple of 32 (the GGUF block)");
  for (index l = 0; l < m.cfg.n_layer; ++l)
    for (slot s : all_slots) {
      const linear& L = m.blocks[static_cast<std::size_t>(l)][s];
      require_shape(o.type, L.rows(), L.cols(), linear_name(l, s));
    }
}

gguf_block_linear::gguf_block_linear(io::gguf_type type, index rows, index cols, std::vector<std::byte> blocks,
                                     std::string notes)
    : type_(type), blocks_(std::move(blocks)), notes_(std::move(notes)) {
  require_shape(type, rows, cols, "a linear");
  const auto tr = *io::type_traits(type);
  detail::require(blocks_.size() == static_cast<std::size_t>(rows * cols / block) * tr.bytes, "gguf_block_linear: ",
                  blocks_.size(), " bytes for a ", rows, " x ", cols, " ", tr.name, " matrix");
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm(rows, cols);
  io::dequantize_blocks(type, blocks_, std::span<float>(rm.data(), static_cast<std::size_t>(rm.size())));
  W_ = rm;
}

double gguf_block_linear::bits_per_weight() const {
  return 8.0 * static_cast<double>(blocks_.size()) / static_cast<double>(W_.rows() * W_.cols());
}

void gguf_block_linear::save(io::lowbit_writer&, const std::string& name) const {
  detail::fail("linear '", name, "' holds ", io::type_name(type_), " GGUF blocks: write it with --export gguf, not as a lowbit file");
}

std::vector<std::byte> gguf_rtn_blocks(io::gguf_type t, const Eigen::MatrixXf& W) {
  require_shape(t, W.rows(), W.cols(), "the matrix");
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = W;
  return io::quantize_blocks(t, std::span<const float>(rm.data(), static_cast<std::size_t>(rm.size())));
}

std::vector<std::byte> gguf_gptq_blocks(io::gguf_type t, const Eigen::MatrixXf& W, const Eigen::MatrixXd& H,
                                        double percdamp, index blocksize, double* loss, gguf_fit fit) {
  require_shape(t, W.rows(), W.cols(), "the matrix");
  detail::require(blocksize >= block && blocksize % block == 0, "GGUF export: GPTQ block size ", blocksize,
                  " must be a positive multiple of 32");
  require_valid_weights(to_view(W));
  gptq_options opt;
  opt.percdamp = percdamp;
  opt.blocksize = blocksize;
  detail::gptq_problem p =
      detail::gptq_prepare(to_view(W), detail::checked_hessian(H, W.cols(), "gguf gptq"), {}, opt, "gguf gptq");
  const Eigen::VectorXf hdiag = H.diagonal().cast<float>();
  block_grid_hook hook(t, W.rows(), W.cols(), fit, &W, &hdiag);
  const double l = detail::gptq_run(p, hook, opt);
  if (loss) *loss = l;
  return hook.blocks(t);
}

std::vector<std::byte> gguf_weighted_rtn_blocks(io::gguf_type t, const Eigen::MatrixXf& W, const Eigen::VectorXd& hdiag) {
  require_shape(t, W.rows(), W.cols(), "the matrix");
  detail::require(hdiag.size() == W.cols(), "GGUF export: ", hdiag.size(), " column weights for ", W.cols(), " columns");
  require_valid_weights(to_view(W));
  const Eigen::VectorXf h = hdiag.cast<float>();
  block_grid_hook grids(t, W.rows(), W.cols(), gguf_fit::weighted, &W, &h);  // every block's grid, fitted
  for (index c = 0; c < W.cols(); ++c) grids.encode_column(c, W.col(c).data(), nullptr);
  return grids.blocks(t);
}

method_fn gguf_export_method(const gguf_export_options& o) {
  require_type(o.type);
  detail::require(o.method == "rtn" || o.method == "gptq", "--export gguf: --method ", o.method,
                  " cannot write GGUF blocks (rtn or gptq)");
  // RTN with a fit other than the rule is weighted RTN: each block's scale searched with the
  // calibration inputs' diag(H) as weights (llama-imatrix's idea: no error feedback).
  const bool weighted_rtn = o.method == "rtn" && o.fit != gguf_fit::rule;
  return [o, weighted_rtn](const group_job& job) {
    std::vector<std::unique_ptr<linear>> out;
    hessian H;
    if (o.method == "gptq" || weighted_rtn) H = job_hessian(job);
    for (const auto& W : job.W) {
      std::string notes = "gguf " + io::type_name(o.type) + " " + o.method;
      std::vector<std::byte> b;
      if (weighted_rtn) {
        b = gguf_weighted_rtn_blocks(o.type, W, H.matrix().diagonal());
        notes += " weighted";
      } else if (o.method == "gptq") {
        double loss = 0;
        b = gguf_gptq_blocks(o.type, W, H.matrix(), o.percdamp, o.blocksize, &loss, o.fit);
        std::ostringstream s;
        s << " loss=" << loss;
        notes += s.str();
      } else {
        b = gguf_rtn_blocks(o.type, W);
      }
      out.push_back(std::make_unique<gguf_block_linear>(o.type, W.rows(), W.cols(), std::move(b), std::move(notes)));
    }
    maybe_dump_job(job, out);
    return out;
  };
}

std::vector<std::byte> gguf_export_bytes(const io::gguf_file& input, const llama_model& m, const gguf_export_options& o,
                                         const std::map<std::string, std::string>& meta) {
  require_type(o.type);
  io::gguf_writer w(static_cast<std::uint32_t>(input.alignment()));
  for (const auto& key : input.keys()) {
    if (key == "general.file_type" || key == "general.quantization_version" || key == "general.alignment") continue;
    if (key.rfind("lowbit.export.", 0) == 0) continue;
    w.set_value(key, input.value(key));
  }
  w.set_u32("general.file_type", gguf_file_type(o.type));
  w.set_u32("general.quantization_version", 2);
  w.set_string("lowbit.export.type", io::type_name(o.type));
  w.set_string("lowbit.export.method", o.method);
  for (const auto& [k, v] : meta)
    if (k != "type" && k != "method") w.set_string("lowbit.export." + k, v);
  std::size_t written = 0;
  for (const auto& t : input.tensors()) {
    const linear* L = nullptr;
    for (index l = 0; l < m.cfg.n_layer && !L; ++l)
      for (slot s : all_slots)
        if (t.name == linear_name(l, s)) {
          L = &m.blocks[static_cast<std::size_t>(l)][s];
          break;
        }
    if (L == nullptr) {  // embedding, head, norms, anything else: the input's bytes
      const auto bytes = input.tensor_bytes(t);
      w.add_tensor(t.name, t.dims, t.type, std::vector<std::byte>(bytes.begin(), bytes.end()));
      continue;
    }
    const auto* g = dynamic_cast<const gguf_block_linear*>(L);
    detail::require(g != nullptr, "GGUF export: ", t.name, " was not quantized into GGUF blocks (",
                    L->quantized() ? "another method's format" : "still float", "); quantize with gguf_export_method");
    detail::require(g->type() == o.type, "GGUF export: ", t.name, " holds ", io::type_name(g->type()), " blocks, not ",
                    io::type_name(o.type));
    detail::require(t.dims.size() == 2 && t.dims[0] == static_cast<std::uint64_t>(g->cols()) &&
                        t.dims[1] == static_cast<std::uint64_t>(g->rows()),
                    "GGUF export: ", t.name, " is ", g->rows(), " x ", g->cols(), " in the model but not in the input file");
    w.add_tensor(t.name, t.dims, o.type, g->blocks());
    ++written;
  }
  detail::require(written == static_cast<std::size_t>(7 * m.cfg.n_layer), "GGUF export: the input file holds ", written,
                  " of the model's ", 7 * m.cfg.n_layer, " block linears");
  return w.bytes();
}

std::size_t write_gguf_export(const io::gguf_file& input, const llama_model& m, const gguf_export_options& o,
                              const std::string& path, const std::map<std::string, std::string>& meta) {
  std::vector<std::byte> bytes = gguf_export_bytes(input, m, o, meta);
  {
    // Parse what will be written: every tensor as intended, every key copied.
    const auto back = io::gguf_file::from_memory(bytes, "--export gguf '" + path + "'");
    detail::require(back.tensors().size() == input.tensors().size(), "GGUF export: tensor count changed");
    for (const auto& t : back.tensors()) {
      const auto& src = input.tensor(t.name);
      detail::require(t.dims == src.dims, "GGUF export: ", t.name, " changed shape");
      const bool is_linear = t.name.rfind("blk.", 0) == 0 && t.dims.size() == 2 && t.name.find("norm") == std::string::npos;
      if (is_linear) {
        detail::require(t.type == o.type, "GGUF export: ", t.name, " is ", io::type_name(t.type), ", not ", io::type_name(o.type));
      } else {
        const auto a = back.tensor_bytes(t), b = input.tensor_bytes(src);
        detail::require(t.type == src.type && std::equal(a.begin(), a.end(), b.begin(), b.end()), "GGUF export: ", t.name,
                        " is not the input's bytes");
      }
    }
    for (const auto& key : input.keys())
      detail::require(back.has(key) || key == "general.quantization_version", "GGUF export: metadata key ", key, " lost");
    detail::require(back.get_uint("general.file_type") == gguf_file_type(o.type), "GGUF export: general.file_type");
  }
  const std::size_t n = bytes.size();
  io::write_file_atomic(path, bytes);
  return n;
}

}  // namespace lowbit::tools
