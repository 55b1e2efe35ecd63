# RPTQ's W x A integer GEMV benchmark (bench/wxa_gemv.cpp): the int8 kernels dispatch at run
# time themselves; lowbit_add_bench links the per-ISA float kernels for the lowbit::gemv row.
if(COMMAND lowbit_add_bench)
  lowbit_add_bench(wxa_gemv ${CMAKE_CURRENT_LIST_DIR}/wxa_gemv.cpp)
else()
  add_executable(wxa_gemv ${CMAKE_CURRENT_LIST_DIR}/wxa_gemv.cpp)
  lowbit_project_target(wxa_gemv)
endif()
