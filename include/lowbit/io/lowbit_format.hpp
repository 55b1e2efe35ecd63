#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The lowbit file: a quantized model (named packed matrices + float tensors) that loads back
// bit-exactly. It is a valid safetensors file, so generic tools list it; lowbit adds a magic,
// a version, a header checksum and a checksum per tensor. docs/formats.md has every byte.
//
//   u64 N | JSON header (N bytes, space-padded to a multiple of 8) | tensor data
//   header = {"__metadata__":{"lowbit":"lowbit-packed",            <- the magic, at byte 8
//                             "lowbit.crc32c.<tensor>":"xxxxxxxx",  <- CRC-32C of each tensor
//                             "lowbit.format_version":"1",
//                             "lowbit.header_crc32c":"xxxxxxxx",    <- CRC-32C of the header
//                             "lowbit.matrix.<name>":"bits=4;group_axis=oc;group=128;...",
//                             "user.<key>":"..."},                  <- the caller's metadata
//             "<name>.codes":   {"dtype":"U8",  "shape":[rows, row_bytes], ...},
//             "<name>.scales":  {"dtype":"F16"|"F32", "shape":[stat_rows, stat_cols], ...},
//             "<name>.zeros":   (asymmetric grids only, as scales)
//             quantized_stats<B, R> (SpQR) instead of scales/zeros: "<name>.scale_codes",
//             "<name>.zero_codes" U8 [stat_cols, column_bytes], "<name>.stats_grids" F16 [stat_cols, groups, 4]
//             "<name>.weak_columns" I32 [k], "<name>.weak_values" F16 [rows, k]   (dense_columns)
//             "<name>.outlier_row_ptr" U32 [rows+1], "<name>.outlier_cols" U16 [nnz],
//             "<name>.outlier_values" F16 [nnz]                                  (sparse_outliers)
//             "<tensor>": F32/F16/BF16 float tensors (norms, embeddings, ...),
//             "<tensor>": I32 [n] index tensors (permutations, reorders) }
//
// The magic: safetensors has none, so the metadata key sorted first ("lowbit" sorts before
// every "lowbit.*" and "user.*" key, and the writer emits metadata in sorted order) makes the
// bytes from offset 8 the fixed string {"__metadata__":{"lowbit":"lowbit-packed", which is
// still plain JSON: safetensors readers see an ordinary metadata entry.
// The header checksum is the CRC-32C of the N header bytes with its own 8 hex digits read as
// "00000000"; every tensor's checksum covers its data bytes. Writes are atomic (temporary file,
// fsync, rename). Reading validates everything before returning a matrix: a corrupt, truncated
// or inconsistent file is a lowbit::error naming the file and what is wrong, never a crash.
#include <Eigen/Core>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <algorithm>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/format/packed_matrix.hpp"
#if __has_include("lowbit/format/quantized_stats_table.hpp")
#include "lowbit/format/quantized_stats_table.hpp"  // SpQR's quantized_stats<B, R> tables
#endif
#include "lowbit/io/checksum.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::inline LOWBIT_ABI::io {

inline constexpr int lowbit_format_version = 1;
inline constexpr std::string_view lowbit_magic = R"({"__metadata__":{"lowbit":"lowbit-packed",)";

// What a file says one packed matrix is: the policies of its type plus its shape.
struct packed_info {
  std::string name;
  int bits = 0;
  axis group_axis = axis::oc;  // the Group policy's axis (adaptive: chosen per matrix)
  int group = 0;               // the Group policy's size (0 = per_channel)
  axis chosen_axis = axis::oc; // the axis the stats are laid out along (== group_axis unless adaptive)
  bool symmetric = false;
  std::string stats;    // "fp16_stats", "fp32_stats", "quantized_stats<B, R>"
  std::string outliers; // "no_outliers", "dense_columns", "sparse_outliers"
  index rows = 0, cols = 0;
  index weak_columns = 0;  // dense_columns: k
  index outliers_nnz = 0;  // sparse_outliers: stored values

  // The C++ type that holds it, as packed_type_name<PM>() spells it.
  std::string type_name() const {
    return "packed_matrix<bits<" + std::to_string(bits) + ">, group<" + axis_name(group_axis) + ", " +
           (group == per_channel ? std::string("per_channel") : std::to_string(group)) + ">, " + outliers + ", " +
           stats + ", " + (symmetric ? "symmetric" : "asymmetric") + ">";
  }
};

namespace detail {

// The file format spells each policy by its tag's name.
template <class S>
std::string stats_name() {
  static_assert(requires { S::name; }, "lowbit_writer: a stats storage needs a `name` to be written to a file");
  return S::name;
}
template <class O>
std::string outliers_name() {
  return O::name;
}

template <PackedMatrix PM>
packed_info info_of(std::string_view name, const PM& pm) {
  packed_info i;
  i.name = std::string(name);
  i.bits = PM::bits;
  i.group_axis = PM::grouping::group_axis;
  i.group = PM::grouping::size;
  i.chosen_axis = pm.group_axis();
  i.symmetric = PM::symmetric;
  i.stats = stats_name<typename PM::stats_policy>();
  i.outliers = outliers_name<typename PM::outlier_policy>();
  i.rows = pm.rows();
  i.cols = pm.cols();
  i.weak_columns = pm.weak_count();
  i.outliers_nnz = pm.outliers().sparse_entries();
  return i;
}

// "quantized_stats<B, R>" → (B, R); false for anything else.
inline bool parse_quantized_stats(std::string_view s, int& b, int& r) {
  constexpr std::string_view head = "quantized_stats<", mid = ", ";
  if (!s.starts_with(head) || !s.ends_with(">")) return false;
  s = s.substr(head.size(), s.size() - head.size() - 1);
  const auto comma = s.find(mid);
  if (comma == std::string_view::npos) return false;
  const auto num = [](std::string_view t, int& v) {
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return ec == std::errc() && p == t.data() + t.size();
  };
  return num(s.substr(0, comma), b) && num(s.substr(comma + mid.size()), r) && is_supported_bit_width(b) && r >= 2 &&
         r <= (1 << 20) && (r & (r - 1)) == 0;
}

inline std::string encode_descriptor(const packed_info& i) {
  return "bits=" + std::to_string(i.bits) + ";group_axis=" + axis_name(i.group_axis) + ";group=" +
         std::to_string(i.group) + ";axis=" + axis_name(i.chosen_axis) + ";symmetric=" + (i.symmetric ? "1" : "0") +
         ";stats=" + i.stats + ";outliers=" + i.outliers + ";rows=" + std::to_string(i.rows) + ";cols=" +
         std::to_string(i.cols) + ";weak=" + std::to_string(i.weak_columns) + ";nnz=" + std::to_string(i.outliers_nnz);
}

// Parses and range-checks a descriptor; `where` names the file and matrix for messages.
inline packed_info decode_descriptor(std::string_view name, std::string_view d, const std::string& where) {
  std::map<std::string, std::string, std::less<>> kv;
  while (!d.empty()) {
    const auto semi = d.find(';');
    const auto part = d.substr(0, semi);
    const auto eq = part.find('=');
    lowbit::detail::require(eq != std::string_view::npos && eq > 0, where, ": malformed descriptor field '", part, "'");
    lowbit::detail::require(kv.emplace(std::string(part.substr(0, eq)), std::string(part.substr(eq + 1))).second, where,
                            ": descriptor field '", part.substr(0, eq), "' repeats");
    if (semi == std::string_view::npos) break;
    d.remove_prefix(semi + 1);
  }
  auto field = [&](std::string_view key) -> const std::string& {
    auto it = kv.find(key);
    if (it == kv.end()) lowbit::detail::fail(where, ": descriptor lacks '", key, "'");
    return it->second;
  };
  auto integer = [&](std::string_view key, std::int64_t lo, std::int64_t hi) {
    const std::string& s = field(key);
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    lowbit::detail::require(ec == std::errc() && p == s.data() + s.size() && v >= lo && v <= hi, where, ": ", key, "=",
                            s, " is not an integer in [", lo, ", ", hi, "]");
    return v;
  };
  auto axis_field = [&](std::string_view key, bool allow_adaptive) {
    const std::string& s = field(key);
    if (s == "oc") return axis::oc;
    if (s == "ic") return axis::ic;
    if (s == "adaptive" && allow_adaptive) return axis::adaptive;
    lowbit::detail::fail(where, ": ", key, "=", s, " is not ", allow_adaptive ? "oc, ic or adaptive" : "oc or ic");
  };
  lowbit::detail::require(kv.size() == 11, where, ": descriptor has ", kv.size(), " fields, expected 11");
  packed_info i;
  i.name = std::string(name);
  i.bits = static_cast<int>(integer("bits", 0, 64));
  lowbit::detail::require(is_supported_bit_width(i.bits), where, ": bits=", i.bits,
                          " is not a bit width lowbit packs (", supported_bit_widths_text, ")");
  i.group_axis = axis_field("group_axis", true);
  i.group = static_cast<int>(integer("group", 0, 1 << 30));
  lowbit::detail::require(is_valid_group_size(i.group), where, ": group=", i.group,
                          " is not a power of two >= 2 or 0 (per_channel)");
  i.chosen_axis = axis_field("axis", false);
  lowbit::detail::require(i.group_axis == axis::adaptive || i.chosen_axis == i.group_axis, where, ": axis=",
                          axis_name(i.chosen_axis), " contradicts group_axis=", axis_name(i.group_axis));
  i.symmetric = integer("symmetric", 0, 1) == 1;
  i.stats = field("stats");
  int qb = 0, qr = 0;
  lowbit::detail::require(i.stats == "fp16_stats" || i.stats == "fp32_stats" || parse_quantized_stats(i.stats, qb, qr),
                          where, ": stats=", i.stats,
                          " is not fp16_stats, fp32_stats or quantized_stats<B, R> (B ", supported_bit_widths_text,
                          "; R a power of two)");
  i.outliers = field("outliers");
  bool keeps_columns = false, keeps_entries = false;
  const bool known = known_outlier_stores::visit(i.outliers, [&]<class O>() {
    keeps_columns = outlier_store<O>::keeps_columns;
    keeps_entries = outlier_store<O>::keeps_entries;
  });
  lowbit::detail::require(known, where, ": outliers=", i.outliers, " is not one of ", known_outlier_stores::names());
  constexpr std::int64_t max_dim = std::int64_t{1} << 31;
  i.rows = integer("rows", 1, max_dim);
  i.cols = integer("cols", 1, max_dim);
  i.weak_columns = integer("weak", 0, i.cols - 1);
  i.outliers_nnz = integer("nnz", 0, std::int64_t{1} << 40);
  lowbit::detail::require(keeps_columns || i.weak_columns == 0, where, ": weak columns need outliers=dense_columns (",
                          i.outliers, " keeps none)");
  lowbit::detail::require(keeps_entries || i.outliers_nnz == 0, where, ": outlier values need outliers=sparse_outliers (",
                          i.outliers, " keeps none)");
  return i;
}

using lowbit::detail::shape_of;  // a tensor shape from its extents (format/outlier_store.hpp)

}  // namespace detail

template <PackedMatrix PM>
std::string packed_type_name() {
  packed_info i;
  i.bits = PM::bits;
  i.group_axis = PM::grouping::group_axis;
  i.group = PM::grouping::size;
  i.symmetric = PM::symmetric;
  i.stats = detail::stats_name<typename PM::stats_policy>();
  i.outliers = detail::outliers_name<typename PM::outlier_policy>();
  return i.type_name();
}

// ---------------------------------------------------------------- writing

class lowbit_writer {
 public:
  lowbit_writer() {
    st_.set_metadata("lowbit", "lowbit-packed");
    st_.set_metadata("lowbit.format_version", std::to_string(lowbit_format_version));
    st_.set_metadata("lowbit.header_crc32c", "00000000");
  }

  // A packed matrix under `name`; its parts become the tensors "<name>.codes", ...
  template <PackedMatrix PM>
  void add(std::string_view name, const PM& pm) {
    lowbit::detail::require(!name.empty(), "lowbit_writer: a matrix needs a name");
    lowbit::detail::require(pm.rows() > 0 && pm.cols() > 0, "lowbit_writer: matrix '", name, "' is empty");
    const std::string n(name);
    lowbit::detail::require(names_.emplace(n).second, "lowbit_writer: name '", n, "' is used twice");
    const packed_info info = detail::info_of(name, pm);
    st_.set_metadata("lowbit.matrix." + n, detail::encode_descriptor(info));
    put(n + ".codes", detail::shape_of({pm.rows(), static_cast<index>(pm.row_bytes())}), pm.codes());
    if constexpr (PM::stats_policy::second_level) {  // SpQR: codes of scales and zeros + their fp16 grids
      const auto& t = pm.stats();
      const auto codes_shape = detail::shape_of({pm.stat_cols(), static_cast<index>(t.column_bytes())});
      put(n + ".scale_codes", codes_shape, t.scale_codes());
      put(n + ".zero_codes", codes_shape, t.zero_codes());
      put(n + ".stats_grids", detail::shape_of({pm.stat_cols(), t.groups_per_column(), 4}), t.second_level());
    } else {
      const auto shape = detail::shape_of({pm.stat_rows(), pm.stat_cols()});
      put(n + ".scales", shape, pm.stats().scales());
      if (!PM::symmetric) put(n + ".zeros", shape, pm.stats().zeros());
    }
    pm.outliers().save(pm.rows(), [&](std::string_view suffix, const std::vector<std::uint64_t>& shape, auto span) {
      put(n + std::string(suffix), shape, span);
    });
  }

  // A float tensor (norm weights, embeddings, biases) stored as F32, F16 or BF16.
  void add_tensor(std::string_view name, const Eigen::MatrixXf& w, st_dtype dtype = st_dtype::f32) {
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = w;
    add_tensor(name, detail::shape_of({w.rows(), w.cols()}), std::span<const float>(rm.data(), static_cast<std::size_t>(rm.size())), dtype);
  }
  void add_tensor(std::string_view name, std::vector<std::uint64_t> shape, std::span<const float> v,
                  st_dtype dtype = st_dtype::f32) {
    lowbit::detail::require(dtype == st_dtype::f32 || dtype == st_dtype::f16 || dtype == st_dtype::bf16,
                            "lowbit_writer: float tensor '", name, "' must be F32, F16 or BF16");
    lowbit::detail::require(!name.empty(), "lowbit_writer: a tensor needs a name");
    lowbit::detail::require(names_.emplace(std::string(name)).second, "lowbit_writer: name '", name, "' is used twice");
    std::vector<std::byte> data(v.size() * traits(dtype).bytes);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (dtype == st_dtype::f32) {
        std::memcpy(data.data() + 4 * i, &v[i], 4);
      } else {
        const std::uint16_t h = dtype == st_dtype::f16 ? float_to_half_bits(v[i]) : detail::float_to_bf16(v[i]);
        std::memcpy(data.data() + 2 * i, &h, 2);
      }
    }
    st_.set_metadata("lowbit.crc32c." + std::string(name), crc32c_hex(crc32c(data)));
    st_.add(name, dtype, std::move(shape), std::move(data));
  }

  // An int32 tensor beside the matrices (a column permutation of SpQR's act-order storage,
  // RPTQ's channel reorder, token ids...).
  void add_indices(std::string_view name, std::span<const std::int32_t> v) {
    lowbit::detail::require(!name.empty(), "lowbit_writer: a tensor needs a name");
    lowbit::detail::require(names_.emplace(std::string(name)).second, "lowbit_writer: name '", name, "' is used twice");
    put(std::string(name), detail::shape_of({static_cast<index>(v.size())}), v);
  }

  // The caller's own key/value pairs (model name, method, report), stored as "user.<key>".
  void set_metadata(std::string_view key, std::string_view value) { st_.set_metadata("user." + std::string(key), value); }

  // The whole file, header checksum filled in.
  std::vector<std::byte> bytes() const {
    std::vector<std::byte> b = st_.bytes();
    std::uint64_t n = 0;
    std::memcpy(&n, b.data(), 8);
    const auto header = std::span<std::byte>(b).subspan(8, static_cast<std::size_t>(n));
    const std::string_view text(reinterpret_cast<const char*>(header.data()), header.size());
    lowbit::detail::require(text.starts_with(lowbit_magic), "lowbit_writer: the container did not put the magic first");
    const auto at = text.find(header_crc_key);
    lowbit::detail::require(at != std::string_view::npos, "lowbit_writer: header checksum slot missing");
    const std::string hex = crc32c_hex(crc32c(header));
    std::memcpy(header.data() + at + header_crc_key.size(), hex.data(), 8);
    return b;
  }

  // Atomic: a temporary file in the same directory, fsync, rename; on failure the
  // destination is untouched and the temporary removed.
  void write(const std::string& path) const { write_file_atomic(path, bytes()); }

  static constexpr std::string_view header_crc_key = R"("lowbit.header_crc32c":")";

 private:
  template <class T>
  void put(const std::string& name, std::vector<std::uint64_t> shape, std::span<const T> v) {
    std::vector<std::byte> b(v.size_bytes());
    if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
    st_.set_metadata("lowbit.crc32c." + name, crc32c_hex(crc32c(b)));
    st_.add(name, dtype_of<T>(), std::move(shape), std::move(b));
  }
  template <class T>
  void put(const std::string& name, std::vector<std::uint64_t> shape, std::span<T> v) {
    put(name, std::move(shape), std::span<const T>(v));
  }

  safetensors_writer st_;
  std::set<std::string> names_;
};

// ---------------------------------------------------------------- reading

class lowbit_file {
 public:
  // verify_checksums = false skips the header and tensor CRCs (fuzzing, salvaging a damaged
  // file); every structural check still runs.
  static lowbit_file open(const std::string& path, bool verify_checksums = true) {
    lowbit_file f("lowbit file '" + path + "'");
    f.check_magic_and_header(file_bytes::open(path)->bytes(), verify_checksums);
    f.st_ = safetensors_file::open(path);
    f.check_contents(verify_checksums);
    return f;
  }
  static lowbit_file from_memory(std::vector<std::byte> bytes, std::string name = "lowbit buffer",
                                 bool verify_checksums = true) {
    lowbit_file f(std::move(name));
    f.check_magic_and_header(bytes, verify_checksums);
    f.st_ = safetensors_file::from_memory(std::move(bytes), f.context_);
    f.check_contents(verify_checksums);
    return f;
  }

  int format_version() const { return version_; }
  const std::vector<packed_info>& matrices() const { return matrices_; }
  const packed_info* find_matrix(std::string_view name) const {
    for (const auto& m : matrices_)
      if (m.name == name) return &m;
    return nullptr;
  }
  const packed_info& matrix(std::string_view name) const {
    const auto* m = find_matrix(name);
    if (m == nullptr) {
      std::string all;
      for (const auto& x : matrices_) all += (all.empty() ? "" : ", ") + x.name;
      lowbit::detail::fail(context_, ": no packed matrix named '", name, "' (the file holds: ", all.empty() ? "none" : all, ")");
    }
    return *m;
  }
  // Float tensors (everything that is not part of a packed matrix).
  const std::vector<std::string>& tensors() const { return floats_; }
  // Int32 tensors written with lowbit_writer::add_indices.
  const std::vector<std::string>& index_tensors() const { return indices_; }
  std::vector<std::int32_t> load_indices(std::string_view name) const {
    lowbit::detail::require(std::find(indices_.begin(), indices_.end(), name) != indices_.end(), context_,
                            ": no index tensor named '", name, "'");
    return st_.load<std::int32_t>(name);
  }
  // The caller's metadata written with lowbit_writer::set_metadata.
  std::map<std::string, std::string> user_metadata() const {
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : st_.metadata())
      if (k.starts_with("user.")) m.emplace(k.substr(5), v);
    return m;
  }
  const safetensors_file& container() const { return st_; }

  // A float tensor; NaN or Inf anywhere in it is refused, naming the tensor and the element
  // (a norm or AWQ input scale with one NaN would turn every later activation into NaN).
  Eigen::MatrixXf load_tensor(std::string_view name) const {
    lowbit::detail::require(std::find(floats_.begin(), floats_.end(), name) != floats_.end(), context_,
                            ": no float tensor named '", name, "'");
    Eigen::MatrixXf m = st_.load_matrix(name);
    if (!m.allFinite())
      for (Eigen::Index c = 0; c < m.cols(); ++c)
        for (Eigen::Index r = 0; r < m.rows(); ++r)
          lowbit::detail::require(std::isfinite(m(r, c)), context_, ": tensor '", name, "' element (", r, ", ", c, ") is ",
                                  m(r, c), "; expected a finite number");
    return m;
  }

  // The packed matrix `name`, as type PM. The file's policies must be exactly PM's.
  template <PackedMatrix PM>
  PM load(std::string_view name) const {
    const packed_info& info = matrix(name);
    const std::string want = packed_type_name<PM>();
    lowbit::detail::require(info.type_name() == want, context_, ": matrix '", name, "' is a ", info.type_name(),
                            " but the caller asked for a ", want);
    const std::string n(name);
    using store = outlier_store<typename PM::outlier_policy>;
    std::vector<std::int32_t> weak =
        store::load_weak_columns([&](std::string_view suffix) { return st_.load<std::int32_t>(n + std::string(suffix)); });
    PM pm = lowbit::detail::with_context([&] { return PM(info.rows, info.cols, info.chosen_axis, weak); }, context_,
                                         ": matrix '", name, "': ");
    copy_exact(n + ".codes", detail::shape_of({pm.rows(), static_cast<index>(pm.row_bytes())}), pm.codes());
    if constexpr (PM::stats_policy::second_level) {
      auto& t = pm.stats();
      const auto codes_shape = detail::shape_of({pm.stat_cols(), static_cast<index>(t.column_bytes())});
      copy_exact(n + ".scale_codes", codes_shape, t.scale_codes());
      copy_exact(n + ".zero_codes", codes_shape, t.zero_codes());
      copy_exact(n + ".stats_grids", detail::shape_of({pm.stat_cols(), t.groups_per_column(), 4}), t.second_level());
      require_finite_stats(n + ".stats_grids", std::span<const half>(t.second_level()));
    } else {
      const auto shape = detail::shape_of({pm.stat_rows(), pm.stat_cols()});
      copy_exact(n + ".scales", shape, pm.stats().scales());
      require_finite_stats(n + ".scales", pm.stats().scales());
      if constexpr (!PM::symmetric) {
        copy_exact(n + ".zeros", shape, pm.stats().zeros());
        require_finite_stats(n + ".zeros", pm.stats().zeros());
      }
    }
    // Finite stats can still overflow float when decoded (fp32 scale 1e36 times zero 1e22).
    for (index i = 0; i < pm.stats().size(); ++i) {
      const grid_params p = pm.stats().get(i, PM::implicit_zero);
      const double reach = std::abs(static_cast<double>(p.scale)) * (PM::max_code + std::abs(static_cast<double>(p.zero)));
      lowbit::detail::require(reach <= static_cast<double>(std::numeric_limits<float>::max()), context_, ": matrix '", name,
                              "': stats entry ", i, " (scale ", p.scale, ", zero ", p.zero,
                              ") decodes beyond the float range");
    }
    auto get = [&](std::string_view suffix, const std::vector<std::uint64_t>& shape, auto span) {
      copy_exact(n + std::string(suffix), shape, span);
    };
    lowbit::detail::with_context([&] { pm.outliers().load(pm.rows(), pm.cols(), info.outliers_nnz, get); }, context_,
                                 ": matrix '", name, "': ");
    return pm;
  }

 private:
  explicit lowbit_file(std::string context) : context_(std::move(context)) {}

  void check_magic_and_header(std::span<const std::byte> all, bool verify) const {
    // 1. The magic, before anything else, so a wrong file gets the right message.
    if (all.size() < 8 + lowbit_magic.size()) {
      const auto got = all.size() > 8 ? all.size() - 8 : 0;
      if (all.size() <= 8 || std::memcmp(all.data() + 8, lowbit_magic.data(), got) != 0)
        lowbit::detail::fail(context_, ": not a lowbit file (", all.size(), " bytes, no lowbit magic)");
      lowbit::detail::fail(context_, ": truncated (", all.size(), " bytes)");
    }
    if (std::memcmp(all.data() + 8, lowbit_magic.data(), lowbit_magic.size()) != 0)
      lowbit::detail::fail(context_, ": not a lowbit file: byte 8 does not start with ", lowbit_magic,
                           " (a plain safetensors file? read it with safetensors_file)");
    // 2. The header checksum, before the JSON is trusted.
    std::uint64_t n = 0;
    std::memcpy(&n, all.data(), 8);
    lowbit::detail::require(n <= all.size() - 8, context_, ": truncated: the header claims ", n, " bytes, the file has ",
                            all.size() - 8, " after the length");
    std::vector<std::byte> header(all.begin() + 8, all.begin() + 8 + static_cast<std::ptrdiff_t>(n));
    const std::string_view text(reinterpret_cast<const char*>(header.data()), header.size());
    const auto key = lowbit_writer::header_crc_key;
    const auto at = text.find(key);
    lowbit::detail::require(at != std::string_view::npos && text.find(key, at + 1) == std::string_view::npos &&
                                at + key.size() + 8 <= text.size(),
                            context_, ": the header has no (single) lowbit.header_crc32c entry");
    const std::string stored(text.substr(at + key.size(), 8));
    std::memset(header.data() + at + key.size(), '0', 8);
    const std::string actual = crc32c_hex(crc32c(header));
    lowbit::detail::require(!verify || stored == actual, context_, ": header checksum mismatch (stored ", stored, ", computed ",
                            actual, "): the file is corrupt");
  }

  // 3. After the container parsed (bounds, offsets, tiling): our metadata.
  void check_contents(bool verify) {
    const auto& meta = st_.metadata();
    auto version = meta.find("lowbit.format_version");
    lowbit::detail::require(version != meta.end(), context_, ": lowbit.format_version is missing");
    lowbit::detail::require(version->second == "1", context_, ": format version ", version->second,
                            " is not one this lowbit reads (", lowbit_format_version, ")");
    version_ = lowbit_format_version;
    // 4. Every tensor's checksum.
    std::set<std::string, std::less<>> claimed;
    for (const auto& t : st_.tensors()) {
      auto it = meta.find("lowbit.crc32c." + t.name);
      lowbit::detail::require(it != meta.end(), context_, ": tensor '", t.name, "' has no checksum");
      if (!verify) continue;
      const std::string actual_t = crc32c_hex(crc32c(st_.tensor_bytes(t)));
      lowbit::detail::require(it->second == actual_t, context_, ": tensor '", t.name, "' checksum mismatch (stored ",
                              it->second, ", computed ", actual_t, "): the file is corrupt");
    }
    // 5. Matrix descriptors, checked against the tensors that hold them.
    constexpr std::string_view mprefix = "lowbit.matrix.";
    for (const auto& [k, v] : meta) {
      if (!k.starts_with(mprefix)) continue;
      const std::string name = k.substr(mprefix.size());
      packed_info info = detail::decode_descriptor(name, v, context_ + ": matrix '" + name + "'");
      check_parts(info, claimed);
      matrices_.push_back(std::move(info));
    }
    for (const auto& t : st_.tensors()) {
      if (claimed.count(t.name)) continue;
      if (t.dtype == st_dtype::i32 && t.shape.size() == 1) {
        indices_.push_back(t.name);
        continue;
      }
      lowbit::detail::require(t.dtype == st_dtype::f32 || t.dtype == st_dtype::f16 || t.dtype == st_dtype::bf16, context_,
                              ": tensor '", t.name, "' belongs to no matrix and is neither a float tensor nor a 1-D I32 "
                              "index tensor (", traits(t.dtype).name, ")");
      floats_.push_back(t.name);
    }
  }

  // Shapes and dtypes of a matrix's tensors, from the descriptor alone (so matrices() is
  // trustworthy before anything is loaded).
  void check_parts(const packed_info& i, std::set<std::string, std::less<>>& claimed) const {
    const std::string where = context_ + ": matrix '" + i.name + "'";
    auto expect = [&](const std::string& suffix, st_dtype dt, std::vector<std::uint64_t> shape) {
      const std::string tn = i.name + suffix;
      const auto* t = st_.find(tn);
      lowbit::detail::require(t != nullptr, where, ": tensor '", tn, "' is missing");
      lowbit::detail::require(t->dtype == dt, where, ": tensor '", tn, "' is ", traits(t->dtype).name, ", expected ",
                              traits(dt).name);
      lowbit::detail::require(t->shape == shape, where, ": tensor '", tn, "' has the wrong shape for the descriptor");
      claimed.insert(tn);
    };
    const index qcols = i.cols - i.weak_columns;
    const index g = i.group == per_channel ? (i.chosen_axis == axis::oc ? qcols : i.rows) : i.group;
    const index srows = i.chosen_axis == axis::oc ? i.rows : (i.rows + g - 1) / g;
    const index scols = i.chosen_axis == axis::oc ? (qcols + g - 1) / g : qcols;
    const st_dtype sdt = i.stats == "fp16_stats" ? st_dtype::f16 : st_dtype::f32;
    expect(".codes", st_dtype::u8, detail::shape_of({i.rows, static_cast<index>(packed_row_bytes(qcols, i.bits))}));
    int qb = 0, qr = 0;
    if (detail::parse_quantized_stats(i.stats, qb, qr)) {
      lowbit::detail::require(!i.symmetric, where, ": quantized_stats need an asymmetric grid");
      const auto codes_shape = detail::shape_of({scols, static_cast<index>(packed_row_bytes(srows, qb))});
      expect(".scale_codes", st_dtype::u8, codes_shape);
      expect(".zero_codes", st_dtype::u8, codes_shape);
      expect(".stats_grids", st_dtype::f16, detail::shape_of({scols, (srows + qr - 1) / qr, 4}));
    } else {
      expect(".scales", sdt, detail::shape_of({srows, scols}));
      if (!i.symmetric) expect(".zeros", sdt, detail::shape_of({srows, scols}));
    }
    known_outlier_stores::visit(i.outliers, [&]<class O>() {
      outlier_store<O>::expect_tensors(i.rows, i.weak_columns, i.outliers_nnz, [&]<class T>(std::string_view suffix,
                                                                                          lowbit::detail::tensor_of<T>,
                                                                                          std::vector<std::uint64_t> shape) {
        expect(std::string(suffix), dtype_of<T>(), std::move(shape));
      });
    });
  }

  template <class T>
  void copy_exact(const std::string& tensor, const std::vector<std::uint64_t>& shape, std::span<T> out) const {
    const auto& t = st_.tensor(tensor);
    lowbit::detail::require(t.dtype == dtype_of<std::remove_const_t<T>>() && t.shape == shape && t.n_bytes == out.size_bytes(),
                            context_, ": tensor '", tensor, "' does not match the matrix it belongs to");
    if (!out.empty()) std::memcpy(static_cast<void*>(out.data()), st_.tensor_bytes(t).data(), out.size_bytes());
  }
  template <class T>
  void require_finite_stats(const std::string& tensor, std::span<const T> v) const {
    lowbit::detail::require_finite_values(v, tensor, context_ + ": ");
  }
  template <class T>
  void require_finite_stats(const std::string& tensor, std::span<T> v) const {
    require_finite_stats(tensor, std::span<const T>(v));
  }

  std::string context_;
  safetensors_file st_;
  int version_ = 0;
  std::vector<packed_info> matrices_;
  std::vector<std::string> floats_;
  std::vector<std::string> indices_;
};

// ---------------------------------------------------------------- conveniences

template <PackedMatrix PM>
void save_packed(const std::string& path, const PM& pm, std::string_view name = "weight") {
  lowbit_writer w;
  w.add(name, pm);
  w.write(path);
}
template <PackedMatrix PM>
PM load_packed(const std::string& path, std::string_view name = "weight") {
  return lowbit_file::open(path).load<PM>(name);
}

// Run-time dispatch for tools: calls f(pm) with the first of the candidate types whose
// policies match what the file holds for `name`; fails naming the file's type otherwise.
//   dispatch_packed<pm4_g128, pm3_g128>(file, "layers.0.q_proj", [](const auto& pm) { ... });
template <PackedMatrix... Candidates, class F>
void dispatch_packed(const lowbit_file& file, std::string_view name, F&& f) {
  const packed_info& info = file.matrix(name);
  bool done = false;
  ((!done && info.type_name() == packed_type_name<Candidates>() ? (f(file.load<Candidates>(name)), done = true) : false), ...);
  lowbit::detail::require(done, "matrix '", name, "' is a ", info.type_name(), ", which none of the ",
                          sizeof...(Candidates), " types this program was built with can hold");
}

}  // namespace lowbit::io
