#pragma once
// Command-line pieces the benches share: comma lists and ROWSxCOLS shapes. A bad shape gets a
// message naming it (the benches' own parsers called std::stol, whose exception on "4096xabc"
// ended the process unexplained).
#include <charconv>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lowbit::bench {

// "a,b,,c" -> {"a", "b", "c"}.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) out.push_back(t);
  return out;
}

// "4096x4096,11008x4096" -> {{4096, 4096}, {11008, 4096}}; on a bad item, no shapes and
// `error` says which.
inline std::vector<std::pair<std::ptrdiff_t, std::ptrdiff_t>> parse_shapes(const std::string& s, std::string& error) {
  auto positive = [](std::string_view v, std::ptrdiff_t& n) {
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    return ec == std::errc{} && end == v.data() + v.size() && n > 0;
  };
  std::vector<std::pair<std::ptrdiff_t, std::ptrdiff_t>> out;
  for (const std::string& t : split_list(s)) {
    const std::string_view v(t);
    const auto x = v.find('x');
    std::ptrdiff_t r = 0, c = 0;
    if (x == std::string_view::npos || !positive(v.substr(0, x), r) || !positive(v.substr(x + 1), c)) {
      error = "a shape is ROWSxCOLS with positive sizes, got '" + t + "'";
      return {};
    }
    out.emplace_back(r, c);
  }
  if (out.empty()) error = "--shape needs at least one ROWSxCOLS";
  return out;
}

}  // namespace lowbit::bench
