#pragma once
// Round-to-nearest quantization: lowbit::quantize<lowbit::rtn<bits<4>, group<oc, 128>>>(W).
#include "lowbit/core/version.hpp"
#include "lowbit/kernel/gemv.hpp"
#include "lowbit/method/rtn.hpp"
