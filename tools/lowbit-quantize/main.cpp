// lowbit-quantize: quantize a Llama-architecture GGUF model with one of lowbit's methods,
// layer by layer on calibration text, and report what it costs: per-layer output error,
// exact average bits, size, quantization time, float and quantized perplexity.
// With no arguments it runs the default model and method. docs/cli.md has the details.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/assets.hpp"
#include "lowbit/io/atomic_file.hpp"
#include "lowbit/io/byte_reader.hpp"
#include "lowbit/io/checksum.hpp"
#include "lowbit-quantize/cli_args.hpp"
#include "lowbit-quantize/gguf_export.hpp"
#include "lowbit-quantize/hf_export.hpp"
#include "lowbit-quantize/methods.hpp"
#include "lowbit-quantize/model_file.hpp"
#include "lowbit-quantize/output_guard.hpp"
#include "lowbit-quantize/text.hpp"
#include "model/hf_checkpoint.hpp"
#include "model/perplexity.hpp"
#include "model/sequential.hpp"

namespace lt = lowbit::tools;
namespace cli = lowbit::tools::cli;
using idx = lowbit::index;

namespace {

struct cli_args {
  std::string model;
  std::string method = "rtn";
  lt::method_options opt;
  std::string calib, eval;
  idx ctx = 512;
  idx eval_tokens = 32768;
  idx calib_windows = 32;
  idx held_out = 4;
  bool group_given = false;  // spqr's default group is its own β₁ = 16
  std::string out, load;
  // --export gguf --type T: a GGUF in llama.cpp's type T instead of a .lowbit file.
  std::string export_format = "lowbit", export_type;
  std::string gguf_fit;  // --gguf-fit: rule | weighted | search (a GGUF block's scale)
  bool bits_given = false, axis_given = false;
  bool sweep = false;
  bool sweep_act_order = false;
  bool resume = true;            // --sweep keeps the CSV's rows made with the same protocol
  bool assume_protocol = false;  // ... even without a .protocol file, if the float ppl matches
  std::vector<double> sweep_owq_extra{0.01}, sweep_spqr_r{0.2};
  bool skip_float = false;
  bool quiet = false;
  unsigned threads = 0;
  std::string results = "docs/results.md", csv = "docs/results.csv";
  std::vector<int> sweep_bits{4, 3, 2}, sweep_groups{128, 0};
  std::vector<int> sweep_spqr_groups;  // SpQR's beta1 values; empty: the registry's (16)
  std::vector<std::string> sweep_methods;  // empty: every available method
  std::string command_line;
};

const char* usage =
    "usage: lowbit-quantize [options]\n"
    "  --model FILE|DIR     GGUF model (llama architecture) or a Hugging Face folder (config.json,\n"
    "                       model.safetensors or shards, tokenizer.json; Llama/Mistral/Qwen2/Qwen3)\n"
    "                       (default: assets/SmolLM2-135M-Instruct.Q4_1.gguf)\n"
    "  --method NAME        rtn | gptq | awq | awq-gptq | owq | spqr | adadim-rtn | adadim-gptq (default rtn;\n"
    "                       awq-gptq: AWQ's scales and clip, then GPTQ on the scaled weights)\n"
    "  --export FORMAT      lowbit (default: --out writes a .lowbit file) | gguf (--out writes a GGUF\n"
    "                       llama.cpp runs, block linears in --type; --method rtn or gptq) | gptq | awq\n"
    "                       (--out DIR: a Hugging Face folder transformers / vLLM load, block linears as\n"
    "                       GPTQ (bits 2/3/4/8) or AutoAWQ GEMM (bits 4) int32 tensors; --method rtn,\n"
    "                       gptq, awq or awq-gptq, --axis oc; AWQ's scales folded into the norms)\n"
    "  --type T             with --export gguf: Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 (the type fixes bits and groups)\n"
    "  --gguf-fit F         with --export gguf: how each block's scale is chosen: rule (the type's own, default),\n"
    "                       weighted (a search weighted by the calibration inputs' diag H on the original\n"
    "                       weights: with rtn, llama-imatrix's idea; with gptq, fixed before GPTQ runs) or\n"
    "                       search (gptq only: weighted by 1/U_jj^2 on the compensated weights)\n"
    "  --bits B             2, 3, 4 or 8 (default 4)\n"
    "  --group G            group size 32, 64, 128, 256, or 0 = per channel (default 128;\n"
    "                       spqr: 16 = SpQR's beta1 (default), 32, 64 or 128)\n"
    "  --axis A             oc (groups along input columns) or ic (along output rows) (default oc;\n"
    "                       awq, awq-gptq and spqr: oc only; adadim-*: chosen per linear)\n"
    "  --target-bits X      owq: the reference's nominal target (default bits + 0.01, i.e. 3.01 / 4.01);\n"
    "                       it sets the fp16 weak columns per linear as OWQ's main.py does; the report\n"
    "                       gives the exact average bits. Not accepted by other methods.\n"
    "  --outlier-threshold R  spqr: relative outlier threshold r (default 0.2; larger = fewer outliers, inf = none)\n"
    "  --adadim-choice C    adadim-*: block (default; q/k/v judged on the attention output, gate/up on the\n"
    "                       MLP output, as the reference) or linear (each linear's own output)\n"
    "  --calib FILE         calibration text (default: WikiText-2 valid); FILE.ids = int32 token ids\n"
    "  --eval FILE          evaluation text (default: WikiText-2 test)\n"
    "  --eval-tokens N      evaluation tokens, whole windows (default 32768; 0 = the whole text)\n"
    "  --ctx N              context length of calibration and evaluation windows (default 512)\n"
    "  --calib-windows N    calibration windows (default 32)\n"
    "  --held-out N         extra calibration windows used only to measure layer errors (default 4)\n"
    "  --path P             dequantized (Eigen GEMM, default) or kernel (lowbit::gemm on packed codes)\n"
    "  --threads N          worker threads, 1 to 1024 (default, or 0: all cores)\n"
    "  --skip-float         do not evaluate the float model\n"
    "  --out FILE           write the quantized model as a lowbit file (packed linears + norms; the\n"
    "                       embedding and head stay in the source GGUF), then load it back and check\n"
    "                       it is bit-exact\n"
    "  --load FILE          evaluate a lowbit file written by --out (with --model, its source GGUF)\n"
    "                       instead of quantizing\n"
    "  --sweep              run the comparison table (evaluation.md) and write --results / --csv after\n"
    "                       every row; rows already in --csv with the same protocol are kept, not rerun\n"
    "  --no-resume          --sweep: rerun every row (discard the CSV's rows)\n"
    "  --assume-protocol    --sweep: keep the CSV's rows even without its .protocol file when their\n"
    "                       float perplexity matches (a CSV written before protocols were recorded)\n"
    "  --results FILE       Markdown output of --sweep (default docs/results.md)\n"
    "  --csv FILE           CSV output of --sweep (default docs/results.csv; protocol in FILE.protocol)\n"
    "  --sweep-methods L    comma-separated methods for --sweep (default: every available one)\n"
    "  --sweep-bits L       comma-separated bit widths for --sweep (default 4,3,2; owq: 3 and 4 only)\n"
    "  --sweep-groups L     comma-separated group sizes for --sweep, 0 = per channel (default 128,0;\n"
    "                       owq runs per channel, spqr with beta1 = 16)\n"
    "  --sweep-owq-extra L  owq rows at bits + each of these (default 0.01: 3.01 and 4.01)\n"
    "  --sweep-spqr-r L     spqr rows at each of these outlier thresholds (default 0.2)\n"
    "  --sweep-spqr-groups L  spqr rows at each of these beta1 group sizes (default 16; 32, 64, 128)\n"
    "  --awq-windows N      calibration windows the block-output searches (AWQ's scale search, AdaDim's\n"
    "                       block choice) run on (default 8)\n"
    "  --awq-stats S        awq, awq-gptq: all (default: s_x = mean |x| and the clip sample over every calibration\n"
    "                       window, as llm-awq) or search (only the --awq-windows windows)\n"
    "  --awq-inputs I       awq, awq-gptq: float (default: every block calibrated on the float model's activations,\n"
    "                       as llm-awq) or quantized (on the quantized upstream, as GPTQ)\n"
    "  --act-order          gptq, awq-gptq: columns in descending H_jj order (GPTQ's desc_act; per-OC groups then\n"
    "                       static, from the original weights)\n"
    "  --sweep-act-order    --sweep: add a gptq@act (awq-gptq@act) row beside each gptq (awq-gptq) row\n"
    "  --quiet              no progress bars\n"
    "exit status: 0 done, 1 runtime error (an input, a write, a held --csv lock), 2 usage error (an option,\n"
    "  a value, an output that is an input or not a regular file, an unwritable output directory: all\n"
    "  checked before any work), 128+N killed by signal N (temporary files removed first)\n";

[[noreturn]] void bad_arg(const std::string& msg) { throw cli::usage_error(msg); }

// The ranges of the count options: wide enough for any real run, small enough that every
// product the tool forms from them ((windows + held-out) x ctx tokens, ...) fits in 64 bits.
constexpr long long max_ctx = 1 << 16;
constexpr long long max_windows = 1 << 20;
constexpr long long max_eval_tokens = 1LL << 40;
constexpr long long max_threads = 1024;
constexpr long long max_group = 1 << 16;

std::string default_text(const char* split) {
  // WikiText-2 is committed in the repository (data/wikitext-2, CC BY-SA 3.0); LOWBIT_DATA
  // overrides the data folder.
  const char* env = std::getenv("LOWBIT_DATA");
  std::filesystem::path base = env != nullptr && *env != '\0' ? std::filesystem::path(env)
#if defined(LOWBIT_SOURCE_DIR)
                                                               : std::filesystem::path(LOWBIT_SOURCE_DIR) / "data";
#else
                                                               : std::filesystem::path("data");
#endif
  return (base / "wikitext-2" / (std::string(split) + ".txt")).lexically_normal().string();
}

// The group sizes `method` takes in this build (formats.hpp; the sanitizer build has fewer),
// asked of the registry itself, so an error never lists a size the build lacks.
std::vector<int> build_groups(const std::string& method) {
  std::vector<int> out;
  const auto& entry = lt::method_registry().at(method);
  for (int g : {0, 16, 32, 64, 128, 256}) {
    lt::method_options o;
    o.group = g;
    o.group_axis = entry.sweep_axes.front();
    try {
      (void)lt::make_method(method, o);
      out.push_back(g);
    } catch (const lowbit::error&) {
    }
  }
  return out;
}

// Every option error of `method` with these options, as a usage error before any work:
// unknown method, a group size this build lacks (`flag` names the option that set it),
// and the combinations make_method refuses (spqr with --axis ic, an OWQ target below --bits).
void check_format(const std::string& method, const lt::method_options& o, const std::string& flag) {
  if (lt::method_registry().contains(method)) {
    const auto groups = build_groups(method);
    if (std::find(groups.begin(), groups.end(), o.group) == groups.end()) {
      std::string what = "one of ";
      for (std::size_t i = 0; i < groups.size(); ++i) what += (i ? ", " : "") + std::to_string(groups[i]);
      if (!groups.empty() && groups.front() == 0) what += " (0 = per channel)";
      what += " for --method " + method;
#if defined(LOWBIT_TOOLS_FEW_FORMATS)
      what += " in this build (LOWBIT_TOOLS_ALL_FORMATS=OFF compiles fewer group sizes)";
#endif
      cli::bad_value(flag, what, std::to_string(o.group));
    }
  }
  try {
    (void)lt::make_method(method, o);
  } catch (const lowbit::error& e) {
    bad_arg(lt::plain_message(e));
  }
}

cli_args parse(int argc, char** argv) {
  cli_args a;
  a.command_line = "lowbit-quantize";
  for (int i = 1; i < argc; ++i) {
    a.command_line += ' ';
    a.command_line += argv[i];
  }
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) bad_arg(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  auto path = [&](int& i) {
    const std::string flag = argv[i];
    return cli::parse_path(flag, value(i));
  };
  auto count = [&](int& i, long long lo, long long hi) {
    const std::string flag = argv[i];
    return static_cast<idx>(cli::parse_int(flag, value(i), lo, hi));
  };
  const auto& bits = lt::supported_bits();
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--help" || f == "-h") {
      std::cout << usage;
      std::exit(0);
    } else if (f == "--model") a.model = path(i);
    else if (f == "--method") a.method = value(i);
    else if (f == "--bits") {
      a.opt.bits = cli::parse_choice(f, value(i), bits);
      a.bits_given = true;
    } else if (f == "--export") {
      a.export_format = value(i);
      if (a.export_format != "lowbit" && a.export_format != "gguf" && a.export_format != "gptq" && a.export_format != "awq")
        bad_arg("--export expects lowbit, gguf, gptq or awq, got '" + a.export_format + "'");
    } else if (f == "--type") a.export_type = value(i);
    else if (f == "--gguf-fit") {
      a.gguf_fit = value(i);
      if (a.gguf_fit != "rule" && a.gguf_fit != "weighted" && a.gguf_fit != "search")
        bad_arg("--gguf-fit expects rule, weighted or search, got '" + a.gguf_fit + "'");
    }
    else if (f == "--group") {
      a.opt.group = static_cast<int>(cli::parse_int(f, value(i), 0, max_group));
      a.group_given = true;
    }
    else if (f == "--axis") {
      a.axis_given = true;
      const std::string v = value(i);
      if (v == "oc") a.opt.group_axis = lowbit::axis::oc;
      else if (v == "ic") a.opt.group_axis = lowbit::axis::ic;
      else bad_arg("--axis expects oc or ic, got '" + v + "'");
    } else if (f == "--target-bits") a.opt.target_bits = cli::parse_double(f, value(i), 0.0, 16.0);
    else if (f == "--outlier-threshold")
      a.opt.outlier_threshold = cli::parse_double(f, value(i), 0.0, std::numeric_limits<double>::infinity());
    else if (f == "--adadim-choice") {
      const std::string v = value(i);
      if (v == "block") a.opt.adadim_block = true;
      else if (v == "linear") a.opt.adadim_block = false;
      else bad_arg("--adadim-choice expects block or linear, got '" + v + "'");
    } else if (f == "--calib") a.calib = path(i);
    else if (f == "--eval") a.eval = path(i);
    else if (f == "--eval-tokens") a.eval_tokens = count(i, 0, max_eval_tokens);
    else if (f == "--ctx") a.ctx = count(i, 2, max_ctx);
    else if (f == "--calib-windows") a.calib_windows = count(i, 1, max_windows);
    else if (f == "--held-out") a.held_out = count(i, 0, max_windows);
    else if (f == "--path") {
      const std::string v = value(i);
      if (v == "dequantized") a.opt.path = lt::quantized_path::dequantized;
      else if (v == "kernel") a.opt.path = lt::quantized_path::kernel;
      else bad_arg("--path expects dequantized or kernel, got '" + v + "'");
    } else if (f == "--threads") a.threads = static_cast<unsigned>(count(i, 0, max_threads));
    else if (f == "--skip-float") a.skip_float = true;
    else if (f == "--sweep") a.sweep = true;
    else if (f == "--results") a.results = path(i);
    else if (f == "--csv") a.csv = path(i);
    else if (f == "--sweep-methods") a.sweep_methods = cli::parse_list(f, value(i), [](const std::string& x) { return x; });
    else if (f == "--sweep-bits") a.sweep_bits = cli::parse_list(f, value(i), [&](const std::string& x) { return cli::parse_choice(f, x, bits); });
    else if (f == "--sweep-groups")
      a.sweep_groups = cli::parse_list(f, value(i), [&](const std::string& x) { return static_cast<int>(cli::parse_int(f, x, 0, max_group)); });
    else if (f == "--awq-windows") a.opt.awq_windows = count(i, 1, max_windows);
    else if (f == "--awq-stats") {
      const std::string v = value(i);
      if (v != "all" && v != "search") bad_arg("--awq-stats " + v + ": expected all or search");
      a.opt.awq_stats_all = v == "all";
    } else if (f == "--awq-inputs") {
      const std::string v = value(i);
      if (v != "float" && v != "quantized") bad_arg("--awq-inputs " + v + ": expected float or quantized");
      a.opt.awq_float_inputs = v == "float";
    }
    else if (f == "--out") a.out = path(i);
    else if (f == "--load") a.load = path(i);
    else if (f == "--no-resume") a.resume = false;
    else if (f == "--assume-protocol") a.assume_protocol = true;
    else if (f == "--sweep-owq-extra")
      a.sweep_owq_extra = cli::parse_list(f, value(i), [&](const std::string& x) { return cli::parse_double(f, x, 0.0, 8.0); });
    else if (f == "--sweep-spqr-r")
      a.sweep_spqr_r = cli::parse_list(f, value(i), [&](const std::string& x) {
        return cli::parse_double(f, x, 0.0, std::numeric_limits<double>::infinity());
      });
    else if (f == "--sweep-spqr-groups")
      a.sweep_spqr_groups = cli::parse_list(f, value(i), [&](const std::string& x) { return static_cast<int>(cli::parse_int(f, x, 1, max_group)); });
    else if (f == "--quiet") a.quiet = true;
    else if (f == "--act-order") a.opt.act_order = true;
    else if (f == "--sweep-act-order") a.sweep_act_order = true;
    else bad_arg("unknown option '" + f + "'");
  }
  if (a.method.rfind("adadim", 0) == 0) a.opt.group_axis = lowbit::axis::adaptive;  // AdaDim chooses per linear
  if (a.method == "spqr" && !a.group_given) a.opt.group = 16;                        // SpQR's beta1
  if (a.opt.target_bits != 0.0 && a.sweep) bad_arg("--sweep sets owq's targets with --sweep-owq-extra, not --target-bits");
  if (a.opt.act_order && (a.sweep || (a.method != "gptq" && a.method != "awq-gptq")))
    bad_arg(a.sweep ? "--sweep adds act-order rows with --sweep-act-order, not --act-order"
                    : "--act-order is GPTQ's column order (got --method " + a.method + ")");
  if (a.sweep_act_order && !a.sweep) bad_arg("--sweep-act-order needs --sweep");
  if (a.opt.target_bits != 0.0 && a.method != "owq")
    bad_arg("--target-bits is an OWQ budget (got --method " + a.method +
            "); spqr's size follows from --bits, --group and --outlier-threshold");
  if (a.model.empty()) a.model = lowbit::io::default_model_path().string();
  if (a.calib.empty()) a.calib = default_text("valid");
  if (a.eval.empty()) a.eval = default_text("test");
  if (a.sweep && (!a.out.empty() || !a.load.empty())) bad_arg("--sweep writes tables, not model files: drop --out / --load");
  if (!a.out.empty() && !a.load.empty()) bad_arg("--load evaluates a file written earlier; it does not take --out");
  if (a.export_format == "gguf") {
    if (a.export_type.empty()) bad_arg("--export gguf needs --type (Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0)");
    try {
      (void)lt::parse_gguf_export_type(a.export_type);
    } catch (const std::exception& e) {
      bad_arg(lt::plain_message(e));
    }
    if (a.out.empty()) bad_arg("--export gguf writes --out FILE.gguf: give --out");
    if (a.sweep || !a.load.empty()) bad_arg("--export gguf quantizes and writes one model: drop --sweep / --load");
    if (a.method != "rtn" && a.method != "gptq")
      bad_arg("--export gguf takes --method rtn or gptq (got '" + a.method + "')");
    if (a.bits_given || a.group_given || a.axis_given)
      bad_arg("--export gguf: the type " + a.export_type + " fixes the bits and groups; drop --bits / --group / --axis");
    if (a.opt.act_order) bad_arg("--export gguf runs GPTQ in natural column order; drop --act-order");
    if (a.gguf_fit == "search" && a.method != "gptq") bad_arg("--gguf-fit search runs inside GPTQ: it needs --method gptq");
    return a;
  }
  if (!a.export_type.empty()) bad_arg("--type goes with --export gguf");
  if (!a.gguf_fit.empty()) bad_arg("--gguf-fit goes with --export gguf --method gptq");
  if (a.export_format == "gptq" || a.export_format == "awq") {
    const std::string e = "--export " + a.export_format;
    if (a.out.empty()) bad_arg(e + " writes a Hugging Face folder: give --out DIR");
    if (a.sweep || !a.load.empty()) bad_arg(e + " quantizes and writes one model: drop --sweep / --load");
    if (a.method != "rtn" && a.method != "gptq" && a.method != "awq" && a.method != "awq-gptq")
      bad_arg(e + " takes --method rtn, gptq, awq or awq-gptq (got '" + a.method +
              "'): the other methods keep outliers, weak columns or per-IC groups, which the checkpoint cannot hold");
    if (a.opt.group_axis != lowbit::axis::oc) bad_arg(e + " groups along the input dimension: use --axis oc");
    if (a.export_format == "awq" && a.opt.bits != 4)
      bad_arg("--export awq: AutoAWQ's GEMM layout holds 4-bit codes (got --bits " + std::to_string(a.opt.bits) +
              "); use --export gptq for other widths");
    if (std::filesystem::exists(std::filesystem::symlink_status(a.out)))
      bad_arg("--out '" + a.out + "' exists; " + e + " writes a new folder (remove it or choose another name)");
  }
  if (!a.sweep && a.load.empty()) check_format(a.method, a.opt, "--group");  // the sweep's: sweep_variants
  return a;
}

// `n` windows of T tokens spread evenly over the text (deterministic, no RNG), concatenated.
std::vector<std::int32_t> pick_windows(const std::vector<std::int32_t>& ids, idx n, idx T, const std::string& what) {
  const idx N = static_cast<idx>(ids.size());
  if (N < n * T)
    lowbit::detail::fail(what, " has ", N, " tokens, fewer than the ", n, " windows of ", T,
                         " requested (lower --calib-windows / --held-out / --ctx)");
  const idx stride = n > 1 ? (N - T) / (n - 1) : 0;
  std::vector<std::int32_t> out;
  out.reserve(static_cast<std::size_t>(n * T));
  for (idx k = 0; k < n; ++k) out.insert(out.end(), ids.begin() + k * stride, ids.begin() + k * stride + T);
  return out;
}

struct variant {
  std::string method;
  lt::method_options opt;
};
std::string group_label(int g) { return g == 0 ? "per-channel" : "g" + std::to_string(g); }
// The variant's name in the tables (the CSV "method" column): the method plus its budget where
// it has one (owq@3.01; spqr@r0.1 when r is not SpQR's 0.2; adadim-*@linear for the per-linear
// choice; gptq@act; awq@search-stats / @quantized-inputs for AWQ's non-default inputs). With bits, group and axis it identifies a row when a sweep resumes.
std::string method_label(const variant& v) {
  std::ostringstream s;
  s << v.method;
  if (v.method == "owq") s << "@" << lt::owq_target(v.opt);
  if (v.method == "spqr" && v.opt.outlier_threshold != 0.2) s << "@r" << v.opt.outlier_threshold;
  if (v.method.rfind("adadim", 0) == 0 && !v.opt.adadim_block) s << "@linear";
  if (v.method == "gptq" && v.opt.act_order) s << "@act";
  // AWQ before 2026-12-03: s_x from the search windows only, on the quantized upstream.
  if (v.method == "awq-gptq" && v.opt.act_order) s << "@act";
  if ((v.method == "awq" || v.method == "awq-gptq") && (!v.opt.awq_stats_all || !v.opt.awq_float_inputs)) {
    s << "@";
    if (!v.opt.awq_stats_all) s << "search-stats" << (v.opt.awq_float_inputs ? "" : "+");
    if (!v.opt.awq_float_inputs) s << "quantized-inputs";
  }
  return s.str();
}
std::string row_label(const std::string& method, int bits, int group, lowbit::axis ax) {
  std::ostringstream s;
  s << method << " " << bits << "-bit " << group_label(group) << " " << lowbit::axis_name(ax);
  return s.str();
}

struct run_result {
  std::string method;  // method_label
  int bits = 0, group = 0;
  lowbit::axis group_axis = lowbit::axis::oc;
  std::vector<lt::layer_report> layers;
  double avg_bits = 0, linear_mb = 0, model_mb = 0, quant_seconds = 0;
  bool calibration_free = false;  // the method read no calibration data (RTN)
  lt::perplexity_result ppl;
  std::string label() const { return row_label(method, bits, group, group_axis); }
};

// CRC-32C and size of a file's contents, "crc32c:<hex> bytes:<n>": what a sweep resumes on.
std::string content_hash(const std::string& path) {
  const auto fb = lowbit::io::file_bytes::open(path);
  return "crc32c:" + lowbit::io::crc32c_hex(lowbit::io::crc32c(fb->bytes())) + " bytes:" + std::to_string(fb->bytes().size());
}

// What --model names: a GGUF file, or a Hugging Face folder (config.json, model.safetensors
// or its shards, tokenizer.json; tools/model/hf_checkpoint.hpp). Opened once; the float
// model is materialised from it whenever a run needs a fresh copy.
class model_source {
 public:
  static model_source open(const std::string& path) {
    model_source m;
    if (lt::is_hf_folder(path)) {
      m.hf_.emplace(lt::hf_checkpoint::open(path));
      m.tokenizer_.emplace(m.hf_->load_tokenizer());
    } else {
      m.gguf_.emplace(lowbit::io::gguf_file::open(path));
    }
    return m;
  }
  lt::llama_model load() const { return gguf_ ? lt::llama_model::from_gguf(*gguf_) : hf_->load_model(); }
  std::vector<std::int32_t> tokens(const std::string& path, const char* what) const {
    return gguf_ ? lt::load_tokens(*gguf_, path, what) : lt::load_tokens(*tokenizer_, path, what);
  }
  bool tied() const { return gguf_ ? gguf_->find("output.weight") == nullptr : hf_->tied(); }
  const lowbit::io::gguf_file* gguf() const { return gguf_ ? &*gguf_ : nullptr; }
  long long n_layer() const {
    return gguf_ ? static_cast<long long>(gguf_->get_uint("llama.block_count")) : static_cast<long long>(hf_->config().n_layer);
  }
  // The contents a sweep resumes on: the GGUF file, or the folder's config, tokenizer and shards.
  std::string content_hash(const std::string& path) const {
    if (gguf_) return ::content_hash(path);
    std::string h;
    for (const std::string& f : std::vector<std::string>{"config.json", "tokenizer.json"})
      h += f + " " + ::content_hash((hf_->dir() / f).string()) + "; ";
    for (const std::string& f : hf_->shard_files()) h += f + " " + ::content_hash((hf_->dir() / f).string()) + "; ";
    return h;
  }

 private:
  std::optional<lowbit::io::gguf_file> gguf_;
  std::optional<lt::hf_checkpoint> hf_;
  std::optional<lowbit::io::bpe_tokenizer> tokenizer_;
};

struct session {
  cli_args args;
  model_source source;
  std::vector<std::int32_t> calib, eval;
  lt::perplexity_result float_ppl;
  double float_linear_mb = 0;  // the block linears in fp32
  std::string model_hash{}, calib_hash{}, eval_hash{};  // --sweep: the inputs' contents (protocol_text)
};

lt::llama_model load_model(const session& s) { return s.source.load(); }

// Exact storage of the block linears, and of the whole model as stored.
void measure(const session& s, const lt::llama_model& m, run_result& r) {
  double bits = 0, n = 0, bytes = 0;
  for (const auto& b : m.blocks)
    for (lt::slot sl : lt::all_slots) {
      const double w = static_cast<double>(b[sl].rows() * b[sl].cols());
      bits += b[sl].bits_per_weight() * w;
      n += w;
      bytes += static_cast<double>(b[sl].stored_bytes());
    }
  r.avg_bits = bits / n;
  r.linear_mb = bytes / 1e6;
  // Whole model as stored: quantized linears + fp16 embedding (tied head) + fp32 norms.
  const double norms = static_cast<double>(m.cfg.n_embd) * static_cast<double>(2 * m.cfg.n_layer + 1) * 4.0;
  const double embd = static_cast<double>(m.tok_embd.size()) * 2.0;
  const bool tied = s.source.tied();
  r.model_mb = (bytes + embd * (tied ? 1 : 2) + norms) / 1e6;
}

// A NaN or Inf perplexity is an error, never a result: the load-time checks should have
// named the tensor at fault; this catches whatever they miss (exit 1, no table row).
void require_finite_ppl(const lt::perplexity_result& p, const char* model) {
  lowbit::detail::require(std::isfinite(p.ppl), model, " model's perplexity is ", p.ppl,
                          ": its logits are not finite (please report this with the model file)");
}

// --out: the lowbit file, written atomically, then loaded back into a fresh model and
// serialized again: the two byte streams must be identical (every code, stat, outlier,
// permutation, scale and norm round-trips exactly).
void write_and_verify(const session& s, const lt::llama_model& m, const variant& v) {
  const std::map<std::string, std::string> meta{
      {"method", v.method},
      {"label", method_label(v)},
      {"bits", std::to_string(v.opt.bits)},
      {"group", std::to_string(v.opt.group)},
      {"axis", lowbit::axis_name(v.opt.group_axis)},
      {"command", s.args.command_line},
      {"source.model", std::filesystem::path(s.args.model).filename().string()},
      {"calibration", std::filesystem::path(s.args.calib).filename().string() + ", " +
                          std::to_string(s.args.calib_windows) + " windows x " + std::to_string(s.args.ctx) + " tokens"}};
  // Verified before it is written: a file that would not load back (or not bit-exactly) is
  // never left behind, and what lands on disk is compared with what was verified.
  const std::vector<std::byte> bytes = lt::model_writer(m, meta).bytes();
  auto back = load_model(s);
  lt::load_model_file(back, lowbit::io::lowbit_file::from_memory(bytes, "--out '" + s.args.out + "'"), v.opt.path);
  lowbit::detail::require(lt::model_writer(back, meta).bytes() == bytes, "--out '", s.args.out,
                          "': the file does not load back bit-exactly (please report this)");
  lt::write_output("--out", s.args.out, bytes);
  const auto disk = lowbit::io::file_bytes::open(s.args.out);
  lowbit::detail::require(std::ranges::equal(disk->bytes(), std::span<const std::byte>(bytes)), "--out '", s.args.out,
                          "': the file read back differs from the bytes written (a disk or file-system error?)");
  std::printf("wrote %s: %.2f MB (packed linears, norms, metadata; embedding and head stay in %s); "
              "loaded back bit-exactly\n",
              s.args.out.c_str(), static_cast<double>(bytes.size()) / 1e6,
              std::filesystem::path(s.args.model).filename().string().c_str());
  std::fflush(stdout);
}

// What --export gptq|awq copies its config and tokenizer from: the GGUF, or the --model folder.
lt::hf_export_source hf_source(const session& s) {
  lt::hf_export_source src;
  src.gguf = s.source.gguf();
  if (src.gguf == nullptr) src.hf_dir = s.args.model;
  return src;
}

run_result quantize_and_eval(session& s, const variant& v) {
  run_result r;
  r.method = method_label(v);
  r.bits = v.opt.bits;
  r.group = v.opt.group;
  r.group_axis = v.opt.group_axis;
  const bool to_gguf = s.args.export_format == "gguf";
  lt::gguf_export_options go;
  if (to_gguf) {
    go.type = lt::parse_gguf_export_type(s.args.export_type);
    go.method = v.method;
    go.fit = s.args.gguf_fit == "search"   ? lt::gguf_fit::search
             : s.args.gguf_fit == "weighted" ? lt::gguf_fit::weighted
                                           : lt::gguf_fit::rule;
    r.method = v.method + (s.args.gguf_fit.empty() ? "" : "@fit-" + s.args.gguf_fit) + " as GGUF " + s.args.export_type;
  }
  // Fails fast on an unavailable method or format.
  auto method = to_gguf ? lt::gguf_export_method(go) : lt::make_method(v.method, v.opt);
  const bool to_hf = s.args.export_format == "gptq" || s.args.export_format == "awq";
  lt::hf_export_options ho;
  ho.format = s.args.export_format == "awq" ? lt::int32_format::awq : lt::int32_format::gptq;
  auto m = load_model(s);
  if (to_hf) {
    ho.bits = v.opt.bits;
    ho.group = v.opt.group;
    lt::check_hf_export(m, ho);  // the shapes fill the format's int32 words, before any work
    lt::check_hf_export_source(hf_source(s), m);  // the tokenizer and config it will write
  }
  if (to_gguf) {
    lowbit::detail::require(s.source.gguf() != nullptr, "--export gguf needs a GGUF --model (its metadata and tokenizer are "
                                                        "copied); a Hugging Face folder is not supported yet");
    lt::check_gguf_export(m, go);  // every linear holds whole blocks of the type, before any work
  }
  lt::sequential_options so;
  so.window = s.args.ctx;
  so.held_out_windows = s.args.held_out;
  so.progress = !s.args.quiet;
  so.float_inputs = lt::uses_float_inputs(v.method, v.opt);
  const auto t0 = std::chrono::steady_clock::now();
  // RTN with a --gguf-fit weighs each block's scale search by the calibration inputs.
  if (lt::uses_calibration(v.method) || (to_gguf && go.fit != lt::gguf_fit::rule)) {
    r.layers = lt::quantize_sequential(m, s.calib, method, so);
    r.quant_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } else {
    // A method that reads no calibration data (RTN) runs no calibration forward passes: the
    // model goes through only the windows the layer-error report is measured on (the
    // held-out ones), and the quantization time is the method's own.
    const std::size_t T = static_cast<std::size_t>(s.args.ctx);
    const std::size_t windows = s.calib.size() / T;
    const std::size_t report = s.args.held_out > 0 ? static_cast<std::size_t>(s.args.held_out) : std::min<std::size_t>(windows, 4);
    const std::vector<std::int32_t> tail(s.calib.end() - static_cast<std::ptrdiff_t>(report * T), s.calib.end());
    so.held_out_windows = 0;  // the method sees no data; the errors are measured on `tail`
    r.layers = lt::quantize_sequential(m, tail, method, so);
    r.quant_seconds = 0.0;
    for (const auto& l : r.layers) r.quant_seconds += l.seconds;
    r.calibration_free = true;
  }
  measure(s, m, r);
  if (to_gguf) {
    const std::size_t size = lt::write_gguf_export(*s.source.gguf(), m, go, s.args.out,
                                                   {{"command", s.args.command_line},
                                                    {"calibration", std::filesystem::path(s.args.calib).filename().string()}});
    std::printf("wrote %s: %.2f MB GGUF, block linears in %s (%s), parsed back and checked\n", s.args.out.c_str(),
                static_cast<double>(size) / 1e6, s.args.export_type.c_str(), v.method.c_str());
    std::fflush(stdout);
  } else if (to_hf) {
    const auto res = lt::write_hf_export(hf_source(s), m, ho, s.args.out,
                                         {{"method", v.method},
                                          {"command", s.args.command_line},
                                          {"calibration", std::filesystem::path(s.args.calib).filename().string()}});
    const std::string layout = ho.format == lt::int32_format::awq ? std::string("AutoAWQ GEMM")
                               : std::string("GPTQ, checkpoint_format ") + lowbit::io::gptq_checkpoint_name(res.checkpoint) +
                                     (res.checkpoint == lowbit::io::gptq_checkpoint::v2 ? ": a zero point is 0, which v1 cannot hold" : "");
    std::printf("wrote %s: %.2f MB Hugging Face folder, block linears as %s; %lld AWQ scale vectors folded; "
                "model.safetensors read back and compared\n",
                s.args.out.c_str(), static_cast<double>(res.bytes) / 1e6, layout.c_str(), static_cast<long long>(res.folded_scales));
    std::fflush(stdout);
  } else if (!s.args.out.empty()) {
    write_and_verify(s, m, v);
  }
  r.ppl = lt::perplexity(m, s.eval, s.args.ctx, s.args.eval_tokens, "ppl quant ", !s.args.quiet);
  require_finite_ppl(r.ppl, "the quantized");
  if (to_hf) {
    // The folder as its loaders see it: every tensor read from disk, dequantized from the int32 layout.
    auto back = lt::load_hf_export(s.args.out, m, ho);
    const auto p = lt::perplexity(back, s.eval, s.args.ctx, s.args.eval_tokens, "ppl export", !s.args.quiet);
    require_finite_ppl(p, "the exported");
    std::printf("perplexity of %s as written (read back from its files): %.4f; in memory: %.4f (%+.3f %%)\n",
                s.args.out.c_str(), p.ppl, r.ppl.ppl, 100.0 * (p.ppl / r.ppl.ppl - 1.0));
    std::fflush(stdout);
  }
  return r;
}

// --load: a file written by --out, on the model it was quantized from.
run_result load_and_eval(session& s) {
  const auto f = lowbit::io::lowbit_file::open(s.args.load);
  const auto meta = f.user_metadata();
  auto get = [&](const char* k) { return meta.count(k) ? meta.at(k) : std::string(); };
  run_result r;
  r.method = get("label").empty() ? "loaded" : get("label");
  r.bits = std::atoi(get("bits").c_str());
  r.group = std::atoi(get("group").c_str());
  r.group_axis = get("axis") == "ic" ? lowbit::axis::ic : get("axis") == "adaptive" ? lowbit::axis::adaptive : lowbit::axis::oc;
  auto m = load_model(s);
  lt::load_model_file(m, f, s.args.opt.path);
  std::printf("loaded %s: %zu packed matrices (quantized from %s by: %s)\n", s.args.load.c_str(), f.matrices().size(),
              get("source.model").c_str(), get("command").c_str());
  measure(s, m, r);
  r.ppl = lt::perplexity(m, s.eval, s.args.ctx, s.args.eval_tokens, "ppl quant ", !s.args.quiet);
  require_finite_ppl(r.ppl, "the loaded");
  return r;
}

void print_report(const session& s, const run_result& r) {
  std::printf("\n== %s ==\n", r.label().c_str());
  if (!r.layers.empty()) {
    std::printf("per-layer relative output error ||WX - W^X||^2 / ||WX||^2 (held-out calibration windows):\n");
    std::printf("%5s", "block");
    for (lt::slot sl : lt::all_slots) std::printf(" %12s", lt::slot_name(sl));
    std::printf("\n");
    std::map<std::string, double> per_slot;
    for (std::size_t i = 0; i < r.layers.size(); i += 7) {
      std::printf("%5zu", i / 7);
      for (std::size_t j = 0; j < 7 && i + j < r.layers.size(); ++j) {
        std::printf(" %12.3e", r.layers[i + j].rel_error);
        per_slot[lt::slot_name(lt::all_slots[j])] += r.layers[i + j].rel_error;
      }
      std::printf("\n");
    }
    std::printf(" mean");
    const double nb = static_cast<double>(r.layers.size() / 7);
    for (lt::slot sl : lt::all_slots) std::printf(" %12.3e", per_slot[lt::slot_name(sl)] / nb);
    std::printf("\n");
    // What the methods reported: AdaDim's axes, OWQ's weak columns, SpQR's outliers.
    int ic = 0, ada = 0;
    long weak = 0, weak_layers = 0;
    double outlier_rate = 0;
    int spqr_layers = 0;
    auto number_after = [](const std::string& notes, const char* key) {
      const auto at = notes.find(key);
      return at == std::string::npos ? -1.0 : std::atof(notes.c_str() + at + std::strlen(key));
    };
    for (const auto& l : r.layers) {
      if (l.notes.find("adadim axis=") != std::string::npos) {
        ++ada;
        ic += l.notes.find("adadim axis=ic") != std::string::npos;
      }
      if (const double k = number_after(l.notes, "weak_columns="); k >= 0) {
        weak += std::lround(k);
        weak_layers += k > 0;
      }
      if (const double o = number_after(l.notes, "outlier_rate="); o >= 0) {
        outlier_rate += o * static_cast<double>(l.rows * l.cols);
        spqr_layers += 1;
      }
    }
    if (ada > 0) std::printf("adadim chose per-IC groups for %d of %d linears\n", ic, ada);
    if (weak > 0 || r.method.rfind("owq", 0) == 0)
      std::printf("owq kept %ld fp16 weak columns in %ld of %zu linears\n", weak, weak_layers, r.layers.size());
    if (spqr_layers > 0) {
      double n = 0;
      for (const auto& l : r.layers) n += static_cast<double>(l.rows * l.cols);
      std::printf("spqr kept %.3f %% of the weights as fp16 outliers\n", 100.0 * outlier_rate / n);
    }
    std::printf("\n");
  }
  std::printf("average bits per weight : %.4f (exact, all %d quantized linears)\n", r.avg_bits,
              static_cast<int>(r.layers.empty() ? 7 * s.source.n_layer() : r.layers.size()));
  std::printf("quantized linears size  : %.2f MB (model as stored, fp16 embedding: %.2f MB)\n", r.linear_mb, r.model_mb);
  if (!r.layers.empty())
    std::printf(r.calibration_free ? "quantization time       : %.1f s (no calibration data used; no calibration forward passes)\n"
                                   : "quantization time       : %.1f s (calibration forward passes included)\n",
                r.quant_seconds);
  if (s.float_ppl.windows > 0)
    std::printf("perplexity float        : %.3f\n", s.float_ppl.ppl);
  std::printf("perplexity quantized    : %.3f", r.ppl.ppl);
  if (s.float_ppl.windows > 0) std::printf("  (%+.2f %% vs float)", 100.0 * (r.ppl.ppl / s.float_ppl.ppl - 1.0));
  std::printf("\n  protocol: %td windows x %td tokens of %s, %td predictions, natural log; %.0f s\n", r.ppl.windows,
              r.ppl.context, std::filesystem::path(s.args.eval).filename().string().c_str(), r.ppl.predictions, r.ppl.seconds);
}

std::string machine_description() {
  std::string cpu = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  std::ostringstream s;
  s << cpu << ", " << std::thread::hardware_concurrency() << " hardware threads, " << lowbit::num_threads()
    << " used (shared machine: timings are indicative)";
  return s.str();
}

void write_text_atomic(const std::string& path, const std::string& text, const char* flag) {
  lt::write_output(flag, path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

// ---------------------------------------------------------------- the sweep
static const char* csv_header = "method,bits,group,axis,avg_bits,size_mb,ppl,ppl_float,delta_pct,quant_seconds";

std::string fmt_ppl(double p) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", p);
  return buf;
}

// Everything that makes two sweeps' numbers comparable, as `key=value` lines; kept next to
// the CSV in <csv>.protocol. The inputs are pinned by their contents (CRC-32C and size of the
// model, calibration and evaluation files, read when the sweep starts), not their names: a
// calibration file edited in place is another protocol. The names are written as `#`
// comments for the reader; a resume ignores them (same_protocol).
std::string protocol_text(const session& s) {
  const auto& a = s.args;
  auto name = [](const std::string& p) { return std::filesystem::path(p).filename().string(); };
  std::ostringstream o;
  o << "# model " << name(a.model) << ", calibration " << name(a.calib) << ", evaluation " << name(a.eval)
    << " (names for the reader: a resume compares the contents)\n"
    << "model=" << s.model_hash << "\ncalib=" << s.calib_hash << "\neval=" << s.eval_hash
    << "\neval_tokens=" << a.eval_tokens << "\nctx=" << a.ctx << "\ncalib_windows=" << a.calib_windows
    << "\nheld_out=" << a.held_out << "\nawq_windows=" << a.opt.awq_windows
    << "\npath=" << (a.opt.path == lt::quantized_path::kernel ? "kernel" : "dequantized")
    << "\nppl_float=" << fmt_ppl(s.float_ppl.ppl) << "\n";
  return o.str();
}

// Two protocol texts name the same protocol: the same key=value lines, comments aside.
bool same_protocol(const std::string& a, const std::string& b) {
  auto keys = [](const std::string& t) {
    std::map<std::string, std::string> m;
    std::istringstream in(t);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      const auto eq = line.find('=');
      m[line.substr(0, eq)] = eq == std::string::npos ? std::string() : line.substr(eq + 1);
    }
    return m;
  };
  return keys(a) == keys(b);
}

std::string row_key(const run_result& r) {
  return r.method + "," + std::to_string(r.bits) + "," + std::to_string(r.group) + "," + lowbit::axis_name(r.group_axis);
}

// The rows of an earlier sweep that this one may keep: same protocol (the .protocol file, or
// with --assume-protocol the float perplexity alone). Says what it kept and why not.
std::vector<run_result> resumable_rows(const session& s) {
  const auto& a = s.args;
  std::ifstream csv(a.csv);
  if (!csv) return {};
  std::ifstream proto(a.csv + ".protocol");
  std::stringstream ps;
  ps << proto.rdbuf();
  const bool have_protocol = static_cast<bool>(proto);
  if (have_protocol && !same_protocol(ps.str(), protocol_text(s))) {
    std::fprintf(stderr, "--sweep: %s was made with another protocol (%s.protocol differs); rerunning every row\n",
                 a.csv.c_str(), a.csv.c_str());
    return {};
  }
  if (!have_protocol && !a.assume_protocol) {
    std::fprintf(stderr, "--sweep: %s has no %s.protocol, so its protocol is unknown; rerunning every row "
                 "(--assume-protocol keeps rows whose float perplexity matches)\n", a.csv.c_str(), a.csv.c_str());
    return {};
  }
  std::vector<run_result> rows;
  std::string line;
  std::getline(csv, line);
  if (line != csv_header) {
    std::fprintf(stderr, "--sweep: %s does not start with the expected header; rerunning every row\n", a.csv.c_str());
    return {};
  }
  int skipped = 0;
  while (std::getline(csv, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    if (f.size() != 10 || (!have_protocol && f[7] != fmt_ppl(s.float_ppl.ppl))) {
      ++skipped;
      continue;
    }
    try {
      run_result r;
      r.method = f[0];
      r.bits = std::stoi(f[1]);
      r.group = std::stoi(f[2]);
      r.group_axis = f[3] == "ic" ? lowbit::axis::ic : f[3] == "adaptive" ? lowbit::axis::adaptive : lowbit::axis::oc;
      r.avg_bits = std::stod(f[4]);
      r.linear_mb = std::stod(f[5]);
      r.ppl.ppl = std::stod(f[6]);
      r.quant_seconds = std::stod(f[9]);
      rows.push_back(r);
    } catch (const std::exception&) {
      ++skipped;
    }
  }
  std::fprintf(stderr, "--sweep: keeping %zu rows of %s (%s)%s\n", rows.size(), a.csv.c_str(),
               have_protocol ? "same protocol" : "--assume-protocol: their float perplexity matches",
               skipped ? (", dropping " + std::to_string(skipped) + " that do not match").c_str() : "");
  return rows;
}

void write_sweep(const session& s, const std::vector<run_result>& rows, double run_seconds, std::size_t ran) {
  const double pf = s.float_ppl.ppl;
  {
    std::string csv = std::string(csv_header) + "\n";
    char buf[256];
    for (const auto& r : rows) {
      std::snprintf(buf, sizeof buf, "%s,%d,%d,%s,%.4f,%.3f,%.4f,%.4f,%.2f,%.1f\n", r.method.c_str(), r.bits, r.group,
                    lowbit::axis_name(r.group_axis), r.avg_bits, r.linear_mb, r.ppl.ppl, pf, 100.0 * (r.ppl.ppl / pf - 1.0),
                    r.quant_seconds);
      csv += buf;
    }
    write_text_atomic(s.args.csv, csv, "--csv");
    write_text_atomic(s.args.csv + ".protocol", protocol_text(s), "--csv");
  }
  // Hand-written analysis below this marker survives a rerun.
  static const std::string marker = "<!-- notes below this line are kept by --sweep -->";
  std::string kept = marker + "\n";
  {
    std::ifstream prev(s.args.results);
    std::stringstream ss;
    ss << prev.rdbuf();
    const std::string old = ss.str();
    if (auto pos = old.find(marker); pos != std::string::npos) kept = old.substr(pos);
  }
  std::ostringstream md;
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  md << "# Results: quantizing SmolLM2-135M-Instruct\n\n"
     << "Written by `lowbit-quantize --sweep` (tools/lowbit-quantize); do not edit by hand, rerun it.\n\n"
     << "- Command: `" << s.args.command_line << "`\n"
     << "- Date: " << date << "; machine: " << machine_description() << "; this run took "
     << lt::progress_bar::clock(run_seconds) << " for " << ran << " of the " << rows.size()
     << " rows (the others kept from `" << std::filesystem::path(s.args.csv).filename().string()
     << "`, same protocol; quant s is each row's own)\n"
     << "- Model: `" << std::filesystem::path(s.args.model).filename().string()
     << "`, every weight dequantized to float (the float reference); embeddings, norms and the (tied) head stay float.\n"
     << "- Calibration: " << s.args.calib_windows << " windows x " << s.args.ctx << " tokens evenly spaced over `"
     << std::filesystem::path(s.args.calib).filename().string() << "` (+" << s.args.held_out
     << " held-out windows for the layer errors); sequential layer-by-layer quantization.\n"
     << "- Perplexity: `" << std::filesystem::path(s.args.eval).filename().string() << "`, " << s.float_ppl.windows
     << " non-overlapping windows of " << s.float_ppl.context << " tokens (" << s.float_ppl.predictions
     << " predictions), natural log. **Float perplexity: " << pf << "**.\n"
     << "- avg bits: exact, from the packed format (codes + stats + outliers) over all block linears; size_mb: those "
        "linears (MB = 1e6 bytes). owq@T: OWQ with the reference's weak-column count for its nominal target T; "
        "spqr: beta1 = 16 groups, 3-bit stats, r = 0.2 unless spqr@rR.\n\n"
     << "| method | bits | group | axis | avg bits | size MB | ppl | Δ vs float | quant s |\n"
     << "|---|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  std::snprintf(buf, sizeof buf, "| float | 32 | - | - | 32 | %.2f | %.3f | - | - |\n", s.float_linear_mb, pf);
  md << buf;
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "| %s | %d | %s | %s | %.3f | %.2f | %.3f | %+.1f %% | %.0f |\n", r.method.c_str(), r.bits,
                  group_label(r.group).c_str(), lowbit::axis_name(r.group_axis), r.avg_bits, r.linear_mb, r.ppl.ppl,
                  100.0 * (r.ppl.ppl / pf - 1.0), r.quant_seconds);
    md << buf;
  }
  md << "\n" << kept;
  write_text_atomic(s.args.results, md.str(), "--results");
}

// The comparison table of evaluation.md: every available method (baselines first, so a
// partial sweep still holds them) at the sweep's bit widths, group sizes and axes, each
// method in the formats its paper uses (methods.hpp: owq per channel at 3 and 4 bits, spqr
// with beta1 = 16), owq at bits + each --sweep-owq-extra, spqr at each --sweep-spqr-r.
std::vector<std::string> method_order() {
  std::vector<std::string> order{"rtn", "gptq", "awq", "adadim-rtn", "owq", "adadim-gptq", "spqr", "awq-gptq"};
  for (const auto& [name, entry] : lt::method_registry())
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  return order;
}

std::vector<variant> sweep_variants(const cli_args& args) {
  for (const auto& name : args.sweep_methods)
    if (!lt::method_registry().contains(name)) bad_arg("--sweep-methods: unknown method '" + name + "'");
  std::vector<variant> variants;
  for (const auto& name : method_order()) {
    const auto& entry = lt::method_registry().at(name);
    if (!entry.available) continue;
    if (!args.sweep_methods.empty() &&
        std::find(args.sweep_methods.begin(), args.sweep_methods.end(), name) == args.sweep_methods.end())
      continue;
    const auto& groups = name == "spqr" && !args.sweep_spqr_groups.empty() ? args.sweep_spqr_groups
                         : entry.sweep_groups.empty()                     ? args.sweep_groups
                                                                          : entry.sweep_groups;
    for (int b : args.sweep_bits) {
      if (!entry.sweep_bits_only.empty() &&
          std::find(entry.sweep_bits_only.begin(), entry.sweep_bits_only.end(), b) == entry.sweep_bits_only.end())
        continue;
      for (int g : groups)
        for (auto ax : entry.sweep_axes) {
          variant v{name, args.opt};
          v.opt.bits = b;
          v.opt.group = g;
          v.opt.group_axis = ax;
          v.opt.target_bits = 0.0;
          v.opt.outlier_threshold = 0.2;
          if (name == "owq") {
            for (double e : args.sweep_owq_extra) {
              v.opt.target_bits = b + e;
              variants.push_back(v);
            }
          } else if (name == "spqr") {
            for (double r : args.sweep_spqr_r) {
              v.opt.outlier_threshold = r;
              variants.push_back(v);
            }
          } else {
            variants.push_back(v);
            if ((name == "gptq" || name == "awq-gptq") && args.sweep_act_order) {
              v.opt.act_order = true;
              variants.push_back(v);
            }
          }
        }
    }
  }
  return variants;
}

int run_sweep(session& s) {
  const auto variants = sweep_variants(s.args);  // every format checked before any work (check_sweep)
  std::vector<run_result> rows = s.args.resume ? resumable_rows(s) : std::vector<run_result>{};
  // Table order: the sweep's order, then kept rows it does not list (by method, as they were).
  const auto order = method_order();
  auto rank = [&](const run_result& r) {
    for (std::size_t i = 0; i < variants.size(); ++i)
      if (method_label(variants[i]) == r.method && variants[i].opt.bits == r.bits && variants[i].opt.group == r.group &&
          variants[i].opt.group_axis == r.group_axis)
        return std::pair<std::size_t, std::size_t>(0, i);
    const std::string base = r.method.substr(0, r.method.find('@'));
    return std::pair<std::size_t, std::size_t>(1, static_cast<std::size_t>(std::find(order.begin(), order.end(), base) - order.begin()));
  };
  auto have = [&](const std::string& key) {
    return std::any_of(rows.begin(), rows.end(), [&](const run_result& r) { return row_key(r) == key; });
  };
  std::vector<variant> todo;
  for (const auto& v : variants) {
    run_result probe;
    probe.method = method_label(v);
    probe.bits = v.opt.bits;
    probe.group = v.opt.group;
    probe.group_axis = v.opt.group_axis;
    if (!have(row_key(probe))) todo.push_back(v);
  }
  std::fprintf(stderr, "--sweep: %zu rows listed, %zu to run\n", variants.size(), todo.size());
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t ran = 0;
  auto write = [&] {
    std::stable_sort(rows.begin(), rows.end(), [&](const run_result& a, const run_result& b) { return rank(a) < rank(b); });
    write_sweep(s, rows, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), ran);
  };
  for (std::size_t i = 0; i < todo.size(); ++i) {
    const variant& v = todo[i];
    std::fprintf(stderr, "[%zu/%zu] %s\n", i + 1, todo.size(), row_label(method_label(v), v.opt.bits, v.opt.group, v.opt.group_axis).c_str());
    rows.push_back(quantize_and_eval(s, v));
    ++ran;
    const auto& r = rows.back();
    std::printf("%-40s avg bits %.3f  ppl %.3f (%+.1f %%)  quant %.0f s\n", r.label().c_str(), r.avg_bits, r.ppl.ppl,
                100.0 * (r.ppl.ppl / s.float_ppl.ppl - 1.0), r.quant_seconds);
    std::fflush(stdout);
    write();  // after every row: an interrupted sweep keeps what it finished
  }
  if (todo.empty()) write();
  std::printf("wrote %s and %s\n", s.args.results.c_str(), s.args.csv.c_str());
  return 0;
}

// Every row of the sweep in a format this build has, before any work (usage errors).
void check_sweep(const cli_args& args) {
  for (const auto& v : sweep_variants(args))
    check_format(v.method, v.opt, v.method == "spqr" ? "--sweep-spqr-groups" : "--sweep-groups");
}

// What the run will write, before it reads anything (usage errors, docs/cli.md): never an
// input, never a link or a device, in a directory that takes new files.
void check_outputs(const cli_args& a) {
  const std::vector<lt::named_path> inputs{{"--model", a.model}, {"--calib", a.calib}, {"--eval", a.eval}, {"--load", a.load}};
  // --export gptq|awq: a new folder (checked in parse_args); its parent must take it.
  if (!a.out.empty() && (a.export_format == "gptq" || a.export_format == "awq")) {
    const auto parent = std::filesystem::absolute(a.out).parent_path();
    if (!std::filesystem::is_directory(parent) || ::access(parent.c_str(), W_OK | X_OK) != 0)
      bad_arg("--out '" + a.out + "': the folder " + parent.string() + " does not exist or cannot be written");
  } else if (!a.out.empty()) {
    lt::check_output({"--out", a.out}, inputs);
  }
  if (a.sweep) {
    const lt::named_path csv{"--csv", a.csv}, proto{"--csv", a.csv + ".protocol"}, results{"--results", a.results};
    lt::check_output(csv, inputs, {results}, true);
    lt::check_output(proto, inputs, {results}, true);
    lt::check_output(results, inputs, {csv, proto}, true);
  }
}

int run(cli_args args) {
  lt::install_signal_cleanup();  // an interrupted write leaves no temporary file
  if (args.sweep) check_sweep(args);
  check_outputs(args);
  if (args.threads > 0) lowbit::set_num_threads(args.threads);
  if (!std::filesystem::exists(args.model))
    lowbit::detail::fail("model file '", args.model, "' not found: run scripts/fetch-assets (it downloads SmolLM2-135M-Instruct ",
                         "into assets/), or pass --model FILE.gguf or --model HF_FOLDER");
  if (args.sweep) lt::lock_for_sweep(args.csv);  // held until the process ends
  session s{args, model_source::open(args.model), {}, {}, {}};
  if (args.sweep) {
    s.model_hash = s.source.content_hash(args.model);
    s.calib_hash = content_hash(args.calib);
    s.eval_hash = content_hash(args.eval);
  }
  std::fprintf(stderr, "model %s\n", args.model.c_str());
  {
    if (args.load.empty()) {
      const auto cal = s.source.tokens(args.calib, "calibration text");
      s.calib = pick_windows(cal, args.calib_windows + args.held_out, args.ctx, "calibration text '" + args.calib + "'");
    }
    s.eval = s.source.tokens(args.eval, "evaluation text");
    std::fprintf(stderr, "calibration %zu tokens (%s), evaluation text %zu tokens (%s)\n", s.calib.size(), args.calib.c_str(),
                 s.eval.size(), args.eval.c_str());
  }
  if (!args.skip_float || args.sweep) {
    auto m = load_model(s);
    s.float_linear_mb = 4.0 * static_cast<double>(m.block_weight_count()) / 1e6;
    s.float_ppl = lt::perplexity(m, s.eval, args.ctx, args.eval_tokens, "ppl float ", !args.quiet);
    require_finite_ppl(s.float_ppl, "the float");
    std::printf("float perplexity %.3f (%td windows x %td tokens, %td predictions, %.0f s)\n", s.float_ppl.ppl,
                s.float_ppl.windows, s.float_ppl.context, s.float_ppl.predictions, s.float_ppl.seconds);
    std::fflush(stdout);
  }
  if (args.sweep) return run_sweep(s);
  if (!args.load.empty()) {
    print_report(s, load_and_eval(s));
    return 0;
  }
  print_report(s, quantize_and_eval(s, {args.method, args.opt}));
  return 0;
}

}  // namespace

// Exit status (docs/cli.md): 0 done; 2 the command line is wrong (options, values, outputs;
// all found before any work); 1 a runtime error; 128+N killed by signal N.
int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const cli::usage_error& e) {
    std::cerr << "lowbit-quantize: " << e.what() << "\n(lowbit-quantize --help lists the options)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lowbit-quantize: " << lt::plain_message(e) << "\n";
    return 1;
  }
}
