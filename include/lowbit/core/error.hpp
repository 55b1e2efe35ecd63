#pragma once
// lowbit::error: the one exception type the library throws. Every message names the
// argument at fault and what was expected, so a user reading a log knows what to fix.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lowbit {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error("lowbit: " + what) {}
};

namespace detail {
// Builds a message from any streamable pieces: fail("group size ", g, " must divide ", n).
template <class... Parts>
[[noreturn]] inline void fail(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  throw error(os.str());
}

template <class... Parts>
inline void require(bool ok, Parts&&... parts) {
  if (!ok) fail(std::forward<Parts>(parts)...);
}
}  // namespace detail
}  // namespace lowbit
