#pragma once
// A tiny random Llama model written as a real GGUF (Q8_0 embedding, F32 linears and norms, an
// outlier input channel in attn_q, tokenizer-shaped metadata), and random token ids for it:
// the input of the tests of lowbit-quantize's exporters (tools_gguf_export_test,
// tools_hf_export_test).
#include <Eigen/Dense>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lowbit/io/gguf_writer.hpp"
#include "test_data.hpp"

namespace lowbit_test::tiny_llama {

namespace io = lowbit::io;

constexpr int n_layer = 2, n_embd = 64, n_head = 4, n_head_kv = 2, n_vocab = 64;

inline std::vector<std::byte> tiny_gguf(std::uint32_t seed, int n_ff = 96) {
  io::gguf_writer w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", "tiny export test");
  w.set_u32("general.file_type", 0);
  w.set_u32("llama.block_count", n_layer);
  w.set_u32("llama.context_length", 64);
  w.set_u32("llama.embedding_length", n_embd);
  w.set_u32("llama.feed_forward_length", static_cast<std::uint32_t>(n_ff));
  w.set_u32("llama.attention.head_count", n_head);
  w.set_u32("llama.attention.head_count_kv", n_head_kv);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f32("llama.rope.freq_base", 10000.0f);
  // Tokenizer-shaped metadata: string, f32 and i32 arrays, a bool (copied type for type).
  std::vector<std::string> toks;
  std::vector<float> scores;
  std::vector<std::int32_t> types;
  for (int i = 0; i < n_vocab; ++i) {
    toks.push_back(std::to_string(i));
    toks.back().insert(toks.back().begin(), 't');
    scores.push_back(-0.5f * static_cast<float>(i));
    types.push_back(i < 3 ? 3 : 1);
  }
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string_array("tokenizer.ggml.tokens", toks);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  const auto F32 = io::gguf_type::f32;
  const int kv = n_head_kv * (n_embd / n_head);
  std::uint32_t k = seed * 1000;
  auto norm = [&](int n) {
    Eigen::VectorXf v = Eigen::VectorXf::Ones(n) + lowbit_test::gaussian(n, 1, ++k, 0.1f);
    return std::vector<float>(v.data(), v.data() + n);
  };
  auto mat = [&](int r, int c) { return lowbit_test::gaussian(r, c, ++k, 1.0f / std::sqrt(static_cast<float>(c))); };
  w.add_matrix("token_embd.weight", lowbit_test::gaussian(n_vocab, n_embd, ++k), io::gguf_type::q8_0);
  for (int l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    w.add_vector(p + "attn_norm.weight", norm(n_embd));
    Eigen::MatrixXf q = mat(n_embd, n_embd);
    q.col(5) *= 8.0f;  // an outlier input channel
    w.add_matrix(p + "attn_q.weight", q, F32);
    w.add_matrix(p + "attn_k.weight", mat(kv, n_embd), F32);
    w.add_matrix(p + "attn_v.weight", mat(kv, n_embd), F32);
    w.add_matrix(p + "attn_output.weight", mat(n_embd, n_embd), F32);
    w.add_vector(p + "ffn_norm.weight", norm(n_embd));
    w.add_matrix(p + "ffn_gate.weight", mat(n_ff, n_embd), F32);
    w.add_matrix(p + "ffn_up.weight", mat(n_ff, n_embd), F32);
    w.add_matrix(p + "ffn_down.weight", mat(n_embd, n_ff), F32);
  }
  w.add_vector("output_norm.weight", norm(n_embd));
  return w.bytes();
}

inline std::vector<std::int32_t> random_tokens(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, n_vocab - 1);
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = u(rng);
  return t;
}

}  // namespace lowbit_test::tiny_llama
