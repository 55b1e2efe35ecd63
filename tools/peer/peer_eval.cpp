// peer-eval: perplexity of any Llama-architecture GGUF file on lowbit's protocol, and the
// exact bits per weight of its block linears from their stored GGUF types.
//
// It exists to measure peers (llama.cpp's own quantization types, scripts/peer-llamacpp) on
// exactly the protocol lowbit-quantize uses for the float model and lowbit's methods: the
// same reader (every weight dequantized to float), the same forward pass (tools/model/
// llama.hpp), the same tokenizer and the same windows (tools/model/perplexity.hpp). Only the
// model file differs. It is not part of the library or of CI; scripts/peer-llamacpp builds it
// with one compiler call.
//
//   peer-eval MODEL.gguf [--eval FILE] [--ctx 512] [--eval-tokens 32768] [--threads N] [--quiet]
//   peer-eval MODEL.gguf --compare OTHER.gguf
//
// --first N scores only the predictions made at positions N ... ctx−2 of each window (the
// earlier ones are context): `--first 256 --ctx 512` is llama-perplexity's protocol (its
// first = n_ctx / 2, non-overlapping chunks, no BOS for a model whose add_bos_token is false),
// so the two programs' numbers on one file are comparable (scripts/peer-llamacpp, export step).
//
// --compare checks lowbit's reader against another implementation on a whole model: OTHER is
// the same model as written by that implementation in a plain type (e.g. `llama-quantize
// --allow-requantize MODEL.gguf OTHER.gguf F32`: llama.cpp's own dequantization). Every tensor
// is dequantized from both files and compared element by element; exit status 1 on any
// difference.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "lowbit-quantize/text.hpp"
#include "model/perplexity.hpp"

namespace lt = lowbit::tools;

namespace {

struct args {
  std::string model, eval, compare;
  lowbit::index ctx = 512, eval_tokens = 32768;
  lowbit::index first = 0;  // --first: score only positions >= first of each window
  unsigned threads = 0;
  bool quiet = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "%s\nusage: peer-eval MODEL.gguf [--eval FILE] [--ctx N] [--eval-tokens N] [--threads N] [--quiet]\n"
               "       peer-eval MODEL.gguf --compare SAME_MODEL_IN_F32.gguf\n"
               "  defaults: --eval $LOWBIT_DATA/wikitext-2/test.txt (LOWBIT_DATA defaults to ./data, the repository's),\n"
               "            --ctx 512, --eval-tokens 32768 (the lowbit-quantize protocol)\n",
               why.c_str());
  std::exit(2);
}

args parse(int argc, char** argv) {
  args a;
  const char* env = std::getenv("LOWBIT_DATA");
  a.eval = ((env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path("data")) /
            "wikitext-2" / "test.txt")
               .string();
  auto number = [&](int& i, const std::string& flag) -> long long {
    if (i + 1 >= argc) usage(flag + " needs a value");
    char* end = nullptr;
    const long long v = std::strtoll(argv[++i], &end, 10);
    if (end == argv[i] || *end != '\0' || v < 0) usage(flag + " expects a non-negative integer, got '" + argv[i] + "'");
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--eval") {
      if (i + 1 >= argc) usage("--eval needs a file");
      a.eval = argv[++i];
    } else if (f == "--compare") {
      if (i + 1 >= argc) usage("--compare needs a file");
      a.compare = argv[++i];
    } else if (f == "--ctx") a.ctx = number(i, f);
    else if (f == "--eval-tokens") a.eval_tokens = number(i, f);
    else if (f == "--first") a.first = number(i, f);
    else if (f == "--threads") a.threads = static_cast<unsigned>(number(i, f));
    else if (f == "--quiet") a.quiet = true;
    else if (f == "--help" || f == "-h") usage("peer-eval: perplexity of a GGUF model on lowbit's protocol");
    else if (!f.empty() && f[0] == '-') usage("unknown option '" + f + "'");
    else if (a.model.empty()) a.model = f;
    else usage("more than one model file given");
  }
  if (a.model.empty()) usage("no model file given");
  if (a.ctx < 2) usage("--ctx must be at least 2");
  if (a.first >= a.ctx - 1) usage("--first must be below --ctx - 1");
  return a;
}

// Bits per weight of a tensor as stored: bytes of a block × 8 / weights of the block (the
// per-block scales and mins included, e.g. Q4_K 4.5, Q6_K 6.5625, Q8_0 8.5).
double stored_bits(const lowbit::io::gguf_tensor_info& t) {
  const auto tr = *lowbit::io::type_traits(t.type);  // known: the file was validated on open
  return 8.0 * tr.bytes / tr.block;
}

// Every tensor of `a` against the same tensor of `b`, both dequantized by lowbit's reader;
// returns the number of tensors that differ anywhere.
int compare_models(const lowbit::io::gguf_file& a, const lowbit::io::gguf_file& b) {
  int differing = 0;
  std::size_t compared = 0;
  for (const auto& t : a.tensors()) {
    const auto* o = b.find(t.name);
    if (o == nullptr || o->dims != t.dims) {
      std::printf("%-28s missing or of another shape in the other file\n", t.name.c_str());
      ++differing;
      continue;
    }
    const auto x = a.load_vector(t.name), y = b.load_vector(t.name);
    std::size_t bad = 0;
    double max_abs = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (x[i] != y[i]) {
        ++bad;
        max_abs = std::max(max_abs, std::abs(static_cast<double>(x[i]) - static_cast<double>(y[i])));
      }
    compared += x.size();
    if (bad != 0) {
      std::printf("%-28s %-6s %zu of %zu values differ (max |diff| %.3g)\n", t.name.c_str(),
                  lowbit::io::type_name(t.type).c_str(), bad, x.size(), max_abs);
      ++differing;
    }
  }
  std::printf("compared %zu tensors, %zu values: %d differ\n", a.tensors().size(), compared, differing);
  return differing;
}

}  // namespace

int main(int argc, char** argv) try {
  const args a = parse(argc, argv);
  if (a.threads > 0) lowbit::set_num_threads(a.threads);
  const auto file = lowbit::io::gguf_file::open(a.model);
  if (!a.compare.empty()) return compare_models(file, lowbit::io::gguf_file::open(a.compare)) == 0 ? 0 : 1;

  // The block linears (attention q/k/v/o and MLP gate/up/down of every block): what lowbit's
  // methods quantize, so their average bits are the comparable number.
  std::map<std::string, std::pair<double, double>> by_type;  // type -> (weights, bits)
  double weights = 0, bits = 0;
  for (const auto& t : file.tensors()) {
    if (t.name.rfind("blk.", 0) != 0 || t.dims.size() != 2) continue;  // norms are 1-D
    const double n = static_cast<double>(t.n_elements()), b = stored_bits(t) * n;
    auto& e = by_type[lowbit::io::type_name(t.type)];
    e.first += n;
    e.second += b;
    weights += n;
    bits += b;
  }
  lowbit::detail::require(weights > 0, a.model, ": no 2-D tensors named blk.* (not a Llama-architecture GGUF?)");
  std::string mix;
  for (const auto& [name, e] : by_type) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s %.1f%%", mix.empty() ? "" : ", ", name.c_str(), 100.0 * e.first / weights);
    mix += buf;
  }
  const auto* embd = file.find("token_embd.weight");
  const auto* out = file.find("output.weight");
  std::printf("model            : %s\n", a.model.c_str());
  std::printf("block linears    : %.0f weights, %.4f bits/weight (%s)\n", weights, bits / weights, mix.c_str());
  std::printf("token embedding  : %s%s\n", embd != nullptr ? lowbit::io::type_name(embd->type).c_str() : "absent",
              out == nullptr ? " (tied: also the LM head)" : "");
  if (out != nullptr) std::printf("output           : %s\n", lowbit::io::type_name(out->type).c_str());
  std::fflush(stdout);

  const auto tokens = lt::load_tokens(file, a.eval, "evaluation text");
  auto model = lt::llama_model::from_gguf(file);
  lt::perplexity_result r;
  if (a.first == 0) {
    r = lt::perplexity(model, tokens, a.ctx, a.eval_tokens, "ppl ", !a.quiet);
  } else {  // llama-perplexity's scoring: positions first .. ctx-2 of every window
    const auto t0 = std::chrono::steady_clock::now();
    lowbit::index n = static_cast<lowbit::index>(tokens.size());
    if (a.eval_tokens > 0) n = std::min(n, a.eval_tokens);
    r.windows = n / a.ctx;
    r.context = a.ctx;
    lowbit::detail::require(r.windows >= 1, "the evaluation text is shorter than one window");
    double nll = 0;
    for (lowbit::index w = 0; w < r.windows; ++w) {
      const auto win = std::span<const std::int32_t>(tokens).subspan(static_cast<std::size_t>(w * a.ctx),
                                                                     static_cast<std::size_t>(a.ctx));
      const lt::act logits = model.forward(win, a.ctx);
      for (lowbit::index t = a.first; t < a.ctx - 1; ++t) {
        const auto col = logits.col(t);
        const double mx = static_cast<double>(col.maxCoeff());
        double s = 0.0;
        for (lowbit::index i = 0; i < col.size(); ++i) s += std::exp(static_cast<double>(col(i)) - mx);
        nll += mx + std::log(s) - static_cast<double>(col(win[static_cast<std::size_t>(t + 1)]));
      }
      r.predictions += a.ctx - 1 - a.first;
    }
    r.mean_nll = nll / static_cast<double>(r.predictions);
    r.ppl = std::exp(r.mean_nll);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::printf("perplexity       : %.3f (%td windows x %td tokens, %td predictions, %s, %.0f s)\n", r.ppl, r.windows,
              r.context, r.predictions, a.eval.c_str(), r.seconds);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "peer-eval: %s\n", e.what());
  return 1;
}
