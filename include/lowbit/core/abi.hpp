#pragma once
// ODR safety for a header-only SIMD library (the classic trap: issue #16).
//
// An inline function is compiled into every translation unit that uses it, with that TU's
// flags, and the linker keeps ONE copy. If one TU is built with -mavx2 and another with the
// baseline flags, the copy kept may be the AVX2 one (the compiler vectorises freely), and
// the baseline TU then executes AVX2 instructions: SIGILL on an older CPU, and results that
// change with link order on a newer one.
//
// lowbit therefore puts all of its code in an inline namespace named after the instruction
// set (and exception mode) of the TU that compiles it:
//   namespace lowbit::inline LOWBIT_ABI { ... }       // lowbit::v1_e1_x86_1110...::...
// Users still write lowbit::quantize, lowbit::detail::..., and so on (an inline namespace is
// transparent to name lookup), but the mangled name of every function carries the tag, so
// TUs built with different -m flags never share a copy. What must be shared across all TUs
// of a program — the error handler, the executor, the thread-count request, the kernel ISA
// cap, the interface of the compiled kernel library — lives outside the tag, in
// lowbit::shared (core/shared_state.hpp) and lowbit::kernel_interface, as constant-
// initialised variables and plain types (no code the linker could pick).
//
// The tag spells one bit per feature macro: if any differs between two TUs, so does the
// namespace. (The C++ standard library's own inline functions are outside lowbit's reach;
// see docs/getting-started.md, "Mixing -march flags".)

#define LOWBIT_ABI_CAT2(a, b) a##b
#define LOWBIT_ABI_CAT(a, b) LOWBIT_ABI_CAT2(a, b)

#if defined(__cpp_exceptions) && !defined(LOWBIT_NO_EXCEPTIONS)
#define LOWBIT_ABI_E e1
#else
#define LOWBIT_ABI_E e0
#endif

#if defined(__x86_64__) || defined(__i386__)
#if defined(__SSE3__)
#define LOWBIT_ABI_B00 1
#else
#define LOWBIT_ABI_B00 0
#endif
#if defined(__SSSE3__)
#define LOWBIT_ABI_B01 1
#else
#define LOWBIT_ABI_B01 0
#endif
#if defined(__SSE4_1__)
#define LOWBIT_ABI_B02 1
#else
#define LOWBIT_ABI_B02 0
#endif
#if defined(__SSE4_2__)
#define LOWBIT_ABI_B03 1
#else
#define LOWBIT_ABI_B03 0
#endif
#if defined(__POPCNT__)
#define LOWBIT_ABI_B04 1
#else
#define LOWBIT_ABI_B04 0
#endif
#if defined(__AVX__)
#define LOWBIT_ABI_B05 1
#else
#define LOWBIT_ABI_B05 0
#endif
#if defined(__AVX2__)
#define LOWBIT_ABI_B06 1
#else
#define LOWBIT_ABI_B06 0
#endif
#if defined(__FMA__)
#define LOWBIT_ABI_B07 1
#else
#define LOWBIT_ABI_B07 0
#endif
#if defined(__F16C__)
#define LOWBIT_ABI_B08 1
#else
#define LOWBIT_ABI_B08 0
#endif
#if defined(__BMI__) && defined(__BMI2__)
#define LOWBIT_ABI_B09 1
#else
#define LOWBIT_ABI_B09 0
#endif
#if defined(__AVX512F__)
#define LOWBIT_ABI_B10 1
#else
#define LOWBIT_ABI_B10 0
#endif
#if defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define LOWBIT_ABI_B11 1
#else
#define LOWBIT_ABI_B11 0
#endif
#if defined(__AVX512VNNI__)
#define LOWBIT_ABI_B12 1
#else
#define LOWBIT_ABI_B12 0
#endif
#if defined(__AVX512BF16__)
#define LOWBIT_ABI_B13 1
#else
#define LOWBIT_ABI_B13 0
#endif
#if defined(__AVX512FP16__) || defined(__AVXVNNI__)
#define LOWBIT_ABI_B14 1
#else
#define LOWBIT_ABI_B14 0
#endif
#define LOWBIT_ABI_ISA                                                                                             \
  LOWBIT_ABI_CAT(                                                                                                  \
      LOWBIT_ABI_CAT(                                                                                              \
          LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(x86_, LOWBIT_ABI_B00), LOWBIT_ABI_B01), \
                                                       LOWBIT_ABI_B02),                                            \
                                        LOWBIT_ABI_B03),                                                           \
                         LOWBIT_ABI_B04),                                                                          \
          LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(_, LOWBIT_ABI_B05), LOWBIT_ABI_B06), \
                                                       LOWBIT_ABI_B07),                                            \
                                        LOWBIT_ABI_B08),                                                           \
                         LOWBIT_ABI_B09)),                                                                         \
      LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(_, LOWBIT_ABI_B10), LOWBIT_ABI_B11), \
                                                   LOWBIT_ABI_B12),                                                \
                                    LOWBIT_ABI_B13),                                                               \
                     LOWBIT_ABI_B14))
#elif defined(__aarch64__) || defined(__arm__)
#if defined(__ARM_NEON)
#define LOWBIT_ABI_B00 1
#else
#define LOWBIT_ABI_B00 0
#endif
#if defined(__ARM_FEATURE_DOTPROD)
#define LOWBIT_ABI_B01 1
#else
#define LOWBIT_ABI_B01 0
#endif
#if defined(__ARM_FEATURE_MATMUL_INT8)
#define LOWBIT_ABI_B02 1
#else
#define LOWBIT_ABI_B02 0
#endif
#if defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
#define LOWBIT_ABI_B03 1
#else
#define LOWBIT_ABI_B03 0
#endif
#if defined(__ARM_FEATURE_SVE)
#define LOWBIT_ABI_B04 1
#else
#define LOWBIT_ABI_B04 0
#endif
#define LOWBIT_ABI_ISA                                                                                             \
  LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(arm_, LOWBIT_ABI_B00), LOWBIT_ABI_B01), \
                                               LOWBIT_ABI_B02),                                                    \
                                LOWBIT_ABI_B03),                                                                   \
                 LOWBIT_ABI_B04)
#else
#define LOWBIT_ABI_ISA other
#endif

// lowbit::inline LOWBIT_ABI: v1 (the layout version) + exceptions + instruction set.
#define LOWBIT_ABI LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(LOWBIT_ABI_CAT(v1_, LOWBIT_ABI_E), _), LOWBIT_ABI_ISA)
