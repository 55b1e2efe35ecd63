#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Parallel loops. Engines own their threads, so the executor is injectable (set_executor,
// scoped_executor); by default lowbit runs a small internal pool of std::threads sized to
// the machine (set_num_threads changes it).
//
// Determinism by construction: parallel_for(n, grain, body) splits [0, n) into chunks that
// depend on n and grain only (at most max_loop_tasks of them), never on the thread count or
// the executor, and every index is computed by exactly one chunk. A body that reduces inside
// its chunk therefore gives the same bytes on 1, 2 or 64 threads and on any executor
// (tests/parallel_test.cpp, tests/determinism_test.cpp).
//
// The pool (detail::thread_pool) is correct by construction: each job's state (its task
// counter, completion count, error) lives in a `job` object owned by the submitting call;
// a worker reaches a job only through the pool's mutex, registers as its visitor, and the
// submitter does not return (and the job does not die) until every task has finished and
// every visitor has left. A worker can therefore never see the next job's counters while
// still inside the previous one (issue #15: the old pool shared one set of counters
// between consecutive jobs; TSan found the race, stress runs hung).
//
// Why std::thread and not OpenMP: a header-only library cannot force -fopenmp on its users,
// and an engine that embeds lowbit must be able to hand it its own pool.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>
#if defined(__cpp_exceptions)
#include <exception>
#endif

#include "lowbit/core/error.hpp"
#include "lowbit/core/shared_state.hpp"

namespace lowbit::inline LOWBIT_ABI {

// An executor runs fn(task) for every task in [0, n_tasks), in any order and on any threads,
// and returns when all have returned. fn may be called concurrently for different tasks.
using executor = shared::executor_fn;

// The most chunks one parallel_for is split into (enough for 16 threads x 4 for balance).
inline constexpr std::ptrdiff_t max_loop_tasks = 64;

namespace detail {

// The thread count in force: what set_num_threads asked for, else the machine's.
inline unsigned wanted_threads() {
  const unsigned n = shared::requested_threads.load();
  return n != 0 ? n : std::max(1u, std::thread::hardware_concurrency());
}

class thread_pool {
 public:
  explicit thread_pool(unsigned n) { start(n); }
  ~thread_pool() { stop(); }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  unsigned size() const {
    std::lock_guard<std::mutex> lk(m_);
    return static_cast<unsigned>(workers_.size()) + 1;
  }

  // Waits for the job in flight (if any), then restarts with n threads (the caller counts).
  void resize(unsigned n) {
    std::lock_guard<std::mutex> job_lock(job_mutex_);
    resize_locked(n);
  }

  // Runs fn(t) for t in [0, n); the calling thread takes part. Every task runs, even when one
  // throws; then the first exception is rethrown.
  void run(std::ptrdiff_t n, const std::function<void(std::ptrdiff_t)>& fn) {
    if (n <= 0) return;
    // Nested loops (a task that itself calls parallel_for) run inline: no deadlock, and the
    // same chunks, so the same result.
    const unsigned wanted = wanted_threads();
    if (n == 1 || shared::inside_task || wanted <= 1) {
      run_inline(n, fn);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mutex_);  // one job at a time, in submission order
    // The size the application asked for (set_num_threads in any TU: core/shared_state.hpp).
    if (size() != wanted) resize_locked(wanted);
    job j(fn, n);
    {
      std::lock_guard<std::mutex> lk(m_);
      current_ = &j;
      ++generation_;
    }
    cv_.notify_all();
    participate(j);
    {
      std::unique_lock<std::mutex> lk(m_);
      done_cv_.wait(lk, [&] { return j.finished.load() == j.n && j.visitors == 0; });
      current_ = nullptr;
    }
#if defined(__cpp_exceptions)
    if (j.error) std::rethrow_exception(j.error);
#endif
  }

 private:
  struct job {
    job(const std::function<void(std::ptrdiff_t)>& f, std::ptrdiff_t count) : fn(f), n(count) {}
    const std::function<void(std::ptrdiff_t)>& fn;
    const std::ptrdiff_t n;
    std::atomic<std::ptrdiff_t> next{0};      // the next task to hand out
    std::atomic<std::ptrdiff_t> finished{0};  // tasks that have returned
    int visitors = 0;                         // workers inside participate(); guarded by m_
#if defined(__cpp_exceptions)
    std::exception_ptr error;  // the first task exception; guarded by m_
#endif
  };

  void resize_locked(unsigned n) {
    stop();
    start(n);
  }
  static void run_inline(std::ptrdiff_t n, const std::function<void(std::ptrdiff_t)>& fn) {
    for (std::ptrdiff_t t = 0; t < n; ++t) fn(t);
  }

  // Takes tasks of j until none is left. Marks the thread as inside a task meanwhile.
  void participate(job& j) {
    bool& inside = shared::inside_task;
    const bool was_inside = inside;
    inside = true;
    for (;;) {
      const std::ptrdiff_t t = j.next.fetch_add(1);
      if (t >= j.n) break;
#if defined(__cpp_exceptions)
      try {
        j.fn(t);
      } catch (...) {
        std::lock_guard<std::mutex> lk(m_);
        if (!j.error) j.error = std::current_exception();
      }
#else
      j.fn(t);
#endif
      if (j.finished.fetch_add(1) + 1 == j.n) {
        // The lock orders this notification after the submitter's predicate check.
        std::lock_guard<std::mutex> lk(m_);
        done_cv_.notify_all();
      }
    }
    inside = was_inside;
  }

  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      job* j = nullptr;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stopping_ || (generation_ != seen && current_ != nullptr); });
        if (stopping_) return;
        seen = generation_;
        j = current_;
        ++j->visitors;
      }
      participate(*j);
      {
        std::lock_guard<std::mutex> lk(m_);
        if (--j->visitors == 0) done_cv_.notify_all();
      }
    }
  }

  void start(unsigned n) {
    std::lock_guard<std::mutex> lk(m_);
    stopping_ = false;
    n = std::max(1u, n);
    for (unsigned i = 0; i + 1 < n; ++i) workers_.emplace_back([this] { work(); });
  }
  void stop() {
    std::vector<std::thread> leaving;
    {
      std::lock_guard<std::mutex> lk(m_);
      stopping_ = true;
      leaving.swap(workers_);
    }
    cv_.notify_all();
    for (auto& w : leaving) w.join();
  }

  mutable std::mutex m_;
  std::mutex job_mutex_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;  // guarded by m_
  job* current_ = nullptr;            // guarded by m_
  std::uint64_t generation_ = 0;      // guarded by m_
  bool stopping_ = false;             // guarded by m_
};

// One pool per instruction-set flavour of the program (core/abi.hpp); each follows the shared
// thread-count request, so set_num_threads in any TU sizes them all.
inline thread_pool& default_pool() {
  static thread_pool pool(wanted_threads());
  return pool;
}

// Replaces the shared executor, returning the previous one (the caller owns it).
inline const executor* exchange_executor(executor ex) {
  const executor* next = ex ? new executor(std::move(ex)) : nullptr;
  return shared::executor.exchange(next);
}

// The fixed split of [0, n) with at least `grain` indices a chunk: (chunk size, chunk count).
inline std::pair<std::ptrdiff_t, std::ptrdiff_t> loop_chunks(std::ptrdiff_t n, std::ptrdiff_t grain) {
  grain = std::max<std::ptrdiff_t>(1, grain);
  const std::ptrdiff_t tasks = std::min<std::ptrdiff_t>((n + grain - 1) / grain, max_loop_tasks);
  const std::ptrdiff_t chunk = (n + tasks - 1) / tasks;
  return {chunk, (n + chunk - 1) / chunk};
}

}  // namespace detail

// Hands lowbit the host's executor (pass an empty one to go back to the internal pool). Set it
// before lowbit runs, not while another thread is inside a lowbit call.
inline void set_executor(executor ex) { delete detail::exchange_executor(std::move(ex)); }

// Uses `ex` for the lifetime of this object, then restores the executor that was set before.
class scoped_executor {
 public:
  explicit scoped_executor(executor ex) : previous_(detail::exchange_executor(std::move(ex))) {}
  ~scoped_executor() { delete shared::executor.exchange(previous_); }
  scoped_executor(const scoped_executor&) = delete;
  scoped_executor& operator=(const scoped_executor&) = delete;

 private:
  const executor* previous_;
};

// Resizes the internal pool (1 = run everything on the calling thread). Waits for a job in
// flight; an error if called from inside a parallel task.
inline void set_num_threads(unsigned n) {
  detail::require(!shared::inside_task, "set_num_threads: called from inside a parallel task; resize between jobs");
  shared::requested_threads.store(std::max(1u, n));
  detail::default_pool().resize(std::max(1u, n));
}
inline unsigned num_threads() { return detail::wanted_threads(); }

// Calls body(begin, end) over contiguous chunks of [0, n) of at least `grain` indices (the
// last may be shorter). The chunks depend on n and grain only (see the header comment).
template <class Body>
void parallel_for(std::ptrdiff_t n, std::ptrdiff_t grain, Body&& body) {
  if (n <= 0) return;
  const auto [chunk, tasks] = detail::loop_chunks(n, grain);
  const std::function<void(std::ptrdiff_t)> fn = [&, chunk = chunk](std::ptrdiff_t t) {
    const std::ptrdiff_t b = t * chunk, e = std::min(n, b + chunk);
    body(b, e);
  };
  if (const executor* ex = shared::executor.load()) (*ex)(tasks, fn);
  else detail::default_pool().run(tasks, fn);
}

}  // namespace lowbit
