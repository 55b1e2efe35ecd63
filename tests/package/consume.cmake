# cmake -DMODE=<add_subdirectory|fetchcontent|vendored> -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=...
#       -DINCLUDES=<Eigen;xsimd include dirs> -P consume.cmake
# Builds and runs a consumer of lowbit the way MODE says (tests/package/README: one per way a
# user takes the library).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(here ${CMAKE_CURRENT_LIST_DIR})
macro(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${MODE}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endmacro()
if(MODE STREQUAL "vendored")
  # Vendoring include/: a copy of the folder, one compiler call, no CMake of lowbit's.
  file(COPY ${SOURCE_DIR}/include DESTINATION ${WORK_DIR}/vendor)
  set(inc_args -I${WORK_DIR}/vendor/include)
  foreach(i ${INCLUDES})
    if(NOT i STREQUAL "/usr/include")  # -isystem /usr/include breaks libstdc++'s #include_next
      list(APPEND inc_args -isystem ${i})
    endif()
  endforeach()
  run_step(${CXX} -std=c++20 -O1 -Wall -Wextra -Werror ${inc_args} ${here}/../consumer/main.cpp -o ${WORK_DIR}/consumer -pthread)
  run_step(${WORK_DIR}/consumer)
else()
  run_step(${CMAKE_COMMAND} -S ${here}/${MODE} -B ${WORK_DIR}/build -DLOWBIT_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release)
  run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build -j2)
  run_step(${WORK_DIR}/build/consumer)
  run_step(${WORK_DIR}/build/consumer_dispatch)
endif()
