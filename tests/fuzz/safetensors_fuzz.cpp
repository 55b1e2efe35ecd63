// libFuzzer target: the safetensors reader (and its JSON parser) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lowbit/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    const auto f = lowbit::io::safetensors_file::from_memory(std::move(bytes));
    for (const auto& [k, v] : f.metadata()) (void)f.metadata(k);
    for (const auto& t : f.tensors()) {
      if (t.n_elements() > (1u << 16)) continue;
      try {
        (void)f.load_vector(t.name);
        (void)f.load_matrix(t.name);
      } catch (const lowbit::error&) {  // F8 dtypes have no float conversion
      }
    }
  } catch (const lowbit::error&) {
  }
  // The JSON parser alone, on the same bytes.
  try {
    (void)lowbit::io::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const lowbit::error&) {
  }
  return 0;
}
