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

// The machine's read ceiling, measured as the best of several read loops over a buffer
// of ceiling_buffer_bytes() (issue #20: one loop underestimated the machine: Eigen's fp32
// GEMV read faster than it). Each loop sums the buffer with independent accumulators, so it
// is bound by loads, not adds:
//   chunks        lowbit's parallel_for chunks (what the kernels run on), 8 scalar sums;
//   per_thread    one contiguous slice per thread (the longest streams for the prefetcher);
//   multi_stream  each slice read as 4 interleaved streams (more open DRAM pages);
//   wide          per-thread slices with 64-byte vector loads (GCC/clang vector extensions:
//                 the widest loads the bench's flags allow).
// best_gbps is the maximum; benches raise it further to any dense kernel measured faster in
// the same run (raise()), so no fraction of it can exceed 1 by construction.
struct read_ceiling {
  struct loop {
    const char* name;
    double us, gbps;
  };
  std::vector<loop> loops;
  double best_gbps = 0.0;
  std::string best_name;
  // A dense kernel that read `gbps` in the same run: the ceiling is at least that.
  void raise(double gbps, const std::string& by) {
    if (gbps > best_gbps) {
      best_gbps = gbps;
      best_name = by;
    }
  }
};

inline read_ceiling measure_read_ceiling(int reps) {
  const std::size_t bytes = ceiling_buffer_bytes();
  using v8 = std::uint64_t __attribute__((vector_size(64)));
  std::vector<v8> vbuf(bytes / sizeof(v8));
  std::uint64_t* buf = reinterpret_cast<std::uint64_t*>(vbuf.data());
  const std::size_t n = bytes / 8;
  for (std::size_t i = 0; i < n; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  const index threads = static_cast<index>(num_threads());
  std::atomic<std::uint64_t> sink{0};
  auto sum8 = [&](index b, index e) {
    std::uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    index i = b;
    for (; i + 8 <= e; i += 8)
      for (int k = 0; k < 8; ++k) a[k] += buf[static_cast<std::size_t>(i + k)];
    for (; i < e; ++i) a[0] += buf[static_cast<std::size_t>(i)];
    sink += std::accumulate(a, a + 8, std::uint64_t{0});
  };
  read_ceiling rc;
  auto time = [&](const char* name, const std::function<void()>& pass) {
    const double us = median_us(reps, pass);
    const double gbps = static_cast<double>(bytes) / us / 1e3;
    rc.loops.push_back({name, us, gbps});
    rc.raise(gbps, name);
  };
  const index N = static_cast<index>(n);
  time("chunks", [&] { parallel_for(N, 1 << 16, sum8); });
  // One task per thread: grain = a thread's share (parallel_for's split depends on n and grain only).
  const index share = (N + threads - 1) / threads;
  time("per_thread", [&] { parallel_for(N, share, sum8); });
  time("multi_stream", [&] {
    parallel_for(N, share, [&](index b, index e) {
      const index q = (e - b) / 4;
      std::uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (index i = 0; i + 2 <= q; i += 2)
        for (int s = 0; s < 4; ++s) {
          a[2 * s] += buf[static_cast<std::size_t>(b + s * q + i)];
          a[2 * s + 1] += buf[static_cast<std::size_t>(b + s * q + i + 1)];
        }
      for (index i = b + 4 * q; i < e; ++i) a[0] += buf[static_cast<std::size_t>(i)];
      sink += std::accumulate(a, a + 8, std::uint64_t{0});
    });
  });
  const index V = static_cast<index>(vbuf.size());
  time("wide", [&] {
    parallel_for(V, (V + threads - 1) / threads, [&](index b, index e) {
      v8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
      index i = b;
      for (; i + 4 <= e; i += 4) {
        a0 += vbuf[static_cast<std::size_t>(i)];
        a1 += vbuf[static_cast<std::size_t>(i + 1)];
        a2 += vbuf[static_cast<std::size_t>(i + 2)];
        a3 += vbuf[static_cast<std::size_t>(i + 3)];
      }
      for (; i < e; ++i) a0 += vbuf[static_cast<std::size_t>(i)];
      const v8 t = a0 + a1 + a2 + a3;
      std::uint64_t x = 0;
      for (int k = 0; k < 8; ++k) x += t[k];
      sink += x;
    });
  });
  return rc;
}

// The best read loop in GB/s (us_out: that loop's median pass).
inline double read_ceiling_gbps(int reps, double& us_out) {
  const read_ceiling rc = measure_read_ceiling(reps);
  us_out = 0.0;
  for (const auto& l : rc.loops)
    if (l.gbps == rc.best_gbps) us_out = l.us;
  return rc.best_gbps;
}

}  // namespace lowbit::bench
