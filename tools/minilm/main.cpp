// minilm-fidelity: quantizes all-MiniLM-L6-v2's 36 linears with lowbit's methods
// (sequentially, layer by layer, calibrated on WikiText-2 valid sentences) and reports, per
// variant, how close the quantized model's sentence embeddings stay to the float model's on
// WikiText-2 test and Pride and Prejudice sentences, the per-linear output error on held-out
// activations, the exact bits per weight and the quantization time. docs/minilm.md.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "common/assets.hpp"
#include "lowbit/lowbit.hpp"
#include "minilm/bert.hpp"
#include "minilm/fidelity.hpp"
#include "minilm/wordpiece.hpp"

using namespace lowbit;
using namespace lowbit::minilm;

namespace {

// ---------------------------------------------------------------- method adapters

template <class Q>
quantized_linear take(const Q& q) {
  return {q.dequantize(), q.bits_per_weight(), q.report.notes};
}

template <class M>
method_fn plain() {  // RTN: weights only
  return [](const group_job& job) {
    std::vector<quantized_linear> out;
    for (const auto& W : job.W) out.push_back(take(quantize<M>(W)));
    return out;
  };
}

inline hessian hessian_of(const act& X) {
  hessian H(X.rows());
  H.add_batch(X);
  return H;
}

template <class M, class... Options>
method_fn with_hessian(Options... o) {  // GPTQ, SpQR: one Hessian 2XXᵀ/n per group input (q/k/v share it)
  return [o...](const group_job& job) {
    const hessian H = hessian_of(job.X);
    std::vector<quantized_linear> out;
    for (const auto& W : job.W) out.push_back(take(quantize<M>(W, H, o...)));
    return out;
  };
}

inline spqr_options spqr_threshold(double r) {
  spqr_options o;
  o.outlier_threshold = r;
  return o;
}

template <class M>
method_fn owq_method(owq_options o) {
  return [o](const group_job& job) {
    const hessian H = hessian_of(job.X);
    std::vector<quantized_linear> out;
    for (const auto& W : job.W) out.push_back(take(quantize<M>(W, H, o)));
    return out;
  };
}

template <class M>
method_fn with_activations() {  // AdaDim: the axis with the lower ‖WX − ŴX‖² on X
  return [](const group_job& job) {
    std::vector<quantized_linear> out;
    for (const auto& W : job.W) out.push_back(take(quantize<M>(W, job.X)));
    return out;
  };
}

// AWQ on a group sharing an input, with the block whose output the α search protects as in
// llm-awq's module2inspect: q/k/v → the attention and its (float) output dense; intermediate →
// the feed-forward with the float output dense; attention output and output dense → the
// linear itself. The packed weights are W·diag(s); the effective Ŵ is dequant · diag(1/s):
// 1/s folds into the producer (LayerNorm γ, β for q/k/v and intermediate; value rows for the
// attention output), and for the output dense (after GELU, which is not homogeneous) it is an
// input scale as llm-awq's ScaledActivation (1536 floats per layer, not counted in bits).
// The AWQ searches run their block on the first awq_sentences calibration sentences (AWQ
// calibrates on a small set; here each α and clip candidate costs a block pass).
constexpr Eigen::Index awq_sentences = 128;

template <class B, class G>
method_fn awq_method() {
  return [](const group_job& job) {
    const bert_model& m = job.model;
    const bert_layer& L = job.layer;
    const batch sub = first_sentences(job.sentences, std::min<Eigen::Index>(awq_sentences, job.sentences.sentences()));
    awq_options ao;  // no_clip_names covers "query" / "key"
    if (job.input == tap::qkv)
      ao.block = [&](std::span<const Eigen::MatrixXf> W, const Eigen::MatrixXf& X) {
        act q, k, v, y;
        matmul(W[0], X, q);
        matmul(W[1], X, k);
        matmul(W[2], X, v);
        q.colwise() += L[slot::q].b;
        k.colwise() += L[slot::k].b;
        v.colwise() += L[slot::v].b;
        apply(L[slot::attn_out], m.attention(q, k, v, sub), y);
        return y;
      };
    if (job.input == tap::up)
      ao.block = [&](std::span<const Eigen::MatrixXf> W, const Eigen::MatrixXf& X) {
        act u, y;
        matmul(W[0], X, u);
        u.colwise() += L[slot::up].b;
        gelu(u);
        apply(L[slot::down], u, y);
        return y;
      };
    std::vector<awq_linear> ls;
    for (std::size_t i = 0; i < job.W.size(); ++i) ls.emplace_back(slot_name(tap_slots(job.input)[i]), job.W[i]);
    auto g = awq<B, G>::quantize_group(ls, Eigen::MatrixXf(job.X.leftCols(sub.tokens())), ao);
    std::vector<quantized_linear> out;
    for (auto& q : g.linears)
      out.push_back({q.dequantize() * q.input_scales.cwiseInverse().asDiagonal(), q.bits_per_weight(), q.report.notes});
    return out;
  };
}

inline owq_options owq_extra(double bits) {
  owq_options o;
  o.extra_bits = bits;
  return o;
}

struct variant {
  std::string name, method, format;
  method_fn fn;
};

std::vector<variant> all_variants() {
  using oc128 = group<axis::oc, 128>;
  using ic128 = group<axis::ic, 128>;
  using ocpc = group<axis::oc, per_channel>;
  using oc64 = group<axis::oc, 64>;
  std::vector<variant> v;
  v.push_back({"rtn-w8-g128", "RTN", "8-bit, g128 per-OC", plain<rtn<bits<8>, oc128>>()});
  v.push_back({"rtn-w4-g128", "RTN", "4-bit, g128 per-OC", plain<rtn<bits<4>, oc128>>()});
  v.push_back({"rtn-w4-g128-ic", "RTN", "4-bit, g128 per-IC", plain<rtn<bits<4>, ic128>>()});
  v.push_back({"gptq-w4-g128", "GPTQ", "4-bit, g128 per-OC", with_hessian<gptq<bits<4>, oc128>>()});
  v.push_back({"awq-w4-g128", "AWQ", "4-bit, g128 per-OC", awq_method<bits<4>, oc128>()});
  v.push_back({"adadim-rtn-w4-g128", "AdaDim-RTN", "4-bit, g128 OC/IC per linear",
               with_activations<adadim<rtn<bits<4>, oc128>>>()});
  v.push_back({"rtn-w3-g128", "RTN", "3-bit, g128 per-OC", plain<rtn<bits<3>, oc128>>()});
  v.push_back({"rtn-w3-g128-ic", "RTN", "3-bit, g128 per-IC", plain<rtn<bits<3>, ic128>>()});
  v.push_back({"gptq-w3-g128", "GPTQ", "3-bit, g128 per-OC", with_hessian<gptq<bits<3>, oc128>>()});
  v.push_back({"awq-w3-g128", "AWQ", "3-bit, g128 per-OC", awq_method<bits<3>, oc128>()});
  v.push_back({"adadim-rtn-w3-g128", "AdaDim-RTN", "3-bit, g128 OC/IC per linear",
               with_activations<adadim<rtn<bits<3>, oc128>>>()});
  v.push_back({"adadim-gptq-w3-g128", "AdaDim-GPTQ", "3-bit, g128 OC/IC per linear",
               with_activations<adadim<gptq<bits<3>, oc128>>>()});
  v.push_back({"rtn-w3-pc", "RTN", "3-bit, per channel", plain<rtn<bits<3>, ocpc>>()});
  v.push_back({"gptq-w3-pc", "GPTQ", "3-bit, per channel", with_hessian<gptq<bits<3>, ocpc>>()});
  // OWQ's grid is per channel with the mse range search; +0.01 bit leaves no weak column on
  // MiniLM's 384-column linears, so it is the GPTQ-mse baseline OWQ adds columns to.
  v.push_back({"owq-w3-pc+0.01", "OWQ", "3-bit, per channel, mse, +0.01 bit",
               owq_method<owq<bits<3>, ocpc, mse_clip<>>>(owq_extra(0.01))});
  v.push_back({"owq-w3-pc+0.1", "OWQ", "3-bit, per channel, mse, +0.1 bit",
               owq_method<owq<bits<3>, ocpc, mse_clip<>>>(owq_extra(0.1))});
  v.push_back({"owq-w3-pc+0.25", "OWQ", "3-bit, per channel, mse, +0.25 bit",
               owq_method<owq<bits<3>, ocpc, mse_clip<>>>(owq_extra(0.25))});
  v.push_back({"spqr-w3", "SpQR", "3-bit, beta 16/16, 3-bit stats, outliers (r = 0.2)", with_hessian<spqr<bits<3>>>()});
  v.push_back({"spqr-w3-r1", "SpQR", "3-bit, beta 16/16, 3-bit stats, outliers (r = 1)",
               with_hessian<spqr<bits<3>>>(spqr_threshold(1.0))});
  v.push_back({"spqr-w4", "SpQR", "4-bit, beta 16/16, 3-bit stats, outliers (r = 0.2)", with_hessian<spqr<bits<4>>>()});
  v.push_back({"rtn-w2-g64", "RTN", "2-bit, g64 per-OC", plain<rtn<bits<2>, oc64>>()});
  v.push_back({"gptq-w2-g64", "GPTQ", "2-bit, g64 per-OC", with_hessian<gptq<bits<2>, oc64>>()});
  return v;
}

// ---------------------------------------------------------------- command line

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  lowbit::detail::require(in.good(), "cannot read '", p.string(), "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void usage() {
  std::cout << "usage: minilm-fidelity [options]\n"
               "  --model-dir DIR     all-MiniLM-L6-v2 (model.safetensors, vocab.txt, config.json);\n"
               "                      default <assets>/all-MiniLM-L6-v2 (scripts/fetch-assets --minilm)\n"
               "  --wikitext DIR      WikiText-2 valid.txt / test.txt (default <source>/data/wikitext-2)\n"
               "  --austen FILE       second-domain evaluation text (default <assets>/text/austen-evaluation.txt)\n"
               "  --calib N           calibration sentences of WikiText-2 valid (default 512)\n"
               "  --held-out N        further valid sentences for the layer errors (default 128)\n"
               "  --eval N            evaluation sentences per text (default 1000)\n"
               "  --max-length N      ids per sentence incl. [CLS]/[SEP] (default 256, sentence-transformers')\n"
               "  --variants a,b,...  which variants (default: all; --list names them)\n"
               "  --layers-csv FILE   per-linear errors of every variant\n"
               "  --threads N         worker threads (default: hardware)\n";
}

}  // namespace

int main(int argc, char** argv) try {
  std::filesystem::path model_dir = io::assets_dir() / "all-MiniLM-L6-v2";
  std::filesystem::path wikitext = std::filesystem::path(LOWBIT_SOURCE_DIR) / "data" / "wikitext-2";
  std::filesystem::path austen = io::assets_dir() / "text" / "austen-evaluation.txt";
  std::size_t n_calib = 512, n_held = 128, n_eval = 1000, max_length = 256;
  std::string which, layers_csv;
  const auto variants = all_variants();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      lowbit::detail::require(i + 1 < argc, a, " needs a value");
      return argv[++i];
    };
    if (a == "--model-dir") model_dir = next();
    else if (a == "--wikitext") wikitext = next();
    else if (a == "--austen") austen = next();
    else if (a == "--calib") n_calib = std::stoul(next());
    else if (a == "--held-out") n_held = std::stoul(next());
    else if (a == "--eval") n_eval = std::stoul(next());
    else if (a == "--max-length") max_length = std::stoul(next());
    else if (a == "--variants") which = next();
    else if (a == "--layers-csv") layers_csv = next();
    else if (a == "--threads") set_num_threads(static_cast<unsigned>(std::stoul(next())));
    else if (a == "--list") {
      for (const auto& v : variants) std::cout << v.name << "\t" << v.method << ", " << v.format << "\n";
      return 0;
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      lowbit::detail::fail("unknown option '", a, "' (try --help)");
    }
  }
  std::vector<const variant*> chosen;
  if (which.empty()) {
    for (const auto& v : variants) chosen.push_back(&v);
  } else {
    std::stringstream ss(which);
    for (std::string n; std::getline(ss, n, ',');) {
      auto it = std::find_if(variants.begin(), variants.end(), [&](const variant& v) { return v.name == n; });
      lowbit::detail::require(it != variants.end(), "--variants: unknown variant '", n, "' (see --list)");
      chosen.push_back(&*it);
    }
  }

  const auto tok = wordpiece_tokenizer::from_file(model_dir / "vocab.txt");
  const bert_model fp32 = bert_model::load(model_dir / "model.safetensors");
  auto to_batch = [&](const std::vector<std::string>& sentences) {
    batch b;
    for (const auto& s : sentences) b.add(tok.encode(s, max_length));
    return b;
  };
  // Calibration: n_calib + n_held sentences spread over WikiText-2 valid (the held-out ones
  // interleaved with the calibration ones, then moved last).
  const auto valid = spread(wikitext_sentences(read_file(wikitext / "valid.txt")), n_calib + n_held);
  std::vector<std::string> calib_text, held_text;
  const std::size_t every = std::max<std::size_t>(2, valid.size() / std::max<std::size_t>(n_held, 1));
  for (std::size_t i = 0; i < valid.size(); ++i)
    (held_text.size() < n_held && i % every == every - 1 ? held_text : calib_text).push_back(valid[i]);
  calib_text.insert(calib_text.end(), held_text.begin(), held_text.end());
  const batch calib = to_batch(calib_text);
  const batch eval_wiki = to_batch(spread(wikitext_sentences(read_file(wikitext / "test.txt")), n_eval));
  const batch eval_austen = to_batch(spread(prose_sentences(read_file(austen)), n_eval));
  std::printf("# calibration: %zu sentences (%lld tokens) + %zu held out (%lld tokens) of WikiText-2 valid\n",
              calib_text.size() - held_text.size(),
              static_cast<long long>(first_sentences(calib, calib.sentences() - static_cast<Eigen::Index>(held_text.size())).tokens()),
              held_text.size(),
              static_cast<long long>(calib.tokens() -
                                     first_sentences(calib, calib.sentences() - static_cast<Eigen::Index>(held_text.size())).tokens()));
  std::printf("# evaluation: %lld WikiText-2 test sentences (%lld tokens), %lld Pride and Prejudice sentences (%lld tokens)\n",
              static_cast<long long>(eval_wiki.sentences()), static_cast<long long>(eval_wiki.tokens()),
              static_cast<long long>(eval_austen.sentences()), static_cast<long long>(eval_austen.tokens()));
  const auto t_ref = std::chrono::steady_clock::now();
  const act ref_wiki = fp32.embed_sentences(eval_wiki), ref_austen = fp32.embed_sentences(eval_austen);
  std::printf("# fp32 embeddings: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_ref).count());

  std::ofstream layers;
  if (!layers_csv.empty()) {
    layers.open(layers_csv);
    layers << "variant,linear,rows,cols,rel_error,bits,notes\n";
  }
  std::printf("\n| variant | method | format | avg bits | cos WikiText-2 (mean / min) | cos Austen (mean / min) | "
              "layer err mean | layer err max | quant s |\n|---|---|---|---|---|---|---|---|---|\n");
  std::printf("| fp32 | float | 32-bit | 32.000 | 1 / 1 | 1 / 1 | 0 | 0 | 0 |\n");
  std::fflush(stdout);
  for (const variant* v : chosen) {
    bert_model m = fp32;
    const auto t0 = std::chrono::steady_clock::now();
    const auto reports = quantize_sequential(m, calib, static_cast<Eigen::Index>(held_text.size()), v->fn);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double bits = 0, weights = 0, err_sum = 0, err_max = 0;
    for (const auto& r : reports) {
      const double n = static_cast<double>(r.rows) * static_cast<double>(r.cols);
      bits += r.bits * n;
      weights += n;
      err_sum += r.rel_error;
      err_max = std::max(err_max, r.rel_error);
      if (layers.is_open()) {
        std::string notes = r.notes;
        std::replace(notes.begin(), notes.end(), ',', ';');
        layers << v->name << "," << r.name << "," << r.rows << "," << r.cols << "," << r.rel_error << "," << r.bits
               << ",\"" << notes << "\"\n";
      }
    }
    const auto cw = column_cosines(ref_wiki, m.embed_sentences(eval_wiki));
    const auto ca = column_cosines(ref_austen, m.embed_sentences(eval_austen));
    auto mean = [](const std::vector<double>& c) { return std::accumulate(c.begin(), c.end(), 0.0) / double(c.size()); };
    auto min = [](const std::vector<double>& c) { return *std::min_element(c.begin(), c.end()); };
    std::printf("| %s | %s | %s | %.3f | %.5f / %.4f | %.5f / %.4f | %.5f | %.5f | %.1f |\n", v->name.c_str(),
                v->method.c_str(), v->format.c_str(), bits / weights, mean(cw), min(cw), mean(ca), min(ca),
                err_sum / static_cast<double>(reports.size()), err_max, secs);
    std::fflush(stdout);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "minilm-fidelity: %s\n", e.what());
  return 1;
}
