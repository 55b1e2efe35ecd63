#pragma once
// Shared by the io tests: locating the fetched assets without any build-system help.
#include <filesystem>
#include <string>

#include "common/assets.hpp"

namespace lowbit_test {

// $LOWBIT_ASSETS, else <repo>/assets derived from this file's location (tests/ is one below).
inline std::filesystem::path assets() {
  if (const char* env = std::getenv("LOWBIT_ASSETS"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "assets";
}

inline std::filesystem::path model_path() { return assets() / "SmolLM2-135M-Instruct.Q4_1.gguf"; }

}  // namespace lowbit_test
