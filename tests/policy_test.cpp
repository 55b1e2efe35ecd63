// Open, behavioural policies (issue #16): a ScaleSearch written by a user is called for every
// group by every method that takes a search — not silently replaced by minmax — and the
// built-in searches are ordinary policies of the same shape (name, searches, fit).
#include <Eigen/Dense>
#include <cmath>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>

#include "lowbit/gptq.hpp"
#include "lowbit/rtn.hpp"
#include "lowbit_catch.hpp"
#include "test_data.hpp"

namespace {

// Clip every group's range to 90 % of its min/max range (a search a researcher might try).
struct clip90 {
  static constexpr const char* name = "clip90";
  static constexpr bool searches = false;
  static inline int calls = 0;
  static lowbit::grid_params fit(lowbit::weight_run w, const lowbit::grid_spec& spec) {
    ++calls;
    const auto [lo, hi] = lowbit::range_with_zero(w);
    return lowbit::grid_for_range(0.9f * lo, 0.9f * hi, spec);
  }
};

// Rounds like the fp16 stats table: the stored scale is what dequantizes.
float fp16(float v) { return lowbit::half(v).to_float(); }

}  // namespace

static_assert(lowbit::ScaleSearch<clip90>);
static_assert(lowbit::ScaleSearch<lowbit::minmax> && lowbit::ScaleSearch<lowbit::mse_clip<>> &&
              lowbit::ScaleSearch<lowbit::mse_range_zero<>>);
// Only a member name, as the old concept accepted, is not a search any more.
struct only_a_flag {
  static constexpr bool searches = true;
};
static_assert(!lowbit::ScaleSearch<only_a_flag>);

TEST_CASE("policy: a user's scale search is called, and its grid is the stored one") {
  using namespace lowbit;
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(24, 128, 5);
  clip90::calls = 0;
  const auto q = quantize<rtn<bits<3>, group<oc, 64>, clip90>>(W);
  CHECK(clip90::calls == 24 * 2);  // once per (row, group)
  const auto plain = quantize<rtn<bits<3>, group<oc, 64>>>(W);
  CHECK(q.dequantize() != plain.dequantize());
  // Hand-computed reference for every weight: 0.9 x the range, asymmetric 3-bit grid,
  // fp16 scale, integral zero, round half to even.
  const Eigen::MatrixXf D = q.dequantize();
  for (Eigen::Index r = 0; r < W.rows(); ++r)
    for (Eigen::Index g = 0; g < 2; ++g) {
      double lo = 0.0, hi = 0.0;
      for (Eigen::Index c = 64 * g; c < 64 * g + 64; ++c) {
        lo = std::min(lo, static_cast<double>(W(r, c)));
        hi = std::max(hi, static_cast<double>(W(r, c)));
      }
      const float scale = fp16(static_cast<float>((0.9f * static_cast<float>(hi) - 0.9f * static_cast<float>(lo))) / 7.0f);
      const float zero = std::nearbyint(-(0.9f * static_cast<float>(lo)) / scale);
      for (Eigen::Index c = 64 * g; c < 64 * g + 64; ++c) {
        const float code = std::clamp(std::nearbyint(W(r, c) / scale) + zero, 0.0f, 7.0f);
        REQUIRE(D(r, c) == scale * (code - zero));
      }
    }
}

TEST_CASE("policy: GPTQ takes a user's search for its dynamic groups") {
  using namespace lowbit;
  const Eigen::MatrixXf W = lowbit_test::heavy_tailed(32, 128, 6);
  const Eigen::MatrixXd H = [] {
    const Eigen::MatrixXf X = lowbit_test::activations(128, 256, 7);
    return Eigen::MatrixXd((2.0 / 256.0) * (X.cast<double>() * X.cast<double>().transpose()));
  }();
  clip90::calls = 0;
  const auto q = quantize<gptq<bits<3>, group<oc, 64>, clip90>>(W, H);
  CHECK(clip90::calls == 32 * 2);
  CHECK(q.dequantize() != quantize<gptq<bits<3>, group<oc, 64>>>(W, H).dequantize());
}

TEST_CASE("policy: every built-in search has a name") {
  CHECK(std::string_view(lowbit::minmax::name) == "minmax");
  CHECK(std::string_view(lowbit::mse_clip<>::name) == "mse_clip");
  CHECK(std::string_view(lowbit::mse_range_zero<>::name) == "mse_range_zero");
}

// What quantize returns names its packed type (the type io::load_packed<PM> reads back).
static_assert(std::is_same_v<decltype(lowbit::quantize<lowbit::rtn<lowbit::bits<3>, lowbit::group<lowbit::ic, 64>>>(
                                 std::declval<const Eigen::MatrixXf&>()))::packed_type,
                             lowbit::rtn<lowbit::bits<3>, lowbit::group<lowbit::ic, 64>>::packed_type>);

TEST_CASE("policy: every tag has a name, the file format's and the CLI's word for it") {
  using namespace std::string_view_literals;
  STATIC_REQUIRE(lowbit::bits<3>::name == "bits<3>"sv);
  STATIC_REQUIRE(lowbit::group<lowbit::oc, 128>::name == "group<oc, 128>"sv);
  STATIC_REQUIRE(lowbit::group<lowbit::ic, lowbit::per_channel>::name == "group<ic, per_channel>"sv);
  STATIC_REQUIRE(lowbit::quantized_stats<3, 16>::name == "quantized_stats<3, 16>"sv);
  STATIC_REQUIRE(lowbit::fp16_stats::name == "fp16_stats"sv);
  STATIC_REQUIRE(lowbit::symmetric::name == "symmetric"sv);
  STATIC_REQUIRE(lowbit::sparse_outliers::name == "sparse_outliers"sv);
  STATIC_REQUIRE(lowbit::mse_clip<>::name == "mse_clip"sv);
}
