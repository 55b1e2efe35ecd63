#pragma once
// lowbit-quantize --export gguf --type T: a GGUF that llama.cpp runs as is, whose block
// linears are stored in llama.cpp's own type T and whose weights lowbit's methods chose ON
// THAT TYPE'S GRID (issue #18 part 3):
//   rtn   ggml's reference quantizer for T (quantize_row_<t>_ref), bit-exact: what
//         `llama-quantize` writes without an imatrix;
//   gptq  GPTQ's column loop (method/gptq.hpp, detail::gptq_run) whose groups ARE T's blocks:
//         32 weights of one row along the input, fp16 d (and m). When the loop reaches a
//         block's first column it fits that row's d (m) from the error-compensated weights by
//         T's own rule (Q4_0: d = max / −8, ...), rounds them to fp16, and every weight of the
//         block is coded on that stored grid (nearest code, clamped), so the error GPTQ
//         propagates is the error of the file's values.
// The 32-wide types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 are supported (every SmolLM2 linear's row,
// 576 or 1536, holds whole 32-blocks; 576 holds no 256-weight K-quant super-block, which is
// why llama-quantize itself falls back to 32-wide types there).
//
// Everything else of the output is the input's: every metadata key (tokenizer included) but
// general.file_type (set to T's llama_ftype) and general.quantization_version (2), plus
// lowbit.export.* keys saying how the file was made; the token embedding, the output head
// (when untied) and the norms are the input tensors' bytes, unchanged (llama-quantize's
// default mix also keeps a Q8_0 embedding as Q8_0 on these widths).
//
// In lowbit-quantize (the flags the CLI wires, docs/interop.md):
//   --export gguf --type Q4_0 --method rtn|gptq --out FILE.gguf
//   auto opt = gguf_export_options{parse_gguf_export_type(type), method};
//   check_gguf_export(model, opt);                          // before any work: clear errors
//   quantize_sequential(model, calib, gguf_export_method(opt), so);
//   write_gguf_export(input_gguf, model, opt, out, meta);   // bytes, verified, written
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/gguf.hpp"
#include "model/llama.hpp"
#include "model/sequential.hpp"

namespace lowbit::tools {

// The llama.cpp types --export gguf writes, by name ("Q4_0", case-insensitive); a clear error
// listing them otherwise (K-quants and i-quants say they are not supported yet).
io::gguf_type parse_gguf_export_type(std::string_view name);
const std::vector<io::gguf_type>& gguf_export_types();
// llama.cpp's llama_ftype of a file whose block linears are all `t` (LLAMA_FTYPE_MOSTLY_*).
std::uint32_t gguf_file_type(io::gguf_type t);

// How GPTQ on a block grid chooses each block's d (and m): method_gguf.cpp's block_grid_hook.
enum class gguf_fit { rule, weighted, search };

struct gguf_export_options {
  io::gguf_type type = io::gguf_type::q4_0;
  std::string method = "rtn";  // rtn | gptq
  double percdamp = 0.01;      // gptq: λ = percdamp · mean(diag H)
  index blocksize = 128;       // gptq: lazy-batch columns (a multiple of 32)
  // How each block's d (and m) is chosen. rule: the type's own (rtn: llama-quantize's bytes);
  // weighted: a search weighted by the calibration inputs' diag H on the original weights
  // (rtn: llama-imatrix's idea with lowbit's search; gptq: fixed before the loop); search:
  // gptq only, weighted by 1 / U_jj² on the compensated weights when the loop reaches the block.
  gguf_fit fit = gguf_fit::rule;
};

// Checks the method, the type, and that every block linear of `m` holds whole blocks of the
// type (naming the first tensor that does not). Call before any work.
void check_gguf_export(const llama_model& m, const gguf_export_options& o);

// A linear stored as GGUF blocks of one type: the exact bytes the file gets. It multiplies by
// lowbit's reader's dequantization of those bytes, so lowbit's perplexity of the quantized
// model IS the exported file's.
class gguf_block_linear final : public linear {
 public:
  gguf_block_linear(io::gguf_type type, index rows, index cols, std::vector<std::byte> blocks, std::string notes = {});
  index rows() const override { return W_.rows(); }
  index cols() const override { return W_.cols(); }
  void apply(const act& X, act& Y) const override { parallel_matmul(W_, X, Y); }
  Eigen::MatrixXf weight() const override { return W_; }
  double bits_per_weight() const override;
  bool quantized() const override { return true; }
  std::string notes() const override { return notes_; }
  void save(io::lowbit_writer& w, const std::string& name) const override;
  io::gguf_type type() const { return type_; }
  const std::vector<std::byte>& blocks() const { return blocks_; }

 private:
  io::gguf_type type_;
  std::vector<std::byte> blocks_;
  Eigen::MatrixXf W_;
  std::string notes_;
};

// The blocks of W (y = W x, [rows × cols]) in type t, rows of blocks as the file stores them.
//   RTN: ggml's reference quantizer, bit-exact.
std::vector<std::byte> gguf_rtn_blocks(io::gguf_type t, const Eigen::MatrixXf& W);
//   GPTQ on t's block grid with Hessian H [cols × cols] (2 X Xᵀ / n); `loss` (optional)
//   receives GPTQ's Σ (w − q)² / U_jj² / 2.
std::vector<std::byte> gguf_gptq_blocks(io::gguf_type t, const Eigen::MatrixXf& W, const Eigen::MatrixXd& H,
                                        double percdamp = 0.01, index blocksize = 128, double* loss = nullptr,
                                        gguf_fit fit = gguf_fit::rule);

//   Weighted RTN: each block's d (and m) searched with weights hdiag [cols] (the calibration
//   inputs' diag H), the weights then rounded to that grid; no error feedback. The same bytes
//   as gguf_gptq_blocks with the diagonal Hessian and gguf_fit::weighted, without its solve.
std::vector<std::byte> gguf_weighted_rtn_blocks(io::gguf_type t, const Eigen::MatrixXf& W, const Eigen::VectorXd& hdiag);

// The sequential pass's method: every linear of a group → a gguf_block_linear of o.type.
method_fn gguf_export_method(const gguf_export_options& o);

// The GGUF image: `input`'s metadata and non-linear tensors, `m`'s block linears (each must
// be a gguf_block_linear of o.type of the input tensor's shape), `meta` as lowbit.export.<key>
// strings. Tensors keep the input's order.
std::vector<std::byte> gguf_export_bytes(const io::gguf_file& input, const llama_model& m, const gguf_export_options& o,
                                         const std::map<std::string, std::string>& meta = {});
// gguf_export_bytes, parsed back and checked (every block linear's bytes, every copied
// tensor's bytes, the metadata), then written atomically to `path`. Returns the file size.
std::size_t write_gguf_export(const io::gguf_file& input, const llama_model& m, const gguf_export_options& o,
                              const std::string& path, const std::map<std::string, std::string>& meta = {});

}  // namespace lowbit::tools
