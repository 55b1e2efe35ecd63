#pragma once
// The state every translation unit of a program shares, whatever flags compiled it
// (core/abi.hpp: everything else of lowbit is tagged per instruction set). Only constant-
// initialised variables of plain types live here: no function the linker could pick from
// one TU for another.
#include <atomic>
#include <cstddef>
#include <functional>

namespace lowbit::shared {

// core/error.hpp: called with every error message (nullptr: none).
inline std::atomic<void (*)(const char*)> error_handler{nullptr};

// core/parallel.hpp: the host's executor (nullptr: lowbit's own pool), owned here (set_executor
// allocates it), and the thread count the application asked for (0: the machine's).
using executor_fn = std::function<void(std::ptrdiff_t n_tasks, const std::function<void(std::ptrdiff_t)>& fn)>;
inline std::atomic<const executor_fn*> executor{nullptr};
inline std::atomic<unsigned> requested_threads{0};
// True on a thread while it runs a task of a parallel loop: nested loops run inline (in any
// TU: a nested loop in another TU must not wait for the pool its caller holds).
inline thread_local bool inside_task = false;

// kernel/cpu/dispatch.hpp: the highest ISA the CPU kernels may use (kernel_interface::isa).
inline std::atomic<int> max_isa_cap{3};

// io/atomic_file.hpp: the temporary files being written (state 0 free, 1 claimed, 2 a live
// temporary at `path`), so a signal handler can remove them (lock-free atomics and plain
// char arrays only: async-signal-safe).
inline constexpr int max_pending_temporaries = 32;
inline constexpr std::size_t max_temporary_path = 4096;
struct pending_temporary {
  std::atomic<int> state{0};
  char path[max_temporary_path];
};
inline pending_temporary pending_temporaries[max_pending_temporaries];

}  // namespace lowbit::shared
