# Fuzz targets for every parser that reads hostile input, one folder: tests/fuzz/<name>_fuzz.cpp
# (an LLVMFuzzerTestOneInput each), seeds in tests/fuzz/corpus/<name>/ (make_corpus.cpp writes
# the lowbit-format ones). Targets: GGUF (+ the tokenizer built from its metadata), safetensors
# (+ its JSON parser), the tokenizer's lossless round trip, the GGUF block import/export, the
# GPTQ / AutoAWQ int32 layouts and the lowbit file reader.
#
# Each target runs as the ctest test fuzz.<name> (label `fuzz`) for LOWBIT_FUZZ_SECONDS, after
# the fixture fuzz.build has built them all (they are not part of `all`). Its engine is the best
# this machine has:
#   libFuzzer   clang++ with -fsanitize=fuzzer,address,undefined (coverage-guided), where clang
#               compiles the target: the io-only targets need any clang with libFuzzer; those
#               that include the policy layer need float template parameters (clang 18+);
#   driver.cpp  otherwise: bounded random mutations of the seeds, built with the project's
#               compiler and ASan + UBSan (not coverage-guided, but every crash, out-of-bounds
#               access or undefined behaviour still fails the test).
# Not registered in a sanitizer build (that build runs the unit tests). Longer local runs:
#   build/tests/fuzz/gguf_fuzz -max_total_time=600 build/tests/fuzz/corpus_gguf tests/fuzz/corpus/gguf
#   build/tests/fuzz/lowbit_file_fuzz_driver 600 tests/fuzz/corpus/lowbit_file
set(LOWBIT_FUZZ_SECONDS 12 CACHE STRING "Seconds each fuzz target runs under ctest")
if(LOWBIT_SANITIZE)
  return()
endif()

# The targets whose sources include lowbit's policy layer (float template parameters).
set(_fuzz_policy_targets interop_gguf_fuzz interop_int32_fuzz lowbit_file_fuzz)

if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(_fuzz_cxx ${CMAKE_CXX_COMPILER})
else()
  find_program(LOWBIT_CLANGXX NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14)
  set(_fuzz_cxx ${LOWBIT_CLANGXX})
endif()
# Two probes, once per build tree: can clang link libFuzzer, and can it also compile lowbit's
# float template parameters.
function(_lowbit_fuzz_probe var body)
  if(DEFINED ${var})
    return()
  endif()
  set(ok OFF)
  if(_fuzz_cxx)
    set(src ${CMAKE_CURRENT_BINARY_DIR}/${var}.cpp)
    file(WRITE ${src} "#include <cstddef>\n#include <cstdint>\n${body}\n")
    execute_process(COMMAND ${_fuzz_cxx} -std=c++20 -fsanitize=fuzzer,address,undefined ${src} -o ${CMAKE_CURRENT_BINARY_DIR}/${var}
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(ok ON)
    endif()
  endif()
  set(${var} ${ok} CACHE INTERNAL "fuzz engine probe")
endfunction()
_lowbit_fuzz_probe(LOWBIT_FUZZ_LIBFUZZER_IO
  "extern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }")
_lowbit_fuzz_probe(LOWBIT_FUZZ_LIBFUZZER_POLICY
  "template <float F> struct f { static constexpr float v = F; };\nextern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return f<1.5f>::v > 1.0f ? 0 : 1; }")

set(_fuzz_dir ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
file(MAKE_DIRECTORY ${_fuzz_bin})
set(_fuzz_includes -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/tools)
get_target_property(_fuzz_eigen Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
foreach(d ${_fuzz_eigen})
  list(APPEND _fuzz_includes -isystem ${d})
endforeach()
file(GLOB_RECURSE _fuzz_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/lowbit/*.hpp ${PROJECT_SOURCE_DIR}/tools/common/*.hpp)
file(GLOB _fuzz_sources CONFIGURE_DEPENDS ${_fuzz_dir}/*_fuzz.cpp)

set(_fuzz_outputs)  # libFuzzer binaries (custom commands)
set(_fuzz_drivers)  # driver.cpp executables (targets)
set(_fuzz_summary)
foreach(src ${_fuzz_sources})
  get_filename_component(name ${src} NAME_WE)  # lowbit_file_fuzz
  string(REPLACE "_fuzz" "" corpus ${name})    # lowbit_file
  list(FIND _fuzz_policy_targets ${name} _needs_policy)
  if(LOWBIT_FUZZ_LIBFUZZER_IO AND (_needs_policy EQUAL -1 OR LOWBIT_FUZZ_LIBFUZZER_POLICY))
    set(out ${_fuzz_bin}/${name})
    add_custom_command(OUTPUT ${out}
      COMMAND ${_fuzz_cxx} -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
              ${_fuzz_includes} ${src} -o ${out} -pthread
      DEPENDS ${src} ${_fuzz_headers}
      COMMENT "Building libFuzzer target ${name} with ${_fuzz_cxx}" VERBATIM)
    list(APPEND _fuzz_outputs ${out})
    file(MAKE_DIRECTORY ${_fuzz_bin}/corpus_${corpus})
    # The first corpus directory collects new inputs; the committed seeds are only read.
    add_test(NAME fuzz.${corpus}
             COMMAND ${out} -max_total_time=${LOWBIT_FUZZ_SECONDS} -max_len=4096 -timeout=10 -rss_limit_mb=2048
                     -print_final_stats=1 -artifact_prefix=${_fuzz_bin}/${name}-
                     ${_fuzz_bin}/corpus_${corpus} ${_fuzz_dir}/corpus/${corpus})
    list(APPEND _fuzz_summary "${corpus} (libFuzzer)")
  else()
    set(exe ${name}_driver)
    add_executable(${exe} EXCLUDE_FROM_ALL ${src} ${_fuzz_dir}/driver.cpp)
    lowbit_project_target(${exe})
    target_include_directories(${exe} PRIVATE ${PROJECT_SOURCE_DIR}/tools)
    target_compile_options(${exe} PRIVATE -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(${exe} PRIVATE -fsanitize=address,undefined)
    set_target_properties(${exe} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${_fuzz_bin})
    list(APPEND _fuzz_drivers ${exe})
    add_test(NAME fuzz.${corpus} COMMAND ${_fuzz_bin}/${exe} ${LOWBIT_FUZZ_SECONDS} ${_fuzz_dir}/corpus/${corpus})
    list(APPEND _fuzz_summary "${corpus} (driver)")
  endif()
  set_tests_properties(fuzz.${corpus} PROPERTIES LABELS fuzz FIXTURES_REQUIRED lowbit_fuzzers TIMEOUT 300)
endforeach()
list(JOIN _fuzz_summary ", " _fuzz_summary)
message(STATUS "lowbit: fuzz targets, ${LOWBIT_FUZZ_SECONDS} s each: ${_fuzz_summary}")

add_custom_target(lowbit_fuzzers DEPENDS ${_fuzz_outputs})
if(_fuzz_drivers)
  add_dependencies(lowbit_fuzzers ${_fuzz_drivers})
endif()
add_test(NAME fuzz.build COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target lowbit_fuzzers)
set_tests_properties(fuzz.build PROPERTIES LABELS fuzz FIXTURES_SETUP lowbit_fuzzers TIMEOUT 900)
