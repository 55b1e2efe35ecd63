# bench/cuda_gemv: lowbit's CUDA GEMV/GEMM against cuBLAS fp16/fp32 and the device copy
# bandwidth (compiled whenever nvcc is found; prints a note and exits without a device).
if(LOWBIT_HAS_CUDA)
  add_executable(cuda_gemv ${CMAKE_CURRENT_SOURCE_DIR}/cuda/cuda_gemv.cu)
  lowbit_cuda_target(cuda_gemv)
  target_link_libraries(cuda_gemv PRIVATE CUDA::cublas)
endif()
