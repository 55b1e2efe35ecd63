# GPTQ speed on a 4096 x 4096 (and 11008 x 4096) layer against its FLOP floor (bench/gptq_speed.cpp).
lowbit_add_bench(gptq_speed ${CMAKE_CURRENT_LIST_DIR}/gptq_speed.cpp)
