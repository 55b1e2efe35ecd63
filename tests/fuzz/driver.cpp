// A bounded random-mutation driver for the LLVMFuzzerTestOneInput targets in this folder,
// used where libFuzzer cannot build them (clang < 18 rejects the float template parameters of
// policy/scale_search.hpp, and g++ has no -fsanitize=fuzzer). Not coverage-guided: it replays
// every seed, then applies random mutations (bit flips, byte sets, inserts, deletes,
// truncations, splices, interesting integers) to random seeds until the time is up. Built with
// ASan + UBSan, so a crash, an out-of-bounds access or undefined behaviour fails the run.
//   <target>_driver <seconds> <corpus dir>...
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>
#if __has_include(<sanitizer/common_interface_defs.h>)
#include <sanitizer/common_interface_defs.h>
#define LOWBIT_DRIVER_DEATH_CALLBACK 1
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
using bytes = std::vector<std::uint8_t>;
constexpr std::size_t max_len = 4096;

// The input being run, written to <program>-crash when a sanitizer kills the process.
const bytes* current = nullptr;
std::string crash_path;
void dump_current() {
  if (current == nullptr) return;
  std::ofstream(crash_path, std::ios::binary).write(reinterpret_cast<const char*>(current->data()),
                                                    static_cast<std::streamsize>(current->size()));
  std::fprintf(stderr, "fuzz driver: the failing input is in %s\n", crash_path.c_str());
}

void mutate(bytes& b, const std::vector<bytes>& seeds, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n == 0 ? std::size_t{0} : static_cast<std::size_t>(rng() % n); };
  const int steps = 1 + static_cast<int>(rng() % 4);
  for (int s = 0; s < steps; ++s) {
    switch (rng() % 8) {
      case 0:
        if (!b.empty()) b[pick(b.size())] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        break;
      case 1:
        if (!b.empty()) b[pick(b.size())] = static_cast<std::uint8_t>(rng());
        break;
      case 2:
        if (b.size() < max_len) b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size() + 1)), static_cast<std::uint8_t>(rng()));
        break;
      case 3:
        if (!b.empty()) {
          const std::size_t at = pick(b.size()), n = 1 + pick(std::min<std::size_t>(16, b.size() - at));
          b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), at + n)));
        }
        break;
      case 4:
        b.resize(pick(b.size() + 1));
        break;
      case 5: {  // splice: a slice of another seed over a random place
        const bytes& o = seeds[pick(seeds.size())];
        if (o.empty() || b.empty()) break;
        const std::size_t from = pick(o.size()), to = pick(b.size());
        const std::size_t n = std::min({o.size() - from, b.size() - to, std::size_t{1} + pick(64)});
        std::copy_n(o.begin() + static_cast<std::ptrdiff_t>(from), n, b.begin() + static_cast<std::ptrdiff_t>(to));
        break;
      }
      default: {  // an interesting little-endian integer (lengths, counts, offsets)
        static constexpr std::uint64_t values[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff,
                                                   0x100000000ull, 0x7fffffffffffffffull, ~0ull};
        const std::uint64_t v = values[pick(std::size(values))];
        const std::size_t width = std::size_t{1} << pick(4);
        if (b.size() < width) break;
        const std::size_t at = pick(b.size() - width + 1);
        for (std::size_t k = 0; k < width; ++k) b[at + k] = static_cast<std::uint8_t>(v >> (8 * k));
      }
    }
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <seconds> <corpus dir>...\n", argv[0]);
    return 2;
  }
  const double seconds = std::atof(argv[1]);
  crash_path = std::string(argv[0]) + "-crash";
#if defined(LOWBIT_DRIVER_DEATH_CALLBACK)
  __sanitizer_set_death_callback(dump_current);
#endif
  std::signal(SIGABRT, [](int) { dump_current(); });  // a target's property check failed
  std::vector<bytes> seeds;
  for (int i = 2; i < argc; ++i) {
    if (!std::filesystem::is_directory(argv[i])) continue;
    for (const auto& e : std::filesystem::directory_iterator(argv[i])) {
      std::ifstream in(e.path(), std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (seeds.empty()) seeds.emplace_back();
  for (const auto& s : seeds) {
    current = &s;
    LLVMFuzzerTestOneInput(s.data(), s.size());
  }
  std::mt19937_64 rng(0x10b17);  // fixed: a failure reproduces
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  long runs = 0;
  while (std::chrono::steady_clock::now() < end) {
    for (int k = 0; k < 64; ++k, ++runs) {
      bytes b = seeds[static_cast<std::size_t>(rng() % seeds.size())];
      mutate(b, seeds, rng);
      current = &b;
      LLVMFuzzerTestOneInput(b.data(), b.size());
    }
  }
  current = nullptr;
  std::printf("%s: %zu seeds, %ld mutated inputs in %.0f s, no failure\n", argv[0], seeds.size(), runs, seconds);
  return 0;
}
