# GPTQ and OWQ examples (examples/gptq_layer.cpp, examples/owq_layer.cpp).
add_executable(gptq_layer ${CMAKE_CURRENT_LIST_DIR}/gptq_layer.cpp)
lowbit_project_target(gptq_layer)
add_executable(owq_layer ${CMAKE_CURRENT_LIST_DIR}/owq_layer.cpp)
lowbit_project_target(owq_layer)
