// lowbit-quantize: quantize a Llama-architecture GGUF model with one of lowbit's methods,
// layer by layer on calibration text, and report what it costs: per-layer output error,
// exact average bits, size, quantization time, float and quantized perplexity.
// With no arguments it runs the default model and method. docs/cli.md has the details.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lowbit/io/assets.hpp"
#include "lowbit-quantize/methods.hpp"
#include "lowbit-quantize/text.hpp"
#include "model/perplexity.hpp"
#include "model/sequential.hpp"

namespace lt = lowbit::tools;
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
  std::string out;
  bool sweep = false;
  bool skip_float = false;
  bool quiet = false;
  unsigned threads = 0;
  std::string results = "docs/results.md", csv = "docs/results.csv";
  std::vector<int> sweep_bits{4, 3, 2}, sweep_groups{128, 0};
  std::vector<std::string> sweep_methods;  // empty: every available method
  std::string command_line;
};

const char* usage =
    "usage: lowbit-quantize [options]\n"
    "  --model FILE         GGUF model, llama architecture (default: assets/SmolLM2-135M-Instruct.Q4_1.gguf)\n"
    "  --method NAME        rtn | gptq | awq | owq | spqr | adadim-rtn | adadim-gptq (default rtn)\n"
    "  --bits B             2, 3, 4 or 8 (default 4)\n"
    "  --group G            group size 32, 64, 128, 256, or 0 = per channel (default 128)\n"
    "  --axis A             oc (groups along input columns) or ic (along output rows) (default oc)\n"
    "  --target-bits X      average-bits budget for owq / spqr\n"
    "  --calib FILE         calibration text (default: WikiText-2 valid); FILE.ids = int32 token ids\n"
    "  --eval FILE          evaluation text (default: WikiText-2 test)\n"
    "  --eval-tokens N      evaluation tokens, whole windows (default 32768; 0 = the whole text)\n"
    "  --ctx N              context length of calibration and evaluation windows (default 512)\n"
    "  --calib-windows N    calibration windows (default 32)\n"
    "  --held-out N         extra calibration windows used only to measure layer errors (default 4)\n"
    "  --path P             dequantized (Eigen GEMM, default) or kernel (lowbit::gemm on packed codes)\n"
    "  --threads N          worker threads (default: all cores)\n"
    "  --skip-float         do not evaluate the float model\n"
    "  --sweep              run the comparison table (evaluation.md) and write --results / --csv\n"
    "  --results FILE       Markdown output of --sweep (default docs/results.md)\n"
    "  --csv FILE           CSV output of --sweep (default docs/results.csv)\n"
    "  --sweep-methods L    comma-separated methods for --sweep (default: every available one)\n"
    "  --sweep-bits L       comma-separated bit widths for --sweep (default 4,3,2)\n"
    "  --sweep-groups L     comma-separated group sizes for --sweep, 0 = per channel (default 128,0)\n"
    "  --awq-windows N      calibration windows AWQ's scale search runs its block on (default 8)\n"
    "  --out FILE           write the quantized model (not yet supported)\n"
    "  --quiet              no progress bars\n";

[[noreturn]] void bad_arg(const std::string& msg) {
  std::cerr << "lowbit-quantize: " << msg << "\n\n" << usage;
  std::exit(2);
}

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

long long to_int(const std::string& flag, const std::string& v) {
  try {
    std::size_t pos = 0;
    const long long x = std::stoll(v, &pos);
    if (pos == v.size()) return x;
  } catch (const std::exception&) {
  }
  bad_arg(flag + " expects an integer, got '" + v + "'");
}

std::string default_text(const char* split) {
  // WikiText-2 ships with the project's shared data; LOWBIT_DATA overrides its folder.
  const char* env = std::getenv("LOWBIT_DATA");
  std::filesystem::path base = env != nullptr && *env != '\0' ? std::filesystem::path(env)
#if defined(LOWBIT_SOURCE_DIR)
                                                               : std::filesystem::path(LOWBIT_SOURCE_DIR) / ".." / "shared" / "data";
#else
                                                               : std::filesystem::path("..") / "shared" / "data";
#endif
  return (base / "wikitext-2" / (std::string(split) + ".txt")).lexically_normal().string();
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
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--help" || f == "-h") {
      std::cout << usage;
      std::exit(0);
    } else if (f == "--model") a.model = value(i);
    else if (f == "--method") a.method = value(i);
    else if (f == "--bits") a.opt.bits = static_cast<int>(to_int(f, value(i)));
    else if (f == "--group") a.opt.group = static_cast<int>(to_int(f, value(i)));
    else if (f == "--axis") {
      const std::string v = value(i);
      if (v == "oc") a.opt.group_axis = lowbit::axis::oc;
      else if (v == "ic") a.opt.group_axis = lowbit::axis::ic;
      else bad_arg("--axis expects oc or ic, got '" + v + "'");
    } else if (f == "--target-bits") {
      const std::string v = value(i);
      try {
        a.opt.target_bits = std::stod(v);
      } catch (const std::exception&) {
        bad_arg("--target-bits expects a number, got '" + v + "'");
      }
    } else if (f == "--calib") a.calib = value(i);
    else if (f == "--eval") a.eval = value(i);
    else if (f == "--eval-tokens") a.eval_tokens = to_int(f, value(i));
    else if (f == "--ctx") a.ctx = to_int(f, value(i));
    else if (f == "--calib-windows") a.calib_windows = to_int(f, value(i));
    else if (f == "--held-out") a.held_out = to_int(f, value(i));
    else if (f == "--path") {
      const std::string v = value(i);
      if (v == "dequantized") a.opt.path = lt::quantized_path::dequantized;
      else if (v == "kernel") a.opt.path = lt::quantized_path::kernel;
      else bad_arg("--path expects dequantized or kernel, got '" + v + "'");
    } else if (f == "--threads") a.threads = static_cast<unsigned>(to_int(f, value(i)));
    else if (f == "--skip-float") a.skip_float = true;
    else if (f == "--sweep") a.sweep = true;
    else if (f == "--results") a.results = value(i);
    else if (f == "--csv") a.csv = value(i);
    else if (f == "--sweep-methods") a.sweep_methods = split_list(value(i));
    else if (f == "--sweep-bits" || f == "--sweep-groups") {
      std::vector<int> v;
      for (const auto& x : split_list(value(i))) v.push_back(static_cast<int>(to_int(f, x)));
      (f == "--sweep-bits" ? a.sweep_bits : a.sweep_groups) = v;
    } else if (f == "--awq-windows") a.opt.awq_windows = to_int(f, value(i));
    else if (f == "--out") a.out = value(i);
    else if (f == "--quiet") a.quiet = true;
    else bad_arg("unknown option '" + f + "'");
  }
  if (a.method.rfind("adadim", 0) == 0) a.opt.group_axis = lowbit::axis::adaptive;  // AdaDim chooses per linear
  if (a.model.empty()) a.model = lowbit::io::default_model_path().string();
  if (a.calib.empty()) a.calib = default_text("valid");
  if (a.eval.empty()) a.eval = default_text("test");
  if (a.ctx < 2) bad_arg("--ctx must be at least 2");
  if (a.calib_windows < 1) bad_arg("--calib-windows must be at least 1");
  if (a.held_out < 0) bad_arg("--held-out must not be negative");
  if (a.eval_tokens < 0) bad_arg("--eval-tokens must not be negative");
  if (!a.out.empty())
    bad_arg("--out is not yet supported: the lowbit model file format (io/lowbit_file.hpp) has not landed; "
            "run without --out to get the report");
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
std::string variant_label(const variant& v) {
  std::ostringstream s;
  s << v.method << " " << v.opt.bits << "-bit " << group_label(v.opt.group) << " " << lowbit::axis_name(v.opt.group_axis);
  return s.str();
}

struct run_result {
  variant v;
  std::vector<lt::layer_report> layers;
  double avg_bits = 0, linear_mb = 0, model_mb = 0, quant_seconds = 0;
  lt::perplexity_result ppl;
};

struct session {
  cli_args args;
  lowbit::io::gguf_file file;
  std::vector<std::int32_t> calib, eval;
  lt::perplexity_result float_ppl;
  double float_linear_mb = 0;  // the block linears in fp32
};

lt::llama_model load_model(const session& s) { return lt::llama_model::from_gguf(s.file); }

run_result quantize_and_eval(session& s, const variant& v) {
  run_result r;
  r.v = v;
  auto method = lt::make_method(v.method, v.opt);  // fails fast on an unavailable method or format
  auto m = load_model(s);
  lt::sequential_options so;
  so.window = s.args.ctx;
  so.held_out_windows = s.args.held_out;
  so.progress = !s.args.quiet;
  const auto t0 = std::chrono::steady_clock::now();
  r.layers = lt::quantize_sequential(m, s.calib, method, so);
  r.quant_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
  const bool tied = s.file.find("output.weight") == nullptr;
  r.model_mb = (bytes + embd * (tied ? 1 : 2) + norms) / 1e6;
  r.ppl = lt::perplexity(m, s.eval, s.args.ctx, s.args.eval_tokens, "ppl quant ", !s.args.quiet);
  return r;
}

void print_report(const session& s, const run_result& r) {
  std::printf("\n== %s ==\n", variant_label(r.v).c_str());
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
  int ic = 0, ada = 0;
  for (const auto& l : r.layers) {
    if (l.notes.find("adadim axis=") == std::string::npos) continue;
    ++ada;
    ic += l.notes.find("adadim axis=ic") != std::string::npos;
  }
  if (ada > 0) std::printf("adadim chose per-IC groups for %d of %d linears\n", ic, ada);
  std::printf("\n");
  std::printf("average bits per weight : %.4f (exact, all %zu quantized linears)\n", r.avg_bits, r.layers.size());
  std::printf("quantized linears size  : %.2f MB (model as stored, fp16 embedding: %.2f MB)\n", r.linear_mb, r.model_mb);
  std::printf("quantization time       : %.1f s (calibration forward passes included)\n", r.quant_seconds);
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

void write_sweep(const session& s, const std::vector<run_result>& rows, double total_seconds) {
  const double pf = s.float_ppl.ppl;
  {
    std::filesystem::create_directories(std::filesystem::path(s.args.csv).parent_path().empty() ? "." : std::filesystem::path(s.args.csv).parent_path());
    std::ofstream csv(s.args.csv);
    lowbit::detail::require(static_cast<bool>(csv), "cannot write --csv '", s.args.csv, "'");
    csv << "method,bits,group,axis,avg_bits,size_mb,ppl,ppl_float,delta_pct,quant_seconds\n";
    char buf[256];
    for (const auto& r : rows) {
      std::snprintf(buf, sizeof buf, "%s,%d,%d,%s,%.4f,%.3f,%.4f,%.4f,%.2f,%.1f\n", r.v.method.c_str(), r.v.opt.bits, r.v.opt.group,
                    lowbit::axis_name(r.v.opt.group_axis), r.avg_bits, r.linear_mb, r.ppl.ppl, pf, 100.0 * (r.ppl.ppl / pf - 1.0),
                    r.quant_seconds);
      csv << buf;
    }
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
  std::ofstream md(s.args.results);
  lowbit::detail::require(static_cast<bool>(md), "cannot write --results '", s.args.results, "'");
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  md << "# Results: quantizing SmolLM2-135M-Instruct\n\n"
     << "Written by `lowbit-quantize --sweep` (tools/lowbit-quantize); do not edit by hand, rerun it.\n\n"
     << "- Command: `" << s.args.command_line << "`\n"
     << "- Date: " << date << "; machine: " << machine_description() << "; sweep took "
     << lt::progress_bar::clock(total_seconds) << "\n"
     << "- Model: `" << std::filesystem::path(s.args.model).filename().string()
     << "`, every weight dequantized to float (the float reference); embeddings, norms and the (tied) head stay float.\n"
     << "- Calibration: " << s.args.calib_windows << " windows x " << s.args.ctx << " tokens evenly spaced over `"
     << std::filesystem::path(s.args.calib).filename().string() << "` (+" << s.args.held_out
     << " held-out windows for the layer errors); sequential layer-by-layer quantization.\n"
     << "- Perplexity: `" << std::filesystem::path(s.args.eval).filename().string() << "`, " << s.float_ppl.windows
     << " non-overlapping windows of " << s.float_ppl.context << " tokens (" << s.float_ppl.predictions
     << " predictions), natural log. **Float perplexity: " << pf << "**.\n"
     << "- avg bits: exact, from the packed format (codes + stats + outliers) over all block linears; size_mb: those "
        "linears (MB = 1e6 bytes).\n\n"
     << "| method | bits | group | axis | avg bits | size MB | ppl | Δ vs float | quant s |\n"
     << "|---|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  std::snprintf(buf, sizeof buf, "| float | 32 | - | - | 32 | %.2f | %.3f | - | - |\n", s.float_linear_mb, pf);
  md << buf;
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "| %s | %d | %s | %s | %.3f | %.2f | %.3f | %+.1f %% | %.0f |\n", r.v.method.c_str(), r.v.opt.bits,
                  group_label(r.v.opt.group).c_str(), lowbit::axis_name(r.v.opt.group_axis), r.avg_bits, r.linear_mb, r.ppl.ppl,
                  100.0 * (r.ppl.ppl / pf - 1.0), r.quant_seconds);
    md << buf;
  }
  md << "\n" << kept;
}

int run(cli_args args) {
  if (args.threads > 0) lowbit::set_num_threads(args.threads);
  if (!std::filesystem::exists(args.model))
    lowbit::detail::fail("model file '", args.model, "' not found: run scripts/fetch-assets (it downloads SmolLM2-135M-Instruct ",
                         "into assets/), or pass --model FILE.gguf");
  session s{args, lowbit::io::gguf_file::open(args.model), {}, {}, {}};
  std::fprintf(stderr, "model %s\n", args.model.c_str());
  {
    const auto cal = lt::load_tokens(s.file, args.calib, "calibration text");
    s.calib = pick_windows(cal, args.calib_windows + args.held_out, args.ctx, "calibration text '" + args.calib + "'");
    s.eval = lt::load_tokens(s.file, args.eval, "evaluation text");
    std::fprintf(stderr, "calibration %zu tokens (%s), evaluation text %zu tokens (%s)\n", s.calib.size(), args.calib.c_str(),
                 s.eval.size(), args.eval.c_str());
  }
  if (!args.skip_float || args.sweep) {
    auto m = load_model(s);
    s.float_linear_mb = 4.0 * static_cast<double>(m.block_weight_count()) / 1e6;
    s.float_ppl = lt::perplexity(m, s.eval, args.ctx, args.eval_tokens, "ppl float ", !args.quiet);
    std::printf("float perplexity %.3f (%td windows x %td tokens, %td predictions, %.0f s)\n", s.float_ppl.ppl,
                s.float_ppl.windows, s.float_ppl.context, s.float_ppl.predictions, s.float_ppl.seconds);
    std::fflush(stdout);
  }
  if (!args.sweep) {
    print_report(s, quantize_and_eval(s, {args.method, args.opt}));
    return 0;
  }
  // The comparison table of evaluation.md: every available method at 4/3/2 bits, g128 and
  // per channel, along oc and ic.
  std::vector<variant> variants;
  // Baselines first, so a partial sweep still holds them.
  std::vector<std::string> order{"rtn", "gptq", "awq", "adadim-rtn", "owq", "adadim-gptq", "spqr"};
  for (const auto& [name, entry] : lt::method_registry())
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  for (const auto& name : args.sweep_methods)
    if (!lt::method_registry().contains(name)) bad_arg("--sweep-methods: unknown method '" + name + "'");
  for (const auto& name : order) {
    const auto& entry = lt::method_registry().at(name);
    if (!entry.available) continue;
    if (!args.sweep_methods.empty() &&
        std::find(args.sweep_methods.begin(), args.sweep_methods.end(), name) == args.sweep_methods.end())
      continue;
    for (int b : args.sweep_bits)
      for (int g : args.sweep_groups)
        for (auto ax : entry.sweep_axes) {
          variant v{name, args.opt};
          v.opt.bits = b;
          v.opt.group = g;
          v.opt.group_axis = ax;
          variants.push_back(v);
        }
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<run_result> rows;
  for (std::size_t i = 0; i < variants.size(); ++i) {
    std::fprintf(stderr, "[%zu/%zu] %s\n", i + 1, variants.size(), variant_label(variants[i]).c_str());
    rows.push_back(quantize_and_eval(s, variants[i]));
    const auto& r = rows.back();
    std::printf("%-32s avg bits %.3f  ppl %.3f (%+.1f %%)  quant %.0f s\n", variant_label(r.v).c_str(), r.avg_bits, r.ppl.ppl,
                100.0 * (r.ppl.ppl / s.float_ppl.ppl - 1.0), r.quant_seconds);
    std::fflush(stdout);
    write_sweep(s, rows, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());  // partial results survive
  }
  std::printf("wrote %s and %s\n", args.results.c_str(), args.csv.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "lowbit-quantize: " << e.what() << "\n";
    return 1;
  }
}
