#pragma once
// Parallel loops. Engines own their threads, so the executor is injectable
// (set_executor); by default lowbit runs a small internal pool of std::threads sized to the
// machine (set_num_threads changes it). Work is split into contiguous index ranges and every
// index is computed by exactly one task with no cross-task reduction, so results do not
// depend on the thread count.
//
// Why std::thread and not OpenMP: a header-only library cannot force -fopenmp on its users,
// and an engine that embeds lowbit must be able to hand it its own pool.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit {

// An executor runs fn(task) for task in [0, n_tasks) and returns when all are done.
using executor = std::function<void(std::ptrdiff_t n_tasks, const std::function<void(std::ptrdiff_t)>& fn)>;

namespace detail {

class thread_pool {
 public:
  explicit thread_pool(unsigned n) { resize(n); }
  ~thread_pool() { stop(); }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  void resize(unsigned n) {
    stop();
    stopping_ = false;
    n = std::max(1u, n);
    for (unsigned i = 0; i + 1 < n; ++i) workers_.emplace_back([this] { work(); });
  }

  // Runs fn(t) for t in [0, n); the calling thread takes part. Rethrows the first exception.
  void run(std::ptrdiff_t n, const std::function<void(std::ptrdiff_t)>& fn) {
    if (n <= 0) return;
    // Nested loops (a task that itself calls parallel_for) run inline: no deadlock, same result.
    if (workers_.empty() || n == 1 || inside_task()) {
      for (std::ptrdiff_t t = 0; t < n; ++t) fn(t);
      return;
    }
    std::unique_lock<std::mutex> job_lock(job_mutex_);  // one job at a time
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &fn;
      n_tasks_ = n;
      next_.store(0);
      pending_ = n;
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    drain();
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static bool& inside_task() {
    thread_local bool flag = false;
    return flag;
  }
  void drain() {
    for (;;) {
      const std::ptrdiff_t t = next_.fetch_add(1);
      if (t >= n_tasks_) return;
      try {
        inside_task() = true;
        (*fn_)(t);
        inside_task() = false;
      } catch (...) {
        inside_task() = false;
        std::lock_guard<std::mutex> lk(m_);
        if (!error_) error_ = std::current_exception();
      }
      std::lock_guard<std::mutex> lk(m_);
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }
  void work() {
    std::size_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      drain();
    }
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex m_, job_mutex_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(std::ptrdiff_t)>* fn_ = nullptr;
  std::ptrdiff_t n_tasks_ = 0;
  std::atomic<std::ptrdiff_t> next_{0};
  std::ptrdiff_t pending_ = 0;
  std::size_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

inline thread_pool& default_pool() {
  static thread_pool pool(std::max(1u, std::thread::hardware_concurrency()));
  return pool;
}
inline executor& injected_executor() {
  static executor ex;
  return ex;
}

}  // namespace detail

// Hands lowbit the host's executor (pass an empty one to go back to the internal pool).
inline void set_executor(executor ex) { detail::injected_executor() = std::move(ex); }
// Resizes the internal pool (1 = run everything on the calling thread).
inline void set_num_threads(unsigned n) { detail::default_pool().resize(n); }
inline unsigned num_threads() { return detail::default_pool().size(); }

// Calls body(begin, end) over contiguous chunks of [0, n) of at least `grain` indices.
template <class Body>
void parallel_for(std::ptrdiff_t n, std::ptrdiff_t grain, Body&& body) {
  if (n <= 0) return;
  grain = std::max<std::ptrdiff_t>(1, grain);
  const std::ptrdiff_t max_tasks = (n + grain - 1) / grain;
  const std::ptrdiff_t tasks = std::min<std::ptrdiff_t>(max_tasks, 4 * static_cast<std::ptrdiff_t>(num_threads()));
  const std::ptrdiff_t chunk = (n + tasks - 1) / tasks;
  const std::function<void(std::ptrdiff_t)> fn = [&](std::ptrdiff_t t) {
    const std::ptrdiff_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) body(b, e);
  };
  if (auto& ex = detail::injected_executor()) ex(tasks, fn);
  else detail::default_pool().run(tasks, fn);
}

}  // namespace lowbit
