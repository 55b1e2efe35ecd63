# The CUDA backend's test program. Built whenever nvcc is found (CI too, so a broken kernel
# fails the build); labelled `gpu`, and it passes with a "skipped" warning when the machine
# has no CUDA device.
if(LOWBIT_HAS_CUDA)
  add_executable(cuda_test ${CMAKE_CURRENT_SOURCE_DIR}/cuda/cuda_test.cu $<TARGET_OBJECTS:lowbit_test_main>)
  target_link_libraries(cuda_test PRIVATE Catch2::Catch2)
  target_include_directories(cuda_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/support)
  lowbit_cuda_target(cuda_test)
  catch_discover_tests(cuda_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS gpu)
endif()
