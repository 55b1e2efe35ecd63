#pragma once
// AdaDim: per-OC or per-IC groups, chosen per linear by the output error on calibration data:
//   auto q = lowbit::quantize<lowbit::adadim<lowbit::rtn<bits<3>, group<oc, 128>>>>(W, X);
//   q.group_axis();   // axis::oc or axis::ic, read by the kernels at run time
//   q.choice;         // the chosen axis and both calibration errors
// See docs/adadim.md.
#include "lowbit/core/version.hpp"
#include "lowbit/kernel/gemv.hpp"
#include "lowbit/method/adadim.hpp"
