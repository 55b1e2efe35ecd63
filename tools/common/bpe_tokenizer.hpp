#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Byte-level BPE tokenizer (GPT-2; Radford et al. 2019, "Language Models are Unsupervised
// Multitask Learners", §2.2), built from a GGUF file's `tokenizer.ggml.tokens` and
// `tokenizer.ggml.merges`, as used by SmolLM2 and other Llama-architecture models.
//
// Encoding a text:
//  1. special (control / user-defined) tokens such as <|im_start|> are cut out first when
//     parse_special is on;
//  2. pre-tokenization splits the rest into words. `smollm` (tokenizer.ggml.pre = "smollm",
//     also StarCoder's) first isolates every \p{N} code point, then applies GPT-2's pattern
//         's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     to each piece; `gpt2` applies only the pattern. The pattern is matched by hand (no
//     regex engine), with Unicode L / N tables generated from the Unicode database and \s as
//     the White_Space property;
//  3. each word's UTF-8 bytes become one symbol each (GPT-2 maps the 256 bytes to printable
//     characters, which is how the vocabulary spells them), and the adjacent pair with the
//     lowest merge rank is merged, leftmost first, until no listed pair remains (Sennrich et
//     al. 2016, "Neural Machine Translation of Rare Words with Subword Units").
// Decoding maps the characters back to bytes, so decode(encode(text)) == text for any text.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/detail/utf8.hpp"
#include "common/unicode_tables.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/json.hpp"

namespace lowbit::inline LOWBIT_ABI::io {

enum class pre_tokenizer { gpt2, smollm };

namespace detail {

enum class char_class { letter, number, space, other };

inline bool is_white_space(std::uint32_t cp) {  // Unicode White_Space property
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

inline char_class classify(std::uint32_t cp) {
  if (cp < 0x80) {  // fast path for ASCII
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return char_class::letter;
    if (cp >= '0' && cp <= '9') return char_class::number;
    return is_white_space(cp) ? char_class::space : char_class::other;
  }
  if (is_white_space(cp)) return char_class::space;
  const auto& t = unicode_letter_number_ranges;
  const auto* it = std::upper_bound(std::begin(t), std::end(t), cp,
                                    [](std::uint32_t c, const unicode_range& r) { return c < r.first; });
  if (it != std::begin(t) && cp <= (it - 1)->last) return (it - 1)->cls == 'L' ? char_class::letter : char_class::number;
  return char_class::other;
}

// One code point of the input with where its bytes are. Invalid UTF-8 bytes become single
// "other" characters, so any byte string can be encoded (and decodes back to itself).
struct code_point {
  std::uint32_t cp;
  std::uint32_t begin, end;  // byte range in the text
  char_class cls;
};

inline std::vector<code_point> decode_utf8(std::string_view s) {
  std::vector<code_point> out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0, min = 0;
    if (b0 < 0x80) n = 0, cp = b0;
    else if ((b0 & 0xE0) == 0xC0) n = 1, cp = b0 & 0x1Fu, min = 0x80;
    else if ((b0 & 0xF0) == 0xE0) n = 2, cp = b0 & 0x0Fu, min = 0x800;
    else if ((b0 & 0xF8) == 0xF0) n = 3, cp = b0 & 0x07u, min = 0x10000;
    else n = 99;
    bool ok = n != 99 && i + n < s.size();  // the n continuation bytes must exist
    for (std::size_t k = 1; ok && k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (b & 0x3Fu);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF are not valid UTF-8 (RFC 3629).
    if (ok && n > 0 && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (!ok) {
      out.push_back({0xFFFFFFFFu, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + 1), char_class::other});
      i += 1;
      continue;
    }
    out.push_back({cp, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + n + 1), classify(cp)});
    i += n + 1;
  }
  return out;
}

// GPT-2's pattern on cps[b, e); appends [begin, end) code point index ranges of the words.
inline void gpt2_split(const std::vector<code_point>& c, std::size_t b, std::size_t e,
                       std::vector<std::pair<std::size_t, std::size_t>>& words) {
  auto cls = [&](std::size_t i) { return c[i].cls; };
  auto run = [&](std::size_t i, char_class k) {
    while (i < e && cls(i) == k) ++i;
    return i;
  };
  std::size_t i = b;
  while (i < e) {
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in GPT-2)
    if (c[i].cp == '\'' && i + 1 < e) {
      const auto c1 = c[i + 1].cp;
      const auto c2 = i + 2 < e ? c[i + 2].cp : 0u;
      std::size_t len = 0;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') len = 2;
      else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) len = 3;
      if (len > 0) {
        words.emplace_back(i, i + len);
        i += len;
        continue;
      }
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional U+0020 then a run of one class
    const std::size_t s = (c[i].cp == ' ' && i + 1 < e && cls(i + 1) != char_class::space) ? i + 1 : i;
    const char_class k = cls(s);
    if (k != char_class::space) {
      std::size_t j;
      if (k == char_class::other) {
        j = s;
        while (j < e && cls(j) == char_class::other) ++j;
      } else {
        j = run(s, k);
      }
      words.emplace_back(i, j);
      i = j;
      continue;
    }
    // '\s+(?!\S)': whitespace not followed by a non-space, so a run before a word leaves its
    // last space to that word; '\s+' takes a lone whitespace character before a non-space.
    const std::size_t j = run(i, char_class::space);
    if (j == e || j - i == 1) {
      words.emplace_back(i, j);
      i = j;
    } else {
      words.emplace_back(i, j - 1);
      i = j - 1;
    }
  }
}

// GPT-2's reversible byte ↔ printable character map (bytes_to_unicode in GPT-2's encoder.py):
// printable Latin-1 bytes map to themselves, the other 68 to U+0100 + n in byte order.
inline const std::array<std::uint32_t, 256>& byte_to_char() {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    std::uint32_t n = 0;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : 0x100 + n++;
    }
    return t;
  }();
  return table;
}

}  // namespace detail

// Splits text into pre-tokenizer words (UTF-8 byte ranges), exposed for tests and tools.
inline std::vector<std::string_view> pre_tokenize(std::string_view text, pre_tokenizer kind) {
  const auto cps = detail::decode_utf8(text);
  std::vector<std::pair<std::size_t, std::size_t>> words;
  if (kind == pre_tokenizer::gpt2) {
    detail::gpt2_split(cps, 0, cps.size(), words);
  } else {  // smollm: every \p{N} code point is a piece of its own, then GPT-2's pattern per piece
    std::size_t start = 0;
    for (std::size_t i = 0; i <= cps.size(); ++i) {
      if (i == cps.size() || cps[i].cls == detail::char_class::number) {
        detail::gpt2_split(cps, start, i, words);
        if (i < cps.size()) words.emplace_back(i, i + 1);
        start = i + 1;
      }
    }
  }
  std::vector<std::string_view> out;
  out.reserve(words.size());
  for (auto [b, e] : words) out.push_back(text.substr(cps[b].begin, cps[e - 1].end - cps[b].begin));
  return out;
}

class bpe_tokenizer {
 public:
  using token_id = std::int32_t;
  // GGUF token types (llama.cpp's llama_token_type): 1 normal, 2 unknown, 3 control,
  // 4 user-defined, 5 unused, 6 byte.
  static constexpr std::int32_t type_control = 3, type_user_defined = 4;

  // tokens: the vocabulary in GPT-2's byte-to-character spelling; merges: "left right" in
  // priority order; types: per-token GGUF types (control / user-defined tokens are special).
  bpe_tokenizer(std::vector<std::string> tokens, const std::vector<std::string>& merges,
                std::vector<std::int32_t> types = {}, pre_tokenizer pre = pre_tokenizer::smollm)
      : tokens_(std::move(tokens)), types_(std::move(types)), pre_(pre) {
    lowbit::detail::require(!tokens_.empty(), "bpe_tokenizer: empty vocabulary");
    lowbit::detail::require(tokens_.size() < static_cast<std::size_t>(std::numeric_limits<token_id>::max()),
                            "bpe_tokenizer: vocabulary too large");
    lowbit::detail::require(types_.empty() || types_.size() == tokens_.size(), "bpe_tokenizer: ", types_.size(),
                            " token types for ", tokens_.size(), " tokens");
    ids_.reserve(tokens_.size());
    for (std::size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<token_id>(i));
    const auto& b2c = detail::byte_to_char();
    for (std::size_t b = 0; b < 256; ++b) {
      std::string s;
      detail::append_utf8(s, b2c[b]);
      auto it = ids_.find(s);
      byte_token_[b] = it == ids_.end() ? -1 : it->second;
      char_to_byte_.emplace(b2c[b], static_cast<std::uint8_t>(b));
    }
    merges_.reserve(merges.size());
    for (std::size_t r = 0; r < merges.size(); ++r) {
      const auto& m = merges[r];
      const auto sp = m.find(' ');
      lowbit::detail::require(sp != std::string::npos && sp > 0 && sp + 1 < m.size() && m.find(' ', sp + 1) == std::string::npos,
                              "bpe_tokenizer: merge ", r, " '", m, "' is not \"left right\"");
      const auto l = ids_.find(std::string_view(m).substr(0, sp));
      const auto rr = ids_.find(std::string_view(m).substr(sp + 1));
      const auto merged = ids_.find(m.substr(0, sp) + m.substr(sp + 1));
      lowbit::detail::require(l != ids_.end() && rr != ids_.end() && merged != ids_.end(), "bpe_tokenizer: merge ", r,
                              " '", m, "' uses or makes a token that is not in the vocabulary");
      // The first listing of a pair wins (a repeated merge would never fire anyway).
      merges_.emplace(key(l->second, rr->second), std::pair<token_id, token_id>{static_cast<token_id>(r), merged->second});
    }
    for (std::size_t i = 0; i < types_.size(); ++i)
      if ((types_[i] == type_control || types_[i] == type_user_defined) && !tokens_[i].empty())
        special_.emplace_back(tokens_[i], static_cast<token_id>(i));
    // Longest first, so a special token that is a prefix of another never shadows it.
    std::sort(special_.begin(), special_.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }

  // From a GGUF file: tokenizer.ggml.model must be "gpt2" (byte-level BPE).
  static bpe_tokenizer from_gguf(const gguf_file& f) {
    const auto model = f.get_string("tokenizer.ggml.model");
    lowbit::detail::require(model == "gpt2", f.name(), ": tokenizer.ggml.model is '", model,
                            "', only byte-level BPE ('gpt2') is supported");
    pre_tokenizer pre = pre_tokenizer::gpt2;
    if (f.has("tokenizer.ggml.pre")) {
      const auto p = f.get_string("tokenizer.ggml.pre");
      if (p == "smollm" || p == "starcoder" || p == "refact" || p == "codeshell") pre = pre_tokenizer::smollm;
      else if (p == "gpt-2" || p == "gpt2") pre = pre_tokenizer::gpt2;
      else lowbit::detail::fail(f.name(), ": pre-tokenizer '", p, "' is not supported (smollm, starcoder, gpt-2)");
    }
    std::vector<std::int32_t> types;
    if (f.has("tokenizer.ggml.token_type")) {
      for (auto t : f.get_int_array("tokenizer.ggml.token_type")) types.push_back(static_cast<std::int32_t>(t));
    }
    bpe_tokenizer tok(f.get_string_array("tokenizer.ggml.tokens"), f.get_string_array("tokenizer.ggml.merges"),
                      std::move(types), pre);
    auto id = [&](std::string_view k) -> std::optional<token_id> {
      if (!f.has(k)) return std::nullopt;
      const auto v = f.get_uint(k);
      lowbit::detail::require(v < tok.tokens_.size(), f.name(), ": ", k, " = ", v, " is outside the vocabulary");
      return static_cast<token_id>(v);
    };
    tok.bos_ = id("tokenizer.ggml.bos_token_id");
    tok.eos_ = id("tokenizer.ggml.eos_token_id");
    tok.add_bos_ = f.has("tokenizer.ggml.add_bos_token") && f.get_bool("tokenizer.ggml.add_bos_token");
    return tok;
  }

  // From a Hugging Face tokenizer.json (the `tokenizers` library's format): model.type
  // "BPE" with vocab and merges ("a b" strings or ["a", "b"] pairs), added_tokens (special:
  // control, else user-defined), no normalizer, and a pre-tokenizer this class implements:
  // ByteLevel (use_regex, no prefix space) is `gpt2`; Sequence [Digits(individual_digits),
  // ByteLevel] is `smollm`. Anything else (Llama 3's / Qwen2's Split regexes, NFC
  // normalizers, byte_fallback, ignore_merges) is refused by name rather than tokenized
  // differently. BOS is prepended when post_processor is a TemplateProcessing that starts
  // with a special token; bos / eos (config.json's ids) are checked against the vocabulary.
  static bpe_tokenizer from_tokenizer_json(std::string_view text, std::string_view name = "tokenizer.json",
                                           std::optional<token_id> bos = {}, std::optional<token_id> eos = {}) {
    const std::string where(name);
    json_value root;
    lowbit::detail::with_context([&] { root = parse_json(text); }, where, ": ");
    auto fail = [&](auto&&... a) { lowbit::detail::fail(where, ": ", a...); };
    if (!root.is_object()) fail("not a JSON object");
    auto str_or_null = [&](const json_value* v) -> std::string {
      if (v == nullptr || v->is_null()) return {};
      if (!v->is_string()) fail("expected a string or null");
      return v->as_string();
    };
    auto flag = [&](const json_value* obj, std::string_view key, bool dflt) {
      const json_value* v = obj->find(key);
      if (v == nullptr || v->is_null()) return dflt;
      if (!v->is_bool()) fail("'", key, "' is not a boolean");
      return v->as_bool();
    };
    const json_value* model = root.find("model");
    if (model == nullptr || !model->is_object()) fail("no 'model' object");
    const std::string type = str_or_null(model->find("type"));
    if (type != "BPE") fail("model type '", type, "' is not supported (byte-level BPE only)");
    if (flag(model, "byte_fallback", false)) fail("model.byte_fallback (SentencePiece-style BPE) is not supported");
    if (flag(model, "ignore_merges", false)) fail("model.ignore_merges (Llama 3 style) is not supported");
    if (!str_or_null(model->find("continuing_subword_prefix")).empty() || !str_or_null(model->find("end_of_word_suffix")).empty())
      fail("model.continuing_subword_prefix / end_of_word_suffix are not supported");
    if (const auto* d = model->find("dropout"); d != nullptr && !d->is_null()) fail("model.dropout is not supported");
    if (const auto* n = root.find("normalizer"); n != nullptr && !n->is_null())
      fail("normalizer '", n->is_object() ? str_or_null(n->find("type")) : std::string("?"), "' is not supported (none expected)");

    // Pre-tokenizer.
    auto byte_level = [&](const json_value& v) {
      if (!v.is_object() || str_or_null(v.find("type")) != "ByteLevel") return false;
      if (flag(&v, "add_prefix_space", false)) fail("pre_tokenizer ByteLevel with add_prefix_space is not supported");
      if (!flag(&v, "use_regex", true)) fail("pre_tokenizer ByteLevel without use_regex is not supported");
      return true;
    };
    const json_value* pt = root.find("pre_tokenizer");
    if (pt == nullptr || !pt->is_object()) fail("no pre_tokenizer (byte-level BPE needs one)");
    pre_tokenizer pre = pre_tokenizer::gpt2;
    const std::string pt_type = str_or_null(pt->find("type"));
    if (byte_level(*pt)) {
      pre = pre_tokenizer::gpt2;
    } else if (pt_type == "Sequence") {
      const auto* list = pt->find("pretokenizers");
      bool ok = list != nullptr && list->is_array() && list->items().size() == 2;
      if (ok) {
        const auto& d = list->items()[0];
        ok = d.is_object() && str_or_null(d.find("type")) == "Digits" && flag(&d, "individual_digits", false) &&
             byte_level(list->items()[1]);
      }
      if (!ok) fail("pre_tokenizer Sequence is not [Digits(individual_digits), ByteLevel]: not supported");
      pre = pre_tokenizer::smollm;
    } else {
      std::string what = pt_type;
      if (pt_type == "Split") {
        const auto* pat = pt->find("pattern");
        if (pat != nullptr && pat->is_object()) {
          const auto* r = pat->find("Regex");
          if (r != nullptr && r->is_string()) what += " with regex " + r->as_string();
        }
      }
      fail("pre_tokenizer '", what, "' is not supported (ByteLevel = GPT-2, Sequence [Digits, ByteLevel] = SmolLM)");
    }

    // Vocabulary: model.vocab plus added_tokens, ids dense from 0.
    const json_value* vocab = model->find("vocab");
    if (vocab == nullptr || !vocab->is_object()) fail("model.vocab is not an object");
    std::vector<std::string> tokens;
    std::vector<bool> have;
    auto put = [&](const std::string& tok, const json_value& idv) {
      if (!idv.is_u64() || idv.as_u64() >= (1u << 30)) fail("token '", tok, "' has an id that is not a small non-negative integer");
      const auto id = static_cast<std::size_t>(idv.as_u64());
      if (id >= tokens.size()) tokens.resize(id + 1), have.resize(id + 1, false);
      if (have[id] && tokens[id] != tok) fail("id ", id, " is both '", tokens[id], "' and '", tok, "'");
      tokens[id] = tok;
      have[id] = true;
      return id;
    };
    for (std::size_t i = 0; i < vocab->keys().size(); ++i) put(vocab->keys()[i], vocab->values()[i]);
    std::vector<std::pair<std::size_t, bool>> added;  // (id, special)
    if (const auto* at = root.find("added_tokens"); at != nullptr && !at->is_null()) {
      if (!at->is_array()) fail("added_tokens is not an array");
      for (const auto& t : at->items()) {
        if (!t.is_object() || t.find("id") == nullptr || t.find("content") == nullptr || !t.find("content")->is_string())
          fail("an added_tokens entry lacks id / content");
        added.emplace_back(put(t.find("content")->as_string(), *t.find("id")), flag(&t, "special", false));
      }
    }
    for (std::size_t i = 0; i < have.size(); ++i)
      if (!have[i]) fail("no token has id ", i, " (ids must be 0 ... ", have.size() - 1, " without gaps)");
    std::vector<std::int32_t> types(tokens.size(), 1);
    for (auto [id, special] : added) types[id] = special ? type_control : type_user_defined;

    const json_value* mj = model->find("merges");
    if (mj == nullptr || !mj->is_array()) fail("model.merges is not an array");
    std::vector<std::string> merges;
    merges.reserve(mj->items().size());
    for (const auto& m : mj->items()) {
      if (m.is_string()) merges.push_back(m.as_string());
      else if (m.is_array() && m.items().size() == 2 && m.items()[0].is_string() && m.items()[1].is_string())
        merges.push_back(m.items()[0].as_string() + " " + m.items()[1].as_string());
      else fail("model.merges entry ", merges.size(), " is neither \"a b\" nor [\"a\", \"b\"]");
    }

    // BOS from the post-processor's template, if it starts with a special token.
    bool add_bos = false;
    if (const auto* pp = root.find("post_processor"); pp != nullptr && !pp->is_null()) {
      const std::string t = pp->is_object() ? str_or_null(pp->find("type")) : std::string();
      if (t == "TemplateProcessing") {
        const auto* single = pp->find("single");
        if (single == nullptr || !single->is_array() || single->items().empty()) fail("post_processor.single is empty");
        const auto& first = single->items()[0];
        if (first.is_object() && first.find("SpecialToken") != nullptr) {
          const auto* st = first.find("SpecialToken");
          const std::string tok = st->is_object() ? str_or_null(st->find("id")) : std::string();
          const auto it = std::find(tokens.begin(), tokens.end(), tok);
          if (it == tokens.end()) fail("post_processor prepends '", tok, "', which is not in the vocabulary");
          add_bos = true;
          bos = static_cast<token_id>(it - tokens.begin());
        }
      } else if (t != "ByteLevel") {
        fail("post_processor '", t, "' is not supported (ByteLevel or TemplateProcessing)");
      }
    }
    bpe_tokenizer tok(std::move(tokens), merges, std::move(types), pre);
    for (auto id : {bos, eos})
      if (id && (*id < 0 || static_cast<std::size_t>(*id) >= tok.tokens_.size()))
        fail("special token id ", *id, " is outside the vocabulary of ", tok.tokens_.size());
    tok.bos_ = bos;
    tok.eos_ = eos;
    tok.add_bos_ = add_bos;
    return tok;
  }

  std::size_t vocab_size() const { return tokens_.size(); }
  pre_tokenizer pre() const { return pre_; }
  std::optional<token_id> bos() const { return bos_; }
  std::optional<token_id> eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }  // whether the model expects BOS before a text
  const std::string& token(token_id id) const { return tokens_.at(static_cast<std::size_t>(id)); }

  // Token ids of `text`. With parse_special, the texts of control / user-defined tokens
  // (<|im_start|>, ...) become those tokens; otherwise they are ordinary text.
  std::vector<token_id> encode(std::string_view text, bool parse_special = false) const {
    std::vector<token_id> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t next = text.size();
      const std::pair<std::string, token_id>* hit = nullptr;
      if (parse_special) {  // earliest occurrence; at equal positions the longest token
        for (const auto& sp : special_) {
          const auto at = text.find(sp.first, pos);
          if (at < next) {
            next = at;
            hit = &sp;
          }
        }
      }
      for (auto word : pre_tokenize(text.substr(pos, next - pos), pre_)) bpe(word, out);
      if (hit == nullptr) break;
      out.push_back(hit->second);
      pos = next + hit->first.size();
    }
    return out;
  }

  // The bytes the ids stand for (exact inverse of encode).
  std::string decode(std::span<const token_id> ids) const {
    std::string out;
    for (auto id : ids) {
      lowbit::detail::require(id >= 0 && static_cast<std::size_t>(id) < tokens_.size(), "bpe_tokenizer::decode: id ",
                              id, " is outside the vocabulary of ", tokens_.size());
      for (const auto& c : detail::decode_utf8(tokens_[static_cast<std::size_t>(id)])) {
        const auto it = char_to_byte_.find(c.cp);
        if (it != char_to_byte_.end()) out += static_cast<char>(it->second);
        else if (c.cp != 0xFFFFFFFFu) detail::append_utf8(out, c.cp);
      }
    }
    return out;
  }

 private:
  static std::uint64_t key(token_id a, token_id b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  // Merges one word's byte symbols by rank (lowest first, leftmost on ties).
  void bpe(std::string_view word, std::vector<token_id>& out) const {
    std::vector<token_id> sym;
    sym.reserve(word.size());
    for (char ch : word) {
      const auto t = byte_token_[static_cast<unsigned char>(ch)];
      if (t < 0)
        lowbit::detail::fail("bpe_tokenizer: the vocabulary has no token for byte 0x", std::hex,
                             int(static_cast<unsigned char>(ch)));
      sym.push_back(t);
    }
    while (sym.size() > 1) {
      token_id best_rank = std::numeric_limits<token_id>::max(), merged = -1;
      std::size_t best = 0;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        const auto it = merges_.find(key(sym[i], sym[i + 1]));
        if (it != merges_.end() && it->second.first < best_rank) {
          best_rank = it->second.first;
          merged = it->second.second;
          best = i;
        }
      }
      if (merged < 0) break;
      sym[best] = merged;
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    out.insert(out.end(), sym.begin(), sym.end());
  }

  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> tokens_;
  std::vector<std::int32_t> types_;
  pre_tokenizer pre_;
  std::unordered_map<std::string, token_id, string_hash, std::equal_to<>> ids_;
  std::array<token_id, 256> byte_token_{};
  std::unordered_map<std::uint32_t, std::uint8_t> char_to_byte_;
  std::unordered_map<std::uint64_t, std::pair<token_id, token_id>> merges_;  // (left,right) → (rank, merged)
  std::vector<std::pair<std::string, token_id>> special_;
  std::optional<token_id> bos_, eos_;
  bool add_bos_ = false;
};

}  // namespace lowbit::io
