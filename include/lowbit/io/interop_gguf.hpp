#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// lowbit packed matrices ↔ llama.cpp's GGUF block formats, so llama.cpp can run a
// lowbit-quantized model and lowbit can start from a quantized GGUF.
//
// The blocks (ggml-common.h; docs/formats.md has the bytes), 32 weights of one row each:
//   Q4_0  fp16 d | 16 bytes: byte j = q[j] | q[j+16] << 4           w = d (q - 8)
//   Q4_1  fp16 d | fp16 m | 16 bytes as Q4_0                        w = d q + m
//   Q8_0  fp16 d | 32 int8 q                                        w = d q
// lowbit's 4-bit packing IS the Q4_0 nibble order (format/bitpack.hpp), and its symmetric
// grid has zero (2^b)/2 = 8 for 4 bits and 128 for 8 bits, so:
//   bits<4>, symmetric,  groups of 32k along the input (axis oc)  →  Q4_0, bit-exact
//   bits<8>, symmetric,  idem                                      →  Q8_0, bit-exact (q = code - 128)
//   bits<4>, asymmetric, idem                                      →  Q4_1 with d = s, m = -s z
//                                                                    (m rounded to fp16: not bit-exact)
//   bits<4>, asymmetric, groups of exactly 32, gguf_export::requantize  →  Q4_K: codes kept,
//                                  group scales and mins re-rounded to Q4_K's 6-bit sub-scales
// Every other matrix (3 bits, per-IC groups, outliers, ...) can be written only by re-rounding
// its dequantized weights with ggml's reference quantizer (gguf_export::requantize): the
// caller must ask for that loss explicitly.
// Import reads Q4_0 / Q8_0 / Q4_1 tensors into a packed_matrix whose grid they match:
// Q4_0 → bits<4> symmetric, Q8_0 → bits<8> symmetric (both exact, including ggml's negative
// d), Q4_1 → bits<4> asymmetric with zero = -m / d (exact up to the float rounding of that
// quotient), each with groups of 32 (or 32k when the k blocks of a group share d and m).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_writer.hpp"

namespace lowbit::inline LOWBIT_ABI::io {

enum class gguf_export {
  exact,       // only a bit-exact block translation (Q4_1: exact codes and d, m rounded to fp16)
  requantize,  // otherwise re-round the dequantized weights with ggml's reference quantizer
};

namespace detail {

inline constexpr int gguf_block = 32;

// Why `pm` cannot be translated block by block into `type` (empty when it can).
template <PackedMatrix PM>
std::string gguf_exact_obstacle(const PM& pm, gguf_type type) {
  const bool q4_0 = type == gguf_type::q4_0, q4_1 = type == gguf_type::q4_1, q8_0 = type == gguf_type::q8_0;
  if (!q4_0 && !q4_1 && !q8_0) return type_name(type) + " has no block-exact translation (Q4_0, Q4_1, Q8_0 do)";
  const int want_bits = q8_0 ? 8 : 4;
  if (PM::bits != want_bits) return type_name(type) + " stores " + std::to_string(want_bits) + "-bit codes, the matrix has " + std::to_string(PM::bits);
  if (q4_1 == PM::symmetric) return type_name(type) + (q4_1 ? " is asymmetric (d, m), the matrix is symmetric" : " is symmetric, the matrix has zero points");
  if (!std::is_same_v<typename PM::outlier_policy, no_outliers>) return "GGUF blocks have no outlier store";
  if (PM::stats_policy::second_level) return "GGUF blocks store fp16 scales, not quantized_stats<>";
  if (pm.group_axis() != axis::oc) return "GGUF blocks run along the input dimension (axis oc); the matrix is grouped along ic";
  if (pm.cols() % gguf_block != 0) return "the row length " + std::to_string(pm.cols()) + " is not a multiple of 32";
  if (pm.group_size() % gguf_block != 0) return "the group size " + std::to_string(pm.group_size()) + " is not a multiple of 32";
  return {};
}

inline void put_half_bits(std::byte* p, half h) { std::memcpy(p, &h.bits, 2); }

}  // namespace detail

namespace detail {

// Q4_K from a 4-bit asymmetric matrix with groups of 32 along the input: the codes are kept,
// only the stats are re-rounded. A 256-weight super-block holds 8 of lowbit's groups; Q4_K
// stores w = d sc_j q - dmin mn_j with 6-bit sc_j, mn_j and fp16 d, dmin, so sc_j = s_j / d and
// mn_j = s_j z_j / dmin are rounded to 6 bits (ggml-common.h block_q4_K; the byte layout is in
// docs/formats.md). Codes move from lowbit's nibble order (q_i | q_{i+16} << 4 per 32) to
// Q4_K's (byte l of each 64-weight chunk = q_l | q_{l+32} << 4).
template <PackedMatrix PM>
std::vector<std::byte> q4_k_blocks(const PM& pm) {
  constexpr std::size_t block_bytes = 144;
  const index supers = pm.cols() / 256;
  std::vector<std::byte> out(static_cast<std::size_t>(pm.rows() * supers) * block_bytes);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(pm.cols()));
  std::byte* b = out.data();
  for (index r = 0; r < pm.rows(); ++r) {
    pm.unpack_row_codes(r, codes);
    for (index k = 0; k < supers; ++k, b += block_bytes) {
      float sc[8], mn[8], smax = 0.0f, mmax = 0.0f;
      for (int j = 0; j < 8; ++j) {
        const grid_params p = pm.params(r, 256 * k + 32 * j);
        lowbit::detail::require(p.scale >= 0.0f && p.zero >= 0.0f && std::isfinite(p.scale * p.zero), "GGUF export to Q4_K: row ", r,
                                " group ", 8 * k + j, " has scale ", p.scale, " and zero ", p.zero,
                                "; Q4_K needs scale >= 0 and zero >= 0");
        sc[j] = p.scale;
        mn[j] = p.scale * p.zero;
        smax = std::max(smax, sc[j]);
        mmax = std::max(mmax, mn[j]);
      }
      lowbit::detail::require(smax / 63.0f <= half_max && mmax / 63.0f <= half_max, "GGUF export to Q4_K: row ", r,
                              " has scales beyond fp16");
      const half d(smax / 63.0f), dmin(mmax / 63.0f);
      std::uint8_t q6s[8], q6m[8];
      for (int j = 0; j < 8; ++j) {
        const float dv = d.to_float(), mv = dmin.to_float();
        q6s[j] = static_cast<std::uint8_t>(dv > 0.0f ? std::clamp(std::nearbyint(sc[j] / dv), 0.0f, 63.0f) : 0.0f);
        q6m[j] = static_cast<std::uint8_t>(mv > 0.0f ? std::clamp(std::nearbyint(mn[j] / mv), 0.0f, 63.0f) : 0.0f);
      }
      put_half_bits(b, d);
      put_half_bits(b + 2, dmin);
      std::uint8_t s12[12] = {};
      for (int j = 0; j < 4; ++j) {
        s12[j] = static_cast<std::uint8_t>(q6s[j] | ((q6s[j + 4] >> 4) << 6));
        s12[j + 4] = static_cast<std::uint8_t>(q6m[j] | ((q6m[j + 4] >> 4) << 6));
        s12[j + 8] = static_cast<std::uint8_t>((q6s[j + 4] & 0xF) | ((q6m[j + 4] & 0xF) << 4));
      }
      std::memcpy(b + 4, s12, 12);
      const std::uint8_t* q = codes.data() + 256 * k;
      for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) b[16 + 32 * c + l] = static_cast<std::byte>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
  }
  return out;
}

}  // namespace detail

// The GGUF blocks of `pm` ([ne0 = cols, ne1 = rows], row-major rows of blocks).
template <PackedMatrix PM>
std::vector<std::byte> to_gguf_blocks(const PM& pm, gguf_type type, gguf_export mode = gguf_export::exact) {
  if (type == gguf_type::q4_k) {
    constexpr bool fits = PM::bits == 4 && !PM::symmetric && std::is_same_v<typename PM::outlier_policy, no_outliers> &&
                          !PM::stats_policy::second_level;
    if constexpr (fits) {
      if (mode == gguf_export::requantize && pm.group_axis() == axis::oc && pm.group_size() == 32 && pm.cols() % 256 == 0)
        return detail::q4_k_blocks(pm);
    }
    lowbit::detail::fail("GGUF export to Q4_K: only bits<4>, asymmetric, group<oc, 32>, no outliers, rows of 256k "
                         "weights translate (codes kept, scales and mins re-rounded to 6 bits: pass "
                         "gguf_export::requantize); this matrix is none of that or the mode is exact");
  }
  const std::string obstacle = detail::gguf_exact_obstacle(pm, type);
  if (!obstacle.empty()) {
    lowbit::detail::require(mode == gguf_export::requantize, "GGUF export to ", type_name(type), ": ", obstacle,
                            "; pass gguf_export::requantize to re-round the dequantized weights (lossy)");
    lowbit::detail::require(pm.cols() % detail::gguf_block == 0, "GGUF export: the row length ", pm.cols(),
                            " is not a multiple of the block size 32");
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> w = pm.dequantize();
    return quantize_blocks(type, std::span<const float>(w.data(), static_cast<std::size_t>(w.size())));
  }
  const auto tr = *type_traits(type);
  const index blocks = pm.cols() / detail::gguf_block;
  std::vector<std::byte> out(static_cast<std::size_t>(pm.rows() * blocks) * tr.bytes);
  std::byte* b = out.data();
  for (index r = 0; r < pm.rows(); ++r) {
    const std::uint8_t* codes = pm.row_codes(r);  // lowbit blocks of 32 codes = ggml's quant bytes
    for (index k = 0; k < blocks; ++k, b += tr.bytes) {
      const grid_params p = pm.params(r, k * detail::gguf_block);
      lowbit::detail::require(std::isfinite(p.scale) && std::fabs(p.scale) <= half_max, "GGUF export: scale ", p.scale,
                              " at row ", r, ", block ", k, " does not fit fp16");
      if constexpr (std::is_same_v<typename PM::stats_policy, fp16_stats>) {
        detail::put_half_bits(b, pm.stats().scales()[static_cast<std::size_t>(pm.stat_index(r, k * detail::gguf_block))]);
      } else {
        detail::put_half_bits(b, half(p.scale));
      }
      if (type == gguf_type::q4_0) {
        std::memcpy(b + 2, codes + 16 * k, 16);
      } else if (type == gguf_type::q4_1) {
        const float m = -p.scale * p.zero;
        lowbit::detail::require(std::isfinite(m) && std::fabs(m) <= half_max, "GGUF export: min ", m, " at row ", r,
                                " does not fit fp16");
        detail::put_half_bits(b + 2, half(m));
        std::memcpy(b + 4, codes + 16 * k, 16);
      } else {  // Q8_0: int8 q = code - 128
        for (int j = 0; j < 32; ++j) {
          const auto q = static_cast<std::int8_t>(static_cast<int>(codes[32 * k + j]) - 128);
          std::memcpy(b + 2 + j, &q, 1);
        }
      }
    }
  }
  return out;
}

// Adds `pm` to a GGUF file as tensor `name` (dims [cols, rows], as llama.cpp expects W).
template <PackedMatrix PM>
void add_packed(gguf_writer& w, std::string_view name, const PM& pm, gguf_type type, gguf_export mode = gguf_export::exact) {
  w.add_tensor(name, {static_cast<std::uint64_t>(pm.cols()), static_cast<std::uint64_t>(pm.rows())}, type,
               to_gguf_blocks(pm, type, mode));
}

// A Q4_0 / Q8_0 / Q4_1 tensor of `f` as the packed type PM (see the header comment for which).
template <PackedMatrix PM>
PM from_gguf(const gguf_file& f, std::string_view name) {
  static_assert(std::is_same_v<typename PM::outlier_policy, no_outliers> && !PM::stats_policy::second_level,
                "lowbit::io::from_gguf: GGUF blocks import into packed_matrix<..., no_outliers, fp16_stats or fp32_stats>");
  static_assert(PM::grouping::group_axis != axis::ic,
                "lowbit::io::from_gguf: GGUF blocks run along the input dimension: use group<oc, 32k>");
  const auto& t = f.tensor(name);
  const std::string where = f.name() + ": tensor '" + std::string(name) + "'";
  const bool q4_0 = t.type == gguf_type::q4_0, q4_1 = t.type == gguf_type::q4_1, q8_0 = t.type == gguf_type::q8_0;
  lowbit::detail::require(q4_0 || q4_1 || q8_0, where, " is ", type_name(t.type),
                          "; packed import reads Q4_0, Q4_1 and Q8_0 (load_matrix dequantizes the others)");
  const int bits = q8_0 ? 8 : 4;
  lowbit::detail::require(PM::bits == bits, where, " holds ", bits, "-bit ", type_name(t.type), " blocks, the target is bits<",
                          PM::bits, ">");
  lowbit::detail::require(PM::symmetric != q4_1, where, ": ", type_name(t.type), " is ",
                          q4_1 ? "asymmetric: import it into an asymmetric packed_matrix" : "symmetric: import it into a symmetric packed_matrix");
  lowbit::detail::require(t.dims.size() == 1 || t.dims.size() == 2, where, " has ", t.dims.size(), " dimensions; expected a matrix");
  const auto cols = static_cast<index>(t.cols()), rows = static_cast<index>(t.rows());
  lowbit::detail::require(rows > 0 && cols > 0 && cols % detail::gguf_block == 0, where, ": shape ", rows, " x ", cols,
                          " is not whole 32-weight blocks");
  PM pm(rows, cols, axis::oc);
  lowbit::detail::require(pm.group_size() % detail::gguf_block == 0, where, ": the target's group size ", pm.group_size(),
                          " is not a multiple of the 32-weight block");
  const auto tr = *type_traits(t.type);
  const auto bytes = f.tensor_bytes(t);
  const index blocks = cols / detail::gguf_block, per_group = pm.group_size() / detail::gguf_block;
  lowbit::detail::require(bytes.size() == static_cast<std::size_t>(rows * blocks) * tr.bytes, where, ": data size mismatch");
  std::vector<std::uint8_t> row(static_cast<std::size_t>(cols));
  for (index r = 0; r < rows; ++r) {
    for (index k = 0; k < blocks; ++k) {
      const std::byte* b = bytes.data() + static_cast<std::size_t>(r * blocks + k) * tr.bytes;
      half d, m;
      std::memcpy(&d.bits, b, 2);
      if (q4_1) std::memcpy(&m.bits, b + 2, 2);
      lowbit::detail::require(std::isfinite(d.to_float()) && std::isfinite(m.to_float()), where, ": block ", k, " of row ", r,
                              " has a non-finite scale");
      std::uint8_t* c = row.data() + 32 * k;
      if (q8_0) {
        for (int j = 0; j < 32; ++j) c[j] = static_cast<std::uint8_t>(static_cast<int>(static_cast<std::int8_t>(b[2 + j])) + 128);
      } else {
        unpack_block(reinterpret_cast<const std::uint8_t*>(b + (q4_1 ? 4 : 2)), c, 4);
      }
      grid_params p{d.to_float(), PM::implicit_zero};
      if (q4_1) {
        if (d.to_float() != 0.0f) {
          p.zero = -m.to_float() / d.to_float();
        } else {  // a constant block (all weights = m): codes 0, scale |m|, zero -sign(m)
          const float mv = m.to_float();
          std::fill(c, c + 32, std::uint8_t{0});
          p.scale = mv != 0.0f ? std::fabs(mv) : 1.0f;
          p.zero = mv > 0.0f ? -1.0f : mv < 0.0f ? 1.0f : 0.0f;
        }
      }
      using table = stats_table<typename PM::stats_policy>;
      lowbit::detail::require(std::isfinite(table::round(p.zero)), where, ": block ", k, " of row ", r, " has m / d = ",
                              -p.zero, ", beyond what the target's stats storage holds; import into fp32_stats");
      const index s = pm.stat_index(r, k * detail::gguf_block);
      if (k % per_group == 0) {
        pm.stats().set(s, p);
      } else {  // a wider lowbit group: its blocks must agree
        const grid_params g = pm.params(r, k * detail::gguf_block);
        lowbit::detail::require(g.scale == table::round(p.scale) && (PM::symmetric || g.zero == table::round(p.zero)), where,
                                ": blocks ", k - k % per_group, " and ", k, " of row ", r, " have different scales; they cannot share the target's group of ",
                                pm.group_size());
      }
    }
    pm.set_row_codes(r, row);
  }
  return pm;
}

}  // namespace lowbit::io
