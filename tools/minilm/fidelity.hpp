#pragma once
// Embedding fidelity of a quantized MiniLM (docs/minilm.md): sequential, layer-by-layer
// quantization of the encoder's linears as GPTQ / AWQ / OWQ / SpQR run it on decoder LLMs,
// and the metrics of the project's evaluation protocol (docs/data.md) for an encoder:
//   * mean cosine similarity of the quantized model's sentence embeddings to the float
//     model's on evaluation sentences;
//   * per-linear output error ‖W X − Ŵ X‖² / ‖W X‖² on held-out activations.
//
// Sequential quantization: calibration sentences run through the model layer by layer; in a
// layer each group of linears that reads one input (q/k/v ← layer input, attention output ←
// context, intermediate ← post-attention LayerNorm, output ← GELU) is quantized on the inputs
// it sees with every earlier linear already quantized, and the layer's outputs computed with
// the quantized linears feed the next layer (GPTQ's "true sequential"). Trailing held-out
// sentences run through the same passes but are never shown to the method: the layer errors
// are measured on them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "minilm/bert.hpp"

namespace lowbit::minilm {

// ---------------------------------------------------------------- sentences of real text

// WikiText-2 (tokenized release): article lines (not "= heading =" lines), split at " . ",
// the period given back; sentences of 20–400 characters.
inline std::vector<std::string> wikitext_sentences(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    const auto first = line.find_first_not_of(' ');
    if (first == std::string_view::npos || line[first] == '=') continue;
    line.remove_prefix(first);
    for (std::size_t s = 0; s < line.size();) {
      std::size_t e = line.find(" . ", s);
      if (e == std::string_view::npos) e = line.size();
      std::string_view sent = line.substr(s, e - s);
      while (!sent.empty() && sent.back() == ' ') sent.remove_suffix(1);
      while (!sent.empty() && sent.front() == ' ') sent.remove_prefix(1);
      if (sent.size() >= 20 && sent.size() <= 400) out.push_back(std::string(sent) + (e < line.size() ? " ." : ""));
      s = e + 3;
    }
  }
  return out;
}

// Prose with hard-wrapped lines (Project Gutenberg): paragraphs at blank lines, lines joined
// with a space, split after '.', '!' or '?' (and any closing quotes) followed by a space;
// sentences of at least 4 words and at most 1000 characters.
inline std::vector<std::string> prose_sentences(std::string_view text) {
  std::vector<std::string> out;
  std::string para;
  auto flush_para = [&] {
    std::size_t s = 0;
    for (std::size_t i = 0; i <= para.size(); ++i) {
      bool end = i == para.size();
      if (!end && (para[i] == '.' || para[i] == '!' || para[i] == '?')) {
        std::size_t j = i + 1;
        while (j < para.size() && (para[j] == '"' || para[j] == '\'' || para[j] == ')' || para[j] == '_')) ++j;
        if (j == para.size() || para[j] == ' ') end = true, i = j - 1;
      }
      if (!end) continue;
      std::string sent = para.substr(s, std::min(i + 1, para.size()) - s);
      s = i + 1;
      const auto a = sent.find_first_not_of(' ');
      if (a == std::string::npos) continue;
      sent = sent.substr(a);
      if (std::count(sent.begin(), sent.end(), ' ') >= 3 && sent.size() <= 1000) out.push_back(std::move(sent));
    }
    para.clear();
  };
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      flush_para();
    } else {
      if (!para.empty()) para += ' ';
      para += line;
    }
  }
  flush_para();
  return out;
}

// n items spread evenly over v (all of v when n >= its size), from `offset` of each stride.
inline std::vector<std::string> spread(const std::vector<std::string>& v, std::size_t n, std::size_t offset = 0) {
  if (n >= v.size()) return v;
  std::vector<std::string> out;
  const double stride = static_cast<double>(v.size()) / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(v[std::min(v.size() - 1, static_cast<std::size_t>(static_cast<double>(i) * stride) + offset)]);
  return out;
}

// ---------------------------------------------------------------- sequential quantization

// One group of linears sharing an input, as a method sees it.
struct group_job {
  const bert_model& model;
  const bert_layer& layer;  // still holds the float linears of this group
  index layer_index = 0;
  tap input = tap::qkv;
  std::vector<Eigen::MatrixXf> W;  // float weights of tap_slots(input), in order
  act X;                           // calibration inputs [in × tokens]
  const batch& sentences;          // X's sentence boundaries (for attention inside a block)
};

// What a method returns for one linear: the float matrix the model now multiplies by (the
// dequantized packed matrix; with AWQ's input scales applied), and its exact storage cost.
struct quantized_linear {
  Eigen::MatrixXf W_hat;
  double bits = 0.0;  // bits per weight of the packed format
  std::string notes;
};

using method_fn = std::function<std::vector<quantized_linear>(const group_job&)>;

struct layer_report {
  std::string name;  // layer.3.attention.self.query
  index rows = 0, cols = 0;
  double rel_error = 0.0;  // ‖WX − ŴX‖² / ‖WX‖² on held-out activations
  double bits = 0.0;
  std::string notes;
};

// ‖(W − Ŵ) X‖² / ‖W X‖², in float64 (the bias cancels in the difference).
inline double relative_output_error(const Eigen::MatrixXf& W, const Eigen::MatrixXf& W_hat, const act& X) {
  act ref, diff;
  matmul(W, X, ref);
  const Eigen::MatrixXf D = W - W_hat;
  matmul(D, X, diff);
  const double den = ref.cast<double>().squaredNorm();
  return den > 0 ? diff.cast<double>().squaredNorm() / den : 0.0;
}

// The first n sentences of b.
inline batch first_sentences(const batch& b, index n) {
  batch out;
  for (index s = 0; s < n; ++s)
    out.add(std::span<const std::int32_t>(b.ids).subspan(static_cast<std::size_t>(b.begin[static_cast<std::size_t>(s)]),
                                                         static_cast<std::size_t>(b.begin[static_cast<std::size_t>(s) + 1] -
                                                                                  b.begin[static_cast<std::size_t>(s)])));
  return out;
}

// Quantizes every linear of m in place (W ← Ŵ). `calib` holds the calibration sentences and,
// last, `held_out` sentences that only measure the layer errors.
inline std::vector<layer_report> quantize_sequential(bert_model& m, const batch& calib, index held_out,
                                                     const method_fn& method) {
  lowbit::detail::require(held_out >= 1 && held_out < calib.sentences(), "quantize_sequential: ", held_out,
                  " held-out sentences need 1 .. ", calib.sentences() - 1, " (of ", calib.sentences(), ")");
  const batch fit = first_sentences(calib, calib.sentences() - held_out);
  const index n_fit = fit.tokens();
  std::vector<layer_report> reports;
  act h = m.embed(calib);
  for (index l = 0; l < m.cfg.layers; ++l) {
    m.encode_layer(m.layers[static_cast<std::size_t>(l)], h, calib, [&](tap where, const act& X, bert_layer& L) {
      group_job job{m, L, l, where, {}, X.leftCols(n_fit), fit};
      for (slot s : tap_slots(where)) job.W.push_back(L[s].W);
      auto out = method(job);
      lowbit::detail::require(out.size() == job.W.size(), "quantize_sequential: the method returned ", out.size(),
                      " linears for a group of ", job.W.size());
      const act held = X.rightCols(X.cols() - n_fit);
      for (std::size_t i = 0; i < out.size(); ++i) {
        const slot s = tap_slots(where)[i];
        lowbit::detail::require(out[i].W_hat.rows() == job.W[i].rows() && out[i].W_hat.cols() == job.W[i].cols(),
                        "quantize_sequential: the method returned a matrix of the wrong shape for ", slot_name(s));
        layer_report r;
        r.name = "layer." + std::to_string(l) + "." + slot_name(s);
        r.rows = job.W[i].rows();
        r.cols = job.W[i].cols();
        r.rel_error = relative_output_error(job.W[i], out[i].W_hat, held);
        r.bits = out[i].bits;
        r.notes = out[i].notes;
        reports.push_back(std::move(r));
        L[s].W = std::move(out[i].W_hat);
      }
    });
  }
  return reports;
}

// Cosine similarity of matching columns (embeddings are unit vectors, but normalize anyway).
inline std::vector<double> column_cosines(const act& A, const act& B) {
  lowbit::detail::require(A.rows() == B.rows() && A.cols() == B.cols(), "column_cosines: shapes differ");
  std::vector<double> c(static_cast<std::size_t>(A.cols()));
  for (index j = 0; j < A.cols(); ++j) {
    const Eigen::VectorXd a = A.col(j).cast<double>(), b = B.col(j).cast<double>();
    c[static_cast<std::size_t>(j)] = a.dot(b) / std::max(a.norm() * b.norm(), 1e-300);
  }
  return c;
}

}  // namespace lowbit::minilm
