# The kernel tests run every ISA path the machine has: kernel_gemv_test links the compiled
# per-ISA kernel set (cmake/lowbitKernels.cmake). kernel_header_only_test stays header-only
# on purpose (the default way users get kernels); a second copy of it is compiled with AVX2
# flags when the configuring machine has AVX2, so the inline (static) SIMD path is tested too.
include(lowbitKernels)
foreach(t kernel_gemv_test)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE lowbit::kernels)
  endif()
endforeach()

# (Not when cross-compiling: the configuring machine's /proc/cpuinfo says nothing about the target.)
if(EXISTS /proc/cpuinfo AND TARGET kernel_header_only_test AND NOT CMAKE_CROSSCOMPILING)
  file(READ /proc/cpuinfo _lk_cpuinfo)
  if(_lk_cpuinfo MATCHES " avx2 " AND _lk_cpuinfo MATCHES " fma " AND _lk_cpuinfo MATCHES " f16c ")
    add_executable(kernel_header_only_avx2_test ${CMAKE_CURRENT_SOURCE_DIR}/kernel_header_only_test.cpp
                   $<TARGET_OBJECTS:lowbit_test_main>)
    target_link_libraries(kernel_header_only_avx2_test PRIVATE Catch2::Catch2)
    target_include_directories(kernel_header_only_avx2_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/support)
    lowbit_project_target(kernel_header_only_avx2_test)
    target_compile_options(kernel_header_only_avx2_test PRIVATE -mavx2 -mfma -mf16c)
    catch_discover_tests(kernel_header_only_avx2_test TEST_PREFIX "avx2-static: " EXTRA_ARGS --warn NoTests)
  endif()
endif()
