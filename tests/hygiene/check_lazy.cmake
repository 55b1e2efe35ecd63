# cmake -DCXX=<clang++> -DINCLUDE=<lowbit include dir> -DSYSINC=<Eigen;xsimd dirs>
#       -DHEADERS=<lowbit/awq.hpp;...> -DWORK=<dir> -P check_lazy.cmake
# Compile cost (issue #16): a TU that only includes lowbit's front headers must not instantiate
# Eigen's heavy linear algebra (products, LLT, triangular solves). Those cost ~1 s each per TU
# with g++ -O2 when a non-template inline function uses them; lowbit keeps every such body in
# a template so that only a TU that calls it pays (bench/compile_cost.sh measures the time).
# The check reads clang's -ftime-trace of the TU: every instantiation is an event, so it is
# exact and does not depend on the machine's speed.
file(MAKE_DIRECTORY ${WORK})
include(${CMAKE_CURRENT_LIST_DIR}/tu.cmake)
hygiene_includes_source(src ${HEADERS})
file(WRITE ${WORK}/lazy.cpp "${src}")
hygiene_include_flags(inc ${INCLUDE} ${SYSINC})
execute_process(COMMAND ${CXX} -std=c++20 ${inc} -ftime-trace -ftime-trace-granularity=0 -c -o ${WORK}/lazy.o
                        ${WORK}/lazy.cpp
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "${CXX} -ftime-trace lazy.cpp failed:\n${err}")
endif()
file(READ ${WORK}/lazy.json trace)
set(bad "")
foreach(pattern "generic_product_impl" "Eigen::LLT<" "triangular_solve_matrix" "general_matrix_matrix_product<")
  # An instantiation event: {"name":"Instantiate...", ... "args":{"detail":"<pattern>..."}}
  string(REGEX MATCH "\"name\":\"Instantiate(Class|Function)\"[^}]*\"detail\":\"[^\"]*${pattern}[^\"]*\"" hit "${trace}")
  if(hit)
    string(REGEX REPLACE ".*\"detail\":\"([^\"]*)\".*" "\\1" what "${hit}")
    string(SUBSTRING "${what}" 0 200 what)
    list(APPEND bad "  ${what}")
  endif()
endforeach()
if(bad)
  string(REPLACE ";" "\n" bad "${bad}")
  message(FATAL_ERROR "Including ${HEADERS} instantiates Eigen's heavy algebra (a non-template inline "
                      "function uses it; make it a template so only its callers pay):\n${bad}")
endif()
message(STATUS "no heavy Eigen instantiation in a TU that includes ${HEADERS}")
