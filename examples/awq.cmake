# AWQ and AdaDim examples.
add_executable(awq_block ${CMAKE_CURRENT_LIST_DIR}/awq_block.cpp)
lowbit_project_target(awq_block)
add_executable(adadim_layer ${CMAKE_CURRENT_LIST_DIR}/adadim_layer.cpp)
lowbit_project_target(adadim_layer)
