#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// GGUF writer: metadata, tensors (raw blocks or quantized from float) and an atomic save.
// Used to export lowbit-quantized models to llama.cpp's Q4_0 / Q8_0 block formats and by the
// tests to build small, real GGUF files. The layout written is the one gguf.hpp documents
// (version 3, little-endian, tensor data aligned to `alignment`).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/io/atomic_file.hpp"
#include "lowbit/io/gguf.hpp"

namespace lowbit::inline LOWBIT_ABI::io {

// ---- reference quantizers: ggml's *_ref rules (ggml-quants.c quantize_row_<type>_ref), bit-exact ----
// Each block of 32 weights takes its scale (and min) from the float block, stores them as fp16
// (round to nearest even, as GGML_FP32_TO_FP16), and computes every code with the UNROUNDED
// float scale: q = trunc(x · (1/d) + offset), as the C does. `mul` keeps x · (1/d) a rounded
// float product: g++ in its default gnu++ mode contracts a·b + c into one fused multiply-add
// where the target has one (-march=native), which would move a code at a rounding tie and
// break bit-identity with the reference (and with the `gguf` Python package's numpy copy).
namespace detail {

inline void put_half(std::byte* p, float v) {
  const std::uint16_t h = float_to_half_bits(v);
  std::memcpy(p, &h, 2);
}

inline float mul(float a, float b) {
  volatile float p = a * b;  // a rounded product, never fused with the following add
  return p;
}

// Q8_0: d = max|x| / 127, q = roundf(x / d) (half away from zero).
inline void quant_q8_0(const float* x, std::byte* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 32; ++j) {
    const auto q = static_cast<std::int8_t>(std::round(mul(x[j], id)));
    std::memcpy(b + 2 + j, &q, 1);
  }
}

// The signed value of largest magnitude (the first one on ties), as Q4_0 / Q5_0 take it.
inline float signed_absmax(const float* x) {
  float amax = 0.0f, mx = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      mx = x[j];
    }
  return mx;
}

// Q4_0: the signed value of largest magnitude maps to code 0 (d = max / −8), so the grid
// covers it exactly; q = min(15, trunc(x/d + 8.5)).
inline void quant_q4_0(const float* x, std::byte* b) {
  const float d = signed_absmax(x) / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, static_cast<int>(static_cast<std::int8_t>(mul(x[j], id) + 8.5f)));
    const int q1 = std::min(15, static_cast<int>(static_cast<std::int8_t>(mul(x[j + 16], id) + 8.5f)));
    b[2 + j] = static_cast<std::byte>(q0 | (q1 << 4));
  }
}

// Block min and max, as Q4_1 / Q5_1 take them.
inline void block_min_max(const float* x, float& mn, float& mx) {
  mn = std::numeric_limits<float>::max();
  mx = -std::numeric_limits<float>::max();
  for (int j = 0; j < 32; ++j) {
    if (x[j] < mn) mn = x[j];
    if (x[j] > mx) mx = x[j];
  }
}

// Q4_1: d = (max − min) / 15, m = min, q = min(15, trunc((x − m)/d + 0.5)).
inline void quant_q4_1(const float* x, std::byte* b) {
  float mn, mx;
  block_min_max(x, mn, mx);
  const float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  put_half(b + 2, mn);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, static_cast<int>(static_cast<std::int8_t>(mul(x[j] - mn, id) + 0.5f)));
    const int q1 = std::min(15, static_cast<int>(static_cast<std::int8_t>(mul(x[j + 16] - mn, id) + 0.5f)));
    b[4 + j] = static_cast<std::byte>(q0 | (q1 << 4));
  }
}

// Q5_0 / Q5_1 codes 0..31 into the 4-bit nibbles (weights j and j + 16 share byte j) and the
// 32-bit word of fifth bits (bit j = weight j's).
inline void put_q5_codes(const int* q, std::byte* qh_at, std::byte* qs) {
  std::uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<std::byte>((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
    qh |= ((static_cast<std::uint32_t>(q[j]) & 0x10u) >> 4) << j;
    qh |= ((static_cast<std::uint32_t>(q[j + 16]) & 0x10u) >> 4) << (j + 16);
  }
  std::memcpy(qh_at, &qh, 4);
}

// Q5_0: d = max / −16, q = min(31, trunc(x/d + 16.5)); w = d (q − 16).
inline void quant_q5_0(const float* x, std::byte* b) {
  const float d = signed_absmax(x) / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  int q[32];
  for (int j = 0; j < 32; ++j) q[j] = std::min(31, static_cast<int>(static_cast<std::int8_t>(mul(x[j], id) + 16.5f)));
  put_q5_codes(q, b + 2, b + 6);
}

// Q5_1: d = (max − min) / 31, m = min, q = trunc((x − m)/d + 0.5) (no clamp in the C: the
// largest is 31 + rounding); w = d q + m.
inline void quant_q5_1(const float* x, std::byte* b) {
  float mn, mx;
  block_min_max(x, mn, mx);
  const float d = (mx - mn) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  put_half(b + 2, mn);
  int q[32];
  for (int j = 0; j < 32; ++j) q[j] = static_cast<int>(static_cast<std::uint8_t>(mul(x[j] - mn, id) + 0.5f));
  put_q5_codes(q, b + 4, b + 8);
}

}  // namespace detail

// Encodes `x` (a whole number of blocks) as `type`: F32, F16, BF16 (round to nearest even),
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (ggml's reference quantizers, bit-exact).
inline std::vector<std::byte> quantize_blocks(gguf_type type, std::span<const float> x) {
  const auto tr = type_traits(type);
  lowbit::detail::require(tr.has_value(), "quantize_blocks: unknown tensor type");
  lowbit::detail::require(x.size() % tr->block == 0, "quantize_blocks: ", x.size(), " weights is not a multiple of the ",
                          tr->name, " block size ", tr->block);
  std::vector<std::byte> out(x.size() / tr->block * tr->bytes);
  std::byte* b = out.data();
  for (std::size_t i = 0; i < x.size(); i += tr->block, b += tr->bytes) {
    switch (type) {
      case gguf_type::f32: std::memcpy(b, &x[i], 4); break;
      case gguf_type::f16: detail::put_half(b, x[i]); break;
      case gguf_type::bf16: {
        const std::uint32_t u = std::bit_cast<std::uint32_t>(x[i]);
        std::uint16_t h;
        if ((u & 0x7fffffffu) > 0x7f800000u) h = static_cast<std::uint16_t>((u >> 16) | 0x40u);  // quiet NaN
        else h = static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        std::memcpy(b, &h, 2);
        break;
      }
      case gguf_type::q8_0: detail::quant_q8_0(&x[i], b); break;
      case gguf_type::q4_0: detail::quant_q4_0(&x[i], b); break;
      case gguf_type::q4_1: detail::quant_q4_1(&x[i], b); break;
      case gguf_type::q5_0: detail::quant_q5_0(&x[i], b); break;
      case gguf_type::q5_1: detail::quant_q5_1(&x[i], b); break;
      default:
        lowbit::detail::fail("quantize_blocks: writing ", tr->name,
                             " from floats is not supported (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1)");
    }
  }
  return out;
}

class gguf_writer {
 public:
  explicit gguf_writer(std::uint32_t alignment = 32) : alignment_(alignment) {
    lowbit::detail::require(alignment > 0 && (alignment & (alignment - 1)) == 0,
                            "gguf_writer: alignment ", alignment, " must be a power of two");
    if (alignment != 32) set_u32("general.alignment", alignment);
  }

  // ---- metadata (keys must be unique) ----
  void set_string(std::string_view key, std::string_view v) {
    begin_kv(key, gguf_value_type::string);
    put_string(kv_, v);
    ++n_kv_;
  }
  void set_u32(std::string_view key, std::uint32_t v) { set_scalar(key, gguf_value_type::u32, v); }
  void set_i32(std::string_view key, std::int32_t v) { set_scalar(key, gguf_value_type::i32, v); }
  void set_u64(std::string_view key, std::uint64_t v) { set_scalar(key, gguf_value_type::u64, v); }
  void set_f32(std::string_view key, float v) { set_scalar(key, gguf_value_type::f32, v); }
  void set_f64(std::string_view key, double v) { set_scalar(key, gguf_value_type::f64, v); }
  void set_bool(std::string_view key, bool v) { set_scalar(key, gguf_value_type::boolean, std::uint8_t{v}); }
  void set_string_array(std::string_view key, const std::vector<std::string>& v) {
    begin_array(key, gguf_value_type::string, v.size());
    for (const auto& s : v) put_string(kv_, s);
    ++n_kv_;
  }
  void set_i32_array(std::string_view key, std::span<const std::int32_t> v) {
    begin_array(key, gguf_value_type::i32, v.size());
    for (auto x : v) put(kv_, x);
    ++n_kv_;
  }
  void set_f32_array(std::string_view key, std::span<const float> v) {
    begin_array(key, gguf_value_type::f32, v.size());
    for (auto x : v) put(kv_, x);
    ++n_kv_;
  }

  // Any value as the reader holds it (gguf_file::value): copies a file's metadata unchanged,
  // type for type (u8 stays u8, an f32 array stays f32).
  void set_value(std::string_view key, const gguf_value& v) {
    const gguf_value_type elem = v.is_array() ? v.elem : v.type;
    lowbit::detail::require(elem != gguf_value_type::array, "gguf_writer: '", key, "' is an array of arrays");
    if (v.is_array()) begin_array(key, elem, v.size());
    else begin_kv(key, elem);
    std::size_t n = v.size();
    lowbit::detail::require(v.is_array() || n == 1, "gguf_writer: scalar '", key, "' holds ", n, " values");
    for (std::size_t i = 0; i < n; ++i) {
      switch (elem) {
        case gguf_value_type::u8: put(kv_, static_cast<std::uint8_t>(v.uints[i])); break;
        case gguf_value_type::u16: put(kv_, static_cast<std::uint16_t>(v.uints[i])); break;
        case gguf_value_type::u32: put(kv_, static_cast<std::uint32_t>(v.uints[i])); break;
        case gguf_value_type::u64: put(kv_, static_cast<std::uint64_t>(v.uints[i])); break;
        case gguf_value_type::i8: put(kv_, static_cast<std::int8_t>(v.ints[i])); break;
        case gguf_value_type::i16: put(kv_, static_cast<std::int16_t>(v.ints[i])); break;
        case gguf_value_type::i32: put(kv_, static_cast<std::int32_t>(v.ints[i])); break;
        case gguf_value_type::i64: put(kv_, static_cast<std::int64_t>(v.ints[i])); break;
        case gguf_value_type::boolean: put(kv_, static_cast<std::uint8_t>(v.ints[i] != 0)); break;
        case gguf_value_type::f32: put(kv_, static_cast<float>(v.floats[i])); break;
        case gguf_value_type::f64: put(kv_, v.floats[i]); break;
        case gguf_value_type::string: put_string(kv_, v.strings[i]); break;
        case gguf_value_type::array: break;
      }
    }
    ++n_kv_;
  }
  bool has_key(std::string_view key) const { return keys_.find(key) != keys_.end(); }

  // ---- tensors ----
  // Pre-encoded data: dims ne0-first; `data` must have exactly the size the type implies.
  void add_tensor(std::string_view name, std::vector<std::uint64_t> dims, gguf_type type, std::vector<std::byte> data) {
    const auto tr = type_traits(type);
    lowbit::detail::require(tr.has_value(), "gguf_writer: tensor '", name, "' has an unknown type");
    lowbit::detail::require(!dims.empty() && dims.size() <= 4, "gguf_writer: tensor '", name, "' needs 1 to 4 dims");
    lowbit::detail::require(dims[0] % tr->block == 0, "gguf_writer: tensor '", name, "' row length ", dims[0],
                            " is not a multiple of the ", tr->name, " block size ", tr->block);
    std::uint64_t n = 1;
    for (auto d : dims) n *= d;
    lowbit::detail::require(data.size() == n / tr->block * tr->bytes, "gguf_writer: tensor '", name, "' data holds ",
                            data.size(), " bytes, expected ", n / tr->block * tr->bytes);
    lowbit::detail::require(names_.insert(std::string(name)).second, "gguf_writer: duplicate tensor '", name, "'");
    tensors_.push_back({std::string(name), std::move(dims), type, std::move(data)});
  }
  // W of y = W x (rows = output features) stored as [ne0 = cols, ne1 = rows], encoded as `type`.
  void add_matrix(std::string_view name, const Eigen::MatrixXf& w, gguf_type type) {
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = w;
    add_tensor(name, {static_cast<std::uint64_t>(w.cols()), static_cast<std::uint64_t>(w.rows())}, type,
               quantize_blocks(type, std::span<const float>(rm.data(), static_cast<std::size_t>(rm.size()))));
  }
  void add_vector(std::string_view name, std::span<const float> v, gguf_type type = gguf_type::f32) {
    add_tensor(name, {static_cast<std::uint64_t>(v.size())}, type, quantize_blocks(type, v));
  }

  // The complete file image.
  std::vector<std::byte> bytes() const {
    std::vector<std::byte> out;
    put(out, std::uint32_t{0x46554747u});  // "GGUF"
    put(out, std::uint32_t{3});
    put(out, static_cast<std::uint64_t>(tensors_.size()));
    put(out, n_kv_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      put_string(out, t.name);
      put(out, static_cast<std::uint32_t>(t.dims.size()));
      for (auto d : t.dims) put(out, d);
      put(out, static_cast<std::uint32_t>(t.type));
      put(out, offset);
      offset += align(t.data.size());
    }
    out.resize(align(out.size()));
    for (const auto& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      out.resize(align(out.size()));
    }
    return out;
  }

  void write(const std::string& path) const {
    const auto b = bytes();
    write_file_atomic(path, b);
  }

 private:
  struct tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    gguf_type type;
    std::vector<std::byte> data;
  };

  template <class T>
  static void put(std::vector<std::byte>& out, T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  static void put_string(std::vector<std::byte>& out, std::string_view s) {
    put(out, static_cast<std::uint64_t>(s.size()));
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out.insert(out.end(), p, p + s.size());
  }
  std::size_t align(std::size_t n) const { return (n + alignment_ - 1) / alignment_ * alignment_; }

  void begin_kv(std::string_view key, gguf_value_type t) {
    lowbit::detail::require(keys_.insert(std::string(key)).second, "gguf_writer: duplicate metadata key '", key, "'");
    put_string(kv_, key);
    put(kv_, static_cast<std::uint32_t>(t));
  }
  void begin_array(std::string_view key, gguf_value_type elem, std::size_t n) {
    begin_kv(key, gguf_value_type::array);
    put(kv_, static_cast<std::uint32_t>(elem));
    put(kv_, static_cast<std::uint64_t>(n));
  }
  template <class T>
  void set_scalar(std::string_view key, gguf_value_type t, T v) {
    begin_kv(key, t);
    put(kv_, v);
    ++n_kv_;
  }

  std::uint32_t alignment_;
  std::vector<std::byte> kv_;
  std::uint64_t n_kv_ = 0;
  std::set<std::string, std::less<>> keys_, names_;
  std::vector<tensor> tensors_;
};

}  // namespace lowbit::io
