# lowbit_project_options(<target>): warnings as errors, sanitizers and ISA flags for the
# project's own binaries (tests, benches, examples). Never applied to the interface target,
# so users choose their own flags. Dependencies come in as SYSTEM includes (Eigen 3.4's
# AVX-512 headers warn under -Wall).
add_library(lowbit_project_options INTERFACE)
target_compile_options(lowbit_project_options INTERFACE -Wall -Wextra -Wpedantic -Werror)
if(LOWBIT_SANITIZE)
  # -Wno-maybe-uninitialized: with ASan instrumentation g++ 12 reports false positives inside
  # <regex> (pulled in by Catch2) and Eigen; the optimised build keeps the warning.
  target_compile_options(lowbit_project_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                         -fno-sanitize-recover=undefined -Wno-maybe-uninitialized)
  target_link_options(lowbit_project_options INTERFACE -fsanitize=address,undefined)
endif()
if(LOWBIT_TSAN)
  # ThreadSanitizer for the pool and determinism tests (scripts/test builds only those).
  target_compile_options(lowbit_project_options INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(lowbit_project_options INTERFACE -fsanitize=thread)
endif()
if(LOWBIT_NATIVE)
  target_compile_options(lowbit_project_options INTERFACE -march=native)
endif()
get_target_property(_eigen_inc Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
get_target_property(_xsimd_inc xsimd INTERFACE_INCLUDE_DIRECTORIES)
target_include_directories(lowbit_project_options SYSTEM INTERFACE ${_eigen_inc} ${_xsimd_inc})

function(lowbit_project_target target)
  target_link_libraries(${target} PRIVATE lowbit::lowbit lowbit_project_options)
endfunction()
