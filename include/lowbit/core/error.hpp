#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// How lowbit reports an error. Every message names the argument at fault and what was
// expected, so a user reading a log knows what to fix.
//
// Two modes, chosen per translation unit from the compiler's own switch:
//   - exceptions on (the default): detail::fail throws lowbit::error, the one exception type
//     the library throws;
//   - exceptions off (-fno-exceptions, i.e. no __cpp_exceptions, or LOWBIT_NO_EXCEPTIONS
//     defined): nothing throws. detail::fail calls the error handler the application set
//     with lowbit::set_error_handler (a game engine logs and shuts down its own way), then, if
//     the handler returns, writes the message to stderr and calls std::abort().
// The handler is called in both modes (before the throw when exceptions are on), so an
// engine can log lowbit's errors the same way whichever way it builds.
//
// LOWBIT_EXCEPTIONS (0 or 1) tells includers which mode is in force.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>

#include "lowbit/core/shared_state.hpp"

#if defined(__cpp_exceptions) && !defined(LOWBIT_NO_EXCEPTIONS)
#define LOWBIT_EXCEPTIONS 1
#include <stdexcept>
#else
#define LOWBIT_EXCEPTIONS 0
#endif

// Outside the ABI tag (core/abi.hpp): one exception type, one handler type for the whole
// program, whichever flags compiled the TU that throws and the TU that catches.
namespace lowbit {

#if LOWBIT_EXCEPTIONS
class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error("lowbit: " + what) {}
};
#endif

// Called with the full message ("lowbit: ...") of every error. With exceptions off it must
// not return to lowbit (terminate, or leave by the engine's own means); if it does return,
// lowbit aborts.
using error_handler = void (*)(const char* message);

}  // namespace lowbit

namespace lowbit::inline LOWBIT_ABI {

namespace detail {

// Builds a message from any streamable pieces: fail("group size ", g, " must divide ", n).
template <class... Parts>
[[noreturn]] inline void fail(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  const std::string what = os.str();
  if (const error_handler h = shared::error_handler.load()) h(("lowbit: " + what).c_str());
#if LOWBIT_EXCEPTIONS
  throw error(what);
#else
  std::fprintf(stderr, "lowbit: %s\n", what.c_str());
  std::abort();
#endif
}

template <class... Parts>
inline void require(bool ok, Parts&&... parts) {
  if (!ok) fail(std::forward<Parts>(parts)...);
}

// Returns f(); a lowbit::error from inside is reported again with a context in front
// ("file.lowbit: matrix 'q': <inner message>"). With exceptions off the inner error reaches
// the handler as it is (nothing can be caught).
template <class F, class... Parts>
decltype(auto) with_context(F&& f, Parts&&... context) {
#if LOWBIT_EXCEPTIONS
  try {
    return std::forward<F>(f)();
  } catch (const error& e) {
    fail(std::forward<Parts>(context)..., e.what());
  }
#else
  ((void)context, ...);
  return std::forward<F>(f)();
#endif
}
}  // namespace detail

// Installs the handler (nullptr: none) and returns the previous one. Set it once, before
// lowbit runs on other threads.
inline error_handler set_error_handler(error_handler h) { return shared::error_handler.exchange(h); }

}  // namespace lowbit
