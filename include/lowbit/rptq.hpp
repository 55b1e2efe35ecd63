#pragma once
// RPTQ: reordered, clustered activation quantization and the W x A integer path.
//   auto ranges = lowbit::rptq::channel_ranges(C);  ranges.observe(X_batch) ...
//   auto order  = lowbit::rptq::cluster_channels(ranges, {.clusters = 32});
//   auto grid   = lowbit::rptq::activation_grid(ranges, order, 8);
//   auto Wr     = lowbit::rptq::permute_columns(to_view(W), order);   // + permute the producer
//   auto Wq     = lowbit::wxa_matrix::quantize(to_view(Wr), 4, grid);  // W4A8
//   Wq.gemv(x_reordered, y);
#include "lowbit/core/version.hpp"
#include "lowbit/kernel/cpu/int8/wxa_matrix.hpp"
#include "lowbit/method/kmeans.hpp"
#include "lowbit/method/rptq.hpp"
