# Installs lowbit to a temporary prefix, then configures, builds and runs a consumer that
# uses find_package(lowbit CONFIG).
file(REMOVE_RECURSE ${WORK_DIR})
set(build ${WORK_DIR}/lowbit-build)
set(prefix ${WORK_DIR}/prefix)
foreach(step
    "${CMAKE_COMMAND};-S;${SOURCE_DIR};-B;${build};-DLOWBIT_BUILD_TESTS=OFF;-DLOWBIT_BUILD_BENCH=OFF;-DLOWBIT_BUILD_EXAMPLES=OFF;-DLOWBIT_CUDA=OFF;-DCMAKE_INSTALL_PREFIX=${prefix}"
    "${CMAKE_COMMAND};--install;${build}"
    "${CMAKE_COMMAND};-S;${CONSUMER_DIR};-B;${WORK_DIR}/consumer-build;-DCMAKE_PREFIX_PATH=${prefix}"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/consumer-build"
    "${WORK_DIR}/consumer-build/consumer"
    "${WORK_DIR}/consumer-build/consumer_dispatch"
    "${WORK_DIR}/consumer-build/consumer_precompiled")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed: ${step}\n${out}\n${err}")
  endif()
endforeach()
