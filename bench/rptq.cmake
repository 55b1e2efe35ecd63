# RPTQ's W x A integer GEMV benchmark (bench/wxa_gemv.cpp).
add_executable(wxa_gemv ${CMAKE_CURRENT_LIST_DIR}/wxa_gemv.cpp)
lowbit_project_target(wxa_gemv)
