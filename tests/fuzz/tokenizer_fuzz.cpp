// libFuzzer target: byte-level BPE must be lossless on ANY byte string (valid UTF-8 or not):
// decode(encode(text)) == text, with and without special-token parsing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/bpe_tokenizer.hpp"

namespace {
const lowbit::io::bpe_tokenizer& tokenizer() {
  static const lowbit::io::bpe_tokenizer tok = [] {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) {
      std::string s;
      lowbit::io::detail::append_utf8(s, lowbit::io::detail::byte_to_char()[static_cast<std::size_t>(b)]);
      tokens.push_back(s);
    }
    std::vector<std::string> merges = {"l l", "h e", "he ll", "\xC4\xA0 w", "hell o", "a a", "aa a", "\xC4\xA0 \xC4\xA0"};
    for (const auto& m : merges) tokens.push_back(m.substr(0, m.find(' ')) + m.substr(m.find(' ') + 1));
    tokens.push_back("<|end|>");
    std::vector<std::int32_t> types(tokens.size(), 1);
    types.back() = 3;
    return lowbit::io::bpe_tokenizer(tokens, merges, types, lowbit::io::pre_tokenizer::smollm);
  }();
  return tok;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (bool special : {false, true}) {
    const auto ids = tokenizer().encode(text, special);
    if (tokenizer().decode(ids) != text) std::abort();
  }
  std::size_t total = 0;
  for (auto w : lowbit::io::pre_tokenize(text, lowbit::io::pre_tokenizer::gpt2)) total += w.size();
  if (total != size) std::abort();  // the pre-tokenizer partitions the text
  return 0;
}
