# libFuzzer targets for the hostile-input parsers (tests/fuzz/*_fuzz.cpp): GGUF (+ the
# tokenizer built from its metadata), safetensors (+ its JSON parser), and the tokenizer's
# lossless round trip. They are compiled with clang++ whatever the main compiler is (CI uses
# g++), with -fsanitize=fuzzer,address,undefined, and run briefly as ctest tests labelled
# `fuzz`: a build step (fixture) then LOWBIT_FUZZ_SECONDS per target (default 15, so about
# 45 s in all). Registered only when a clang++ with libFuzzer is found and the build is not
# itself a sanitizer build. Longer local runs:
#   build/tests/fuzz/gguf_fuzz -max_total_time=600 build/tests/fuzz/corpus_gguf tests/fuzz/corpus/gguf
set(LOWBIT_FUZZ_SECONDS 15 CACHE STRING "Seconds each fuzz target runs under ctest")

if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(_lowbit_fuzz_cxx ${CMAKE_CXX_COMPILER})
else()
  find_program(LOWBIT_CLANGXX NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14)
  set(_lowbit_fuzz_cxx ${LOWBIT_CLANGXX})
endif()

if(_lowbit_fuzz_cxx AND NOT LOWBIT_SANITIZE AND NOT DEFINED LOWBIT_HAVE_LIBFUZZER)
  # Probe once: clang without the compiler-rt fuzzer library cannot link -fsanitize=fuzzer.
  set(_probe ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe.cpp)
  file(WRITE ${_probe} "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
  execute_process(COMMAND ${_lowbit_fuzz_cxx} -fsanitize=fuzzer,address,undefined ${_probe} -o ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe
                  RESULT_VARIABLE _probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(_probe_rc EQUAL 0)
    set(LOWBIT_HAVE_LIBFUZZER ON CACHE INTERNAL "clang++ can link libFuzzer")
  else()
    set(LOWBIT_HAVE_LIBFUZZER OFF CACHE INTERNAL "clang++ can link libFuzzer")
  endif()
endif()

if(NOT _lowbit_fuzz_cxx OR LOWBIT_SANITIZE OR NOT LOWBIT_HAVE_LIBFUZZER)
  message(STATUS "lowbit: fuzz tests disabled (need clang++ with libFuzzer and a non-sanitizer build)")
  return()
endif()
message(STATUS "lowbit: fuzz tests with ${_lowbit_fuzz_cxx}, ${LOWBIT_FUZZ_SECONDS} s per target")

set(_fuzz_includes -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/tools)
get_target_property(_fuzz_eigen Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
foreach(d ${_fuzz_eigen})
  list(APPEND _fuzz_includes -isystem ${d})
endforeach()
file(GLOB _fuzz_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/lowbit/io/*.hpp
     ${PROJECT_SOURCE_DIR}/include/lowbit/io/detail/*.hpp ${PROJECT_SOURCE_DIR}/tools/common/*.hpp)
file(GLOB _fuzz_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/*_fuzz.cpp)

set(_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
file(MAKE_DIRECTORY ${_fuzz_bin})
set(_fuzz_outputs)
foreach(src ${_fuzz_sources})
  get_filename_component(name ${src} NAME_WE)  # gguf_fuzz
  string(REPLACE "_fuzz" "" corpus ${name})
  set(out ${_fuzz_bin}/${name})
  add_custom_command(OUTPUT ${out}
    COMMAND ${_lowbit_fuzz_cxx} -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            ${_fuzz_includes} ${src} -o ${out} -pthread
    DEPENDS ${src} ${_fuzz_headers}
    COMMENT "Building libFuzzer target ${name} with ${_lowbit_fuzz_cxx}" VERBATIM)
  list(APPEND _fuzz_outputs ${out})
  file(MAKE_DIRECTORY ${_fuzz_bin}/corpus_${corpus})
  # The first corpus directory collects new inputs; the committed seeds are only read.
  add_test(NAME fuzz.${corpus}
           COMMAND ${out} -max_total_time=${LOWBIT_FUZZ_SECONDS} -max_len=4096 -timeout=10 -rss_limit_mb=2048
                   -print_final_stats=1 -artifact_prefix=${_fuzz_bin}/${name}-
                   ${_fuzz_bin}/corpus_${corpus} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${corpus})
  set_tests_properties(fuzz.${corpus} PROPERTIES LABELS fuzz FIXTURES_REQUIRED lowbit_fuzzers
                       TIMEOUT 300)
endforeach()
add_custom_target(lowbit_fuzzers DEPENDS ${_fuzz_outputs})
# Built on demand by the tests (not part of `all`), so a normal build never pays for clang.
add_test(NAME fuzz.build COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target lowbit_fuzzers)
set_tests_properties(fuzz.build PROPERTIES LABELS fuzz FIXTURES_SETUP lowbit_fuzzers TIMEOUT 600)
