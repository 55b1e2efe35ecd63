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

# lowbit_native(<target> <PUBLIC|PRIVATE>): -march=native for a binary that runs where it is
# built and spends its time in Eigen (the tools, the benches' float baselines), when the
# compiler has the flag. g++ 12 reports false -Wmaybe-uninitialized inside avx512fintrin.h when
# Eigen's AVX-512 packet code is inlined (not our code, not silenced by SYSTEM includes).
# The one place the project writes -march=native besides LOWBIT_NATIVE above.
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag(-march=native LOWBIT_HAS_MARCH_NATIVE)
# With LOWBIT_NATIVE the flag comes from lowbit_project_options already; the warning it brings
# is silenced here all the same.
function(lowbit_native target scope)
  if(LOWBIT_NATIVE)
    target_compile_options(${target} ${scope} $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
  elseif(LOWBIT_HAS_MARCH_NATIVE)
    target_compile_options(${target} ${scope} -march=native $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
  endif()
endfunction()

function(lowbit_project_target target)
  target_link_libraries(${target} PRIVATE lowbit::lowbit lowbit_project_options)
endfunction()
