#pragma once
// RPTQ: reordered, clustered activation quantization and the W x A integer path.
//   auto ranges = lowbit::rptq::channel_ranges(C);  ranges.observe(X_batch) ...
//   auto order  = lowbit::rptq::cluster_channels(ranges, {.clusters = 32});
//   auto grid   = lowbit::rptq::activation_grid(ranges, order, 8);
//   auto Wr     = lowbit::rptq::permute_columns(to_view(W), order);   // + permute the producer
//   lowbit::hessian H(C);  lowbit::rptq::add_quantized_batch(H, X_reordered, grid);
//   auto Wq     = lowbit::rptq::gptq_weights(to_view(Wr), 4, grid, H);  // W4A8 (or rtn_weights)
//   Wq.gemv(x_reordered, y);                     // integer codes on both sides
// See docs/rptq.md.
#include "lowbit/core/version.hpp"
#include "lowbit/kernel/cpu/int8/wxa_matrix.hpp"
#include "lowbit/method/kmeans.hpp"
#include "lowbit/method/rptq.hpp"
