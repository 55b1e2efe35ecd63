#pragma once
// lowbit-quantize --export gptq|awq --out DIR: a Hugging Face model folder whose block
// linears are GPTQ (AutoGPTQ / GPTQModel, 2/3/4/8 bits) or AutoAWQ "GEMM" (4 bits) int32
// tensors, the layouts transformers and vLLM load (lowbit/io/interop_autoawq.hpp draws them):
//
//   DIR/config.json            the source's (a Hugging Face --model) or one written from the
//                              GGUF's llama.* keys, plus "quantization_config"
//   DIR/model.safetensors      <linear>.qweight / .qzeros / .scales (/ .g_idx); embedding,
//                              norms, biases and an untied head in fp16
//   DIR/quantize_config.json   (gptq) AutoGPTQ's copy of the quantization settings
//   DIR/tokenizer.json, tokenizer_config.json   copied from a Hugging Face --model, or
//                              written from the GGUF's byte-level BPE vocabulary and merges
//                              (none when the GGUF has no tokenizer keys)
//
// What the folder holds is what lowbit quantized, moved into the checkpoint's conventions
// exactly where it can be:
//   - rows of q_proj / k_proj go back to Hugging Face's RoPE order (lowbit's runner uses
//     llama.cpp's, model/hf_checkpoint.hpp): a row permutation, exact for per-row grids;
//   - AWQ's input scales (the layer multiplies its input by 1/s) are folded into the
//     producer of that input, as AutoAWQ's apply_scale does: the attention norm for q/k/v,
//     the MLP norm for gate/up, the rows of up_proj (their fp16 scales) for down_proj, the
//     rows of v_proj for o_proj (multi-head attention only). The folded norms and scales are
//     rounded to fp16 once more, so the folder's perplexity can differ slightly from the
//     in-memory model's; the tool reports both (read back from the folder's bytes).
//   - the checkpoint convention is "gptq" (v1: zero - 1, what every loader reads) unless a
//     zero point is 0, which v1 cannot hold; then the whole file is "gptq_v2" (true zeros,
//     GPTQModel's format), and the tool says so.
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>

#include "lowbit/io/gguf.hpp"
#include "lowbit/io/interop_autoawq.hpp"
#include "model/llama.hpp"

namespace lowbit::tools {

enum class int32_format { gptq, awq };
inline const char* int32_format_name(int32_format f) { return f == int32_format::gptq ? "gptq" : "awq"; }

struct hf_export_options {
  int32_format format = int32_format::gptq;
  int bits = 4;
  int group = 128;  // 0: one group over the whole input (group_size -1)
};

// Where the model came from: exactly one of the two is set.
struct hf_export_source {
  const io::gguf_file* gguf = nullptr;
  std::filesystem::path hf_dir;  // a Hugging Face folder (its config and tokenizer files are copied)
};

struct hf_export_result {
  std::size_t bytes = 0;  // all files together
  io::gptq_checkpoint checkpoint = io::gptq_checkpoint::v1;
  index folded_scales = 0;  // AWQ input-scale vectors folded into norms or producer rows
};

// Checks, before any work, that the options describe a checkpoint the format can hold and
// that the model's shapes fill its int32 words; a readable error otherwise.
void check_hf_export(const llama_model& m, const hf_export_options& o);

// Checks, before any work, that the source's tokenizer and config can be written (a GGUF's
// tokenizer must be byte-level BPE; one without tokenizer keys gives a folder without one).
void check_hf_export_source(const hf_export_source& src, const llama_model& m);

// Writes DIR (which must not exist) through a temporary folder next to it, renamed into place
// only after model.safetensors was read back from disk and every layer compared.
hf_export_result write_hf_export(const hf_export_source& src, const llama_model& m, const hf_export_options& o,
                                 const std::string& dir, const std::map<std::string, std::string>& meta);

// The float model an exported folder stands for, read from its files by lowbit's own readers
// (io::read_gptq / read_awq, dequantized as the checkpoint's kernels do): `base` gives the
// architecture; q / k rows return to the runner's order.
llama_model load_hf_export(const std::string& dir, const llama_model& base, const hf_export_options& o);

}  // namespace lowbit::tools
