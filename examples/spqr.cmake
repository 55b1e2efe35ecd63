# SpQR example (examples/spqr_layer.cpp).
add_executable(spqr_layer ${CMAKE_CURRENT_LIST_DIR}/spqr_layer.cpp)
lowbit_project_target(spqr_layer)
