# Tests of the tools/ runner: they include tools/model/*.hpp and tools/lowbit-quantize/*.hpp.
foreach(t llama_test real_model_ppl_test)
  if(TARGET ${t})
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/tools)
    target_compile_definitions(${t} PRIVATE LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()
