# Header hygiene (issue #16): the method front headers and backend.hpp define no macro outside
# LOWBIT_* (default flags, so no inline SIMD kernels are opted into; no <cpuid.h>), with g++
# and with clang when present. Not covered, on purpose: rptq.hpp (its int8 W x A kernels are
# header-only target-attribute functions and need <immintrin.h>) and io/ (POSIX mmap/stat).
get_target_property(_eigen_inc Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
get_target_property(_xsimd_inc xsimd INTERFACE_INCLUDE_DIRECTORIES)
find_program(LOWBIT_CLANGXX clang++)
set(_hyg_compilers ${CMAKE_CXX_COMPILER})
if(LOWBIT_CLANGXX)
  list(APPEND _hyg_compilers ${LOWBIT_CLANGXX})
endif()
set(_hyg_headers lowbit/rtn.hpp lowbit/gptq.hpp lowbit/awq.hpp lowbit/owq.hpp lowbit/spqr.hpp lowbit/adadim.hpp
    lowbit/backend.hpp)
foreach(cxx ${_hyg_compilers})
  get_filename_component(_cxx_name ${cxx} NAME)
  add_test(NAME hygiene.macros.${_cxx_name}
           COMMAND ${CMAKE_COMMAND} -DCXX=${cxx} -DINCLUDE=${PROJECT_SOURCE_DIR}/include
                   "-DSYSINC=${_eigen_inc};${_xsimd_inc}" "-DHEADERS=${_hyg_headers}"
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/hygiene/${_cxx_name}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/hygiene/check_macros.cmake)
  # Strict warnings: every method front header, each method instantiated once plus the CPU
  # GEMV, -Wconversion -Wshadow -Werror (front-end checks, so -fsyntax-only: ~15-20 s).
  set(_hyg_sys)
  foreach(d ${_eigen_inc} ${_xsimd_inc})
    if(NOT d STREQUAL "/usr/include")  # -isystem /usr/include breaks libstdc++'s #include_next
      list(APPEND _hyg_sys -isystem ${d})
    endif()
  endforeach()
  add_test(NAME hygiene.warnings.${_cxx_name}
           COMMAND ${cxx} -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror
                   -I${PROJECT_SOURCE_DIR}/include ${_hyg_sys} ${CMAKE_CURRENT_SOURCE_DIR}/hygiene/warnings.cpp)
endforeach()
# Compile cost (issue #16): including the front headers instantiates none of Eigen's products,
# LLT or triangular solves (clang's -ftime-trace lists every instantiation; ~5 s).
if(LOWBIT_CLANGXX)
  add_test(NAME hygiene.lazy_instantiation
           COMMAND ${CMAKE_COMMAND} -DCXX=${LOWBIT_CLANGXX} -DINCLUDE=${PROJECT_SOURCE_DIR}/include
                   "-DSYSINC=${_eigen_inc};${_xsimd_inc}"
                   "-DHEADERS=${_hyg_headers};lowbit/rptq.hpp;lowbit/lowbit.hpp"
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/hygiene/lazy
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/hygiene/check_lazy.cmake)
endif()
