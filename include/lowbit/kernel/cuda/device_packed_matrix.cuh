#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// device_packed_matrix: a packed matrix in GPU memory, in the layout the CUDA kernels read.
//
// upload(W) takes any CPU packed_matrix (every bit width, axis, stats storage and outlier
// store) and produces one non-template object: the kernels dispatch on its run-time
// descriptor, so one set of kernels serves every policy combination (few template
// instances, modest nvcc time).
//
// What is stored on the device
//   codes      tiles in tensor-core fragment order (layout.cuh);
//   stats      per group one fp16 pair (scale s, bias b = -zero * s), so a weight is
//              w = fma(code, s, b) in half2 arithmetic; b is rounded to fp16 once, from the
//              float product (error <= 1 ulp of |zero * s|, i.e. of the group's largest weight).
//              per-OC: half2 (s, b) as [rows_pad / 16][stat_cols][16]: the 16 rows of a
//              tile's group are one 64-byte run, so a warp's stats load touches 2 sectors
//              instead of 16 (row-major rows are stat_cols * 4 bytes apart);
//              per-IC: fp16 s and b, each [ceil(rows_pad / G) x qcols_pad] row-major, so
//              the 16 consecutive columns of a thread are two 16-byte loads.
//              SpQR's two-level stats (quantized_stats<B, R>) are decoded at upload through
//              the table's bulk decode() into these fp16 pairs: the kernels stay one code
//              path and read one pair per group, at the price of 32 bits per group instead
//              of about 2 B + 2 * 16 / R bits (docs/cuda.md has the numbers).
//   OWQ        weak column indices, their fp16 values [rows x k] and the map from low-bit
//              column to logical column (activations are gathered before the main kernel);
//   SpQR       the CSR arrays as stored on the CPU (uint32 row_ptr, uint16 col, fp16 value).
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/format/packed_matrix.hpp"
#include "lowbit/kernel/cuda/device_buffer.cuh"
#include "lowbit/kernel/cuda/layout.cuh"

namespace lowbit::inline LOWBIT_ABI::kernel::cuda {

// How a thread finds the stats of its weights (chosen at upload from the group geometry).
enum class stats_mode : int {
  oc_wide = 0,    // per-OC, a thread's 16 columns share one group (g % 16 == 0 or g >= qcols)
  ic_wide = 1,    // per-IC, a tile's 16 rows share one group (G % 16 == 0 or G >= rows)
  oc_narrow = 2,  // per-OC with g in {2, 4, 8}: one lookup per pair of columns
  ic_narrow = 3,  // per-IC with G in {2, 4, 8}: one lookup per row of a pair
};

class device_packed_matrix {
 public:
  device_packed_matrix() = default;
  device_packed_matrix(device_packed_matrix&&) noexcept = default;
  device_packed_matrix& operator=(device_packed_matrix&&) noexcept = default;

  int bits() const { return bits_; }
  index rows() const { return rows_; }
  index cols() const { return cols_; }
  index quantized_cols() const { return qcols_; }
  axis group_axis() const { return axis_; }
  index group_size() const { return group_; }
  stats_mode mode() const { return mode_; }
  index row_tiles() const { return rows_pad_ / tile_rows; }
  index k_tiles() const { return nkt_; }
  index stat_cols() const { return stat_cols_; }
  index weak_count() const { return nweak_; }
  index sparse_count() const { return static_cast<index>(sp_col_.size()); }

  // Bytes the device copy holds (codes with tile padding, stats as fp16 pairs, outliers).
  std::size_t device_bytes() const {
    return codes_.bytes() + oc_stats_.bytes() + ic_scale_.bytes() + ic_bias_.bytes() + weak_cols_.bytes() +
           weak_vals_.bytes() + qmap_.bytes() + row_ptr_.bytes() + sp_col_.bytes() + sp_val_.bytes();
  }
  // Bytes the CPU format stores (packed_matrix::stored_bytes()), the count bandwidth is judged on.
  std::size_t format_bytes() const { return format_bytes_; }

  // Raw device arrays, for the kernels and the layout test.
  const device_buffer<std::uint8_t>& codes() const { return codes_; }
  const device_buffer<__half2>& oc_stats() const { return oc_stats_; }
  const device_buffer<__half>& ic_scale() const { return ic_scale_; }
  const device_buffer<__half>& ic_bias() const { return ic_bias_; }
  const device_buffer<std::int32_t>& weak_columns() const { return weak_cols_; }
  const device_buffer<__half>& weak_values() const { return weak_vals_; }
  const device_buffer<std::int32_t>& column_map() const { return qmap_; }
  const device_buffer<std::uint32_t>& sparse_row_ptr() const { return row_ptr_; }
  const device_buffer<std::uint16_t>& sparse_columns() const { return sp_col_; }
  const device_buffer<__half>& sparse_values() const { return sp_val_; }
  index ic_stat_rows() const { return ic_rows_; }
  index padded_cols() const { return nkt_ * tile_cols; }

  template <PackedMatrix PM>
  friend device_packed_matrix upload(const PM& W);

 private:
  int bits_ = 0;
  index rows_ = 0, cols_ = 0, qcols_ = 0, rows_pad_ = 0, nkt_ = 0;
  axis axis_ = axis::oc;
  index group_ = 0, stat_cols_ = 0, ic_rows_ = 0, nweak_ = 0;
  stats_mode mode_ = stats_mode::oc_wide;
  std::size_t format_bytes_ = 0;
  device_buffer<std::uint8_t> codes_;
  device_buffer<__half2> oc_stats_;
  device_buffer<__half> ic_scale_, ic_bias_;
  device_buffer<std::int32_t> weak_cols_;
  device_buffer<__half> weak_vals_;
  device_buffer<std::int32_t> qmap_;
  device_buffer<std::uint32_t> row_ptr_;
  device_buffer<std::uint16_t> sp_col_;
  device_buffer<__half> sp_val_;
};

namespace detail_upload {
inline __half2 scale_bias(float s, float z) { return __halves2half2(__float2half_rn(s), __float2half_rn(-z * s)); }
}  // namespace detail_upload

// Copies a CPU packed matrix to the device, repacking codes and stats (synchronous).
template <PackedMatrix PM>
device_packed_matrix upload(const PM& W) {
  device_packed_matrix d;
  constexpr int bits = PM::bits;
  d.bits_ = bits;
  d.rows_ = W.rows();
  d.cols_ = W.cols();
  d.qcols_ = W.quantized_cols();
  d.rows_pad_ = (d.rows_ + tile_rows - 1) / tile_rows * tile_rows;
  d.nkt_ = (d.qcols_ + tile_cols - 1) / tile_cols;
  d.axis_ = W.group_axis();
  d.group_ = W.group_size();
  d.format_bytes_ = W.stored_bytes();
  const index qcols_pad = d.nkt_ * tile_cols;

  // ---- codes: one row band of 16 rows per task ----
  const index row_tiles = d.rows_pad_ / tile_rows;
  const std::size_t tbytes = static_cast<std::size_t>(tile_bytes(bits));
  std::vector<std::uint8_t> tiles(static_cast<std::size_t>(row_tiles * d.nkt_) * tbytes, 0);
  parallel_for(row_tiles, 1, [&](index begin, index end) {
    std::vector<std::uint8_t> row(static_cast<std::size_t>(d.qcols_));
    for (index rt = begin; rt < end; ++rt)
      for (int r = 0; r < tile_rows && rt * tile_rows + r < d.rows_; ++r) {
        W.unpack_row_codes(rt * tile_rows + r, row);
        for (index qc = 0; qc < d.qcols_; ++qc) {
          std::uint8_t* tile = tiles.data() + static_cast<std::size_t>(rt * d.nkt_ + qc / tile_cols) * tbytes;
          put_code(tile, bits, r, static_cast<int>(qc % tile_cols), row[static_cast<std::size_t>(qc)]);
        }
      }
  });
  d.codes_ = device_buffer<std::uint8_t>(tiles);

  // ---- stats: decoded through the table's bulk interface (any StatsStorage) ----
  const index srows = W.stat_rows(), scols = W.stat_cols();
  d.stat_cols_ = scols;
  std::vector<float> s(static_cast<std::size_t>(scols)), z(static_cast<std::size_t>(scols));
  if (d.axis_ == axis::oc) {
    d.mode_ = (d.group_ % 16 == 0 || d.group_ >= d.qcols_) ? stats_mode::oc_wide : stats_mode::oc_narrow;
    std::vector<__half2> t(static_cast<std::size_t>(d.rows_pad_ * scols), __halves2half2(__float2half(0.f), __float2half(0.f)));
    for (index r = 0; r < srows; ++r) {
      W.stats().decode(r * scols, scols, s.data(), z.data(), PM::implicit_zero);
      for (index j = 0; j < scols; ++j)
        t[static_cast<std::size_t>(((r / tile_rows) * scols + j) * tile_rows + r % tile_rows)] =
            detail_upload::scale_bias(s[static_cast<std::size_t>(j)], z[static_cast<std::size_t>(j)]);
    }
    d.oc_stats_ = device_buffer<__half2>(t);
  } else {
    d.mode_ = (d.group_ % 16 == 0 || d.group_ >= d.rows_) ? stats_mode::ic_wide : stats_mode::ic_narrow;
    d.ic_rows_ = (d.rows_pad_ + d.group_ - 1) / d.group_;
    std::vector<__half> ts(static_cast<std::size_t>(d.ic_rows_ * qcols_pad), __float2half(0.f));
    std::vector<__half> tb(ts.size(), __float2half(0.f));
    for (index r = 0; r < srows; ++r) {
      W.stats().decode(r * scols, scols, s.data(), z.data(), PM::implicit_zero);
      for (index j = 0; j < scols; ++j) {
        const __half2 sb = detail_upload::scale_bias(s[static_cast<std::size_t>(j)], z[static_cast<std::size_t>(j)]);
        ts[static_cast<std::size_t>(r * qcols_pad + j)] = __low2half(sb);
        tb[static_cast<std::size_t>(r * qcols_pad + j)] = __high2half(sb);
      }
    }
    d.ic_scale_ = device_buffer<__half>(ts);
    d.ic_bias_ = device_buffer<__half>(tb);
  }

  // ---- outliers ----
  using O = typename PM::outlier_policy;
  const auto to_device_halves = [](const std::vector<lowbit::half>& v) {
    std::vector<__half> h(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) h[i] = __half(__half_raw{v[i].bits});
    return device_buffer<__half>(h);
  };
  if constexpr (std::is_same_v<O, dense_columns>) {
    const auto& o = W.outliers();
    d.nweak_ = o.count();
    if (d.nweak_ > 0) {
      d.weak_cols_ = device_buffer<std::int32_t>(o.columns);
      d.weak_vals_ = to_device_halves(o.values);
      const auto map = W.quantized_column_map();
      std::vector<std::int32_t> m32(map.begin(), map.end());
      d.qmap_ = device_buffer<std::int32_t>(m32);
    }
  }
  if constexpr (std::is_same_v<O, sparse_outliers>) {
    const auto& o = W.outliers();
    if (o.count() > 0) {
      d.row_ptr_ = device_buffer<std::uint32_t>(o.row_ptr);
      d.sp_col_ = device_buffer<std::uint16_t>(o.col);
      d.sp_val_ = to_device_halves(o.values);
    }
  }
  return d;
}

}  // namespace lowbit::kernel::cuda
