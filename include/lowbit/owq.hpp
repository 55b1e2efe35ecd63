#pragma once
// OWQ: lowbit::quantize<lowbit::owq<bits<3>, group<oc, per_channel>, mse_range_zero<>>>(W, H,
// owq_options{.target_bits = 3.05}) keeps the most sensitive input columns in fp16 and
// quantizes the rest with GPTQ; tune_weak_columns() adapts those columns to a task.
// See docs/owq.md.
#include "lowbit/core/version.hpp"
#include "lowbit/kernel/gemv.hpp"
#include "lowbit/method/hessian.hpp"
#include "lowbit/method/owq.hpp"
#include "lowbit/method/weak_column_tuning.hpp"
