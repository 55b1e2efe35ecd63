#pragma once
// The quantized model as a lowbit file (lowbit-quantize --out / --load; docs/cli.md).
//
// What the file holds (lowbit/io/lowbit_format.hpp: a safetensors container with lowbit's
// magic, per-tensor CRC-32C and a descriptor per packed matrix, written atomically):
//   blk.<l>.<slot>                  every block linear as its packed matrix (codes, stats,
//                                   weak columns or sparse outliers; the descriptor names the
//                                   policies, shape and chosen axis)
//   blk.<l>.<slot>.input_scale      F32, AWQ's 1/s applied to the input (not folded here)
//   blk.<l>.<slot>.perm             I32, SpQR's act-order column permutation
//   blk.<l>.attn_norm.weight, blk.<l>.ffn_norm.weight, output_norm.weight    F32
//   user.* metadata                 method, bits, group, axis, command, the model's shape,
//                                   and the source model's file name and checksums
// The token embedding and the (tied or not) output head are NOT copied: they stay float and
// come from the source GGUF, which loading checks against the CRC-32C of those tensors as
// the file recorded them (so a file is never evaluated with the wrong embedding). A 135M
// model's embedding is 28 M floats, more than all its quantized linears together.
#include <algorithm>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "lowbit-quantize/methods.hpp"
#include "lowbit/io/checksum.hpp"
#include "lowbit/io/lowbit_format.hpp"
#include "model/llama.hpp"

namespace lowbit::tools {

inline std::string linear_name(index layer, slot s) { return "blk." + std::to_string(layer) + "." + slot_name(s); }

// CRC-32C of a float matrix's values (column-major), as hex.
inline std::string float_checksum(const Eigen::MatrixXf& M) {
  const auto* p = reinterpret_cast<const std::byte*>(M.data());
  return io::crc32c_hex(io::crc32c(std::span<const std::byte>(p, static_cast<std::size_t>(M.size()) * sizeof(float))));
}

// The model's shape and the checksums of the float tensors the file does not hold.
inline std::map<std::string, std::string> model_identity(const llama_model& m) {
  const auto& c = m.cfg;
  return {{"model.n_layer", std::to_string(c.n_layer)},
          {"model.n_embd", std::to_string(c.n_embd)},
          {"model.n_ff", std::to_string(c.n_ff)},
          {"model.n_head", std::to_string(c.n_head)},
          {"model.n_head_kv", std::to_string(c.n_head_kv)},
          {"model.n_vocab", std::to_string(c.n_vocab)},
          {"source.token_embd_crc32c", float_checksum(m.tok_embd)},
          {"source.output_crc32c", float_checksum(m.output->weight())}};
}

// Everything the file will hold, in memory (lowbit_writer::bytes() gives the exact file).
inline io::lowbit_writer model_writer(const llama_model& m, const std::map<std::string, std::string>& meta) {
  io::lowbit_writer w;
  for (const auto& [k, v] : meta) w.set_metadata(k, v);
  for (const auto& [k, v] : model_identity(m)) w.set_metadata(k, v);
  for (index l = 0; l < m.cfg.n_layer; ++l) {
    const auto& b = m.blocks[static_cast<std::size_t>(l)];
    const std::string p = "blk." + std::to_string(l) + ".";
    w.add_tensor(p + "attn_norm.weight", Eigen::MatrixXf(b.attn_norm));
    w.add_tensor(p + "ffn_norm.weight", Eigen::MatrixXf(b.ffn_norm));
    for (slot s : all_slots) b[s].save(w, linear_name(l, s));
  }
  w.add_tensor("output_norm.weight", Eigen::MatrixXf(m.output_norm));
  return w;
}

// Writes atomically (a reader never sees half a file) and returns the bytes written.
inline std::vector<std::byte> save_model_file(const llama_model& m, const std::map<std::string, std::string>& meta,
                                              const std::string& path) {
  std::vector<std::byte> bytes = model_writer(m, meta).bytes();
  io::write_file_atomic(path, bytes);
  return bytes;
}

namespace detail_model_file {
// The linear stored under `name`, as one of the formats the tool writes (formats.hpp);
// model_file.cpp, which instantiates the reader of every format once.
std::unique_ptr<linear> load_linear(const io::lowbit_file& f, const std::string& name, quantized_path path);
}  // namespace detail_model_file

// Replaces the block linears and norms of `m` (loaded from the source GGUF) with the file's.
inline void load_model_file(llama_model& m, const io::lowbit_file& f, quantized_path path) {
  const auto meta = f.user_metadata();
  for (const auto& [k, v] : model_identity(m)) {
    auto it = meta.find(k);
    lowbit::detail::require(it != meta.end(), "the lowbit file lacks its metadata '", k,
                            "' (not written by lowbit-quantize --out?)");
    const std::string src = meta.count("source.model") ? meta.at("source.model") : std::string("?");
    lowbit::detail::require(it->second == v, "the lowbit file does not belong to this model: ", k, " is ", it->second,
                            " in the file, ", v, " in the model given (the file was quantized from '", src,
                            "'; pass that GGUF with --model)");
  }
  for (index l = 0; l < m.cfg.n_layer; ++l) {
    auto& b = m.blocks[static_cast<std::size_t>(l)];
    const std::string p = "blk." + std::to_string(l) + ".";
    auto vec = [&](const std::string& name, index n) {
      const Eigen::MatrixXf v = f.load_tensor(name);
      lowbit::detail::require(v.rows() == n && v.cols() == 1, "tensor '", name, "' is ", v.rows(), " x ", v.cols(),
                              ", expected ", n, " x 1");
      return Eigen::VectorXf(v.col(0));
    };
    b.attn_norm = vec(p + "attn_norm.weight", m.cfg.n_embd);
    b.ffn_norm = vec(p + "ffn_norm.weight", m.cfg.n_embd);
    for (slot s : all_slots) {
      const std::string name = linear_name(l, s);
      auto q = detail_model_file::load_linear(f, name, path);
      lowbit::detail::require(q->rows() == b[s].rows() && q->cols() == b[s].cols(), "matrix '", name, "' is ", q->rows(),
                              " x ", q->cols(), ", the model's is ", b[s].rows(), " x ", b[s].cols());
      b.at(s) = std::move(q);
    }
  }
  m.output_norm = [&] {
    const Eigen::MatrixXf v = f.load_tensor("output_norm.weight");
    lowbit::detail::require(v.rows() == m.cfg.n_embd && v.cols() == 1, "tensor 'output_norm.weight' has the wrong shape");
    return Eigen::VectorXf(v.col(0));
  }();
}

}  // namespace lowbit::tools
