# Compiles SOURCE and passes only if compilation fails with the message written in the
# source's first "// expect: <text>" line.
file(STRINGS ${SOURCE} expect_line REGEX "^// expect: ")
string(REGEX REPLACE "^// expect: " "" expected "${expect_line}")
set(inc_flags "")
foreach(i ${INCLUDES})
  if(i STREQUAL "/usr/include")  # a system dir as -isystem breaks libstdc++'s #include_next
    continue()
  endif()
  list(APPEND inc_flags "-isystem" "${i}")
endforeach()
execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only ${inc_flags} ${SOURCE}
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
string(FIND "${err}" "${expected}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "${SOURCE} failed to compile without the expected message '${expected}':\n${err}")
endif()
