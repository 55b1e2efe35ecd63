# tests/faults/: the fault suite of lowbit-quantize (issue #15; docs/cli.md "Checks before any
# work"). It runs the real CLI as a subprocess on a tiny model it writes itself, so it needs
# the tool: the lowbit-quantize target where the tools are built (LOWBIT_BUILD_EXAMPLES), else
# (the sanitizer build of scripts/test) its own copy of the CLI from the same main.cpp, built
# with the sanitizers, so the overflow cases run under UBSan too. Label: faults (in the
# default run and in the sanitizer run).
if(LOWBIT_BUILD_EXAMPLES)
  set(lowbit_faults_tool lowbit-quantize)
else()
  add_executable(lowbit-quantize-faults ${PROJECT_SOURCE_DIR}/tools/lowbit-quantize/main.cpp)
  lowbit_project_target(lowbit-quantize-faults)
  target_link_libraries(lowbit-quantize-faults PRIVATE lowbit_quantize_core)
  target_compile_definitions(lowbit-quantize-faults PRIVATE LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  set(lowbit_faults_tool lowbit-quantize-faults)
endif()
add_executable(faults_test ${CMAKE_CURRENT_LIST_DIR}/faults/faults_test.cpp $<TARGET_OBJECTS:lowbit_test_main>)
target_link_libraries(faults_test PRIVATE Catch2::Catch2 lowbit_quantize_core)
target_include_directories(faults_test PRIVATE ${CMAKE_CURRENT_LIST_DIR}/support)
lowbit_project_target(faults_test)
target_compile_definitions(faults_test PRIVATE LOWBIT_QUANTIZE_BIN="$<TARGET_FILE:${lowbit_faults_tool}>")
add_dependencies(faults_test ${lowbit_faults_tool})
catch_discover_tests(faults_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS faults)
