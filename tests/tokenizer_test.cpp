// Byte-level BPE tokenizer: the pre-tokenizer pattern and the merge loop on a hand-made
// vocabulary checked by hand, GGUF loading, and (with the fetched model) SmolLM2's real
// vocabulary against Hugging Face `tokenizers` on real sentences (tests/data/tokenizer).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io_test_support.hpp"
#include "common/bpe_tokenizer.hpp"
#include "lowbit/io/gguf_writer.hpp"
#include "lowbit_catch.hpp"

using lowbit::io::bpe_tokenizer;
using lowbit::io::pre_tokenize;
using lowbit::io::pre_tokenizer;
using ids = std::vector<bpe_tokenizer::token_id>;
using words = std::vector<std::string_view>;

TEST_CASE("tokenizer: GPT-2 byte-to-character map", "[io][tokenizer]") {
  const auto& m = lowbit::io::detail::byte_to_char();
  CHECK(m['a'] == 'a');
  CHECK(m['!'] == '!');
  CHECK(m[' '] == 0x120);   // 'Ġ': the 33rd unprintable byte
  CHECK(m['\n'] == 0x10A);  // 'Ċ'
  CHECK(m[0] == 0x100);
  CHECK(m[0xAD] == 0x143);  // soft hyphen is the last unprintable byte: U+0100 + 67
  std::vector<std::uint32_t> v(m.begin(), m.end());
  std::sort(v.begin(), v.end());
  CHECK(std::adjacent_find(v.begin(), v.end()) == v.end());  // a bijection
}

TEST_CASE("tokenizer: pre-tokenizer splits like GPT-2's pattern", "[io][tokenizer]") {
  const auto g = pre_tokenizer::gpt2, s = pre_tokenizer::smollm;
  CHECK(pre_tokenize("Hello world", g) == words{"Hello", " world"});
  CHECK(pre_tokenize("don't they're I'll we've", g) == words{"don", "'t", " they", "'re", " I", "'ll", " we", "'ve"});
  CHECK(pre_tokenize("DON'T", g) == words{"DON", "'", "T"});  // contractions are case-sensitive
  CHECK(pre_tokenize("a  b", g) == words{"a", " ", " b"});     // \s+(?!\S) leaves one space to the word
  CHECK(pre_tokenize("a   \n b", g) == words{"a", "   \n", " b"});
  CHECK(pre_tokenize("x\ny", g) == words{"x", "\n", "y"});     // a lone newline before a word
  CHECK(pre_tokenize("end  ", g) == words{"end", "  "});       // trailing whitespace in one piece
  CHECK(pre_tokenize("3.14!?", g) == words{"3", ".", "14", "!?"});
  CHECK(pre_tokenize(" ...x", g) == words{" ...", "x"});
  CHECK(pre_tokenize("year 1990", g) == words{"year", " 1990"});
  CHECK(pre_tokenize("year 1990", s) == words{"year", " ", "1", "9", "9", "0"});  // digits isolated first
  CHECK(pre_tokenize("café naïve", g) == words{"café", " naïve"});
  CHECK(pre_tokenize("a\xC2\xA0" "b", g) == words{"a", "\xC2\xA0", "b"});        // NBSP is White_Space
  CHECK(pre_tokenize("\xD9\xA4x", s) == words{"\xD9\xA4", "x"});                 // Arabic-Indic 4 is \p{N}
  CHECK(pre_tokenize("\xFF\xFEz", g) == words{"\xFF\xFE", "z"});                 // invalid UTF-8: "other"
  CHECK(pre_tokenize("", g).empty());
}

namespace {

// A vocabulary of the 256 byte characters (id = byte value) plus merged tokens, with merges
// listed in rank order.
struct tiny {
  std::vector<std::string> tokens;
  std::vector<std::string> merges;
  std::string ch(unsigned char b) const {
    std::string s;
    lowbit::io::detail::append_utf8(s, lowbit::io::detail::byte_to_char()[b]);
    return s;
  }
  tiny() {
    for (int b = 0; b < 256; ++b) tokens.push_back(ch(static_cast<unsigned char>(b)));
    const std::string sp = ch(' ');  // "Ġ"
    // rank 0..5
    for (auto [l, r] : std::vector<std::pair<std::string, std::string>>{
             {"l", "l"}, {"h", "e"}, {"he", "ll"}, {sp, "w"}, {"hell", "o"}, {"a", "a"}}) {
      merges.push_back(l + " " + r);
      if (std::find(tokens.begin(), tokens.end(), l + r) == tokens.end()) tokens.push_back(l + r);
    }
    tokens.push_back("<|end|>");  // a control token
  }
  bpe_tokenizer make(bool with_types = true) const {
    std::vector<std::int32_t> types;
    if (with_types) {
      types.assign(tokens.size(), 1);
      types.back() = bpe_tokenizer::type_control;
    }
    return bpe_tokenizer(tokens, merges, types, pre_tokenizer::smollm);
  }
};

}  // namespace

TEST_CASE("tokenizer: BPE merges by rank on a hand-made vocabulary", "[io][tokenizer]") {
  tiny t;
  const auto tok = t.make();
  // ids: 256 "ll", 257 "he", 258 "hell", 259 "Ġw", 260 "hello", 261 "aa", 262 "<|end|>"
  REQUIRE(tok.vocab_size() == 263);
  // "hello": l+l (rank 0) → h e ll o; h+e (rank 1) → he ll o; he+ll (rank 2) → hell o; hell+o.
  CHECK(tok.encode("hello") == ids{260});
  // " world": "Ġw" merges (rank 3); o, r, l, d stay bytes.
  CHECK(tok.encode("hello world") == ids{260, 259, 'o', 'r', 'l', 'd'});
  // "aaa": the leftmost pair of equal rank merges first → "aa" + "a".
  CHECK(tok.encode("aaa") == ids{261, 'a'});
  CHECK(tok.encode("aaaa") == ids{261, 261});
  // "hel": no "el" merge; "he" then "l" (the "ll" merge needs two l's).
  CHECK(tok.encode("hel") == ids{257, 'l'});
  // digits are isolated by the smollm pre-tokenizer, so "aa1aa" never merges across the 1.
  CHECK(tok.encode("aa1aa") == ids{261, '1', 261});
  CHECK(tok.encode("") == ids{});
  // control tokens: only with parse_special
  CHECK(tok.encode("x<|end|>y", true) == ids{'x', 262, 'y'});
  CHECK(tok.encode("<|end|><|end|>", true) == ids{262, 262});
  CHECK(tok.encode("x<|end|>", false).size() == 8);
  CHECK(t.make(false).encode("x<|end|>y", true).size() == 9);  // without types nothing is special
  // decoding inverts encoding exactly, including bytes that are not valid UTF-8
  for (const std::string& s : std::vector<std::string>{"hello world", "aaa\n\n  b", "x<|end|>y", "\xFF\x01\x80 caf\xC3\xA9", std::string("\0z", 2)}) {
    CHECK(tok.decode(tok.encode(s)) == s);
    CHECK(tok.decode(tok.encode(s, true)) == s);
  }
  CHECK_THROWS_WITH(tok.decode(ids{263}), Catch::Contains("outside the vocabulary"));
  CHECK_THROWS_WITH(tok.decode(ids{-1}), Catch::Contains("outside the vocabulary"));
}

TEST_CASE("tokenizer: inconsistent vocabularies are rejected", "[io][tokenizer]") {
  tiny t;
  auto bad = t.merges;
  bad.push_back("h q");  // "hq" is not in the vocabulary
  CHECK_THROWS_WITH(bpe_tokenizer(t.tokens, bad), Catch::Contains("not in the vocabulary"));
  CHECK_THROWS_WITH(bpe_tokenizer(t.tokens, {"hello"}), Catch::Contains("is not \"left right\""));
  CHECK_THROWS_WITH(bpe_tokenizer(t.tokens, {"a b c"}), Catch::Contains("is not \"left right\""));
  CHECK_THROWS_WITH(bpe_tokenizer({}, {}), Catch::Contains("empty vocabulary"));
  CHECK_THROWS_WITH(bpe_tokenizer(t.tokens, t.merges, {1, 2}), Catch::Contains("token types"));
  // a vocabulary without every byte cannot encode every text
  bpe_tokenizer partial({"a", "b"}, {});
  CHECK(partial.encode("ab") == ids{0, 1});
  CHECK_THROWS_WITH(partial.encode("c"), Catch::Contains("no token for byte 0x63"));
}

TEST_CASE("tokenizer: from a GGUF file's metadata", "[io][tokenizer]") {
  tiny t;
  lowbit::io::gguf_writer w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "smollm");
  w.set_string_array("tokenizer.ggml.tokens", t.tokens);
  w.set_string_array("tokenizer.ggml.merges", t.merges);
  std::vector<std::int32_t> types(t.tokens.size(), 1);
  types.back() = 3;
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 262);
  w.set_u32("tokenizer.ggml.eos_token_id", 262);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  auto f = lowbit::io::gguf_file::from_memory(w.bytes());
  const auto tok = bpe_tokenizer::from_gguf(f);
  CHECK(tok.pre() == pre_tokenizer::smollm);
  CHECK(tok.bos() == 262);
  CHECK(tok.eos() == 262);
  CHECK_FALSE(tok.add_bos());
  CHECK(tok.encode("hello<|end|>", true) == ids{260, 262});

  lowbit::io::gguf_writer w2;
  w2.set_string("tokenizer.ggml.model", "llama");
  CHECK_THROWS_WITH(bpe_tokenizer::from_gguf(lowbit::io::gguf_file::from_memory(w2.bytes())),
                    Catch::Contains("only byte-level BPE"));
  lowbit::io::gguf_writer w3;
  w3.set_string("tokenizer.ggml.model", "gpt2");
  w3.set_string("tokenizer.ggml.pre", "qwen2");
  CHECK_THROWS_WITH(bpe_tokenizer::from_gguf(lowbit::io::gguf_file::from_memory(w3.bytes())),
                    Catch::Contains("'qwen2' is not supported"));
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
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
  }
  return out;
}

}  // namespace

TEST_CASE("tokenizer: SmolLM2 matches Hugging Face tokenizers on real sentences", "[io][tokenizer][model]") {
  const auto path = lowbit_test::model_path();
  if (!std::filesystem::exists(path)) {
    WARN("SKIPPED: " << path << " not found; run scripts/fetch-assets (or set LOWBIT_ASSETS)");
    return;
  }
  const auto tok = bpe_tokenizer::from_gguf(lowbit::io::gguf_file::open(path.string()));
  CHECK(tok.vocab_size() == 49152);
  CHECK(tok.pre() == pre_tokenizer::smollm);
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  const auto expected = std::filesystem::path(__FILE__).parent_path() / "data" / "tokenizer" / "expected.tsv";
  std::ifstream in(expected);
  REQUIRE(in.good());
  std::string line;
  int rows = 0, tokens = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    REQUIRE(t2 != std::string::npos);
    const bool special = line[0] == '1';
    const auto text = unescape(std::string_view(line).substr(t1 + 1, t2 - t1 - 1));
    ids want;
    std::istringstream is(line.substr(t2 + 1));
    for (bpe_tokenizer::token_id id; is >> id;) want.push_back(id);
    const auto got = tok.encode(text, special);
    INFO("text: " << text);
    CHECK(got == want);
    CHECK(tok.decode(got) == text);
    ++rows;
    tokens += int(want.size());
  }
  CHECK(rows >= 350);
  CHECK(tokens >= 10000);
}
