#pragma once
// What the tools know about a decoder architecture, as data: one row per linear of a block
// (its names in GGUF and in Hugging Face checkpoints, its shape, where its input comes from,
// how the checkpoint orders its rows, OWQ's weak-column share). AutoAWQ keeps this knowledge
// in one class per model; the architectures lowbit reads (Llama, Mistral, Qwen2, Qwen3;
// docs/interop.md) share one block layout, so one table serves them, and the loaders, the
// sequential pass, the method adapters and the reports read it instead of spelling names,
// orders and ratios of their own.
#include <array>
#include <cstddef>
#include <span>
#include <string>

#include "lowbit/core/matrix_view.hpp"

namespace lowbit::tools {

// The seven linears of a block, in the order the data meets them.
enum class slot : int { q, k, v, o, gate, up, down };

// Where the block's linears read their input: the hook of block_forward sees each of these
// once, before the linears that read it run (so it may replace them: sequential quantization).
enum class tap { attn_in, attn_out, ffn_in, ffn_act };

// The widths a linear's shape is made of.
enum class width { embd, q_heads, kv_heads, ff };

struct linear_recipe {
  slot s;
  const char* gguf;       // llama.cpp: blk.N.<gguf>.weight
  const char* hf_module;  // transformers: model.layers.N.<hf_module>.<hf>.weight
  const char* hf;
  width rows, cols;       // [out x in]
  tap input;              // the tap that feeds it (the groups AWQ scales and GPTQ shares H over)
  bool rope_rows;         // transformers stores its rows in RoPE's half-split order (permuted on load)
  double owq_ratio;       // OWQ reference's weak-column share (model_config.json)
};

inline constexpr std::array<linear_recipe, 7> block_linears{{
    {slot::q, "attn_q", "self_attn", "q_proj", width::q_heads, width::embd, tap::attn_in, true, 1.0},
    {slot::k, "attn_k", "self_attn", "k_proj", width::kv_heads, width::embd, tap::attn_in, true, 1.0},
    {slot::v, "attn_v", "self_attn", "v_proj", width::kv_heads, width::embd, tap::attn_in, false, 1.0},
    {slot::o, "attn_output", "self_attn", "o_proj", width::embd, width::q_heads, tap::attn_out, false, 1.0},
    {slot::gate, "ffn_gate", "mlp", "gate_proj", width::ff, width::embd, tap::ffn_in, false, 0.375},
    {slot::up, "ffn_up", "mlp", "up_proj", width::ff, width::embd, tap::ffn_in, false, 0.375},
    {slot::down, "ffn_down", "mlp", "down_proj", width::embd, width::ff, tap::ffn_act, false, 0.375},
}};

// Rows are in slot order, and the slots of each tap are consecutive (tap_slots gives spans).
static_assert([] {
  for (std::size_t i = 0; i < block_linears.size(); ++i)
    if (static_cast<std::size_t>(block_linears[i].s) != i) return false;
  for (std::size_t i = 1; i < block_linears.size(); ++i)
    if (static_cast<int>(block_linears[i].input) < static_cast<int>(block_linears[i - 1].input)) return false;
  return true;
}());

inline constexpr std::array<slot, 7> all_slots{slot::q, slot::k, slot::v, slot::o, slot::gate, slot::up, slot::down};
inline constexpr std::size_t linears_per_block = block_linears.size();

inline const linear_recipe& recipe_of(slot s) { return block_linears[static_cast<std::size_t>(s)]; }
inline const char* slot_name(slot s) { return recipe_of(s).gguf; }  // GGUF's name, used in reports

// The slots a tap feeds, in order.
inline std::span<const slot> tap_slots(tap t) {
  std::size_t first = 0;
  while (first < block_linears.size() && block_linears[first].input != t) ++first;
  std::size_t last = first;
  while (last < block_linears.size() && block_linears[last].input == t) ++last;
  return std::span<const slot>(all_slots).subspan(first, last - first);
}

// model.layers.<layer>.<module>.<name>.<what> ("weight" or "bias").
inline std::string hf_tensor_name(index layer, slot s, const char* what) {
  const linear_recipe& r = recipe_of(s);
  return "model.layers." + std::to_string(layer) + "." + r.hf_module + "." + r.hf + "." + what;
}

}  // namespace lowbit::tools
