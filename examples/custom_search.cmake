# A user-written ScaleSearch policy combined with RTN and GPTQ (include/lowbit/policy/scale_search.hpp).
add_executable(custom_search ${CMAKE_CURRENT_LIST_DIR}/custom_search.cpp)
lowbit_project_target(custom_search)
