# The kernel tests run every ISA path the machine has: they link the compiled per-ISA kernel
# set (cmake/lowbitKernels.cmake). kernel_header_only_test stays header-only on purpose.
include(lowbitKernels)
foreach(t kernel_gemv_test)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE lowbit::kernels)
  endif()
endforeach()
