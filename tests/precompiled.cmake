# lowbit::precompiled (issue #16, compile cost): the same consumer built with and without the
# library gives the same bytes, and its object file holds no GPTQ body of its own (the listed
# configurations are undefined references, resolved by the library).
add_library(precompiled_consumer_obj OBJECT ${CMAKE_CURRENT_SOURCE_DIR}/precompiled/consumer.cpp)
target_link_libraries(precompiled_consumer_obj PRIVATE lowbit::precompiled)
lowbit_project_target(precompiled_consumer_obj)
add_executable(precompiled_consumer $<TARGET_OBJECTS:precompiled_consumer_obj>)
target_link_libraries(precompiled_consumer PRIVATE lowbit::precompiled)
lowbit_project_target(precompiled_consumer)
add_executable(precompiled_inline_consumer ${CMAKE_CURRENT_SOURCE_DIR}/precompiled/consumer.cpp)
lowbit_project_target(precompiled_inline_consumer)
find_program(LOWBIT_NM NAMES nm)
add_test(NAME precompiled.same_bytes_and_no_local_body
         COMMAND ${CMAKE_COMMAND} -DWITH=$<TARGET_FILE:precompiled_consumer>
                 -DWITHOUT=$<TARGET_FILE:precompiled_inline_consumer> "-DOBJECT=$<TARGET_OBJECTS:precompiled_consumer_obj>"
                 -DNM=${LOWBIT_NM} -P ${CMAKE_CURRENT_SOURCE_DIR}/precompiled/check.cmake)
