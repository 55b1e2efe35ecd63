#pragma once
// What every CPU benchmark of lowbit measures the same way, so their numbers compare:
// the median of repeated calls, the last-level cache size, and the machine's read ceiling
// (performance.md: a kernel is judged by the fraction of this ceiling it reaches, measured in
// the same process).
#include <lowbit/core/parallel.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <unistd.h>
#include <vector>

namespace lowbit::bench {

// Median wall time of fn() in microseconds, after one warm-up call (the median, not the
// mean: a shared machine's stalls land in the tail).
inline double median_us(int reps, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
  }
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

// The largest cache level sysfs reports for cpu0 (the L3 on x86), else sysconf, else 32 MiB.
inline std::size_t llc_bytes() {
  for (int i = 4; i >= 0; --i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string s;
    if (f >> s && !s.empty()) {
      std::size_t v = std::stoul(s);
      if (s.back() == 'K') v <<= 10;
      if (s.back() == 'M') v <<= 20;
      return v;
    }
  }
#if defined(_SC_LEVEL3_CACHE_SIZE)
  const long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (v > 0) return static_cast<std::size_t>(v);
#endif
  return std::size_t{32} << 20;
}

// How many copies of a `bytes`-sized operand a bench cycles through so that consecutive
// calls never find their weights in cache: at least two, spanning >= 4x the LLC. (A matrix
// smaller than the LLC is otherwise timed at cache speed, and even one twice its size
// partly hits a victim L3 such as Zen's when the same buffer is re-read.)
inline std::size_t cache_cold_copies(std::size_t bytes) {
  const std::size_t span = 4 * llc_bytes();
  return bytes == 0 ? 1 : std::max<std::size_t>(2, (span + bytes - 1) / bytes);
}

// Bytes the read ceiling streams: 4x the LLC and at least 256 MiB, so no pass hits cache.
inline std::size_t ceiling_buffer_bytes() { return std::max<std::size_t>(4 * llc_bytes(), std::size_t{256} << 20); }

// The read ceiling in GB/s: every thread of lowbit's pool sums its contiguous slice of the
// buffer with 8 independent accumulators, so the loop is bound by loads, not by adds.
// us_out receives the median time of one pass.
inline double read_ceiling_gbps(int reps, double& us_out) {
  const std::size_t bytes = ceiling_buffer_bytes();
  std::vector<std::uint64_t> buf(bytes / 8);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  std::atomic<std::uint64_t> sink{0};
  us_out = median_us(reps, [&] {
    parallel_for(static_cast<index>(buf.size()), 1 << 16, [&](index b, index e) {
      std::uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      index i = b;
      for (; i + 8 <= e; i += 8)
        for (int k = 0; k < 8; ++k) a[k] += buf[static_cast<std::size_t>(i + k)];
      for (; i < e; ++i) a[0] += buf[static_cast<std::size_t>(i)];
      sink += std::accumulate(a, a + 8, std::uint64_t{0});
    });
  });
  return static_cast<double>(bytes) / us_out / 1e3;
}

}  // namespace lowbit::bench
