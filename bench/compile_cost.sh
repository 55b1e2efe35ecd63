#!/usr/bin/env bash
# bench/compile_cost.sh [CXX] : per-TU compile time and peak memory of each front header
# (issue #16: an engine pays this in every TU that includes lowbit). Two numbers per header:
# including it alone, and including it plus one typical quantize<...> + gemv instantiation.
# Time only on a quiet machine (uptime load < 1).
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${1:-g++}
flags=(-std=c++20 -O2 -Iinclude -isystem /usr/include/eigen3 -c -o /dev/null)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-22s %10s %10s %12s %12s\n' header include_s include_MiB instantiate_s instantiate_MiB
measure() {  # file -> "seconds MiB"
  /usr/bin/time -f '%e %M' "$cxx" "${flags[@]}" "$1" 2>&1 >/dev/null | tail -1 | awk '{printf "%s %.0f", $1, $2 / 1024}'
}
declare -A use=(
  [rtn]='auto q = lowbit::quantize<lowbit::rtn<lowbit::bits<4>, lowbit::group<lowbit::oc, 128>>>(W);'
  [gptq]='lowbit::hessian H(64); H.add_batch(X); auto q = lowbit::quantize<lowbit::gptq<lowbit::bits<4>>>(W, H);'
  [awq]='auto q = lowbit::quantize<lowbit::awq<lowbit::bits<4>>>(W, X);'
  [owq]='lowbit::hessian H(64); H.add_batch(X); auto q = lowbit::quantize<lowbit::owq<lowbit::bits<4>>>(W, H, lowbit::owq_options{.weak_columns = 2});'
  [spqr]='lowbit::hessian H(64); H.add_batch(X); auto q = lowbit::quantize<lowbit::spqr<lowbit::bits<3>>>(W, H);'
  [adadim]='auto q = lowbit::quantize<lowbit::adadim<lowbit::rtn<lowbit::bits<4>>>>(W, X);'
)
for h in rtn gptq awq owq spqr adadim lowbit; do
  printf '#include <lowbit/%s.hpp>\n' "$h" > "$work/inc_$h.cpp"
  body=${use[$h]:-${use[rtn]}}
  printf '#include <lowbit/%s.hpp>\nvoid f(const Eigen::MatrixXf& W, const Eigen::MatrixXf& X, std::vector<float>& y) {\n  %s\n  (void)X; std::vector<float> x(static_cast<std::size_t>(W.cols()), 1.0f); q.gemv(x, y);\n}\n' \
    "$h" "$body" > "$work/use_$h.cpp"
  read -r ti mi <<<"$(measure "$work/inc_$h.cpp")"
  read -r tu mu <<<"$(measure "$work/use_$h.cpp")"
  printf '%-22s %10s %10s %12s %12s\n' "lowbit/$h.hpp" "$ti" "$mi" "$tu" "$mu"
done
# The same GPTQ TU for a configuration lowbit::precompiled lists (gptq<bits<4>, group<oc, 128>>),
# header-only and with LOWBIT_PRECOMPILED (what linking lowbit::precompiled defines).
g128='lowbit::hessian H(256); H.add_batch(X); auto q = lowbit::quantize<lowbit::gptq<lowbit::bits<4>, lowbit::group<lowbit::oc, 128>>>(W, H);'
printf '#include <lowbit/gptq.hpp>\nvoid f(const Eigen::MatrixXf& W, const Eigen::MatrixXf& X, std::vector<float>& y) {\n  %s\n  std::vector<float> x(static_cast<std::size_t>(W.cols()), 1.0f); q.gemv(x, y);\n}\n' \
  "$g128" > "$work/use_g128.cpp"
read -r tu mu <<<"$(measure "$work/use_g128.cpp")"
printf '%-22s %10s %10s %12s %12s\n' "gptq g128 header-only" "" "" "$tu" "$mu"
flags+=(-DLOWBIT_PRECOMPILED)
read -r tu mu <<<"$(measure "$work/use_g128.cpp")"
printf '%-22s %10s %10s %12s %12s\n' "gptq g128 precompiled" "" "" "$tu" "$mu"
flags=("${flags[@]:0:${#flags[@]}-1}")
printf '#include <Eigen/Dense>\n' > "$work/eigen.cpp"
read -r te me <<<"$(measure "$work/eigen.cpp")"
printf '%-22s %10s %10s\n' "Eigen/Dense (baseline)" "$te" "$me"
