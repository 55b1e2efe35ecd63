#pragma once
// Text → token ids for lowbit-quantize: the model's own byte-level BPE tokenizer read from
// the GGUF (tools/common/bpe_tokenizer.hpp). A file ending in ".ids" is taken as already
// tokenized: raw little-endian int32 ids (handy to evaluate exactly the ids another tool
// produced).
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/gguf.hpp"
#if __has_include("common/bpe_tokenizer.hpp")
#include "common/bpe_tokenizer.hpp"
#define LOWBIT_TOOLS_HAVE_TOKENIZER 1
#endif

namespace lowbit::tools {

inline std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  detail::require(static_cast<bool>(in), what, " '", path, "' cannot be read",
                  std::filesystem::exists(path) ? "" : " (no such file; run scripts/fetch-assets for the default assets)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A ".ids" file holds pre-tokenized text: raw int32 token ids. Returns false for any other path.
inline bool read_ids_file(const std::string& path, const char* what, std::vector<std::int32_t>& ids) {
  if (path.size() <= 4 || path.compare(path.size() - 4, 4, ".ids") != 0) return false;
  const std::string bytes = read_text_file(path, what);
  detail::require(bytes.size() % 4 == 0, what, " '", path, "' holds ", bytes.size(), " bytes, not a whole number of int32 ids");
  ids.resize(bytes.size() / 4);
  std::memcpy(ids.data(), bytes.data(), bytes.size());
  return true;
}

inline std::vector<std::int32_t> load_tokens(const io::gguf_file& model, const std::string& path, const char* what) {
  if (std::vector<std::int32_t> ids; read_ids_file(path, what, ids)) return ids;
  const std::string text = read_text_file(path, what);
#if defined(LOWBIT_TOOLS_HAVE_TOKENIZER)
  const auto tok = io::bpe_tokenizer::from_gguf(model);
  return tok.encode(text);
#else
  (void)model;
  detail::fail("this build has no BPE tokenizer (tools/common/bpe_tokenizer.hpp); pass pre-tokenized ", what, " as a .ids file");
#endif
}

#if defined(LOWBIT_TOOLS_HAVE_TOKENIZER)
// The same with a tokenizer already built (a Hugging Face folder's tokenizer.json:
// hf_checkpoint::load_tokenizer in model/hf_checkpoint.hpp). ".ids" files as above.
inline std::vector<std::int32_t> load_tokens(const io::bpe_tokenizer& tok, const std::string& path, const char* what) {
  if (std::vector<std::int32_t> ids; read_ids_file(path, what, ids)) return ids;
  return tok.encode(read_text_file(path, what));
}
#endif

}  // namespace lowbit::tools
