// The fault suite of lowbit-quantize (issue #15, items 2-8): every case runs the real built
// CLI as a subprocess (its path comes from the build: LOWBIT_QUANTIZE_BIN; the environment
// variable LOWBIT_FAULTS_TOOL overrides it, e.g. to run the suite against an older binary)
// on a tiny random Llama model written here as a real GGUF (lowbit/io/gguf_writer.hpp) with
// pre-tokenized .ids texts, so no tokenizer is needed. Each case asserts the exit status,
// the sentence on stderr, and that no input and no previous output was damaged.
// docs/cli.md lists the checks and the exit statuses.
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lowbit/io/atomic_file.hpp"
#include "lowbit/io/gguf_writer.hpp"
#include "lowbit_catch.hpp"
#include "lowbit-quantize/methods.hpp"
#include "lowbit-quantize/model_file.hpp"
#include "model/llama.hpp"
#include "model/sequential.hpp"
#include "test_data.hpp"

extern char** environ;

namespace fs = std::filesystem;
namespace lt = lowbit::tools;

namespace {

// ---------------------------------------------------------------- the tiny model and texts
constexpr int n_layer = 2, n_embd = 64, n_head = 4, n_head_kv = 2, n_ff = 96, n_vocab = 64;
constexpr float nan_f = std::numeric_limits<float>::quiet_NaN(), inf_f = std::numeric_limits<float>::infinity();

struct model_spec {
  float eps = 1e-5f;
  float rope_base = 10000.0f;
  bool untied_head = false;
  // Called on every tensor before it is written (name, values): where a test plants a fault.
  std::function<void(const std::string&, Eigen::MatrixXf&)> poke = [](const std::string&, Eigen::MatrixXf&) {};
};

std::vector<std::byte> tiny_gguf(const model_spec& spec = {}) {
  lowbit::io::gguf_writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", n_layer);
  w.set_u32("llama.embedding_length", n_embd);
  w.set_u32("llama.feed_forward_length", n_ff);
  w.set_u32("llama.attention.head_count", n_head);
  w.set_u32("llama.attention.head_count_kv", n_head_kv);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", spec.eps);
  w.set_f32("llama.rope.freq_base", spec.rope_base);
  const auto F32 = lowbit::io::gguf_type::f32;
  const int kv = n_head_kv * (n_embd / n_head);
  std::uint32_t k = 7000;
  auto matrix = [&](const std::string& name, Eigen::MatrixXf M) {
    spec.poke(name, M);
    w.add_matrix(name, M, F32);
  };
  auto norm = [&](const std::string& name) {
    Eigen::MatrixXf v = Eigen::MatrixXf::Ones(n_embd, 1) + lowbit_test::gaussian(n_embd, 1, ++k, 0.1f);
    spec.poke(name, v);
    w.add_vector(name, std::span<const float>(v.data(), static_cast<std::size_t>(v.size())));
  };
  auto mat = [&](int r, int c) { return lowbit_test::gaussian(r, c, ++k, 1.0f / std::sqrt(static_cast<float>(c))); };
  matrix("token_embd.weight", lowbit_test::gaussian(n_vocab, n_embd, ++k));
  for (int l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight");
    norm(p + "ffn_norm.weight");
    matrix(p + "attn_q.weight", mat(n_embd, n_embd));
    matrix(p + "attn_k.weight", mat(kv, n_embd));
    matrix(p + "attn_v.weight", mat(kv, n_embd));
    matrix(p + "attn_output.weight", mat(n_embd, n_embd));
    matrix(p + "ffn_gate.weight", mat(n_ff, n_embd));
    matrix(p + "ffn_up.weight", mat(n_ff, n_embd));
    matrix(p + "ffn_down.weight", mat(n_embd, n_ff));
  }
  norm("output_norm.weight");
  if (spec.untied_head) matrix("output.weight", mat(n_vocab, n_embd));
  return w.bytes();
}

void write_bytes(const fs::path& p, std::span<const std::byte> b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(out.good());
}
void write_text(const fs::path& p, const std::string& s) {
  write_bytes(p, std::as_bytes(std::span<const char>(s.data(), s.size())));
}
std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::int32_t> random_tokens(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, n_vocab - 1);
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = u(rng);
  return t;
}
void write_ids(const fs::path& p, const std::vector<std::int32_t>& ids) {
  write_bytes(p, std::as_bytes(std::span<const std::int32_t>(ids)));
}

// A fresh directory per case, removed afterwards, with a model and two texts in it.
struct workdir {
  fs::path dir;
  workdir() {
    std::string t = (fs::temp_directory_path() / "lowbit-faults-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    dir = t;
    write_bytes(model(), tiny_gguf());
    write_ids(calib(), random_tokens(16 * 8, 1));
    write_ids(eval(), random_tokens(16 * 8, 2));
  }
  ~workdir() {
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
    for (const auto& e : fs::recursive_directory_iterator(dir, ec))
      if (e.is_directory(ec)) fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir, ec);
  }
  fs::path operator/(const std::string& name) const { return dir / name; }
  fs::path model() const { return dir / "tiny.gguf"; }
  fs::path calib() const { return dir / "calib.ids"; }
  fs::path eval() const { return dir / "eval.ids"; }
  // The options of a fast run on the tiny model (before the case's own).
  std::vector<std::string> base() const {
    return {"--model", model().string(), "--calib", calib().string(), "--eval", eval().string(), "--ctx", "16",
            "--calib-windows", "2", "--held-out", "1", "--eval-tokens", "64", "--awq-windows", "1", "--group", "32",
            "--quiet"};
  }
  // Every file left in the directory whose name holds ".tmp-": a temporary a write left.
  std::vector<std::string> temporaries() const {
    std::vector<std::string> t;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().filename().string().find(".tmp-") != std::string::npos) t.push_back(e.path().string());
    return t;
  }
};

// ---------------------------------------------------------------- running the CLI
struct result {
  int exit_code = -1;  // the status, or -1 when a signal ended it
  int signal = 0;      // the signal that ended it
  bool timed_out = false;
  std::string out, err;
};

std::string tool_path() {
  if (const char* p = std::getenv("LOWBIT_FAULTS_TOOL"); p != nullptr && *p != '\0') return p;
  return LOWBIT_QUANTIZE_BIN;
}

// Runs the CLI with `args` (and extra environment entries), stdout and stderr captured,
// killed after `timeout` (a hang is a failure, not a stuck suite).
result run_tool(const workdir& w, std::vector<std::string> args, std::vector<std::string> env_extra = {},
                std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const fs::path out = w / ".stdout", err = w / ".stderr";
  std::vector<std::string> argv_s{tool_path()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
  env_s.insert(env_s.end(), env_extra.begin(), env_extra.end());
  env_s.emplace_back("LOWBIT_DATA=" + w.dir.string());  // never the repository's texts by accident
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0 || ::chdir(w.dir.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  result r;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const pid_t got = ::waitpid(pid, &status, WNOHANG);
    if (got == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  fs::remove(out);
  fs::remove(err);
  UNSCOPED_INFO("lowbit-quantize exit " << r.exit_code << " signal " << r.signal << (r.timed_out ? " (timed out)" : "")
                                        << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  return r;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Nothing happened: the run stopped at the options, before reading the model.
void require_no_work(const result& r) {
  CHECK_FALSE(contains(r.out, "perplexity"));
  CHECK_FALSE((r.err.rfind("model ", 0) == 0 || contains(r.err, "\nmodel ")));  // the line a run starts with
}

// A usage error: exit 2, the sentence on stderr, no work done.
void require_usage_error(const result& r, const std::string& sentence) {
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "lowbit-quantize: " + sentence));
  require_no_work(r);
}

mode_t lstat_mode(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode;
}

}  // namespace

// ---------------------------------------------------------------- #2: output = input
TEST_CASE("faults #2: --out naming the model (same path, ./path, hard link, symlink) is refused, the model intact",
          "[faults]") {
  workdir w;
  const std::string model_bytes = read_file(w.model());
  fs::create_hard_link(w.model(), w / "hard.gguf");
  fs::create_symlink(w.model(), w / "link.gguf");
  const std::vector<std::string> aliases{w.model().string(), "./tiny.gguf", "tiny.gguf",
                                         (w.dir / "sub" / ".." / "tiny.gguf").string(), (w / "hard.gguf").string(),
                                         (w / "link.gguf").string()};
  fs::create_directory(w / "sub");
  for (const auto& alias : aliases) {
    INFO("--out " << alias);
    const auto r = run_tool(w, w.base() + std::vector<std::string>{"--out", alias});
    CHECK(r.exit_code == 2);
    CHECK((contains(r.err, "is the same file as --model") || contains(r.err, "is a symbolic link")));
    require_no_work(r);
    CHECK(read_file(w.model()) == model_bytes);
    CHECK(S_ISREG(lstat_mode(w.model())));
    CHECK(S_ISLNK(lstat_mode(w / "link.gguf")));
  }
  // The model through a symlink as --model, written as --out under its real name.
  const auto r = run_tool(w, {"--model", (w / "link.gguf").string(), "--calib", w.calib().string(), "--eval",
                              w.eval().string(), "--ctx", "16", "--calib-windows", "2", "--held-out", "1", "--group",
                              "32", "--quiet", "--out", w.model().string()});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "is the same file as --model"));
  CHECK(read_file(w.model()) == model_bytes);
  CHECK(w.temporaries().empty());
}

TEST_CASE("faults #2: --out naming the calibration or evaluation text, or --csv naming --results, is refused",
          "[faults]") {
  workdir w;
  const std::string calib = read_file(w.calib()), eval = read_file(w.eval());
  auto r = run_tool(w, w.base() + std::vector<std::string>{"--out", "./calib.ids"});
  require_usage_error(r, "--out './calib.ids' is the same file as --calib");
  r = run_tool(w, w.base() + std::vector<std::string>{"--out", w.eval().string()});
  require_usage_error(r, "--out '" + w.eval().string() + "' is the same file as --eval");
  CHECK(read_file(w.calib()) == calib);
  CHECK(read_file(w.eval()) == eval);
  write_text(w / "t.md", "previous\n");
  r = run_tool(w, w.base() + std::vector<std::string>{"--sweep", "--sweep-methods", "rtn", "--sweep-bits", "4",
                                                      "--sweep-groups", "32", "--csv", "t.md", "--results", "./t.md"});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "is the same file as --results"));
  CHECK(read_file(w / "t.md") == "previous\n");
}

// ---------------------------------------------------------------- #3: links and nodes
TEST_CASE("faults #3: --out onto a symlink, a FIFO or a device node is refused and the node is left as it was",
          "[faults]") {
  workdir w;
  write_text(w / "previous.lowbit", "previous output\n");
  fs::create_symlink(w / "previous.lowbit", w / "link.lowbit");
  auto r = run_tool(w, w.base() + std::vector<std::string>{"--out", "link.lowbit"});
  require_usage_error(r, "--out 'link.lowbit' is a symbolic link");
  CHECK(S_ISLNK(lstat_mode(w / "link.lowbit")));
  CHECK(read_file(w / "previous.lowbit") == "previous output\n");

  REQUIRE(::mkfifo((w / "fifo").c_str(), 0644) == 0);
  r = run_tool(w, w.base() + std::vector<std::string>{"--out", "fifo"});
  require_usage_error(r, "--out 'fifo' is a FIFO, not a regular file");
  CHECK(S_ISFIFO(lstat_mode(w / "fifo")));

  fs::create_directory(w / "adir");
  r = run_tool(w, w.base() + std::vector<std::string>{"--out", "adir"});
  require_usage_error(r, "--out 'adir' is a directory, not a regular file");

  // A character device: as root a private copy of /dev/null (mknod; never the real one, which
  // a broken build would replace), otherwise /dev/null itself (no permission to replace it).
  // (A root without CAP_MKNOD skips this part.)
  const bool root = ::geteuid() == 0;
  const std::string dev = root ? (w / "null").string() : std::string("/dev/null");
  if (!root || ::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    r = run_tool(w, w.base() + std::vector<std::string>{"--out", dev});
    require_usage_error(r, "--out '" + dev + "' is a character device, not a regular file");
    CHECK(S_ISCHR(lstat_mode(dev)));
  }
  CHECK(w.temporaries().empty());
}

TEST_CASE("faults #3: write_file_atomic refuses to replace a symlink or a FIFO", "[faults]") {
  workdir w;
  write_text(w / "target", "kept\n");
  fs::create_symlink(w / "target", w / "link");
  const std::string b = "new";
  const auto bytes = std::as_bytes(std::span<const char>(b.data(), b.size()));
  REQUIRE_THROWS_WITH(lowbit::io::write_file_atomic((w / "link").string(), bytes), Catch::Contains("is a symbolic link"));
  CHECK(S_ISLNK(lstat_mode(w / "link")));
  CHECK(read_file(w / "target") == "kept\n");
  REQUIRE(::mkfifo((w / "fifo").c_str(), 0644) == 0);
  REQUIRE_THROWS_WITH(lowbit::io::write_file_atomic((w / "fifo").string(), bytes), Catch::Contains("is a FIFO"));
  CHECK(S_ISFIFO(lstat_mode(w / "fifo")));
  lowbit::io::write_file_atomic((w / "target").string(), bytes);  // a regular file is replaced
  CHECK(read_file(w / "target") == "new");
  CHECK(w.temporaries().empty());
}

// ---------------------------------------------------------------- #4: output directory
TEST_CASE("faults #4: a missing or unwritable output directory fails before any work", "[faults]") {
  workdir w;
  auto r = run_tool(w, w.base() + std::vector<std::string>{"--out", "missing/q.lowbit"});
  require_usage_error(r, "--out 'missing/q.lowbit': its directory 'missing' does not exist");
  CHECK_FALSE(fs::exists(w / "missing"));

  // Unwritable: a read-only directory (root ignores permission bits: /proc takes no files).
  std::string ro = "/proc";
  if (::geteuid() != 0) {
    fs::create_directory(w / "ro");
    fs::permissions(w / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    ro = (w / "ro").string();
  }
  r = run_tool(w, w.base() + std::vector<std::string>{"--out", ro + "/q.lowbit"});
  require_usage_error(r, "--out '" + ro + "/q.lowbit': cannot create files in its directory '" + ro + "'");
  r = run_tool(w, w.base() + std::vector<std::string>{"--sweep", "--sweep-methods", "rtn", "--sweep-bits", "4",
                                                      "--sweep-groups", "32", "--csv", ro + "/r.csv", "--results",
                                                      "r.md"});
  require_usage_error(r, "--csv '" + ro + "/r.csv': cannot create files in its directory");
  CHECK_FALSE(fs::exists(w / "r.md"));
}

TEST_CASE("faults #4: --export gptq|awq checks its folder and options before any work, then writes it whole",
          "[faults]") {
  workdir w;
  auto with = [&](std::vector<std::string> extra) {
    auto a = w.base();
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto r = run_tool(w, with({"--export", "gptq"}));
  require_usage_error(r, "--export gptq writes a Hugging Face folder: give --out DIR");
  require_usage_error(run_tool(w, with({"--export", "awq", "--bits", "3", "--out", "m"})),
                      "--export awq: AutoAWQ's GEMM layout holds 4-bit codes (got --bits 3)");
  require_usage_error(run_tool(w, with({"--export", "gptq", "--method", "spqr", "--out", "m"})),
                      "--export gptq takes --method rtn, gptq, awq or awq-gptq (got 'spqr')");
  require_usage_error(run_tool(w, with({"--export", "gptq", "--axis", "ic", "--out", "m"})),
                      "--export gptq groups along the input dimension: use --axis oc");
  require_usage_error(run_tool(w, with({"--gguf-fit", "weighted"})), "--gguf-fit goes with --export gguf");
  {
    auto a = w.base();  // without its --group: a GGUF type fixes the groups
    const auto g = std::find(a.begin(), a.end(), "--group");
    REQUIRE(g != a.end());
    a.erase(g, g + 2);
    for (const char* x : {"--export", "gguf", "--type", "Q4_0", "--gguf-fit", "search", "--out", "m.gguf"}) a.push_back(x);
    require_usage_error(run_tool(w, a), "--gguf-fit search runs inside GPTQ: it needs --method gptq");
  }
  fs::create_directory(w / "taken");
  require_usage_error(run_tool(w, with({"--export", "gptq", "--out", "taken"})),
                      "--out 'taken' exists; --export gptq writes a new folder");
  r = run_tool(w, with({"--export", "gptq", "--out", "missing/m"}));
  require_usage_error(r, "--out 'missing/m': the folder ");
  CHECK(contains(r.err, "missing does not exist or cannot be written"));
  CHECK_FALSE(fs::exists(w / "m"));

  r = run_tool(w, with({"--export", "gptq", "--method", "rtn", "--bits", "3", "--out", "m"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* f : {"config.json", "model.safetensors", "quantize_config.json"}) CHECK(fs::is_regular_file(w / "m" / f));
  CHECK_FALSE(fs::exists(w / "m" / "tokenizer.json"));  // the tiny GGUF has no tokenizer keys
  CHECK(contains(r.out, "perplexity of m as written (read back from its files)"));
  CHECK(w.temporaries().empty());
}

// ---------------------------------------------------------------- #5: finiteness
TEST_CASE("faults #5: NaN/Inf in the embedding, a norm, the head, eps or the RoPE base is refused, naming it",
          "[faults]") {
  struct fault {
    const char* what;
    model_spec spec;
    std::string named;
  };
  auto poke = [](std::string tensor, float v, int r, int c) {
    return [=](const std::string& name, Eigen::MatrixXf& M) {
      if (name == tensor) M(r, c) = v;
    };
  };
  std::vector<fault> faults;
  faults.push_back({"embedding", {}, "tensor 'token_embd.weight' element (5, 3) is nan"});
  faults.back().spec.poke = poke("token_embd.weight", nan_f, 5, 3);
  faults.push_back({"attention norm", {}, "tensor 'blk.1.attn_norm.weight' element (7, 0) is inf"});
  faults.back().spec.poke = poke("blk.1.attn_norm.weight", inf_f, 7, 0);
  faults.push_back({"output norm", {}, "tensor 'output_norm.weight' element (0, 0) is -inf"});
  faults.back().spec.poke = poke("output_norm.weight", -inf_f, 0, 0);
  faults.push_back({"untied head", {}, "tensor 'output.weight' element (2, 9) is nan"});
  faults.back().spec.untied_head = true;
  faults.back().spec.poke = poke("output.weight", nan_f, 2, 9);
  faults.push_back({"a linear", {}, "tensor 'blk.0.ffn_down.weight' element (1, 1) is nan"});
  faults.back().spec.poke = poke("blk.0.ffn_down.weight", nan_f, 1, 1);
  faults.push_back({"eps = inf", {}, "llama.attention.layer_norm_rms_epsilon is inf"});
  faults.back().spec.eps = inf_f;
  faults.push_back({"rope base = nan", {}, "llama.rope.freq_base is nan"});
  faults.back().spec.rope_base = nan_f;
  for (const auto& f : faults) {
    INFO(f.what);
    workdir w;
    write_bytes(w.model(), tiny_gguf(f.spec));
    const auto r = run_tool(w, w.base() + std::vector<std::string>{"--out", "q.lowbit"});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "lowbit-quantize: GGUF file '" + w.model().string() + "': " + f.named));
    CHECK_FALSE(contains(r.out, "perplexity"));
    CHECK_FALSE(fs::exists(w / "q.lowbit"));
    CHECK(w.temporaries().empty());
  }
}

TEST_CASE("faults #5: a .lowbit file with a NaN AWQ input_scale or norm is refused by --load, naming the tensor",
          "[faults]") {
  workdir w;
  // The tiny model, RTN-quantized here, written with a planted fault the loader must find.
  auto m = lt::llama_model::from_gguf(lowbit::io::gguf_file::open(w.model().string()));
  lt::method_options o;
  o.bits = 4;
  o.group = 32;
  lt::sequential_options so;
  so.window = 16;
  so.progress = false;
  lt::quantize_sequential(m, random_tokens(16 * 3, 4), lt::make_method("rtn", o), so);
  const std::map<std::string, std::string> meta{{"method", "rtn"}, {"label", "rtn"}, {"bits", "4"}, {"group", "32"},
                                                {"axis", "oc"}};
  {
    auto wr = lt::model_writer(m, meta);
    Eigen::MatrixXf scale = Eigen::MatrixXf::Ones(n_embd, 1);
    scale(3, 0) = nan_f;
    wr.add_tensor("blk.0.attn_q.input_scale", scale);  // what AWQ writes, with a NaN
    write_bytes(w / "scale.lowbit", wr.bytes());
  }
  m.blocks[1].ffn_norm(4) = inf_f;
  write_bytes(w / "norm.lowbit", lt::model_writer(m, meta).bytes());
  const std::vector<std::string> load{"--model", w.model().string(), "--eval", w.eval().string(), "--ctx", "16",
                                      "--eval-tokens", "64", "--skip-float", "--quiet", "--load"};
  auto r = run_tool(w, load + std::vector<std::string>{"scale.lowbit"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "lowbit-quantize: lowbit file 'scale.lowbit': tensor 'blk.0.attn_q.input_scale' element (3, 0) is nan"));
  CHECK_FALSE(contains(r.out, "perplexity"));
  r = run_tool(w, load + std::vector<std::string>{"norm.lowbit"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "lowbit-quantize: lowbit file 'norm.lowbit': tensor 'blk.1.ffn_norm.weight' element (4, 0) is inf"));
}

// ---------------------------------------------------------------- #6: the sweep
namespace {
std::vector<std::string> sweep_args(const workdir& w) {
  return w.base() + std::vector<std::string>{"--sweep", "--sweep-methods", "rtn", "--sweep-bits", "4", "--sweep-groups",
                                             "32", "--csv", (w / "r.csv").string(), "--results", (w / "r.md").string()};
}
}  // namespace

TEST_CASE("faults #6: a sweep resumes on contents: a calibration file changed under the same name reruns its rows",
          "[faults]") {
  workdir w;
  auto r = run_tool(w, sweep_args(w));
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "--sweep: 2 rows listed, 2 to run"));
  const std::string first = read_file(w / "r.csv");
  r = run_tool(w, sweep_args(w));  // nothing changed: every row kept
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "--sweep: 2 rows listed, 0 to run"));
  // The same name, other contents: the rows were calibrated on text that is gone.
  write_ids(w.calib(), random_tokens(16 * 8, 99));
  r = run_tool(w, sweep_args(w));
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "made with another protocol"));
  CHECK(contains(r.err, "--sweep: 2 rows listed, 2 to run"));
  // A renamed but identical model is the same protocol: names are not compared.
  fs::rename(w.model(), w / "renamed.gguf");
  auto args = sweep_args(w);
  args[1] = (w / "renamed.gguf").string();
  r = run_tool(w, args);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "--sweep: 2 rows listed, 0 to run"));
  CHECK_FALSE(first.empty());
}

TEST_CASE("faults #6: a sweep on a CSV another sweep holds stops at once and leaves the CSV alone", "[faults]") {
  workdir w;
  write_text(w / "r.csv", "previous rows\n");
  const int fd = ::open((w / "r.csv.lock").c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);  // "another sweep"
  auto r = run_tool(w, sweep_args(w));
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "lowbit-quantize: --csv '" + (w / "r.csv").string() + "' is in use by another sweep"));
  CHECK_FALSE(contains(r.out, "perplexity"));
  CHECK(read_file(w / "r.csv") == "previous rows\n");
  CHECK_FALSE(fs::exists(w / "r.md"));
  ::close(fd);  // released: now the sweep runs
  r = run_tool(w, sweep_args(w));
  CHECK(r.exit_code == 0);
  CHECK(contains(read_file(w / "r.csv"), "rtn,4,32,oc,"));
}

// ---------------------------------------------------------------- #7: numbers
TEST_CASE("faults #7: every number is parsed strictly, within its range, with one message shape", "[faults]") {
  workdir w;
  struct bad {
    std::vector<std::string> args;
    std::string sentence;
  };
  const std::vector<bad> cases{
      {{"--ctx", "4611686018427387904"}, "--ctx expects an integer from 2 to 65536, got '4611686018427387904'"},
      {{"--ctx", "16x"}, "--ctx expects an integer from 2 to 65536, got '16x'"},
      {{"--ctx", " 16"}, "--ctx expects an integer from 2 to 65536, got ' 16'"},
      {{"--ctx", "+16"}, "--ctx expects an integer from 2 to 65536, got '+16'"},
      {{"--calib-windows", "9223372036854775807"}, "--calib-windows expects an integer from 1 to 1048576, got '9223372036854775807'"},
      {{"--held-out", "-1"}, "--held-out expects an integer from 0 to 1048576, got '-1'"},
      {{"--awq-windows", "9223372036854775806"}, "--awq-windows expects an integer from 1 to 1048576, got '9223372036854775806'"},
      {{"--awq-windows", "0"}, "--awq-windows expects an integer from 1 to 1048576, got '0'"},
      {{"--eval-tokens", "1e3"}, "--eval-tokens expects an integer from 0 to 1099511627776, got '1e3'"},
      {{"--bits", "4294967300"}, "--bits expects one of 2, 3, 4, 8, got '4294967300'"},
      {{"--group", "4294967424"}, "--group expects an integer from 0 to 65536, got '4294967424'"},
      {{"--threads", "-1"}, "--threads expects an integer from 0 to 1024, got '-1'"},
      {{"--threads", "4294967297"}, "--threads expects an integer from 0 to 1024, got '4294967297'"},
      {{"--outlier-threshold", "nan"}, "--outlier-threshold expects a number from 0 to inf, got 'nan'"},
      {{"--out", ""}, "--out expects a file name, got ''"},
      {{"--model", ""}, "--model expects a file name, got ''"},
      {{"--sweep", "--sweep-bits", ","}, "--sweep-bits expects a comma-separated list, got ','"},
      {{"--sweep", "--sweep-bits", "4,4294967300"}, "--sweep-bits expects one of 2, 3, 4, 8, got '4294967300'"},
      {{"--awq-stats", "some"}, "--awq-stats some: expected all or search"},
      {{"--awq-inputs", "fp16"}, "--awq-inputs fp16: expected float or quantized"},
      {{"--method", "rtn", "--act-order"}, "--act-order is GPTQ's column order (got --method rtn)"},
      {{"--sweep", "--act-order"}, "--sweep adds act-order rows with --sweep-act-order, not --act-order"},
      {{"--sweep-act-order"}, "--sweep-act-order needs --sweep"},
  };
  for (const auto& c : cases) {
    INFO(c.sentence);
    const auto r = run_tool(w, w.base() + c.args, {}, std::chrono::seconds(20));
    CHECK_FALSE(r.timed_out);
    require_usage_error(r, c.sentence);
  }
  CHECK(w.temporaries().empty());
}

TEST_CASE("faults #7: an unsupported --group lists only the sizes this build has", "[faults]") {
  workdir w;
  struct bad {
    std::string method, group;
  };
#if defined(LOWBIT_TOOLS_FEW_FORMATS)
  // The reduced format set (the sanitizer build): spqr has 16 only, the others 32 and 128.
  const std::vector<bad> cases{{"spqr", "32"}, {"spqr", "48"}, {"rtn", "64"}, {"awq", "0"}, {"gptq", "256"}};
#else
  const std::vector<bad> cases{{"spqr", "0"}, {"spqr", "48"}, {"rtn", "48"}, {"owq", "16"}};
#endif
  for (const auto& c : cases) {
    INFO("--method " << c.method << " --group " << c.group);
    const auto r = run_tool(w, w.base() + std::vector<std::string>{"--method", c.method, "--group", c.group});
    require_usage_error(r, "--group expects one of ");
    CHECK(contains(r.err, "for --method " + c.method));
    CHECK(contains(r.err, ", got '" + c.group + "'"));
    // The list between "one of " and " for --method" never holds the size it refused.
    const auto b = r.err.find("one of ") + 7, e = r.err.find(" for --method");
    REQUIRE(e != std::string::npos);
    std::string list = r.err.substr(b, e - b);
    list = list.substr(0, list.find(" ("));
    std::stringstream ls(list);
    for (std::string x; std::getline(ls, x, ',');) CHECK(std::stoi(x) != std::stoi(c.group));
  }
}

TEST_CASE("faults #7: --sweep-spqr-groups sets SpQR's beta1 rows, and refuses a size the build lacks", "[faults]") {
  workdir w;
  auto args = w.base() + std::vector<std::string>{"--sweep", "--sweep-methods", "spqr", "--sweep-bits", "3", "--csv",
                                                  (w / "r.csv").string(), "--results", (w / "r.md").string()};
  auto with = [&](std::vector<std::string> extra) {
    auto a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  // --sweep-groups is not SpQR's beta1: it leaves the spqr row at 16.
  auto r = run_tool(w, with({"--sweep-groups", "64"}));
  REQUIRE(r.exit_code == 0);
  CHECK(contains(read_file(w / "r.csv"), "\nspqr,3,16,oc,"));
  CHECK_FALSE(contains(read_file(w / "r.csv"), "\nspqr,3,64,oc,"));
#if defined(LOWBIT_TOOLS_FEW_FORMATS)
  // The reduced build says why the list is short.
  r = run_tool(w, with({"--sweep-spqr-groups", "32"}));
  require_usage_error(r, "--sweep-spqr-groups expects one of 16 for --method spqr in this build");
  CHECK(contains(r.err, ", got '32'"));
#else
  r = run_tool(w, with({"--sweep-spqr-groups", "16,32"}));
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "--sweep: 2 rows listed, 1 to run"));  // the 16 row is kept
  CHECK(contains(read_file(w / "r.csv"), "\nspqr,3,32,oc,"));
  require_usage_error(run_tool(w, with({"--sweep-spqr-groups", "16,8"})),
                      "--sweep-spqr-groups expects one of 16, 32, 64, 128 for --method spqr, got '8'");
#endif
}

// ---------------------------------------------------------------- #8: interrupted writes
TEST_CASE("faults #8: SIGTERM or SIGINT during a write removes the temporary and keeps the previous output",
          "[faults]") {
  workdir w;
  write_text(w / "q.lowbit", "previous output\n");
  for (int sig : {SIGTERM, SIGINT}) {
    INFO("signal " << sig);
    const auto r = run_tool(w, w.base() + std::vector<std::string>{"--skip-float", "--out", "q.lowbit"},
                            {"LOWBIT_QUANTIZE_RAISE_BEFORE_COMMIT=" + std::to_string(sig)});
    CHECK(r.signal == sig);  // the handler re-raised it: the status still says which signal
    CHECK(w.temporaries().empty());
    CHECK(read_file(w / "q.lowbit") == "previous output\n");
  }
  // The sweep's tables, the same.
  write_text(w / "r.csv", "previous rows\n");
  const auto r = run_tool(w, sweep_args(w), {"LOWBIT_QUANTIZE_RAISE_BEFORE_COMMIT=" + std::to_string(SIGTERM)});
  CHECK(r.signal == SIGTERM);
  CHECK(w.temporaries().empty());
  CHECK(read_file(w / "r.csv") == "previous rows\n");
  // Without the fault the same run writes the file.
  const auto ok = run_tool(w, w.base() + std::vector<std::string>{"--skip-float", "--out", "q.lowbit"});
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.out, "loaded back bit-exactly"));
  CHECK(read_file(w / "q.lowbit") != "previous output\n");
  CHECK(w.temporaries().empty());
}

TEST_CASE("faults #8: remove_pending_temporaries unlinks exactly the temporaries in flight", "[faults]") {
  workdir w;
  const std::string b = "bytes";
  const auto bytes = std::as_bytes(std::span<const char>(b.data(), b.size()));
  {
    lowbit::io::atomic_file_writer a((w / "a").string()), c((w / "c").string());
    a.write(bytes);
    c.write(bytes);
    REQUIRE(w.temporaries().size() == 2);
    c.commit();  // committed: no longer pending
    REQUIRE(w.temporaries().size() == 1);
    lowbit::io::remove_pending_temporaries();  // what the signal handler calls
    CHECK(w.temporaries().empty());
    CHECK(read_file(w / "c") == "bytes");
  }
  CHECK_FALSE(fs::exists(w / "a"));
  // The registry is free again: a later write works and leaves nothing behind.
  lowbit::io::write_file_atomic((w / "a").string(), bytes);
  CHECK(read_file(w / "a") == "bytes");
  CHECK(w.temporaries().empty());
}
