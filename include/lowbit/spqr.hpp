#pragma once
// SpQR: lowbit::quantize<lowbit::spqr<bits<3>>>(W, H, spqr_options{}) quantizes W with GPTQ's
// loop in groups of 16 input columns, 3-bit quantized group statistics (16-row second level)
// and fp16 sparse outliers; the result gemv()s through the CPU kernels. See docs/spqr.md.
#include "lowbit/core/version.hpp"
#include "lowbit/kernel/gemv.hpp"
#include "lowbit/method/hessian.hpp"
#include "lowbit/method/spqr.hpp"
