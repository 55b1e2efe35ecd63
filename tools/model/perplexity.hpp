#pragma once
// Perplexity with the protocol of the GPTQ line of papers (seed-reference.md): the evaluation
// text tokenized once, cut into non-overlapping windows of a fixed context length, each
// window run from an empty cache; inside a window of T tokens, positions 0 … T−2 predict the
// next token, so a window contributes T − 1 predictions. ppl = exp(mean NLL), natural log.
// The protocol (context length, token vs word level) moves numbers more than methods do:
// compare only numbers made with the same context length and token count.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "model/llama.hpp"

namespace lowbit::tools {

// A one-line progress bar with an ETA on stderr. On a terminal it redraws in place; into a
// file or pipe it prints a line at every 10 %.
class progress_bar {
 public:
  progress_bar(std::string label, index total, bool enabled = true)
      : label_(std::move(label)), total_(std::max<index>(total, 1)), enabled_(enabled), tty_(isatty(2) != 0),
        t0_(std::chrono::steady_clock::now()) {}
  void update(index done) {
    if (!enabled_) return;
    const double el = elapsed();
    const bool last = done >= total_;
    if (tty_) {
      if (!last && el - last_draw_ < 0.25) return;
    } else {
      const index decile = done * 10 / total_;
      if (!last && decile == last_decile_) return;
      last_decile_ = decile;
    }
    last_draw_ = el;
    const int width = 30, fill = static_cast<int>(width * done / total_);
    const double eta = done > 0 ? el * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
    std::fprintf(stderr, "%s%s [%.*s%*s] %td/%td  %s elapsed, ETA %s%s", tty_ ? "\r" : "", label_.c_str(), fill,
                 "##############################", width - fill, "", done, total_, clock(el).c_str(),
                 done > 0 ? clock(eta).c_str() : "--:--", tty_ && !last ? "   " : "\n");
    std::fflush(stderr);
  }
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

  static std::string clock(double s) {
    const long t = std::lround(s);
    char buf[32];
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
  }

 private:
  std::string label_;
  index total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point t0_;
  double last_draw_ = -1.0;
  index last_decile_ = -1;
};

struct perplexity_result {
  double ppl = 0.0;
  double mean_nll = 0.0;       // natural log
  index predictions = 0;       // tokens scored
  index windows = 0;
  index context = 0;
  double seconds = 0.0;
};

// Sum over columns t < T−1 of −log softmax(logits[:, t])[next[t]] (float64 accumulation).
inline double window_nll(const act& logits, std::span<const std::int32_t> tokens) {
  const index T = logits.cols();
  std::vector<double> part(static_cast<std::size_t>(T), 0.0);
  parallel_for(T - 1, 32, [&](index b, index e) {
    for (index t = b; t < e; ++t) {
      const auto col = logits.col(t);
      const double mx = static_cast<double>(col.maxCoeff());
      double s = 0.0;
      for (index i = 0; i < col.size(); ++i) s += std::exp(static_cast<double>(col(i)) - mx);
      part[static_cast<std::size_t>(t)] = mx + std::log(s) - static_cast<double>(col(tokens[static_cast<std::size_t>(t + 1)]));
    }
  });
  double sum = 0.0;
  for (double p : part) sum += p;  // fixed order: the result does not depend on threads
  return sum;
}

// Perplexity over the first `max_tokens` tokens (rounded down to whole windows; all of them
// when max_tokens <= 0) in windows of `context` tokens.
inline perplexity_result perplexity(llama_model& m, std::span<const std::int32_t> tokens, index context,
                                    index max_tokens, const std::string& label = "perplexity", bool show_progress = true) {
  detail::require(context >= 2, "perplexity: context ", context, " must be at least 2 tokens");
  index n = static_cast<index>(tokens.size());
  if (max_tokens > 0) n = std::min(n, max_tokens);
  const index windows = n / context;
  detail::require(windows >= 1, "perplexity: the evaluation text has ", tokens.size(), " tokens, fewer than one window of ",
                  context, " (lower --ctx or use a longer --eval file)");
  progress_bar bar(label, windows, show_progress);
  double nll = 0.0;
  for (index w = 0; w < windows; ++w) {
    const auto win = tokens.subspan(static_cast<std::size_t>(w * context), static_cast<std::size_t>(context));
    nll += window_nll(m.forward(win, context), win);
    bar.update(w + 1);
  }
  perplexity_result r;
  r.windows = windows;
  r.context = context;
  r.predictions = windows * (context - 1);
  r.mean_nll = nll / static_cast<double>(r.predictions);
  r.ppl = std::exp(r.mean_nll);
  r.seconds = bar.elapsed();
  return r;
}

}  // namespace lowbit::tools
