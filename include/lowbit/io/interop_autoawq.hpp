#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The int32-packed "qweight / qzeros / scales (/ g_idx)" layouts that vLLM and Hugging Face
// transformers load: GPTQ (AutoGPTQ / GPTQModel, 2/3/4/8 bits) and AutoAWQ's "GEMM" version
// (4 bits). Conversion both ways between them and lowbit's packed_matrix, in memory; the
// tensors go into a safetensors file under `<layer>.qweight`, `<layer>.qzeros`, ... .
// docs/formats.md draws both layouts bit by bit.
//
// Shapes (PyTorch's nn.Linear: W is [out_features x in_features]; lowbit's packed_matrix has
// rows = out_features, cols = in_features, and groups along the input dimension = axis::oc):
//   GPTQ   qweight int32 [in*bits/32, out]      packed along the INPUT dimension
//          qzeros  int32 [groups, out*bits/32]  packed along the OUTPUT dimension
//          scales  fp16  [groups, out]
//          g_idx   int32 [in]                   group of input channel i (i / group_size)
//   AWQ    qweight int32 [in, out/8]            packed along the OUTPUT dimension
//          qzeros  int32 [groups, out/8]
//          scales  fp16  [groups, out]
// groups = ceil(in / group_size) (group_size -1 means one group over the whole input).
//
// Packing. GPTQ writes the codes of one packed run as an LSB-first bit stream over consecutive
// int32 words: code j occupies stream bits [j*bits, (j+1)*bits), and word k holds stream bits
// 32k..32k+31. For 2/4/8 bits no code straddles a word; for 3 bits, 32 codes fill 3 words and
// codes 10 and 21 straddle (AutoGPTQ's pack loop writes exactly this stream). AutoAWQ packs 8
// nibbles per word in the interleaved order AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]: nibble j of
// word k holds output channel 8k + AWQ_ORDER[j] (so its GEMM kernel can dequantize pairs with
// one shift).
//
// Dequantization in both: w = scale * (q - zero), which is lowbit's grid (method/grid.hpp), so
// codes and fp16 scales carry over bit-exactly. GPTQ "v1" checkpoints store zero - 1 in qzeros
// and the kernels add 1 back (the well-known off-by-one; vLLM calls the true-zero variant
// "gptq_v2"); a zero point of 0 cannot be written in v1, and export refuses it.
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::inline LOWBIT_ABI::io {

// GPTQ qzeros convention: v1 stores zero - 1 (AutoGPTQ's default "gptq"), v2 the true zero.
enum class gptq_checkpoint { v1, v2 };

inline const char* gptq_checkpoint_name(gptq_checkpoint f) { return f == gptq_checkpoint::v1 ? "gptq" : "gptq_v2"; }

// What convention f adds to a stored qzeros entry to give the true zero point.
inline constexpr int stored_zero_offset(gptq_checkpoint f) { return f == gptq_checkpoint::v1 ? 1 : 0; }

struct gptq_tensors {
  int bits = 4;
  index in_features = 0, out_features = 0;
  int group_size = 128;  // -1: one group over the whole input dimension
  bool sym = false;
  std::vector<std::int32_t> qweight;  // [in*bits/32, out]
  std::vector<std::int32_t> qzeros;   // [groups, out*bits/32]
  std::vector<half> scales;           // [groups, out]
  std::vector<std::int32_t> g_idx;    // [in]; may be empty on import (then i / group_size)

  index group_len() const { return group_size < 0 ? in_features : group_size; }
  index groups() const { return group_len() > 0 ? (in_features + group_len() - 1) / group_len() : 0; }
  index qweight_rows() const { return in_features * bits / 32; }
  index qzeros_cols() const { return out_features * bits / 32; }
};

struct awq_tensors {
  static constexpr int bits = 4;  // AutoAWQ GEMM packs 4-bit codes only
  index in_features = 0, out_features = 0;
  int group_size = 128;
  std::vector<std::int32_t> qweight;  // [in, out/8]
  std::vector<std::int32_t> qzeros;   // [groups, out/8]
  std::vector<half> scales;           // [groups, out]

  index group_len() const { return group_size < 0 ? in_features : group_size; }
  index groups() const { return group_len() > 0 ? (in_features + group_len() - 1) / group_len() : 0; }
};

// Nibble j of an AWQ word holds output channel 8k + awq_order[j].
inline constexpr int awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// The bit shift of output channel o's nibble in its AWQ word: 4·j for the j with
// awq_order[j] == o % 8.
inline constexpr unsigned awq_shift(index o) {
  int j = 0;
  while (awq_order[j] != o % 8) ++j;
  return 4u * static_cast<unsigned>(j);
}

// The `quantization_config` block of a Hugging Face config.json for these tensors.
inline std::string gptq_quantization_config(const gptq_tensors& t, gptq_checkpoint f) {
  return std::string("{\"quant_method\":\"gptq\",\"bits\":") + std::to_string(t.bits) +
         ",\"group_size\":" + std::to_string(t.group_size) + ",\"desc_act\":false,\"sym\":" +
         (t.sym ? "true" : "false") + ",\"checkpoint_format\":\"" + gptq_checkpoint_name(f) + "\"}";
}
inline std::string awq_quantization_config(const awq_tensors& t) {
  return std::string("{\"quant_method\":\"awq\",\"bits\":4,\"group_size\":") + std::to_string(t.group_size) +
         ",\"zero_point\":true,\"version\":\"gemm\"}";
}

namespace detail {

// The LSB-first bit stream over int32 words words[0], words[stride], words[2*stride], ...
inline void stream_put(std::int32_t* words, index stride, index j, int bits, std::uint32_t code) {
  const auto bit = static_cast<std::uint64_t>(j) * static_cast<std::uint64_t>(bits);
  const auto k = static_cast<index>(bit / 32);
  const auto off = static_cast<unsigned>(bit % 32);
  auto& w0 = words[k * stride];
  w0 = std::bit_cast<std::int32_t>(std::bit_cast<std::uint32_t>(w0) | (code << off));
  if (off + static_cast<unsigned>(bits) > 32u) {
    auto& w1 = words[(k + 1) * stride];
    w1 = std::bit_cast<std::int32_t>(std::bit_cast<std::uint32_t>(w1) | (code >> (32u - off)));
  }
}
inline std::uint32_t stream_get(const std::int32_t* words, index stride, index j, int bits) {
  const auto bit = static_cast<std::uint64_t>(j) * static_cast<std::uint64_t>(bits);
  const auto k = static_cast<index>(bit / 32);
  const auto off = static_cast<unsigned>(bit % 32);
  std::uint32_t v = std::bit_cast<std::uint32_t>(words[k * stride]) >> off;
  if (off + static_cast<unsigned>(bits) > 32u)
    v |= std::bit_cast<std::uint32_t>(words[(k + 1) * stride]) << (32u - off);
  return v & ((1u << bits) - 1u);
}

// What every int32-packed layout needs of a lowbit matrix.
template <PackedMatrix PM>
void require_int32_layout_compatible(const PM& pm, const char* fmt) {
  static_assert(std::is_same_v<typename PM::outlier_policy, no_outliers>,
                "lowbit::io: GPTQ/AWQ checkpoints have no outlier store; export the matrix without "
                "dense_columns/sparse_outliers (or dequantize it)");
  static_assert(!PM::stats_policy::second_level,
                "lowbit::io: GPTQ/AWQ checkpoints store fp16 scales; quantized_stats<> (SpQR) has no "
                "equivalent there");
  lowbit::detail::require(pm.group_axis() == axis::oc, fmt,
                          " export: the layout groups along the input dimension (axis oc); this matrix "
                          "is grouped along ",
                          axis_name(pm.group_axis()));
}

// The integral zero point of stat (r, qc), checked for what the file can hold.
template <PackedMatrix PM>
int integral_zero(const PM& pm, index r, index qc, const char* fmt) {
  const float z = pm.params(r, qc).zero;
  lowbit::detail::require(std::isfinite(z) && z == std::nearbyint(z) && z >= 0.0f && z <= static_cast<float>(PM::max_code),
                          fmt, " export: zero point ", z, " at row ", r, ", column ", qc,
                          " is not an integer in [0, ", PM::max_code, "]");
  return static_cast<int>(z);
}

template <PackedMatrix PM>
half stored_scale(const PM& pm, index r, index qc, const char* fmt) {
  const float s = pm.params(r, qc).scale;
  lowbit::detail::require(std::isfinite(s) && std::fabs(s) <= half_max, fmt, " export: scale ", s, " at row ", r,
                          ", column ", qc, " does not fit fp16");
  return half(s);
}

// Checks the file's claims about the caller's packed type before anything is allocated.
template <PackedMatrix PM>
void require_import_target(int file_bits, index in, index out, int group_size, const char* fmt) {
  static_assert(std::is_same_v<typename PM::outlier_policy, no_outliers>,
                "lowbit::io: import GPTQ/AWQ checkpoints into a packed_matrix with no_outliers");
  static_assert(!PM::stats_policy::second_level,
                "lowbit::io: import GPTQ/AWQ checkpoints into fp16_stats or fp32_stats");
  static_assert(PM::grouping::group_axis != axis::ic,
                "lowbit::io: GPTQ/AWQ checkpoints group along the input dimension: import them into "
                "group<oc, N> (or group<adaptive, N>)");
  lowbit::detail::require(in > 0 && out > 0, fmt, " import: shape ", out, " x ", in, " is empty");
  lowbit::detail::require(file_bits == PM::bits, fmt, " import: the checkpoint holds ", file_bits,
                          "-bit codes, the target packed_matrix is bits<", PM::bits, ">");
  const bool whole = group_size < 0 || group_size >= in;
  if constexpr (PM::grouping::size == per_channel) {
    lowbit::detail::require(whole, fmt, " import: the checkpoint has group_size ", group_size,
                            ", the target packed_matrix is per_channel");
  } else {
    lowbit::detail::require(group_size == PM::grouping::size || (group_size < 0 && in <= PM::grouping::size),
                            fmt, " import: the checkpoint has group_size ", group_size,
                            ", the target packed_matrix has group<oc, ", PM::grouping::size, ">");
  }
  lowbit::detail::require(group_size == -1 || group_size > 0, fmt, " import: group_size ", group_size,
                          " must be positive or -1");
}

template <class T>
void require_size(const std::vector<T>& v, index expected, const char* fmt, const char* what) {
  lowbit::detail::require(static_cast<index>(v.size()) == expected, fmt, " import: ", what, " has ", v.size(),
                          " elements, the shape needs ", expected);
}

inline void require_scale(half h, const char* fmt, index g, index o) {
  const float s = h.to_float();
  lowbit::detail::require(std::isfinite(s), fmt, " import: scale of group ", g, ", output ", o, " is ", s,
                          "; expected a finite number");
}

}  // namespace detail

// ---------------------------------------------------------------- GPTQ

template <PackedMatrix PM>
gptq_tensors to_gptq(const PM& pm, gptq_checkpoint f = gptq_checkpoint::v1) {
  constexpr const char* fmt = "GPTQ";
  detail::require_int32_layout_compatible(pm, fmt);
  const int b = PM::bits;
  gptq_tensors t;
  t.bits = b;
  t.in_features = pm.cols();
  t.out_features = pm.rows();
  t.sym = PM::symmetric;
  lowbit::detail::require(t.in_features * b % 32 == 0, "GPTQ export: in_features ", t.in_features,
                          " times ", b, " bits must fill whole int32 words (a multiple of ", b == 3 ? 32 : 32 / b, ")");
  lowbit::detail::require(t.out_features * b % 32 == 0, "GPTQ export: out_features ", t.out_features,
                          " times ", b, " bits must fill whole int32 words of qzeros (a multiple of ",
                          b == 3 ? 32 : 32 / b, ")");
  const index G = pm.group_size();
  t.group_size = PM::grouping::size == per_channel ? -1 : static_cast<int>(G);
  const index in = t.in_features, out = t.out_features, ng = pm.stat_cols();
  t.qweight.assign(static_cast<std::size_t>(t.qweight_rows() * out), 0);
  t.qzeros.assign(static_cast<std::size_t>(ng * t.qzeros_cols()), 0);
  t.scales.resize(static_cast<std::size_t>(ng * out));
  t.g_idx.resize(static_cast<std::size_t>(in));
  std::vector<std::uint8_t> row(static_cast<std::size_t>(in));
  for (index o = 0; o < out; ++o) {
    pm.unpack_row_codes(o, row);
    for (index i = 0; i < in; ++i) detail::stream_put(t.qweight.data() + o, out, i, b, row[static_cast<std::size_t>(i)]);
    for (index g = 0; g < ng; ++g) {
      t.scales[static_cast<std::size_t>(g * out + o)] = detail::stored_scale(pm, o, g * G, fmt);
      int z = detail::integral_zero(pm, o, g * G, fmt);
      if (f == gptq_checkpoint::v1) {
        lowbit::detail::require(z >= 1, "GPTQ export: zero point 0 at output ", o, ", group ", g,
                                " cannot be written in a v1 (\"gptq\") checkpoint, which stores zero - 1; "
                                "export as gptq_checkpoint::v2");
        --z;
      }
      detail::stream_put(t.qzeros.data() + g * t.qzeros_cols(), 1, o, b, static_cast<std::uint32_t>(z));
    }
  }
  for (index i = 0; i < in; ++i) t.g_idx[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i / G);
  return t;
}

template <PackedMatrix PM>
PM from_gptq(const gptq_tensors& t, gptq_checkpoint f = gptq_checkpoint::v1) {
  constexpr const char* fmt = "GPTQ";
  detail::require_import_target<PM>(t.bits, t.in_features, t.out_features, t.group_size, fmt);
  const int b = t.bits;
  const index in = t.in_features, out = t.out_features;
  lowbit::detail::require(in * b % 32 == 0 && out * b % 32 == 0, "GPTQ import: shape ", out, " x ", in,
                          " does not fill whole int32 words at ", b, " bits");
  const index G = t.group_len(), ng = t.groups();
  detail::require_size(t.qweight, t.qweight_rows() * out, fmt, "qweight");
  detail::require_size(t.qzeros, ng * t.qzeros_cols(), fmt, "qzeros");
  detail::require_size(t.scales, ng * out, fmt, "scales");
  if (!t.g_idx.empty()) {
    detail::require_size(t.g_idx, in, fmt, "g_idx");
    for (index i = 0; i < in; ++i)
      lowbit::detail::require(t.g_idx[static_cast<std::size_t>(i)] == i / G, "GPTQ import: g_idx[", i, "] = ",
                              t.g_idx[static_cast<std::size_t>(i)], ", expected ", i / G,
                              ": act-order (desc_act) checkpoints assign input channels to groups out of "
                              "order, which packed_matrix's contiguous groups cannot hold");
  }
  PM pm(out, in, axis::oc);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(in));
  for (index o = 0; o < out; ++o) {
    for (index i = 0; i < in; ++i)
      row[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(detail::stream_get(t.qweight.data() + o, out, i, b));
    pm.set_row_codes(o, row);
    for (index g = 0; g < ng; ++g) {
      const half s = t.scales[static_cast<std::size_t>(g * out + o)];
      detail::require_scale(s, fmt, g, o);
      float z = static_cast<float>(detail::stream_get(t.qzeros.data() + g * t.qzeros_cols(), 1, o, b));
      z += static_cast<float>(stored_zero_offset(f));
      if constexpr (PM::symmetric)
        lowbit::detail::require(z == PM::implicit_zero, "GPTQ import: zero point ", z, " at output ", o, ", group ", g,
                                " differs from the symmetric grid's ", PM::implicit_zero,
                                "; import into an asymmetric packed_matrix");
      pm.stats().set(pm.stat_index(o, g * G), grid_params{s.to_float(), z});
    }
  }
  return pm;
}

// ---------------------------------------------------------------- AutoAWQ GEMM

template <PackedMatrix PM>
awq_tensors to_awq(const PM& pm) {
  static_assert(PM::bits == 4, "lowbit::io::to_awq: AutoAWQ's GEMM layout packs 4-bit codes only");
  constexpr const char* fmt = "AWQ";
  detail::require_int32_layout_compatible(pm, fmt);
  awq_tensors t;
  t.in_features = pm.cols();
  t.out_features = pm.rows();
  lowbit::detail::require(t.out_features % 8 == 0, "AWQ export: out_features ", t.out_features,
                          " must be a multiple of 8 (8 nibbles per int32 word)");
  const index G = pm.group_size();
  t.group_size = PM::grouping::size == per_channel ? -1 : static_cast<int>(G);
  const index in = t.in_features, out = t.out_features, words = out / 8, ng = pm.stat_cols();
  t.qweight.assign(static_cast<std::size_t>(in * words), 0);
  t.qzeros.assign(static_cast<std::size_t>(ng * words), 0);
  t.scales.resize(static_cast<std::size_t>(ng * out));
  std::vector<std::uint8_t> row(static_cast<std::size_t>(in));
  for (index o = 0; o < out; ++o) {
    const index k = o / 8;
    const unsigned shift = awq_shift(o);
    pm.unpack_row_codes(o, row);
    for (index i = 0; i < in; ++i) {
      auto& w = t.qweight[static_cast<std::size_t>(i * words + k)];
      w = std::bit_cast<std::int32_t>(std::bit_cast<std::uint32_t>(w) | (std::uint32_t{row[static_cast<std::size_t>(i)]} << shift));
    }
    for (index g = 0; g < ng; ++g) {
      t.scales[static_cast<std::size_t>(g * out + o)] = detail::stored_scale(pm, o, g * G, fmt);
      const auto z = static_cast<std::uint32_t>(detail::integral_zero(pm, o, g * G, fmt));
      auto& w = t.qzeros[static_cast<std::size_t>(g * words + k)];
      w = std::bit_cast<std::int32_t>(std::bit_cast<std::uint32_t>(w) | (z << shift));
    }
  }
  return t;
}

template <PackedMatrix PM>
PM from_awq(const awq_tensors& t) {
  constexpr const char* fmt = "AWQ";
  detail::require_import_target<PM>(awq_tensors::bits, t.in_features, t.out_features, t.group_size, fmt);
  const index in = t.in_features, out = t.out_features;
  lowbit::detail::require(out % 8 == 0, "AWQ import: out_features ", out, " must be a multiple of 8");
  const index words = out / 8, G = t.group_len(), ng = t.groups();
  detail::require_size(t.qweight, in * words, fmt, "qweight");
  detail::require_size(t.qzeros, ng * words, fmt, "qzeros");
  detail::require_size(t.scales, ng * out, fmt, "scales");
  PM pm(out, in, axis::oc);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(in));
  for (index o = 0; o < out; ++o) {
    const index k = o / 8;
    const unsigned shift = awq_shift(o);
    for (index i = 0; i < in; ++i)
      row[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(
          (std::bit_cast<std::uint32_t>(t.qweight[static_cast<std::size_t>(i * words + k)]) >> shift) & 0xFu);
    pm.set_row_codes(o, row);
    for (index g = 0; g < ng; ++g) {
      const half s = t.scales[static_cast<std::size_t>(g * out + o)];
      detail::require_scale(s, fmt, g, o);
      const auto z = static_cast<float>((std::bit_cast<std::uint32_t>(t.qzeros[static_cast<std::size_t>(g * words + k)]) >> shift) & 0xFu);
      if constexpr (PM::symmetric)
        lowbit::detail::require(z == PM::implicit_zero, "AWQ import: zero point ", z, " at output ", o, ", group ", g,
                                " differs from the symmetric grid's ", PM::implicit_zero,
                                "; import into an asymmetric packed_matrix");
      pm.stats().set(pm.stat_index(o, g * G), grid_params{s.to_float(), z});
    }
  }
  return pm;
}

// ---------------------------------------------------------------- between the layouts
// What a whole-model export (lowbit-quantize --export gptq|awq) needs once every layer is
// packed: the checkpoint convention is one choice for the file, so layers are packed with
// true zeros (v2) and converted at the end; AutoAWQ's layout is the same codes, zeros and
// scales as a 4-bit GPTQ layer, repacked.

// The smallest true zero point of a layer stored in convention f (v1 holds zero - 1).
inline int min_true_zero(const gptq_tensors& t, gptq_checkpoint f) {
  int lowest = 1 << t.bits;
  const index ng = t.groups();
  for (index g = 0; g < ng; ++g)
    for (index o = 0; o < t.out_features; ++o) {
      const int z = static_cast<int>(detail::stream_get(t.qzeros.data() + g * t.qzeros_cols(), 1, o, t.bits)) +
                    stored_zero_offset(f);
      lowest = z < lowest ? z : lowest;
    }
  return lowest;
}

// The layer's zero points rewritten from convention `from` to `to`; v1 cannot hold a zero of 0.
inline gptq_tensors with_checkpoint(gptq_tensors t, gptq_checkpoint from, gptq_checkpoint to) {
  if (from == to) return t;
  const index ng = t.groups(), stride = t.qzeros_cols();
  std::vector<std::int32_t> z(t.qzeros.size(), 0);
  for (index g = 0; g < ng; ++g)
    for (index o = 0; o < t.out_features; ++o) {
      int v = static_cast<int>(detail::stream_get(t.qzeros.data() + g * stride, 1, o, t.bits));
      v += stored_zero_offset(from);
      if (to == gptq_checkpoint::v1) {
        lowbit::detail::require(v >= 1, "GPTQ export: zero point 0 at output ", o, ", group ", g,
                                " cannot be written in a v1 (\"gptq\") checkpoint, which stores zero - 1");
        v -= 1;
      }
      lowbit::detail::require(v < (1 << t.bits), "GPTQ: zero point ", v, " at output ", o, ", group ", g,
                              " does not fit ", t.bits, " bits");
      detail::stream_put(z.data() + g * stride, 1, o, t.bits, static_cast<std::uint32_t>(v));
    }
  t.qzeros = std::move(z);
  return t;
}

// A 4-bit GPTQ layer (zeros in convention f, natural g_idx) in AutoAWQ's GEMM layout.
inline awq_tensors awq_from_gptq(const gptq_tensors& t, gptq_checkpoint f) {
  lowbit::detail::require(t.bits == 4, "AWQ export: AutoAWQ's GEMM layout holds 4-bit codes; this layer has ", t.bits,
                          "-bit codes");
  lowbit::detail::require(t.out_features % 8 == 0, "AWQ export: out_features ", t.out_features,
                          " must be a multiple of 8 (8 nibbles per int32 word)");
  for (std::size_t i = 0; i < t.g_idx.size(); ++i)
    lowbit::detail::require(t.g_idx[i] == static_cast<std::int32_t>(static_cast<index>(i) / t.group_len()),
                            "AWQ export: AutoAWQ has no g_idx; input channel ", i, " is out of group order");
  awq_tensors a;
  a.in_features = t.in_features;
  a.out_features = t.out_features;
  a.group_size = t.group_size;
  const index in = t.in_features, out = t.out_features, words = out / 8, ng = t.groups();
  a.qweight.assign(static_cast<std::size_t>(in * words), 0);
  a.qzeros.assign(static_cast<std::size_t>(ng * words), 0);
  a.scales = t.scales;  // [groups, out] in both
  for (index o = 0; o < out; ++o) {
    const unsigned shift = awq_shift(o);
    const index k = o / 8;
    for (index i = 0; i < in; ++i) {
      auto& w = a.qweight[static_cast<std::size_t>(i * words + k)];
      w = std::bit_cast<std::int32_t>(std::bit_cast<std::uint32_t>(w) | (detail::stream_get(t.qweight.data() + o, out, i, 4) << shift));
    }
    for (index g = 0; g < ng; ++g) {
      std::uint32_t z = detail::stream_get(t.qzeros.data() + g * t.qzeros_cols(), 1, o, 4) + static_cast<std::uint32_t>(stored_zero_offset(f));
      lowbit::detail::require(z <= 15u, "AWQ export: zero point ", z, " at output ", o, " does not fit 4 bits");
      auto& w = a.qzeros[static_cast<std::size_t>(g * words + k)];
      w = std::bit_cast<std::int32_t>(std::bit_cast<std::uint32_t>(w) | (z << shift));
    }
  }
  return a;
}

// The weights the layer stands for, row-major [out x in]: scale * (q - zero) in float, with
// the group of input i from g_idx when the layer has one (what every GPTQ kernel computes).
inline std::vector<float> dequantize(const gptq_tensors& t, gptq_checkpoint f) {
  const index in = t.in_features, out = t.out_features, G = t.group_len();
  std::vector<float> w(static_cast<std::size_t>(in * out));
  for (index i = 0; i < in; ++i) {
    const index g = t.g_idx.empty() ? i / G : t.g_idx[static_cast<std::size_t>(i)];
    lowbit::detail::require(g >= 0 && g < t.groups(), "GPTQ: g_idx[", i, "] = ", g, " is outside [0, ", t.groups(), ")");
    for (index o = 0; o < out; ++o) {
      const float q = static_cast<float>(detail::stream_get(t.qweight.data() + o, out, i, t.bits));
      const float z = static_cast<float>(detail::stream_get(t.qzeros.data() + g * t.qzeros_cols(), 1, o, t.bits)) +
                      static_cast<float>(stored_zero_offset(f));
      w[static_cast<std::size_t>(o * in + i)] = t.scales[static_cast<std::size_t>(g * out + o)].to_float() * (q - z);
    }
  }
  return w;
}

// The weights an AutoAWQ GEMM layer stands for, row-major [out x in]: scale * (q - zero).
inline std::vector<float> dequantize(const awq_tensors& t) {
  const index in = t.in_features, out = t.out_features, words = out / 8, G = t.group_len();
  std::vector<float> w(static_cast<std::size_t>(in * out));
  for (index o = 0; o < out; ++o) {
    const unsigned shift = awq_shift(o);
    const index k = o / 8;
    for (index i = 0; i < in; ++i) {
      const index g = i / G;
      const auto nibble = [&](std::int32_t word) { return static_cast<float>((std::bit_cast<std::uint32_t>(word) >> shift) & 0xFu); };
      const float q = nibble(t.qweight[static_cast<std::size_t>(i * words + k)]);
      const float z = nibble(t.qzeros[static_cast<std::size_t>(g * words + k)]);
      w[static_cast<std::size_t>(o * in + i)] = t.scales[static_cast<std::size_t>(g * out + o)].to_float() * (q - z);
    }
  }
  return w;
}

// ---------------------------------------------------------------- safetensors

namespace detail {
inline const safetensors_tensor_info& int_layout_tensor(const safetensors_file& f, const std::string& name, st_dtype dt,
                                                        std::size_t rank, const char* fmt) {
  const auto& t = f.tensor(name);
  lowbit::detail::require(t.dtype == dt && t.shape.size() == rank, fmt, " import: tensor '", name, "' is ",
                          traits(t.dtype).name, " of rank ", t.shape.size(), ", expected ", traits(dt).name, " of rank ", rank);
  for (auto d : t.shape)
    lowbit::detail::require(d <= (std::uint64_t{1} << 31), fmt, " import: tensor '", name, "' dimension ", d, " is too large");
  return t;
}
using lowbit::detail::shape_of;  // a tensor shape from its extents (format/outlier_store.hpp)
}  // namespace detail

// `<prefix>.qweight`, `.qzeros`, `.scales`, `.g_idx` as GPTQ checkpoints name them.
inline void add_gptq(safetensors_writer& w, std::string_view prefix, const gptq_tensors& t) {
  const std::string p(prefix);
  w.add<std::int32_t>(p + ".qweight", detail::shape_of({t.qweight_rows(), t.out_features}), t.qweight);
  w.add<std::int32_t>(p + ".qzeros", detail::shape_of({t.groups(), t.qzeros_cols()}), t.qzeros);
  w.add<half>(p + ".scales", detail::shape_of({t.groups(), t.out_features}), t.scales);
  w.add<std::int32_t>(p + ".g_idx", detail::shape_of({t.in_features}), t.g_idx);
}

// Reads one GPTQ layer; bits, group_size and sym come from the checkpoint's quantize_config.
inline gptq_tensors read_gptq(const safetensors_file& f, std::string_view prefix, int bits, int group_size, bool sym) {
  lowbit::detail::require(is_supported_bit_width(bits), "GPTQ import: bits=", bits, " is not ",
                          supported_bit_widths_text);
  const std::string p(prefix);
  const auto& qw = detail::int_layout_tensor(f, p + ".qweight", st_dtype::i32, 2, "GPTQ");
  gptq_tensors t;
  t.bits = bits;
  t.group_size = group_size;
  t.sym = sym;
  lowbit::detail::require(qw.shape[0] * 32 % static_cast<std::uint64_t>(bits) == 0, "GPTQ import: qweight has ", qw.shape[0],
                          " rows, not a whole number of ", bits, "-bit runs");
  t.in_features = static_cast<index>(qw.shape[0] * 32 / static_cast<std::uint64_t>(bits));
  t.out_features = static_cast<index>(qw.shape[1]);
  const auto& qz = detail::int_layout_tensor(f, p + ".qzeros", st_dtype::i32, 2, "GPTQ");
  const auto& sc = detail::int_layout_tensor(f, p + ".scales", st_dtype::f16, 2, "GPTQ");
  lowbit::detail::require(group_size == -1 || group_size > 0, "GPTQ import: group_size ", group_size, " must be positive or -1");
  if (t.in_features > 0) {
    lowbit::detail::require(sc.shape == detail::shape_of({t.groups(), t.out_features}), "GPTQ import: '", p,
                            ".scales' shape does not match qweight and group_size ", group_size);
    lowbit::detail::require(qz.shape[0] == sc.shape[0], "GPTQ import: '", p, ".qzeros' and '", p, ".scales' disagree on the group count");
  }
  t.qweight = f.load<std::int32_t>(p + ".qweight");
  t.qzeros = f.load<std::int32_t>(p + ".qzeros");
  t.scales = f.load<half>(p + ".scales");
  if (f.find(p + ".g_idx") != nullptr) {
    (void)detail::int_layout_tensor(f, p + ".g_idx", st_dtype::i32, 1, "GPTQ");
    t.g_idx = f.load<std::int32_t>(p + ".g_idx");
  }
  return t;
}

// `<prefix>.qweight`, `.qzeros`, `.scales` as AutoAWQ names them.
inline void add_awq(safetensors_writer& w, std::string_view prefix, const awq_tensors& t) {
  const std::string p(prefix);
  w.add<std::int32_t>(p + ".qweight", detail::shape_of({t.in_features, t.out_features / 8}), t.qweight);
  w.add<std::int32_t>(p + ".qzeros", detail::shape_of({t.groups(), t.out_features / 8}), t.qzeros);
  w.add<half>(p + ".scales", detail::shape_of({t.groups(), t.out_features}), t.scales);
}

inline awq_tensors read_awq(const safetensors_file& f, std::string_view prefix, int group_size) {
  const std::string p(prefix);
  const auto& qw = detail::int_layout_tensor(f, p + ".qweight", st_dtype::i32, 2, "AWQ");
  (void)detail::int_layout_tensor(f, p + ".qzeros", st_dtype::i32, 2, "AWQ");
  const auto& sc = detail::int_layout_tensor(f, p + ".scales", st_dtype::f16, 2, "AWQ");
  lowbit::detail::require(group_size == -1 || group_size > 0, "AWQ import: group_size ", group_size, " must be positive or -1");
  awq_tensors t;
  t.group_size = group_size;
  t.in_features = static_cast<index>(qw.shape[0]);
  t.out_features = static_cast<index>(qw.shape[1] * 8);
  if (t.in_features > 0)
    lowbit::detail::require(sc.shape == detail::shape_of({t.groups(), t.out_features}), "AWQ import: '", p,
                            ".scales' shape does not match qweight and group_size ", group_size);
  t.qweight = f.load<std::int32_t>(p + ".qweight");
  t.qzeros = f.load<std::int32_t>(p + ".qzeros");
  t.scales = f.load<half>(p + ".scales");
  return t;
}

}  // namespace lowbit::io
