#pragma once
// GPTQ: lowbit::quantize<lowbit::gptq<bits<4>, group<oc, 128>>>(W, H, gptq_options{...}), with
// H a lowbit::hessian accumulated from calibration activations (add_batch). See docs/gptq.md.
#include "lowbit/core/version.hpp"
#include "lowbit/kernel/gemv.hpp"
#include "lowbit/method/gptq.hpp"
#include "lowbit/method/hessian.hpp"
