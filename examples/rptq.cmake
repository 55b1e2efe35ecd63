# RPTQ: reorder + clustered activation quantization on an MLP block, integer W x A execution.
add_executable(rptq_layer ${CMAKE_CURRENT_LIST_DIR}/rptq_layer.cpp)
lowbit_project_target(rptq_layer)
