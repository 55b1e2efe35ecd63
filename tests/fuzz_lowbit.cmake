# libFuzzer targets for lowbit's own formats (tests/fuzz_lowbit/*_fuzz.cpp): the lowbit file
# reader, the GPTQ / AutoAWQ int32 layouts (from safetensors and from raw tensors) and the
# GGUF block import/export. Same scheme as tests/fuzz.cmake: compiled with clang++ and
# -fsanitize=fuzzer,address,undefined, built by a fixture test, run for
# LOWBIT_FUZZ_FORMATS_SECONDS each (default 10: 30 s for the three) as ctest tests labelled
# `fuzz`; skipped in a sanitizer build. Where no clang++ can build them with libFuzzer, each
# target runs under driver.cpp instead (bounded random mutations of the seeds, ASan + UBSan).
# Seeds: tests/fuzz_lowbit/corpus/<target>/ (regenerate with make_corpus.cpp). Longer runs:
#   build/tests/fuzz_lowbit/lowbit_file_fuzz -max_total_time=600 build/tests/fuzz_lowbit/corpus_lowbit_file tests/fuzz_lowbit/corpus/lowbit_file
set(LOWBIT_FUZZ_FORMATS_SECONDS 10 CACHE STRING "Seconds each lowbit-format fuzz target runs under ctest")

if(LOWBIT_SANITIZE)
  return()  # the sanitizer build runs the unit tests; fuzzing is the release build's job
endif()
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(_lbf_cxx ${CMAKE_CXX_COMPILER})
else()
  find_program(LOWBIT_CLANGXX NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14)
  set(_lbf_cxx ${LOWBIT_CLANGXX})
endif()
# libFuzzer needs a clang that compiles lowbit's headers: float template parameters
# (policy/scale_search.hpp) arrived in clang 18. Without one, the same targets run under
# driver.cpp, a bounded random-mutation loop built with the project's compiler + ASan/UBSan.
if(_lbf_cxx AND NOT DEFINED LOWBIT_FORMAT_FUZZ_LIBFUZZER)
  set(_probe ${CMAKE_CURRENT_BINARY_DIR}/fuzz_lowbit_probe.cpp)
  file(WRITE ${_probe} "#include <cstddef>\n#include <cstdint>\ntemplate <float F> struct f { static constexpr float v = F; };\n"
                       "extern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return f<1.5f>::v > 1.0f ? 0 : 1; }\n")
  execute_process(COMMAND ${_lbf_cxx} -std=c++20 -fsanitize=fuzzer,address,undefined ${_probe} -o ${CMAKE_CURRENT_BINARY_DIR}/fuzz_lowbit_probe
                  RESULT_VARIABLE _probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(_probe_rc EQUAL 0)
    set(LOWBIT_FORMAT_FUZZ_LIBFUZZER ON CACHE INTERNAL "clang++ with libFuzzer compiles lowbit's headers")
  else()
    set(LOWBIT_FORMAT_FUZZ_LIBFUZZER OFF CACHE INTERNAL "clang++ with libFuzzer compiles lowbit's headers")
  endif()
endif()

file(GLOB _lbf_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_lowbit/*_fuzz.cpp)
set(_lbf_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz_lowbit)
file(MAKE_DIRECTORY ${_lbf_bin})
set(_lbf_targets)
set(_lbf_outputs)
if(LOWBIT_FORMAT_FUZZ_LIBFUZZER)
  set(_lbf_includes -I${PROJECT_SOURCE_DIR}/include)
  get_target_property(_lbf_eigen Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
  foreach(d ${_lbf_eigen})
    list(APPEND _lbf_includes -isystem ${d})
  endforeach()
  file(GLOB_RECURSE _lbf_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/lowbit/*.hpp)
endif()
foreach(src ${_lbf_sources})
  get_filename_component(name ${src} NAME_WE)  # lowbit_file_fuzz
  string(REPLACE "_fuzz" "" corpus ${name})
  file(MAKE_DIRECTORY ${_lbf_bin}/corpus_${corpus})
  if(LOWBIT_FORMAT_FUZZ_LIBFUZZER)
    set(out ${_lbf_bin}/${name})
    add_custom_command(OUTPUT ${out}
      COMMAND ${_lbf_cxx} -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
              ${_lbf_includes} ${src} -o ${out} -pthread
      DEPENDS ${src} ${_lbf_headers}
      COMMENT "Building libFuzzer target ${name} with ${_lbf_cxx}" VERBATIM)
    list(APPEND _lbf_outputs ${out})
    add_test(NAME fuzz.${corpus}
             COMMAND ${out} -max_total_time=${LOWBIT_FUZZ_FORMATS_SECONDS} -max_len=4096 -timeout=10 -rss_limit_mb=2048
                     -print_final_stats=1 -artifact_prefix=${_lbf_bin}/${name}-
                     ${_lbf_bin}/corpus_${corpus} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_lowbit/corpus/${corpus})
  else()
    set(exe ${name}_driver)
    add_executable(${exe} EXCLUDE_FROM_ALL ${src} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_lowbit/driver.cpp)
    lowbit_project_target(${exe})
    target_compile_options(${exe} PRIVATE -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(${exe} PRIVATE -fsanitize=address,undefined)
    set_target_properties(${exe} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${_lbf_bin})
    list(APPEND _lbf_targets ${exe})
    add_test(NAME fuzz.${corpus}
             COMMAND ${_lbf_bin}/${exe} ${LOWBIT_FUZZ_FORMATS_SECONDS} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_lowbit/corpus/${corpus})
  endif()
  set_tests_properties(fuzz.${corpus} PROPERTIES LABELS fuzz FIXTURES_REQUIRED lowbit_format_fuzzers TIMEOUT 300)
endforeach()
add_custom_target(lowbit_format_fuzzers DEPENDS ${_lbf_outputs})
if(_lbf_targets)
  add_dependencies(lowbit_format_fuzzers ${_lbf_targets})
endif()
# Built on demand by the fixture test (not part of `all`).
add_test(NAME fuzz.build_formats COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target lowbit_format_fuzzers)
set_tests_properties(fuzz.build_formats PROPERTIES LABELS fuzz FIXTURES_SETUP lowbit_format_fuzzers TIMEOUT 900)
