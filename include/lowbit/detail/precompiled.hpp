#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// lowbit::precompiled (opt-in; cmake/lowbitPrecompiled.cmake): the bodies of the common
// configurations compiled once, in a static library, instead of in every TU that quantizes.
//
// A TU that runs GPTQ instantiates the Hessian's GEMMs, the Cholesky, the inverse factor and
// the column loop of its configuration: 10-12 s with g++ -O2 (docs/getting-started.md, §7).
// With LOWBIT_PRECOMPILED defined (the usage requirement of lowbit::precompiled), the method
// headers declare those bodies `extern template` for the configurations listed below, so such
// a TU only parses and links them; the library's one TU (LOWBIT_PRECOMPILED_DEFINITIONS)
// holds their explicit instantiation definitions. Other configurations still instantiate in
// place, as without the library: nothing changes in what a call computes.
//
// The instantiations carry the ABI tag (core/abi.hpp) of the flags they are compiled with: a
// TU built with other ISA flags or exception mode than the library does not find them and
// fails to LINK (undefined lowbit::v1_..::gptq_quantize<...>), never silently mixes them.
//
// The list: X(bits, group axis, group size), every other policy at its default (minmax search,
// asymmetric, fp16 stats, no outliers): the CLI's defaults and the rows of docs/results.md.
#define LOWBIT_PRECOMPILED_CONFIGS(X) X(4, oc, 128) X(3, oc, 128) X(4, ic, 128) X(3, ic, 128)

#if defined(LOWBIT_PRECOMPILED_DEFINITIONS)
#define LOWBIT_PRECOMPILED_INSTANTIATION template
#elif defined(LOWBIT_PRECOMPILED)
#define LOWBIT_PRECOMPILED_INSTANTIATION extern template
#endif
