// peer-export: lowbit-quantize's --export gguf path (tools/lowbit-quantize/gguf_export.hpp) as a
// standalone measurement driver, for scripts/peer-llamacpp until the CLI wires the flags:
//
//   peer-export MODEL.gguf OUT.gguf TYPE METHOD [--calib FILE] [--calib-windows 32] [--ctx 512]
//
// TYPE: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0; METHOD: rtn | gptq. Calibration as lowbit-quantize's default:
// the first --calib-windows windows of --ctx tokens of --calib (default
// $LOWBIT_DATA/wikitext-2/valid.txt), run through the model sequentially (tools/model/
// sequential.hpp). Not part of the library or CI; scripts/peer-llamacpp builds it with one
// compiler call.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "lowbit-quantize/gguf_export.hpp"
#include "lowbit-quantize/text.hpp"

namespace lt = lowbit::tools;

int main(int argc, char** argv) try {
  if (argc < 5) {
    std::fprintf(stderr, "usage: peer-export MODEL.gguf OUT.gguf TYPE rtn|gptq [--calib FILE] [--calib-windows N] [--ctx N]\n");
    return 2;
  }
  const std::string model = argv[1], out = argv[2];
  lt::gguf_export_options o{lt::parse_gguf_export_type(argv[3]), argv[4]};
  const char* env = std::getenv("LOWBIT_DATA");
  std::string calib = ((env && *env) ? std::filesystem::path(env) : std::filesystem::path("data")) / "wikitext-2" / "valid.txt";
  lowbit::index windows = 32, ctx = 512;
  for (int i = 5; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--calib") calib = argv[i + 1];
    else if (f == "--calib-windows") windows = std::atoll(argv[i + 1]);
    else if (f == "--ctx") ctx = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "peer-export: unknown option %s\n", f.c_str());
      return 2;
    }
  }
  const auto file = lowbit::io::gguf_file::open(model);
  auto m = lt::llama_model::from_gguf(file);
  lt::check_gguf_export(m, o);
  std::vector<std::int32_t> ids;
  if (o.method != "rtn") {
    ids = lt::load_tokens(file, calib, "--calib");
    lowbit::detail::require(static_cast<lowbit::index>(ids.size()) >= windows * ctx, "calibration text too short");
    ids.resize(static_cast<std::size_t>(windows * ctx));
  } else {
    ids.assign(static_cast<std::size_t>(ctx), 0);  // RTN looks at no data; one window drives the pass
  }
  lt::sequential_options so;
  so.window = ctx;
  const auto layers = lt::quantize_sequential(m, ids, lt::gguf_export_method(o), so);
  double err = 0;
  for (const auto& l : layers) err += l.rel_error;
  const std::string cal = o.method == "rtn" ? std::string("none") :
      std::filesystem::path(calib).filename().string() + ", " + std::to_string(windows) + " windows x " + std::to_string(ctx) + " tokens";
  const std::size_t n = lt::write_gguf_export(file, m, o, out,
                                              {{"calibration", cal}, {"source.model", std::filesystem::path(model).filename().string()}});
  std::printf("wrote %s: %s %s, %.2f MB", out.c_str(), lowbit::io::type_name(o.type).c_str(), o.method.c_str(),
              static_cast<double>(n) / 1e6);
  if (o.method != "rtn")  // RTN ran on a dummy window: its layer errors mean nothing
    std::printf("; mean layer rel. error %.4e (calibration windows)", err / static_cast<double>(layers.size()));
  std::printf("\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "peer-export: %s\n", e.what());
  return 1;
}
