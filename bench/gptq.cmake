# GPTQ speed on a 4096 x 4096 (and 11008 x 4096) layer against its FLOP floor (bench/gptq_speed.cpp).
if(COMMAND lowbit_add_bench)
  lowbit_add_bench(gptq_speed ${CMAKE_CURRENT_LIST_DIR}/gptq_speed.cpp)
else()
  add_executable(gptq_speed ${CMAKE_CURRENT_LIST_DIR}/gptq_speed.cpp)
  lowbit_project_target(gptq_speed)
  target_compile_options(gptq_speed PRIVATE -march=native -Wno-maybe-uninitialized)
endif()
