#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Where scripts/fetch-assets puts the real model and texts: $LOWBIT_ASSETS if set, else
// <source tree>/assets when the including program defines LOWBIT_SOURCE_DIR, else ./assets.
// Layout (docs/data.md):
//   <assets>/SmolLM2-135M-Instruct.Q4_1.gguf
//   <assets>/all-MiniLM-L6-v2/model.safetensors          (optional, --minilm)
//   <assets>/text/austen-calibration.txt, austen-evaluation.txt
#include <cstdlib>
#include <filesystem>
#include <string>

namespace lowbit::inline LOWBIT_ABI::io {

inline std::filesystem::path assets_dir() {
  if (const char* env = std::getenv("LOWBIT_ASSETS"); env != nullptr && *env != '\0') return env;
#if defined(LOWBIT_SOURCE_DIR)
  return std::filesystem::path(LOWBIT_SOURCE_DIR) / "assets";
#else
  return "assets";
#endif
}

inline std::filesystem::path default_model_path() { return assets_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf"; }

}  // namespace lowbit::io
