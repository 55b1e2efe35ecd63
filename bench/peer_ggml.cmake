# bench/peer_ggml: lowbit's GEMV against ggml's (llama.cpp's CPU kernels) in one process.
# Off unless LOWBIT_PEER_GGML names llama.cpp's ggml folder; `scripts/peer-llamacpp gemv` fetches
# the pinned llama.cpp sources outside the repository and configures a build with it. ggml is
# built for this machine (GGML_NATIVE), as lowbit's kernels dispatch to its best ISA, and without
# OpenMP (the bench gives ggml a persistent threadpool, as llama.cpp does).
set(LOWBIT_PEER_GGML "" CACHE PATH "llama.cpp's ggml/ folder: builds bench/peer_ggml against it (scripts/peer-llamacpp gemv)")
if(LOWBIT_PEER_GGML)
  if(NOT EXISTS "${LOWBIT_PEER_GGML}/include/ggml-cpu.h")
    message(FATAL_ERROR "LOWBIT_PEER_GGML=${LOWBIT_PEER_GGML} is not ggml's folder (no include/ggml-cpu.h)")
  endif()
  set(GGML_NATIVE ON CACHE BOOL "" FORCE)
  set(GGML_OPENMP OFF CACHE BOOL "" FORCE)
  set(GGML_BUILD_TESTS OFF CACHE BOOL "" FORCE)
  set(GGML_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
  set(BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
  add_subdirectory(${LOWBIT_PEER_GGML} ${CMAKE_BINARY_DIR}/peer-ggml EXCLUDE_FROM_ALL SYSTEM)
  lowbit_add_bench(peer_ggml ${CMAKE_CURRENT_LIST_DIR}/peer_ggml.cpp)
  target_link_libraries(peer_ggml PRIVATE ggml ggml-cpu ggml-base)
endif()
