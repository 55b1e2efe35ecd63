#pragma once
// Everything lowbit offers on the CPU. Method headers can also be included one by one.
// (io/ — GGUF, safetensors, the .lowbit file — and kernel/cuda/ are opt-in.)
#include "lowbit/adadim.hpp"
#include "lowbit/awq.hpp"
#include "lowbit/backend.hpp"
#include "lowbit/gptq.hpp"
#include "lowbit/owq.hpp"
#include "lowbit/rptq.hpp"
#include "lowbit/rtn.hpp"
#include "lowbit/spqr.hpp"
