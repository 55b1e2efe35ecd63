#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// GGUF reader: metadata, tensor directory and dequantization of llama.cpp's block formats.
//
// Optional header set (lowbit/io/), not included by lowbit.hpp: the core library never
// depends on a file format. GGUF (ggml's file format, version 2 and 3) is
//
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv
//   n_kv   × { string key, u32 value_type, value }            (strings: u64 length + bytes)
//   n_tensors × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   padding to `general.alignment` (default 32), then the tensor data; offsets are relative
//   to the start of the data section and aligned.
//
// ne[0] is the fastest-varying dimension. For a weight used as y = W x, ne[0] is the number of
// input features, so a 2-D tensor [ne0, ne1] is the row-major W with ne1 rows: load_matrix
// returns exactly that W (rows = ne1 = output features, cols = ne0 = input features).
//
// The file is untrusted input: every count, length, dimension and offset is checked against
// the file size with overflow-checked arithmetic, and every failure is a lowbit::error that
// names the file and what is wrong. Nothing is allocated from a count before that count has
// been bounded by the bytes actually present.
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/io/byte_reader.hpp"

namespace lowbit::inline LOWBIT_ABI::io {

// ggml tensor types (ggml.h numbering; ids 4, 5, 31–33, 36–38 are retired and absent).
enum class gguf_type : std::uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8,
  q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
  iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23,
  i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30,
  tq1_0 = 34, tq2_0 = 35, mxfp4 = 39,
};

// Metadata value types (gguf_type in ggml's gguf.h).
enum class gguf_value_type : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

// Storage geometry of a ggml type: `block` weights share `bytes` bytes.
struct gguf_type_traits {
  std::string_view name;
  std::uint32_t block = 0;  // weights per block (1 for plain scalar types)
  std::uint32_t bytes = 0;  // bytes per block
  bool dequantizable = false;
};

// The table every size computation uses; nullopt for an id this reader does not know.
inline std::optional<gguf_type_traits> type_traits(gguf_type t) {
  switch (t) {
    case gguf_type::f32: return gguf_type_traits{"F32", 1, 4, true};
    case gguf_type::f16: return gguf_type_traits{"F16", 1, 2, true};
    case gguf_type::q4_0: return gguf_type_traits{"Q4_0", 32, 18, true};
    case gguf_type::q4_1: return gguf_type_traits{"Q4_1", 32, 20, true};
    case gguf_type::q5_0: return gguf_type_traits{"Q5_0", 32, 22, true};
    case gguf_type::q5_1: return gguf_type_traits{"Q5_1", 32, 24, true};
    case gguf_type::q8_0: return gguf_type_traits{"Q8_0", 32, 34, true};
    case gguf_type::q2_k: return gguf_type_traits{"Q2_K", 256, 84, true};
    case gguf_type::q3_k: return gguf_type_traits{"Q3_K", 256, 110, true};
    case gguf_type::q4_k: return gguf_type_traits{"Q4_K", 256, 144, true};
    case gguf_type::q5_k: return gguf_type_traits{"Q5_K", 256, 176, true};
    case gguf_type::q6_k: return gguf_type_traits{"Q6_K", 256, 210, true};
    case gguf_type::q8_k: return gguf_type_traits{"Q8_K", 256, 292, false};
    case gguf_type::iq2_xxs: return gguf_type_traits{"IQ2_XXS", 256, 66, false};
    case gguf_type::iq2_xs: return gguf_type_traits{"IQ2_XS", 256, 74, false};
    case gguf_type::iq3_xxs: return gguf_type_traits{"IQ3_XXS", 256, 98, false};
    case gguf_type::iq1_s: return gguf_type_traits{"IQ1_S", 256, 50, false};
    case gguf_type::iq4_nl: return gguf_type_traits{"IQ4_NL", 32, 18, true};
    case gguf_type::iq3_s: return gguf_type_traits{"IQ3_S", 256, 110, false};
    case gguf_type::iq2_s: return gguf_type_traits{"IQ2_S", 256, 82, false};
    case gguf_type::iq4_xs: return gguf_type_traits{"IQ4_XS", 256, 136, false};
    case gguf_type::i8: return gguf_type_traits{"I8", 1, 1, true};
    case gguf_type::i16: return gguf_type_traits{"I16", 1, 2, true};
    case gguf_type::i32: return gguf_type_traits{"I32", 1, 4, true};
    case gguf_type::i64: return gguf_type_traits{"I64", 1, 8, false};
    case gguf_type::f64: return gguf_type_traits{"F64", 1, 8, true};
    case gguf_type::iq1_m: return gguf_type_traits{"IQ1_M", 256, 56, false};
    case gguf_type::bf16: return gguf_type_traits{"BF16", 1, 2, true};
    case gguf_type::tq1_0: return gguf_type_traits{"TQ1_0", 256, 54, false};
    case gguf_type::tq2_0: return gguf_type_traits{"TQ2_0", 256, 66, false};
    case gguf_type::mxfp4: return gguf_type_traits{"MXFP4", 32, 17, false};
  }
  return std::nullopt;
}

inline std::string type_name(gguf_type t) {
  if (auto tr = type_traits(t)) return std::string(tr->name);
  return "type#" + std::to_string(static_cast<std::uint32_t>(t));
}

struct gguf_tensor_info {
  std::string name;
  std::vector<std::uint64_t> dims;  // ne0 first (fastest = input features / columns)
  gguf_type type = gguf_type::f32;
  std::uint64_t offset = 0;   // absolute file offset of the first byte
  std::uint64_t n_bytes = 0;  // size of the stored data

  std::uint64_t n_elements() const {
    std::uint64_t n = 1;
    for (auto d : dims) n *= d;  // cannot overflow: checked when the file was opened
    return n;
  }
  std::uint64_t cols() const { return dims.empty() ? 1 : dims[0]; }
  std::uint64_t rows() const { return dims.empty() ? 1 : n_elements() / std::max<std::uint64_t>(dims[0], 1); }
};

// ---- dequantization (one block format per function; layouts from ggml-common.h) ----
namespace detail {

inline float load_half(const std::byte* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return half_bits_to_float(h);
}

// Q4_0: d (fp16), 16 bytes of nibbles. Low nibbles are weights 0..15, high nibbles 16..31,
// value = (q − 8)·d (symmetric 4-bit).
inline void dequant_q4_0(const std::byte* b, float* y) {
  const float d = load_half(b);
  const auto* qs = reinterpret_cast<const std::uint8_t*>(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1: d, m (fp16), nibbles as Q4_0; value = q·d + m (asymmetric 4-bit, the min stored).
inline void dequant_q4_1(const std::byte* b, float* y) {
  const float d = load_half(b), m = load_half(b + 2);
  const auto* qs = reinterpret_cast<const std::uint8_t*>(b + 4);
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// Q5_0 / Q5_1: as Q4_0 / Q4_1 plus a 32-bit word whose bit j is the fifth bit of weight j.
inline void dequant_q5(const std::byte* b, float* y, bool has_min) {
  const float d = load_half(b);
  const float m = has_min ? load_half(b + 2) : 0.0f;
  const std::byte* p = b + (has_min ? 4 : 2);
  std::uint32_t qh;
  std::memcpy(&qh, p, 4);
  const auto* qs = reinterpret_cast<const std::uint8_t*>(p + 4);
  const int offset = has_min ? 0 : 16;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = static_cast<float>(lo - offset) * d + m;
    y[j + 16] = static_cast<float>(hi - offset) * d + m;
  }
}

// Q8_0: d (fp16), 32 int8; value = q·d.
inline void dequant_q8_0(const std::byte* b, float* y) {
  const float d = load_half(b);
  const auto* qs = reinterpret_cast<const std::int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// Q4_K super-block (256 weights): d, dmin (fp16), 12 bytes packing eight 6-bit scales and
// eight 6-bit mins, 128 bytes of nibbles. Sub-block s (32 weights) has value
// d·sc[s]·q − dmin·mn[s]; sub-blocks 2i and 2i+1 share bytes (low / high nibbles).
inline void q4_k_scale_min(int j, const std::uint8_t* q, int& sc, int& mn) {
  if (j < 4) {
    sc = q[j] & 63;
    mn = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}
inline void dequant_q4_k(const std::byte* b, float* y) {
  const float d = load_half(b), dmin = load_half(b + 2);
  const auto* scales = reinterpret_cast<const std::uint8_t*>(b + 4);
  const auto* qs = reinterpret_cast<const std::uint8_t*>(b + 16);
  for (int i = 0; i < 4; ++i) {  // 64 weights per pair of sub-blocks
    int sc0, mn0, sc1, mn1;
    q4_k_scale_min(2 * i, scales, sc0, mn0);
    q4_k_scale_min(2 * i + 1, scales, sc1, mn1);
    const float d0 = d * static_cast<float>(sc0), m0 = dmin * static_cast<float>(mn0);
    const float d1 = d * static_cast<float>(sc1), m1 = dmin * static_cast<float>(mn1);
    const std::uint8_t* q = qs + 32 * i;
    for (int l = 0; l < 32; ++l) {
      y[64 * i + l] = d0 * static_cast<float>(q[l] & 0x0F) - m0;
      y[64 * i + 32 + l] = d1 * static_cast<float>(q[l] >> 4) - m1;
    }
  }
}

// Q2_K super-block (256 weights): 16 bytes of scales (low nibble: scale, high nibble: min,
// one pair per 16 weights), 64 bytes of 2-bit codes, d and dmin (fp16) last; value
// d·sc·q − dmin·mn. Each half (128 weights) reads 32 code bytes four times, taking bit pairs
// 0, 2, 4, 6 in turn; every pass covers 32 weights (two scale groups: bytes 0..15, 16..31).
inline void dequant_q2_k(const std::byte* b, float* y) {
  const auto* scales = reinterpret_cast<const std::uint8_t*>(b);
  const auto* q = reinterpret_cast<const std::uint8_t*>(b + 16);
  const float d = load_half(b + 80), dmin = load_half(b + 82);
  int is = 0;
  for (int half = 0; half < 2; ++half, q += 32) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int part = 0; part < 2; ++part, ++is) {
        const float dl = d * static_cast<float>(scales[is] & 0x0F), ml = dmin * static_cast<float>(scales[is] >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml;
      }
    }
  }
}

// Q3_K super-block (256 weights): hmask[32] (the third bit, set = +0, clear = −4), 64 bytes of
// low 2-bit codes, 12 bytes packing sixteen 6-bit scales (stored +32), d (fp16) last; value
// d·(sc − 32)·(q − 4·!h). Codes are walked like Q2_K; the hmask bit moves up once per pass.
// Scale j: low 4 bits from byte j (j < 8) or the high nibble of byte j − 8, high 2 bits from
// byte 8 + j % 4 at bit 2·(j / 4).
inline int q3_k_scale(int j, const std::uint8_t* s) {
  const int lo = j < 8 ? s[j] & 0x0F : s[j - 8] >> 4;
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}
inline void dequant_q3_k(const std::byte* b, float* y) {
  const auto* hm = reinterpret_cast<const std::uint8_t*>(b);
  const auto* q = reinterpret_cast<const std::uint8_t*>(b + 32);
  const auto* scales = reinterpret_cast<const std::uint8_t*>(b + 96);
  const float d = load_half(b + 108);
  int is = 0;
  unsigned m = 1;
  for (int half = 0; half < 2; ++half, q += 32) {
    for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
      for (int part = 0; part < 2; ++part, ++is) {
        const float dl = d * static_cast<float>(q3_k_scale(is, scales));
        for (int l = 16 * part; l < 16 * part + 16; ++l)
          *y++ = dl * static_cast<float>(((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
      }
    }
  }
}

// Q5_K super-block (256 weights): d, dmin (fp16), 12 bytes of 6-bit scales and mins exactly as
// Q4_K, qh[32] (fifth bits), 128 bytes of nibbles. Sub-blocks 2i, 2i+1 take the low / high
// nibbles of the same 32 bytes and bits 2i / 2i+1 of qh; value d·sc·q − dmin·mn.
inline void dequant_q5_k(const std::byte* b, float* y) {
  const float d = load_half(b), dmin = load_half(b + 2);
  const auto* scales = reinterpret_cast<const std::uint8_t*>(b + 4);
  const auto* qh = reinterpret_cast<const std::uint8_t*>(b + 16);
  const auto* qs = reinterpret_cast<const std::uint8_t*>(b + 48);
  for (int i = 0; i < 4; ++i) {
    int sc0, mn0, sc1, mn1;
    q4_k_scale_min(2 * i, scales, sc0, mn0);
    q4_k_scale_min(2 * i + 1, scales, sc1, mn1);
    const float d0 = d * static_cast<float>(sc0), m0 = dmin * static_cast<float>(mn0);
    const float d1 = d * static_cast<float>(sc1), m1 = dmin * static_cast<float>(mn1);
    const std::uint8_t* q = qs + 32 * i;
    for (int l = 0; l < 32; ++l) {
      const int lo = (q[l] & 0x0F) | (((qh[l] >> (2 * i)) & 1) << 4);
      const int hi = (q[l] >> 4) | (((qh[l] >> (2 * i + 1)) & 1) << 4);
      y[64 * i + l] = d0 * static_cast<float>(lo) - m0;
      y[64 * i + 32 + l] = d1 * static_cast<float>(hi) - m1;
    }
  }
}

// IQ4_NL (32 weights): d (fp16), 16 bytes of nibbles laid out as Q4_0, but each nibble indexes
// a fixed non-uniform 16-entry grid (ggml's kvalues_iq4nl, denser near zero); value d·grid[q].
// llama.cpp falls back to it for 2–3-bit K-quant tensors whose rows are not a multiple of 256.
inline constexpr std::array<std::int8_t, 16> iq4nl_grid{-127, -104, -83, -65, -49, -35, -22, -10,
                                                        1,    13,   25,  38,  53,  69,  89,  113};
inline void dequant_iq4_nl(const std::byte* b, float* y) {
  const float d = load_half(b);
  const auto* qs = reinterpret_cast<const std::uint8_t*>(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(iq4nl_grid[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(iq4nl_grid[qs[j] >> 4]);
  }
}

// Q6_K super-block (256 weights): ql[128] low 4 bits, qh[64] high 2 bits, 16 int8 scales (one
// per 16 weights), d (fp16) last; value = d·scale·(q − 32). Each half (128 weights) uses 64
// bytes of ql and 32 of qh: weight l, l+32, l+64, l+96 take ql[l] low, ql[l+32] low,
// ql[l] high, ql[l+32] high nibbles and bit pairs 0,2,4,6 of qh[l].
inline void dequant_q6_k(const std::byte* b, float* y) {
  const auto* ql = reinterpret_cast<const std::uint8_t*>(b);
  const auto* qh = reinterpret_cast<const std::uint8_t*>(b + 128);
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = load_half(b + 208);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

template <class T>
inline T load_scalar(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace detail

// Dequantizes `dst.size()` consecutive weights stored as `type` in `src` (a whole number of
// blocks). The free function lets a model keep a large tensor (the token embedding) quantized
// and expand only the rows it needs.
inline void dequantize_blocks(gguf_type type, std::span<const std::byte> src, std::span<float> dst) {
  const auto tr = type_traits(type);
  lowbit::detail::require(tr && tr->dequantizable, "dequantize_blocks: tensor type ", type_name(type),
                          " is not supported (supported: F32 F16 BF16 F64 I8 I16 I32 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL Q2_K Q3_K Q4_K Q5_K Q6_K)");
  lowbit::detail::require(dst.size() % tr->block == 0, "dequantize_blocks: ", dst.size(), " weights is not a multiple of the ",
                          tr->name, " block size ", tr->block);
  const std::size_t n_blocks = dst.size() / tr->block;
  lowbit::detail::require(src.size() == n_blocks * tr->bytes, "dequantize_blocks: ", tr->name, " source holds ", src.size(),
                          " bytes, expected ", n_blocks * tr->bytes);
  const std::byte* s = src.data();
  float* y = dst.data();
  for (std::size_t i = 0; i < n_blocks; ++i, s += tr->bytes, y += tr->block) {
    switch (type) {
      case gguf_type::f32: std::memcpy(y, s, 4); break;
      case gguf_type::f16: *y = detail::load_half(s); break;
      case gguf_type::bf16:  // bfloat16 is the top half of an IEEE float
        *y = std::bit_cast<float>(static_cast<std::uint32_t>(detail::load_scalar<std::uint16_t>(s)) << 16);
        break;
      case gguf_type::f64: *y = static_cast<float>(detail::load_scalar<double>(s)); break;
      case gguf_type::i8: *y = static_cast<float>(detail::load_scalar<std::int8_t>(s)); break;
      case gguf_type::i16: *y = static_cast<float>(detail::load_scalar<std::int16_t>(s)); break;
      case gguf_type::i32: *y = static_cast<float>(detail::load_scalar<std::int32_t>(s)); break;
      case gguf_type::q4_0: detail::dequant_q4_0(s, y); break;
      case gguf_type::q4_1: detail::dequant_q4_1(s, y); break;
      case gguf_type::q5_0: detail::dequant_q5(s, y, false); break;
      case gguf_type::q5_1: detail::dequant_q5(s, y, true); break;
      case gguf_type::q8_0: detail::dequant_q8_0(s, y); break;
      case gguf_type::q2_k: detail::dequant_q2_k(s, y); break;
      case gguf_type::q3_k: detail::dequant_q3_k(s, y); break;
      case gguf_type::q4_k: detail::dequant_q4_k(s, y); break;
      case gguf_type::q5_k: detail::dequant_q5_k(s, y); break;
      case gguf_type::iq4_nl: detail::dequant_iq4_nl(s, y); break;
      case gguf_type::q6_k: detail::dequant_q6_k(s, y); break;
      default: lowbit::detail::fail("dequantize_blocks: unreachable type ", type_name(type));
    }
  }
}

// ---- metadata ----
// One metadata value. Scalars are arrays of length one, so every getter has one code path.
struct gguf_value {
  gguf_value_type type = gguf_value_type::u8;  // the scalar type, or array
  gguf_value_type elem = gguf_value_type::u8;  // element type (== type for scalars)
  std::vector<std::int64_t> ints;              // i8..i64 and bool
  std::vector<std::uint64_t> uints;            // u8..u64
  std::vector<double> floats;                  // f32, f64
  std::vector<std::string> strings;            // string
  bool is_array() const { return type == gguf_value_type::array; }
  std::size_t size() const { return ints.size() + uints.size() + floats.size() + strings.size(); }
};

inline std::string_view value_type_name(gguf_value_type t) {
  switch (t) {
    case gguf_value_type::u8: return "u8";
    case gguf_value_type::i8: return "i8";
    case gguf_value_type::u16: return "u16";
    case gguf_value_type::i16: return "i16";
    case gguf_value_type::u32: return "u32";
    case gguf_value_type::i32: return "i32";
    case gguf_value_type::f32: return "f32";
    case gguf_value_type::boolean: return "bool";
    case gguf_value_type::string: return "string";
    case gguf_value_type::array: return "array";
    case gguf_value_type::u64: return "u64";
    case gguf_value_type::i64: return "i64";
    case gguf_value_type::f64: return "f64";
  }
  return "unknown";
}

class gguf_file {
 public:
  // Opens and validates a GGUF file (memory-mapped where possible).
  static gguf_file open(const std::string& path) {
    return parse(file_bytes::open(path), "GGUF file '" + path + "'");
  }
  // Parses an in-memory GGUF image (tests, fuzzing, embedded files).
  static gguf_file from_memory(std::vector<std::byte> bytes, std::string name = "GGUF buffer") {
    return parse(file_bytes::from_memory(std::move(bytes)), std::move(name));
  }

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }  // absolute start of the data section
  const std::string& name() const { return context_; }

  const std::vector<gguf_tensor_info>& tensors() const { return tensors_; }
  const gguf_tensor_info* find(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  const gguf_tensor_info& tensor(std::string_view name) const {
    const auto* t = find(name);
    if (t == nullptr) lowbit::detail::fail(context_, ": no tensor named '", name, "'");
    return *t;
  }

  // ---- metadata ----
  bool has(std::string_view key) const { return kv_.find(key) != kv_.end(); }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    k.reserve(kv_.size());
    for (const auto& [key, v] : kv_) k.push_back(key);
    return k;
  }
  const gguf_value& value(std::string_view key) const {
    auto it = kv_.find(key);
    if (it == kv_.end()) lowbit::detail::fail(context_, ": metadata key '", key, "' is missing");
    return it->second;
  }

  std::string get_string(std::string_view key) const {
    const auto& v = scalar(key);
    expect(key, v, v.elem == gguf_value_type::string, "a string");
    return v.strings[0];
  }
  // Any integer type; fails if the value is negative or a non-integer.
  std::uint64_t get_uint(std::string_view key) const {
    const auto& v = scalar(key);
    if (!v.uints.empty()) return v.uints[0];
    expect(key, v, !v.ints.empty() && v.elem != gguf_value_type::boolean, "an integer");
    if (v.ints[0] < 0) lowbit::detail::fail(context_, ": metadata '", key, "' = ", v.ints[0], " must not be negative");
    return static_cast<std::uint64_t>(v.ints[0]);
  }
  bool get_bool(std::string_view key) const {
    const auto& v = scalar(key);
    expect(key, v, v.elem == gguf_value_type::boolean, "a bool");
    return v.ints[0] != 0;
  }
  // f32 / f64, or an integer (exactly representable ones convert exactly).
  double get_float(std::string_view key) const {
    const auto& v = scalar(key);
    if (!v.floats.empty()) return v.floats[0];
    if (!v.uints.empty()) return static_cast<double>(v.uints[0]);
    expect(key, v, !v.ints.empty() && v.elem != gguf_value_type::boolean, "a number");
    return static_cast<double>(v.ints[0]);
  }

  std::vector<std::string> get_string_array(std::string_view key) const {
    const auto& v = array(key);
    expect(key, v, v.elem == gguf_value_type::string, "an array of strings");
    return v.strings;
  }
  std::vector<std::int64_t> get_int_array(std::string_view key) const {
    const auto& v = array(key);
    expect(key, v, v.elem != gguf_value_type::string && v.elem != gguf_value_type::f32 && v.elem != gguf_value_type::f64,
           "an array of integers");
    std::vector<std::int64_t> out(v.ints);
    out.reserve(v.size());
    for (auto u : v.uints) {
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        lowbit::detail::fail(context_, ": metadata '", key, "' holds ", u, ", beyond the int64 range");
      out.push_back(static_cast<std::int64_t>(u));
    }
    return out;
  }
  std::vector<float> get_float_array(std::string_view key) const {
    const auto& v = array(key);
    std::vector<float> out;
    out.reserve(v.size());
    if (v.elem == gguf_value_type::f32 || v.elem == gguf_value_type::f64) {
      for (double d : v.floats) out.push_back(static_cast<float>(d));
    } else {
      expect(key, v, v.elem != gguf_value_type::string && v.elem != gguf_value_type::boolean, "an array of numbers");
      for (auto i : v.ints) out.push_back(static_cast<float>(i));
      for (auto u : v.uints) out.push_back(static_cast<float>(u));
    }
    return out;
  }

  // ---- tensor data ----
  std::span<const std::byte> tensor_bytes(const gguf_tensor_info& t) const {
    return bytes_->bytes().subspan(static_cast<std::size_t>(t.offset), static_cast<std::size_t>(t.n_bytes));
  }

  // The weight W of y = W x: rows = ne1·ne2·ne3 (output features), cols = ne0 (input features).
  Eigen::MatrixXf load_matrix(std::string_view name) const {
    const auto& t = tensor(name);
    check_dequantizable(t);
    const auto tr = *type_traits(t.type);
    const auto rows = static_cast<Eigen::Index>(t.rows()), cols = static_cast<Eigen::Index>(t.cols());
    Eigen::MatrixXf w(rows, cols);
    if (w.size() == 0) return w;
    const auto data = tensor_bytes(t);
    const std::size_t row_bytes = static_cast<std::size_t>(cols / tr.block) * tr.bytes;
    // Rows are independent. Dequantize a tile of 16 rows into a row-major buffer, then store
    // it column by column: each column of the tile is 16 consecutive floats (one cache line)
    // of the column-major result, instead of 16 scattered writes.
    constexpr Eigen::Index tile = 16;
    const Eigen::Index n_tiles = (rows + tile - 1) / tile;
    parallel_for(n_tiles, std::max<std::ptrdiff_t>(1, 4096 / std::max<Eigen::Index>(cols, 1)),
                 [&](std::ptrdiff_t b, std::ptrdiff_t e) {
                   Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> buf(tile, cols);
                   for (std::ptrdiff_t ti = b; ti < e; ++ti) {
                     const Eigen::Index r0 = ti * tile, nr = std::min(tile, rows - r0);
                     for (Eigen::Index i = 0; i < nr; ++i)
                       dequantize_blocks(t.type, data.subspan(static_cast<std::size_t>(r0 + i) * row_bytes, row_bytes),
                                         std::span<float>(buf.row(i).data(), static_cast<std::size_t>(cols)));
                     w.middleRows(r0, nr) = buf.topRows(nr);
                   }
                 });
    return w;
  }

  // All elements in storage order (ne0 fastest), e.g. a norm's weight vector.
  std::vector<float> load_vector(std::string_view name) const {
    const auto& t = tensor(name);
    check_dequantizable(t);
    std::vector<float> v(static_cast<std::size_t>(t.n_elements()));
    dequantize_blocks(t.type, tensor_bytes(t), v);
    return v;
  }

 private:
  static gguf_file parse(std::shared_ptr<const file_bytes> bytes, std::string context) {
    gguf_file f;
    f.bytes_ = std::move(bytes);
    f.context_ = std::move(context);
    detail::byte_reader r(f.bytes_->bytes(), f.context_);

    const auto magic = r.read<std::uint32_t>("the magic number");
    if (magic != 0x46554747u) r.fail("not a GGUF file (the first 4 bytes are not \"GGUF\")");
    f.version_ = r.read<std::uint32_t>("the version");
    if (f.version_ != 2 && f.version_ != 3)
      r.fail("GGUF version ", f.version_, " is not supported (expected 2 or 3)");
    const auto n_tensors = r.read<std::uint64_t>("the tensor count");
    const auto n_kv = r.read<std::uint64_t>("the metadata count");
    // Each metadata pair takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor
    // record at least 8 + 4 + 8 + 4 + 8. Bound the counts before reserving anything.
    if (n_kv > r.remaining() / 13) r.fail("metadata count ", n_kv, " cannot fit in the file (truncated or corrupt?)");
    for (std::uint64_t i = 0; i < n_kv; ++i) {
      std::string key = read_string(r, "a metadata key");
      const auto type = read_value_type(r, key);
      gguf_value v;
      v.type = type;
      if (type == gguf_value_type::array) {
        v.elem = read_value_type(r, key);
        if (v.elem == gguf_value_type::array) r.fail("metadata '", key, "' is an array of arrays (not supported)");
        const auto count = r.read<std::uint64_t>("an array length");
        const std::uint64_t min_size = v.elem == gguf_value_type::string ? 8 : scalar_size(v.elem);
        if (count > r.remaining() / min_size)
          r.fail("metadata '", key, "' claims ", count, " elements, more than the file holds");
        reserve(v, static_cast<std::size_t>(count));
        for (std::uint64_t k = 0; k < count; ++k) read_scalar(r, v, key);
      } else {
        v.elem = type;
        read_scalar(r, v, key);
      }
      if (f.kv_.count(key) != 0) r.fail("duplicate metadata key '", key, "'");
      f.kv_.emplace(std::move(key), std::move(v));
    }

    f.alignment_ = 32;
    if (auto it = f.kv_.find("general.alignment"); it != f.kv_.end()) {
      const auto& a = it->second;
      if (a.type != gguf_value_type::u32 || a.uints[0] == 0 || (a.uints[0] & (a.uints[0] - 1)) != 0)
        r.fail("general.alignment must be a u32 power of two");
      f.alignment_ = a.uints[0];
    }

    if (n_tensors > r.remaining() / 32) r.fail("tensor count ", n_tensors, " cannot fit in the file (truncated or corrupt?)");
    f.tensors_.reserve(static_cast<std::size_t>(n_tensors));
    std::vector<std::uint64_t> rel_offsets;
    rel_offsets.reserve(static_cast<std::size_t>(n_tensors));
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      gguf_tensor_info t;
      t.name = read_string(r, "a tensor name");
      const auto n_dims = r.read<std::uint32_t>("a tensor's dimension count");
      if (n_dims < 1 || n_dims > 4) r.fail("tensor '", t.name, "' has ", n_dims, " dimensions (expected 1 to 4)");
      std::uint64_t n_elem = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const auto ne = r.read<std::uint64_t>("a tensor dimension");
        if (ne > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          r.fail("tensor '", t.name, "' dimension ", d, " = ", ne, " is out of range");
        n_elem = detail::checked_mul(n_elem, ne, f.context_ + ": tensor '" + t.name + "'");
        t.dims.push_back(ne);
      }
      if (n_elem > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        r.fail("tensor '", t.name, "' has too many elements");
      const auto raw_type = r.read<std::uint32_t>("a tensor type");
      t.type = static_cast<gguf_type>(raw_type);
      const auto tr = type_traits(t.type);
      if (!tr) r.fail("tensor '", t.name, "' has unknown ggml type ", raw_type);
      if (t.dims[0] % tr->block != 0)
        r.fail("tensor '", t.name, "' row length ", t.dims[0], " is not a multiple of the ", tr->name, " block size ",
               tr->block);
      t.n_bytes = detail::checked_mul(n_elem / tr->block, tr->bytes, f.context_ + ": tensor '" + t.name + "'");
      const auto off = r.read<std::uint64_t>("a tensor offset");
      if (off % f.alignment_ != 0)
        r.fail("tensor '", t.name, "' offset ", off, " is not a multiple of the alignment ", f.alignment_);
      rel_offsets.push_back(off);
      if (!f.tensor_index_.emplace(t.name, f.tensors_.size()).second) r.fail("duplicate tensor name '", t.name, "'");
      f.tensors_.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment.
    const std::uint64_t pad = (f.alignment_ - r.pos() % f.alignment_) % f.alignment_;
    f.data_offset_ = detail::checked_add(r.pos(), pad, f.context_);
    const std::uint64_t file_size = f.bytes_->size();
    if (!f.tensors_.empty() && f.data_offset_ > file_size) r.fail("truncated before the tensor data section");
    for (std::size_t i = 0; i < f.tensors_.size(); ++i) {
      auto& t = f.tensors_[i];
      t.offset = detail::checked_add(f.data_offset_, rel_offsets[i], f.context_);
      const auto end = detail::checked_add(t.offset, t.n_bytes, f.context_);
      if (end > file_size)
        r.fail("tensor '", t.name, "' (", t.n_bytes, " bytes at offset ", t.offset, ") extends past the end of the file (",
               file_size, " bytes): truncated file?");
    }
    // Tensors must not overlap: a crafted file could otherwise alias one tensor into another.
    std::vector<const gguf_tensor_info*> by_offset;
    by_offset.reserve(f.tensors_.size());
    for (const auto& t : f.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const gguf_tensor_info* a, const gguf_tensor_info* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i)
      if (by_offset[i - 1]->offset + by_offset[i - 1]->n_bytes > by_offset[i]->offset)
        r.fail("tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name, "' overlap");
    return f;
  }

  static std::string read_string(detail::byte_reader& r, std::string_view what) {
    const auto n = r.read<std::uint64_t>(what);
    return r.read_string(n, what);
  }

  static gguf_value_type read_value_type(detail::byte_reader& r, std::string_view key) {
    const auto t = r.read<std::uint32_t>("a metadata type");
    if (t > 12) r.fail("metadata '", key, "' has unknown value type ", t);
    return static_cast<gguf_value_type>(t);
  }

  static std::uint64_t scalar_size(gguf_value_type t) {
    switch (t) {
      case gguf_value_type::u8: case gguf_value_type::i8: case gguf_value_type::boolean: return 1;
      case gguf_value_type::u16: case gguf_value_type::i16: return 2;
      case gguf_value_type::u32: case gguf_value_type::i32: case gguf_value_type::f32: return 4;
      default: return 8;
    }
  }

  static void reserve(gguf_value& v, std::size_t n) {
    switch (v.elem) {
      case gguf_value_type::string: v.strings.reserve(n); break;
      case gguf_value_type::f32: case gguf_value_type::f64: v.floats.reserve(n); break;
      case gguf_value_type::u8: case gguf_value_type::u16: case gguf_value_type::u32: case gguf_value_type::u64:
        v.uints.reserve(n);
        break;
      default: v.ints.reserve(n);
    }
  }

  static void read_scalar(detail::byte_reader& r, gguf_value& v, const std::string& key) {
    switch (v.elem) {
      case gguf_value_type::u8: v.uints.push_back(r.read<std::uint8_t>(key)); break;
      case gguf_value_type::i8: v.ints.push_back(r.read<std::int8_t>(key)); break;
      case gguf_value_type::u16: v.uints.push_back(r.read<std::uint16_t>(key)); break;
      case gguf_value_type::i16: v.ints.push_back(r.read<std::int16_t>(key)); break;
      case gguf_value_type::u32: v.uints.push_back(r.read<std::uint32_t>(key)); break;
      case gguf_value_type::i32: v.ints.push_back(r.read<std::int32_t>(key)); break;
      case gguf_value_type::u64: v.uints.push_back(r.read<std::uint64_t>(key)); break;
      case gguf_value_type::i64: v.ints.push_back(r.read<std::int64_t>(key)); break;
      case gguf_value_type::f32: v.floats.push_back(r.read<float>(key)); break;
      case gguf_value_type::f64: v.floats.push_back(r.read<double>(key)); break;
      case gguf_value_type::boolean: {
        const auto b = r.read<std::uint8_t>(key);
        if (b > 1) r.fail("metadata '", key, "' holds bool value ", int(b), " (expected 0 or 1)");
        v.ints.push_back(b);
        break;
      }
      case gguf_value_type::string: v.strings.push_back(read_string(r, key)); break;
      case gguf_value_type::array: r.fail("metadata '", key, "': nested array");
    }
  }

  const gguf_value& scalar(std::string_view key) const {
    const auto& v = value(key);
    if (v.is_array())
      lowbit::detail::fail(context_, ": metadata '", key, "' is an array of ", value_type_name(v.elem),
                           ", expected a single value");
    return v;
  }
  const gguf_value& array(std::string_view key) const {
    const auto& v = value(key);
    if (!v.is_array())
      lowbit::detail::fail(context_, ": metadata '", key, "' is a single ", value_type_name(v.type),
                           ", expected an array");
    return v;
  }
  void expect(std::string_view key, const gguf_value& v, bool ok, std::string_view expected) const {
    if (!ok)
      lowbit::detail::fail(context_, ": metadata '", key, "' has type ",
                           v.is_array() ? "array of " + std::string(value_type_name(v.elem))
                                        : std::string(value_type_name(v.type)),
                           ", expected ", expected);
  }
  void check_dequantizable(const gguf_tensor_info& t) const {
    const auto tr = type_traits(t.type);
    if (!tr || !tr->dequantizable)
      lowbit::detail::fail(context_, ": tensor '", t.name, "' has type ", type_name(t.type),
                           ", which this reader cannot dequantize");
  }

  std::shared_ptr<const file_bytes> bytes_;
  std::string context_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  std::map<std::string, gguf_value, std::less<>> kv_;
  std::vector<gguf_tensor_info> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

}  // namespace lowbit::io
