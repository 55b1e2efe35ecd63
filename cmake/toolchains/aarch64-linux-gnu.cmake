# Cross-compiling lowbit for aarch64 Linux with Debian's cross toolchain
# (apt-get install g++-aarch64-linux-gnu qemu-user), the programs run under qemu-aarch64:
#   cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
# scripts/test --cross aarch64 does this and runs the kernel and format tests through ctest
# (CMAKE_CROSSCOMPILING_EMULATOR: catch_discover_tests and ctest start them under qemu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(LOWBIT_CROSS_TRIPLE aarch64-linux-gnu CACHE STRING "cross toolchain prefix")
set(CMAKE_C_COMPILER ${LOWBIT_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${LOWBIT_CROSS_TRIPLE}-g++)
set(CMAKE_FIND_ROOT_PATH /usr/${LOWBIT_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# Eigen, xsimd and Catch2 are header-only: their (architecture-independent) package files and
# headers are the host's.
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# Debian files xsimd's (header-only) package under the host's multiarch folder.
if(NOT xsimd_DIR AND EXISTS /usr/lib/x86_64-linux-gnu/cmake/xsimd/xsimdConfig.cmake)
  set(xsimd_DIR /usr/lib/x86_64-linux-gnu/cmake/xsimd CACHE PATH "xsimd's package folder (header-only)")
endif()
find_program(LOWBIT_QEMU_AARCH64 qemu-aarch64)
if(LOWBIT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${LOWBIT_QEMU_AARCH64} -L /usr/${LOWBIT_CROSS_TRIPLE})
endif()
# Bit-identical quantization across ISAs (docs/performance.md, "Numeric contract"): aarch64
# has a fused multiply-add in its base ISA, and g++ contracts a * b + c into it under its
# default -ffp-contract=fast (gnu++20), which x86-64's baseline cannot do. Off, as on x86.
# -Wno-psabi: g++ notes that std::pair<float, float> is passed differently since GCC 10.1
# (an ABI note about other compilers' objects, not a problem in this build).
set(CMAKE_CXX_FLAGS_INIT "-ffp-contract=off -Wno-psabi")
