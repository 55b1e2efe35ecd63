// libFuzzer target: the GGUF reader (and the tokenizer built from GGUF metadata) on arbitrary
// bytes. Any input must give a valid file or a lowbit::error; ASan/UBSan catch the rest.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/bpe_tokenizer.hpp"
#include "lowbit/io/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    const auto f = lowbit::io::gguf_file::from_memory(std::move(bytes));
    for (const auto& key : f.keys()) {
      try {
        const auto& v = f.value(key);
        if (v.is_array()) {
          (void)f.get_int_array(key);
          (void)f.get_float_array(key);
          (void)f.get_string_array(key);
        } else {
          (void)f.get_uint(key);
          (void)f.get_float(key);
          (void)f.get_string(key);
        }
      } catch (const lowbit::error&) {
      }
    }
    for (const auto& t : f.tensors()) {
      const auto tr = lowbit::io::type_traits(t.type);
      if (tr && tr->dequantizable && t.n_elements() <= (1u << 16)) {
        (void)f.load_vector(t.name);
        (void)f.load_matrix(t.name);
      }
    }
    try {
      const auto tok = lowbit::io::bpe_tokenizer::from_gguf(f);
      const auto ids = tok.encode("Hello, world 123 <|im_start|> caf\xC3\xA9", true);
      (void)tok.decode(ids);
    } catch (const lowbit::error&) {
    }
  } catch (const lowbit::error&) {
  }
  return 0;
}
