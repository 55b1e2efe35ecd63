# Mixed -march translation units (issue #16: the header-only SIMD trap).
#   odr.no_shared_symbols  a TU built with the baseline flags and one built with AVX2 define no
#                          lowbit function under one name (core/abi.hpp's tag), except the
#                          program-wide state kept outside the tag on purpose. Before the tag,
#                          the linker kept one copy of rtn<...>::run, grid_for_range, ... and a
#                          baseline TU could run the AVX2 one.
#   odr.dispatch_on_baseline_cpu
#                          the supported way to ship one binary for every x86-64: baseline TUs +
#                          lowbit::kernels (per-ISA TUs, run-time choice); it runs on an emulated
#                          CPU without AVX (qemu-x86_64 -cpu Nehalem; skipped without qemu-user)
#                          and picks the generic kernels there.
# Eigen's (and the standard library's) inline code is outside lowbit's reach: Eigen requires
# every TU that shares its objects to use the same SIMD flags (docs/getting-started.md §6).
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag("-mavx2 -mfma -mf16c" LOWBIT_ODR_HAS_AVX2_FLAGS)
if(LOWBIT_ODR_HAS_AVX2_FLAGS AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  foreach(flavour baseline avx2)
    add_library(odr_unit_${flavour} OBJECT ${CMAKE_CURRENT_SOURCE_DIR}/odr/unit.cpp)
    target_link_libraries(odr_unit_${flavour} PRIVATE lowbit::lowbit lowbit_project_options)
    target_compile_definitions(odr_unit_${flavour} PRIVATE ODR_ENTRY=odr_run_${flavour})
  endforeach()
  target_compile_options(odr_unit_avx2 PRIVATE -mavx2 -mfma -mf16c)
  add_test(NAME odr.no_shared_symbols
           COMMAND ${CMAKE_COMMAND} "-DOBJECTS=$<TARGET_OBJECTS:odr_unit_baseline>|$<TARGET_OBJECTS:odr_unit_avx2>"
                   -DNM=${CMAKE_NM} -P ${CMAKE_CURRENT_SOURCE_DIR}/odr/check.cmake no_shared_symbols)

  add_executable(odr_dispatch ${CMAKE_CURRENT_SOURCE_DIR}/odr/main.cpp ${CMAKE_CURRENT_SOURCE_DIR}/odr/unit.cpp)
  lowbit_project_target(odr_dispatch)
  target_link_libraries(odr_dispatch PRIVATE lowbit::kernels)
  target_compile_definitions(odr_dispatch PRIVATE ODR_ENTRY=odr_run_baseline)
  # Not in the sanitizer builds: ASan/TSan runtimes do not run under qemu-user.
  if(NOT LOWBIT_SANITIZE AND NOT LOWBIT_TSAN)
    find_program(LOWBIT_QEMU_X86_64 qemu-x86_64)
  endif()
  add_test(NAME odr.dispatch_on_baseline_cpu
           COMMAND ${CMAKE_COMMAND} -DQEMU=${LOWBIT_QEMU_X86_64} -DPROGRAM=$<TARGET_FILE:odr_dispatch>
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/odr/check.cmake baseline_cpu)
  set_tests_properties(odr.dispatch_on_baseline_cpu PROPERTIES SKIP_REGULAR_EXPRESSION "SKIPPED:")
endif()
