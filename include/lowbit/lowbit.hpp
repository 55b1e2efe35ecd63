#pragma once
// Everything lowbit offers on the CPU. Method headers can also be included one by one.
#include "lowbit/rtn.hpp"
