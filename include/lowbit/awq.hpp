#pragma once
// Activation-aware weight quantization (AWQ):
//   auto q = lowbit::quantize<lowbit::awq<bits<4>, group<oc, 128>>>(W, X);   // one linear
//   auto g = lowbit::awq<bits<4>>::quantize_group(linears, X, options);      // q/k/v, gate/up ...
//   lowbit::fold_scales_into_norm(norm_weight, g.scales.s);
// See docs/awq.md.
#include "lowbit/core/version.hpp"
#include "lowbit/kernel/gemv.hpp"
#include "lowbit/method/awq.hpp"
