# Shared by the hygiene scripts (run with cmake -P): the source of a TU that includes the given
# headers, and the compiler's include flags for lowbit (-I) and its dependencies (-isystem;
# never /usr/include, which breaks libstdc++'s #include_next).
function(hygiene_includes_source out)
  set(src "")
  foreach(h ${ARGN})
    string(APPEND src "#include <${h}>\n")
  endforeach()
  set(${out} "${src}" PARENT_SCOPE)
endfunction()
function(hygiene_include_flags out include_dir)
  set(inc -I${include_dir})
  foreach(i ${ARGN})
    if(NOT i STREQUAL "/usr/include")
      list(APPEND inc -isystem ${i})
    endif()
  endforeach()
  set(${out} ${inc} PARENT_SCOPE)
endfunction()
