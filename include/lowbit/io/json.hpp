#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// A small, strict, bounded JSON parser (RFC 8259) for safetensors headers, plus the string
// escaping a writer needs.
//
// Strict: no comments, no trailing commas, no NaN/Infinity, no leading zeros, no duplicate
// object keys, strings must be valid UTF-8 with escaped control characters, nothing but
// whitespace after the value. Bounded: nesting depth and input size are limited, so a
// hostile header cannot exhaust the stack or memory. Integers are kept exactly (64-bit) next
// to their double value, because tensor offsets above 2^53 must not be rounded.
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/detail/utf8.hpp"

namespace lowbit::inline LOWBIT_ABI::io {

class json_value {
 public:
  enum class kind { null, boolean, number, string, array, object };

  kind type() const { return kind_; }
  bool is_null() const { return kind_ == kind::null; }
  bool is_bool() const { return kind_ == kind::boolean; }
  bool is_number() const { return kind_ == kind::number; }
  bool is_string() const { return kind_ == kind::string; }
  bool is_array() const { return kind_ == kind::array; }
  bool is_object() const { return kind_ == kind::object; }

  bool as_bool() const { return check(kind::boolean), bool_; }
  double as_double() const { return check(kind::number), number_; }
  const std::string& as_string() const { return check(kind::string), string_; }
  // A non-negative integer written without fraction or exponent that fits 64 bits, exactly.
  bool is_u64() const { return kind_ == kind::number && is_uint_; }
  std::uint64_t as_u64() const {
    check(kind::number);
    if (!is_uint_) lowbit::detail::fail("json: expected a non-negative integer, got ", number_);
    return uint_;
  }
  const std::vector<json_value>& items() const { return check(kind::array), items_; }
  // Object members in document order.
  const std::vector<std::string>& keys() const { return check(kind::object), keys_; }
  const std::vector<json_value>& values() const { return check(kind::object), items_; }
  const json_value* find(std::string_view key) const {
    check(kind::object);
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] == key) return &items_[i];
    return nullptr;
  }
  std::size_t size() const { return kind_ == kind::object || kind_ == kind::array ? items_.size() : 0; }

  static std::string_view kind_name(kind k) {
    switch (k) {
      case kind::null: return "null";
      case kind::boolean: return "a boolean";
      case kind::number: return "a number";
      case kind::string: return "a string";
      case kind::array: return "an array";
      case kind::object: return "an object";
    }
    return "?";
  }

 private:
  friend class json_parser;
  void check(kind k) const {
    if (kind_ != k) lowbit::detail::fail("json: expected ", kind_name(k), ", got ", kind_name(kind_));
  }
  kind kind_ = kind::null;
  bool bool_ = false;
  double number_ = 0;
  bool is_uint_ = false;
  std::uint64_t uint_ = 0;
  std::string string_;
  std::vector<std::string> keys_;
  std::vector<json_value> items_;
};

struct json_limits {
  std::size_t max_depth = 64;
  std::size_t max_bytes = 100u << 20;  // safetensors' own limit for a header
};

class json_parser {
 public:
  // Parses a complete document; throws lowbit::error with the byte offset of the problem.
  static json_value parse(std::string_view text, json_limits limits = {}) {
    if (text.size() > limits.max_bytes)
      lowbit::detail::fail("json: document of ", text.size(), " bytes exceeds the limit of ", limits.max_bytes);
    json_parser p(text, limits);
    p.skip_ws();
    json_value v = p.value(0);
    p.skip_ws();
    if (p.pos_ != text.size()) p.fail("unexpected characters after the document");
    return v;
  }

 private:
  json_parser(std::string_view t, json_limits l) : s_(t), limits_(l) {}

  [[noreturn]] void fail(std::string_view what) const { lowbit::detail::fail("json: ", what, " at byte ", pos_); }
  bool eof() const { return pos_ >= s_.size(); }
  char peek() const { return eof() ? '\0' : s_[pos_]; }
  void skip_ws() {
    while (!eof() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c || eof()) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  void literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) fail("invalid literal");
    pos_ += word.size();
  }

  json_value value(std::size_t depth) {
    if (depth >= limits_.max_depth) fail("nesting deeper than the limit");
    json_value v;
    switch (peek()) {
      case '{': {
        ++pos_;
        v.kind_ = json_value::kind::object;
        std::set<std::string, std::less<>> seen;  // O(log n) duplicate check: headers can be large
        skip_ws();
        if (peek() == '}') {
          ++pos_;
          return v;
        }
        for (;;) {
          skip_ws();
          if (peek() != '"') fail("expected a string key");
          std::string key = string();
          if (!seen.insert(key).second) fail("duplicate key \"" + key + "\"");
          skip_ws();
          expect(':');
          skip_ws();
          v.keys_.push_back(std::move(key));
          v.items_.push_back(value(depth + 1));
          skip_ws();
          if (peek() == ',') {
            ++pos_;
            continue;
          }
          expect('}');
          return v;
        }
      }
      case '[': {
        ++pos_;
        v.kind_ = json_value::kind::array;
        skip_ws();
        if (peek() == ']') {
          ++pos_;
          return v;
        }
        for (;;) {
          skip_ws();
          v.items_.push_back(value(depth + 1));
          skip_ws();
          if (peek() == ',') {
            ++pos_;
            continue;
          }
          expect(']');
          return v;
        }
      }
      case '"':
        v.kind_ = json_value::kind::string;
        v.string_ = string();
        return v;
      case 't': literal("true"); v.kind_ = json_value::kind::boolean; v.bool_ = true; return v;
      case 'f': literal("false"); v.kind_ = json_value::kind::boolean; return v;
      case 'n': literal("null"); return v;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return number();
        if (eof()) fail("unexpected end of document");
        fail("unexpected character");
    }
  }

  json_value number() {
    const std::size_t start = pos_;
    const bool negative = peek() == '-';
    if (negative) ++pos_;
    if (!(peek() >= '0' && peek() <= '9') || eof()) fail("invalid number");
    bool exact = true;
    std::uint64_t u = 0;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9' && !eof()) fail("leading zero in a number");
    } else {
      while (!eof() && peek() >= '0' && peek() <= '9') {
        const auto d = static_cast<std::uint64_t>(peek() - '0');
        if (u > (std::numeric_limits<std::uint64_t>::max() - d) / 10) exact = false;
        else u = u * 10 + d;
        ++pos_;
      }
    }
    bool integral = true;
    if (peek() == '.' && !eof()) {
      integral = false;
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9') || eof()) fail("digit expected after '.'");
      while (!eof() && peek() >= '0' && peek() <= '9') ++pos_;
    }
    if ((peek() == 'e' || peek() == 'E') && !eof()) {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9') || eof()) fail("digit expected in the exponent");
      while (!eof() && peek() >= '0' && peek() <= '9') ++pos_;
    }
    json_value v;
    v.kind_ = json_value::kind::number;
    // from_chars: locale-independent; the grammar above already validated the text. Values
    // beyond the double range become ±inf, below it ±0.
    const char* first = s_.data() + start;
    const auto res = std::from_chars(first, s_.data() + pos_, v.number_);
    if (res.ec == std::errc::result_out_of_range) {
      const auto text = s_.substr(start, pos_ - start);
      const bool tiny = text.find("e-") != std::string_view::npos || text.find("E-") != std::string_view::npos;
      v.number_ = (negative ? -1.0 : 1.0) * (tiny ? 0.0 : HUGE_VAL);
    }
    if (integral && exact && !negative) {
      v.is_uint_ = true;
      v.uint_ = u;
    }
    return v;
  }


  std::uint32_t hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    std::uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      cp <<= 4;
      if (c >= '0' && c <= '9') cp |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') cp |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') cp |= static_cast<std::uint32_t>(c - 'A' + 10);
      else fail("invalid hex digit in a \\u escape");
    }
    return cp;
  }

  // Validates one UTF-8 sequence starting at pos_ (RFC 3629: no overlongs, no surrogates).
  void utf8_char(std::string& out) {
    const auto b0 = static_cast<unsigned char>(s_[pos_]);
    int n = 0;
    std::uint32_t cp = 0, min = 0;
    if (b0 < 0x80) {
      out += static_cast<char>(b0);
      ++pos_;
      return;
    } else if ((b0 & 0xE0) == 0xC0) {
      n = 1, cp = b0 & 0x1Fu, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      n = 2, cp = b0 & 0x0Fu, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      n = 3, cp = b0 & 0x07u, min = 0x10000;
    } else {
      fail("invalid UTF-8 in a string");
    }
    if (s_.size() - pos_ <= static_cast<std::size_t>(n)) fail("truncated UTF-8 sequence");
    for (int i = 1; i <= n; ++i) {
      const auto b = static_cast<unsigned char>(s_[pos_ + static_cast<std::size_t>(i)]);
      if ((b & 0xC0) != 0x80) fail("invalid UTF-8 in a string");
      cp = (cp << 6) | (b & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail("invalid UTF-8 in a string");
    out.append(s_.substr(pos_, static_cast<std::size_t>(n) + 1));
    pos_ += static_cast<std::size_t>(n) + 1;
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (eof()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("unescaped control character in a string");
      if (c != '\\') {
        utf8_char(out);
        continue;
      }
      ++pos_;
      if (eof()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate must be followed by a low one
            if (s_.substr(pos_, 2) != "\\u") fail("unpaired surrogate in a \\u escape");
            pos_ += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in a \\u escape");
          }
          detail::append_utf8(out, cp);
          break;
        }
        default: fail("invalid escape");
      }
    }
  }

  std::string_view s_;
  json_limits limits_;
  std::size_t pos_ = 0;
};

inline json_value parse_json(std::string_view text, json_limits limits = {}) {
  return json_parser::parse(text, limits);
}

// The JSON string literal for `s` (quotes included); control characters are escaped.
inline std::string json_quote(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20) {
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace lowbit::io
