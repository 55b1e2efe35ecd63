#pragma once
// BERT's uncased WordPiece tokenizer (Devlin et al. 2019, "BERT", §3 and the released
// tokenization.py; Wu et al. 2016 for WordPiece), as Hugging Face tokenizers' BertNormalizer
// + BertPreTokenizer + WordPiece model + [CLS] A [SEP] template, the tokenizer.json that
// all-MiniLM-L6-v2 ships:
//
//  1. normalize (per code point): clean_text drops NUL, U+FFFD and control/format/unassigned
//     characters (category C*, except TAB/LF/CR) and maps whitespace to ' '; CJK ideographs
//     get a space on each side (handle_chinese_chars); every other character becomes
//     lowercase(drop_Mn(NFD(c))) (strip_accents follows lowercase when unset, as here);
//  2. pre-tokenize: split on whitespace, and every punctuation character (Unicode P* or ASCII
//     punctuation) is a word of its own;
//  3. WordPiece: greedy longest match from the left, continuation pieces prefixed "##"; a
//     word longer than 100 characters, or one with a position where no piece matches, is a
//     single [UNK];
//  4. [CLS] ids [SEP], the ids truncated to max_length − 2 first (sentence-transformers
//     tokenizes with truncation at max_seq_length, 256 for all-MiniLM-L6-v2).
//
// Unicode facts come from tools/minilm/wordpiece_tables.hpp (generated). Not modelled: the
// tokenizer.json "added tokens" matched verbatim in the raw text ("[MASK]" typed in a
// sentence) and canonical reordering of non-Mn combining marks across characters.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lowbit/core/error.hpp"
#include "common/bpe_tokenizer.hpp"  // io::detail::decode_utf8
#include "lowbit/io/detail/utf8.hpp"
#include "minilm/wordpiece_tables.hpp"

namespace lowbit::minilm {

namespace detail {

inline char wp_class(std::uint32_t cp) {
  const auto& t = wp_class_ranges;
  auto it = std::upper_bound(std::begin(t), std::end(t), cp, [](std::uint32_t c, const wp_range& r) { return c < r.first; });
  return it != std::begin(t) && cp <= (it - 1)->last ? (it - 1)->cls : '\0';
}

// The CJK Unified Ideograph blocks BERT's _is_chinese_char lists (not Hangul, kana, ...).
inline bool is_cjk_ideograph(std::uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// lowercase(drop_Mn(NFD(cp))) appended to out.
inline void append_normalized(std::vector<std::uint32_t>& out, std::uint32_t cp) {
  if (cp >= 0xAC00 && cp <= 0xD7A3) {  // Hangul syllable: NFD is L V (T) jamo (Unicode §3.12)
    const std::uint32_t s = cp - 0xAC00;
    out.push_back(0x1100 + s / (21 * 28));
    out.push_back(0x1161 + (s % (21 * 28)) / 28);
    if (s % 28 != 0) out.push_back(0x11A7 + s % 28);
    return;
  }
  const auto& t = wp_maps;
  auto it = std::lower_bound(std::begin(t), std::end(t), cp, [](const wp_map& m, std::uint32_t c) { return m.cp < c; });
  if (it != std::end(t) && it->cp == cp) {
    out.insert(out.end(), wp_map_pool + it->offset, wp_map_pool + it->offset + it->length);
    return;
  }
  out.push_back(cp);
}

}  // namespace detail

class wordpiece_tokenizer {
 public:
  static constexpr std::size_t max_input_chars_per_word = 100;

  // vocab[i] is the token of id i (vocab.txt: one token per line).
  explicit wordpiece_tokenizer(std::vector<std::string> vocab) : vocab_(std::move(vocab)) {
    for (std::size_t i = 0; i < vocab_.size(); ++i) ids_.emplace(vocab_[i], static_cast<std::int32_t>(i));
    unk_ = special("[UNK]");
    cls_ = special("[CLS]");
    sep_ = special("[SEP]");
    pad_ = special("[PAD]");
  }

  static wordpiece_tokenizer from_file(const std::filesystem::path& vocab_txt) {
    std::ifstream in(vocab_txt, std::ios::binary);
    lowbit::detail::require(in.good(), "wordpiece_tokenizer: cannot open vocabulary file '", vocab_txt.string(),
                            "' (expected vocab.txt, one token per line; scripts/fetch-assets --minilm)");
    std::vector<std::string> v;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      v.push_back(std::move(line));
    }
    return wordpiece_tokenizer(std::move(v));
  }

  std::size_t size() const { return vocab_.size(); }
  const std::string& token(std::int32_t id) const {
    lowbit::detail::require(id >= 0 && static_cast<std::size_t>(id) < vocab_.size(), "wordpiece_tokenizer::token: id ",
                            id, " is outside [0, ", vocab_.size(), ")");
    return vocab_[static_cast<std::size_t>(id)];
  }
  std::int32_t cls_id() const { return cls_; }
  std::int32_t sep_id() const { return sep_; }
  std::int32_t pad_id() const { return pad_; }
  std::int32_t unk_id() const { return unk_; }

  // Steps 1–2: the normalized words (UTF-8).
  static std::vector<std::string> basic_tokenize(std::string_view text) {
    std::vector<std::uint32_t> norm;
    norm.reserve(text.size());
    for (const auto& c : io::detail::decode_utf8(text)) {
      const std::uint32_t cp = c.cp;
      if (cp == 0xFFFFFFFFu || cp == 0 || cp == 0xFFFD) continue;  // invalid UTF-8 counts as U+FFFD
      const char k = detail::wp_class(cp);
      if (k == 'C' || k == 'M') continue;  // clean_text; strip_accents drops nonspacing marks
      if (k == 'W') {
        norm.push_back(' ');
      } else if (detail::is_cjk_ideograph(cp)) {
        norm.insert(norm.end(), {' ', cp, ' '});
      } else {
        detail::append_normalized(norm, cp);
      }
    }
    std::vector<std::string> words;
    std::string cur;
    auto flush = [&] {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    };
    for (std::uint32_t cp : norm) {
      const char k = detail::wp_class(cp);
      if (k == 'W') {
        flush();
      } else if (k == 'P') {
        flush();
        io::detail::append_utf8(cur, cp);
        flush();
      } else {
        io::detail::append_utf8(cur, cp);
      }
    }
    flush();
    return words;
  }

  // Step 3 on one word, ids appended to out.
  void wordpiece(std::string_view word, std::vector<std::int32_t>& out) const {
    std::vector<std::size_t> bounds;  // byte offsets of character starts, plus the end
    for (std::size_t i = 0; i < word.size(); ++i)
      if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) bounds.push_back(i);
    bounds.push_back(word.size());
    if (bounds.size() - 1 > max_input_chars_per_word) {
      out.push_back(unk_);
      return;
    }
    const std::size_t mark = out.size();
    std::string piece;
    for (std::size_t s = 0; s + 1 < bounds.size();) {
      std::size_t e = bounds.size() - 1;
      std::int32_t id = -1;
      for (; e > s; --e) {
        piece.assign(s > 0 ? "##" : "");
        piece.append(word.substr(bounds[s], bounds[e] - bounds[s]));
        if (auto it = ids_.find(piece); it != ids_.end()) {
          id = it->second;
          break;
        }
      }
      if (id < 0) {  // no piece starts here: the whole word is unknown
        out.resize(mark);
        out.push_back(unk_);
        return;
      }
      out.push_back(id);
      s = e;
    }
  }

  // The model input: [CLS] ids [SEP], at most max_length ids in all.
  std::vector<std::int32_t> encode(std::string_view text, std::size_t max_length = 256) const {
    lowbit::detail::require(max_length >= 2, "wordpiece_tokenizer::encode: max_length ", max_length,
                            " leaves no room for [CLS] and [SEP] (expected >= 2)");
    std::vector<std::int32_t> ids{cls_};
    for (const auto& w : basic_tokenize(text)) wordpiece(w, ids);
    if (ids.size() > max_length - 1) ids.resize(max_length - 1);
    ids.push_back(sep_);
    return ids;
  }

 private:
  std::int32_t special(const char* name) const {
    auto it = ids_.find(name);
    lowbit::detail::require(it != ids_.end(), "wordpiece_tokenizer: the vocabulary has no ", name,
                            " token (expected a BERT vocab.txt)");
    return it->second;
  }

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, std::int32_t> ids_;
  std::int32_t unk_ = 0, cls_ = 0, sep_ = 0, pad_ = 0;
};

}  // namespace lowbit::minilm
