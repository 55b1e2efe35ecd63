#pragma once
// lowbit-quantize's value parsing: every option value goes through one of these, which
// accept exactly the text they name (no leading spaces or '+', no trailing characters, no
// wrap-around: "4294967300" is not 4) and fail with one message shape,
//   "<option> expects <what>, got '<value>'",
// as a usage_error (exit status 2, docs/cli.md).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace lowbit::tools::cli {

// The command line is wrong (an option, a value, a combination, an output path): exit 2.
class usage_error : public std::runtime_error {
 public:
  explicit usage_error(const std::string& what) : std::runtime_error(what) {}
};

[[noreturn]] inline void bad_value(const std::string& flag, const std::string& what, const std::string& v) {
  throw usage_error(flag + " expects " + what + ", got '" + v + "'");
}

// An integer in [lo, hi], decimal digits with an optional '-'.
inline long long parse_int(const std::string& flag, const std::string& v, long long lo, long long hi) {
  const std::string what = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  long long x = 0;
  const char* b = v.data();
  const char* e = b + v.size();
  const auto [p, ec] = std::from_chars(b, e, x);
  if (v.empty() || ec != std::errc() || p != e || x < lo || x > hi) bad_value(flag, what, v);
  return x;
}

// One of `choices` (an integer option with a fixed set of values, e.g. --bits).
inline int parse_choice(const std::string& flag, const std::string& v, const std::vector<int>& choices) {
  std::string what = "one of ";
  for (std::size_t i = 0; i < choices.size(); ++i) what += (i ? ", " : "") + std::to_string(choices[i]);
  long long x = 0;
  const char* b = v.data();
  const char* e = b + v.size();
  const auto [p, ec] = std::from_chars(b, e, x);
  if (v.empty() || ec != std::errc() || p != e || std::find(choices.begin(), choices.end(), x) == choices.end())
    bad_value(flag, what, v);
  return static_cast<int>(x);
}

// A number in [lo, hi] (decimal or exponent form; "inf" only when hi is infinite; never NaN).
inline double parse_double(const std::string& flag, const std::string& v, double lo, double hi) {
  auto bound = [](double x) {
    std::ostringstream s;
    s << x;
    return s.str();
  };
  const std::string what = "a number from " + bound(lo) + " to " + bound(hi);
  double x = 0;
  const char* b = v.data();
  const char* e = b + v.size();
  const auto [p, ec] = std::from_chars(b, e, x);
  if (v.empty() || ec != std::errc() || p != e || std::isnan(x) || x < lo || x > hi) bad_value(flag, what, v);
  return x;
}

// A file name: anything but the empty string (which would silently mean "no file").
inline const std::string& parse_path(const std::string& flag, const std::string& v) {
  if (v.empty()) bad_value(flag, "a file name", v);
  return v;
}

// A comma-separated list with at least one item, each parsed by `item`.
template <class F>
auto parse_list(const std::string& flag, const std::string& v, F&& item) {
  std::vector<decltype(item(std::string()))> out;
  std::size_t start = 0;
  while (start <= v.size()) {
    const std::size_t comma = std::min(v.find(',', start), v.size());
    const std::string x = v.substr(start, comma - start);
    if (!x.empty()) out.push_back(item(x));
    start = comma + 1;
  }
  if (out.empty()) bad_value(flag, "a comma-separated list", v);
  return out;
}

}  // namespace lowbit::tools::cli
