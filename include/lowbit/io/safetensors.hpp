#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// safetensors reader and writer (Hugging Face's tensor container; lowbit's own packed-model
// files use it too).
//
//   u64 N (little-endian) | N bytes of UTF-8 JSON header | data buffer
//   header = { "__metadata__": {string: string, ...},            (optional)
//              "<name>": {"dtype": "F32", "shape": [r, c], "data_offsets": [begin, end]}, ... }
//
// Offsets are relative to the data buffer; tensors are stored row-major (C order), so a
// PyTorch Linear weight [out_features, in_features] loads directly as the W of y = W x.
// The reader is a hostile-input parser: the header length, the JSON (strict, bounded parser),
// every dtype, shape and offset are validated, and the tensors must tile the data buffer
// exactly (no gaps, no overlaps), the rule of the reference implementation. The writer pads
// the header with spaces to a multiple of 8 so every tensor starts 8-byte aligned, and saves
// atomically (temporary file, fsync, rename).
#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/io/atomic_file.hpp"
#include "lowbit/io/byte_reader.hpp"
#include "lowbit/io/json.hpp"

namespace lowbit::inline LOWBIT_ABI::io {

enum class st_dtype { boolean, u8, i8, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64, f8_e4m3, f8_e5m2 };

struct st_dtype_traits {
  std::string_view name;
  std::uint32_t bytes;
};

inline st_dtype_traits traits(st_dtype t) {
  switch (t) {
    case st_dtype::boolean: return {"BOOL", 1};
    case st_dtype::u8: return {"U8", 1};
    case st_dtype::i8: return {"I8", 1};
    case st_dtype::i16: return {"I16", 2};
    case st_dtype::u16: return {"U16", 2};
    case st_dtype::f16: return {"F16", 2};
    case st_dtype::bf16: return {"BF16", 2};
    case st_dtype::i32: return {"I32", 4};
    case st_dtype::u32: return {"U32", 4};
    case st_dtype::f32: return {"F32", 4};
    case st_dtype::f64: return {"F64", 8};
    case st_dtype::i64: return {"I64", 8};
    case st_dtype::u64: return {"U64", 8};
    case st_dtype::f8_e4m3: return {"F8_E4M3", 1};
    case st_dtype::f8_e5m2: return {"F8_E5M2", 1};
  }
  return {"?", 1};
}

inline std::optional<st_dtype> parse_dtype(std::string_view s) {
  for (int i = 0; i <= static_cast<int>(st_dtype::f8_e5m2); ++i) {
    const auto t = static_cast<st_dtype>(i);
    if (traits(t).name == s) return t;
  }
  return std::nullopt;
}

// The dtype that stores a C++ element type exactly.
template <class T>
constexpr st_dtype dtype_of() {
  if constexpr (std::is_same_v<T, bool>) return st_dtype::boolean;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return st_dtype::u8;
  else if constexpr (std::is_same_v<T, std::int8_t>) return st_dtype::i8;
  else if constexpr (std::is_same_v<T, std::int16_t>) return st_dtype::i16;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return st_dtype::u16;
  else if constexpr (std::is_same_v<T, half>) return st_dtype::f16;
  else if constexpr (std::is_same_v<T, std::int32_t>) return st_dtype::i32;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return st_dtype::u32;
  else if constexpr (std::is_same_v<T, float>) return st_dtype::f32;
  else if constexpr (std::is_same_v<T, double>) return st_dtype::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return st_dtype::i64;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return st_dtype::u64;
  else static_assert(sizeof(T) == 0, "no safetensors dtype stores this element type exactly");
}

struct safetensors_tensor_info {
  std::string name;
  st_dtype dtype = st_dtype::f32;
  std::vector<std::uint64_t> shape;  // C order: the last dimension is contiguous
  std::uint64_t offset = 0;          // absolute file offset
  std::uint64_t n_bytes = 0;

  std::uint64_t n_elements() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;  // checked when the file was opened
    return n;
  }
};

namespace detail {

inline float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }
inline std::uint16_t float_to_bf16(float f) {  // round to nearest even, NaN stays NaN
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Converts n elements of a numeric dtype to float (integers by value).
inline void to_float(st_dtype t, const std::byte* src, float* dst, std::size_t n) {
  auto each = [&](auto tag) {
    using T = decltype(tag);
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, src + i * sizeof(T), sizeof(T));
      dst[i] = static_cast<float>(v);
    }
  };
  switch (t) {
    case st_dtype::f32: std::memcpy(dst, src, n * 4); break;
    case st_dtype::f16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = half_bits_to_float(h);
      }
      break;
    case st_dtype::bf16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_float(h);
      }
      break;
    case st_dtype::f64: each(double{}); break;
    case st_dtype::boolean:
    case st_dtype::u8: each(std::uint8_t{}); break;
    case st_dtype::i8: each(std::int8_t{}); break;
    case st_dtype::i16: each(std::int16_t{}); break;
    case st_dtype::u16: each(std::uint16_t{}); break;
    case st_dtype::i32: each(std::int32_t{}); break;
    case st_dtype::u32: each(std::uint32_t{}); break;
    case st_dtype::i64: each(std::int64_t{}); break;
    case st_dtype::u64: each(std::uint64_t{}); break;
    default: lowbit::detail::fail("safetensors: converting ", traits(t).name, " to float is not supported");
  }
}

}  // namespace detail

class safetensors_file {
 public:
  static safetensors_file open(const std::string& path) {
    return parse(file_bytes::open(path), "safetensors file '" + path + "'");
  }
  static safetensors_file from_memory(std::vector<std::byte> bytes, std::string name = "safetensors buffer") {
    return parse(file_bytes::from_memory(std::move(bytes)), std::move(name));
  }

  const std::vector<safetensors_tensor_info>& tensors() const { return tensors_; }
  const safetensors_tensor_info* find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }
  const safetensors_tensor_info& tensor(std::string_view name) const {
    const auto* t = find(name);
    if (t == nullptr) lowbit::detail::fail(context_, ": no tensor named '", name, "'");
    return *t;
  }
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }
  std::string metadata(std::string_view key) const {
    auto it = metadata_.find(key);
    if (it == metadata_.end()) lowbit::detail::fail(context_, ": __metadata__ has no key '", key, "'");
    return it->second;
  }

  std::span<const std::byte> tensor_bytes(const safetensors_tensor_info& t) const {
    return bytes_->bytes().subspan(static_cast<std::size_t>(t.offset), static_cast<std::size_t>(t.n_bytes));
  }

  // A 2-D tensor [rows, cols] (higher ranks: rows = product of all but the last dim).
  Eigen::MatrixXf load_matrix(std::string_view name) const {
    const auto& t = tensor(name);
    const auto cols = static_cast<Eigen::Index>(t.shape.empty() ? 1 : t.shape.back());
    const auto rows = cols == 0 ? Eigen::Index{0} : static_cast<Eigen::Index>(t.n_elements()) / cols;
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm(rows, cols);
    if (rm.size() > 0) detail::to_float(t.dtype, tensor_bytes(t).data(), rm.data(), static_cast<std::size_t>(rm.size()));
    return rm;
  }
  // All elements in storage order, converted to float.
  std::vector<float> load_vector(std::string_view name) const {
    const auto& t = tensor(name);
    std::vector<float> v(static_cast<std::size_t>(t.n_elements()));
    if (!v.empty()) detail::to_float(t.dtype, tensor_bytes(t).data(), v.data(), v.size());
    return v;
  }
  // The elements exactly as stored; the dtype must be the one that stores T (U8 codes, I32
  // indices, F16 scales...).
  template <class T>
  std::vector<T> load(std::string_view name) const {
    const auto& t = tensor(name);
    if (t.dtype != dtype_of<T>())
      lowbit::detail::fail(context_, ": tensor '", name, "' has dtype ", traits(t.dtype).name, ", expected ",
                           traits(dtype_of<T>()).name);
    std::vector<T> v(static_cast<std::size_t>(t.n_elements()));
    if (!v.empty()) std::memcpy(static_cast<void*>(v.data()), tensor_bytes(t).data(), t.n_bytes);
    return v;
  }

 private:
  static safetensors_file parse(std::shared_ptr<const file_bytes> bytes, std::string context) {
    safetensors_file f;
    f.bytes_ = std::move(bytes);
    f.context_ = std::move(context);
    detail::byte_reader r(f.bytes_->bytes(), f.context_);
    const auto n = r.read<std::uint64_t>("the header length");
    constexpr std::uint64_t max_header = 100u << 20;
    if (n > max_header) r.fail("header length ", n, " exceeds the limit of ", max_header, " bytes");
    const auto header_bytes = r.read_bytes(n, "the JSON header");
    const std::string_view text(reinterpret_cast<const char*>(header_bytes.data()), header_bytes.size());
    json_value header;
#if LOWBIT_EXCEPTIONS
    try {
      header = parse_json(text);
    } catch (const lowbit::error& e) {
      r.fail("invalid header: ", e.what());
    }
#else
    header = parse_json(text);
#endif
    if (!header.is_object()) r.fail("the header is not a JSON object");
    const std::uint64_t data_start = r.pos();
    const std::uint64_t data_size = f.bytes_->size() - data_start;

    struct span_t {
      std::uint64_t begin, end;
      std::size_t index;
    };
    std::vector<span_t> spans;
    for (std::size_t i = 0; i < header.keys().size(); ++i) {
      const auto& key = header.keys()[i];
      const auto& entry = header.values()[i];
      if (key == "__metadata__") {
        if (!entry.is_object()) r.fail("__metadata__ must be an object of strings");
        for (std::size_t k = 0; k < entry.keys().size(); ++k) {
          if (!entry.values()[k].is_string()) r.fail("__metadata__['", entry.keys()[k], "'] is not a string");
          f.metadata_.emplace(entry.keys()[k], entry.values()[k].as_string());
        }
        continue;
      }
      if (!entry.is_object()) r.fail("entry '", key, "' is not an object");
      safetensors_tensor_info t;
      t.name = key;
      const auto* dtype = entry.find("dtype");
      const auto* shape = entry.find("shape");
      const auto* offsets = entry.find("data_offsets");
      if (dtype == nullptr || shape == nullptr || offsets == nullptr || entry.size() != 3)
        r.fail("tensor '", key, "' must have exactly dtype, shape and data_offsets");
      if (!dtype->is_string()) r.fail("tensor '", key, "': dtype is not a string");
      const auto dt = parse_dtype(dtype->as_string());
      if (!dt) r.fail("tensor '", key, "' has unknown dtype '", dtype->as_string(), "'");
      t.dtype = *dt;
      if (!shape->is_array()) r.fail("tensor '", key, "': shape is not an array");
      std::uint64_t n_elem = 1;
      for (const auto& d : shape->items()) {
        if (!d.is_u64()) r.fail("tensor '", key, "': shape entries must be non-negative 64-bit integers");
        const auto v = d.as_u64();
        n_elem = detail::checked_mul(n_elem, v, f.context_ + ": tensor '" + key + "'");
        t.shape.push_back(v);
      }
      t.n_bytes = detail::checked_mul(n_elem, traits(t.dtype).bytes, f.context_ + ": tensor '" + key + "'");
      if (!offsets->is_array() || offsets->items().size() != 2)
        r.fail("tensor '", key, "': data_offsets must be [begin, end]");
      for (const auto& o : offsets->items())
        if (!o.is_u64())
          r.fail("tensor '", key, "': data_offsets must be non-negative integers");
      const auto begin = offsets->items()[0].as_u64(), end = offsets->items()[1].as_u64();
      if (begin > end || end > data_size)
        r.fail("tensor '", key, "' data_offsets [", begin, ", ", end, "] lie outside the data buffer of ", data_size,
               " bytes: truncated file?");
      if (end - begin != t.n_bytes)
        r.fail("tensor '", key, "' spans ", end - begin, " bytes but its dtype and shape need ", t.n_bytes);
      t.offset = data_start + begin;
      spans.push_back({begin, end, f.tensors_.size()});
      f.index_.emplace(t.name, f.tensors_.size());
      f.tensors_.push_back(std::move(t));
    }
    // The tensors must tile the buffer: sorted by offset, each starts where the previous ended.
    std::sort(spans.begin(), spans.end(), [](const span_t& a, const span_t& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t at = 0;
    for (const auto& s : spans) {
      if (s.begin != at)
        r.fail("tensor '", f.tensors_[s.index].name, "' starts at ", s.begin, " but the previous tensor ends at ", at,
               " (gap or overlap)");
      at = s.end;
    }
    if (at != data_size) r.fail("the tensors cover ", at, " bytes of the ", data_size, "-byte data buffer");
    return f;
  }

  std::shared_ptr<const file_bytes> bytes_;
  std::string context_;
  std::vector<safetensors_tensor_info> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string, std::less<>> metadata_;
};

class safetensors_writer {
 public:
  void set_metadata(std::string_view key, std::string_view value) {
    check_utf8(key, "metadata key");
    check_utf8(value, "metadata value");
    metadata_[std::string(key)] = std::string(value);
  }

  // Raw bytes of `dtype` in C order.
  void add(std::string_view name, st_dtype dtype, std::vector<std::uint64_t> shape, std::vector<std::byte> data) {
    check_utf8(name, "tensor name");
    lowbit::detail::require(name != "__metadata__", "safetensors_writer: '__metadata__' is reserved");
    std::uint64_t n = 1;
    for (auto d : shape) n = detail::checked_mul(n, d, "safetensors_writer: tensor shape");
    lowbit::detail::require(data.size() == n * traits(dtype).bytes, "safetensors_writer: tensor '", name, "' holds ",
                            data.size(), " bytes, expected ", n * traits(dtype).bytes);
    for (const auto& t : tensors_)
      lowbit::detail::require(t.name != name, "safetensors_writer: duplicate tensor '", name, "'");
    tensors_.push_back({std::string(name), dtype, std::move(shape), std::move(data)});
  }
  // Elements stored exactly (uint8 codes, int32 indices, half scales, float, ...).
  template <class T>
  void add(std::string_view name, std::vector<std::uint64_t> shape, std::span<const T> values) {
    std::vector<std::byte> b(values.size_bytes());
    if (!b.empty()) std::memcpy(b.data(), values.data(), b.size());
    add(name, dtype_of<T>(), std::move(shape), std::move(b));
  }
  // A float matrix stored [rows, cols] as F32, F16 or BF16 (round to nearest even).
  void add_matrix(std::string_view name, const Eigen::MatrixXf& w, st_dtype dtype = st_dtype::f32) {
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = w;
    add_floats(name, {static_cast<std::uint64_t>(w.rows()), static_cast<std::uint64_t>(w.cols())},
               std::span<const float>(rm.data(), static_cast<std::size_t>(rm.size())), dtype);
  }
  void add_floats(std::string_view name, std::vector<std::uint64_t> shape, std::span<const float> v,
                  st_dtype dtype = st_dtype::f32) {
    std::vector<std::byte> b(v.size() * traits(dtype).bytes);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (dtype == st_dtype::f32) {
        std::memcpy(b.data() + 4 * i, &v[i], 4);
      } else if (dtype == st_dtype::f16 || dtype == st_dtype::bf16) {
        const std::uint16_t h = dtype == st_dtype::f16 ? float_to_half_bits(v[i]) : detail::float_to_bf16(v[i]);
        std::memcpy(b.data() + 2 * i, &h, 2);
      } else {
        lowbit::detail::fail("safetensors_writer: add_floats stores F32, F16 or BF16, not ", traits(dtype).name);
      }
    }
    add(name, dtype, std::move(shape), std::move(b));
  }

  std::vector<std::byte> bytes() const {
    std::string h = "{";
    bool first = true;
    if (!metadata_.empty()) {
      h += "\"__metadata__\":{";
      for (const auto& [k, v] : metadata_) {
        if (!first) h += ',';
        first = false;
        h += json_quote(k) + ":" + json_quote(v);
      }
      h += '}';
      first = false;
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      if (!first) h += ',';
      first = false;
      h += json_quote(t.name) + ":{\"dtype\":\"" + std::string(traits(t.dtype).name) + "\",\"shape\":[";
      for (std::size_t i = 0; i < t.shape.size(); ++i) {
        if (i > 0) h += ',';
        h += std::to_string(t.shape[i]);
      }
      h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.data.size()) + "]}";
      offset += t.data.size();
    }
    h += '}';
    h.resize((h.size() + 7) / 8 * 8, ' ');  // 8-byte aligned data, as the reference writer does
    std::vector<std::byte> out(8 + h.size());
    const std::uint64_t n = h.size();
    std::memcpy(out.data(), &n, 8);
    std::memcpy(out.data() + 8, h.data(), h.size());
    out.reserve(out.size() + offset);
    for (const auto& t : tensors_) out.insert(out.end(), t.data.begin(), t.data.end());
    return out;
  }

  void write(const std::string& path) const {
    const auto b = bytes();
    write_file_atomic(path, b);
  }

 private:
  static void check_utf8(std::string_view s, std::string_view what) {
    lowbit::detail::with_context([&] { (void)parse_json(json_quote(s)); }, "safetensors_writer: ", what,
                                 " is not valid UTF-8: ");
  }
  struct entry {
    std::string name;
    st_dtype dtype;
    std::vector<std::uint64_t> shape;
    std::vector<std::byte> data;
  };
  std::map<std::string, std::string> metadata_;
  std::vector<entry> tensors_;
};

}  // namespace lowbit::io
