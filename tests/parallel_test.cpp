// The parallel loop layer (core/parallel.hpp): the built-in pool must run every task of
// every job exactly once, even when jobs follow each other back to back (the race of
// issue #15: a worker still finishing job k read job k+1's state and ran a task twice, or
// the pool hung); exceptions reach the caller; nested loops run inline; and the split of a
// loop into chunks, hence every result, is the same for any thread count and any executor.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit_catch.hpp"

namespace {

using index = std::ptrdiff_t;

// Restores the built-in pool of the machine's size when a test case leaves.
struct pool_guard {
  ~pool_guard() {
    lowbit::set_executor({});
    lowbit::set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
  }
};

// Runs f on another thread; a hang past `limit` fails the whole test program at once (a hung
// pool cannot be joined, and a test that hangs CI tells nobody what broke).
template <class F>
void within(std::chrono::seconds limit, const char* what, F&& f) {
  auto done = std::async(std::launch::async, std::forward<F>(f));
  if (done.wait_for(limit) == std::future_status::timeout) {
    std::fprintf(stderr, "parallel_test: '%s' did not finish within %lld s: the pool hung\n", what,
                 static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  done.get();
}

// Many short jobs back to back, each of a different size; every task counts its runs. The
// environment variable LOWBIT_STRESS_JOBS raises the count (the TSan run in scripts/test
// uses 1000 iterations of the whole case).
std::size_t stress_jobs() {
  if (const char* v = std::getenv("LOWBIT_STRESS_JOBS")) return static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
  return 20000;
}

// A task that lasts long enough (~a microsecond) for the workers to wake and take part.
void busy(index t) {
  volatile index sink = 0;
  for (index i = 0; i < 200 + 50 * (t % 3); ++i) sink = sink + i;
}

// Returns how many distinct threads ran tasks (the pool must really be exercised).
std::size_t back_to_back_jobs(std::size_t jobs) {
  std::vector<std::atomic<int>> runs(64);
  std::mutex m;
  std::set<std::thread::id> threads;
  for (std::size_t j = 0; j < jobs; ++j) {
    const index n = 2 + static_cast<index>(j % 23);
    for (index t = 0; t < n; ++t) runs[static_cast<std::size_t>(t)].store(0, std::memory_order_relaxed);
    const bool slow = j % 2 == 0;  // alternate long and instant jobs: both sides of the race
    lowbit::parallel_for(n, 1, [&](index b, index e) {
      for (index t = b; t < e; ++t) {
        if (slow) busy(t);
        runs[static_cast<std::size_t>(t)].fetch_add(1, std::memory_order_relaxed);
      }
      if (j % 64 == 0) {
        std::lock_guard<std::mutex> lk(m);
        threads.insert(std::this_thread::get_id());
      }
    });
    for (index t = 0; t < n; ++t) {
      const int r = runs[static_cast<std::size_t>(t)].load(std::memory_order_relaxed);
      if (r != 1) {
        FAIL("job " << j << " (" << n << " indices): index " << t << " ran " << r << " times");
      }
    }
  }
  return threads.size();
}

}  // namespace

TEST_CASE("parallel: back-to-back jobs run every index exactly once and never hang") {
  pool_guard restore;
  for (unsigned threads : {2u, 3u, 8u}) {
    lowbit::set_num_threads(threads);
    INFO("threads " << threads);
    std::size_t used = 0;
    within(std::chrono::seconds(120), "back-to-back jobs", [&] { used = back_to_back_jobs(stress_jobs()); });
    CHECK(used >= 2);  // workers took tasks, not only the submitting thread
  }
}

TEST_CASE("parallel: a job started right after a job whose tasks are slow to finish") {
  // Workers still leaving job k while job k+1 is set up: the longer the tail of job k, the
  // wider the window of the old race.
  pool_guard restore;
  lowbit::set_num_threads(4);
  within(std::chrono::seconds(120), "slow tails", [] {
    std::atomic<long> sum{0};
    for (int j = 0; j < 2000; ++j) {
      lowbit::parallel_for(4, 1, [&](index b, index e) {
        for (index t = b; t < e; ++t) {
          if (t == 3 && j % 7 == 0) std::this_thread::yield();
          sum.fetch_add(t + 1, std::memory_order_relaxed);
        }
      });
      lowbit::parallel_for(1 + j % 5, 1, [&](index b, index e) {
        for (index t = b; t < e; ++t) sum.fetch_add(100, std::memory_order_relaxed);
      });
    }
    long expect = 0;
    for (int j = 0; j < 2000; ++j) expect += 10 + 100 * (1 + j % 5);
    CHECK(sum.load() == expect);
  });
}

TEST_CASE("parallel: a task's exception reaches the caller and the pool keeps working") {
  pool_guard restore;
  lowbit::set_num_threads(3);
  within(std::chrono::seconds(60), "exceptions", [] {
    for (int round = 0; round < 200; ++round) {
      std::atomic<int> ran{0};
      CHECK_THROWS_WITH(lowbit::parallel_for(16, 1,
                                             [&](index b, index) {
                                               ran.fetch_add(1);
                                               if (b == 5) throw std::runtime_error("task 5 failed");
                                             }),
                        "task 5 failed");
      CHECK(ran.load() == 16);  // the other tasks still ran: the job completes before rethrowing
      std::atomic<int> after{0};
      lowbit::parallel_for(16, 1, [&](index, index) { after.fetch_add(1); });
      CHECK(after.load() == 16);
    }
  });
}

TEST_CASE("parallel: nested loops run inline on the task's thread, with the same result") {
  pool_guard restore;
  lowbit::set_num_threads(4);
  std::vector<int> cells(40 * 40, 0);
  within(std::chrono::seconds(60), "nested", [&] {
    lowbit::parallel_for(40, 1, [&](index r0, index r1) {
      for (index r = r0; r < r1; ++r)
        lowbit::parallel_for(40, 1, [&](index c0, index c1) {
          for (index c = c0; c < c1; ++c) cells[static_cast<std::size_t>(r * 40 + c)] += static_cast<int>(r * 40 + c);
        });
    });
  });
  for (int i = 0; i < 40 * 40; ++i) REQUIRE(cells[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("parallel: jobs submitted from several user threads at once") {
  // An engine may call lowbit from more than one of its threads: jobs queue, none is lost.
  pool_guard restore;
  lowbit::set_num_threads(3);
  within(std::chrono::seconds(120), "concurrent submitters", [] {
    std::vector<std::thread> users;
    std::atomic<long> total{0};
    for (int u = 0; u < 4; ++u)
      users.emplace_back([&] {
        for (int j = 0; j < 500; ++j)
          lowbit::parallel_for(7, 1, [&](index b, index e) { total.fetch_add(e - b, std::memory_order_relaxed); });
      });
    for (auto& t : users) t.join();
    CHECK(total.load() == 4L * 500 * 7);
  });
}

namespace {
// The chunks parallel_for hands its body, as a sorted list of [begin, end) pairs.
std::vector<std::pair<index, index>> chunks_of(index n, index grain) {
  std::mutex m;
  std::vector<std::pair<index, index>> out;
  lowbit::parallel_for(n, grain, [&](index b, index e) {
    std::lock_guard<std::mutex> lk(m);
    out.emplace_back(b, e);
  });
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("parallel: the chunks do not depend on the thread count or the executor") {
  // By construction: a loop's split is a function of (n, grain) only, so a body that reduces
  // within its chunk gives the same bytes for 1, 2 or N threads and for any executor.
  pool_guard restore;
  const std::pair<index, index> loops[] = {{1, 1}, {7, 1}, {64, 1}, {1000, 1}, {1000, 64}, {100000, 8}, {129, 128}};
  for (const auto& [n, grain] : loops) {
    INFO("n " << n << " grain " << grain);
    lowbit::set_num_threads(1);
    const auto one = chunks_of(n, grain);
    // They cover [0, n) exactly once, each at least `grain` long but the last.
    index next = 0;
    for (const auto& [b, e] : one) {
      CHECK(b == next);
      CHECK(e > b);
      next = e;
    }
    CHECK(next == n);
    for (unsigned threads : {2u, 5u, 16u}) {
      lowbit::set_num_threads(threads);
      CHECK(chunks_of(n, grain) == one);
    }
    // A host executor that runs the tasks backwards, each on a thread of its own.
    lowbit::set_executor([](std::ptrdiff_t tasks, const std::function<void(std::ptrdiff_t)>& fn) {
      std::vector<std::thread> ts;
      for (std::ptrdiff_t t = tasks - 1; t >= 0; --t) ts.emplace_back([&fn, t] { fn(t); });
      for (auto& th : ts) th.join();
    });
    CHECK(chunks_of(n, grain) == one);
    lowbit::set_executor({});
  }
}

TEST_CASE("parallel: a host executor is used for every loop and may run tasks in any order") {
  pool_guard restore;
  std::atomic<long> calls{0};
  lowbit::set_executor([&](std::ptrdiff_t tasks, const std::function<void(std::ptrdiff_t)>& fn) {
    calls.fetch_add(1);
    for (std::ptrdiff_t t = tasks - 1; t >= 0; --t) fn(t);  // serial, reversed
  });
  std::vector<int> v(5000, 0);
  lowbit::parallel_for(5000, 16, [&](index b, index e) {
    for (index i = b; i < e; ++i) v[static_cast<std::size_t>(i)] = static_cast<int>(i);
  });
  CHECK(calls.load() == 1);
  for (int i = 0; i < 5000; ++i) REQUIRE(v[static_cast<std::size_t>(i)] == i);
  // scoped_executor restores the previous one when it leaves.
  {
    lowbit::scoped_executor inner([&](std::ptrdiff_t tasks, const std::function<void(std::ptrdiff_t)>& fn) {
      for (std::ptrdiff_t t = 0; t < tasks; ++t) fn(t);
    });
    lowbit::parallel_for(10, 1, [](index, index) {});
    CHECK(calls.load() == 1);
  }
  lowbit::parallel_for(10, 1, [](index, index) {});
  CHECK(calls.load() == 2);
}

TEST_CASE("parallel: resizing the pool between jobs, many times") {
  pool_guard restore;
  within(std::chrono::seconds(60), "resize", [] {
    for (unsigned i = 0; i < 200; ++i) {
      lowbit::set_num_threads(1 + i % 6);
      CHECK(lowbit::num_threads() == 1 + i % 6);
      std::atomic<int> n{0};
      lowbit::parallel_for(33, 1, [&](index b, index e) { n.fetch_add(static_cast<int>(e - b)); });
      CHECK(n.load() == 33);
    }
  });
}
