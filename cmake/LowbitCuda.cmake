# Optional CUDA backend. AUTO enables it when a CUDA compiler is found; ON requires one.
set(LOWBIT_HAS_CUDA OFF)
if(NOT LOWBIT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  # nvcc compiles host code with the project's C++ compiler when it is g++ (g++-12 here).
  if(NOT CMAKE_CUDA_HOST_COMPILER AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER})
  endif()
  # Few architectures keep nvcc time modest (CI compiles the backend on 2 cores): Hopper
  # machine code (sm_90a: the H100/H200 the kernels are tuned on) plus compute_80 PTX, which
  # the driver compiles at load time for Ampere/Ada and anything newer.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "90a-real;80-virtual")
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit)
    if(CUDAToolkit_FOUND)
      set(LOWBIT_HAS_CUDA ON)
    endif()
  endif()
  if(LOWBIT_CUDA STREQUAL "ON" AND NOT LOWBIT_HAS_CUDA)
    message(FATAL_ERROR "LOWBIT_CUDA=ON but no CUDA compiler/toolkit was found (set CMAKE_CUDA_COMPILER)")
  endif()
endif()
message(STATUS "lowbit: CUDA backend ${LOWBIT_HAS_CUDA}")

# lowbit_cuda_target(<target>): flags for the project's own CUDA binaries (tests, bench).
# C++20 is passed to nvcc directly (CMake 3.25 does not know CUDA 13's dialects). Warnings are errors, as for the C++ targets; Eigen is compiled host-only (EIGEN_NO_CUDA)
# since no kernel uses it, and nvcc's note on a conversion operator of matrix_view (554) is
# about a template that is never used for conversion. CUDA_NO_HALF drops cuda_fp16.h's global
# `half` typedef, which would clash with lowbit::half under `using namespace lowbit`.
if(LOWBIT_HAS_CUDA)
  function(lowbit_cuda_target target)
    target_link_libraries(${target} PRIVATE lowbit::lowbit CUDA::cudart)
    get_target_property(_eigen_inc Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
    get_target_property(_xsimd_inc xsimd INTERFACE_INCLUDE_DIRECTORIES)
    target_include_directories(${target} SYSTEM PRIVATE ${_eigen_inc} ${_xsimd_inc})
    target_compile_definitions(${target} PRIVATE EIGEN_NO_CUDA CUDA_NO_HALF)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror -diag-suppress=554>
      $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Werror>)
  endfunction()
endif()
