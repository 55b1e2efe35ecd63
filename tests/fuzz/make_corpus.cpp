// Writes the seed inputs of the lowbit-format fuzz targets (interop_gguf, interop_int32, lowbit_file;
// committed under corpus/<target>/; rerun after a format change):
//   c++ -std=c++20 -I include -I /usr/include/eigen3 tests/fuzz/make_corpus.cpp -o /tmp/mk && /tmp/mk tests/fuzz/corpus
// Small valid files (under the targets' 4096-byte -max_len) from which mutations start.
#include <fstream>
#include <random>
#include <string>

#include "lowbit/io/interop_autoawq.hpp"
#include "lowbit/io/interop_gguf.hpp"
#include "lowbit/io/lowbit_format.hpp"

using namespace lowbit;
using namespace lowbit::io;

namespace {
void save(const std::string& path, const std::vector<std::byte>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
template <class PM>
PM filled(lowbit::index rows, lowbit::index cols, axis ax, unsigned seed, std::vector<std::int32_t> weak = {}) {
  std::mt19937 rng(seed);
  PM pm(rows, cols, ax, weak);
  for (auto& b : pm.codes()) b = static_cast<std::uint8_t>(rng());
  for (lowbit::index i = 0; i < static_cast<lowbit::index>(pm.stats().scales().size()); ++i)
    pm.stats().set(i, grid_params{0.01f * static_cast<float>(1 + rng() % 100), static_cast<float>(1 + rng() % PM::max_code)});
  if constexpr (std::is_same_v<typename PM::outlier_policy, dense_columns>)
    for (auto& v : pm.outliers().values) v = half(0.5f);
  if constexpr (std::is_same_v<typename PM::outlier_policy, sparse_outliers>) {
    auto& o = pm.outliers();
    for (lowbit::index r = 0; r < rows; ++r) {
      o.col.push_back(static_cast<std::uint16_t>(r % cols));
      o.values.push_back(half(1.5f));
      o.row_ptr[static_cast<std::size_t>(r) + 1] = static_cast<std::uint32_t>(o.col.size());
    }
  }
  return pm;
}
std::vector<std::byte> with_mode(std::uint8_t mode, const std::vector<std::byte>& b) {
  std::vector<std::byte> out{static_cast<std::byte>(mode)};
  out.insert(out.end(), b.begin(), b.end());
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "corpus";
  {  // lowbit files: one per outlier store / stats / axis flavour
    lowbit_writer a;
    a.add("q", filled<packed_matrix<bits<3>, group<oc, 32>>>(3, 40, axis::oc, 1));
    a.add_tensor("norm", Eigen::MatrixXf::Constant(1, 4, 0.5f));
    save(dir + "/lowbit_file/plain.lowbit", a.bytes());
    lowbit_writer b;
    b.add("s", filled<packed_matrix<bits<4>, group<oc, 32>, sparse_outliers>>(3, 32, axis::oc, 2));
    b.add("d", filled<packed_matrix<bits<3>, group<oc, 16>, dense_columns>>(2, 34, axis::oc, 3, {1, 30}));
    save(dir + "/lowbit_file/outliers.lowbit", b.bytes());
    lowbit_writer c;
    c.add("a", filled<packed_matrix<bits<4>, group<adaptive, 32>, no_outliers, fp16_stats, symmetric>>(33, 8, axis::ic, 4));
    c.add("e", filled<packed_matrix<bits<8>, group<ic, per_channel>, no_outliers, fp32_stats>>(3, 5, axis::ic, 5));
    save(dir + "/lowbit_file/axes.lowbit", c.bytes());
  }
  {  // GPTQ / AWQ checkpoints (mode byte: bit 0 = safetensors, bits 1-3 = bits, bit 4 = group 32)
    const auto pm4 = filled<packed_matrix<bits<4>, group<oc, 32>>>(8, 64, axis::oc, 6);
    safetensors_writer g;
    add_gptq(g, "l.0", to_gptq(pm4, gptq_checkpoint::v2));
    save(dir + "/interop_int32/gptq4.bin", with_mode(1 | (4 << 1) | 0x10, g.bytes()));
    const auto pm3 = filled<packed_matrix<bits<3>, group<oc, 32>>>(32, 32, axis::oc, 7);
    safetensors_writer g3;
    add_gptq(g3, "l.1", to_gptq(pm3, gptq_checkpoint::v1));
    save(dir + "/interop_int32/gptq3.bin", with_mode(1 | (3 << 1) | 0x10, g3.bytes()));
    safetensors_writer a;
    add_awq(a, "l.2", to_awq(pm4));
    save(dir + "/interop_int32/awq.bin", with_mode(1 | (4 << 1) | 0x10, a.bytes()));
    // Raw-struct mode: bits 4, in 16, out 8, group 8 (byte 10), then counts and words.
    std::vector<std::byte> raw{std::byte{0}, std::byte{4}, std::byte{16}, std::byte{8}, std::byte{10},
                               std::byte{16}, std::byte{2}, std::byte{16}, std::byte{16}};
    std::mt19937 rng(8);
    for (int i = 0; i < 4 * (16 + 2 + 16 + 16); ++i) raw.push_back(static_cast<std::byte>(rng()));
    save(dir + "/interop_int32/raw.bin", raw);
  }
  {  // GGUF tensors of each importable type
    gguf_writer w;
    std::mt19937 rng(9);
    std::normal_distribution<float> n;
    Eigen::MatrixXf W(2, 64);
    for (lowbit::index i = 0; i < W.size(); ++i) W.data()[i] = n(rng);
    w.add_matrix("a", W, gguf_type::q4_0);
    w.add_matrix("b", W, gguf_type::q8_0);
    w.add_matrix("c", W, gguf_type::q4_1);
    save(dir + "/interop_gguf/blocks.gguf", w.bytes());
  }
  return 0;
}
