// BERT WordPiece tokenizer (tools/minilm/wordpiece.hpp): normalization, splitting and the
// greedy longest-match loop on a hand-made vocabulary checked by hand, and (with the fetched
// vocab.txt) all-MiniLM-L6-v2's real vocabulary against Hugging Face `tokenizers` on real
// sentences (tests/data/minilm/tokens.tsv, made by make_tokens.py).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/assets.hpp"
#include "lowbit_catch.hpp"
#include "minilm/wordpiece.hpp"

using lowbit::minilm::wordpiece_tokenizer;
using ids = std::vector<std::int32_t>;
using words = std::vector<std::string>;

TEST_CASE("minilm tokenizer: basic tokenizer normalizes and splits like BERT's", "[minilm][tokenizer]") {
  const auto b = [](std::string_view s) { return wordpiece_tokenizer::basic_tokenize(s); };
  CHECK(b("Hello, World!") == words{"hello", ",", "world", "!"});
  CHECK(b("don't 3.14") == words{"don", "'", "t", "3", ".", "14"});
  CHECK(b("  a\t\nb  ") == words{"a", "b"});
  CHECK(b("Caf\xC3\xA9 na\xC3\xAFve \xC3\x85NGSTR\xC3\x96M") == words{"cafe", "naive", "angstrom"});  // NFD, Mn dropped
  CHECK(b("e\xCC\x81") == words{"e"});                             // a lone combining acute is Mn
  CHECK(b("\xE4\xB8\xAD\xE6\x96\x87x") == words{"\xE4\xB8\xAD", "\xE6\x96\x87", "x"});  // CJK ideographs split
  CHECK(b("a\xC2\xA0" "b") == words{"a", "b"});                     // NBSP is whitespace
  CHECK(b("a\x07" "b\xE2\x80\x8B" "c") == words{"abc"});            // BEL (Cc), ZWSP (Cf) removed
  CHECK(b("\xC2\xBF" "Qu\xC3\xA9?") == words{"\xC2\xBF", "que", "?"});  // inverted question mark is Po
  CHECK(b("$5") == words{"$", "5"});                                 // ASCII punctuation though Sc
  CHECK(b("\xEA\xB0\x80") == words{"\xE1\x84\x80\xE1\x85\xA1"});    // Hangul GA -> jamo G + A
  CHECK(b("\xFF" "x").size() == 1);                                  // invalid UTF-8 dropped as U+FFFD
  CHECK(b("").empty());
}

TEST_CASE("minilm tokenizer: WordPiece greedy longest match on a hand-made vocabulary", "[minilm][tokenizer]") {
  const wordpiece_tokenizer t({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "##a", "aff", "able", ",",
                               "##ff", "a"});
  // "unaffable": un + ##aff + ##able (longest first: "##affable" absent, "##aff" wins over "##a")
  CHECK(t.encode("unaffable") == ids{2, 4, 5, 6, 3});
  CHECK(t.encode("Unaffable, able") == ids{2, 4, 5, 6, 10, 9, 3});
  CHECK(t.encode("unx") == ids{2, 1, 3});        // no piece for "x": the whole word is [UNK]
  CHECK(t.encode("aff unx a") == ids{2, 8, 1, 12, 3});
  CHECK(t.encode(std::string(101, 'a')) == ids{2, 1, 3});  // > 100 characters
  CHECK(t.encode(std::string(100, 'a')).size() == 102);     // a + 99 x ##a
  CHECK(t.encode("unaffable unaffable", 5) == ids{2, 4, 5, 6, 3});  // truncated to max_length - 2 ids
  CHECK(t.encode("", 256) == ids{2, 3});
  CHECK_THROWS_AS(t.encode("a", 1), lowbit::error);
  CHECK_THROWS_AS(wordpiece_tokenizer({"a", "b"}), lowbit::error);  // no [UNK]/[CLS]/[SEP]
}

namespace {

std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    if (c == 'x' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("minilm tokenizer: all-MiniLM-L6-v2 matches Hugging Face tokenizers on real sentences", "[minilm][tokenizer][model]") {
  const auto vocab = lowbit::io::assets_dir() / "all-MiniLM-L6-v2" / "vocab.txt";
  if (!std::filesystem::exists(vocab)) {
    WARN("SKIPPED: " << vocab << " not found; run scripts/fetch-assets --minilm (or set LOWBIT_ASSETS)");
    return;
  }
  const auto tok = wordpiece_tokenizer::from_file(vocab);
  CHECK(tok.size() == 30522);
  CHECK(tok.cls_id() == 101);
  CHECK(tok.sep_id() == 102);
  CHECK(tok.unk_id() == 100);
  const auto expected = std::filesystem::path(__FILE__).parent_path() / "data" / "minilm" / "tokens.tsv";
  std::ifstream in(expected);
  REQUIRE(in.good());
  std::string line;
  int rows = 0, tokens = 0, truncated = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    REQUIRE(t2 != std::string::npos);
    const std::size_t max_length = std::stoul(line.substr(0, t1));
    const auto text = unescape(std::string_view(line).substr(t1 + 1, t2 - t1 - 1));
    ids want;
    std::istringstream is(line.substr(t2 + 1));
    for (std::int32_t id; is >> id;) want.push_back(id);
    INFO("text: " << text);
    CHECK(tok.encode(text, max_length > 0 ? max_length : std::size_t(1) << 30) == want);
    ++rows;
    truncated += max_length > 0 && want.size() == max_length;
    tokens += int(want.size());
  }
  CHECK(rows >= 400);
  CHECK(tokens >= 20000);
  CHECK(truncated >= 3);
}
