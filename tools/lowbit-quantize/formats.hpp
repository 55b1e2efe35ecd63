#pragma once
// The formats lowbit-quantize writes and reads: run-time options (bits, group size, axis)
// become compile-time policies through one dispatch table per family (with_format;
// with_spqr_format for SpQR's tiny groups), so the set of instantiated formats is in one
// place — and the loader of model files (model_file.cpp) reads exactly those formats back.
// Plus the two linear wrappers the adapters return.
//
// LOWBIT_TOOLS_FEW_FORMATS (the sanitizer build: -DLOWBIT_TOOLS_ALL_FORMATS=OFF) keeps two
// group sizes (SpQR: one), which is all the tests use, at a fraction of the build.
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit-quantize/methods.hpp"
#include "lowbit/owq.hpp"
#include "lowbit/rtn.hpp"
#include "lowbit/spqr.hpp"
#include "model/llama.hpp"

namespace lowbit::tools {

template <class F>
auto with_bits(int b, F&& f) {
  switch (b) {
    case 2: return f.template operator()<bits<2>>();
    case 3: return f.template operator()<bits<3>>();
    case 4: return f.template operator()<bits<4>>();
    case 8: return f.template operator()<bits<8>>();
  }
  detail::fail("--bits ", b, " is not supported (expected ", supported_bit_widths_text, ")");
}
// The switch above must name exactly lowbit's widths (a width added to the library needs its
// case here, where the tool instantiates its formats).
static_assert(supported_bit_widths == std::array<int, 4>{2, 3, 4, 8},
              "lowbit-quantize: with_bits() does not cover supported_bit_widths");

// The group sizes the tool accepts, as X(B, S) for bits B (S = 0: per channel): the cases of
// with_format below and, over every bits of with_bits, the explicit instantiations of
// linears.cpp (a bit width with_bits takes but LOWBIT_TOOLS_FOR_EACH_FORMAT lacks fails to
// link: make_packed_linear undefined).
#if defined(LOWBIT_TOOLS_FEW_FORMATS)  // the sanitizer build: the two sizes the tests use
#define LOWBIT_TOOLS_GROUP_SIZES(X, B) X(B, 32) X(B, 128)
#else
#define LOWBIT_TOOLS_GROUP_SIZES(X, B) X(B, 0) X(B, 32) X(B, 64) X(B, 128) X(B, 256)
#endif
#define LOWBIT_TOOLS_FOR_EACH_FORMAT(X) \
  LOWBIT_TOOLS_GROUP_SIZES(X, 2) LOWBIT_TOOLS_GROUP_SIZES(X, 3) LOWBIT_TOOLS_GROUP_SIZES(X, 4) LOWBIT_TOOLS_GROUP_SIZES(X, 8)

// OWQ as the tool runs it (and reads it back): the reference's "mse" tuning, its default
// with --target_bit, is the joint range × zero-point search.
template <class B, class G>
using owq_method = owq<B, G, mse_range_zero<>>;

// Calls f.template operator()<bits<B>, group<A, G>>() for the run-time (B, G, A), A oc or ic
// (adaptive: the adapter builds group<adaptive, G::size> itself).
template <class F>
auto with_format(const method_options& o, F&& f) {
  return with_bits(o.bits, [&]<class Bits>() {
    auto with_axis = [&]<int G>() {
      if (o.group_axis == axis::ic) return f.template operator()<Bits, group<axis::ic, G>>();
      return f.template operator()<Bits, group<axis::oc, G>>();
    };
    switch (o.group) {
#define LOWBIT_TOOLS_GROUP_CASE(B, S) \
  case S: return with_axis.template operator()<S>();
      LOWBIT_TOOLS_GROUP_SIZES(LOWBIT_TOOLS_GROUP_CASE, Bits)
#undef LOWBIT_TOOLS_GROUP_CASE
    }
    detail::fail("--group ", o.group, " is not supported (expected 0 = per channel, 32, 64, 128 or 256)");
  });
}

// SpQR's formats: β₁ groups along the input columns of each row (oc only), 3-bit quantized
// stats over β₂ = 16 rows (spqr<>'s defaults).
template <class F>
auto with_spqr_format(const method_options& o, F&& f) {
  detail::require(o.group_axis == axis::oc, "--method spqr needs --axis oc: SpQR's groups are beta1 consecutive input ",
                  "columns of one output row (per-IC groups are not supported)");
  return with_bits(o.bits, [&]<class Bits>() {
    switch (o.group) {
      case 16: return f.template operator()<spqr<Bits, group<axis::oc, 16>>>();
#if !defined(LOWBIT_TOOLS_FEW_FORMATS)
      case 32: return f.template operator()<spqr<Bits, group<axis::oc, 32>>>();
      case 64: return f.template operator()<spqr<Bits, group<axis::oc, 64>>>();
      case 128: return f.template operator()<spqr<Bits, group<axis::oc, 128>>>();
#endif
    }
    detail::fail("--method spqr: --group ", o.group, " is not supported (expected 16 = SpQR's beta1, its default, ",
                 "32, 64 or 128; SpQR has no per-channel mode)");
  });
}

// A packed matrix as a linear (packed_linear: its kernel and dequantized paths). Declared
// here, defined and explicitly instantiated for every format of with_format in linears.cpp:
// each method would otherwise compile its own copy of packed_linear<PM> for the same formats.
template <PackedMatrix PM>
std::unique_ptr<linear> make_packed_linear(PM pm, const method_options& o, Eigen::VectorXf input_scale,
                                           std::string notes);

// What quantize returns (quantized<PM>, awq_quantized<...>: the packed matrix plus a report)
// or a bare packed matrix (a loaded file), as a linear; the report's notes are kept.
template <class Q>
std::unique_ptr<linear> make_linear(Q q, const method_options& o, Eigen::VectorXf input_scale = {}) {
  if constexpr (requires { q.report.notes; }) {
    using PM = std::remove_cvref_t<decltype(q.packed())>;
    std::string notes = std::move(q.report.notes);
    return make_packed_linear<PM>(PM(std::move(q.packed())), o, std::move(input_scale), std::move(notes));
  } else {
    return make_packed_linear<Q>(std::move(q), o, std::move(input_scale), {});
  }
}

// A SpQR matrix (packed codes over act-order-permuted columns + the permutation) as a linear.
template <PackedMatrix PM>
class spqr_linear final : public linear {
 public:
  spqr_linear(spqr_matrix<PM> m, quantized_path path, std::string notes = {})
      : m_(std::move(m)), path_(path), notes_(std::move(notes)) {
    if (path_ == quantized_path::dequantized) deq_ = m_.dequantize();
  }
  index rows() const override { return m_.rows(); }
  index cols() const override { return m_.cols(); }
  void apply(const act& X, act& Y) const override {
    if (path_ == quantized_path::dequantized) {
      parallel_matmul(deq_, X, Y);
      return;
    }
    detail::require(X.rows() == m_.cols(), "spqr_linear: input has ", X.rows(), " features, expected ", m_.cols());
    Y.resize(m_.rows(), X.cols());
    parallel_for(X.cols(), 4, [&](index b, index e) {
      m_.gemm(std::span<const float>(X.data() + b * X.rows(), static_cast<std::size_t>((e - b) * X.rows())),
              std::span<float>(Y.data() + b * Y.rows(), static_cast<std::size_t>((e - b) * Y.rows())), e - b);
    });
  }
  Eigen::MatrixXf weight() const override { return path_ == quantized_path::dequantized ? deq_ : m_.dequantize(); }
  double bits_per_weight() const override { return m_.bits_per_weight(); }
  bool quantized() const override { return true; }
  std::string notes() const override { return notes_; }
  // The packed matrix under `name`, the permutation as the index tensor "<name>.perm".
  void save(io::lowbit_writer& w, const std::string& name) const override {
    w.add(name, m_.packed());
    const auto p = m_.permutation();
    if (!p.empty()) {
      const std::vector<std::int32_t> perm(p.begin(), p.end());
      w.add_indices(name + ".perm", perm);
    }
  }
  const spqr_matrix<PM>& matrix() const { return m_; }

 private:
  spqr_matrix<PM> m_;
  quantized_path path_;
  std::string notes_;
  Eigen::MatrixXf deq_;
};


}  // namespace lowbit::tools
