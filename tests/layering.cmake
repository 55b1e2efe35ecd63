# The layer order of include/lowbit (tests/layering/check_layers.cmake, docs/architecture.md).
add_test(NAME layering.include_order
         COMMAND ${CMAKE_COMMAND} -DINCLUDE=${PROJECT_SOURCE_DIR}/include -P ${CMAKE_CURRENT_SOURCE_DIR}/layering/check_layers.cmake)
